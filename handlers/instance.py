"""The instance folder lives in helpdesk.instance (no Flask there); kept importable from here."""
from helpdesk.instance import Instance

__all__ = ["Instance"]

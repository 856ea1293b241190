"""The settings are declared in helpdesk.settings (every part, not only the web); kept importable here."""
from helpdesk.settings import DEFAULTS, SETTINGS, Setting, defaults

__all__ = ["DEFAULTS", "SETTINGS", "Setting", "defaults"]

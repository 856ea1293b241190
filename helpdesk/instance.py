"""The instance folder: where every generated file of a deployment lives.

Keeping all paths in one small value means a test points the whole program at a
temporary directory by passing one argument, and nothing reads a global.
"""
from dataclasses import dataclass
from pathlib import Path

from storage.files import private_folder


@dataclass(frozen=True)
class Instance:
    path: Path

    @classmethod
    def at(cls, path) -> "Instance":
        """The instance at `path`, made if missing; only its owner may open it (storage/files.py)."""
        return cls(private_folder(Path(path).resolve()))

    @property
    def kb_index(self) -> Path:
        """Disposable FTS5 index of the knowledge base (rebuilt by `helpdesk index`)."""
        return self.path / "kb.sqlite"

    @property
    def helpdesk_db(self) -> Path:
        """The help desk's own data: conversations, messages, feedback, tickets, staff accounts."""
        return self.path / "helpdesk.sqlite"

    @property
    def records_db(self) -> Path:
        """Local read-only copy of MAMIS member data, written only by `helpdesk sync-members`/`demo-data`."""
        return self.path / "records.sqlite"

    @property
    def audit_db(self) -> Path:
        """Access log of every lookup of a person's record."""
        return self.path / "audit.sqlite"

    @property
    def config_toml(self) -> Path:
        """The settings file (helpdesk.settings): `NAME = value` lines in TOML."""
        return self.path / "config.toml"

    @property
    def config_file(self) -> Path:
        """The older settings file, still read (after the defaults, before config.toml)."""
        return self.path / "config.json"

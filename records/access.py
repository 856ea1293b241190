"""Who may see which record: the one check, the access log, and masking helpers.

Every lookup in records/lookup.py builds a `Scope` for the record it found (or an
empty one when nothing was found) and asks `may_see`. Nothing else decides access.
The rules come from DOMAIN.md:

- county staff: records within their county;
- prefectural staff: records within the counties under their prefecture;
- a member: only their own records (and their own workplace institution);
- the operations desk: nothing of its own, only what the ticket's requester
  (`on_behalf_of`) could see;
- anonymous: nothing.

The institution master is national reference data, not a person's record: any
staff member may see any institution, as MAMIS shows the master to every
secretariat that files an admission.
"""
from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from storage.sqlite import apply_migrations, connect

Role = Literal["anonymous", "staff", "member", "desk"]
Level = Literal["county", "prefecture"]

_MEMBER_NUMBER = re.compile(r"^[0-9]{7}$")
_PREFECTURE = re.compile(r"^[0-9]{2}$")
_COUNTY = re.compile(r"^[0-9]{5}$")


@dataclass(frozen=True)
class Asker:
    """Who is asking. Build with the class methods; the constructor validates.

    `label` is a free identifier for the access log (a staff account name, a chat
    id); it is never used for decisions.
    """
    role: Role
    level: Level | None = None
    association_code: str | None = None
    member_number: str | None = None
    on_behalf_of: "Asker | None" = None
    label: str = ""

    def __post_init__(self):
        ok = {
            "anonymous": self.level is None and self.association_code is None
            and self.member_number is None and self.on_behalf_of is None,
            "staff": (self.level == "county" and bool(_COUNTY.match(self.association_code or "")))
            or (self.level == "prefecture" and bool(_PREFECTURE.match(self.association_code or ""))),
            "member": bool(_MEMBER_NUMBER.match(self.member_number or "")) and self.on_behalf_of is None,
            "desk": self.level is None and self.association_code is None and self.member_number is None
            and (self.on_behalf_of is None or self.on_behalf_of.role != "desk"),
        }.get(self.role, False)
        if not ok:
            raise ValueError(f"invalid Asker: {self!r}")

    @classmethod
    def anonymous(cls) -> "Asker":
        return cls("anonymous")

    @classmethod
    def county_staff(cls, county_code: str, label: str = "") -> "Asker":
        return cls("staff", level="county", association_code=county_code, label=label)

    @classmethod
    def prefecture_staff(cls, prefecture_code: str, label: str = "") -> "Asker":
        return cls("staff", level="prefecture", association_code=prefecture_code, label=label)

    @classmethod
    def member(cls, member_number: str, label: str = "") -> "Asker":
        return cls("member", member_number=member_number, label=label)

    @classmethod
    def desk(cls, on_behalf_of: "Asker | None" = None, label: str = "") -> "Asker":
        return cls("desk", on_behalf_of=on_behalf_of, label=label)

    def effective(self) -> "Asker | None":
        """The asker whose rights apply: the requester for the desk, nobody for anonymous."""
        if self.role == "desk":
            return self.on_behalf_of
        if self.role == "anonymous":
            return None
        return self

    def log_ref(self) -> str:
        """How the access log names this asker (member numbers masked)."""
        if self.role == "staff":
            ref = f"staff:{self.level}:{self.association_code}"
        elif self.role == "member":
            ref = f"member:{mask_member_number(self.member_number or '')}"
        else:
            ref = self.role
        return f"{ref}({self.label})" if self.label else ref


@dataclass(frozen=True)
class Scope:
    """Where a found record belongs, as far as access is concerned.

    `areas` holds (county, prefecture) pairs: a member's county; for a transfer
    both the old and the new county. `people` are the member numbers the record
    is about (a member may see records about themselves). `staff_wide` marks the
    institution master, which every secretariat may see. An empty Scope (nothing
    found) is visible to nobody.
    """
    areas: frozenset[tuple[str, str]] = frozenset()
    people: frozenset[str] = frozenset()
    staff_wide: bool = False

    @property
    def found(self) -> bool:
        return bool(self.areas or self.people or self.staff_wide)


NOTHING = Scope()


def may_see(asker: Asker, scope: Scope) -> bool:
    """The access check. Every lookup of every record passes through here."""
    who = asker.effective()
    if who is None or not scope.found:
        return False
    if who.role == "member":
        return who.member_number in scope.people
    if who.role == "staff":
        if scope.staff_wide:
            return True
        if who.level == "county":
            return any(county == who.association_code for county, _pref in scope.areas)
        return any(pref == who.association_code for _county, pref in scope.areas)
    return False


def may_look_up(asker: Asker) -> bool:
    """Whether this asker could see any record at all (independent of any record)."""
    who = asker.effective()
    return who is not None and who.role in ("member", "staff")


@dataclass(frozen=True)
class SearchArea:
    """The SQL prefilter for a name search, derived from the same rules as may_see.

    Only an optimisation: every candidate it lets through is still checked with
    may_see before it is returned.
    """
    county_code: str | None = None
    prefecture_code: str | None = None
    member_number: str | None = None
    nowhere: bool = False


def search_area(asker: Asker) -> SearchArea:
    who = asker.effective()
    if who is None:
        return SearchArea(nowhere=True)
    if who.role == "member":
        return SearchArea(member_number=who.member_number)
    if who.role == "staff" and who.level == "county":
        return SearchArea(county_code=who.association_code)
    if who.role == "staff" and who.level == "prefecture":
        return SearchArea(prefecture_code=who.association_code)
    return SearchArea(nowhere=True)


# ---------------------------------------------------------------- masking

_NUMBERS_IN_TEXT = re.compile(r"(?<![0-9０-９])[0-9０-９]{7}(?:[0-9０-９]{3})?(?![0-9０-９])")


def mask_identifier(value: str, keep: int = 2) -> str:
    """Keep `keep` characters at each end and star the middle: 1234567 → 12***67.

    Short values are starred completely, since two and two would reveal them.
    """
    if len(value) <= 2 * keep + 1:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


def mask_member_number(number: str) -> str:
    """1234567 → 12***67, for logs and transcripts that leave the asker's own view."""
    return mask_identifier(number, 2)


def mask_name(name: str) -> str:
    """山田　太郎 → 山＊＊＊＊: the first character only, the rest full-width stars."""
    return name[:1] + "＊" * (len(name) - 1) if name else ""


def mask_identifiers_in_text(text: str) -> str:
    """Mask 7-digit member numbers and 10-digit institution codes inside free text.

    Meant for transcripts handed to the desk or written to logs; half- and
    full-width digits both count.
    """
    return _NUMBERS_IN_TEXT.sub(lambda m: mask_identifier(m.group(0), 2), text)


# ---------------------------------------------------------------- the access log

AUDIT_MIGRATIONS = [
    ("0001_access_log", [
        """CREATE TABLE access_log (
            id         INTEGER PRIMARY KEY,
            at         TEXT NOT NULL,
            asker      TEXT NOT NULL,
            on_behalf  TEXT,
            action     TEXT NOT NULL,
            record     TEXT,
            outcome    TEXT NOT NULL CHECK (outcome IN ('allowed', 'refused'))
        )""",
        "CREATE INDEX access_log_by_time ON access_log(at)",
    ]),
]

_INSERT_LOG = """
INSERT INTO access_log (at, asker, on_behalf, action, record, outcome)
VALUES (:at, :asker, :on_behalf, :action, :record, :outcome)
"""


@dataclass
class AccessLog:
    """Append-only log of record lookups, in its own SQLite file (WAL).

    A separate file because the records database is read-only for the help desk
    and replaced by imports; the log must outlive both. Identifiers are masked
    before they are written. Not-found and refused are both logged as 'refused',
    exactly as the asker experienced them.
    """
    path: Path
    _conn: sqlite3.Connection | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect(self.path)
            apply_migrations(conn, AUDIT_MIGRATIONS)
            self._conn = conn
        return self._conn

    def write(self, asker: Asker, action: str, record: str | None, allowed: bool) -> None:
        """Record one lookup; `record` must already be masked."""
        with self._lock:
            self._connection().execute(_INSERT_LOG, {
                "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "asker": asker.log_ref(),
                "on_behalf": asker.on_behalf_of.log_ref() if asker.on_behalf_of else None,
                "action": action, "record": record,
                "outcome": "allowed" if allowed else "refused",
            })

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

"""What a linked doctor is told about when their records change: each member's status and the stage of
each of their applications, read for many members at once, in the records' own words.

The notification step of an import (bot/messaging/notices.py) reads this before and after the
import and tells each subscribed doctor what changed. It is the system comparing two snapshots for the
doctor's own chat, not a person's lookup, so it is not in the access log; it reads the read-only copy
directly with plain SQL, here beside the rest of the records' SQL.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.sqlite import connect

from .schema import steps_in_rows
from .values import KIND_JA, where_label  # the lookups' own words for an application and where it stands
from .vocab import STATUS_JA

log = logging.getLogger("helpdesk.records")

MEMBERS_SQL = """
    SELECT member_number, status FROM members WHERE member_number IN (SELECT value FROM json_each(:numbers))
"""
APPLICATIONS_SQL = """
    SELECT a.member_number, a.application_number, a.kind, a.stage, a.state, a.return_reason
    FROM applications a WHERE a.member_number IN (SELECT value FROM json_each(:numbers))
    ORDER BY a.application_number
"""
# The same before migration 0008 (records/schema.py steps_in_rows): the reason of the latest return event.
APPLICATIONS_BEFORE_0008_SQL = """
    SELECT a.member_number, a.application_number, a.kind, a.stage, a.state,
           (SELECT e.reason FROM application_events e WHERE e.application_id = a.id AND e.action = 'returned'
            ORDER BY e.seq DESC LIMIT 1) AS reason
    FROM applications a WHERE a.member_number IN (SELECT value FROM json_each(:numbers))
    ORDER BY a.application_number
"""


@dataclass(frozen=True)
class WatchedApplication:
    """One application as a doctor is told about it; `reason` only while it is returned."""

    number: str
    kind: str
    stage: str
    state: str
    reason: str | None = None

    @property
    def kind_ja(self) -> str:
        return KIND_JA.get(self.kind, self.kind)

    @property
    def status_ja(self) -> str:
        return where_label(self.stage, self.state)


@dataclass(frozen=True)
class WatchedMember:
    """A member's status (None: not in the records) and their applications, by application number."""

    status: str | None
    applications: tuple[WatchedApplication, ...] = ()

    @property
    def status_ja(self) -> str | None:
        return STATUS_JA.get(self.status, self.status) if self.status else None


def watched_members(records_db: Path, numbers: list[str]) -> dict[str, WatchedMember]:
    """member number → what would be told about them, for each number given (none without records).

    A records copy without applications (an older schema) gives the status alone."""
    if not numbers or not Path(records_db).exists():
        return {}
    conn = connect(records_db, readonly=True)
    try:
        params = {"numbers": json.dumps(numbers)}
        status = dict(conn.execute(MEMBERS_SQL, params).fetchall())
        apps: dict[str, list[WatchedApplication]] = {}
        try:
            sql = APPLICATIONS_SQL if steps_in_rows(conn) else APPLICATIONS_BEFORE_0008_SQL
            for member, number, kind, stage, state, reason in conn.execute(sql, params):
                apps.setdefault(member, []).append(
                    WatchedApplication(number, kind, stage, state, reason if state == "returned" else None))
        except sqlite3.Error as e:
            log.warning("applications not readable: %s", type(e).__name__)
    finally:
        conn.close()
    return {n: WatchedMember(status.get(n), tuple(apps.get(n, ()))) for n in numbers}

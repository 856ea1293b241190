"""Rate-limit counters in an SQLite file of the instance folder, shared by every process of a server.

flask-limiter counts in the storage named by a URI; `memory://` counts per process, so with four
gunicorn workers a client gets four times its limit. Redis or memcached would share the counters but
need a server of their own; the help desk already keeps everything in SQLite files, and a fixed-window
counter is one upsert. This class is a `limits` storage (`helpdesk-sqlite:///path/to/ratelimit.sqlite`),
registered with `limits` by its metaclass when this module is imported.

The file holds only counters keyed by what the limits are keyed by (route and IP address, a login id):
nothing in it needs a backup, and it is rebuilt empty when deleted.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from limits.storage import Storage

from storage.sqlite import connect

SCHEME = "helpdesk-sqlite"
FILE_NAME = "ratelimit.sqlite"

_CREATE = """CREATE TABLE IF NOT EXISTS counters (
    key        TEXT PRIMARY KEY,
    value      INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID"""

# One statement, so the increment is atomic across processes without an explicit transaction.
_INCR = """
INSERT INTO counters (key, value, expires_at) VALUES (:key, :amount, :expires_at)
ON CONFLICT (key) DO UPDATE SET
    value = CASE WHEN counters.expires_at <= :now THEN :amount ELSE counters.value + :amount END,
    expires_at = CASE WHEN counters.expires_at <= :now THEN :expires_at ELSE counters.expires_at END
RETURNING value
"""
_GET = "SELECT value FROM counters WHERE key = :key AND expires_at > :now"
_EXPIRY = "SELECT expires_at FROM counters WHERE key = :key AND expires_at > :now"
_CLEAR = "DELETE FROM counters WHERE key = :key"
_SWEEP = "DELETE FROM counters WHERE expires_at <= :now"
_RESET = "DELETE FROM counters"


def path_from_uri(uri: str) -> Path:
    parsed = urlparse(uri)
    path = unquote(parsed.netloc + parsed.path)
    if not path:
        raise ValueError(f"{SCHEME}:// needs a file path, e.g. {SCHEME}:///srv/helpdesk/instance/{FILE_NAME}")
    return Path(path)


class SQLiteStorage(Storage):
    """Fixed-window counters (flask-limiter's default strategy) in one SQLite table.

    Each thread of each process has its own connection, reopened after a fork. Expired rows are swept
    now and then by whichever request passes by, so the table stays as small as the live windows.
    """

    STORAGE_SCHEME = [SCHEME]
    SWEEP_EVERY = 60.0

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = path_from_uri(uri)
        self._local = threading.local()
        self._next_sweep = time.monotonic() + self.SWEEP_EVERY

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(self.path)
            # Counters are worth less than the time a sync costs: losing the last ones at a power cut
            # only lets a few requests through.
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute(_CREATE)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        conn = self._conn()
        value = conn.execute(_INCR, {"key": key, "amount": amount, "now": now,
                                     "expires_at": now + expiry}).fetchone()[0]
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.SWEEP_EVERY
            conn.execute(_SWEEP, {"now": now})
        return int(value)

    def get(self, key: str) -> int:
        row = self._conn().execute(_GET, {"key": key, "now": time.time()}).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._conn().execute(_EXPIRY, {"key": key, "now": time.time()}).fetchone()
        return float(row[0]) if row else time.time()

    def check(self) -> bool:
        try:
            self._conn().execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        return self._conn().execute(_RESET).rowcount

    def clear(self, key: str) -> None:
        self._conn().execute(_CLEAR, {"key": key})

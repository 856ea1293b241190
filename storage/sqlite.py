"""SQLite plumbing shared by every database of the help desk.

Three things each database needs and that must behave the same everywhere: one way to
open it (the same pragmas and busy timeout, so a second process writing while the
server runs waits instead of failing with "database is locked"), numbered migrations
applied exactly once (also when several worker processes start together), and one
connection per thread (sqlite3 connections must not be shared between threads
mid-statement, and must not cross a fork).
"""
from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from storage.files import private_file, tighten

#: How long any connection waits for another writer before giving up. Long enough for
#: an import's biggest transaction or a backup step; a web request never holds a write
#: lock anywhere near this long.
BUSY_TIMEOUT_MS = 10_000


def while_locked(statement: Callable[[], object], wait: float = BUSY_TIMEOUT_MS / 1000) -> None:
    """Run `statement`, trying again every fraction of a millisecond while the database is locked, for
    at most `wait` seconds.

    For the locks SQLite's busy handler does not wait for: two connections that both read a new file
    and then want to switch it to WAL would deadlock, so SQLite refuses one of them at once ("database
    is locked") however long its busy timeout. Polling finely also keeps the tail short where the busy
    handler would sleep 1, 2, 5 … 100 ms between tries (bot.store.database.Store takes its write lock so).
    """
    delay, deadline = 0.0002, time.monotonic() + wait
    while True:
        try:
            statement()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.002)

#: The largest INTEGER (and rowid) SQLite stores; a larger id from a URL cannot exist (binding it would
#: raise OverflowError).
MAX_ROWID = 2**63 - 1


def connect(path: Path | str, *, readonly: bool = False,
            row_factory: Callable | None = None) -> sqlite3.Connection:
    """Open a database file the one way every part of the help desk does.

    Writable files are switched to WAL (readers never block the writer, nor it them)
    with synchronous NORMAL (safe against corruption in WAL; a power cut may lose the
    last commit only), and readable by their owner alone (storage/files.py). `readonly`
    opens through a `file:...?mode=ro` URI and also sets `query_only`, so neither SQLite
    nor a stray statement can write. Every connection waits up to BUSY_TIMEOUT_MS for a
    lock and enforces foreign keys. Transactions are explicit (isolation_level=None): each
    caller issues its own BEGIN, so a transaction is exactly what it wrote.
    check_same_thread is off because callers keep one connection per thread themselves
    (ThreadConnections) or guard it with a lock.
    """
    target = Path(path)
    timeout = BUSY_TIMEOUT_MS / 1000
    if readonly:
        conn = sqlite3.connect(target.resolve().as_uri() + "?mode=ro", uri=True, timeout=timeout,
                               isolation_level=None, check_same_thread=False)
    else:
        if target.parent.is_dir():  # else sqlite3 raises its own "unable to open database file"
            private_file(target)  # its -wal and -shm are then created with the same mode (SQLite does so)
            for companion in (f"{target}-wal", f"{target}-shm"):  # made before the file was private
                tighten(companion)
        conn = sqlite3.connect(str(target), timeout=timeout, isolation_level=None, check_same_thread=False)
    if row_factory is not None:
        conn.row_factory = row_factory
    # Python's `timeout` already sets it; said again so the value is visible in PRAGMA busy_timeout.
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    else:
        # Several processes opening a new file at once (gunicorn workers and their shared rate-limit
        # counters) race for this switch, which SQLite refuses rather than waits for.
        while_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn

#: A migration: its name (`0001_initial`, …) and the statements it runs.
Migration = tuple[str, Sequence[str]]

_CREATE_MIGRATIONS = """CREATE TABLE IF NOT EXISTS migrations (
    name       TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL
)"""
_APPLIED = "SELECT name FROM migrations"
_RECORD = "INSERT INTO migrations (name, applied_at) VALUES (:name, :applied_at)"


def begin(conn: sqlite3.Connection) -> None:
    """Start a write transaction holding the write lock (`BEGIN IMMEDIATE`): taken before anything is
    read, so a check-then-write cannot race another writer, and a busy database is found at once
    rather than at the first write."""
    conn.execute("BEGIN IMMEDIATE")


@contextmanager
def transaction(conn: sqlite3.Connection, *, commit: bool = True,
                start: Callable[[sqlite3.Connection], None] = begin) -> Iterator[sqlite3.Connection]:
    """One write transaction around the block: `start` (by default `begin`), then COMMIT when the block
    ends, ROLLBACK when it raises. With `commit=False` the block's work is rolled back too: a dry run
    that counts exactly what it would change. `start` lets a caller wait for the lock its own way
    (bot.store.database.Store polls) or name a busy database in its own terms (records.importer's SyncBusy).
    `conn` must be in autocommit mode (isolation_level=None, as `connect` opens it)."""
    start(conn)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT" if commit else "ROLLBACK")


def apply_migrations(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> list[str]:
    """Apply pending migrations, each in one transaction with its `migrations` row.

    `conn` must be in autocommit mode (isolation_level=None) with a busy timeout.
    Nothing is locked when everything is applied (the common case, and a busy
    database must not block a plain open). Otherwise the applied set is re-read
    inside the write lock, so two processes starting at once cannot apply the same
    migration twice. Returns the names applied now.
    """
    conn.execute(_CREATE_MIGRATIONS)
    done = {row[0] for row in conn.execute(_APPLIED)}
    applied_now = []
    for name, statements in migrations:
        if name in done:
            continue
        with transaction(conn):
            done = {row[0] for row in conn.execute(_APPLIED)}
            if name in done:  # another process applied it meanwhile
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(_RECORD, {"name": name,
                                   "applied_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        applied_now.append(name)
    return applied_now


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY name")]


class ThreadConnections:
    """One connection per thread, opened on first use; `close()` closes them all.

    `version`, when given, names what the connection was opened on (for example the
    file's inode): when it changes, the thread's connection is reopened, so a database
    file replaced underneath (an import, demo-data --force) is picked up.
    """

    def __init__(self, open_connection: Callable[[], sqlite3.Connection],
                 version: Callable[[], object] | None = None):
        self._open = open_connection
        self._version = version or (lambda: None)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        version = self._version()
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.version != version:
            conn = self._open()
            self._local.conn, self._local.version = conn, version
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection opened here, in any thread (before forking, or at exit)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

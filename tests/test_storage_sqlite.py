"""Every database is opened the same way, and a second process writing while another holds the lock
waits for it instead of failing with "database is locked"."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from storage.sqlite import BUSY_TIMEOUT_MS, connect, transaction

ROOT = Path(__file__).resolve().parent.parent


def _pragmas(conn: sqlite3.Connection) -> dict:
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("busy_timeout", "foreign_keys", "journal_mode", "query_only")}


def test_every_database_is_opened_with_the_same_pragmas(tmp_path, kb_index):
    from bot.store.database import Store
    from kb.search import Searcher
    from records.access import AccessLog
    from records.lookup import open_readonly
    from records.schema import connect_writer

    assert BUSY_TIMEOUT_MS == 10_000
    store = Store(tmp_path / "helpdesk.sqlite")
    log = AccessLog(tmp_path / "audit.sqlite")
    writer = connect_writer(tmp_path / "records.sqlite")
    reader = open_readonly(tmp_path / "records.sqlite")
    searcher = Searcher(kb_index)
    try:
        for conn in (store.conn, log._connection(), writer):
            assert _pragmas(conn) == {"busy_timeout": 10_000, "foreign_keys": 1, "journal_mode": "wal",
                                      "query_only": 0}
        for conn in (reader, searcher.conn):
            assert _pragmas(conn) == {"busy_timeout": 10_000, "foreign_keys": 1, "journal_mode": "wal",
                                      "query_only": 1}
        with pytest.raises(sqlite3.OperationalError):
            reader.execute("CREATE TABLE nope (x)")
    finally:
        store.close(), log.close(), writer.close(), reader.close(), searcher.close()


_HOLDER = """
import sys, time
from storage.sqlite import connect
conn = connect(sys.argv[1])
conn.execute("CREATE TABLE IF NOT EXISTS rows (who TEXT, n INTEGER)")
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO rows VALUES ('holder', 0)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""

_WRITER = """
import sys
from storage.sqlite import connect
conn = connect(sys.argv[1])
for n in range(int(sys.argv[3])):
    conn.execute("INSERT INTO rows VALUES (:who, :n)", {"who": sys.argv[2], "n": n})
"""


def _python(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_process_waits_for_the_writer_instead_of_failing(tmp_path):
    db = tmp_path / "shared.sqlite"
    holder = _python(_HOLDER, db, 1.5)
    assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
    started = time.monotonic()
    writers = [_python(_WRITER, db, who, 200) for who in ("a", "b")]
    for proc in writers + [holder]:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    # The writers could not commit anything while the holder held the lock: they waited for it.
    assert time.monotonic() - started >= 1.0
    conn = connect(db, readonly=True)
    counts = dict(conn.execute("SELECT who, count(*) FROM rows GROUP BY who").fetchall())
    assert counts == {"holder": 1, "a": 200, "b": 200}


def test_connections_opening_a_new_file_at_once_all_switch_it_to_wal(tmp_path):
    """Gunicorn workers open the shared rate-limit counters' new file together. Two connections that
    both read a new file and then switch it to WAL would deadlock, so SQLite refuses one of them at once
    ("database is locked") whatever its busy timeout: `connect` tries the switch again instead. Before
    it did, about one round in ten failed here."""
    import threading

    for round_ in range(200):
        path, errors = tmp_path / f"new{round_}.sqlite", []
        start = threading.Barrier(8)

        def open_it():
            start.wait()
            try:
                conn = connect(path)
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                conn.close()
            except Exception as e:  # noqa: BLE001 (collected: the assertion below names it)
                errors.append(e)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], (round_, errors)


def test_the_help_desk_store_and_access_log_write_from_two_processes_at_once(tmp_path):
    script = """
    import sys
    from pathlib import Path
    from bot.store.database import Store
    from records.access import AccessLog, Asker
    store, log = Store(Path(sys.argv[1]) / "helpdesk.sqlite"), AccessLog(Path(sys.argv[1]) / "audit.sqlite")
    for n in range(100):
        store.create_conversation("web", "anonymous", "2026-11-25T10:00:00+09:00")
        log.write(Asker.anonymous(), "member", None, False)
    """
    procs = [_python(script, tmp_path) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with sqlite3.connect(tmp_path / "helpdesk.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM conversations").fetchone() == (200,)
    with sqlite3.connect(tmp_path / "audit.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM access_log").fetchone() == (200,)


def test_a_transaction_holds_the_write_lock_commits_rolls_back_on_error_and_dry_runs(tmp_path):
    """storage.sqlite.transaction, the one BEGIN IMMEDIATE … COMMIT of every writer."""
    db = tmp_path / "t.sqlite"
    conn, other = connect(db), connect(db)
    try:
        conn.execute("CREATE TABLE t (n INTEGER)")
        other.execute("PRAGMA busy_timeout = 0")
        with transaction(conn):
            conn.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(sqlite3.OperationalError, match="locked"):  # the lock is taken at BEGIN
                other.execute("BEGIN IMMEDIATE")
        with pytest.raises(ZeroDivisionError), transaction(conn):
            conn.execute("INSERT INTO t VALUES (2)")
            1 / 0
        with transaction(conn, commit=False):  # a dry run: what it did is taken back
            conn.execute("INSERT INTO t VALUES (3)")
            assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2
        assert [n for (n,) in other.execute("SELECT n FROM t")] == [1]
        assert not conn.in_transaction
    finally:
        conn.close()
        other.close()


def test_a_logged_lookup_survives_the_process_being_killed(tmp_path):
    """The access log commits each row before the lookup answers, and a commit in WAL mode with
    synchronous=NORMAL is an append to the WAL with no fsync: a row the process said it wrote is still
    there after a SIGKILL (docs/security.md, the access log's durability)."""
    script = """
    import sys, time
    from pathlib import Path
    from records.access import AccessLog, Asker
    log = AccessLog(Path(sys.argv[1]) / "audit.sqlite")
    for n in range(400):
        log.write(Asker.anonymous(), "member", f"{n:07d}", False)
        print(n, flush=True)
    time.sleep(60)
    """
    proc = _python(script, tmp_path)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(400)]
        assert lines[-1] == "399", (lines[-3:], proc.stderr.read())
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    with sqlite3.connect(tmp_path / "audit.sqlite") as conn:
        assert conn.execute("SELECT count(*), max(record) FROM access_log").fetchone() == (400, "0000399")

"""`/healthz` (the process answers) and `/readyz` (this instance can serve a chat), as small JSON.

A load balancer or systemd asks `/healthz` to know whether to restart the process, and `/readyz`
whether to send it traffic; an operator reads `/readyz` to see *what* is wrong. Each part of readiness
is one small check over the instance folder, opened read-only and closed again, so a probe never holds
a lock nor keeps a file open:

- `databases`: the help desk database and the access log open and answer;
- `migrations`: every migration this code knows is applied to the help desk database and the access log
  (the member data is migrated by its next import: until then `member_data` is degraded);
- `index`: the knowledge-base index exists (its age is reported);
- `vectors`: the index was built with the word vectors, and this installation has them (without,
  the search answers by words only);
- `member_data`: the member data was loaded, and its last sync is recent enough (demo data never ages);
- `institutions_data`, `applications_data`, `reports_data`: each kind's last import (time, mode, counts);
  never imported or older than READY_IMPORT_MAX_DAYS, the part is degraded;
- `telegram`: where a bot token is set, the Telegram process's heartbeat (`telegram.heartbeat` in the
  instance folder) is recent: touched when a poll or webhook call was read, but not while an update
  has waited unanswered for a minute, so a bot that hears Telegram but answers nobody turns it red;
- `outbox`: the oldest message still waiting for delivery is not too old.

Only the parts a chat cannot do without (`REQUIRED`: databases, migrations, index) make `/readyz`
answer 503, named in `failing`: that is the question a load balancer asks. The others are facts
every instance shares (member data, the Telegram process, the outbox) or that only lower the quality
(the vectors): taking every instance out because a nightly sync failed would take the knowledge-base
chat down with it. They are named in `degraded` (status "degraded", 200) for an operator, and as
gauges of handlers/web/metrics.py (`helpdesk_ready{part}`) for an alert. A part whose table or file does
not exist yet in this version (no outbox, Telegram not configured) reports itself as absent.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Callable, TypeVar

from bot.messaging import outbox
from bot.desk.tickets import ACTIVE_STATES
from records.schema import DEMO_KEY, get_meta
from storage.sqlite import applied_migrations, connect

TELEGRAM_HEARTBEAT = "telegram.heartbeat"
#: Without these no chat can be served: the parts that answer 503.
REQUIRED = ("databases", "migrations", "index")

_ABSENT = {"ok": True, "state": "absent"}


def touch_heartbeat(instance_path) -> None:
    """Called by the Telegram process when it reads a poll or webhook call and no update is stuck
    (handlers/telegram/app.py, `TelegramDesk.heartbeat`): one mtime update, no database write."""
    path = Path(instance_path) / TELEGRAM_HEARTBEAT
    path.touch()


def _open(path: Path) -> sqlite3.Connection:
    return connect(path, readonly=True)


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name",
                        {"name": name}).fetchone() is not None


T = TypeVar("T")


def _read_table(path: Path, table: str, read: Callable[[sqlite3.Connection], T]) -> T | None:
    """`read(conn)` on the database at `path`, opened read-only; None while the file or its `table` does
    not exist yet (nothing has written it), so a check can tell "not yet" from a failure."""
    if not path.exists():
        return None
    with closing(_open(path)) as conn:
        return read(conn) if _table_exists(conn, table) else None


def _applied(path: Path) -> set[str]:
    with closing(_open(path)) as conn:
        return set(applied_migrations(conn)) if _table_exists(conn, "migrations") else set()


def known_migrations() -> dict[str, list[str]]:
    """The migrations this code applies, per database file name."""
    from bot.store.migrations import MIGRATIONS as HELPDESK
    from records.access import AUDIT_MIGRATIONS
    from records.schema import MIGRATIONS as RECORDS

    return {"helpdesk.sqlite": [m[0] for m in HELPDESK], "audit.sqlite": [m[0] for m in AUDIT_MIGRATIONS],
            "records.sqlite": [m[0] for m in RECORDS]}


def check_databases(instance) -> dict:
    """The help desk database must exist (the app creates it at start); the access log is created by
    the first lookup of a person, so it may not exist yet."""
    opened = {}
    if not instance.helpdesk_db.exists():
        return {"ok": False, "error": f"{instance.helpdesk_db.name} がありません"}
    for path in (instance.helpdesk_db, instance.audit_db):
        if not path.exists():
            continue
        try:
            with closing(_open(path)) as conn:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as e:
            return {"ok": False, "error": f"{path.name} を開けません: {e}"}
        opened[path.name] = path.stat().st_size
    return {"ok": True, "bytes": opened}


#: Migrated by its one writer (an import, or the demo), never by the help desk, which only reads it:
#: after an upgrade its new migrations wait for the next import, and the look-ups work meanwhile
#: (records/lookup.py falls back), so they make `member_data` degraded, not readiness fail.
WRITER_MIGRATED = "records.sqlite"


def pending_migrations(path, wanted: list[str]) -> list[str]:
    return [m for m in wanted if m not in _applied(path)]


def check_migrations(instance) -> dict:
    pending = {}
    for name, wanted in known_migrations().items():
        if name == WRITER_MIGRATED:
            continue
        path = instance.path / name
        if not path.exists():
            if name == "helpdesk.sqlite":  # the others appear with their first write
                pending[name] = wanted
            continue
        try:
            missing = pending_migrations(path, wanted)
        except sqlite3.Error as e:
            return {"ok": False, "error": f"{name}: {e}"}
        if missing:
            pending[name] = missing
    if pending:
        return {"ok": False, "pending": pending,
                "error": "適用されていないマイグレーションがあります（サーバーの再起動で適用されます）"}
    return {"ok": True}


def check_index(instance) -> dict:
    path = instance.kb_index
    if not path.exists():
        return {"ok": False, "error": "検索索引がありません（helpdesk index を実行してください）"}
    try:
        with closing(_open(path)) as conn:
            articles = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    except sqlite3.Error as e:
        return {"ok": False, "error": f"検索索引を読めません: {e}"}
    return {"ok": articles > 0, "articles": articles, "age_seconds": round(time.time() - path.stat().st_mtime)}


INDEX_VERSION_SQL = "SELECT value FROM meta WHERE key = 'version'"


def check_vectors(instance) -> dict:
    """Whether the index was built with the word vectors (its version ends with their source) and
    whether this installation has them: both, or the search is by words only."""
    from kb import vectors

    found = vectors.source_of(vectors.folder())
    built = None
    if instance.kb_index.exists():
        try:
            with closing(_open(instance.kb_index)) as conn:
                row = conn.execute(INDEX_VERSION_SQL).fetchone()
            built = row[0].rsplit("/", 1)[-1] if row else None
        except sqlite3.Error:
            pass
    # Without an index, `index` fails on its own; here only whether the vectors are there counts.
    matches = built == found or not instance.kb_index.exists()
    result = {"ok": found is not None and matches, "source": found,
              "index": built if built not in (None, "-") else None}
    if found is None:
        result["error"] = f"単語ベクトルがありません（{vectors.folder()}、helpdesk fetch-vectors で取得）。語の一致だけで検索します"
    elif not result["ok"]:
        result["error"] = "検索索引が単語ベクトルなしで作られています（helpdesk index で作り直してください）"
    return result


def _last_import(conn: sqlite3.Connection, key: str) -> dict | None:
    """The import recorded under `key` in the records' meta ({"at", "mode", …}), {"demo": True} on
    demo data, or None."""
    last = get_meta(conn, key)
    if last:
        return json.loads(last)
    return {"demo": True} if get_meta(conn, DEMO_KEY) else None


def member_data_facts(instance) -> dict | None:
    """The member data's last sync ({"at", "mode", ...}) or its demo mark; None when never loaded."""
    return _read_table(instance.records_db, "meta", lambda conn: _last_import(conn, "last_sync"))


def check_member_data(instance, max_hours: float) -> dict:
    try:
        facts = member_data_facts(instance)
    except (sqlite3.Error, ValueError) as e:
        return {"ok": False, "error": f"会員データを読めません: {e}"}
    if facts is None:
        return {"ok": False, "error": "会員データが読み込まれていません（helpdesk sync-members --full）"}
    try:
        pending = pending_migrations(instance.records_db, known_migrations()[WRITER_MIGRATED])
    except sqlite3.Error as e:
        return {"ok": False, "error": f"会員データを読めません: {e}"}
    if pending:
        return {"ok": False, "pending": pending,
                "error": "会員データの新しいマイグレーションは次の取り込み（helpdesk sync-members など）で適用されます"}
    if facts.get("demo"):
        return {"ok": True, "state": "demo"}

    age = time.time() - datetime.fromisoformat(facts["at"]).timestamp()
    result = {"ok": age <= max_hours * 3600, "last_sync": facts["at"], "mode": facts.get("mode"),
              "age_seconds": round(age)}
    if not result["ok"]:
        result["error"] = f"最後の同期から {max_hours} 時間以上たっています"
    return result


IMPORTED_KINDS = {"institutions_data": ("institutions", "医療機関マスタ", "last_sync_institutions"),
                  "applications_data": ("applications", "入会届・異動届", "last_sync_applications"),
                  "reports_data": ("reports", "かかりつけ医機能報告", "last_sync_reports")}


def import_facts(instance) -> dict[str, dict | None]:
    """Each kind's last import ({"at", "mode", "added", …}), {"demo": True} on demo data, or None."""
    found = _read_table(instance.records_db, "meta", lambda conn: {
        kind: _last_import(conn, key) for kind, _label, key in IMPORTED_KINDS.values()})
    return found or {kind: None for kind, _label, _key in IMPORTED_KINDS.values()}


def check_imports(instance, max_days: float) -> dict[str, dict]:
    """One part per imported kind besides members. A stale or missing import is a degraded part, never
    a failing one: the look-ups still answer, from older data (or not at all for that kind)."""
    try:
        facts = import_facts(instance)
    except (sqlite3.Error, ValueError) as e:
        return {part: {"ok": False, "error": f"取り込みの記録を読めません: {e}"}
                for part in IMPORTED_KINDS}

    parts = {}
    for part, (kind, label, _key) in IMPORTED_KINDS.items():
        last = facts[kind]
        if last is None:
            parts[part] = {"ok": False,
                           "error": f"{label}が取り込まれていません（helpdesk sync-{kind} --full）"}
        elif last.get("demo"):
            parts[part] = {"ok": True, "state": "demo"}
        else:
            age = time.time() - datetime.fromisoformat(last["at"]).timestamp()
            stale = age > max_days * 86400
            parts[part] = {"ok": not stale, "last_sync": last["at"], "mode": last.get("mode"),
                           "added": last.get("added"), "changed": last.get("changed"),
                           "deleted": last.get("deleted"), "rejected": last.get("rejected"),
                           "age_seconds": round(age)}
            if stale:
                parts[part]["error"] = f"{label}の最後の取り込みから {max_days} 日以上たっています"
    return parts


def check_telegram(instance, enabled: bool, max_seconds: float) -> dict:
    if not enabled:
        return {"ok": True, "state": "disabled"}
    path = instance.path / TELEGRAM_HEARTBEAT
    if not path.exists():
        return {"ok": False, "error": "Telegram プロセスからの応答記録がありません（helpdesk telegram は起動していますか）"}
    age = time.time() - path.stat().st_mtime
    result = {"ok": age <= max_seconds, "last_poll_age_seconds": round(age)}
    if not result["ok"]:
        result["error"] = f"Telegram の最後の受信から {max_seconds} 秒以上たっています"
    return result


def outbox_facts(instance) -> dict | None:
    """Undelivered outbox items and the age of the oldest (bot/messaging/outbox.py `backlog`); None when there is
    no outbox yet."""
    backlog = _read_table(instance.helpdesk_db, "outbox", outbox.backlog)
    if backlog is None:
        return None
    count, oldest = backlog
    age = None if oldest is None else max(0.0, time.time() - datetime.fromisoformat(oldest).timestamp())
    return {"backlog": count, "oldest_age_seconds": None if age is None else round(age)}


def check_outbox(instance, max_minutes: float) -> dict:
    try:
        facts = outbox_facts(instance)
    except (sqlite3.Error, ValueError) as e:
        return {"ok": False, "error": f"送信待ちを読めません: {e}"}
    if facts is None:
        return dict(_ABSENT)
    age = facts["oldest_age_seconds"]
    ok = age is None or age <= max_minutes * 60
    result = {"ok": ok, **facts}
    if not ok:
        result["error"] = f"{max_minutes} 分以上送信されていないメッセージがあります"
    return result


TICKETS_OPEN_SQL = "SELECT count(*) FROM tickets WHERE state IN (SELECT value FROM json_each(:states))"


def tickets_open(instance) -> int | None:
    """Tickets not yet resolved or closed; None when the desk's tables do not exist yet."""
    return _read_table(instance.helpdesk_db, "tickets", lambda conn: conn.execute(
        TICKETS_OPEN_SQL, {"states": json.dumps(ACTIVE_STATES)}).fetchone()[0])


def readiness(instance, config) -> dict:
    """Every part's check; `failing` names the required parts that are not ready (503), `degraded` the
    others. `config` holds the declared settings (helpdesk/settings.py: the thresholds' defaults, and
    TELEGRAM_BOT_TOKEN from the environment)."""
    checks = {
        "databases": check_databases(instance),
        "migrations": check_migrations(instance),
        "index": check_index(instance),
        "vectors": check_vectors(instance),
        "member_data": check_member_data(instance, float(config["READY_MEMBER_SYNC_MAX_HOURS"])),
        **check_imports(instance, float(config["READY_IMPORT_MAX_DAYS"])),
        "telegram": check_telegram(instance, bool(config["TELEGRAM_BOT_TOKEN"]),
                                   float(config["READY_TELEGRAM_MAX_SECONDS"])),
        "outbox": check_outbox(instance, float(config["READY_OUTBOX_MAX_MINUTES"])),
    }
    failing = [name for name, result in checks.items() if not result["ok"] and name in REQUIRED]
    degraded = [name for name, result in checks.items() if not result["ok"] and name not in REQUIRED]
    status = "fail" if failing else "degraded" if degraded else "ok"
    return {"status": status, "failing": failing, "degraded": degraded, "checks": checks}


def create_blueprint():
    from flask import Blueprint, current_app, jsonify

    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz():
        """The process answers; touches no database (a stuck disk must not get a healthy worker killed)."""
        return jsonify({"status": "ok", "pid": os.getpid()})

    @bp.get("/readyz")
    def readyz():
        services = current_app.extensions["helpdesk"]
        report = readiness(services.instance, current_app.config)
        response = jsonify(report)
        response.status_code = 503 if report["failing"] else 200
        response.headers["Cache-Control"] = "no-store"
        return response

    return bp

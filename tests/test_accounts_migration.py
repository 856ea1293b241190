"""Migration 0014_accounts on a copy of a database made before it (tests/helpdesk_0013.py): staff and
desk agents, now one `accounts` table with a role, still sign in with their passwords, browsers signed
in before stay signed in (chat and desk), signed-out sessions stay ended, and each role's token opens
only its own door. And a new database: the same tables, the role rules enforced by the schema."""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from bot import Store
from bot.accounts.staff import SignInFailed, StaffAccounts, session_fingerprint
from bot.accounts.agents import AgentAccounts
from tests.conftest import NOW
from tests.desk_support import sign_in as desk_sign_in
from tests.helpdesk_0013 import PASSWORD, build

STAFF_NOW = datetime.fromisoformat(NOW)
IDLE = timedelta(hours=8)
OLD_TABLES = {"staff", "agents", "staff_sessions", "agent_sessions"}


@pytest.fixture(scope="module")
def old_db(tmp_path_factory):
    """The database before the migration (made once) and what was put into it."""
    path = tmp_path_factory.mktemp("old") / "helpdesk.sqlite"
    return path, build(path, STAFF_NOW, datetime.now(timezone.utc))


@pytest.fixture
def migrated(old_db, tmp_path):
    """A copy of the old database opened by today's code; and what the old one held."""
    path, made = old_db
    copy = tmp_path / "helpdesk.sqlite"
    shutil.copyfile(path, copy)
    store = Store(copy)
    yield store, made
    store.close()


def fingerprint_of(password_hash: str) -> str:
    """session_fingerprint of an account with this hash, as the cookie of a browser signed in before holds it."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def tables(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def accounts_of(store, key: str):
    """The role's accounts for a key of the fixture ("chiyoda", "desk:yamada") and its login id."""
    return (AgentAccounts(store), key[5:]) if key.startswith("desk:") else (StaffAccounts(store), key)


def test_every_account_is_kept_with_its_role_association_and_hash(migrated):
    store, made = migrated
    assert store.applied_migrations()[-1] == "0014_accounts"
    assert not tables(store.conn) & OLD_TABLES
    staff, agents = StaffAccounts(store), AgentAccounts(store)
    assert [(a.id, a.login_id, a.level, a.association_code, a.association_name, a.demo) for a in staff.all()] == [
        (made["ids"]["chiyoda"], "chiyoda", "county", "13001", "千代田区医師会", False),
        (made["ids"]["demo-osaka"], "demo-osaka", "prefecture", "27", "大阪府医師会", True),
        (made["ids"]["tokyo"], "tokyo", "prefecture", "13", "東京都医師会", False),
        (made["ids"]["yamada"], "yamada", "prefecture", "27", "大阪府医師会", False),
    ]  # the staff keep their ids, the removed one's gap included
    assert [(a.login_id, a.role, a.level, a.association_code, a.demo) for a in agents.all()] == [
        ("demo-desk", "desk", None, None, True), ("sato", "desk", None, None, False),
        ("yamada", "desk", None, None, False)]
    assert agents.names() == {"yamada": "運営事務局 山田", "sato": "運営事務局 佐藤", "demo-desk": "運営事務局 担当（デモ）"}
    for key, password_hash in made["hashes"].items():
        accounts, login_id = accounts_of(store, key)
        assert accounts.get(login_id).password_hash == password_hash, key
    assert staff.get("chiyoda").last_sign_in_at == "2026-11-24T09:30:00+09:00"
    assert staff.get("chiyoda").created_at == "2026-11-20T09:00:00+09:00"


def test_everyone_signs_in_with_their_password_and_only_at_their_own_door(migrated):
    store, made = migrated
    for key, password in PASSWORD.items():
        accounts, login_id = accounts_of(store, key)
        account = accounts.authenticate(login_id, password, NOW)
        assert (account.login_id, account.role, account.last_sign_in_at) == (login_id, accounts.ROLE, NOW)
        with pytest.raises(SignInFailed):
            accounts.authenticate(login_id, password + "x", NOW)
    # An agent's password is not a staff password, even under a login id both have.
    with pytest.raises(SignInFailed):
        StaffAccounts(store).authenticate("yamada", PASSWORD["desk:yamada"], NOW)
    with pytest.raises(SignInFailed):
        AgentAccounts(store).authenticate("sato", PASSWORD["chiyoda"], NOW)
    # tokyo's hash, made with older parameters, was replaced by today's at sign-in.
    assert StaffAccounts(store).get("tokyo").password_hash != made["hashes"]["tokyo"]


def test_sessions_signed_in_before_stay_valid_and_signed_out_ones_stay_ended(migrated):
    store, made = migrated
    desk_now = datetime.now(timezone.utc)
    for key, token in made["tokens"].items():
        owner = key.split("#")[0]
        accounts, login_id = accounts_of(store, owner)
        other = StaffAccounts(store) if isinstance(accounts, AgentAccounts) else AgentAccounts(store)
        now = desk_now if key.startswith("desk:") else STAFF_NOW + timedelta(minutes=5)
        assert other.session_account(token, now, IDLE) is None, key  # a token opens its own role's door only
        account = accounts.session_account(token, now, IDLE)
        if key in made["ended"]:
            assert account is None, key
            continue
        assert account.login_id == login_id, key
        assert session_fingerprint(account) == fingerprint_of(made["hashes"][owner]), key  # the cookie matches
    # Ending and removing still reach the migrated sessions.
    staff, agents = StaffAccounts(store), AgentAccounts(store)
    assert staff.end_sessions("chiyoda", STAFF_NOW) == 1
    assert staff.session_account(made["tokens"]["chiyoda"], STAFF_NOW, IDLE) is None
    assert staff.session_account(made["tokens"]["yamada"], STAFF_NOW, IDLE).login_id == "yamada"
    assert agents.remove("yamada")
    assert agents.session_account(made["tokens"]["desk:yamada"], desk_now, IDLE) is None
    assert staff.get("yamada") is not None  # the staff member of that login id is not the agent


def test_the_chat_and_the_desk_keep_their_signed_in_browsers(old_db, tmp_path, kb_index):
    """The real app over a migrated instance: cookies made before the migration still sign in, and the
    web and desk sign-in forms accept the old passwords."""
    from helpdesk.instance import Instance
    from handlers.web.app import create_app

    path, made = old_db
    instance = Instance.at(tmp_path / "instance")
    shutil.copyfile(kb_index, instance.kb_index)
    shutil.copyfile(path, instance.helpdesk_db)
    instance.config_file.write_text(json.dumps({"NOW": NOW}), encoding="utf-8")
    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True,
                      "RATELIMIT_STORAGE_URI": "helpdesk-memory://"})
    try:
        browser = app.test_client()
        with browser.session_transaction() as cookie:
            cookie.update({"sid": made["tokens"]["chiyoda"], "fp": fingerprint_of(made["hashes"]["chiyoda"]),
                           "desk_token": made["tokens"]["desk:sato"], "desk_agent": "sato",
                           "desk_fp": fingerprint_of(made["hashes"]["desk:sato"]), "desk_since": time.time()})
        session = browser.get("/api/session").get_json()
        assert session["signed_in"] is True and session["staff"]["login_id"] == "chiyoda"
        assert session["staff"]["association_name"] == "千代田区医師会"
        assert browser.get("/desk/").status_code == 200

        fresh = app.test_client()
        csrf = fresh.get("/api/session").get_json()["csrf_token"]
        signed = fresh.post("/api/session", json={"login_id": "tokyo", "password": PASSWORD["tokyo"]},
                            headers={"X-CSRFToken": csrf})
        assert signed.status_code == 200 and signed.get_json()["staff"]["level"] == "prefecture"
        assert desk_sign_in(fresh, "demo-desk", PASSWORD["desk:demo-desk"]).status_code == 303
        assert fresh.get("/desk/").status_code == 200
    finally:
        app.extensions["helpdesk"].close()


def test_the_cli_lists_the_migrated_accounts_as_before(old_db, tmp_path):
    from handlers.cli.main import cli

    path, _made = old_db
    (tmp_path / "inst").mkdir()
    shutil.copyfile(path, tmp_path / "inst" / "helpdesk.sqlite")

    def listed(kind):
        done = CliRunner().invoke(cli, ["--instance", str(tmp_path / "inst"), kind, "list", "--json"])
        assert done.exit_code == 0, done.output
        return json.loads(done.output)

    assert [(a["login_id"], a["level"], a["association_code"], a["demo"]) for a in listed("staff")] == [
        ("chiyoda", "county", "13001", False), ("demo-osaka", "prefecture", "27", True),
        ("tokyo", "prefecture", "13", False), ("yamada", "prefecture", "27", False)]
    assert [(a["login_id"], a["display_name"], sorted(a)) for a in listed("agent")] == [
        (login_id, name, ["created_at", "demo", "display_name", "last_sign_in_at", "login_id"])
        for login_id, name in (("demo-desk", "運営事務局 担当（デモ）"), ("sato", "運営事務局 佐藤"),
                               ("yamada", "運営事務局 山田"))]


# -- a new database ------------------------------------------------------------------------------------


def test_a_new_database_has_one_account_table_whose_schema_keeps_each_role_to_its_columns(tmp_path, old_db):
    store = Store(tmp_path / "helpdesk.sqlite")
    try:
        assert {"accounts", "account_sessions"} <= tables(store.conn) and not tables(store.conn) & OLD_TABLES
        staff, agents = StaffAccounts(store), AgentAccounts(store)
        staff.add("yamada", "千代田区医師会 事務局 山田", "county", "13001", "staff-password-1", NOW)
        agents.add_agent("yamada", "運営事務局 山田", "agent-password-1", NOW)  # one login id, two roles
        s = staff.authenticate("yamada", "staff-password-1", NOW)
        a = agents.authenticate("yamada", "agent-password-1", NOW)
        assert (s.role, s.level, a.role, a.level, a.association_code) == ("staff", "county", "desk", None, None)
        token = agents.start_session(a, STAFF_NOW, IDLE)
        assert staff.session_account(token, STAFF_NOW, IDLE) is None
        staff.end_session(token, STAFF_NOW)  # the chat's sign-out cannot end a desk session either
        assert agents.session_account(token, STAFF_NOW, IDLE).login_id == "yamada"
        insert = ("INSERT INTO accounts (role, login_id, display_name, level, association_code, password_hash, "
                  "created_at) VALUES (?, ?, 'x', ?, ?, 'h', 'now')")
        for bad in (("staff", "nocode", "county", None), ("desk", "leveled", "county", "13001"),
                    ("admin", "root", None, None), ("desk", "YAMADA", None, None)):
            with pytest.raises(sqlite3.IntegrityError):
                store.conn.execute(insert, bad)
        # A new database and a migrated one have the same account tables.
        shutil.copyfile(old_db[0], tmp_path / "old.sqlite")
        Store(tmp_path / "old.sqlite").close()
        old = sqlite3.connect(tmp_path / "old.sqlite")
        schema = ("SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ('accounts', 'account_sessions') "
                  "ORDER BY name")
        assert old.execute(schema).fetchall() == [tuple(r) for r in store.conn.execute(schema)]
        old.close()
    finally:
        store.close()

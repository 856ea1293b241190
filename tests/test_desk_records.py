"""A record lookup from the console runs with the rights of the ticket's asker (records/access.py
`on_behalf_of`), is logged as the desk's in the access log and on the ticket; and the agent commands."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from tests.conftest import build_instance
from tests.desk_support import AGENT_PASSWORD, add_agents, csrf_of, sign_in
from tests.staff import PASSWORD, add_records_and_staff


@pytest.fixture
def app(tmp_path, demo_db):
    from handlers.web.app import create_app

    instance = build_instance(tmp_path / "instance")
    add_records_and_staff(instance, demo_db)
    add_agents(instance)
    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True})
    yield app
    app.extensions["helpdesk"].close()


def staff_ticket(app) -> int:
    """千代田区 (county 13001) staff sign in to the chat and hand their conversation to the desk."""
    staff = app.test_client()
    token = csrf_of(staff.get("/login").text)
    assert staff.post("/login", data={"login_id": "chiyoda", "password": PASSWORD, "csrf_token": token}).status_code == 303
    csrf = staff.get("/api/session").json["csrf_token"]
    created = staff.post("/api/conversations", json={}, headers={"X-CSRFToken": csrf}).json
    headers = {"Authorization": f"Bearer {created['token']}", "X-CSRFToken": csrf}
    staff.post(f"/api/conversations/{created['id']}/messages", json={"text": "ぴよぴよほげほげ"}, headers=headers)
    r = staff.post(f"/api/conversations/{created['id']}/handoff", json={}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json["ticket"]["number"]


def lookup(agent, number, query):
    token = csrf_of(agent.get(f"/desk/tickets/{number}").text)
    return agent.post(f"/desk/tickets/{number}/lookup", data={"query": query, "csrf_token": token})


def test_a_lookup_sees_what_the_asker_could_and_is_logged_as_the_desks(app):
    number = staff_ticket(app)
    agent = app.test_client()
    sign_in(agent)
    allowed = lookup(agent, number, "会員番号1300001の会員情報")
    assert allowed.status_code == 200
    result = allowed.text[allowed.text.index('class="lookup-result"'):]
    assert "山田　太郎" in result and "1300001" in result
    refused = lookup(agent, number, "会員番号2700001の会員情報")  # 大阪市北区: not 千代田区's to see
    result = refused.text[refused.text.index('class="lookup-result"'):]
    assert "田中" not in result and "2700001" not in result
    assert "該当する記録が見つからないか、閲覧する権限がありません。" in result  # as the asker would read it

    audit = sqlite3.connect(app.extensions["helpdesk"].instance.audit_db)
    rows = audit.execute("SELECT asker, on_behalf, outcome FROM access_log ORDER BY id").fetchall()
    assert rows[-2:] == [("desk(yamada)", "staff:county:13001(chiyoda)", "allowed"),
                         ("desk(yamada)", "staff:county:13001(chiyoda)", "refused")]
    events = sqlite3.connect(app.extensions["helpdesk"].instance.helpdesk_db).execute(
        "SELECT actor, detail FROM ticket_events WHERE kind = 'lookup' ORDER BY id").fetchall()
    assert [(actor, json.loads(d)["on_behalf_of"], json.loads(d)["query"]) for actor, d in events] == [
        ("yamada", "staff:county:13001(chiyoda)", "会員番号13***01の会員情報"),
        ("yamada", "staff:county:13001(chiyoda)", "会員番号27***01の会員情報")]
    audit_section = agent.get(f"/desk/tickets/{number}").text
    assert "記録を照会（問い合わせ者の権限で）" in audit_section


def test_an_anonymous_askers_ticket_allows_no_lookup(app):
    from tests.desk_support import conversation

    user = app.test_client()
    cid, headers = conversation(user, "ぴよぴよほげほげ")
    number = user.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers).json["ticket"]["number"]
    agent = app.test_client()
    sign_in(agent)
    page = lookup(agent, number, "会員番号1300001の会員情報").text
    result = page[page.index('class="lookup-result"'):]
    result = result[:result.index("</div>")]
    assert "山田" not in result and "1300001" not in result
    assert "該当する記録が見つからないか、閲覧する権限がありません。" in result


def test_agent_commands(tmp_path):
    from handlers.cli.main import cli

    runner = CliRunner()
    base = ["--instance", str(tmp_path / "i"), "agent"]
    added = runner.invoke(cli, [*base, "add", "Yamada", "--name", "運営事務局 山田", "--password", AGENT_PASSWORD])
    assert added.exit_code == 0 and added.output == "追加しました: yamada（運営事務局 山田）\n"
    again = runner.invoke(cli, [*base, "add", "yamada", "--name", "山田", "--password", AGENT_PASSWORD])
    assert again.exit_code == 1 and "既に登録されています" in again.output
    short = runner.invoke(cli, [*base, "add", "sato", "--name", "佐藤", "--password", "short"])
    assert short.exit_code == 1 and "10文字以上" in short.output
    listed = json.loads(runner.invoke(cli, [*base, "list", "--json"]).output)
    assert [(a["login_id"], a["display_name"], a["demo"]) for a in listed] == [("yamada", "運営事務局 山田", False)]
    assert runner.invoke(cli, [*base, "passwd", "yamada", "--password", "new-password-2026"]).exit_code == 0
    demo = runner.invoke(cli, [*base, "demo"])
    password = re.search(r"ログインID: demo-desk  パスワード: (\S+)", demo.output).group(1)
    assert demo.exit_code == 0 and len(password) >= 10
    assert runner.invoke(cli, [*base, "demo"]).output == demo.output  # the same password on every start
    removed = runner.invoke(cli, [*base, "remove", "yamada"])
    assert removed.exit_code == 0
    gone = runner.invoke(cli, [*base, "remove", "yamada"])
    assert gone.exit_code == 1 and "登録されていません" in gone.output
    for sub in ("add", "list", "remove", "passwd", "demo"):
        assert runner.invoke(cli, [*base, sub, "--help"]).output.strip()


def test_a_changed_password_or_removed_agent_ends_the_session(tmp_path):
    from bot import Store
    from bot.accounts.agents import AgentAccounts
    from handlers.web.app import create_app

    instance = build_instance(tmp_path / "i")
    add_agents(instance)
    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True})
    agent = app.test_client()
    sign_in(agent)
    assert agent.get("/desk/").status_code == 200
    store = Store(instance.helpdesk_db)
    AgentAccounts(store).set_password("yamada", "another-password-1")
    assert agent.get("/desk/").status_code == 303
    sign_in(agent, "sato")
    AgentAccounts(store).remove("sato")
    assert agent.get("/desk/").status_code == 303
    store.close()
    app.extensions["helpdesk"].close()
    shutil.rmtree(tmp_path / "i")

"""The operations desk over the real app (Flask test client, real SQLite): handoff API, console, replies.

Browser, SIGKILL and concurrency tests are in test_desk_browser.py and test_desk_server.py.
"""
from __future__ import annotations

import re
import sqlite3

import pytest

from tests.conftest import build_instance
from tests.desk_support import AGENT_PASSWORD, add_agents, body, conversation, csrf_of, sign_in

UNANSWERABLE = "ぴよぴよほげほげ"


@pytest.fixture
def desk_app(app, instance):
    """The app of tests/conftest.py, with the agents of tests/desk_support.py."""
    add_agents(instance)
    return app


@pytest.fixture
def client(desk_app):
    return desk_app.test_client()


@pytest.fixture
def agent(desk_app):
    """A second client, signed in as the agent yamada."""
    c = desk_app.test_client()
    assert sign_in(c).status_code == 303
    return c


def db(app):
    conn = sqlite3.connect(app.extensions["helpdesk"].instance.helpdesk_db)
    conn.row_factory = sqlite3.Row
    return conn


def state_of(app, cid):
    return db(app).execute("SELECT state FROM conversations WHERE id = ?", (cid,)).fetchone()[0]


def form(client, path, data, page=None):
    token = csrf_of(client.get(page or "/desk/").text)
    return client.post(path, data={**data, "csrf_token": token})


def test_handoff_makes_one_ticket_with_the_redacted_conversation(client, desk_app):
    cid, headers = conversation(client, "会員番号1234567の先生の送付先を知りたい", UNANSWERABLE)
    first = client.post(f"/api/conversations/{cid}/handoff", json={"note": "至急お願いします"}, headers=headers)
    again = client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert body(first)["ticket"] == body(again)["ticket"] == {
        "number": 1001, "state": "new", "created_at": "2026-11-25T10:00:00+09:00"}
    assert "お問い合わせ番号 #1001" in body(first)["message"]
    row = db(desk_app).execute("SELECT * FROM tickets").fetchall()
    assert len(row) == 1
    ticket = row[0]
    assert "1234567" not in ticket["transcript"] and "12***67" in ticket["transcript"]
    assert UNANSWERABLE in ticket["unfound"]
    assert (ticket["channel"], ticket["asker_role"], ticket["note"], ticket["reason"]) == (
        "web", "anonymous", "至急お願いします", "api")
    assert state_of(desk_app, cid) == "waiting_desk"


def test_handoff_needs_the_conversation_token(client):
    cid, _headers = conversation(client, "こんにちは")
    response = client.post(f"/api/conversations/{cid}/handoff", json={}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 404
    assert body(response)["error"]["code"] == "conversation_not_found"


def test_a_note_that_is_not_text_is_refused_in_japanese(client):
    cid, headers = conversation(client, "こんにちは")
    response = client.post(f"/api/conversations/{cid}/handoff", json={"note": 5}, headers=headers)
    assert response.status_code == 422
    assert "「note」" in body(response)["error"]["message"]


def test_agent_reply_claims_the_ticket_and_reaches_the_poll(client, agent, desk_app):
    cid, headers = conversation(client, UNANSWERABLE)
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    last_id = body(client.get(f"/api/conversations/{cid}/messages", headers=headers))[-1]["id"]
    assert body(client.get(f"/api/conversations/{cid}/messages?after={last_id}", headers=headers)) == []

    sent = form(agent, "/desk/tickets/1001/messages", {"text": "<b>確認します</b>", "action": "reply"},
                "/desk/tickets/1001")
    assert sent.status_code == 303

    news = body(client.get(f"/api/conversations/{cid}/messages?after={last_id}", headers=headers))
    assert [(m["role"], m["text"], m["author"]) for m in news] == [("agent", "<b>確認します</b>", "運営事務局 山田")]
    assert "yamada" not in str(news)
    ticket = db(desk_app).execute("SELECT state, assignee, first_response_at FROM tickets").fetchone()
    assert tuple(ticket) == ("pending", "yamada", "2026-11-25T10:00:00+09:00")
    assert state_of(desk_app, cid) == "with_agent"
    page = agent.get("/desk/tickets/1001").text
    assert "&lt;b&gt;確認します&lt;/b&gt;" in page and "<b>確認します</b>" not in page


def test_a_bad_after_is_refused(client):
    cid, headers = conversation(client, "こんにちは")
    response = client.get(f"/api/conversations/{cid}/messages?after=abc", headers=headers)
    assert response.status_code == 422 and body(response)["error"]["code"] == "invalid_field"


def test_while_the_desk_holds_it_the_bot_is_silent_and_messages_go_to_the_ticket(client, agent, desk_app):
    cid, headers = conversation(client, UNANSWERABLE)
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    first = client.post(f"/api/conversations/{cid}/messages", json={"text": "ログインできない"}, headers=headers)
    second = client.post(f"/api/conversations/{cid}/messages", json={"text": "至急です"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert body(first)["reply"]["text"] == "担当者にお伝えしました。返信をお待ちください。"
    assert body(second)["reply"] is None
    page = agent.get("/desk/tickets/1001").text
    assert "ログインできない" in page and "至急です" in page
    events = [r[0] for r in db(desk_app).execute("SELECT kind FROM ticket_events ORDER BY id")]
    assert events == ["created", "user_message", "acknowledged", "user_message"]


def test_an_internal_note_never_reaches_the_user(client, agent):
    cid, headers = conversation(client, UNANSWERABLE)
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    assert form(agent, "/desk/tickets/1001/messages", {"text": "社内確認中", "action": "note"},
                "/desk/tickets/1001").status_code == 303
    assert "社内確認中" not in str(body(client.get(f"/api/conversations/{cid}/messages", headers=headers)))
    page = agent.get("/desk/tickets/1001").text
    assert re.search(r'class="msg msg-note">.*?社内確認中', page, re.S)


def test_resolving_hands_the_conversation_back_to_the_bot(client, agent, desk_app):
    cid, headers = conversation(client, UNANSWERABLE)
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    form(agent, "/desk/tickets/1001/messages", {"text": "こちらの手順で解決します", "action": "reply"}, "/desk/tickets/1001")
    assert form(agent, "/desk/tickets/1001/state", {"to": "resolve"}, "/desk/tickets/1001").status_code == 303
    assert state_of(desk_app, cid) == "closed"
    r = client.post(f"/api/conversations/{cid}/messages", json={"text": "日医ニュースの送付先を変更したい"}, headers=headers)
    assert body(r)["reply"]["kind"] in ("answer", "choices")
    assert state_of(desk_app, cid) == "bot"
    # Asking again after that makes a new ticket, not the old one.
    again = client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    assert again.status_code == 201 and body(again)["ticket"]["number"] == 1002


def test_reopen_gives_the_conversation_back_to_the_desk(client, agent, desk_app):
    cid, headers = conversation(client, UNANSWERABLE)
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    form(agent, "/desk/tickets/1001/state", {"to": "resolve"}, "/desk/tickets/1001")
    assert form(agent, "/desk/tickets/1001/state", {"to": "reopen"}, "/desk/tickets/1001").status_code == 303
    assert state_of(desk_app, cid) == "waiting_desk"
    states = [tuple(r) for r in db(desk_app).execute(
        "SELECT json_extract(detail, '$.from'), json_extract(detail, '$.to') FROM ticket_events WHERE kind = 'state'")]
    assert states == [("new", "resolved"), ("resolved", "open")]


def test_replying_to_a_resolved_ticket_is_refused_and_the_draft_kept(client, agent):
    cid, headers = conversation(client, UNANSWERABLE)
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    form(agent, "/desk/tickets/1001/state", {"to": "resolve"}, "/desk/tickets/1001")
    r = form(agent, "/desk/tickets/1001/messages", {"text": "追伸です", "action": "reply"}, "/desk/tickets/1001")
    assert r.status_code == 422 and "解決済み" in r.text


def test_an_empty_reply_is_refused_in_japanese(client, agent):
    cid, headers = conversation(client, UNANSWERABLE)
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    r = form(agent, "/desk/tickets/1001/messages", {"text": "   ", "action": "reply"}, "/desk/tickets/1001")
    assert r.status_code == 422 and "本文を入力してください。" in r.text


def test_every_console_form_needs_its_csrf_token(client, agent, desk_app):
    cid, headers = conversation(client, UNANSWERABLE)
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    for path, data in [("/desk/tickets/1001/messages", {"text": "x", "action": "reply"}),
                       ("/desk/tickets/1001/assign", {"assignee": "me"}),
                       ("/desk/tickets/1001/priority", {"priority": "high"}),
                       ("/desk/tickets/1001/state", {"to": "resolve"}),
                       ("/desk/tickets/1001/lookup", {"query": "会員番号1300001"}),
                       ("/desk/logout", {})]:
        r = agent.post(path, data=data)
        assert r.status_code == 400, path
        assert "送信内容を確認できませんでした" in r.text
    ticket = db(desk_app).execute("SELECT state, assignee, priority FROM tickets").fetchone()
    assert tuple(ticket) == ("new", None, "normal")
    assert db(desk_app).execute("SELECT count(*) FROM messages WHERE role = 'agent'").fetchone()[0] == 0


def test_sign_in_refuses_a_wrong_password_with_one_sentence(desk_app):
    c = desk_app.test_client()
    wrong = sign_in(c, "yamada", "wrong-password")
    unknown = sign_in(c, "nobody", AGENT_PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "ログインIDまたはパスワードが正しくありません。" in wrong.text and "ログインIDまたはパスワードが正しくありません。" in unknown.text


def test_signed_out_the_console_sends_you_to_sign_in(desk_app):
    r = desk_app.test_client().get("/desk/tickets/1001")
    assert r.status_code == 303 and r.headers["Location"].startswith("/desk/login?next=/desk/tickets/1001")


def test_signing_out_of_the_console_makes_a_copied_cookie_worthless(desk_app, agent):
    """The session ends on the server: a copy of the cookie taken before signing out opens nothing."""
    copy = desk_app.test_client()
    copy.set_cookie("mamis_helpdesk_session", agent.get_cookie("mamis_helpdesk_session").value)
    assert copy.get("/desk/").status_code == 200
    assert form(agent, "/desk/logout", {}).status_code == 303
    assert copy.get("/desk/").status_code == 303


def test_agent_passwd_and_remove_end_the_agents_sessions(desk_app, agent):
    from bot import Store
    from bot.accounts.agents import AgentAccounts

    assert agent.get("/desk/").status_code == 200
    store = Store(desk_app.extensions["helpdesk"].instance.helpdesk_db)
    try:
        AgentAccounts(store).set_password("yamada", "a-new-password-123")
        assert agent.get("/desk/").status_code == 303
        assert sign_in(agent, "yamada", "a-new-password-123").status_code == 303
        assert agent.get("/desk/").status_code == 200
        AgentAccounts(store).remove("yamada")
        assert agent.get("/desk/").status_code == 303
    finally:
        store.close()


def test_a_staff_session_does_not_open_the_console(tmp_path):
    """Desk agents are accounts of their own: a secretariat's staff login is not an agent."""
    from handlers.web.app import create_app
    from tests.staff import PASSWORD

    instance = build_instance(tmp_path / "i")
    from bot import Store
    from bot.accounts.staff import StaffAccounts

    store = Store(instance.helpdesk_db)
    StaffAccounts(store).add("chiyoda", "千代田区医師会 事務局", "county", "13001", PASSWORD, "2026-11-25T09:00:00+09:00")
    store.close()
    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True})
    c = app.test_client()
    assert sign_in(c, "chiyoda", PASSWORD).status_code == 401
    app.extensions["helpdesk"].close()


def test_an_expired_agent_session_must_sign_in_again(tmp_path):
    """DESK_SESSION_MINUTES after sign-in (5 here) the session ends; the test moves its sign-in time back."""
    from handlers.web.app import create_app

    instance = build_instance(tmp_path / "i")
    add_agents(instance)
    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True, "DESK_SESSION_MINUTES": 5})
    c = app.test_client()
    assert sign_in(c).status_code == 303
    token = csrf_of(c.get("/desk/").text)
    with c.session_transaction() as session:
        session["desk_since"] -= 4 * 60
    assert c.get("/desk/").status_code == 200  # four minutes in: still signed in
    with c.session_transaction() as session:
        session["desk_since"] -= 61
    page = c.get("/desk/")
    assert page.status_code == 303 and "expired=1" in page.headers["Location"]
    assert "ログインの有効期限が切れました" in c.get(page.headers["Location"]).text
    cid, headers = conversation(c, UNANSWERABLE)
    c.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    r = c.post("/desk/tickets/1001/messages", data={"text": "x", "action": "reply", "csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"] == "/desk/login"  # already signed out above
    assert db(app).execute("SELECT count(*) FROM messages WHERE role = 'agent'").fetchone()[0] == 0
    polled = c.get("/desk/queue/rows", headers={"X-Requested-With": "fetch"})
    assert polled.status_code == 401
    app.extensions["helpdesk"].close()


def test_queue_filters_counts_and_title(client, agent):
    for text in (UNANSWERABLE, "ふがふが", "もげもげ"):
        cid, headers = conversation(client, text)
        client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    form(agent, "/desk/tickets/1002/assign", {"assignee": "sato"}, "/desk/tickets/1002")
    page = agent.get("/desk/").text
    assert "<title>(2) 問い合わせ一覧" in page
    assert re.findall(r'href="/desk/tickets/(\d+)"', page) == ["1003", "1002", "1001"]
    mine = agent.get("/desk/?assignee=sato").text
    assert re.findall(r'href="/desk/tickets/(\d+)"', mine) == ["1002"]
    none = body(agent.get("/desk/queue/rows?assignee=none", headers={"X-Requested-With": "fetch"}))
    assert re.findall(r'href="/desk/tickets/(\d+)"', none["rows"]) == ["1003", "1001"]
    assert (none["counts"]["new"], none["counts"]["open"], none["new"]) == (2, 0, 2)
    old = agent.get("/desk/?age=24h").text
    assert "該当する問い合わせはありません。" in old
    assert "該当する問い合わせはありません。" in agent.get("/desk/?channel=telegram").text
    assert agent.get("/desk/?state=bogus&page=x&association=<script>").status_code == 200


def test_priority_assignment_and_audit_log(client, agent, desk_app):
    cid, headers = conversation(client, UNANSWERABLE)
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    form(agent, "/desk/tickets/1001/priority", {"priority": "urgent"}, "/desk/tickets/1001")
    form(agent, "/desk/tickets/1001/assign", {"assignee": "me"}, "/desk/tickets/1001")
    events = [tuple(r) for r in db(desk_app).execute("SELECT actor, kind FROM ticket_events ORDER BY id")]
    assert events == [("user", "created"), ("yamada", "priority"), ("yamada", "assign"), ("yamada", "state")]
    page = agent.get("/desk/tickets/1001").text
    audit = page[page.index('id="h-audit"'):]
    assert "通常 → 緊急" in audit and "未割り当て → 運営事務局 山田" in audit and "新規 → 対応中" in audit
    assert form(agent, "/desk/tickets/1001/assign", {"assignee": "ghost"}, "/desk/tickets/1001").status_code == 422


def test_an_unknown_ticket_is_a_japanese_404(agent):
    r = agent.get("/desk/tickets/999999")
    assert r.status_code == 404 and "ページが見つかりません" in r.text


def test_outside_business_hours_the_user_is_told_when_and_the_free_dial(tmp_path):
    """2026-11-23 is 勤労感謝の日, a public holiday (a Monday): the desk opens on Tuesday at 9:00."""
    from handlers.web.app import create_app

    instance = build_instance(tmp_path / "i", {"NOW": "2026-11-23T10:00:00+09:00"})
    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True})
    c = app.test_client()
    cid, headers = conversation(c, UNANSWERABLE)
    message = body(c.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers))["message"]
    assert "祝日（勤労感謝の日）" in message and "11月24日（火）9:00以降" in message and "0120-110-030" in message
    app.extensions["helpdesk"].close()


def test_inside_business_hours_no_notice(client):
    cid, headers = conversation(client, UNANSWERABLE)
    message = body(client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers))["message"]
    assert "受付時間外" not in message

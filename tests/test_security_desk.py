"""The desk console hardened (issue 19): sessions that end on the server whichever sign-in clears the
cookie, a per-login-id sign-in limit, a fresh CSRF token at sign-in, no redirect to the request's Host,
and a Japanese 4xx (never a 500) for numbers and paths that only look valid. Real app, real SQLite."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from tests.desk_support import AGENT_PASSWORD, add_agents, body, conversation, csrf_of, sign_in, telegram_ticket

COOKIE = "mamis_helpdesk_session"
STAFF_PASSWORD = "correct-horse-battery-13"


@pytest.fixture
def desk_app(app, instance):
    """The app of tests/conftest.py, with the agents of tests/desk_support.py and one staff account."""
    from bot import Store
    from bot.accounts.staff import StaffAccounts

    add_agents(instance)
    store = Store(instance.helpdesk_db)
    try:
        StaffAccounts(store).add("chiyoda", "千代田区医師会 事務局", "county", "13001", STAFF_PASSWORD,
                                 "2026-11-25T09:00:00+09:00")
    finally:
        store.close()
    return app


@pytest.fixture
def agent(desk_app):
    c = desk_app.test_client()
    assert sign_in(c).status_code == 303
    return c


def copy_of(app, client):
    """A second browser holding a copy of `client`'s cookie, as a thief would."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def open_agent_sessions(app) -> int:
    import sqlite3

    conn = sqlite3.connect(app.extensions["helpdesk"].instance.helpdesk_db)
    try:
        return conn.execute("SELECT count(*) FROM account_sessions AS s JOIN accounts AS a ON a.id = s.account_id "
                            "WHERE a.role = 'desk' AND s.ended_at IS NULL").fetchone()[0]
    finally:
        conn.close()


# -- 11: staff sign-in or sign-out in the same browser ends the desk session on the server -----------------


def staff_sign_in(client):
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"csrf_token": token, "login_id": "chiyoda", "password": STAFF_PASSWORD})
    assert r.status_code == 303


def staff_sign_out(client):
    token = csrf_of(client.get("/desk/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303


@pytest.mark.parametrize("staff_action", [staff_sign_in, staff_sign_out], ids=["staff sign-in", "staff sign-out"])
def test_a_staff_sign_in_or_out_in_the_same_browser_ends_the_desk_session(desk_app, agent, staff_action):
    thief = copy_of(desk_app, agent)
    assert thief.get("/desk/").status_code == 200 and open_agent_sessions(desk_app) == 1
    staff_action(agent)
    assert agent.get("/desk/").status_code == 303  # this browser is signed out of the console
    assert thief.get("/desk/").status_code == 303  # and so is every copy of its cookie
    assert open_agent_sessions(desk_app) == 0


def test_an_ended_staff_session_ends_the_desk_session_beside_it(desk_app, agent):
    """A staff session ended elsewhere (`helpdesk staff signout`) empties the cookie on the next request:
    the agent's session in it is ended on the server too, not only forgotten by this browser."""
    from bot import Store
    from bot.accounts.staff import StaffAccounts

    staff_sign_in(agent)
    assert sign_in(agent).status_code == 303
    thief = copy_of(desk_app, agent)
    store = Store(desk_app.extensions["helpdesk"].instance.helpdesk_db)
    try:
        StaffAccounts(store).end_sessions("chiyoda", datetime.now(timezone.utc))
    finally:
        store.close()
    agent.get("/api/session")
    assert thief.get("/desk/").status_code == 303 and open_agent_sessions(desk_app) == 0


# -- 12: a per-login-id limit on the desk sign-in ----------------------------------------------------------


def test_desk_sign_in_is_limited_per_login_id_whatever_the_address(tmp_path):
    from handlers.web.app import create_app
    from tests.conftest import build_instance

    instance = build_instance(tmp_path / "i", {"SIGN_IN_ID_RATE_LIMIT": "3 per minute",
                                               "SIGN_IN_RATE_LIMIT": "100 per minute"})
    add_agents(instance)
    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True})
    try:
        client = app.test_client()
        for n in range(3):  # a new address for every guess does not help
            client.environ_base["REMOTE_ADDR"] = f"10.0.0.{n + 1}"
            assert sign_in(client, password="guess").status_code == 401
        client.environ_base["REMOTE_ADDR"] = "10.0.0.9"
        refused = sign_in(client)  # even the right password now waits
        assert refused.status_code == 429
        assert "ログインの試行回数が上限に達しました。しばらく待ってからもう一度お試しください。" in refused.text
        assert sign_in(client, "sato").status_code == 303  # another agent is not locked out
    finally:
        app.extensions["helpdesk"].close()


# -- 13: the CSRF token is rotated at the desk sign-in -----------------------------------------------------


def test_the_csrf_token_from_before_the_desk_sign_in_is_spent(desk_app):
    client = desk_app.test_client()
    before = csrf_of(client.get("/desk/login").text)
    r = client.post("/desk/login", data={"login_id": "yamada", "password": AGENT_PASSWORD, "csrf_token": before})
    assert r.status_code == 303
    after = csrf_of(client.get("/desk/").text)
    assert after != before
    # A form planted with the token an attacker saw before sign-in is refused.
    refused = client.post("/desk/tickets/1001/messages", data={"text": "x", "csrf_token": before})
    assert refused.status_code == 400


# -- 14: never a redirect to the request's Host ------------------------------------------------------------


EVIL = "evil.example"


def at_evil_host(app, client=None):
    """A browser that names `Host: evil.example`, with `client`'s cookie (the test client sends a cookie
    only to the host it was set for)."""
    browser = app.test_client()
    if client is not None:
        browser.set_cookie(COOKIE, client.get_cookie(COOKIE).value, domain=EVIL)
    return browser


@pytest.mark.parametrize("path", ["/desk", "/desk/insights", "/desk/login", "/desk/tickets/1001"])
@pytest.mark.parametrize("signed_in", [True, False], ids=["agent", "signed out"])
def test_no_redirect_names_the_requests_host(desk_app, agent, path, signed_in):
    r = at_evil_host(desk_app, agent if signed_in else None).get(f"http://{EVIL}{path}")
    assert r.status_code in (200, 302, 303, 404)
    location = r.headers.get("Location", "")
    assert EVIL not in location
    assert location == "" or location.startswith("/")
    if signed_in and path in ("/desk", "/desk/insights"):
        assert r.status_code == 200


def test_the_article_link_picker_never_uses_the_requests_host(desk_app, agent):
    client = desk_app.test_client()
    cid, headers = conversation(client, "ぴよぴよほげほげ")
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    page = at_evil_host(desk_app, agent).get(f"http://{EVIL}/desk/tickets/1001").text
    links = re.findall(r'<option value="[^"]*: (http[^"]*)"', page)
    assert links and not any("evil.example" in link for link in links)
    assert all(link.startswith("http://127.0.0.1:8000/kb/") for link in links)


# -- 15: numbers and paths that only look valid are a Japanese 4xx -----------------------------------------


def test_a_superscript_after_is_refused_in_japanese(desk_app):
    client = desk_app.test_client()
    cid, headers = conversation(client, "こんにちは")
    r = client.get(f"/api/conversations/{cid}/messages?after=²", headers=headers)
    assert r.status_code == 422 and body(r)["error"]["code"] == "invalid_field"
    assert "0以上の整数" in body(r)["error"]["message"]


@pytest.mark.parametrize("button", ["choice:²", "choice:١", "choice:99999999999999999999999"])
def test_a_choice_that_only_looks_like_a_number_is_a_stale_button(desk_app, button):
    from bot.conversation.phrases import STALE_BUTTON_TEXT

    client = desk_app.test_client()
    cid, headers = conversation(client, "こんにちは")
    r = client.post(f"/api/conversations/{cid}/messages", json={"button": button}, headers=headers)
    assert r.status_code == 201 and body(r)["reply"]["text"] == STALE_BUTTON_TEXT


@pytest.mark.parametrize("path", ["/desk/tickets/9223372036854775808", "/desk/tickets/99999999999999999999",
                                  "/desk/tickets/9223372036854775807"])
def test_a_ticket_number_beyond_any_ticket_is_a_japanese_404(agent, path):
    r = agent.get(path)
    assert r.status_code == 404 and "お探しのページは見つかりませんでした" in r.text


def test_a_feedback_id_beyond_any_message_is_a_japanese_404(desk_app):
    r = desk_app.test_client().post("/api/messages/9223372036854775808/feedback", json={"helpful": True})
    assert r.status_code == 404 and body(r)["error"]["message"]


@pytest.mark.parametrize("target", ["/desk/\r\nSet-Cookie: x=1", "/desk/\tX", "/desk/\x7f"])
def test_a_next_with_control_characters_goes_to_the_queue(desk_app, agent, target):
    r = agent.get("/desk/login", query_string={"next": target})
    assert r.status_code == 302 and r.headers["Location"] == "/desk/"
    fresh = desk_app.test_client()
    token = csrf_of(fresh.get("/desk/login").text)
    r = fresh.post("/desk/login", data={"login_id": "yamada", "password": AGENT_PASSWORD, "csrf_token": token,
                                        "next": target})
    assert r.status_code == 303 and r.headers["Location"] == "/desk/"


def test_none_of_them_logs_an_error(desk_app, agent, caplog):
    """Each used to be an unhandled error, logged with the request's path (which may hold what a user typed)."""
    client = desk_app.test_client()
    cid, headers = conversation(client, "こんにちは")
    client.get(f"/api/conversations/{cid}/messages?after=²", headers=headers)
    client.post(f"/api/conversations/{cid}/messages", json={"button": "choice:²"}, headers=headers)
    agent.get("/desk/tickets/9223372036854775808")
    agent.get("/desk/login", query_string={"next": "/desk/\r\nX: 1"})
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


# -- 10: a reply for Telegram is counted as Telegram counts, and a group ticket says so --------------------


def reply_form(agent, number: int, text: str, action: str = "reply"):
    token = csrf_of(agent.get(f"/desk/tickets/{number}").text)
    return agent.post(f"/desk/tickets/{number}/messages", data={"text": text, "action": action, "csrf_token": token})


def test_a_telegram_reply_over_one_message_is_refused_in_japanese_with_the_draft_kept(desk_app, agent, instance):
    from bot.conversation.text import utf16_len

    number = telegram_ticket(instance, 3001)
    header = "【運営事務局 山田（MAMIS運営事務局）】\n"
    limit = 4096 - utf16_len(header)
    too_long = "了解しました😀" * 557 + "。"  # 3,900 characters, 4,457 UTF-16 units: under 4,000 characters
    assert len(too_long) == 3900 and utf16_len(too_long) > limit
    page = agent.get(f"/desk/tickets/{number}").text
    assert f'data-limit="{limit}" data-count="utf16"' in page and 'maxlength=' not in page.split('id="reply-text"')[1][:80]
    refused = reply_form(agent, number, too_long)
    assert refused.status_code == 422
    assert (f"Telegram に送る返信は1通{limit}文字までです（絵文字などは2文字と数えます）。いまは{utf16_len(too_long)}文字です。"
            in refused.text)
    assert too_long in refused.text  # the draft is kept
    # Exactly one Telegram message is fine, however many lines the form sent as CR LF.
    fits = "\r\n".join(["😀" * 9] * 200)  # 200 lines of 18 units, 199 line ends: 3,799 units as LF
    assert utf16_len(fits.replace("\r\n", "\n")) <= limit < utf16_len(fits) + 200
    assert reply_form(agent, number, fits).status_code == 303
    # A note never goes to Telegram: the 4,000-character rule only.
    assert reply_form(agent, number, too_long, action="note").status_code == 303


def test_a_web_ticket_keeps_its_4000_character_rule(desk_app, agent):
    client = desk_app.test_client()
    cid, headers = conversation(client, "ぴよぴよほげほげ")
    client.post(f"/api/conversations/{cid}/handoff", json={}, headers=headers)
    assert 'data-limit="4000" data-count="chars"' in agent.get("/desk/tickets/1001").text
    assert reply_form(agent, 1001, "😀" * 3000).status_code == 303


def test_a_ticket_from_a_telegram_group_warns_that_the_group_reads_the_reply(desk_app, agent, instance):
    group = telegram_ticket(instance, -1001234567890)
    private = telegram_ticket(instance, 3002)
    warning = "この問い合わせは Telegram のグループから届きました。返信はグループの全員に表示されます。"
    page = agent.get(f"/desk/tickets/{group}").text
    assert warning in page and "Telegram（グループ：返信は全員に表示されます）" in page
    assert warning not in agent.get(f"/desk/tickets/{private}").text


def test_a_ticket_whose_chat_was_linked_again_says_so_and_refuses_a_reply_with_the_draft_kept(desk_app, agent,
                                                                                              instance):
    """The chat's account was linked to another member since the handover: its conversation no longer has
    the chat (bot/conversation/core.py new_conversation_for_chat), and a reply would reach someone else."""
    from bot import Store

    number = telegram_ticket(instance, 3003)
    warning = "この Telegram のアカウントは、その後別の会員として連携し直されました。"
    assert warning not in agent.get(f"/desk/tickets/{number}").text
    store = Store(instance.helpdesk_db)
    store.detach_chat("telegram", "3003")
    store.close()
    assert warning in agent.get(f"/desk/tickets/{number}").text
    refused = reply_form(agent, number, "先生、ご確認ください")
    assert refused.status_code == 409 and warning in refused.text and "先生、ご確認ください" in refused.text
    assert reply_form(agent, number, "再連携のため返信不可", action="note").status_code == 303

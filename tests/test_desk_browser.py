"""The desk in Debian's Chromium: a signed-in secretariat escalates in the widget, an agent answers in the
console, the widget shows the answer without a reload, and the console's pages pass axe-core. A real
server (gunicorn) serves both."""
from __future__ import annotations

import re

import httpx
import pytest

from tests.browser import (IFRAME, PANEL, format_violations, launch_chromium, new_page, run_axe,
                           serious_violations)
from tests.desk_support import AGENT_PASSWORD, add_agents, telegram_ticket

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

STAFF_PASSWORD = "correct-horse-battery-13"
NOT_FOUND = "ラーメンのおすすめ"


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(live_server_factory):
    def prepare(instance):
        from bot import Store
        from bot.accounts.staff import StaffAccounts

        add_agents(instance)
        store = Store(instance.helpdesk_db)
        StaffAccounts(store).add("chiyoda", "千代田区医師会 事務局（テスト）", "county", "13001", STAFF_PASSWORD,
                                 "2026-11-25T09:00:00+09:00")
        store.close()

    return live_server_factory(prepare=prepare)


def sign_in_agent(page, server):
    page.goto(f"{server}/desk/login")
    page.get_by_label("ログインID").fill("yamada")
    page.get_by_label("パスワード").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("heading", name="問い合わせ一覧")).to_be_visible()


def escalate_as_staff(page, server):
    """Staff sign in, open the widget, ask something the knowledge base lacks, and ask for a person."""
    page.goto(f"{server}/login")
    page.get_by_label("ログインID").fill("chiyoda")
    page.get_by_label("パスワード").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    # Signing in comes back to the demo page with the chat already open (no launcher click: it would
    # close the panel again).
    expect(page).to_have_url(f"{server}/")
    expect(page.locator(PANEL)).to_be_visible()
    frame = page.frame_locator(IFRAME)
    expect(frame.locator("#account-status")).to_contain_text("職員ログイン中")
    bots = frame.locator(".msg-bot:not(.msg-welcome)")
    frame.locator("#input").fill(NOT_FOUND)
    frame.locator("#input").press("Enter")
    expect(bots).to_have_count(1, timeout=20_000)  # the first answer of a fresh worker loads the analyser
    bots.last.get_by_role("button", name="担当者に問い合わせる").click()
    expect(bots).to_have_count(2)
    expect(bots.last).to_contain_text("担当者にお問い合わせを送りますか")
    bots.last.get_by_role("button", name="担当者に問い合わせる").click()
    expect(bots).to_have_count(3)
    expect(bots.last).to_contain_text("お問い合わせ番号 #")
    number = re.search(r"#(\d+)", bots.last.inner_text()).group(1)
    conversation = next(f for f in page.frames if "/widget/frame" in f.url).evaluate(
        "JSON.parse(localStorage.getItem('mamis-helpdesk:conversation'))")
    return frame, number, conversation


def test_staff_escalates_and_the_agent_answers_with_markup_shown_as_text(browser, server):
    user = new_page(browser)
    frame, number, conversation = escalate_as_staff(user, server)

    agent = new_page(browser)
    sign_in_agent(agent, server)
    expect(agent).to_have_title(re.compile(r"^\(\d+\) 問い合わせ一覧"))
    agent.get_by_role("link", name=f"#{number}").click()
    expect(agent.get_by_role("heading", name=re.compile(f"#{number}"))).to_be_visible()
    transcript = agent.locator("section", has=agent.locator("#h-transcript"))
    expect(transcript).to_contain_text(NOT_FOUND)
    expect(agent.locator(".facts")).to_contain_text("医師会事務局の職員（千代田区医師会 事務局（テスト））")
    expect(agent.locator(".facts")).to_contain_text("千代田区医師会（13001）")

    # Insert a saved reply, then send markup: it must arrive as text.
    agent.get_by_role("button", name="定型文を挿入").click()
    expect(agent.get_by_label("本文")).to_have_value(re.compile("お問い合わせいただきありがとうございます"))
    agent.get_by_label("本文").fill('<img src=x onerror="window.pwned=1"><b>ご確認ください</b>')
    agent.get_by_role("button", name="利用者に返信する").click()
    expect(agent.locator("#done")).to_have_text("返信を送信しました。")
    expect(agent.locator(".msg-agent .msg-text")).to_have_text('<img src=x onerror="window.pwned=1"><b>ご確認ください</b>')
    assert agent.evaluate("window.pwned") is None

    # The widget shows the reply without a reload (desk-poll.js), under the agent's name, as text.
    expect(frame.locator(".msg-agent .msg-text")).to_have_text(
        '<img src=x onerror="window.pwned=1"><b>ご確認ください</b>', timeout=15_000)
    expect(frame.locator(".msg-agent")).to_contain_text("運営事務局 山田（MAMIS運営事務局）")
    expect(frame.locator(".msg-agent img")).to_have_count(0)

    # The widget's poll for news (GET …/messages?after=<last id>) carries the reply, by display name. The
    # conversation is the signed-in staff member's: asked with their session, as the widget asks.
    headers = {"Authorization": f"Bearer {conversation['token']}"}
    url = f"{server}/api/conversations/{conversation['id']}/messages"

    def poll(after=None):
        response = user.context.request.get(url + (f"?after={after}" if after is not None else ""), headers=headers)
        assert response.status == 200, response.text()
        return response.json()

    before_reply = [m for m in poll() if m["role"] != "agent"][-1]["id"]
    news = poll(before_reply)
    assert [(m["role"], m["author"], m["text"]) for m in news] == [
        ("agent", "運営事務局 山田", '<img src=x onerror="window.pwned=1"><b>ご確認ください</b>')]

    # An internal note is drawn differently and never reaches the user.
    agent.get_by_label("本文").fill("社内メモ: 千代田区に確認済み")
    agent.get_by_role("button", name="内部メモとして保存（利用者には送りません）").click()
    expect(agent.locator(".msg-note .msg-text")).to_have_text("社内メモ: 千代田区に確認済み")
    # to_have_css waits for the stylesheet of the reloaded page (a one-shot read raced it once in CI)
    expect(agent.locator(".msg-note")).to_have_css("border-style", "dashed")
    assert "社内メモ" not in str(poll())

    # Resolving hands the chat back to the bot: the widget says so, and stops asking.
    agent.get_by_role("button", name="解決済みにする").click()
    expect(agent.locator("#done")).to_contain_text("解決済みにしました")
    expect(frame.locator(".msg-bot").last).to_contain_text("担当者が対応を終了しました", timeout=15_000)
    user.context.close()
    agent.context.close()


def test_the_queue_updates_without_a_reload(browser, server):
    agent = new_page(browser)
    sign_in_agent(agent, server)
    rows = agent.locator("#queue-rows a[href^='/desk/tickets/']")
    before = rows.count()
    created = httpx.post(f"{server}/api/conversations", json={}).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    httpx.post(f"{server}/api/conversations/{created['id']}/messages", json={"text": NOT_FOUND}, headers=headers)
    number = httpx.post(f"{server}/api/conversations/{created['id']}/handoff", json={"note": "新しい問い合わせ"},
                        headers=headers).json()["ticket"]["number"]
    expect(rows).to_have_count(before + 1, timeout=15_000)
    expect(agent.get_by_role("link", name=f"#{number}")).to_be_visible()
    expect(agent).to_have_title(re.compile(r"^\(\d+\) 問い合わせ一覧"))
    agent.context.close()


@pytest.mark.parametrize("width", [1280, 360])
def test_console_pages_have_no_serious_accessibility_violations(browser, server, width):
    created = httpx.post(f"{server}/api/conversations", json={}).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    httpx.post(f"{server}/api/conversations/{created['id']}/messages", json={"text": NOT_FOUND}, headers=headers)
    number = httpx.post(f"{server}/api/conversations/{created['id']}/handoff", json={}, headers=headers).json()[
        "ticket"]["number"]
    page = new_page(browser, width=width)
    page.goto(f"{server}/desk/login")
    assert serious_violations(run_axe(page)) == [], format_violations(run_axe(page))
    sign_in_agent(page, server)
    for path in ("/desk/", f"/desk/tickets/{number}", "/desk/insights/"):
        page.goto(server + path)
        violations = serious_violations(run_axe(page))
        assert violations == [], f"{path}:\n{format_violations(violations)}"
    page.context.close()


def test_a_telegram_reply_is_counted_as_telegram_counts_and_held_back_when_too_long(browser, live_server_factory):
    """The counter counts UTF-16 units for a Telegram ticket (an emoji is two); over the limit the reply
    button is held back with a Japanese message, and a note (never sent to Telegram) is not."""
    tickets = {}

    def prepare(instance):
        add_agents(instance)
        tickets["private"] = telegram_ticket(instance, 3001)
        tickets["group"] = telegram_ticket(instance, -1001234567890)

    server = live_server_factory(prepare=prepare)
    page = new_page(browser)
    sign_in_agent(page, server)
    page.goto(f"{server}/desk/tickets/{tickets['private']}")
    box, counter = page.locator("#reply-text"), page.locator("#reply-count")
    limit = int(box.get_attribute("data-limit"))
    box.fill("😀" * 10)
    expect(counter).to_have_text(f"20 / {limit}文字（Telegram の数え方：絵文字などは2文字）")
    box.fill("了解しました😀" * 557 + "。")  # 3,900 characters, 4,457 units
    expect(counter).to_contain_text(f"4457 / {limit}文字")
    expect(counter).to_contain_text("多すぎます")
    page.get_by_role("button", name="利用者に返信する").click()
    expect(page).to_have_url(f"{server}/desk/tickets/{tickets['private']}")  # nothing was sent
    assert "返信が長すぎます" in box.evaluate("el => el.validationMessage")
    page.get_by_role("button", name="内部メモとして保存（利用者には送りません）").click()
    expect(page.get_by_text("内部メモを保存しました。")).to_be_visible()

    page.goto(f"{server}/desk/tickets/{tickets['group']}")
    expect(page.locator("#group-warning")).to_contain_text("返信はグループの全員に表示されます")
    page.context.close()


@pytest.fixture(scope="module")
def desk_http(server):
    """佐藤, signed in once for the module over httpx (sign-ins per login id are rate-limited)."""
    from tests.desk_support import sign_in

    with httpx.Client(base_url=server, timeout=10) as desk:
        assert sign_in(desk, "sato").status_code == 303
        yield desk


def reply_as_agent(desk, number, text: str) -> None:
    from tests.desk_support import csrf_of

    token = csrf_of(desk.get(f"/desk/tickets/{number}").text)
    sent = desk.post(f"/desk/tickets/{number}/messages", data={"text": text, "action": "reply", "csrf_token": token})
    assert sent.status_code == 303, sent.text


def test_an_agent_reply_with_the_panel_closed_leaves_an_unread_badge_at_once(browser, server, desk_http):
    """The widget holds its request for news (?wait=): the reply shows within a second or two, and
    with the panel closed the launcher counts it, in its badge and its accessible name."""
    user = new_page(browser)
    frame, number, _ = escalate_as_staff(user, server)
    frame.locator("#input").press("Escape")  # close the panel
    expect(user.locator(PANEL)).to_be_hidden()
    user.wait_for_timeout(1000)  # the widget's held request is now waiting
    reply_as_agent(desk_http, number, "担当の山田です。確認いたします。")
    badge = user.locator("mamis-helpdesk-widget .badge")
    expect(badge).to_have_text("1", timeout=3_000)
    launcher = user.locator("mamis-helpdesk-widget .launcher")
    expect(launcher).to_have_attribute("aria-label", re.compile(r"（未読 1 件）$"))
    reply_as_agent(desk_http, number, "もう一点、ご確認ください。")
    expect(badge).to_have_text("2", timeout=3_000)
    launcher.click()
    expect(badge).to_be_hidden()
    expect(launcher).not_to_have_attribute("aria-label", re.compile("未読"))
    expect(frame.locator(".msg-agent .msg-text")).to_have_text(["担当の山田です。確認いたします。", "もう一点、ご確認ください。"])
    user.context.close()


def test_the_ticket_page_shows_the_users_answer_and_other_agents_without_a_reload(browser, server, desk_http):
    with httpx.Client(base_url=server, timeout=10) as http:
        created = http.post("/api/conversations", json={}).json()
        cid, auth = created["id"], {"Authorization": f"Bearer {created['token']}"}
        http.post(f"/api/conversations/{cid}/messages", json={"text": NOT_FOUND}, headers=auth)
        number = http.post(f"/api/conversations/{cid}/handoff", json={"note": "至急"}, headers=auth).json()["ticket"]["number"]
    agent = new_page(browser)
    sign_in_agent(agent, server)
    agent.goto(f"{server}/desk/tickets/{number}")
    expect(agent.locator("#thread .msg-bot")).to_contain_text("お問い合わせ番号")
    agent.evaluate("window.notReloaded = true")
    other = new_page(browser)
    other.context.add_cookies([{"name": c.name, "value": c.value, "url": server} for c in desk_http.cookies.jar])
    other.goto(f"{server}/desk/tickets/{number}")
    agent.wait_for_timeout(500)
    with httpx.Client(base_url=server, timeout=10) as http:
        http.post(f"/api/conversations/{cid}/messages", json={"text": "<i>補足</i>です"}, headers=auth)
    expect(agent.locator("#thread .msg-user .msg-text")).to_have_text("<i>補足</i>です", timeout=3_000)
    expect(agent.locator("#viewers")).to_have_text("運営事務局 佐藤 もこの問い合わせを開いています。")
    # Another agent's reply shows too, and the state follows (返信待ち), still without a reload.
    other.get_by_label("本文").fill("佐藤です。確認します。")
    other.get_by_role("button", name="利用者に返信する").click()
    expect(agent.locator("#thread .msg-agent .msg-text")).to_have_text("佐藤です。確認します。", timeout=3_000)
    expect(agent.locator(".facts .badge")).to_have_text("返信待ち")
    assert agent.evaluate("window.notReloaded") is True
    agent.context.close()
    other.context.close()


def test_new_question_during_a_ticket_asks_first_and_the_agents_replies_still_arrive(browser, server, desk_http):
    user = new_page(browser)
    frame, number, _ = escalate_as_staff(user, server)
    # The footer button is not dead during a ticket: it says where the request is.
    frame.locator("#escalate").click()
    expect(frame.locator(".log-info").last).to_contain_text(f"お問い合わせ #{number} は担当者に届いています")
    # 「新しい質問」 asks first; keeping the ticket changes nothing.
    frame.locator("#new-conversation").click()
    guard = frame.get_by_role("group", name="新しい質問の確認")
    expect(guard).to_contain_text(f"お問い合わせ #{number} は担当者が対応中です")
    expect(guard.get_by_role("button", name="このお問い合わせを続ける")).to_be_focused()
    guard.get_by_role("button", name="このお問い合わせを続ける").click()
    expect(guard).to_have_count(0)
    expect(frame.locator(".msg-bot").last).to_contain_text(f"お問い合わせ番号 #{number}")
    # Starting anew: the desk is told, and the agent's reply still reaches the user, marked with the
    # ticket's number, also after a reload.
    frame.locator("#new-conversation").click()
    frame.get_by_role("button", name="新しい質問を始める").click()
    expect(frame.locator(".log-info")).to_contain_text(f"お問い合わせ #{number} への担当者の返信は")
    frame.locator("#input").fill("日医ニュースの送付先を変えたい")
    frame.locator("#input").press("Enter")
    expect(frame.locator(".msg-bot:not(.msg-welcome)")).to_have_count(1, timeout=10_000)
    reply_as_agent(desk_http, number, "山田です。先ほどのお問い合わせの件です。")
    agent_msg = frame.locator(".msg-agent")
    expect(agent_msg).to_contain_text("山田です。先ほどのお問い合わせの件です。", timeout=3_000)
    expect(agent_msg).to_contain_text(f"お問い合わせ #{number} への返信")
    user.reload()
    frame = user.frame_locator(IFRAME)
    expect(frame.locator(".msg-agent")).to_contain_text("山田です。先ほどのお問い合わせの件です。", timeout=10_000)
    assert "利用者がチャットで「新しい質問」を始めました" in desk_http.get(f"/desk/tickets/{number}").text
    user.context.close()


def set_ticket_state(desk, number, to: str) -> None:
    from tests.desk_support import csrf_of

    token = csrf_of(desk.get(f"/desk/tickets/{number}").text)
    done = desk.post(f"/desk/tickets/{number}/state", data={"to": to, "csrf_token": token})
    assert done.status_code == 303, done.text


def test_the_widget_is_told_the_desks_hold_by_the_api_not_by_the_replies(browser, server, desk_http):
    """A ticket resolved and then reopened holds the chat again with no new reply to show it: the last
    reply is the desk's 「対応を終了しました」. After a reload the widget asks the server (`desk` in
    GET …/messages?include=desk) and listens, so the agent's next reply arrives without a reload, and
    the footer says where the request is."""
    user = new_page(browser)
    frame, number, _ = escalate_as_staff(user, server)
    set_ticket_state(desk_http, number, "resolve")
    expect(frame.locator(".msg-bot").last).to_contain_text("担当者が対応を終了しました", timeout=15_000)
    set_ticket_state(desk_http, number, "reopen")
    user.reload()
    frame = user.frame_locator(IFRAME)
    expect(frame.locator(".msg-bot").last).to_contain_text("担当者が対応を終了しました", timeout=10_000)
    frame.locator("#escalate").click()
    expect(frame.locator(".log-info").last).to_contain_text(f"お問い合わせ #{number} は担当者に届いています")
    reply_as_agent(desk_http, number, "再開しました。山田です。")
    expect(frame.locator(".msg-agent .msg-text")).to_have_text("再開しました。山田です。", timeout=5_000)
    user.context.close()

"""The web chat widget, driven in Debian's Chromium against a real help desk server.

Each test opens a fresh browser context (own localStorage), so conversations never leak between
tests; one Chromium serves the whole module. Waiting is done by Playwright's auto-waiting expect(),
never by sleeping.
"""
from __future__ import annotations

import re

import httpx
import pytest

from tests.browser import (  # noqa: F401 (browser: a fixture)
    IFRAME,
    LAUNCHER,
    PANEL,
    ROOT,
    StaticHost,
    browser,
    format_violations,
    host_page,
    new_page,
    run_axe,
    serious_violations,
)

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

QUESTION = "送付区分設定とは何ですか"
QUESTION_SLUG = "delivery-settings"
LONG_QUESTION = "新規開業した診療所が医療機関マスタに反映されるまで何か月かかりますか"
NOT_FOUND = "ラーメンのおすすめ"  # nothing in the knowledge base: a refusal naming the desk and its number
MESSAGES_POST = re.compile(r"/api/conversations/[^/]+/messages$")


# -- fixtures -----------------------------------------------------------------------------------------

@pytest.fixture
def page(browser):
    page = new_page(browser)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def allowed_host():
    """The association portal that ALLOWED_ORIGINS lets embed the widget; started before the server."""
    with StaticHost() as host:
        yield host


@pytest.fixture(scope="module")
def server(live_server_factory, allowed_host):
    url = live_server_factory({"ALLOWED_ORIGINS": [allowed_host.url]})
    allowed_host.html = host_page(url + "/widget.js", attrs='data-title="○○県医師会 MAMISヘルプ" data-position="left"')
    return url


# -- helpers ------------------------------------------------------------------------------------------

def open_widget(page, url):
    """Load a host page, click the launcher, and return the chat frame once its input has focus."""
    page.goto(url)
    page.locator(LAUNCHER).click()
    frame = page.frame_locator(IFRAME)
    expect(frame.locator("#input")).to_be_focused()
    return frame


def chat_frame(page):
    """The chat iframe as a Frame (for evaluate), not a FrameLocator."""
    return next(f for f in page.frames if "/widget/frame" in f.url)


def stored_conversation(page):
    return chat_frame(page).evaluate("JSON.parse(localStorage.getItem('mamis-helpdesk:conversation'))")


def history(server, conversation):
    r = httpx.get(f"{server}/api/conversations/{conversation['id']}/messages",
                  headers={"Authorization": f"Bearer {conversation['token']}"})
    assert r.status_code == 200, r.text
    return r.json()


def count_posts(page):
    """A list that grows by one for every message POST the page (or its frames) makes."""
    posts = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and MESSAGES_POST.search(r.url) else None)
    return posts


def ask(frame, text):
    """Type a question (as a paste would, no IME), send it with Enter, and wait for its answer."""
    bots = frame.locator(".msg-bot:not(.msg-welcome)")
    before = bots.count()
    frame.locator("#input").fill(text)
    frame.locator("#input").press("Enter")
    expect(bots).to_have_count(before + 1)
    return bots.nth(before)


# -- the main story: IME, answer, sources, feedback, history -----------------------------------------

def test_ime_composition_never_sends_and_the_answer_shows_its_source(page, server):
    posts = count_posts(page)
    frame = open_widget(page, server + "/")
    cdp = page.context.new_cdp_session(page)

    # Kana being converted: the IME's own Enter arrives as keydown 229 with isComposing.
    cdp.send("Input.imeSetComposition", {"text": "そうふくぶん", "selectionStart": 6, "selectionEnd": 6})
    expect(frame.locator("#input")).to_have_value("そうふくぶん")
    cdp.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", "key": "Process", "code": "Enter",
                                        "windowsVirtualKeyCode": 229, "nativeVirtualKeyCode": 229})
    cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter",
                                        "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13})
    cdp.send("Input.insertText", {"text": QUESTION})  # the IME commits the conversion
    expect(frame.locator("#input")).to_have_value(QUESTION)

    # Safari's order: compositionend, then a plain keydown Enter in the same task. Not a send either.
    chat_frame(page).evaluate("""() => {
        const input = document.getElementById('input');
        input.dispatchEvent(new CompositionEvent('compositionstart', {data: ''}));
        input.dispatchEvent(new CompositionEvent('compositionend', {data: 'か'}));
        input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', keyCode: 13, bubbles: true, cancelable: true}));
    }""")
    expect(frame.locator(".msg-user")).to_have_count(0)

    frame.locator("#input").press("Enter")
    answer = frame.locator(".msg-bot:not(.msg-welcome)").last
    expect(answer).to_be_visible()
    expect(frame.locator(".msg-user")).to_have_count(1)
    expect(frame.locator(".msg-user .msg-text")).to_have_text(QUESTION)
    assert [p.post_data_json["text"] for p in posts] == [QUESTION]
    expect(frame.locator("#input")).to_have_value("")

    link = answer.locator(".sources a").first
    expect(link).to_have_attribute("href", f"{server}/kb/{QUESTION_SLUG}")
    expect(link).to_have_attribute("target", "_blank")
    expect(answer.locator(".sources .updated").first).to_have_text(re.compile(r"^更新日 \d{4}年\d{1,2}月\d{1,2}日$"))
    expect(frame.locator("#log")).to_have_attribute("aria-live", "polite")


def test_feedback_is_stored_and_history_survives_a_reload(page, server):
    frame = open_widget(page, server + "/")
    answer = ask(frame, QUESTION)
    answer.get_by_role("button", name="役に立った", exact=True).click()
    expect(answer.get_by_role("button", name="役に立った", exact=True)).to_be_disabled()
    expect(answer.get_by_role("button", name="役に立たなかった")).to_be_disabled()
    expect(answer.locator(".feedback-thanks")).to_have_text("ご意見ありがとうございます。")

    conversation = stored_conversation(page)
    messages = history(server, conversation)
    assert [(m["role"], m["text"] if m["role"] == "user" else m.get("feedback")) for m in messages] == [
        ("user", QUESTION), ("bot", True)]

    page.reload()
    expect(page.locator(PANEL)).to_be_visible()  # it was open: it opens again, without taking focus
    frame = page.frame_locator(IFRAME)
    expect(frame.locator(".msg-user .msg-text")).to_have_text([QUESTION])
    restored = frame.locator(".msg-bot:not(.msg-welcome)")
    expect(restored).to_have_count(1)
    expect(restored.locator(".sources a").first).to_have_attribute("href", f"{server}/kb/{QUESTION_SLUG}")
    expect(restored.get_by_role("button", name="役に立った", exact=True)).to_have_attribute("aria-pressed", "true")
    assert stored_conversation(page) == conversation


def only_posts(handler):
    """A route handler for message POSTs; the history GET on the same URL goes through."""
    def route(route):
        if route.request.method == "POST":
            handler(route)
        else:
            route.continue_()
    return route


def test_unsent_message_is_kept_across_reload_and_resent_once(page, server):
    frame = open_widget(page, server + "/")
    ask(frame, "こんにちは")  # opens the conversation while the server is reachable

    page.route(MESSAGES_POST, only_posts(lambda route: route.abort("connectionrefused")))
    frame.locator("#input").fill(QUESTION)
    frame.locator("#input").press("Enter")
    unsent = frame.locator(".msg-user.is-unsent")
    expect(unsent).to_have_count(1)
    expect(unsent.locator(".unsent-label")).to_have_text("未送信")
    expect(unsent.locator(".msg-text")).to_have_text(QUESTION)
    expect(frame.locator("#typing")).to_be_hidden()

    page.reload()  # still unreachable: the message comes back from localStorage
    frame = page.frame_locator(IFRAME)
    unsent = frame.locator(".msg-user.is-unsent")
    expect(unsent.locator(".msg-text")).to_have_text(QUESTION)
    expect(frame.locator(".msg-user")).to_have_count(2)

    # Now the server stores it but the answer is lost on the way back, as when a connection drops.
    def lose_answer(route):
        route.fetch()
        route.abort("connectionreset")

    page.unroute(MESSAGES_POST)
    page.route(MESSAGES_POST, only_posts(lose_answer))
    unsent.get_by_role("button", name="再送信").click()
    expect(unsent.get_by_role("button", name="再送信")).to_be_enabled()
    expect(unsent.locator(".unsent-label")).to_have_text("未送信")

    page.unroute(MESSAGES_POST)
    posts = count_posts(page)
    unsent.get_by_role("button", name="再送信").dblclick()
    expect(frame.locator(".msg-user.is-unsent")).to_have_count(0)
    expect(frame.locator(".msg-bot:not(.msg-welcome)")).to_have_count(2)
    assert len(posts) == 1

    # Sent three times with one idempotency key: stored and answered once.
    messages = history(server, stored_conversation(page))
    assert [(m["role"], m["text"]) for m in messages if m["role"] == "user"] == [
        ("user", "こんにちは"), ("user", QUESTION)]
    assert len(messages) == 4
    assert chat_frame(page).evaluate("localStorage.getItem('mamis-helpdesk:pending')") is None


def test_message_typed_while_the_server_is_down_is_kept_and_resent_after_restart(browser, server_process):
    served = server_process().start()
    port = int(served.url.rsplit(":", 1)[1])
    page = new_page(browser)
    try:
        frame = open_widget(page, served.url + "/")
        ask(frame, "こんにちは")

        served.stop()
        frame.locator("#input").fill(QUESTION)
        frame.locator("#input").press("Enter")
        unsent = frame.locator(".msg-user.is-unsent")
        expect(unsent.locator(".unsent-label")).to_have_text("未送信")
        expect(unsent.locator(".msg-text")).to_have_text(QUESTION)

        served.start(port=port)
        unsent.get_by_role("button", name="再送信").click()
        expect(frame.locator(".msg-user.is-unsent")).to_have_count(0)
        expect(frame.locator(".msg-bot:not(.msg-welcome)")).to_have_count(2)
        messages = history(served.url, stored_conversation(page))
        assert [m["text"] for m in messages if m["role"] == "user"] == ["こんにちは", QUESTION]
    finally:
        page.context.close()


def test_double_click_on_send_sends_once(page, server):
    posts = count_posts(page)
    frame = open_widget(page, server + "/")
    frame.locator("#input").fill(QUESTION)
    frame.locator("#send").dblclick()
    expect(frame.locator(".msg-bot:not(.msg-welcome)")).to_have_count(1)
    expect(frame.locator(".msg-user")).to_have_count(1)
    assert len(posts) == 1


# -- keyboard ---------------------------------------------------------------------------------------

def test_shift_enter_makes_a_newline_and_escape_returns_focus(page, server):
    frame = open_widget(page, server + "/")
    frame.locator("#input").press_sequentially("一行目")
    frame.locator("#input").press("Shift+Enter")
    frame.locator("#input").press_sequentially("二行目")
    expect(frame.locator("#input")).to_have_value("一行目\n二行目")
    expect(frame.locator(".msg-user")).to_have_count(0)
    frame.locator("#input").press("Enter")
    expect(frame.locator(".msg-user .msg-text")).to_have_text("一行目\n二行目")
    assert frame.locator(".msg-user .msg-text").evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"

    frame.locator("#input").press("Escape")
    expect(page.locator(PANEL)).to_be_hidden()
    expect(page.locator(LAUNCHER)).to_be_focused()
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(frame.locator("#input")).to_be_focused()


def test_reply_buttons_send_their_id_and_show_a_short_text(page, server):
    """A pressed button posts its id from the reply (`button`) with its short text, which the log shows."""
    frame = open_widget(page, server + "/")
    is_post = lambda r: r.request.method == "POST" and MESSAGES_POST.search(r.url)  # noqa: E731
    with page.expect_response(is_post) as answered:
        ask(frame, NOT_FOUND)  # nothing in the knowledge base: the desk is offered
    [offer] = [a for a in answered.value.json()["reply"]["actions"] if a.get("label") == "担当者に問い合わせる"]
    with page.expect_request(lambda r: r.method == "POST" and MESSAGES_POST.search(r.url)) as pressed:
        frame.locator(".msg-bot:not(.msg-welcome)").first.get_by_role("button", name="担当者に問い合わせる").click()
    body = pressed.value.post_data_json
    shown = offer.get("echo") or offer["label"]
    if "id" in offer:
        assert (body["button"], body["text"]) == (offer["id"], shown)
    else:  # a reply from before button ids: its payload goes as the text
        assert "button" not in body and body["text"] == offer["payload"]
    expect(frame.locator(".msg-user .msg-text")).to_have_text([NOT_FOUND, body["text"]])
    expect(frame.locator(".msg-bot:not(.msg-welcome)")).to_have_count(2)

    frame.locator(".composer-actions").get_by_role("button", name="担当者に問い合わせる").click()
    expect(frame.locator(".msg-user .msg-text")).to_have_text([NOT_FOUND, body["text"], "担当者と話したい"])
    expect(frame.locator(".msg-bot:not(.msg-welcome)")).to_have_count(3)


def test_typing_indicator_while_waiting_and_unread_badge_when_closed(page, server):
    held = []
    page.route(MESSAGES_POST, only_posts(held.append))  # keep the request waiting until released
    frame = open_widget(page, server + "/")
    frame.locator("#input").fill(QUESTION)
    with page.expect_request(lambda r: r.method == "POST" and MESSAGES_POST.search(r.url)):
        frame.locator("#input").press("Enter")
    expect(frame.locator("#typing")).to_be_visible()
    expect(frame.locator("#typing")).to_have_text("回答を準備しています…")
    expect(frame.locator(".msg-user.is-sending")).to_have_count(1)

    frame.locator("#input").press("Escape")  # close the panel while the answer is on its way
    launcher = page.locator(LAUNCHER)
    expect(launcher).to_be_focused()
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("mamis-helpdesk-widget .badge")).to_have_text("1")
    expect(launcher).to_have_attribute("aria-label", "MAMIS ヘルプデスクを開く（未読 1 件）")

    launcher.click()
    expect(page.locator("mamis-helpdesk-widget .badge")).to_be_hidden()
    expect(frame.locator("#typing")).to_be_hidden()
    expect(frame.locator(".msg-bot:not(.msg-welcome)")).to_have_count(1)


def test_new_question_starts_a_fresh_conversation(page, server):
    frame = open_widget(page, server + "/")
    ask(frame, QUESTION)
    first = stored_conversation(page)
    frame.get_by_role("button", name="新しい質問").click()
    expect(frame.locator(".msg-user")).to_have_count(0)
    expect(frame.locator("#input")).to_be_focused()
    assert stored_conversation(page) is None
    ask(frame, "医療機関マスタはいつ更新されますか")
    assert stored_conversation(page)["id"] != first["id"]


def test_over_long_input_shows_the_count_and_is_refused(page, server):
    posts = count_posts(page)
    frame = open_widget(page, server + "/")
    frame.locator("#input").fill("あ" * 1990)
    expect(frame.locator("#counter")).to_have_text("残り 10 文字")
    frame.locator("#input").fill("𠮷" * 2001)  # counted in characters, not UTF-16 units
    expect(frame.locator("#counter")).to_have_text("1 文字オーバーしています（2000 文字まで）")
    frame.locator("#input").press("Enter")
    expect(frame.locator("#form-error")).to_have_text("質問は2000文字以内で入力してください（現在 2001 文字）。")
    expect(frame.locator(".msg-user")).to_have_count(0)
    assert posts == []


# -- suggestions -------------------------------------------------------------------------------------

def test_suggestions_appear_while_typing_and_answer_when_chosen(page, server):
    suggests = []
    page.on("request", lambda r: suggests.append(r.url) if "/api/suggest" in r.url else None)
    frame = open_widget(page, server + "/")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.imeSetComposition", {"text": "いりょうきかんますた", "selectionStart": 10, "selectionEnd": 10})
    cdp.send("Input.insertText", {"text": "医療機関マスタ"})

    listbox = frame.get_by_role("listbox")
    options = listbox.get_by_role("option")
    expect(options.first).to_be_visible()
    assert 1 <= options.count() <= 3
    # Nothing was looked up for the half-converted kana.
    assert suggests and all("%E3%81%84%E3%82%8A" not in u for u in suggests)

    frame.locator("#input").press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    active = options.first.get_attribute("id")
    expect(frame.locator("#input")).to_have_attribute("aria-activedescendant", active)
    chosen = options.first.locator(".suggestion-question").inner_text()
    frame.locator("#input").press("Enter")
    expect(frame.locator(".msg-user .msg-text")).to_have_text([chosen])
    expect(frame.locator(".msg-bot:not(.msg-welcome)")).to_have_count(1)
    expect(listbox).to_be_hidden()

    frame.locator("#input").press_sequentially("送付先")
    expect(options.first).to_be_visible()
    clicked = options.first.locator(".suggestion-question").inner_text()
    options.first.click()
    expect(frame.locator(".msg-user .msg-text")).to_have_text([chosen, clicked])
    expect(frame.locator(".msg-bot:not(.msg-welcome)")).to_have_count(2)
    expect(frame.locator(".msg-bot:not(.msg-welcome)").last.locator(".sources a")).not_to_have_count(0)


# -- layout --------------------------------------------------------------------------------------------

def test_fits_a_360px_phone_screen(browser, server):
    page = new_page(browser, width=360, height=640)
    try:
        frame = open_widget(page, server + "/")
        ask(frame, QUESTION + "。" + "https://example.jp/" + "a" * 200)
        box = page.locator(PANEL).bounding_box()
        assert box == {"x": 0, "y": 0, "width": 360, "height": 640}
        for f in (page.main_frame, chat_frame(page)):
            assert f.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f.url
        assert chat_frame(page).evaluate(
            "(() => { const l = document.getElementById('log'); return l.scrollWidth <= l.clientWidth; })()")
        for selector in ("#input", "#send", "#close"):
            expect(frame.locator(selector)).to_be_in_viewport()
        frame.locator("#close").click()
        expect(page.locator(PANEL)).to_be_hidden()
        expect(page.locator(LAUNCHER)).to_be_focused()
    finally:
        page.context.close()


# -- security ------------------------------------------------------------------------------------------

def test_markup_in_a_message_is_shown_as_text(page, server):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    frame = open_widget(page, server + "/")
    ask(frame, "<img src=x onerror=alert(1)>")
    expect(frame.locator(".msg-user .msg-text")).to_have_text("<img src=x onerror=alert(1)>")
    expect(frame.locator("#log img")).to_have_count(0)
    assert dialogs == []


def test_embedding_from_an_allowed_origin_works(page, server, allowed_host):
    frame = open_widget(page, allowed_host.url + "/")
    expect(frame.locator("#chat-title")).to_have_text("○○県医師会 MAMISヘルプ")
    answer = ask(frame, QUESTION)
    expect(answer.locator(".sources a").first).to_have_attribute("href", f"{server}/kb/{QUESTION_SLUG}")
    # The host page's own CSS (which hides every button and iframe) cannot reach the widget.
    expect(page.locator(LAUNCHER)).to_be_visible()
    assert page.locator(LAUNCHER).bounding_box()["x"] < 100  # data-position="left"
    assert page.locator(PANEL).bounding_box()["x"] < 100
    frame.locator("#input").press("Escape")
    expect(page.locator(LAUNCHER)).to_be_focused()


def test_embedding_from_an_origin_not_allowed_is_refused(page, server):
    with StaticHost(host_page(server + "/widget.js")) as stranger:
        page.goto(stranger.url + "/")
        page.locator(LAUNCHER).click()
        expect(page.locator(PANEL).get_by_role("alert")).to_contain_text("チャットを表示できませんでした")
        expect(page.frame_locator(IFRAME).locator("#input")).to_have_count(0)
    csp = httpx.get(server + "/widget/frame").headers["Content-Security-Policy"]
    assert "frame-ancestors" in csp and stranger.url not in csp


# -- accessibility ---------------------------------------------------------------------------------------

def test_widget_frame_has_no_serious_accessibility_violations(page, server):
    frame = open_widget(page, server + "/")
    ask(frame, QUESTION)
    frame.locator("#input").press_sequentially("送付先")
    expect(frame.get_by_role("option").first).to_be_visible()
    violations = serious_violations(run_axe(chat_frame(page)))
    assert not violations, format_violations(violations)
    violations = serious_violations(run_axe(page.main_frame))
    assert not violations, format_violations(violations)


def test_article_page_has_no_serious_accessibility_violations(page, server):
    page.goto(f"{server}/kb/{QUESTION_SLUG}")
    violations = serious_violations(run_axe(page.main_frame))
    assert not violations, format_violations(violations)


def test_widget_scripts_never_parse_html():
    """User and knowledge-base text goes in with textContent only; no HTML-parsing sink is used at all."""
    scripts = sorted((ROOT / "handlers" / "static").glob("*.js"))
    assert {"widget.js", "frame.js"} <= {p.name for p in scripts}
    for path in scripts:
        source = path.read_text(encoding="utf-8")
        found = re.findall(r"\.(?:innerHTML|outerHTML|insertAdjacentHTML)\b|document\.write|\beval\(|new Function", source)
        assert found == [], path.name


def test_chat_frame_is_es_modules_of_at_most_400_lines():
    """The frame loads as an ES module (no build step) that imports its parts; no script is over 400 lines."""
    html = (ROOT / "handlers" / "templates" / "frame.html").read_text(encoding="utf-8")
    assert re.search(r'<script type="module" src="[^"]*frame\.js[^"]*">', html)
    static = ROOT / "handlers" / "static"
    imported = set(re.findall(r'from "\./([\w-]+\.js)"', (static / "frame.js").read_text(encoding="utf-8")))
    assert len(imported) >= 4 and all((static / name).exists() for name in imported)
    lengths = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in static.glob("*.js")}
    assert {name: n for name, n in lengths.items() if n > 400} == {}


# -- the conversation view (issue 10) --------------------------------------------------------------------



def log_geometry(message):
    """Where a message sits in the scrolled log: its top relative to the log's visible top, in px."""
    return message.evaluate("""m => {
        const log = document.getElementById('log').getBoundingClientRect(), r = m.getBoundingClientRect();
        return {top: r.top - log.top, height: r.height, view: log.height};
    }""")


@pytest.mark.parametrize("size", [(1280, 800), (360, 640)], ids=["desktop", "phone"])
def test_a_new_answer_opens_at_its_start(browser, server, size):
    page = new_page(browser, width=size[0], height=size[1])
    try:
        frame = open_widget(page, server + "/")
        ask(frame, QUESTION)
        answer = ask(frame, LONG_QUESTION)
        where = log_geometry(answer)
        assert where["height"] > where["view"]  # too long to show whole: which part shows matters
        assert 0 <= where["top"] <= 24, where
        expect(answer.locator(".msg-text")).to_be_in_viewport()
    finally:
        page.context.close()


def test_phone_numbers_are_tel_links_that_never_break(browser, server):
    page = new_page(browser, width=360, height=740)
    try:
        frame = open_widget(page, server + "/")
        refusal = ask(frame, NOT_FOUND)
        link = refusal.locator(".msg-text a")
        expect(link).to_have_text("0120-110-030")
        expect(link).to_have_attribute("href", "tel:0120110030")
        # Wherever the line ends (every width a phone may have), the number stays on one line.
        for width in range(320, 481, 4):
            page.set_viewport_size({"width": width, "height": 740})
            assert link.evaluate("a => a.getClientRects().length") == 1, width
    finally:
        page.context.close()


def test_feedback_is_asked_on_answers_only_and_not_helpful_offers_a_next_step(page, server):
    frame = open_widget(page, server + "/")
    refusal = ask(frame, NOT_FOUND)
    expect(refusal.locator(".msg-text")).to_contain_text("0120-110-030")
    expect(refusal.get_by_role("button", name="役に立った")).to_have_count(0)
    frame.get_by_role("button", name="新しい質問").click()

    answer = ask(frame, QUESTION)
    expect(answer.locator(".sources a")).not_to_have_count(0)
    steps = frame.locator("#log button:not(.feedback-button)")
    expect(steps).to_have_count(0)
    answer.get_by_role("button", name="役に立たなかった").click()
    expect(answer.get_by_role("button", name="役に立たなかった")).to_have_attribute("aria-pressed", "true")
    # The next step: the reply the API gives for negative feedback, or rephrasing and the desk.
    expect(steps.first).to_be_visible()


def test_a_reply_to_feedback_is_drawn_and_its_buttons_send_their_id(page, server):
    frame = open_widget(page, server + "/")
    answer = ask(frame, QUESTION)
    label = "送付区分設定とは（日医ニュース・日本医師会雑誌の送付先）"

    def next_step(route):
        message_id = int(route.request.url.rsplit("/", 2)[-2])
        route.fulfill(json={"id": message_id, "feedback": False, "reply": {
            "id": message_id + 1000, "role": "bot", "kind": "choices", "text": "こちらの記事はいかがですか。",
            "sources": [], "actions": [], "table": None, "created_at": "2026-11-25T10:00:00+09:00",
            "buttons": [{"id": "article:delivery-settings", "label": label, "echo": "送付区分設定"}]}})

    page.route(re.compile(r"/api/messages/\d+/feedback$"), next_step)
    answer.get_by_role("button", name="役に立たなかった").click()
    offered = frame.locator(".msg-bot:not(.msg-welcome)").last
    expect(offered.locator(".msg-text")).to_have_text("こちらの記事はいかがですか。")
    expect(offered.locator(".feedback")).to_have_count(0)
    with page.expect_request(lambda r: r.method == "POST" and MESSAGES_POST.search(r.url)) as sent:
        offered.get_by_role("button", name=label).click()
    expect(frame.locator(".msg-user .msg-text").last).to_have_text("送付区分設定")
    body = sent.value.post_data_json
    assert (body["button"], body["text"]) == ("article:delivery-settings", "送付区分設定")
    assert body["idempotency_key"]


def test_keyboard_hint_shows_on_a_desktop(page, server):
    frame = open_widget(page, server + "/")
    expect(frame.locator("#input-hint")).to_have_text("Enter で送信、Shift + Enter で改行")
    expect(frame.locator("#input-hint")).to_be_visible()


def test_resend_is_in_view_on_a_phone(browser, server):
    page = new_page(browser, width=360, height=740)
    try:
        frame = open_widget(page, server + "/")
        ask(frame, LONG_QUESTION)
        page.route(MESSAGES_POST, only_posts(lambda route: route.abort("connectionrefused")))
        frame.locator("#input").fill(QUESTION)
        frame.locator("#input").press("Enter")
        expect(frame.locator(".msg-user.is-unsent")).to_have_count(1)
        expect(frame.get_by_role("button", name="再送信")).to_be_in_viewport(ratio=1)
    finally:
        page.context.close()


def test_messages_show_their_time(browser, server):
    """The test server's clock says 2026-11-25 10:00 (JST): that time today, with the date on a later day."""
    page = new_page(browser)
    try:
        page.clock.set_fixed_time("2026-11-25T14:05:00+09:00")
        frame = open_widget(page, server + "/")
        ask(frame, QUESTION)
        expect(frame.locator(".msg-user .msg-time")).to_have_text("10:00")
        expect(frame.locator(".msg-bot:not(.msg-welcome) .msg-time")).to_have_text("10:00")
        expect(frame.locator(".msg-user time")).to_have_attribute("datetime", "2026-11-25T10:00:00+09:00")

        page.clock.set_fixed_time("2026-11-26T09:00:00+09:00")
        page.reload()
        frame = page.frame_locator(IFRAME)
        expect(frame.locator(".msg-user .msg-time")).to_have_text("11月25日 10:00")
        expect(frame.locator(".msg-bot:not(.msg-welcome) .msg-time")).to_have_text("11月25日 10:00")
    finally:
        page.context.close()


def test_favicon_is_served(server):
    r = httpx.get(server + "/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/")
    assert r.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_readme_pictures_come_from_the_screenshot_script():
    """Every picture the README shows is one scripts/screenshots.py makes, and it is in the repository."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"\(docs/screenshots/([\w-]+\.png)\)", readme))
    made = set(re.findall(r'"([\w-]+\.png)"', (ROOT / "scripts" / "screenshots.py").read_text(encoding="utf-8")))
    assert len(shown) >= 4 and shown <= made
    assert all((ROOT / "docs" / "screenshots" / name).stat().st_size > 10_000 for name in shown)

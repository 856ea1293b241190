"""The widget for a signed-in secretariat, in Debian's Chromium against a real server with demo member data:
coming back from /login with the chat open and the sign-in confirmed, and lookup tables whose label
column keeps its words whole at phone width. One server and one Chromium serve the whole module."""
from __future__ import annotations

import pytest

from tests.browser import IFRAME, LAUNCHER, PANEL, browser, new_page  # noqa: F401 (browser: a fixture)
from tests.staff import PASSWORD, add_records_and_staff, build_demo

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

CHIYODA = "千代田区医師会 事務局（テスト）"


BOT_USERNAME = "mamis_helpdesk_test_bot"


@pytest.fixture(scope="module")
def server(live_server_factory, tmp_path_factory):
    demo_db = build_demo(tmp_path_factory.mktemp("demo") / "records.sqlite")

    def prepare(instance):
        add_records_and_staff(instance, demo_db)
        remember_bot_username(instance, BOT_USERNAME)

    return live_server_factory(prepare=prepare)


def remember_bot_username(instance, username):
    """What the Telegram process writes when it starts (the web process never calls Telegram)."""
    from bot import Store
    from bot.messaging.outbox import Outbox

    store = Store(instance.helpdesk_db)
    try:
        Outbox(store, "telegram").set_meta("username", username)
    finally:
        store.close()


def sign_in_on_the_login_page(page, server, path="/login"):
    if path:
        page.goto(server + path)
    page.get_by_label("ログインID").fill("chiyoda")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン", exact=True).click()


def test_after_signing_in_on_the_login_page_the_chat_opens_and_confirms_it(browser, server):
    page = new_page(browser)
    try:
        page.goto(server + "/")
        page.get_by_role("link", name="職員ログイン（会員情報の照会）").click()
        sign_in_on_the_login_page(page, server, path=None)
        expect(page).to_have_url(server + "/")  # where the visitor was, the opening mark taken off again
        expect(page.locator(PANEL)).to_be_visible()
        frame = page.frame_locator(IFRAME)
        expect(frame.locator(".msg-welcome .msg-notice")).to_have_text(f"{CHIYODA}としてログインしました。")
        expect(frame.locator("#account-status")).to_have_text(f"職員ログイン中：{CHIYODA}")
        expect(frame.locator("#input")).to_be_focused()

        page.reload()  # said once: the next visit just shows the chat
        page.locator(LAUNCHER).click()
        expect(frame.locator("#account-status")).to_have_text(f"職員ログイン中：{CHIYODA}")
        expect(frame.locator(".msg-notice")).to_have_count(0)
    finally:
        page.context.close()


def test_login_page_sends_a_visitor_back_to_the_page_named_in_next(browser, server):
    page = new_page(browser)
    try:
        sign_in_on_the_login_page(page, server, "/login?next=/kb")
        expect(page).to_have_url(server + "/kb#mamis-helpdesk-chat")  # a page without the widget keeps the mark
    finally:
        page.context.close()


def ask_signed_in(page, server, question: str):
    """Sign in as 千代田区's secretariat, open the chat on the demo page and ask; returns the chat frame."""
    sign_in_on_the_login_page(page, server, "/login?next=/kb")
    page.goto(server + "/")
    page.locator(LAUNCHER).click()
    frame = page.frame_locator(IFRAME)
    expect(frame.locator("#account-status")).to_have_text(f"職員ログイン中：{CHIYODA}")
    frame.locator("#input").fill(question)
    frame.locator("#input").press("Enter")
    return frame


def one_line(cell) -> bool:
    """Whether a table cell's text is laid out on a single line."""
    return cell.evaluate("""c => {
        const range = document.createRange();
        range.selectNodeContents(c);
        return new Set(Array.from(range.getClientRects(), r => Math.round(r.top))).size === 1;
    }""")


def test_table_labels_keep_their_words_whole_on_a_phone(browser, server):
    page = new_page(browser, width=360, height=740)
    try:
        frame = ask_signed_in(page, server, "神田ひだまり在宅クリニックはマスタに載っていますか")
        table = frame.locator(".msg-bot:not(.msg-welcome) table.reply-table").last
        labels = table.locator("tbody tr td:first-child")
        expect(labels.first).to_have_text("名称")
        expect(table.locator("tbody td", has_text="医療機関コード")).to_have_count(1)
        texts = labels.all_inner_texts()
        assert "医療機関コード" in texts
        broken = [text for text, cell in zip(texts, labels.all()) if not one_line(cell)]
        assert broken == []
        for header in table.locator("th").all():
            assert one_line(header), header.inner_text()
        assert frame.locator("#log").evaluate("l => l.scrollWidth <= l.clientWidth")
    finally:
        page.context.close()


def test_a_link_code_comes_with_the_telegram_deep_link_and_its_qr_code(browser, server):
    page = new_page(browser)
    try:
        frame = ask_signed_in(page, server, "会員番号1300001の連携コードを発行してください")
        box = frame.locator(".msg-bot .telegram-link").last
        link = box.get_by_role("link", name="Telegram で連携する（先生のスマートフォンで開くリンク）")
        href = link.get_attribute("href")
        code = href.rsplit("=", 1)[1]
        assert href == f"https://t.me/{BOT_USERNAME}?start={code}"
        assert code in box.locator("xpath=..").inner_text()  # the same code as the one shown in words
        qr = box.get_by_role("img", name="Telegram 連携用 QR コード（先生のスマートフォンで読み取ってください）")
        expect(qr).to_be_visible()
        # the SVG really loaded: waited for (visible comes before loaded), and an error reads as width 0
        width = qr.evaluate("img => img.complete ? img.naturalWidth : new Promise(done => {"
                            " img.addEventListener('load', () => done(img.naturalWidth));"
                            " img.addEventListener('error', () => done(0)); })")
        assert width > 0
    finally:
        page.context.close()

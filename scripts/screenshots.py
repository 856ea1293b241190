"""Remake the README's screenshots (docs/screenshots/*.png) from the real help desk in Chromium.

    .venv/bin/python scripts/screenshots.py        (or: make screenshots)

A fresh instance in a temporary folder (index, fictional demo data, demo accounts), `helpdesk serve`
in a subprocess on a free port, and Debian's Chromium driven through Playwright (headless, a fresh
profile): the widget on a desktop and on a phone, an answer with its source, and a member lookup
signed in as 千代田区's demo secretariat. Pictures come from the product as it is, so when a screen
changes, run this again instead of editing images. Japanese text needs a CJK font
(Debian: fonts-noto-cjk).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (one list of Chromium flags)

OUT = ROOT / "docs" / "screenshots"
HELPDESK = [sys.executable, "-m", "handlers.server.main"]
QUESTION = "送付区分設定とは何ですか"
PHONE_QUESTION = "医療機関マスタはいつ更新されますか"
LAUNCHER = "mamis-helpdesk-widget .launcher"
IFRAME = "mamis-helpdesk-widget iframe"


def helpdesk(instance: Path, *args: str) -> str:
    """Run a `helpdesk` command on the instance and return what it printed (stop on failure)."""
    done = subprocess.run([*HELPDESK, "--instance", str(instance), *args], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if done.returncode:
        sys.exit(f"helpdesk {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@contextmanager
def serving(instance: Path):
    """`helpdesk serve` on a port it picks (port 0) and prints, until the block ends; yields its base URL."""
    from handlers.server.command import started_url

    log = tempfile.NamedTemporaryFile("w+")  # read by name: a second file offset, not the server's
    proc = subprocess.Popen([*HELPDESK, "--instance", str(instance), "serve", "--host", "127.0.0.1",
                             "--port", "0"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            url = started_url(Path(log.name).read_text(errors="replace"))
            try:
                if url is None:
                    raise OSError("not listening yet")
                with urllib.request.urlopen(url + "/api/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    sys.exit(f"the server did not start:\n{log.read()}")
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()


def member_with_admission(records: Path, county: str = "13001") -> str:
    """A demo member of 千代田区 whose admission application has a history to show."""
    from storage.sqlite import connect

    conn = connect(records, readonly=True)
    try:
        row = conn.execute(MEMBER_SQL, {"county": county}).fetchone()
    finally:
        conn.close()
    if row is None:
        sys.exit("no admission application in the demo data for 千代田区")
    return row[0]


MEMBER_SQL = """
    SELECT member_number FROM applications
    WHERE county_code = :county AND kind = 'admission' AND state = 'in_review'
    ORDER BY submitted_on DESC, member_number LIMIT 1
"""


def open_chat(page, url: str):
    page.goto(url + "/")
    page.locator(LAUNCHER).click()
    frame = page.frame_locator(IFRAME)
    frame.locator("#input").wait_for()
    return frame


def ask(frame, text: str):
    """Ask and wait for the answer; returns the answer's locator."""
    answers = frame.locator(".msg-bot:not(.msg-welcome)")
    before = answers.count()
    frame.locator("#input").fill(text)
    frame.locator("#input").press("Enter")
    answers.nth(before).wait_for()
    frame.locator("#typing").wait_for(state="hidden")
    return answers.nth(before)


def settle(page):
    """Let fonts load and the chat's scrolling finish before a picture is taken."""
    page.evaluate("document.fonts.ready.then(() => true)")
    page.wait_for_timeout(300)


def shoot(browser, url: str, password: str, member: str) -> list[Path]:
    made = []

    def save(target, name: str):
        path = OUT / name
        target.screenshot(path=str(path), animations="disabled", caret="hide")
        made.append(path)

    desktop = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ja-JP",
                                  timezone_id="Asia/Tokyo")
    page = desktop.new_page()
    frame = open_chat(page, url)
    answer = ask(frame, QUESTION)
    settle(page)
    save(page, "widget-desktop.png")
    answer.locator(".sources").scroll_into_view_if_needed()
    settle(page)
    save(page.locator("mamis-helpdesk-widget .panel"), "answer-with-source.png")

    frame.get_by_role("button", name="職員ログイン").click()
    frame.get_by_label("ログインID").fill("demo-chiyoda")
    frame.get_by_label("パスワード").fill(password)
    frame.get_by_role("button", name="ログイン", exact=True).click()
    frame.locator("#account-status").filter(has_text="職員ログイン中").wait_for()
    ask(frame, f"会員番号{member}の入会手続きはどこまで進んでいますか")
    settle(page)
    save(page.locator("mamis-helpdesk-widget .panel"), "record-lookup.png")
    desktop.close()

    phone = browser.new_context(viewport={"width": 360, "height": 740}, locale="ja-JP", timezone_id="Asia/Tokyo",
                                device_scale_factor=2, is_mobile=True, has_touch=True)
    page = phone.new_page()
    frame = open_chat(page, url)
    ask(frame, PHONE_QUESTION)
    settle(page)
    save(page, "widget-phone.png")
    phone.close()
    return made


def main() -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        sys.exit(f"Chromium not found at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="helpdesk-screenshots-") as tmp:
        instance = Path(tmp) / "instance"
        print("索引を作っています…")
        helpdesk(instance, "index")
        print("デモデータ（架空）を作っています…")
        helpdesk(instance, "demo-data")
        helpdesk(instance, "demo-accounts")
        password = json.loads((instance / "demo-passwords.json").read_text(encoding="utf-8"))["demo-chiyoda"]
        member = member_with_admission(instance / "records.sqlite")
        with serving(instance) as url, sync_playwright() as pw:
            print(f"{url} を Chromium で撮影しています…")
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                made = shoot(browser, url, password, member)
            finally:
                browser.close()
    for path in made:
        print(f"  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

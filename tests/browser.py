"""Shared Playwright helpers for browser tests: Debian's Chromium, never a downloaded browser.

Tests use the `browser` marker and skip cleanly when Chromium or Playwright is missing, so the
rest of the suite still runs on a machine without them. `playwright install` is never needed.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("HELPDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def require_chromium():
    """Skip the calling test (or module) unless Playwright and Debian's Chromium are both here."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@contextlib.contextmanager
def launch_chromium():
    """One headless Chromium for a whole module; each test opens its own fresh context."""
    sync_api = require_chromium()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser():
    """The module's Chromium (import this fixture into a browser test module)."""
    with launch_chromium() as b:
        yield b


# The widget on a host page: its launcher and panel (in the shadow root) and the chat's iframe.
LAUNCHER = "mamis-helpdesk-widget .launcher"
PANEL = "mamis-helpdesk-widget .panel"
IFRAME = "mamis-helpdesk-widget iframe"


def new_page(browser, *, width=1280, height=800):
    """A page in a fresh context: its own storage, so tests never see each other's conversations."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="ja-JP")
    context.set_default_timeout(10_000)
    return context.new_page()


def run_axe(frame, *, context_selector=None):
    """Inject the npm-installed axe-core into a page or frame and return its violations.

    axe-core comes from `npm ci` (package-lock.json), never from the network at test time.
    """
    if not AXE_JS.exists():
        pytest.skip(f"axe-core is not installed ({AXE_JS} missing): run `npm ci` in the repository root")
    # evaluate() runs as the debugger does, so the chat frame's strict CSP (no inline script)
    # does not block it, where add_script_tag would be refused.
    frame.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;void 0")
    result = frame.evaluate(
        """async (selector) => {
            const r = await axe.run(selector ? document.querySelector(selector) : document,
                                    {resultTypes: ['violations']});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary})),
            }));
        }""",
        context_selector,
    )
    return result


def serious_violations(violations):
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def format_violations(violations):
    return json.dumps(violations, ensure_ascii=False, indent=2)


class StaticHost:
    """A second web server on its own port: an association's portal page embedding the widget.

    It serves `html` at every path, so the widget runs cross-origin exactly as it does when a
    prefectural association embeds it. The port is known as soon as it is built, so a test can put
    its origin into ALLOWED_ORIGINS first and set `html` (which names the help desk) afterwards.
    """

    def __init__(self, html: str = ""):
        self.html = html
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                body = host.html.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def host_page(widget_src: str, *, title="○○県医師会 事務局ポータル（テスト）", attrs="") -> str:
    """A minimal host page whose own CSS tries hard to break the widget."""
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>* {{ font-size: 40px !important; color: red; }} button, iframe {{ display: none; }}</style>
</head><body><main><h1>{title}</h1><p>埋め込みのテスト用ページです。</p></main>
<script src="{widget_src}" defer {attrs}></script>
</body></html>"""

"""axe-core on the knowledge-base pages in Debian's Chromium, at desktop and 360 px phone width."""
from __future__ import annotations

import pytest

from tests.browser import format_violations, launch_chromium, new_page, run_axe, serious_violations

pytestmark = pytest.mark.browser

PAGES = ["/kb/liaison-council-2026", "/kb/delivery-settings", "/kb?q=医療機関マスタ", "/kb", "/kb/no-such-article",
         "/kb?q=該当しない質問"]


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as b:
        yield b


@pytest.mark.parametrize("width", [1280, 360])
def test_pages_have_no_serious_accessibility_violations_and_fit_the_screen(browser, live_server, width):
    page = new_page(browser, width=width)
    for path in PAGES:
        page.goto(live_server + path)
        violations = serious_violations(run_axe(page))
        assert violations == [], f"{path}:\n{format_violations(violations)}"
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
    page.context.close()


def test_skip_link_moves_focus_to_the_main_content(browser, live_server):
    page = new_page(browser)
    page.goto(live_server + "/kb/delivery-settings")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "本文へスキップ"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.context.close()

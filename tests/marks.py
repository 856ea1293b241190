"""The suite in parts: markers `server`, `browser`, `telegram` and `slow` (`make test-fast`,
`pytest -m telegram`, `pytest -m "not browser"`).

A test is marked by what it uses, so a new test is marked without anyone remembering to: its fixtures
say whether it starts a server, drives Chromium or talks to the fake Bot API (`mark_by_fixtures`, run
by tests/conftest.py at collection). A test that starts a server or bot process by hand carries an
explicit mark, and ServerProcess and BotProcess refuse to start in a test without it (`require_mark`),
so it cannot slip into the fast subset unmarked. `slow` is given by hand, to tests measured at several
seconds on 2 CPUs.

This lives outside conftest.py because pytest imports that file as `conftest` while the helpers import
it as `tests.conftest`: two modules, two copies of the running test.
"""
from __future__ import annotations

from contextlib import contextmanager

import pytest

#: fixture name -> the marks a test using it gets
FIXTURE_MARKS = {
    "live_server": ("server",),
    "live_server_factory": ("server",),
    "server_process": ("server",),
    "browser": ("browser",),
    "fake": ("telegram",),
    "bot": ("telegram",),
    "threaded": ("telegram",),
}

_current: list[pytest.Item] = []


def mark_by_fixtures(item: pytest.Item) -> None:
    for name in sorted({m for f in item.fixturenames for m in FIXTURE_MARKS.get(f, ())}):
        item.add_marker(name)


@contextmanager
def running(item: pytest.Item):
    _current.append(item)
    try:
        yield
    finally:
        _current.pop()


def require_mark(name: str) -> None:
    """Fail the running test unless it carries mark `name`: a test that starts a process of that kind
    must be one that `-m "not NAME"` leaves out. (Outside a test, e.g. in a fixture, nothing is checked.)"""
    if _current and _current[-1].get_closest_marker(name) is None:
        pytest.fail(f"{_current[-1].nodeid} starts a {name} process: mark it @pytest.mark.{name}", pytrace=False)

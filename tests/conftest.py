"""Shared fixtures: a real index built from the repo's articles, a real app over a temp instance, and a
real server process on a free port.

`live_server` (the base URL of `helpdesk serve` running under gunicorn) and `live_server_factory`
(start one with your own settings) are used by the API tests and the widget's browser tests alike.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Test modules share helpers as `tests.<module>` (e.g. tests.browser); make that importable however
# pytest is started (the console script does not put the working directory on sys.path).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.marks import mark_by_fixtures, require_mark, running  # noqa: E402 (needs ROOT on sys.path)
SOURCES = (ROOT / "kb" / "articles", ROOT / "release_notes")
#: "Today" for every test: the letter's events (2026-01-27, 2026-03-16) are in the past.
NOW = "2026-11-25T10:00:00+09:00"

def sign_in(accounts, instance_path, login_id, password):
    """Check one password with `accounts` (StaffAccounts or AgentAccounts) over an instance's store, at NOW."""
    from bot import Store

    store = Store(Path(instance_path) / "helpdesk.sqlite")
    try:
        return accounts(store).authenticate(login_id, password, NOW)
    finally:
        store.close()


#: Limits high enough that no functional test is throttled; rate limiting has its own test.
UNTHROTTLED = {
    "MESSAGE_RATE_LIMIT": "10000 per minute",
    "CONVERSATION_RATE_LIMIT": "10000 per minute",
    "SUGGEST_RATE_LIMIT": "10000 per minute",
    "FEEDBACK_RATE_LIMIT": "10000 per minute",
}


# -- markers: the suite in parts (tests/marks.py) ------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    for item in items:
        mark_by_fixtures(item)


@pytest.fixture(autouse=True)
def _note_current_test(request):
    """Tell require_mark which test is running (ServerProcess and BotProcess ask)."""
    with running(request.node):
        yield


@pytest.fixture(autouse=True)
def no_metrics_folder_left_behind(monkeypatch):
    """`helpdesk serve` and `helpdesk telegram` point their process at the instance's metrics folder
    (PROMETHEUS_MULTIPROC_DIR). Run in-process by a test, that would leak into every server the later
    tests start; each test begins without it, and what a test sets is taken back after it."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    """The demo member data (tests/staff.py: build_demo), made once per test module."""
    from tests.staff import build_demo

    return build_demo(tmp_path_factory.mktemp("demo") / "records.sqlite")


def member_change_file(records_db: Path, member_number: str, path: Path, **fields) -> Path:
    """A one-row `sync-members --diff` file: the member as stored, with `fields` changed."""
    from records.member_csv import write_members_csv
    from records.sync import load_member_rows
    from storage.sqlite import connect

    conn = connect(records_db, readonly=True)
    try:
        row = next(r for r in load_member_rows(conn) if r.member_number == member_number)
    finally:
        conn.close()
    write_members_csv(path, [row.__class__(**{**{f: getattr(row, f) for f in row.__slots__}, **fields})],
                      operations=["changed"])
    return path


def build_instance(path: Path, config: dict | None = None, sources=SOURCES):
    """A fresh instance folder with a real index and a config.json; returns the Instance."""
    from helpdesk.instance import Instance
    from kb.indexer import build_index

    instance = Instance.at(path)
    report = build_index(list(sources), instance.kb_index)
    assert not report.broken, report.broken
    instance.config_file.write_text(json.dumps({"NOW": NOW, **UNTHROTTLED, **(config or {})}), encoding="utf-8")
    return instance


@pytest.fixture(scope="session")
def kb_index(tmp_path_factory) -> Path:
    """The repo's knowledge base, indexed once per test session (read-only for the tests)."""
    from kb.indexer import build_index

    path = tmp_path_factory.mktemp("kb") / "kb.sqlite"
    report = build_index(list(SOURCES), path)
    assert report.indexed > 0 and not report.broken
    return path


@pytest.fixture
def shipped_searcher(kb_index):
    """A searcher over the shipped articles, also where a module's own `searcher` is a smaller index."""
    from kb.search import Searcher

    s = Searcher(kb_index)
    yield s
    s.close()


@pytest.fixture
def searcher(shipped_searcher):
    return shipped_searcher


@pytest.fixture
def instance(tmp_path):
    return build_instance(tmp_path / "instance")


@pytest.fixture
def app(instance):
    from handlers.web.app import create_app

    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True})
    yield app
    app.extensions["helpdesk"].close()


@pytest.fixture
def client(app):
    return app.test_client()


# -- a real server ----------------------------------------------------------------------------------------


def free_port() -> int:
    """A port free a moment ago, for a listener that cannot bind port 0 and report it (the Telegram
    webhook server, a port written into config.toml); `helpdesk serve` is started on port 0 instead."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env() -> dict:
    """The environment for a server or bot process of a test: this one's, without a metrics folder
    another instance's server chose (each process of an instance counts in that instance's folder)."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return {**env, "PYTHONUNBUFFERED": "1"}


class ServerProcess:
    """`helpdesk serve` in a subprocess on a free port; output goes to a file printed if it dies."""

    def __init__(self, instance_path: Path, *, server: str = "gunicorn", workers: int = 2, threads: int = 4):
        self.instance_path = Path(instance_path)
        self.args = ["--server", server, "--workers", str(workers), "--threads", str(threads)]
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log = None

    @property
    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace") if self.log else ""

    def start(self, timeout: float = 30.0, port: int | None = None) -> "ServerProcess":
        """Start on a port the server picks (it binds port 0 and prints its URL, so no other process can
        take the port between choosing and binding it), or on `port` (to restart a stopped server
        where clients expect it)."""
        from handlers.server.command import started_url

        require_mark("server")
        self.url = ""
        self.log = tempfile.NamedTemporaryFile("w+", prefix="helpdesk-serve-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "handlers.server.main", "--instance", str(self.instance_path),
               "serve", "--host", "127.0.0.1", "--port", str(port or 0), *self.args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=server_env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output}")
            started = started_url(self.output)
            try:
                if started and httpx.get(started + "/api/health", timeout=1).status_code == 200:
                    self.url = started
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.output}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.log:
            self.log.close()
            if self.proc and self.proc.returncode not in (0, -signal.SIGTERM):
                print(f"server output:\n{self.output}")
            os.unlink(self.log.name)
            self.log = None
        self.proc = None


@pytest.fixture
def server_process(tmp_path):
    """make(**options) -> a ServerProcess (not yet started) over one fresh instance shared by every
    server made in the test, for tests that stop and restart servers; all are stopped at the end."""
    instance = build_instance(tmp_path / "served")
    made: list[ServerProcess] = []

    def make(**options) -> ServerProcess:
        made.append(ServerProcess(instance.path, **options))
        return made[-1]

    yield make
    for server in made:
        server.stop()


@pytest.fixture(scope="session")
def live_server_factory(tmp_path_factory):
    """start(config=None, prepare=None, **server_options) -> base URL; every server started is stopped at
    the end. `prepare(instance)` runs before the server starts (e.g. to put member data and staff
    accounts into the instance)."""
    started: list[ServerProcess] = []

    def start(config: dict | None = None, prepare=None, **options) -> str:
        instance = build_instance(tmp_path_factory.mktemp("live"), config)
        if prepare is not None:
            prepare(instance)
        server = ServerProcess(instance.path, **options).start()
        started.append(server)
        return server.url

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def live_server(live_server_factory) -> str:
    """Base URL (no trailing slash) of a real `helpdesk serve` (gunicorn, 2 workers) over a temp instance."""
    return live_server_factory()

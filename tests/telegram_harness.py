"""Running the real bot against the fake Bot API: in this process (a thread with its own event loop,
so a test can reach into the services) or as the real `helpdesk telegram` subprocess (to kill it)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import server_env
from tests.marks import require_mark
from tests.telegram_fake import TOKEN

ROOT = Path(__file__).resolve().parent.parent


def bot_settings(instance_path, api_url: str, **extra):
    from helpdesk.settings import load_settings

    overrides = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": api_url, "TELEGRAM_DRAIN_INTERVAL": 0.1, **extra}
    return load_settings(instance_path, overrides, environ={})


class InProcessBot:
    """The Application built by build_telegram_app, polling from a background thread."""

    def __init__(self, instance_path, api_url: str, services=None, **extra):
        from handlers.telegram.app import build_telegram_app
        from handlers.telegram.config import TelegramConfig
        from helpdesk.services import build_services

        settings = bot_settings(instance_path, api_url, **extra)
        self.services = services or build_services(instance_path, settings)
        self.app = build_telegram_app(TelegramConfig.from_settings(settings), self.services)
        self.desk = self.app.bot_data["helpdesk"]
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, webhook: dict | None = None) -> "InProcessBot":
        started = threading.Event()

        def main():
            from handlers.telegram.app import new_event_loop

            self.loop = new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(started.set)
            try:
                if webhook:
                    self.app.run_webhook(stop_signals=None, close_loop=False, **webhook)
                else:
                    self.app.run_polling(stop_signals=None, close_loop=False, timeout=1, poll_interval=0)
            except BaseException as e:  # shown by stop()
                self.error = e

        self.thread = threading.Thread(target=main, daemon=True, name="telegram-bot")
        self.thread.start()
        started.wait(10)
        # Running once post_init is done: commands registered, worker processes up.
        wait_until(lambda: self.app.running or self.error or not self.thread.is_alive(), 60, "bot running")
        return self

    def stop(self) -> None:
        if self.loop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.app.stop_running)
            self.thread.join(20)
        self.services.close()
        if self.error:
            raise self.error


class BotProcess:
    """`helpdesk telegram` in a subprocess; output kept in a file and printed if it misbehaves."""

    def __init__(self, instance_path, api_url: str, token: str = TOKEN, args=(), env=None):
        self.instance_path, self.api_url, self.token, self.args = instance_path, api_url, token, list(args)
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.log = None

    def start(self) -> "BotProcess":
        require_mark("telegram")
        self.log = tempfile.NamedTemporaryFile("w+", prefix="helpdesk-telegram-", suffix=".log", delete=False)
        env = {**server_env(), "TELEGRAM_BOT_TOKEN": self.token, "TELEGRAM_API_URL": self.api_url,
               "PYTHONPATH": str(ROOT), **self.env}
        cmd = [sys.executable, "-c", "from handlers.cli.main import cli; cli()", "--instance", str(self.instance_path),
               "telegram", *self.args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        return self

    @property
    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace") if self.log else ""

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.log:
            self.log.close()
            os.unlink(self.log.name)
            self.log = None


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout}s")


#: Updates of these chats the bot has received but not handled (an answered or ignored update is done).
UNHANDLED_SQL = """
    SELECT COUNT(*) FROM channel_inbox
    WHERE channel = 'telegram' AND done_at IS NULL AND chat_id IN (SELECT value FROM json_each(:chats))
"""


def wait_settled(fake, helpdesk_db, *chat_ids: int, timeout: float = 20.0) -> None:
    """Wait until the bot has nothing left to do for `chat_ids`: every update `fake` offered has reached
    it, every update of those chats is handled, and every message queued for them is sent or given up.

    After this, what `fake` received for those chats is final, so counting it checks something: a late
    duplicate is sent before this returns, where after a sleep it could arrive once the count has passed.
    "Queued" is the outbox's own idea of due (bot.messaging.outbox.Outbox.due, at any time, claimed by anyone)."""
    import sqlite3
    from types import SimpleNamespace

    from bot.messaging.outbox import Outbox
    from storage.sqlite import connect

    wait_until(lambda: not fake.pending, timeout, "every offered update taken by the bot")
    chats = {str(c) for c in chat_ids}
    conn = connect(helpdesk_db, readonly=True, row_factory=sqlite3.Row)
    try:
        outbox = Outbox(SimpleNamespace(conn=conn), "telegram")

        def idle() -> bool:
            unhandled = conn.execute(UNHANDLED_SQL, {"chats": json.dumps(sorted(chats))}).fetchone()[0]
            queued = [row for row in outbox.due("wait_settled", time.time() + 3600) if row.chat_id in chats]
            return unhandled == 0 and not queued

        wait_until(idle, timeout, f"chats {sorted(chats)} settled (updates handled, outbox sent)")
    finally:
        conn.close()


# -- fixtures shared by the Telegram test modules (imported there by name) ------------------------------

PUBLIC_URL = "https://helpdesk.example-med.or.jp"


@pytest.fixture(scope="module")
def demo_instance(tmp_path_factory):
    """An instance with the index, demo member data and PUBLIC_URL, shared by a module's tests."""
    from records.demo import generate_demo
    from tests.conftest import build_instance

    inst = build_instance(tmp_path_factory.mktemp("telegram") / "instance", {"PUBLIC_URL": PUBLIC_URL})
    generate_demo(inst.records_db, members=10)
    return inst


@pytest.fixture(scope="module")
def fake():
    from tests.telegram_fake import FakeTelegram

    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bot(demo_instance, fake, request):
    """The bot polling `fake`; a module sets BOT_SETTINGS to change settings for its tests."""
    running = InProcessBot(demo_instance.path, fake.url, **getattr(request.module, "BOT_SETTINGS", {})).start()
    yield running
    running.stop()

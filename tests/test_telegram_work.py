"""The bot's work as its worker processes run it (handlers/telegram/work.py), called directly."""
from __future__ import annotations

import pickle

import pytest

from handlers.telegram.work import ChatRef, Work, WorkFailed


@pytest.fixture
def work(instance):
    from handlers.telegram.config import TelegramConfig
    from helpdesk.services import build_services

    services = build_services(instance.path)
    yield Work(TelegramConfig.from_settings(services.config), services, "test-run")
    services.close()


def ask(update_id: int, text: str) -> tuple:
    return "respond", (update_id, 5, "ask", (update_id, ChatRef(5, "private"), 5, text))


def test_an_unexpected_error_comes_back_with_its_type_and_frames_but_not_its_message(work):
    secret = "".join(("1300", "001"))  # a member number: never in a log

    def broken(*args, **kwargs):
        raise RuntimeError(f"failed on {secret}")

    work.core.reply = broken
    with pytest.raises(WorkFailed) as caught:
        work.call(*ask(1, "質問"))
    error = pickle.loads(pickle.dumps(caught.value))  # as it crosses from a worker to the bot
    assert error.original == "RuntimeError"
    assert "in broken" in error.frames
    assert secret not in str(error) + error.frames


def test_an_update_answered_once_is_skipped_when_it_comes_again(work):
    for update_id in (2, 3):  # the bot keeps every update in the inbox before it is handled
        work.outbox.receive(update_id, 5, {"update_id": update_id}, work.now())
    rows = work.call(*ask(2, "医療機関マスタはいつ更新されますか"))
    assert rows and "医療機関マスタ" in rows[0].payload["text"]
    assert work.call(*ask(2, "医療機関マスタはいつ更新されますか")) is None
    assert work.call(*ask(3, "医療機関マスタはいつ更新されますか"))  # a new update is answered


def test_only_declared_jobs_run(work):
    with pytest.raises(WorkFailed) as caught:
        work.call("respond", (4, 5, "call", ("ping", ())))
    assert caught.value.original == "ValueError"

"""The bot's synchronous work (the core and SQLite), run in worker processes beside the event loop.

The handlers (handlers/telegram/updates.py) only translate updates; what an update asks for is done
here, by `Work`: look at the core, compose the Telegram messages, store them in the outbox together
with the update's done mark (an update already answered is skipped: a redelivery after a restart).

Why processes and not threads: answering is CPU-bound Python (Japanese analysis and ranking). In a
thread it holds the one GIL that the event loop needs to talk to Telegram, so every chat waits while
one question is ranked; in a process it runs on another core and the event loop keeps polling and
sending. The event loop hands over plain data (ids, texts, `ChatRef`), never Telegram objects, and gets
back outbox rows. Each worker builds its own services from the settings (helpdesk.services), like any
other process of the help desk. With `TELEGRAM_WORKERS = 0` the same `Work` runs in threads of the bot's
own process (a one-core machine; tests that patch the core).
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Mapping

from bot import Asker, HelpdeskError
from bot.channels import TELEGRAM
from bot.messaging.outbox import Outbox
from handlers.web.metrics import record_turn
from handlers.telegram.config import TelegramConfig
from handlers.telegram.render import (GROUP_PRIVATE, LINK_HINT, NOTIFY_DATA, RELINK_DATA, RELINK_NO, render_reply,
                                     render_text)
from helpdesk.errors import describe
from records.errors import RecordsError

CHANNEL = TELEGRAM
LINKED = ("アカウントを連携しました（会員番号 {number}）。/status で会員情報と入会手続きの状況を、"
          "/delivery で送付先を確認できます。手続きの状況のお知らせを受け取るには /notify on を送ってください。")
UNLINKED = "連携を解除しました。ご自身の情報を確認するには、あらためて連携コードで連携してください。"
RELINK_ASK = ("このアカウントは会員番号 {current} と連携しています。会員番号 {new} に切り替えますか？"
              "切り替えると、これまでとは別の新しい会話になります。")
RELINK_KEPT = "切り替えをやめました。連携はそのままです。"
CODE_SPENT_IN_GROUP = ("連携コードがグループに送られたため、このコードは使えなくしました。医師会事務局に新しいコードの"
                       "発行を依頼し、このボットとの個別のチャットで /link 連携コード を送ってください。")
NOT_LINKED = "このアカウントは連携されていません。"
NOTIFY_ON = ("通知をオンにしました。新しいリリースノートが公開されたとき{linked}にお知らせします。"
             "止めるには /notify off を送ってください。")
NOTIFY_ON_LINKED = "と、入会手続きなどの状況が変わったとき"
NOTIFY_OFF = "通知をオフにしました。再開するには /notify on を送ってください。"
NOTIFY_STATE = "通知は現在{state}です。"


@dataclass(frozen=True)
class ChatRef:
    """What the work needs of a Telegram chat: its id and whether it is private."""

    id: int
    type: str

    @classmethod
    def of(cls, chat) -> "ChatRef":
        return cls(chat.id, chat.type)

    @property
    def private(self) -> bool:
        return self.type == "private"


class WorkFailed(RuntimeError):
    """An unexpected error in a worker, carried back without its message (which may hold personal data):
    the original type's name and the frames, for the bot's one error handler to log."""

    def __init__(self, original: str, frames: str):
        super().__init__(original, frames)
        self.original, self.frames = original, frames


def own_chat(chat: ChatRef, user_id) -> bool:
    """A private chat with the user themself: the only place their records are shown."""
    return chat.private and str(chat.id) == str(user_id)


def group_asker(chat_id) -> Asker:
    """A group asks as itself, anonymously: records are never looked up there."""
    return Asker(account=f"{CHANNEL}:{chat_id}")


class Work:
    """What the bot does for an update, synchronously; one per worker process (or per bot, in threads)."""

    #: The jobs `respond` runs: each returns the Telegram messages answering the update.
    JOBS = frozenset({"say", "ask", "link", "unlink", "spend_code", "lookup", "notify_state", "set_notify",
                      "next_step"})

    def __init__(self, config, services, run: str):
        self.config, self.services, self.run = config, services, run
        self.core = services.core()
        self.outbox = Outbox(services.store, CHANNEL)

    def now(self) -> str:
        return self.core.now()

    def call(self, name: str, args: tuple):
        """Run one method for the event loop; an unexpected error comes back as `WorkFailed`."""
        try:
            return getattr(self, name)(*args)
        except Exception as e:
            raise WorkFailed(type(e).__name__, "".join(traceback.format_tb(e.__traceback__))) from None

    def respond(self, update_id: int, chat_id, job: str, args: tuple):
        """Skip an update already answered; else run `job` and store its messages with the done mark."""
        if job not in self.JOBS:
            raise ValueError(job)
        if self.outbox.is_done(update_id):
            return None
        return self.outbox.answer(update_id, chat_id, getattr(self, job)(*args), self.now(), self.run)

    # -- jobs ---------------------------------------------------------------------------------------------

    def say(self, text: str, buttons=()) -> list[dict]:
        return render_text(text, buttons)

    def asker(self, chat: ChatRef, user_id) -> Asker:
        """The linked member only in their own private chat (whose id is theirs); anyone else asks as
        the chat, anonymously."""
        return self.core.linked_asker(CHANNEL, str(user_id)) if own_chat(chat, user_id) else group_asker(chat.id)

    def ask(self, update_id: int, chat: ChatRef, user_id, text: str, button: str | None = None,
            n: int = 0) -> list[dict]:
        """The core's answer to one message of a chat, as Telegram messages (none while an agent holds it).
        The update_id is the core's idempotency key, so a replayed update gets the answer stored first."""
        asker = self.asker(chat, user_id)
        try:
            conversation = self.core.conversation_for_chat(CHANNEL, str(chat.id), asker)
            turn = self.core.reply(conversation.id, text, asker, CHANNEL,
                                   idempotency_key=f"tg:{update_id}" + (f":{n}" if n else ""), button=button)
        except (HelpdeskError, RecordsError) as e:
            return render_text(describe(e).message)
        record_turn(CHANNEL, turn.reply.kind if turn.answer else None, opened_ticket=turn.opened_ticket)
        if turn.answer is None:
            return []
        reply = turn.reply
        if not chat.private and reply.personal:
            return render_text(GROUP_PRIVATE)
        return render_reply(reply, self.config.public_url, message_id=turn.answer.id)

    def link(self, chat_id, user_id, code: str, confirmed: bool = False) -> list[dict]:
        """Link the account (in its private chat) to the member of `code`. An account linked to
        another member is asked first, and once switched its chat starts a new conversation."""
        current = self.core.links.linked_member(CHANNEL, str(user_id))
        try:
            if current is not None and not confirmed:
                wanted = self.core.links.member_of(code, self.core.clock())
                if wanted != current.member_number:
                    return render_text(RELINK_ASK.format(current=current.member_number, new=wanted),
                                       [[("切り替える", RELINK_DATA + code), ("やめる", RELINK_DATA + RELINK_NO)]])
            linked = self.core.consume_link_code(code, CHANNEL, str(user_id))
        except (HelpdeskError, RecordsError) as e:
            return render_text(describe(e).message)
        if current is not None and current.member_number != linked.member_number:
            self.core.new_conversation_for_chat(CHANNEL, chat_id)
        return render_text(LINKED.format(number=linked.member_number))

    def unlink(self, chat_id, user_id) -> list[dict]:
        """Remove the link; the chat's next message starts a new conversation (an anonymous one)."""
        if not self.core.links.unlink(CHANNEL, str(user_id)):
            return render_text(NOT_LINKED)
        self.core.new_conversation_for_chat(CHANNEL, chat_id)
        return render_text(UNLINKED)

    def spend_code(self, code: str) -> list[dict]:
        """A code posted in a group: others have seen it, so it is spent (the same words whether or not
        it was a live code)."""
        self.core.spend_link_code(code, f"{CHANNEL}:group")
        return render_text(CODE_SPENT_IN_GROUP)

    def lookup(self, update_id: int, chat: ChatRef, user_id, questions: tuple[str, ...]) -> list[dict]:
        """A command that is a record lookup (asked in a private chat): only once linked."""
        if not own_chat(chat, user_id) or self.core.linked_asker(CHANNEL, str(user_id)).role != "member":
            return render_text(LINK_HINT)
        return [m for n, q in enumerate(questions) for m in self.ask(update_id, chat, user_id, q, n=n)]

    def notify_state(self, chat_id) -> list[dict]:
        state = "オン" if self.outbox.notify_on(chat_id) else "オフ"
        return render_text(NOTIFY_STATE.format(state=state),
                           [[("通知をオンにする", NOTIFY_DATA + "on"), ("通知をオフにする", NOTIFY_DATA + "off")]])

    def set_notify(self, chat_id, user_id, on: bool) -> list[dict]:
        self.outbox.set_notify(chat_id, user_id, on, self.now())
        if not on:
            return render_text(NOTIFY_OFF)
        linked = self.core.linked_asker(CHANNEL, str(user_id)).role == "member"
        return render_text(NOTIFY_ON.format(linked=NOTIFY_ON_LINKED if linked else ""))

    def next_step(self, chat: ChatRef, user_id, message_id: str) -> list[dict]:
        """The core's next step after 「役に立たなかった」, drawn like any reply (asked twice, the same one)."""
        step = self.core.next_step(int(message_id), asker=self.asker(chat, user_id))
        return render_reply(step.reply, self.config.public_url, message_id=step.id)

    # -- not an answer --------------------------------------------------------------------------------------

    def feedback(self, chat: ChatRef, user_id, message_id: str, helpful: bool) -> bool:
        try:
            self.core.feedback(int(message_id), helpful, asker=self.asker(chat, user_id))
        except (HelpdeskError, ValueError):
            return False
        return True

    def ping(self) -> int:
        """This worker's pid, after a moment (so that a round of pings spreads over the workers): the
        bot waits until every worker has answered before it takes updates."""
        time.sleep(0.02)
        return os.getpid()


# -- the worker process's side -------------------------------------------------------------------------

_work: Work | None = None


def start_worker(instance_path, settings: Mapping, run: str, parent: int | None = None) -> None:
    """A worker process's initializer: JSON logs like the bot's own, its own services and core (which
    opens the index, if there is one, before the first question).

    Ctrl-C (`make run`) and a service stop signal the whole process group; the bot stops its workers
    itself once its updates are done, so they ignore both. A bot killed outright (SIGKILL, the OOM
    killer) cannot stop them, and a worker's queue never closes (it holds both ends of its pipe):
    it dies with its bot instead (`die_with_parent`)."""
    global _work
    from handlers.web.logs import configure as json_logs
    from helpdesk.services import build_services

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent or os.getppid())
    json_logs(settings["LOG_LEVEL"], settings["LOG_FORMAT"])

    _work = Work(TelegramConfig.from_settings(settings), build_services(instance_path, settings), run)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int, every: float = 1.0) -> None:
    """End this process when `parent` (the bot) ends. On Linux the kernel sends SIGKILL at once
    (prctl PR_SET_PDEATHSIG; every job may run twice, so nothing is lost); elsewhere a thread looks
    at the parent's id every second. Either way a parent already gone ends it now."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        watched = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        watched = False
    if os.getppid() != parent:  # the bot died before the kernel was told
        os._exit(1)
    if not watched:
        def watch():
            while os.getppid() == parent:
                time.sleep(every)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def call(name: str, args: tuple):
    """What the bot submits to its worker processes."""
    return _work.call(name, args)

"""The Telegram bot's Application, built in one function from the settings and the services.

`build_telegram_app(config, services)` gives the real python-telegram-bot Application aimed at
`{TELEGRAM_API_URL}/bot{token}/…` (a self-hosted Bot API server, or the tests' fake). Three pieces of
its plumbing are ours:

- `InboxQueue`: every update is written to the inbox (bot/outbox.py) before it enters the queue. With
  polling, the library confirms updates to Telegram on its next getUpdates, before they are processed;
  with a webhook it answers 200 at once. Either way a SIGKILL would lose the update; written first,
  it is processed again on the next start (`post_init` puts the unfinished ones back).
- `PerChatProcessor`: updates of different chats run concurrently, those of one chat one after the
  other, in the order they came.
- `TelegramDesk`: what the handlers need (the outbox, the sender, rate limits, the worker processes
  that answer: handlers/telegram_work.py), kept in `bot_data`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Mapping

import uvloop
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from telegram import BotCommand, Update
from telegram.ext import (Application, ApplicationBuilder, BaseUpdateProcessor, CallbackQueryHandler,
                          CommandHandler, MessageHandler, TypeHandler, filters)

from bot.hours import stamp
from bot.outbox import Outbox
from handlers import telegram_handlers as h
from handlers import telegram_work
from handlers.health import touch_heartbeat
from handlers.telegram_http import AiohttpRequest
from handlers.telegram_outbox import Drain, Sender
from handlers.telegram_work import Work

log = logging.getLogger("helpdesk.telegram")

# The library's opt-in to what its next major version does anyway: durations such as a 429's
# `retry_after` as timedelta (telegram_outbox.seconds reads either). Without it, every 429 logs a
# deprecation warning from inside the library.
os.environ.setdefault("PTB_TIMEDELTA", "1")

COMMANDS = (
    ("start", "できることのご案内"),
    ("help", "使い方とコマンドの一覧"),
    ("link", "アカウントの連携（/link 連携コード）"),
    ("unlink", "連携の解除"),
    ("status", "ご自身の会員情報と入会手続きの状況"),
    ("delivery", "日医ニュース・日本医師会雑誌の送付先"),
    ("human", "担当者（MAMIS運営事務局）に相談する"),
    ("notify", "手続きの状況・リリースノートのお知らせ（on / off）"),
)
#: The update types the bot answers; Telegram is asked for no others (and so sends no group member
#: changes, polls, reactions… that would only be stored).
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
#: The webhook server's path: https://…/telegram (the bot's server takes /telegram/ too).
WEBHOOK_PATH = "telegram"


@dataclass(frozen=True)
class TelegramConfig:
    """The bot's settings, taken from the declared list (helpdesk/settings.py), which holds their defaults."""

    token: str | None
    api_url: str
    public_url: str | None
    webhook_url: str | None
    webhook_secret: str | None
    rate_limit: str
    link_rate_limit: str
    concurrent_updates: int
    drain_interval: float
    workers: int

    @classmethod
    def from_settings(cls, settings: Mapping) -> "TelegramConfig":
        return cls(token=settings["TELEGRAM_BOT_TOKEN"], api_url=settings["TELEGRAM_API_URL"],
                   public_url=settings["PUBLIC_URL"], webhook_url=settings["TELEGRAM_WEBHOOK_URL"],
                   webhook_secret=settings["TELEGRAM_WEBHOOK_SECRET"], rate_limit=settings["TELEGRAM_RATE_LIMIT"],
                   link_rate_limit=settings["TELEGRAM_LINK_RATE_LIMIT"],
                   concurrent_updates=int(settings["TELEGRAM_CONCURRENT_UPDATES"]),
                   drain_interval=float(settings["TELEGRAM_DRAIN_INTERVAL"]),
                   workers=default_workers() if settings["TELEGRAM_WORKERS"] is None
                   else int(settings["TELEGRAM_WORKERS"]))

    @property
    def base_url(self) -> str:
        return self.api_url.rstrip("/") + "/bot"

    @property
    def base_file_url(self) -> str:
        return self.api_url.rstrip("/") + "/file/bot"


def default_workers() -> int:
    """One CPU for the event loop (busy under load: polling, parsing, sending), the rest for answering.
    On 2 CPUs one worker answered 330-470 updates/s against 250-300 for two, which contend for the
    database and the CPUs (docs/telegram.md)."""
    return max(1, (os.cpu_count() or 2) - 1)


class TelegramDesk:
    """The bot's state in its own process: the outbox's bookkeeping, the sender, the rate limits (in
    memory: one bot process), and the workers that answer (handlers/telegram_work.py)."""

    def __init__(self, config: TelegramConfig, services):
        self.config, self.services = config, services
        self.outbox = Outbox(services.store, h.CHANNEL)
        self.run = uuid.uuid4().hex
        self.sender: Sender | None = None
        self.drain: Drain | None = None
        self.drain_task: asyncio.Task | None = None
        self.username: str | None = None
        self.bot_id: int | None = None
        self.responded: set[int] = set()
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.user_limits = parse_many(config.rate_limit)
        self.link_limits = parse_many(config.link_rate_limit)
        self.warn_limits = parse_many("1 per minute")
        self.pool: ProcessPoolExecutor | None = None
        self.local: Work | None = None
        self.heard = float("-inf")

    @property
    def core(self):
        """The core, built in this process on first use. The handlers never need it (the workers answer);
        tests and tools reach the help desk through it."""
        return self.services.core()

    def now(self) -> str:
        return stamp(self.services.clock)  # not core.now(): the core (and its index) live in the workers

    def heartbeat(self) -> None:
        """Note that Telegram was heard from (/readyz), at most once a second: readiness allows minutes
        of silence, and a busy bot would otherwise touch the file for every update."""
        now = time.monotonic()
        if now - self.heard >= 1.0:
            self.heard = now
            touch_heartbeat(self.services.instance.path)

    # -- limits ---------------------------------------------------------------------------------------

    def _hit(self, limits, *keys) -> bool:
        return all([self.limiter.hit(limit, *map(str, keys)) for limit in limits])

    def allow(self, user_id) -> bool:
        return self._hit(self.user_limits, "user", user_id)

    def warn_once(self, user_id) -> bool:
        return self._hit(self.warn_limits, "warned", user_id)

    def allow_link(self, chat_id) -> bool:
        return self._hit(self.link_limits, "link", chat_id)

    # -- the workers ----------------------------------------------------------------------------------

    async def start_work(self) -> None:
        """Start the worker processes and wait until each has its services (or use threads: 0 workers)."""
        if self.config.workers == 0:
            self.local = Work(self.config, self.services, self.run)
            return
        self.pool = self._new_pool()
        ready: set[int] = set()
        while len(ready) < self.config.workers:  # each worker has built its services (a first answer is quick)
            ready.update(await asyncio.gather(*(self.work("ping") for _ in range(self.config.workers))))

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: this process has threads and an event loop, which a fork would copy mid-flight.
        return ProcessPoolExecutor(self.config.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=telegram_work.start_worker,
                                   initargs=(self.services.instance.path, dict(self.services.config), self.run))

    async def work(self, name: str, *args):
        """Run a method of `Work` off the event loop: in a worker process (or a thread).

        A worker that dies (killed, out of memory) breaks the pool: the first call to notice starts a
        new one, and the call is made once more there. That is safe because every job may run twice:
        an answered update is skipped, feedback is set, not added."""
        if self.pool is None:
            return await asyncio.to_thread(self.local.call, name, args)
        for attempt in (1, 2):
            pool = self.pool
            try:
                return await asyncio.get_running_loop().run_in_executor(pool, telegram_work.call, name, args)
            except BrokenProcessPool:
                if pool is self.pool:
                    log.error("a worker process stopped unexpectedly; starting new ones")
                    pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = self._new_pool()
                if attempt == 2:
                    raise

    async def stop_work(self) -> None:
        if self.pool is not None:
            await asyncio.to_thread(self.pool.shutdown, True, cancel_futures=True)
            self.pool = None


class InboxQueue(asyncio.Queue):
    """The update queue, writing each update to the inbox before it is queued (see the module doc).

    A polled update is kept as Telegram sent it (`verbatim`, filled by PollingRequest for the batch
    being queued); re-encoding the parsed object (`to_dict`) cost a tenth of the event loop."""

    def __init__(self, desk: TelegramDesk):
        super().__init__()
        self.desk = desk
        self.verbatim: dict[int, dict] = {}

    async def put(self, item) -> None:
        if isinstance(item, Update):
            chat = item.effective_chat
            payload = self.verbatim.pop(item.update_id, None) or item.to_dict()
            await asyncio.to_thread(self.desk.outbox.receive, item.update_id, chat.id if chat else None,
                                    payload, self.desk.now())
            self.desk.heartbeat()  # a webhook call (or a polled update) arrived
        await super().put(item)


class PerChatProcessor(BaseUpdateProcessor):
    """Concurrent across chats, in order within a chat (one asyncio.Lock per chat with updates in flight)."""

    def __init__(self, max_concurrent_updates: int):
        super().__init__(max_concurrent_updates)
        self.locks: dict[object, list] = {}

    async def do_process_update(self, update, coroutine) -> None:
        chat = getattr(update, "effective_chat", None)
        key = chat.id if chat is not None else id(update)
        entry = self.locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                await coroutine
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self.locks.pop(key, None)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class PollingRequest(AiohttpRequest):
    """The getUpdates connection: notes each successful long poll for /readyz (handlers/health.py) and
    hands the batch's updates, as Telegram sent them, to the inbox before the library queues them."""

    def __init__(self, inbox: InboxQueue, **kwargs):
        super().__init__(**kwargs)
        self.inbox = inbox

    async def do_request(self, *args, **kwargs):
        status, body = await super().do_request(*args, **kwargs)
        if status < 300:
            self.inbox.desk.heartbeat()
            try:
                self.inbox.verbatim = {u["update_id"]: u for u in json.loads(body)["result"]}
            except (ValueError, KeyError, TypeError):  # not a getUpdates answer after all: re-encoded instead
                self.inbox.verbatim = {}
        return status, body


def application(config: TelegramConfig, desk: TelegramDesk) -> Application:
    """The Application with our plumbing and no handlers (the benchmark's echo ceiling uses this too)."""
    if not config.token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    # The library's own getUpdates request settings (one connection), plus the heartbeat.
    inbox = InboxQueue(desk)
    polling = PollingRequest(inbox, connection_pool_size=1)
    app = (ApplicationBuilder().token(config.token).base_url(config.base_url).base_file_url(config.base_file_url)
           .request(AiohttpRequest()).get_updates_request(polling)
           .concurrent_updates(PerChatProcessor(config.concurrent_updates)).update_queue(inbox)
           .post_init(post_init).post_stop(post_stop).build())
    app.bot_data["helpdesk"] = desk
    return app


def build_telegram_app(config: TelegramConfig, services) -> Application:
    """The bot: every command, text, button and other update, and one error handler."""
    desk = TelegramDesk(config, services)
    app = application(config, desk)
    app.add_handler(TypeHandler(Update, h.admit), group=-1)
    commands = {"start": h.start, "help": h.help_command, "link": h.link, "unlink": h.unlink, "status": h.status,
                "delivery": h.delivery, "human": h.human, "notify": h.notify}
    for name, callback in commands.items():
        app.add_handler(CommandHandler(name, callback, filters=~filters.UpdateType.EDITED))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED, h.edited))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, h.text))
    app.add_handler(CallbackQueryHandler(h.press))
    app.add_handler(MessageHandler(~filters.TEXT & ~filters.StatusUpdate.ALL, h.other))
    app.add_handler(TypeHandler(Update, h.finish), group=1)
    app.add_error_handler(h.on_error)
    return app


async def post_init(app: Application) -> None:
    """Before the first update: learn our name (kept for the web's deep link), register the commands,
    put back the updates an earlier run did not finish, and start draining the outbox."""
    desk: TelegramDesk = app.bot_data["helpdesk"]
    desk.username, desk.bot_id = app.bot.username, app.bot.id
    await asyncio.to_thread(desk.outbox.set_meta, "username", app.bot.username)
    if app.handlers:
        await app.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
    desk.sender = Sender(app.bot, desk.outbox, desk.run, desk.now)
    desk.sender.unreachable = await asyncio.to_thread(desk.outbox.unreachable_chats)
    for payload in await asyncio.to_thread(desk.outbox.unfinished):
        await app.update_queue.put(Update.de_json(payload, app.bot))
    await desk.start_work()
    desk.drain = Drain(desk.sender, interval=desk.config.drain_interval)
    desk.drain_task = asyncio.create_task(desk.drain.run(), name="outbox-drain")


async def post_stop(app: Application) -> None:
    desk: TelegramDesk = app.bot_data["helpdesk"]
    if desk.drain_task is not None:
        desk.drain_task.cancel()
        try:
            await desk.drain_task
        except asyncio.CancelledError:
            pass
    await desk.stop_work()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The bot's event loop: uvloop's (libuv, compiled), which does the loop's own work (sockets,
    callbacks, hand-offs to the workers) in less time than asyncio's default loop."""
    return uvloop.new_event_loop()


def run(config: TelegramConfig, services, *, webhook: bool = False, listen: str = "127.0.0.1",
        port: int = 8443, stop_signals=None) -> None:
    """Run the bot until stopped: long polling, or the library's webhook server with a secret token
    (never without one: anyone who reaches the webhook could post updates in a doctor's name)."""
    if webhook and not config.webhook_secret:
        raise ValueError("webhook mode needs a secret token")
    app = build_telegram_app(config, services)
    asyncio.set_event_loop(new_event_loop())  # the library runs on the current event loop
    kwargs = {} if stop_signals is None else {"stop_signals": stop_signals}
    if webhook:
        app.run_webhook(listen=listen, port=port, url_path=WEBHOOK_PATH, webhook_url=config.webhook_url,
                        secret_token=config.webhook_secret, allowed_updates=list(ALLOWED_UPDATES), **kwargs)
    else:
        app.run_polling(allowed_updates=list(ALLOWED_UPDATES), **kwargs)

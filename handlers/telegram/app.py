"""The Telegram bot's Application, built in one function from the settings and the services.

`build_telegram_app(config, services)` gives the real python-telegram-bot Application aimed at
`{TELEGRAM_API_URL}/bot{token}/…` (a self-hosted Bot API server, or the tests' fake), with our
intake in place of the library's (handlers/telegram/intake.py: the inbox written first, one chat at a
time, one bad update stopping nobody) and `TelegramDesk`: what the handlers need (the outbox, the
sender, rate limits, the worker processes that answer: handlers/telegram/work.py), kept in `bot_data`.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import uvloop
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from telegram import BotCommand, Update
from telegram.ext import (Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler, MessageHandler,
                          TypeHandler, filters)

from bot.desk.hours import stamp
from bot.messaging.outbox import Outbox
from handlers.telegram import updates as h
from handlers.telegram import work as telegram_work
from handlers.web.health import touch_heartbeat
from handlers.telegram.config import TelegramConfig, use_timedelta_durations
from handlers.telegram.intake import HelpdeskBot, HelpdeskUpdater, InboxQueue, PerChatProcessor, PollingRequest
from handlers.telegram.bot_api import AiohttpRequest
from handlers.telegram.outbox import Drain, Sender
from handlers.telegram.work import CHANNEL, Work

log = logging.getLogger("helpdesk.telegram")

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
#: An update not answered after this many seconds means the bot no longer answers: the heartbeat
#: (/readyz) stops until it is. Answers take milliseconds; a flood-control wait can take tens of seconds.
STUCK_AFTER = 60.0


class TelegramDesk:
    """The bot's state in its own process: the outbox's bookkeeping, the sender, the rate limits (in
    memory: one bot process), and the workers that answer (handlers/telegram/work.py)."""

    def __init__(self, config: TelegramConfig, services):
        self.config, self.services = config, services
        self.outbox = Outbox(services.store, CHANNEL)
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
        self.waiting: dict[int, float] = {}  # update id → when it came in, until it has been handled
        self.stuck_after = STUCK_AFTER

    @property
    def core(self):
        """The core, built in this process on first use. The handlers never need it (the workers answer);
        tests and tools reach the help desk through it."""
        return self.services.core()

    def now(self) -> str:
        return stamp(self.services.clock)  # not core.now(): the core (and its index) live in the workers

    def heartbeat(self) -> None:
        """Note for /readyz that updates are being answered: called when Telegram was heard from (a
        poll read, a webhook call), but not while an update has waited longer than `stuck_after` (the
        bot hears Telegram yet answers nobody). At most once a second: readiness allows minutes of
        silence, and a busy bot would otherwise touch the file for every update."""
        now = time.monotonic()
        if now - self.heard < 1.0:
            return
        oldest = next(iter(self.waiting.values()), None)  # in order of arrival
        if oldest is not None and now - oldest > self.stuck_after:
            return
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
                                   initargs=(self.services.instance.path, dict(self.services.config), self.run,
                                             os.getpid()))

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


def application(config: TelegramConfig, desk: TelegramDesk) -> Application:
    """The Application with our plumbing and no handlers (the benchmark's echo ceiling uses this too)."""
    if not config.token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    # The library's own getUpdates request settings (one connection), plus the heartbeat.
    inbox = InboxQueue(desk)
    bot = HelpdeskBot(inbox, config.token, base_url=config.base_url, base_file_url=config.base_file_url,
                      request=AiohttpRequest(), get_updates_request=PollingRequest(inbox, connection_pool_size=1))
    app = (ApplicationBuilder().updater(HelpdeskUpdater(bot, inbox))
           .concurrent_updates(PerChatProcessor(config.concurrent_updates, desk))
           .post_init(post_init).post_stop(post_stop).build())
    app.bot_data["helpdesk"] = desk
    return app


def build_telegram_app(config: TelegramConfig, services) -> Application:
    """The bot: every command, text, button and other update, and one error handler."""
    use_timedelta_durations()
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

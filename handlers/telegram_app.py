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
- `HelpdeskBot` with `PollingRequest`: one update no one can read must not stop the others. A text
  with a lone UTF-16 surrogate (which no UTF-8 database or API takes) has it replaced by U+FFFD before
  anything reads it; a batch the library cannot parse is read one update at a time, and an update that
  still fails is set aside: kept in the inbox without its content, confirmed to Telegram, not answered.
- `HelpdeskUpdater` with `WebhookHandler`: the same for a webhook call. The library's handler answers
  an update it cannot parse with 400 (logging it whole), which Telegram retries, holding every later
  update behind it; ours sets it aside and answers 200.
"""
from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import re
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from http import HTTPStatus

import tornado.web
import uvloop
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import (Application, ApplicationBuilder, BaseUpdateProcessor, CallbackQueryHandler,
                          CommandHandler, ExtBot, MessageHandler, TypeHandler, Updater, filters)
from telegram.ext._utils.webhookhandler import TelegramHandler, WebhookServer

from bot.hours import stamp
from bot.outbox import Outbox
from handlers import telegram_handlers as h
from handlers import telegram_work
from handlers.health import touch_heartbeat
from handlers.telegram_config import TelegramConfig, use_timedelta_durations
from handlers.telegram_http import AiohttpRequest
from handlers.telegram_outbox import Drain, Sender
from handlers.telegram_work import CHANNEL, Work

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
#: A JSON escape of a UTF-16 surrogate: the only way a lone one can arrive (valid UTF-8 cannot carry it).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class TelegramDesk:
    """The bot's state in its own process: the outbox's bookkeeping, the sender, the rate limits (in
    memory: one bot process), and the workers that answer (handlers/telegram_work.py)."""

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
            self.desk.waiting.setdefault(item.update_id, time.monotonic())  # until PerChatProcessor is done
            payload = self.verbatim.pop(item.update_id, None)
            if payload is None:  # a webhook call (polled updates were repaired in PollingRequest)
                payload = item.to_dict()
                repaired = without_lone_surrogates(payload)
                if repaired is not payload:
                    payload, item = repaired, Update.de_json(repaired, item.get_bot())
            chat = item.effective_chat
            await asyncio.to_thread(self.desk.outbox.receive, item.update_id, chat.id if chat else None,
                                    payload, self.desk.now())
            self.desk.heartbeat()
        await super().put(item)


def without_lone_surrogates(value):
    """`value` (JSON data) with every lone UTF-16 surrogate in its strings replaced by U+FFFD; the same
    object when there is none. Telegram passes on whatever a client sent, and one such character made
    every write of the update (the inbox, the conversation) fail, again after each restart."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, (list, dict)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        changed = {k: r for k, v in items if (r := without_lone_surrogates(v)) is not v}
        if not changed:
            return value
        copy = dict(value) if isinstance(value, dict) else list(value)
        for k, r in changed.items():
            copy[k] = r
        return copy
    return value


def set_aside(raw: dict) -> dict:
    """What the inbox keeps of an update nobody can read: its id and kind, none of its content."""
    return {"update_id": raw.get("update_id"), "set_aside": "unreadable",
            "kinds": sorted(k for k in raw if k != "update_id")}


class PerChatProcessor(BaseUpdateProcessor):
    """Concurrent across chats, in order within a chat (one asyncio.Lock per chat with updates in flight)."""

    def __init__(self, max_concurrent_updates: int, desk: TelegramDesk):
        super().__init__(max_concurrent_updates)
        self.locks: dict[object, list] = {}
        self.desk = desk

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
            self.desk.waiting.pop(getattr(update, "update_id", None), None)  # handled (the heartbeat's measure)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class PollingRequest(AiohttpRequest):
    """The getUpdates connection: hands the batch's updates, as Telegram sent them (lone surrogates
    replaced, for the library too), to the inbox before the library queues them."""

    def __init__(self, inbox: InboxQueue, **kwargs):
        super().__init__(**kwargs)
        self.inbox = inbox

    async def do_request(self, *args, **kwargs):
        status, body = await super().do_request(*args, **kwargs)
        if status < 300:
            try:
                answer = json.loads(body)
                if _SURROGATE_ESCAPE.search(body):  # rare: only then walk the batch
                    repaired = without_lone_surrogates(answer)
                    if repaired is not answer:
                        answer, body = repaired, json.dumps(repaired, ensure_ascii=False).encode()
                self.inbox.verbatim = {u["update_id"]: u for u in answer["result"]}
            except (ValueError, KeyError, TypeError):  # not a getUpdates answer after all: re-encoded instead
                self.inbox.verbatim = {}
        return status, body


class HelpdeskBot(ExtBot):
    """The library's bot, but a polled batch it cannot parse is read one update at a time, and an
    update that still fails is set aside (see the module doc) instead of failing the batch, which the
    library would fetch again and fail on forever; and a poll read notes the heartbeat (/readyz)."""

    def __init__(self, inbox: InboxQueue, *args, **kwargs):
        self._inbox = inbox  # (the library's objects are frozen: only private names may be set)
        super().__init__(*args, **kwargs)

    async def get_updates(self, *args, **kwargs):
        try:
            updates = await super().get_updates(*args, **kwargs)
        except TelegramError:  # the library's network retry loop deals with these
            raise
        except Exception:
            if not self._inbox.verbatim:
                raise
            updates = self.one_by_one()
        self._inbox.desk.heartbeat()
        return updates

    def one_by_one(self) -> tuple[Update, ...]:
        updates = []
        for raw in list(self._inbox.verbatim.values()):
            update = self.read(raw)
            self.insert_callback_data(update)
            updates.append(update)
        return tuple(updates)

    def read(self, raw: dict) -> Update:
        """`raw` (an update as Telegram sent it) parsed; if the library cannot parse it, an empty update
        with its id, queued so that it is kept and confirmed, and the inbox keeps `set_aside(raw)`."""
        try:
            return Update.de_json(raw, self)
        except Exception as e:
            update_id = raw["update_id"]
            log.warning("update %s set aside: it cannot be read (%s)", update_id, type(e).__name__)
            self._inbox.verbatim[update_id] = set_aside(raw)
            update = Update(update_id)
            update.set_bot(self)
            return update


class WebhookHandler(TelegramHandler):
    """The library's webhook handler (403 without the secret token, or for a body not sent as JSON),
    but an update it cannot parse is set aside (`HelpdeskBot.read`) and answered 200, so that Telegram
    sends the next ones: the library answered 400, which Telegram retries, holding every later update
    behind it, and logged the update whole at CRITICAL, users' texts and names with it."""

    async def post(self) -> None:
        self._validate_post()
        try:
            raw = json.loads(self.request.body)
        except (ValueError, RecursionError):  # not JSON (the library answered 500)
            raw = None
        if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST)  # not an update: Telegram never sends it
        update = self.bot.read(raw)
        self.bot.insert_callback_data(update)
        await self.update_queue.put(update)


class WebhookApp(tornado.web.Application):
    """The webhook server's one route: `WebhookHandler` at the webhook path, with or without a slash."""

    def __init__(self, path: str, bot: HelpdeskBot, update_queue: InboxQueue, secret_token: str | None):
        super().__init__([(rf"{path}/?", WebhookHandler,
                           {"bot": bot, "update_queue": update_queue, "secret_token": secret_token})])

    def log_request(self, handler) -> None:
        """Quiet, as the library's: a line per update would be noise (and the bot logs what matters)."""


class HelpdeskUpdater(Updater):
    """The library's updater, with `WebhookApp` as the webhook server's application. The library builds
    its own in `_start_webhook`, with no way to pass another handler; this does what that method does
    (python-telegram-bot is pinned to one version) for the server we run: plain HTTP on listen:port,
    TLS ending at the reverse proxy (docs/deployment.md). Polling is the library's, untouched."""

    __slots__ = ()

    async def _start_webhook(self, listen, port, url_path, bootstrap_retries, allowed_updates, cert=None,
                             key=None, drop_pending_updates=None, webhook_url=None, ready=None, ip_address=None,
                             max_connections=40, secret_token=None, unix=None) -> None:
        if cert or key or unix:
            raise ValueError("the bot's webhook server takes plain HTTP on listen:port (TLS at the proxy)")
        path = "/" + url_path.lstrip("/")
        self._httpd = WebhookServer(listen, port, WebhookApp(path, self.bot, self.update_queue, secret_token), None)
        await self._bootstrap(max_retries=bootstrap_retries, allowed_updates=allowed_updates,
                              webhook_url=webhook_url or self._gen_webhook_url("http", listen, port, path),
                              drop_pending_updates=drop_pending_updates, ip_address=ip_address,
                              max_connections=max_connections, secret_token=secret_token)
        await self._httpd.serve_forever(ready=ready)


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

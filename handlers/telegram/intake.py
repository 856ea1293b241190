"""How updates come in: written to the inbox first, one chat at a time, and never stopped by one bad update.

The Application (handlers/telegram/app.py) is built with these in place of the library's defaults:

- `InboxQueue`: every update is written to the inbox (bot/messaging/outbox.py) before it enters the
  queue, so a SIGKILL after Telegram was answered loses nothing (`post_init` puts it back).
- `PerChatProcessor`: updates of different chats run concurrently, those of one chat in order.
- `HelpdeskBot` with `PollingRequest`: a lone UTF-16 surrogate is replaced by U+FFFD before anything
  reads it; a batch the library cannot parse is read one update at a time, and an update that still
  fails is set aside (kept without its content, confirmed, not answered).
- `HelpdeskUpdater` with `WebhookHandler`: the same for a webhook call (the library's handler answers
  400, which Telegram retries, holding every later update behind it; ours sets it aside and answers 200).
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from http import HTTPStatus

import tornado.web
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import BaseUpdateProcessor, ExtBot, Updater
from telegram.ext._utils.webhookhandler import TelegramHandler, WebhookServer

from handlers.telegram.bot_api import AiohttpRequest

log = logging.getLogger("helpdesk.telegram")

#: A JSON escape of a UTF-16 surrogate: the only way a lone one can arrive (valid UTF-8 cannot carry it).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class InboxQueue(asyncio.Queue):
    """The update queue, writing each update to the inbox before it is queued (see the module doc).

    A polled update is kept as Telegram sent it (`verbatim`, filled by PollingRequest for the batch
    being queued); re-encoding the parsed object (`to_dict`) cost a tenth of the event loop."""

    def __init__(self, desk):  # handlers/telegram/app.py's TelegramDesk
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

    def __init__(self, max_concurrent_updates: int, desk):
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

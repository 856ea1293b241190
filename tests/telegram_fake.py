"""A fake Telegram Bot API server on 127.0.0.1, for the tests and the benchmark.

It speaks just enough of the Bot API for the real python-telegram-bot Application: `getMe`,
`getUpdates` (long polling with offsets, so an update the bot has not confirmed is offered again after
a restart, as Telegram does), `setWebhook` / `deleteWebhook` / `getWebhookInfo` (with a webhook set,
queued updates are POSTed to it with the secret token), `sendMessage`, `answerCallbackQuery`,
`editMessageReplyMarkup`, `setMyCommands`; any other method answers `true`. Every call the bot makes
is recorded with its parameters and arrival time. A test can make the next calls of a method fail
with 403 (the user blocked the bot), 429 (flood control with `retry_after`) or any other status, and
a token other than the configured one is refused with 401.

`drive(...)` turns it into a closed-loop load generator for the benchmark: each of N chats gets its
next message as soon as the previous one has been answered, and the latency from offering an update
to its `sendMessage` arriving is recorded.

Run alone (`python -m tests.telegram_fake --port 8081`) it serves until interrupted, with a small
control API under /_fake/ (used by the benchmark, which keeps the fake in its own process).
"""
from __future__ import annotations

import html
import itertools
from collections import Counter
import json
import re
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

TOKEN = "123456:TEST-token"
BOT_ID = 123456
BOT_USERNAME = "mamis_helpdesk_test_bot"
MAX_MESSAGE = 4096  # UTF-16 code units, as Telegram counts them

# Parameters the library sends JSON-encoded; every other parameter is a plain string (text stays text).
_UPDATE_IDS = itertools.count(int(time.time() * 1000) % 1_000_000_000)
_JSON_FIELDS = {"chat_id", "message_id", "reply_markup", "commands", "allowed_updates", "offset", "limit",
                "timeout", "link_preview_options", "show_alert", "reply_parameters", "drop_pending_updates",
                "max_connections", "cache_time", "scope"}


@dataclass
class Call:
    method: str
    params: dict
    at: float = field(default_factory=time.monotonic)


@dataclass
class Failure:
    status: int
    description: str
    retry_after: int | None = None
    chat_id: int | None = None


class FakeTelegram:
    """The fake server; `start()` binds a free port and serves from a background thread."""

    def __init__(self, token: str = TOKEN, username: str = BOT_USERNAME):
        self.token, self.username = token, username
        self.calls: list[Call] = []
        self.cond = threading.Condition()
        self.pending: list[dict] = []  # offered, not yet confirmed by an offset
        self.ids = _UPDATE_IDS  # Telegram never reuses an update id for a bot, across restarts too
        self.message_ids = itertools.count(1)
        self.failures: dict[str, list[Failure]] = {}
        self.webhook = {"url": "", "secret_token": None}
        self.last_error: tuple[int, str] | None = None
        self.offered_at: dict[int, float] = {}
        self.driver: Driver | None = None
        self.held_method: str | None = None
        self.held = 0
        self.released: threading.Event | None = None
        self.deliver_held = False
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, port: int = 0) -> "FakeTelegram":
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self.server = _Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True, name="fake-telegram").start()
        threading.Thread(target=self._push_webhook, daemon=True, name="fake-telegram-webhook").start()
        return self

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.cond:
            self.cond.notify_all()

    # -- what a test offers ---------------------------------------------------------------------------

    def offer(self, update: dict) -> int:
        """Queue an update (without `update_id`, which is assigned here); returns its id."""
        with self.cond:
            update = {"update_id": next(self.ids), **update}
            self.pending.append(update)
            self.offered_at[update["update_id"]] = time.monotonic()
            self.cond.notify_all()
        return update["update_id"]

    def message(self, chat_id: int, text: str, *, user_id: int | None = None, chat_type: str = "private",
                entities: list | None = None, reply_to: dict | None = None, kind: str = "message",
                **extra) -> int:
        """Offer a message from user `user_id` (default: the chat's id, as in a private chat)."""
        msg = self.message_dict(chat_id, text, user_id=user_id, chat_type=chat_type, **extra)
        if entities:
            msg["entities"] = entities
        if reply_to:
            msg["reply_to_message"] = reply_to
        return self.offer({kind: msg})

    def command(self, chat_id: int, text: str, **kw) -> int:
        command = text.split()[0]
        return self.message(chat_id, text, entities=[{"type": "bot_command", "offset": 0,
                                                      "length": len(command)}], **kw)

    def press(self, chat_id: int, data: str, *, message_id: int = 1, user_id: int | None = None) -> int:
        """Offer a press on an inline keyboard button carrying `data`."""
        return self.offer({"callback_query": {
            "id": str(next(self.ids)), "from": self.user(user_id or chat_id), "chat_instance": "ci",
            "data": data, "message": self.message_dict(chat_id, "", user_id=BOT_ID, message_id=message_id),
        }})

    def message_dict(self, chat_id: int, text: str | None, *, user_id: int | None = None,
                     chat_type: str = "private", message_id: int | None = None, **extra) -> dict:
        chat = {"id": chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "医師会グループ"
        msg = {"message_id": message_id or next(self.message_ids), "date": int(time.time()), "chat": chat,
               "from": self.user(user_id or chat_id), **extra}
        if text is not None:
            msg["text"] = text
        return msg

    def user(self, user_id: int) -> dict:
        if user_id == BOT_ID:
            return {"id": BOT_ID, "is_bot": True, "first_name": "MAMIS", "username": self.username}
        return {"id": user_id, "is_bot": False, "first_name": "テスト", "language_code": "ja"}

    def fail(self, method: str, status: int, *, times: int = 1, retry_after: int | None = None,
             description: str | None = None, chat_id: int | None = None) -> None:
        """Make the next `times` calls of `method` (to `chat_id`, if given) fail with `status`."""
        description = description or {403: "Forbidden: bot was blocked by the user",
                                       429: f"Too Many Requests: retry after {retry_after}",
                                       400: "Bad Request: message text is empty"}.get(status, "Internal Server Error")
        with self.cond:
            self.failures.setdefault(method, []).extend(
                Failure(status, description, retry_after, chat_id) for _ in range(times))

    # -- what a test reads ----------------------------------------------------------------------------

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        with self.cond:
            return [c for c in self.calls if c.method == method
                    and (chat_id is None or c.params.get("chat_id") == chat_id)]

    def sent(self, chat_id: int) -> list[dict]:
        """Parameters of every message sent to `chat_id`, in order."""
        return [c.params for c in self.calls_of("sendMessage", chat_id)]

    def wait_for(self, method: str, chat_id: int | None = None, count: int = 1, timeout: float = 10.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [c for c in self.calls if c.method == method
                         and (chat_id is None or c.params.get("chat_id") == chat_id)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    made = Counter(c.method for c in self.calls)
                    raise AssertionError(f"{method} to {chat_id}: {len(found)} of {count} calls within "
                                         f"{timeout}s; calls so far: {dict(made)}")
                self.cond.wait(left)

    def wait_confirmed(self, update_id: int, timeout: float = 10.0) -> None:
        """Wait until the bot has confirmed `update_id` (asked for a later offset)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while any(u["update_id"] <= update_id for u in self.pending):
                if not self.cond.wait(max(0.0, deadline - time.monotonic())) and time.monotonic() > deadline:
                    raise AssertionError(f"update {update_id} was not confirmed within {timeout}s")

    # -- the Bot API ---------------------------------------------------------------------------------

    def hold(self, method: str) -> None:
        """Leave calls of `method` hanging (not delivered) until `release()`: a bot killed meanwhile
        sees its send fail, as if the network had dropped it before Telegram took it."""
        with self.cond:
            self.held_method = method
            self.held = 0
            self.released = threading.Event()

    def release(self, deliver: bool = False) -> None:
        with self.cond:
            self.held_method, self.deliver_held = None, deliver
            if self.released is not None:
                self.released.set()

    def handle(self, method: str, params: dict) -> tuple[int, dict]:
        if method == self.held_method:
            with self.cond:
                self.held += 1
                self.cond.notify_all()
            self.released.wait(30)
            if not self.deliver_held:
                return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        with self.cond:
            self.calls.append(Call(method, params))
            self.cond.notify_all()
            failure = self._take_failure(method, params)
        if failure is not None:
            body = {"ok": False, "error_code": failure.status, "description": failure.description}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            return failure.status, body
        answer = getattr(self, "api_" + method, None)
        result = answer(params) if answer else True
        if isinstance(result, tuple):
            return result
        return 200, {"ok": True, "result": result}

    def _take_failure(self, method: str, params: dict) -> Failure | None:
        queue = self.failures.get(method) or []
        for i, failure in enumerate(queue):
            if failure.chat_id is None or failure.chat_id == params.get("chat_id"):
                return queue.pop(i)
        return None

    def api_getMe(self, params):
        return {**self.user(BOT_ID), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    def api_getUpdates(self, params):
        if self.webhook["url"]:
            return 409, {"ok": False, "error_code": 409,
                         "description": "Conflict: can't use getUpdates method while webhook is active"}
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 2.0)
        with self.cond:
            if offset:
                self.pending = [u for u in self.pending if u["update_id"] >= offset]
                self.cond.notify_all()
            while not self.pending and time.monotonic() < deadline and self.server is not None:
                self.cond.wait(deadline - time.monotonic())
            return self.pending[:limit]

    def api_sendMessage(self, params):
        chat_id = params["chat_id"]
        shown = params.get("text") or ""
        if params.get("parse_mode") == "HTML":  # Telegram counts the text its entities leave
            shown = html.unescape(re.sub(r"<[^>]+>", "", shown))
        if len(shown.encode("utf-16-le")) // 2 > MAX_MESSAGE:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
        if self.driver is not None:
            self.driver.answered(chat_id, params.get("text") or "")
        message = self.message_dict(chat_id, params.get("text"), user_id=BOT_ID,
                                    chat_type="private" if chat_id > 0 else "group")
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return message

    def api_editMessageReplyMarkup(self, params):
        return self.message_dict(params.get("chat_id") or 1, "", user_id=BOT_ID,
                                 message_id=params.get("message_id"))

    def api_setWebhook(self, params):
        with self.cond:
            self.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token")}
            if params.get("drop_pending_updates"):
                self.pending.clear()
            self.cond.notify_all()
        return True

    def api_deleteWebhook(self, params):
        with self.cond:
            self.webhook = {"url": "", "secret_token": None}
            if params.get("drop_pending_updates"):
                self.pending.clear()
        return True

    def api_getWebhookInfo(self, params):
        info = {"url": self.webhook["url"], "has_custom_certificate": False,
                "pending_update_count": len(self.pending)}
        if self.last_error:
            info["last_error_date"], info["last_error_message"] = self.last_error
        return info

    def _push_webhook(self) -> None:
        """With a webhook set, POST each queued update to it (with the secret token), oldest first."""
        while self.server is not None:
            with self.cond:
                while self.server is not None and not (self.webhook["url"] and self.pending):
                    self.cond.wait(0.5)
                if self.server is None:
                    return
                update, hook = self.pending[0], dict(self.webhook)
            headers = {"Content-Type": "application/json"}
            if hook["secret_token"]:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            request = urllib.request.Request(hook["url"], json.dumps(update).encode(), headers)
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    ok = response.status == 200
            except OSError as e:
                ok = False
                self.last_error = (int(time.time()), f"Connection failed: {e}")
            with self.cond:
                if ok and self.pending and self.pending[0] is update:
                    self.pending.pop(0)
                    self.cond.notify_all()
            if not ok:
                time.sleep(0.2)

    # -- the benchmark's load ----------------------------------------------------------------------------

    def drive(self, chats: int, total: int, texts: list[str], first_chat: int = 10_000) -> "Driver":
        self.driver = Driver(self, chats, total, texts, first_chat)
        self.driver.begin()
        return self.driver


class Driver:
    """Closed loop: each chat sends its next message once the last one was answered."""

    def __init__(self, fake: FakeTelegram, chats: int, total: int, texts: list[str], first_chat: int):
        self.fake, self.total, self.texts = fake, total, texts
        self.chats = list(range(first_chat, first_chat + chats))
        self.lock = threading.Lock()
        self.offered = 0
        self.outstanding: dict[int, float] = {}
        self.latencies: list[float] = []
        self.errors = 0
        self.started = self.finished = 0.0
        self.done = threading.Event()

    def begin(self) -> None:
        self.started = time.monotonic()
        for chat in self.chats:
            self._next(chat)

    def _next(self, chat: int) -> None:
        with self.lock:
            if self.offered >= self.total:
                return
            text = self.texts[self.offered % len(self.texts)]
            self.offered += 1
            self.outstanding[chat] = time.monotonic()
        self.fake.message(chat, text)

    def answered(self, chat: int, text: str) -> None:
        with self.lock:
            offered = self.outstanding.pop(chat, None)
            if offered is None:
                return
            if "一時的なエラー" in text:  # the bot's apology: the update failed
                self.errors += 1
            self.latencies.append(time.monotonic() - offered)
            if len(self.latencies) >= self.total:
                self.finished = time.monotonic()
                self.done.set()
                return
        self._next(chat)

    def result(self) -> dict:
        return {"answered": len(self.latencies), "errors": self.errors, "offered": self.offered,
                "seconds": (self.finished or time.monotonic()) - self.started, "latencies": sorted(self.latencies)}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that went away (a killed bot) is expected here; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects
    fake: FakeTelegram

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the client's
        # delayed ACK hold the second one back ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.startswith("/_fake/"):
            return self._control(self.path[len("/_fake/"):], json.loads(raw or b"{}"))
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return self._send(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        if parts[0][3:] != self.fake.token:
            return self._send(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        status, body = self.fake.handle(parts[1], self._params(raw))
        self._send(status, body)

    def _params(self, raw: bytes) -> dict:
        kind = self.headers.get("Content-Type", "")
        if kind.startswith("application/json"):
            return json.loads(raw or b"{}")
        params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        return {k: json.loads(v) if k in _JSON_FIELDS else v for k, v in params.items()}

    def _control(self, action: str, body: dict) -> None:
        fake = self.fake
        if action == "drive":
            fake.drive(body["chats"], body["total"], body["texts"], body.get("first_chat", 10_000))
            return self._send(200, {"ok": True})
        if action == "result":
            driver = fake.driver
            if driver is not None:
                driver.done.wait(float(body.get("wait", 0)))
            return self._send(200, driver.result() if driver else {})
        if action == "reset":
            with fake.cond:
                fake.calls.clear()
                fake.driver = None
            return self._send(200, {"ok": True})
        self._send(404, {"ok": False})

    def _send(self, status: int, body: dict) -> None:
        try:
            data = json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # a lone surrogate in a text: sent escaped, as Telegram passes it on
            data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="A fake Telegram Bot API server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=TOKEN)
    args = parser.parse_args()
    server = FakeTelegram(args.token).start(args.port)
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()

"""Logs as one JSON object per line, with a request id, and without personal data.

A log line is read by a machine first (journald, a log shipper) and by a person second, so each is
`{"time", "level", "event", "logger", "request_id", ...}` written by python-json-logger. What the
help desk logs about a request is its route *rule* (`/api/conversations/<conversation_id>/messages`),
never the path, query string or body, so a question, a member's name or a link code typed by a user
cannot reach the log through a request line. Free text that does reach a log line (an exception's
message and traceback, a library's warning) passes `scrub` first: member numbers and institution codes
are masked and anything shaped like a link code is starred.

The same `configure` serves the web workers and the Telegram process (`request_id` there is whatever
the caller put in `REQUEST_ID`, e.g. the update id).

`LOG_FORMAT = "text"` (what `make run` uses) writes the same records for a person at a terminal
instead: one short line each, the time in JST, a request as `10:41:04 GET /api/conversations 201
119ms`. It is scrubbed by the same filter; only the layout differs.
"""
from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid
from datetime import datetime

from pythonjsonlogger.json import JsonFormatter

from bot.desk.hours import JST
from records.access import mask_identifiers_in_text

#: The id of the request (or Telegram update) being handled in this thread or task.
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# bot/accounts/linking.py's alphabet (no 0/O/1/I/L), 8 characters, optionally split 4-4 as people write them.
_LINK_CODE = re.compile(r"(?<![A-Za-z0-9])[A-HJKMNP-Z2-9]{4}[-\s]?[A-HJKMNP-Z2-9]{4}(?![A-Za-z0-9])")
_QUIET_ROUTES = ("/healthz", "/readyz", "/metrics", "/api/health")
_MARK = "_helpdesk_json"


def scrub(text: str) -> str:
    """Mask what could identify a person in free text: 7-digit member numbers, 10-digit institution
    codes (records.access masking) and link-code-shaped tokens."""
    return _LINK_CODE.sub("********", mask_identifiers_in_text(text))


#: Loggers whose arguments are withheld: python-telegram-bot logs whole updates and a message's
#: parameters (users' texts and names), and the Bot API's URL with the token in it.
_WITHHELD_ARGS = ("telegram",)
_PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*[0-9*]*(?:\.[0-9*]+)?[a-zA-Z%]")


class _Context(logging.Filter):
    """Adds the request id and scrubs the message of every record the handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if record.args and record.name.partition(".")[0] in _WITHHELD_ARGS:
            record.msg, record.args = _PLACEHOLDER.sub("(withheld)", str(record.msg)), None
        record.msg, record.args = scrub(record.getMessage()), None
        return True


class _JsonFormatter(JsonFormatter):
    """python-json-logger's formatter with the traceback scrubbed like the message."""

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        return scrub(super().formatException(ei))

    def formatTime(self, record, datefmt=None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (gunicorn and test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _TextFormatter(logging.Formatter):
    """One line a person reads at a terminal: JST time, the level unless INFO, the event, and for a
    request its method, route rule, status and duration."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, JST).strftime("%H:%M:%S")
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        if record.name == "helpdesk.request":
            line = f"{at} {record.method} {record.route} {record.status} {record.duration_ms:.0f}ms"
        else:
            line = f"{at} {level}{record.getMessage()} [{record.name}]"
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


def json_formatter() -> logging.Formatter:
    return _JsonFormatter(
        "{asctime}{levelname}{message}{name}{request_id}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "message": "event", "name": "logger"},
        json_ensure_ascii=False,
    )


#: LOG_FORMAT's values, each a function making the formatter.
FORMATTERS = {"json": json_formatter, "text": _TextFormatter}


def configure(level: str = "INFO", form: str | None = None) -> None:
    """Send every log record of this process to stderr as JSON, or as text lines with `form="text"`
    (the handler is made once per process; later calls change the level, and the form when given).
    gunicorn's own error log, set up before the app loads, is switched to the same form."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, _MARK, False)), None)
    if handler is None:
        handler = _StderrHandler()
        setattr(handler, _MARK, True)
        handler.setFormatter(FORMATTERS[form or "json"]())
        handler.addFilter(_Context())
        root.addHandler(handler)
    elif form is not None:
        handler.setFormatter(FORMATTERS[form]())
    root.setLevel(level.upper())
    # waitress warns "Task queue depth is N" whenever a request waits a moment for one of the
    # worker's threads: routine under a burst, and what it would tell is measured instead
    # (helpdesk_request_seconds, docs/capacity.md). Its errors still come through.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    for h in logging.getLogger("gunicorn.error").handlers:
        if not getattr(h, _MARK, False):
            h.addFilter(_Context())
            setattr(h, _MARK, True)
        h.setFormatter(handler.formatter)


def init_app(app) -> None:
    """A request id for every request (kept from a well-formed `X-Request-ID` set by the proxy, else
    new), echoed in the response, and one `request` line per request with its route rule, status and
    duration. Probes (/healthz, /readyz, /metrics) are logged at DEBUG, so they do not drown the rest."""
    from flask import g, request

    configure(app.config["LOG_LEVEL"], app.config.get("LOG_FORMAT"))
    log = logging.getLogger("helpdesk.request")

    @app.before_request
    def start_request():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _INCOMING_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()
        REQUEST_ID.set(g.request_id)

    @app.after_request
    def log_request(response):
        request_id = g.get("request_id")
        if request_id is None:
            return response
        response.headers["X-Request-ID"] = request_id
        rule = request.url_rule.rule if request.url_rule is not None else "-"
        level = logging.DEBUG if rule in _QUIET_ROUTES else logging.INFO
        log.log(level, "request", extra={
            "method": request.method, "route": rule, "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 2),
        })
        return response

    @app.teardown_request
    def end_request(_exc):
        REQUEST_ID.set("-")

"""Held requests in the web app: the process's watcher (bot/messaging/live.py) and the `wait` query parameter.

`?wait=<seconds>` (0–30, whole seconds) asks a GET to be held until there is news or the time runs out;
anything else is a Japanese 400. The watcher is made on the first held request of each process, so
no thread or connection crosses gunicorn's fork.
"""
from __future__ import annotations

import threading

from flask import current_app, request

from bot.messaging.live import MAX_WAIT, Watch
from bot.numbers import whole_number
from helpdesk.errors import CodedError

_made = threading.Lock()


def watch() -> Watch:
    """This app's watcher, with LIVE_WAITS slots."""
    app = current_app._get_current_object()
    found = app.extensions.get("helpdesk_live")
    if found is None:
        with _made:
            found = app.extensions.get("helpdesk_live")
            if found is None:
                services = app.extensions["helpdesk"]
                found = Watch(services.instance.helpdesk_db, int(app.config.get("LIVE_WAITS") or 0))
                app.extensions["helpdesk_live"] = found
    return found


def wait_seconds() -> int:
    """The `wait` query parameter: whole seconds from 0 to MAX_WAIT; absent is 0 (answer at once)."""
    value = request.args.get("wait")
    if value is None or value == "":
        return 0
    seconds = whole_number(value)
    if seconds is None or seconds > MAX_WAIT:
        raise CodedError("invalid_parameter", field="wait", expected=f"0〜{MAX_WAIT}の整数（秒）")
    return seconds


def after_id() -> int | None:
    """The `after` query parameter as a message id; anything but a non-negative integer is refused."""
    value = request.args.get("after")
    if value is None or value == "":
        return None
    after = whole_number(value)
    if after is None:
        raise CodedError("invalid_field", field="after", expected="メッセージID（0以上の整数）")
    return after

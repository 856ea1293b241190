"""The Telegram deep link of a link code, and its QR code as SVG, for the web chat.

A staff member issues a one-time link code in the web chat; the doctor links in one tap on
`https://t.me/<bot username>?start=<code>` or one scan of its QR code (drawn by segno). The bot's
username is cached in the help desk database by the bot process (bot/messaging/outbox.py meta), so the web
process never calls Telegram. The code itself is not checked here: the QR only encodes what was asked,
and the bot refuses a wrong code.
"""
from __future__ import annotations

import io
import re

import segno
from flask import Blueprint, current_app, jsonify

from bot.channels import TELEGRAM
from bot.messaging.outbox import Outbox

bp = Blueprint("telegram_link", __name__)
CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what Telegram accepts as a start parameter
NO_BOT = "Telegram ボットがまだ起動していないため、連携用のリンクを作れません。"


def deep_link(code: str) -> str | None:
    username = Outbox(current_app.extensions["helpdesk"].store, TELEGRAM).meta("username")
    return f"https://t.me/{username}?start={code}" if username else None


def telegram_link(code: str) -> dict | None:
    """What the web chat shows beside a freshly issued code: the deep link and its QR code's address
    (None while the bot has never run, so no username is known)."""
    url = deep_link(code) if CODE.fullmatch(code) else None
    return {"url": url, "qr": f"/api/telegram/link/{code}.svg"} if url else None


def _not_found(message: str):
    return jsonify({"error": {"code": "not_found", "message": message}}), 404


@bp.get("/api/telegram/link/<code>")
def link(code: str):
    """{"url": deep link, "qr": address of its SVG}, or 404 while the bot has never run."""
    found = telegram_link(code)
    return jsonify(found) if found else _not_found(NO_BOT)


@bp.get("/api/telegram/link/<code>.svg")
def qr(code: str):
    url = deep_link(code) if CODE.fullmatch(code) else None
    if url is None:
        return _not_found(NO_BOT)
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=4, border=2, xmldecl=False, title="Telegram 連携用 QR コード")
    response = current_app.response_class(out.getvalue(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"  # the code is a secret for a few minutes
    return response

"""The JSON API: turn requests into core calls and core values into JSON, nothing more.

Every error leaves as `{"error": {"code": "...", "message": "<Japanese>"}}`; the codes, statuses and
Japanese live in helpdesk.errors, the one place a reader needs to check. Conversations are read and
written only with their token (`Authorization: Bearer <token>`); without it the answer is the same
404 as for an unknown id, so nobody can probe which ids exist. Who asks comes from the session
(handlers/web/session.py) on every request, never from the body: a conversation opened while signed in
belongs to that staff account and answers 404 to anyone else, the same token notwithstanding.
"""
from __future__ import annotations

import json
import re

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from bot import Message, MessageNotFound
from bot.messaging.live import conversation_key
from handlers.web import metrics
from handlers.web import qr
from handlers.web import ratelimit
from handlers.web.live import after_id, wait_seconds, watch
from handlers.web.openapi import IDEMPOTENCY_KEY_PATTERN, openapi_spec
from handlers.web.session import current_asker
from helpdesk.errors import ERRORS, CodedError, Description, by_code, describe, for_status
from storage.sqlite import MAX_ROWID

__all__ = ["ERRORS", "ApiError"]  # the table lives in helpdesk.errors; handlers.web.auth imports both from here

IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)

#: An error on its way to the client, named by its code in helpdesk.errors.ERRORS.
ApiError = CodedError

#: Errors of the web framework itself, which helpdesk.errors (no Flask there) does not know.
FRAMEWORK_CODES = ((RateLimitExceeded, "rate_limited"), (CSRFError, "csrf_failed"))


def error_for_exception(e: BaseException) -> Description:
    """What the client sees for any exception: (code, status, message); unknown ones are internal_error."""
    for cls, code in FRAMEWORK_CODES:
        if isinstance(e, cls):
            return by_code(code)
    if isinstance(e, HTTPException):
        return for_status(e.code or 500)
    return describe(e)


def api_error_response(err: Description | CodedError):
    response = jsonify({"error": {"code": err.code, "message": err.message}})
    response.status_code = err.status
    if err.status == 429:
        response.headers["Retry-After"] = "60"
    return response


# -- request parsing ------------------------------------------------------------------------------


def json_object() -> dict:
    """The request body as a JSON object; an empty body counts as {}.

    Nesting too deep for the parser (RecursionError) is malformed JSON like any other. A string with a
    lone surrogate ("\\ud800" is valid JSON, but no UTF-8 can hold it) is refused here with the field
    it was in, before it reaches a database or a password hash that would fail on it.
    """
    raw = request.get_data(cache=False)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError("invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError("invalid_json")
    field = unencodable_field(data)
    if field is not None:
        raise ApiError("invalid_text", field=field)
    return data


def unencodable_field(data: dict) -> str | None:
    """The first top-level field holding text that UTF-8 cannot encode (a lone surrogate), or None."""
    for key, value in data.items():
        pending = [key, value]  # a loop, not recursion: the body may be nested deep
        while pending:
            item = pending.pop()
            if isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
            elif isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return key.encode("utf-8", "replace").decode("utf-8")
    return None


def bearer_token() -> str:
    """The token from `Authorization: Bearer …`, or "" (which matches no conversation)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def idempotency_key(body: dict) -> str | None:
    key = body.get("idempotency_key", request.headers.get("Idempotency-Key"))
    if key is None:
        return None
    if not isinstance(key, str) or not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError("invalid_field", field="idempotency_key", expected="1〜128文字の英数字・記号の文字列")
    return key


# -- JSON views of core values ----------------------------------------------------------------------


# The web's own words for the hints the core leaves to each channel (bot/conversation/actions.py).
WEB_HINTS = {
    "sign_in": "Webチャットでは上部の「職員ログイン」からログインしてください。",
    "records_missing": "管理者の方は `helpdesk demo-data` または `helpdesk sync-members --full` を実行してください。",
}


def message_json(m: Message) -> dict:
    if m.role == "user":
        return {"id": m.id, "role": "user", "text": m.text, "created_at": m.created_at,
                "idempotency_key": m.idempotency_key}
    if m.role == "agent":
        return {"id": m.id, "role": "agent", "text": m.text, "author": m.author, "created_at": m.created_at}
    return reply_json(m)


def reply_json(m: Message | None) -> dict | None:
    """A bot message as the widget reads it (None: the bot stayed silent, the desk holds the chat).

    Sources get the web address of their article; buttons keep `payload`, the text a client without
    button ids sends back; hints become the web's sentences after the text.
    """
    if m is None:
        return None
    r = m.reply
    hints = [WEB_HINTS[a.type] for a in r.actions if a.type in WEB_HINTS]
    extra = {}
    if r.kind == "link_code" and r.conceal:  # just issued (a stored reply has no code): one tap or one scan
        extra["telegram"] = qr.telegram_link(r.conceal[0])
    return extra | {
        "id": m.id, "role": "bot", "text": " ".join([r.text, *hints]) if hints else r.text, "kind": r.kind,
        "sources": [{**s.to_dict(), "url": f"/kb/{s.slug}"} for s in r.sources],
        "buttons": [{**b.to_dict(), "payload": b.payload} for b in r.buttons],
        "actions": [a.to_dict() for a in r.actions if a.type not in WEB_HINTS],
        "table": r.table.to_dict() if r.table else None, "confidence": r.confidence,
        "created_at": m.created_at, "in_reply_to": m.in_reply_to, "feedback": m.feedback,
    }


def core():
    return current_app.extensions["helpdesk"].core()


# -- views ------------------------------------------------------------------------------------------


def health():
    """Answers without touching any database: the ceiling for the benchmark, and a liveness probe."""
    return jsonify({"status": "ok"})


def openapi():
    return jsonify(openapi_spec(current_app.config["MAX_MESSAGE_CHARS"], current_app.config["SUGGEST_MAX_CHARS"]))


def create_conversation():
    json_object()  # reject malformed bodies here too, so every POST behaves alike
    new = core().open_conversation("web", current_asker())
    response = jsonify({"id": new.conversation.id, "token": new.token, "created_at": new.conversation.created_at})
    response.status_code = 201
    response.headers["Location"] = url_for("api.list_messages", conversation_id=new.conversation.id)
    return response


def post_message(conversation_id: str):
    """`{"text": …}` asks; `{"button": "<id>", "text": "<short label>"}` presses a reply's button."""
    body = json_object()
    text, button = body.get("text"), body.get("button")
    if button is not None and (not isinstance(button, str) or not 0 < len(button.encode()) <= 64):
        raise ApiError("invalid_field", field="button", expected="64バイト以内のボタンID（文字列）")
    if text is None and button is None:
        raise ApiError("empty_message")
    if text is not None and not isinstance(text, str):
        raise ApiError("invalid_field", field="text", expected="文字列")
    key = idempotency_key(body)
    c, asker = core(), current_asker()
    c.conversation(conversation_id, bearer_token(), asker)
    turn = c.reply(conversation_id, text, asker, "web", idempotency_key=key, button=button)
    if not turn.replayed:
        metrics.record_turn("web", turn.answer.reply.kind if turn.answer else None, opened_ticket=turn.opened_ticket)
    response = jsonify({"message": message_json(turn.question), "reply": reply_json(turn.answer),
                        "desk": c.desk_hold(conversation_id).to_dict()})
    response.status_code = 200 if turn.replayed else 201
    return response


def list_messages(conversation_id: str):
    """Every message, or with `?after=<message id>` only the newer ones (the widget's poll for replies).

    With `&wait=<seconds>` too, the answer is held until a newer message exists or the time runs out
    (an empty list then): a reply reaches the widget within the watcher's interval (bot/messaging/live.py).
    Who may read is checked before waiting, and again on every wake-up, as on any request.

    With `include=desk` the answer is an object: `messages` (the same list) and `desk`, whether the
    desk holds the conversation now and its ticket (read after the messages), which the widget obeys.
    """
    after, seconds = after_id(), wait_seconds()
    c, token, asker = core(), bearer_token(), current_asker()

    def newer():
        return [m for m in c.history(conversation_id, token, asker) if after is None or m.id > after]

    if after is None or seconds == 0:
        found = newer()
    else:
        found = watch().wait([conversation_key(conversation_id)], seconds, newer)
    messages = [message_json(m) for m in found]
    if request.args.get("include") != "desk":
        return jsonify(messages)
    return jsonify({"messages": messages, "desk": c.desk_hold(conversation_id, token, asker).to_dict()})


def post_feedback(message_id: int):
    body = json_object()
    helpful = body.get("helpful")
    if not isinstance(helpful, bool):
        raise ApiError("invalid_field", field="helpful", expected="true または false")
    if message_id > MAX_ROWID:  # SQLite cannot even bind it; no message has such an id
        raise MessageNotFound(message_id)
    token, asker = bearer_token(), current_asker()
    m = core().feedback(message_id, helpful, token, asker)
    metrics.record_feedback(helpful)
    body = {"id": m.id, "feedback": m.feedback}
    if not helpful:  # what to try next: other articles, rephrasing, the desk (stored once per answer)
        body["reply"] = reply_json(core().next_step(message_id, token, asker))
    return jsonify(body)


def create_link_code():
    """A one-time code with which a doctor links a messaging account; signed-in staff only."""
    body = json_object()
    asker = current_asker()
    if asker.role != "staff":
        raise ApiError("sign_in_required")
    number = body.get("member_number")
    if not isinstance(number, str):
        raise ApiError("invalid_field", field="member_number", expected="7桁の会員番号（文字列）")
    issued = core().issue_link_code(asker, number)
    response = jsonify({"code": issued.code, "member_number": issued.member_number, "expires_at": issued.expires_at,
                        "telegram": qr.telegram_link(issued.code)})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


def suggest():
    q = request.args.get("q", "")
    limit = current_app.config["SUGGEST_MAX_CHARS"]
    if len(q) > limit:
        raise ApiError("query_too_long", limit=limit)
    found = current_app.extensions["helpdesk"].searcher().suggest(q, k=3)
    return jsonify({"suggestions": [{"slug": s.slug, "title": s.title, "question": s.question} for s in found[:3]]})


def create_blueprint(limiter: Limiter) -> Blueprint:
    """Register the views with this app's limiter; limits are read from config on each request so a
    test or the benchmark can set them."""
    bp = Blueprint("api", __name__, url_prefix="/api")

    def limited(setting: str, key_func=None):
        return ratelimit.limited(limiter, setting, key_func=key_func, message=ERRORS["rate_limited"][1])

    def per_conversation() -> str:
        return f"{request.view_args.get('conversation_id')}|{request.remote_addr}"

    bp.add_url_rule("/health", view_func=health, methods=["GET"])
    bp.add_url_rule("/openapi.json", view_func=openapi, methods=["GET"])
    bp.add_url_rule("/conversations", view_func=limited("CONVERSATION_RATE_LIMIT")(create_conversation),
                    methods=["POST"])
    bp.add_url_rule("/conversations/<conversation_id>/messages",
                    view_func=limited("MESSAGE_RATE_LIMIT", per_conversation)(post_message), methods=["POST"])
    bp.add_url_rule("/conversations/<conversation_id>/messages", view_func=list_messages, methods=["GET"])
    bp.add_url_rule("/messages/<int:message_id>/feedback",
                    view_func=limited("FEEDBACK_RATE_LIMIT")(post_feedback), methods=["POST"])
    bp.add_url_rule("/suggest", view_func=limited("SUGGEST_RATE_LIMIT")(suggest), methods=["GET"])
    bp.add_url_rule("/link-codes", view_func=limited("LINK_CODE_RATE_LIMIT")(create_link_code), methods=["POST"])
    return bp

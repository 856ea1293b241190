"""The desk's part of the JSON API: hand a conversation over to the operations desk, and poll for news.

`POST /api/conversations/<id>/handoff` `{"note"?}` (bearer token) → 201 `{"ticket": {number, state,
created_at}}`, or 200 with the same ticket when it already has an unfinished one (a double click makes
one ticket). `POST /api/conversations/<id>/new-question` (bearer token) → 200 `{"ticket": {…} | null}`: the user
started a new question in the widget while the ticket is unfinished (the ticket shows it). `GET
/api/conversations/<id>/messages?after=<message id>&wait=<s>` (in handlers/web/api.py, its parameters read
by handlers/web/live.py) returns only the newer messages, held until there are some, so the widget hears an
agent's reply at once.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from bot.desk.handoff import NOTE_CHARS
from handlers.web import ratelimit
from handlers.web.api import ERRORS, ApiError, bearer_token, core, json_object
from handlers.desk.auth import desk_services
from handlers.web.metrics import record_escalation
from handlers.web.session import current_asker


def handoff(conversation_id: str):
    body = json_object()
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > NOTE_CHARS):
        raise ApiError("invalid_field", field="note", expected=f"{NOTE_CHARS}文字以内の文字列")
    c, asker = core(), current_asker()
    conversation = c.conversation(conversation_id, bearer_token(), asker)
    created = desk_services().handoff.create(conversation_id, asker, conversation.channel, reason="api", note=note)
    if created.created:
        record_escalation(conversation.channel)
    response = jsonify({"ticket": created.ticket.public(), "message": created.reply.text})
    response.status_code = 201 if created.created else 200
    return response


def new_question(conversation_id: str):
    """The widget's 「新しい質問」 while this conversation has an unfinished ticket: the ticket is told,
    and stays this conversation's (the widget keeps listening to it for the agent's replies)."""
    json_object()
    c, asker = core(), current_asker()
    c.conversation(conversation_id, bearer_token(), asker)
    ticket = desk_services().handoff.new_question(conversation_id)
    return jsonify({"ticket": ticket.public() if ticket else None})


def create_blueprint(limiter) -> Blueprint:
    bp = Blueprint("desk_api", __name__, url_prefix="/api")

    def per_conversation() -> str:
        return f"handoff|{request.view_args.get('conversation_id')}|{request.remote_addr}"

    limited = ratelimit.limited(limiter, "MESSAGE_RATE_LIMIT", key_func=per_conversation,
                                message=ERRORS["rate_limited"][1])
    bp.add_url_rule("/conversations/<conversation_id>/handoff", view_func=limited(handoff), methods=["POST"])
    bp.add_url_rule("/conversations/<conversation_id>/new-question", view_func=limited(new_question), methods=["POST"])
    return bp

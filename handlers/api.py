"""The JSON API: turn requests into core calls and core values into JSON, nothing more.

Every error leaves as `{"error": {"code": "...", "message": "<Japanese>"}}`; the codes and their
Japanese live in `ERRORS` below, the one place a reader needs to check. Conversations are read and
written only with their token (`Authorization: Bearer <token>`); without it the answer is the same
404 as for an unknown id, so nobody can probe which ids exist.
"""
from __future__ import annotations

import functools
import json
import re

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from bot import (
    Asker, ConversationNotFound, EmptyMessage, IdempotencyConflict, IndexMissing, Message, MessageNotFound,
    MessageTooLong, NotAReply,
)
from handlers.openapi import openapi_spec

ERRORS: dict[str, tuple[int, str]] = {
    "invalid_json": (400, "リクエストの本文を JSON として読めませんでした。JSON オブジェクトで送信してください。"),
    "invalid_field": (422, "「{field}」の値が正しくありません。{expected}を指定してください。"),
    "empty_message": (422, "質問が空です。質問を入力してから送信してください。"),
    "message_too_long": (422, "質問が長すぎます（{length}文字）。{limit}文字以内に短くして送信してください。"),
    "query_too_long": (422, "検索語が長すぎます。{limit}文字以内で入力してください。"),
    "idempotency_conflict": (409, "この送信キーは別の質問に使われています。新しい送信キーで送信し直してください。"),
    "not_a_reply": (422, "評価できるのはヘルプデスクの回答だけです。回答のメッセージを指定してください。"),
    "conversation_not_found": (404, "会話が見つかりません。新しい会話を始めてください。"),
    "message_not_found": (404, "メッセージが見つかりません。会話を読み込み直してからもう一度お試しください。"),
    "not_found": (404, "指定された URL は見つかりません。URL を確認してください。"),
    "method_not_allowed": (405, "この URL ではその操作（HTTP メソッド）を受け付けていません。API 仕様を確認してください。"),
    "payload_too_large": (413, "送信されたデータが大きすぎます。質問を短くして送信してください。"),
    "rate_limited": (429, "短い時間に送信が集中しています。しばらく待ってからもう一度送信してください。"),
    "index_missing": (503, "ナレッジベースの準備ができていません。しばらくしてからもう一度お試しください。"
                           "（管理者の方は `helpdesk index` を実行してください）"),
    "bad_request": (400, "リクエストの形式が正しくありません。API 仕様を確認してください。"),
    "internal_error": (500, "サーバーでエラーが発生しました。時間をおいてもう一度お試しください。"),
}

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")


class ApiError(Exception):
    """An error on its way to the client: a code from ERRORS and the values its message needs."""

    def __init__(self, code: str, **values):
        self.code = code
        self.status, template = ERRORS[code]
        self.message = template.format(**values)
        super().__init__(f"{code}: {self.message}")


HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
              429: "rate_limited"}


def error_for_exception(e: Exception) -> ApiError:
    """Map any exception to the ApiError the client sees; unknown ones become internal_error."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, EmptyMessage):
        return ApiError("empty_message")
    if isinstance(e, MessageTooLong):
        return ApiError("message_too_long", length=e.length, limit=e.limit)
    if isinstance(e, ConversationNotFound):
        return ApiError("conversation_not_found")
    if isinstance(e, MessageNotFound):
        return ApiError("message_not_found")
    if isinstance(e, NotAReply):
        return ApiError("not_a_reply")
    if isinstance(e, IdempotencyConflict):
        return ApiError("idempotency_conflict")
    if isinstance(e, IndexMissing):
        return ApiError("index_missing")
    if isinstance(e, RateLimitExceeded):
        return ApiError("rate_limited")
    if isinstance(e, HTTPException):
        code = HTTP_CODES.get(e.code)
        if code:
            return ApiError(code)
        err = ApiError("bad_request" if (e.code or 500) < 500 else "internal_error")
        err.status = e.code or 500
        return err
    return ApiError("internal_error")


def api_error_response(err: ApiError):
    response = jsonify({"error": {"code": err.code, "message": err.message}})
    response.status_code = err.status
    if err.status == 429:
        response.headers["Retry-After"] = "60"
    return response


# -- request parsing ------------------------------------------------------------------------------


def json_object() -> dict:
    """The request body as a JSON object; an empty body counts as {}."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError("invalid_json")
    return data


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


def message_json(m: Message) -> dict:
    if m.role == "user":
        return {"id": m.id, "role": "user", "text": m.text, "created_at": m.created_at,
                "idempotency_key": m.idempotency_key}
    return reply_json(m)


def reply_json(m: Message) -> dict:
    r = m.reply.to_dict()
    return {
        "id": m.id, "role": "bot", "text": r["text"], "kind": r["kind"], "sources": r["sources"],
        "buttons": r["buttons"], "actions": r["actions"], "confidence": r["confidence"],
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
    new = core().open_conversation("web", Asker())
    response = jsonify({"id": new.conversation.id, "token": new.token, "created_at": new.conversation.created_at})
    response.status_code = 201
    response.headers["Location"] = url_for("api.list_messages", conversation_id=new.conversation.id)
    return response


def post_message(conversation_id: str):
    body = json_object()
    text = body.get("text")
    if text is None:
        raise ApiError("empty_message")
    if not isinstance(text, str):
        raise ApiError("invalid_field", field="text", expected="文字列")
    key = idempotency_key(body)
    c = core()
    c.conversation(conversation_id, bearer_token())
    turn = c.reply(conversation_id, text, Asker(), "web", idempotency_key=key)
    response = jsonify({"message": message_json(turn.question), "reply": reply_json(turn.answer)})
    response.status_code = 200 if turn.replayed else 201
    return response


def list_messages(conversation_id: str):
    return jsonify([message_json(m) for m in core().history(conversation_id, bearer_token())])


def post_feedback(message_id: int):
    body = json_object()
    helpful = body.get("helpful")
    if not isinstance(helpful, bool):
        raise ApiError("invalid_field", field="helpful", expected="true または false")
    m = core().feedback(message_id, helpful, bearer_token())
    return jsonify({"id": m.id, "feedback": m.feedback})


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
        def decorate(view):
            # flask-limiter marks the function it decorates with its limiter; a fresh wrapper per app
            # keeps one app's limiter off the module-level view that the next app also registers.
            @functools.wraps(view, updated=())
            def fresh(*args, **kwargs):
                return view(*args, **kwargs)

            return limiter.limit(lambda: current_app.config[setting], key_func=key_func,
                                 error_message=ERRORS["rate_limited"][1])(fresh)

        return decorate

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
    return bp

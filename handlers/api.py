"""The JSON API: turn requests into core calls and core values into JSON, nothing more.

Every error leaves as `{"error": {"code": "...", "message": "<Japanese>"}}`; the codes and their
Japanese live in `ERRORS` below, the one place a reader needs to check. Conversations are read and
written only with their token (`Authorization: Bearer <token>`); without it the answer is the same
404 as for an unknown id, so nobody can probe which ids exist. Who asks comes from the session
(handlers/session.py) on every request, never from the body: a conversation opened while signed in
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

from bot import (
    ConversationNotFound, EmptyMessage, IdempotencyConflict, IndexMissing, Message, MessageNotFound,
    MessageTooLong, NotAReply,
)
from bot.accounts import SignInFailed
from bot.lookups import StaffOnly, WithdrawnMember
from handlers import metrics, ratelimit
from handlers.openapi import openapi_spec
from handlers.session import current_asker
from records.errors import UNAVAILABLE_JA, DatabaseMissing, InvalidQuery, RecordUnavailable, message_ja

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
    "sign_in_failed": (401, SignInFailed.message_ja),
    "sign_in_required": (401, "この操作には職員ログインが必要です。ログインしてからもう一度お試しください。"),
    "sign_in_rate_limited": (429, "ログインの試行回数が上限に達しました。しばらく待ってからもう一度お試しください。"),
    "csrf_failed": (400, "セッションの確認に失敗しました。ページを再読み込みしてから、もう一度お試しください。"),
    "staff_only": (403, "この操作は医師会事務局の職員のみ行えます。"),
    "withdrawn_member": (422, "退会した会員には連携コードを発行できません。"),
    "record_unavailable": (404, UNAVAILABLE_JA),
    "invalid_query": (422, "{message}"),
    "records_missing": (503, "会員データがまだ読み込まれていません。管理者の方は `helpdesk demo-data` または "
                             "`helpdesk sync-members --full` を実行してください。"),
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
    if isinstance(e, CSRFError):
        return ApiError("csrf_failed")
    if isinstance(e, SignInFailed):
        return ApiError("sign_in_failed")
    if isinstance(e, StaffOnly):
        return ApiError("staff_only")
    if isinstance(e, WithdrawnMember):
        return ApiError("withdrawn_member")
    if isinstance(e, RecordUnavailable):
        return ApiError("record_unavailable")
    if isinstance(e, InvalidQuery):
        return ApiError("invalid_query", message=message_ja(e))
    if isinstance(e, DatabaseMissing):
        return ApiError("records_missing")
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
        "buttons": r["buttons"], "actions": r["actions"], "table": r["table"], "confidence": r["confidence"],
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
    body = json_object()
    text = body.get("text")
    if text is None:
        raise ApiError("empty_message")
    if not isinstance(text, str):
        raise ApiError("invalid_field", field="text", expected="文字列")
    key = idempotency_key(body)
    c, asker = core(), current_asker()
    c.conversation(conversation_id, bearer_token(), asker)
    turn = c.reply(conversation_id, text, asker, "web", idempotency_key=key)
    if not turn.replayed:
        metrics.record_turn("web", turn.answer.reply.kind if turn.answer else None)
    response = jsonify({"message": message_json(turn.question), "reply": reply_json(turn.answer)})
    response.status_code = 200 if turn.replayed else 201
    return response


def list_messages(conversation_id: str):
    return jsonify([message_json(m) for m in core().history(conversation_id, bearer_token(), current_asker())])


def post_feedback(message_id: int):
    body = json_object()
    helpful = body.get("helpful")
    if not isinstance(helpful, bool):
        raise ApiError("invalid_field", field="helpful", expected="true または false")
    m = core().feedback(message_id, helpful, bearer_token(), current_asker())
    metrics.record_feedback(helpful)
    return jsonify({"id": m.id, "feedback": m.feedback})


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
    response = jsonify({"code": issued.code, "member_number": issued.member_number, "expires_at": issued.expires_at})
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

"""One error vocabulary for every edge: each failure's code, HTTP status and Japanese sentence.

Deep code raises typed exceptions (bot.errors, records.errors, account, lookup and link-code errors,
settings errors); `describe(exc)` finds the most specific entry for its class in `BY_TYPE` and returns
(code, status, message) from `ERRORS`. The JSON API, the error pages, the CLI and the Telegram adapter
all ask here, so a sentence is written once: the desk console's refusals and the Telegram bot's
apologies too, and the titles and sentences of the browser's error pages (`PAGE_TITLES`, `PAGE_TEXTS`,
worded for a person at a page rather than an API client). Sentences the core itself says in a chat
reply (a refused lookup, missing member data, a bad link code) stay beside the exception they belong
to, below the core, and are only referred to here; so do the account errors' own sentences. Nothing
here imports Flask: the web edge maps its own framework errors (rate limits, CSRF, HTTP statuses) to
codes of this table.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from bot.accounts.staff import AccountError, AccountExists, InvalidAccount, SignInFailed, UnknownAccount
from bot.desk.actions import ChatDetached, EmptyText, TextTooLong, TooLongForTelegram
from bot.errors import (ConversationNotFound, EmptyMessage, HelpdeskError, IdempotencyConflict, IndexMissing,
                        MessageNotFound, MessageTooLong, NotAReply)
from bot.accounts.linking import LinkCodeInvalid
from bot.lookups.replies import WITHDRAWN_LINK_TEXT
from bot.lookups.answer import StaffOnly, WithdrawnMember
from bot.desk.tickets import STATE_JA, TicketStateError
from helpdesk.settings import SettingError
from records.errors import (UNAVAILABLE_JA, CsvFormatError, DatabaseExists, DatabaseMissing, InvalidQuery,
                            RecordsError, RecordUnavailable, SyncBusy, message_ja)

#: code → (HTTP status, Japanese sentence; `{name}` fields are filled from the exception or the caller).
ERRORS: dict[str, tuple[int, str]] = {
    "invalid_json": (400, "リクエストの本文を JSON として読めませんでした。JSON オブジェクトで送信してください。"),
    "invalid_field": (422, "「{field}」の値が正しくありません。{expected}を指定してください。"),
    "invalid_parameter": (400, "URL の「{field}」の値が正しくありません。{expected}を指定してください。"),
    "invalid_text": (422, "「{field}」に使えない文字が含まれています。入力し直してから送信してください。"),
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
    "account_error": (422, "{message}"),
    "account_exists": (409, "{message}"),
    "unknown_account": (404, "{message}"),
    "staff_only": (403, "この操作は医師会事務局の職員のみ行えます。"),
    "withdrawn_member": (422, WITHDRAWN_LINK_TEXT),
    "link_code_invalid": (422, LinkCodeInvalid.message_ja),
    "record_unavailable": (404, UNAVAILABLE_JA),
    "invalid_query": (422, "{message}"),
    "records_missing": (503, message_ja(DatabaseMissing(""))),
    "records_exist": (409, "{message}"),
    "csv_format": (422, "{message}"),
    "sync_busy": (409, message_ja(SyncBusy())),
    "records_error": (500, message_ja(RecordsError())),
    "index_missing": (503, "ナレッジベースの準備ができていません。しばらくしてからもう一度お試しください。"
                           "（管理者の方は `helpdesk index` を実行してください）"),
    "bad_setting": (500, "{message}"),
    "bad_request": (400, "リクエストの形式が正しくありません。API 仕様を確認してください。"),
    "internal_error": (500, "サーバーでエラーが発生しました。時間をおいてもう一度お試しください。"),
    # The desk console's forms (handlers/desk/console.py): shown above the ticket, the draft kept.
    "desk_text_empty": (422, "本文を入力してください。"),
    "desk_text_too_long": (422, "本文は{limit}文字以内にしてください。"),
    "desk_too_long_for_telegram": (422, "Telegram に送る返信は1通{limit}文字までです（絵文字などは2文字と数えます）。"
                                        "いまは{units}文字です。短くするか、2通に分けて送ってください。"),
    "ticket_state": (422, "この問い合わせは「{state}」のため、その操作はできません。"),
    "desk_chat_detached": (409, "この Telegram のアカウントは、その後別の会員として連携し直されました。別の会員の方に届いてしまうため、"
                                "この問い合わせには返信できません。内部メモを残して、解決または終了にしてください。"),
    "desk_unknown_assignee": (422, "その担当者は登録されていません。"),
    "desk_priority_required": (422, "優先度を選んでください。"),
    "desk_action_required": (422, "操作を選んでください。"),
    # The Telegram bot (handlers/telegram/updates.py): said in the chat.
    "telegram_failed": (500, "一時的なエラーが発生しました。しばらくしてからもう一度お試しください。"),
    "telegram_rate_limited": (429, "短い時間にたくさんのメッセージが届きました。1分ほどおいてから、もう一度お送りください。"),
    "link_rate_limited": (429, "連携の試行が多すぎます。しばらくしてから、もう一度お試しください。"),
    "feedback_failed": (422, "この回答には評価を送れませんでした。"),
}

#: The browser's error pages (handlers/web/app.py): a title by status, and the sentence for the bare HTTP
#: statuses, which read differently to a person at a page than to an API client.
PAGE_TITLES = {
    400: "送信内容を確認できませんでした",
    401: "ログインが必要です",
    403: "この操作はできません",
    404: "ページが見つかりません",
    405: "この操作はできません",
    409: "この操作はできません",
    413: "送信内容が大きすぎます",
    422: "入力内容を確認してください",
    429: "アクセスが集中しています",
    503: "準備中です",
    500: "エラーが発生しました",
}
PAGE_TEXTS = {
    400: "ページを再読み込みしてから、もう一度お試しください。",
    404: "お探しのページは見つかりませんでした。URLをご確認いただくか、記事を検索してください。",
    405: "このページではその操作を受け付けていません。",
    413: "送信された内容が大きすぎます。短くしてから、もう一度お試しください。",
    429: "短い時間に多くのアクセスがありました。少し時間をおいてから、もう一度お試しください。",
}


def _nothing(exc) -> dict:
    return {}


def _own_message(exc) -> dict:
    return {"message": getattr(exc, "message_ja", None) or str(exc)}


def _records_message(exc) -> dict:
    return {"message": message_ja(exc)}


#: exception class → (code, the values its sentence needs). The most specific class of an exception wins.
BY_TYPE: dict[type, tuple[str, Callable[[BaseException], dict]]] = {
    EmptyMessage: ("empty_message", _nothing),
    MessageTooLong: ("message_too_long", lambda e: {"length": e.length, "limit": e.limit}),
    ConversationNotFound: ("conversation_not_found", _nothing),
    MessageNotFound: ("message_not_found", _nothing),
    NotAReply: ("not_a_reply", _nothing),
    IdempotencyConflict: ("idempotency_conflict", _nothing),
    IndexMissing: ("index_missing", _nothing),
    HelpdeskError: ("internal_error", _nothing),
    SignInFailed: ("sign_in_failed", _nothing),
    AccountError: ("account_error", _own_message),
    InvalidAccount: ("account_error", _own_message),
    AccountExists: ("account_exists", _own_message),
    UnknownAccount: ("unknown_account", _own_message),
    LinkCodeInvalid: ("link_code_invalid", _nothing),
    StaffOnly: ("staff_only", _nothing),
    WithdrawnMember: ("withdrawn_member", _nothing),
    RecordUnavailable: ("record_unavailable", _nothing),
    InvalidQuery: ("invalid_query", _records_message),
    DatabaseMissing: ("records_missing", _nothing),
    DatabaseExists: ("records_exist", _records_message),
    CsvFormatError: ("csv_format", _records_message),
    SyncBusy: ("sync_busy", _nothing),
    RecordsError: ("records_error", _nothing),
    SettingError: ("bad_setting", lambda e: {"message": str(e)}),
    EmptyText: ("desk_text_empty", _nothing),
    TextTooLong: ("desk_text_too_long", lambda e: {"limit": e.limit}),
    TooLongForTelegram: ("desk_too_long_for_telegram", lambda e: {"limit": e.limit, "units": e.units}),
    TicketStateError: ("ticket_state", lambda e: {"state": STATE_JA.get(e.state, e.state)}),
    ChatDetached: ("desk_chat_detached", _nothing),
}

#: HTTP statuses an edge meets without a domain exception (routing, body size, …) → code.
BY_STATUS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
             429: "rate_limited"}


class Description(NamedTuple):
    code: str
    status: int
    message: str


class CodedError(Exception):
    """An error an edge raises by its code (a field of the wrong type, a missing sign-in, …)."""

    def __init__(self, code: str, **values):
        self.code, self.values = code, values
        self.status, template = ERRORS[code]
        self.message = template.format(**values)
        super().__init__(f"{code}: {self.message}")


def by_code(code: str, **values) -> Description:
    status, template = ERRORS[code]
    return Description(code, status, template.format(**values))


def for_status(status: int) -> Description:
    """A bare HTTP status: its own code when it has one, else bad_request or internal_error (status kept)."""
    code = BY_STATUS.get(status) or ("bad_request" if status < 500 else "internal_error")
    return by_code(code)._replace(status=status)


def describe(exc: BaseException) -> Description:
    """(code, status, Japanese sentence) for any exception; anything unknown is internal_error."""
    if isinstance(exc, CodedError):
        return Description(exc.code, exc.status, exc.message)
    for cls in type(exc).__mro__:
        if cls in BY_TYPE:
            code, values = BY_TYPE[cls]
            return by_code(code, **values(exc))
    return by_code("internal_error")

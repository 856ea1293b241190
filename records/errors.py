"""Typed exceptions of the records package, and their Japanese wording for the edges.

Deep code raises these; `message_ja` gives each one short Japanese sentence. The core says
them in chat replies; every edge (API, pages, CLI, Telegram) reaches them through
helpdesk.errors.describe, so the wording lives in one place.
"""
from __future__ import annotations

# One sentence for every "cannot show" outcome. A refusal must not tell the asker
# whether the record exists, so not-found and not-allowed read exactly the same.
UNAVAILABLE_JA = "該当する記録が見つからないか、閲覧する権限がありません。"
# Said by the chat, the API and the CLI alike while no member data has been loaded.
MISSING_JA = ("会員データがまだ読み込まれていません。管理者の方は `helpdesk demo-data` または "
              "`helpdesk sync-members --full` を実行してください。")


class RecordsError(Exception):
    """Base of every error raised by the records package."""


class RecordUnavailable(RecordsError):
    """A record cannot be shown to this asker (it does not exist, or is out of scope).

    Subclasses say which kind of record was asked for, for logs and tests; the
    edges render all of them with the same sentence.
    """

    def __init__(self, kind: str = "record"):
        super().__init__(kind)
        self.kind = kind


class MemberNotFound(RecordUnavailable):
    """No member with that number that this asker may see."""

    def __init__(self):
        super().__init__("member")


class ApplicationNotFound(RecordUnavailable):
    def __init__(self):
        super().__init__("application")


class InstitutionNotFound(RecordUnavailable):
    def __init__(self):
        super().__init__("institution")


class ReportNotFound(RecordUnavailable):
    def __init__(self):
        super().__init__("family_doctor_report")


class AccessDenied(RecordUnavailable):
    """The asker may not look up records at all (anonymous, or a desk without a requester).

    Raised independently of any record, so it reveals nothing either.
    """

    def __init__(self):
        super().__init__("access")


class InvalidQuery(RecordsError):
    """The asker's input cannot be a lookup key (e.g. a member number that is not 7 digits)."""

    def __init__(self, field: str, value: str = ""):
        super().__init__(field)
        self.field = field
        self.value = value


class DatabaseMissing(RecordsError):
    """The records database has not been created yet (no demo-data or sync-members run)."""

    def __init__(self, path):
        super().__init__(str(path))
        self.path = path


class DatabaseExists(RecordsError):
    """demo-data would overwrite an existing database and --force was not given."""

    def __init__(self, path, is_demo: bool):
        super().__init__(str(path))
        self.path = path
        self.is_demo = is_demo


class CsvFormatError(RecordsError):
    """The member CSV cannot be read at all (encoding, missing columns, empty file)."""

    def __init__(self, reason_ja: str):
        super().__init__(reason_ja)
        self.reason_ja = reason_ja


class SyncBusy(RecordsError):
    """Another import holds the database's write lock."""


_FIELD_JA = {
    "member_number": "会員番号は7桁の数字で入力してください。",
    "institution_code": "医療機関コードは10桁の数字で入力してください。",
    "query": "検索する氏名・名称を入力してください。",
    "asker": "問い合わせ者の情報が正しくありません。",
}


def message_ja(exc: RecordsError) -> str:
    """The one Japanese sentence an edge shows for a records error."""
    if isinstance(exc, RecordUnavailable):
        return UNAVAILABLE_JA
    if isinstance(exc, InvalidQuery):
        return _FIELD_JA.get(exc.field, "入力内容を確認してください。")
    if isinstance(exc, DatabaseMissing):
        return MISSING_JA
    if isinstance(exc, DatabaseExists):
        kind = "デモデータ" if exc.is_demo else "会員データ（デモではありません）"
        return f"{exc.path} には既に{kind}があります。置き換える場合は --force を指定してください。"
    if isinstance(exc, CsvFormatError):
        return exc.reason_ja
    if isinstance(exc, SyncBusy):
        return "別の取り込み処理が実行中です。終了してから再度実行してください。"
    return "会員データの処理中にエラーが発生しました。"

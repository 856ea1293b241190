"""What a lookup returns: members, applications, delivery settings, institutions and reports as
values, with the Japanese words the screens and chat replies use for their states.

Built by records/lookup.py from its rows; read by the chat replies (bot/) and the notices.
"""
from __future__ import annotations

from dataclasses import dataclass

from .leadtime import UpdateWindow
from .vocab import DESTINATION_JA, PUBLICATION_JA, STATUS_JA

# ---------------------------------------------------------------- labels (Japanese, for screens)

KIND_JA = {"admission": "入会届", "transfer": "異動届"}
LEVEL_JA = {"applicant": "申請者", "institution": "医療機関", "county": "郡市区等医師会",
            "prefecture": "都道府県医師会", "jma": "日本医師会"}
ACTION_JA = {"submitted": "提出", "approved": "承認", "returned": "差戻し", "resubmitted": "再提出",
             "completed": "手続き完了", "withdrawn": "取下げ"}
MASTER_STATUS_JA = {
    "in_master": "医療機関マスタに掲載済み",
    "waiting_bureau": "厚生局の登録待ち（手入力の医療機関）",
    "unmatched": "自動更新の対象外（同一医療機関とみなされない変更）",
}
SOURCE_JA = {"vendor": "販売元からの納品", "manual": "手入力"}
REPORT_STATE_JA = {"in_review": "確認中", "returned": "差戻し", "approved": "承認済み"}


@dataclass(frozen=True)
class Association:
    code: str
    name: str


@dataclass(frozen=True)
class Member:
    member_number: str
    name: str
    kana: str
    status: str
    county: Association
    prefecture: Association
    workplace_code: str | None
    workplace_name: str | None
    joined_on: str | None
    withdrawn_on: str | None
    updated_on: str | None

    @property
    def status_label(self) -> str:
        return STATUS_JA[self.status]


@dataclass(frozen=True)
class MemberMatch:
    member: Member
    score: float


@dataclass(frozen=True)
class StageEvent:
    happened_on: str
    level: str
    action: str
    reason: str | None

    @property
    def label(self) -> str:
        text = f"{self.happened_on} {LEVEL_JA[self.level]} {ACTION_JA[self.action]}"
        return f"{text}（理由: {self.reason}）" if self.reason else text


def where_label(stage: str, state: str) -> str:
    if state == "completed":
        return "手続き完了"
    if state == "approved":
        return "承認済み"
    if state == "withdrawn":
        return "取下げ"
    if state == "returned":
        return f"{LEVEL_JA[stage]}から差戻し中"
    return f"{LEVEL_JA[stage]}で確認中"


def _last_return(history: tuple[StageEvent, ...]) -> str | None:
    for event in reversed(history):
        if event.action == "returned":
            return event.reason
    return None


class Staged:
    """What an application and a かかりつけ医機能報告 share: a stage, a state and a history of events."""

    stage: str
    state: str
    history: tuple[StageEvent, ...]

    @property
    def status_label(self) -> str:
        """Where it stands, e.g. 「都道府県医師会で確認中」「郡市区等医師会から差戻し中」."""
        return where_label(self.stage, self.state)

    @property
    def return_reason(self) -> str | None:
        """Reason of the current return (差戻し), if it is returned now."""
        return _last_return(self.history) if self.state == "returned" else None


@dataclass(frozen=True)
class Application(Staged):
    application_number: str
    member_number: str
    kind: str
    county: Association
    from_county: Association | None
    submitted_on: str
    stage: str
    state: str
    history: tuple[StageEvent, ...]

    @property
    def kind_label(self) -> str:
        return KIND_JA[self.kind]


@dataclass(frozen=True)
class DeliverySetting:
    publication: str
    send: bool | None
    destination: str | None

    @property
    def label(self) -> str:
        title = PUBLICATION_JA[self.publication]
        if self.send is None:
            return f"{title}: 未設定"
        if not self.send:
            return f"{title}: 送付しない"
        return f"{title}: 送付する（送付先: {DESTINATION_JA[self.destination]}）"

    @property
    def sentence(self) -> str:
        """The same as `label`, said as a sentence (for a chat answer)."""
        title = PUBLICATION_JA[self.publication]
        if self.send is None:
            return f"{title}は、まだ設定されていません（未設定）。"
        if not self.send:
            return f"{title}は「送付しない」設定です。"
        return f"{title}は「送付する」設定で、送付先は{DESTINATION_JA[self.destination]}です。"


@dataclass(frozen=True)
class DeliverySettings:
    member_number: str
    name: str
    items: tuple[DeliverySetting, ...]


@dataclass(frozen=True)
class Institution:
    id: int
    institution_code: str | None
    name: str
    kana: str
    postal_code: str | None
    address: str
    prefecture: Association
    county: Association
    source: str
    master_status: str
    filed_on: str | None
    registered_on: str | None
    window: UpdateWindow | None
    overdue: bool

    @property
    def status_label(self) -> str:
        return MASTER_STATUS_JA[self.master_status]


@dataclass(frozen=True)
class FamilyDoctorReport(Staged):
    institution_code: str | None
    institution_name: str
    county: Association
    fiscal_year: int
    submitted_on: str
    stage: str
    state: str
    history: tuple[StageEvent, ...]

    @property
    def fiscal_year_label(self) -> str:
        return f"{self.fiscal_year}年度（令和{self.fiscal_year - 2018}年度）"

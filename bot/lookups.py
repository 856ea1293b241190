"""Record lookups in the chat: recognise a request for a record in plain Japanese, answer it briefly.

「会員番号1234567の入会手続きはどこまで進んでいますか」「〇〇クリニックはマスタに載っていますか」
「△△先生の日医ニュースの送付先は」: `parse` finds the subject (a member number, an application number,
an institution code, a person's name with 先生/さん, an institution name ending in クリニック/医院/病院…)
and the topic (application, delivery settings, institution master, family-doctor report, link code).
`Lookups.answer` asks `records.lookup.Records`, which checks access and writes the access log, and
turns the result into a short reply: one or two sentences and a small table, marked as demo data when
it is. A name that fits several people offers them as 「もしかして」 buttons (only people the asker may
see). Every refusal and every not-found reads exactly `records.errors.message_ja`.

Recognition is deliberately narrow: an identifier counts only when it is labelled (会員番号…), comes
with a topic, or is the whole message, so knowledge-base questions (「新しく開業したクリニックがマスタに
出てこない」) still reach the search. No Flask, no telegram: the core calls this module.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable

from records import access
from records.errors import (MISSING_JA, DatabaseMissing, MemberNotFound, RecordsError,
                            RecordUnavailable, message_ja)
from records.lookup import ACTION_JA, LEVEL_JA, SOURCE_JA, Records
from records.vocab import DESTINATION_JA, PUBLICATION_JA, PUBLICATIONS

from .linking import IssuedCode, LinkCodes
from .model import Asker, Button, Reply, Table
from .text import japanese_date

TOPICS = ("application", "delivery", "institution", "report", "member", "link_code")

# Quick actions offered to signed-in staff; pressing one sends its label, and the reply asks for the
# number or name (a `lookup_prompt` whose memory is the topic).
QUICK_ACTIONS: tuple[tuple[str, str], ...] = (
    ("入会手続きの状況", "application"),
    ("送付先の確認", "delivery"),
    ("医療機関マスタの確認", "institution"),
    ("かかりつけ医機能報告の確認", "report"),
    ("連携コードの発行", "link_code"),
)
PROMPTS = {
    "application": "入会届・異動届の状況をお調べします。会員番号（7桁）、申請番号（例：A2026-000001）、"
                   "または先生のお名前を入力してください。",
    "delivery": "送付先（送付区分）をお調べします。会員番号（7桁）または先生のお名前を入力してください。",
    "institution": "医療機関マスタへの掲載状況をお調べします。医療機関コード（10桁）または医療機関名を入力してください。",
    "report": "かかりつけ医機能報告の状況をお調べします。医療機関コード（10桁）または医療機関名を入力してください。",
    "link_code": "会員の先生がメッセージアプリのアカウントを連携するための、1回限りの連携コードを発行します。"
                 "先生の会員番号（7桁）またはお名前を入力してください。",
    "member": "会員番号（7桁）または先生のお名前を入力してください。",
}
PROMPT_NOTE = "（記事を探すときは、そのまま質問を入力してください）"

SIGN_IN_TEXT = (
    "会員情報・手続きの状況などの照会には、医師会事務局の職員としてのログインが必要です。"
    "Webチャットでは上部の「職員ログイン」からログインしてください。"
    "会員の先生方は、医師会事務局が発行する連携コードでメッセージアプリのアカウントを連携すると、"
    "ご自身の情報を確認できます。"
)
NO_DATA_TEXT = MISSING_JA
STAFF_ONLY_LINK_TEXT = "連携コードは医師会事務局の職員が発行します。ご所属の医師会事務局にご依頼ください。"
WITHDRAWN_LINK_TEXT = "退会した会員には連携コードを発行できません。"
MANY_TEXT = "該当する先生が複数います。どなたについてお調べしますか。"
NEAR_TEXT = "お名前が完全に一致する先生は見つかりませんでした。もしかして、次の先生ですか。"
MANY_INSTITUTIONS_TEXT = "該当しそうな医療機関が複数あります。どの医療機関についてお調べしますか。"
NEAR_INSTITUTION_TEXT = "名称が完全に一致する医療機関は見つかりませんでした。もしかして、次の医療機関ですか。"

HISTORY_ROWS = 6  # a table, never a dump

# -------------------------------------------------------------------------------- recognising

_APPLICATION = re.compile(r"(?<![A-Za-z0-9])[Aa]\s*([0-9]{4})\s*[-‐‑–—−ー]\s*([0-9]{6})(?![0-9])")
_INSTITUTION_CODE = re.compile(r"(?<![0-9])[0-9]{10}(?![0-9])")
_MEMBER_NUMBER = re.compile(r"(?<![0-9])[0-9]{7}(?![0-9])")
_LABELS = re.compile(r"会員番号|医療機関コード|機関コード|申請番号|受付番号")

_TOPIC_WORDS: tuple[tuple[str, re.Pattern], ...] = (
    ("link_code", re.compile(r"連携コード|連携用コード|ワンタイムコード|紐付けコード|紐づけコード|ひも付けコード")),
    ("delivery", re.compile(r"送付|送り先|届け先|日医ニュース|日本医師会雑誌|雑誌|特別号|通常号")),
    ("report", re.compile(r"かかりつけ医|機能報告|報告")),
    ("institution", re.compile(r"マスタ|マスター|載って|のって|掲載|登録され|反映")),
    ("application", re.compile(r"入会|異動|手続|申請|届|進ん|進捗|状況|承認|差戻|差し戻|どこまで")),
    ("member", re.compile(r"会員情報|在籍|所属|会員状態|退会|会員ですか")),
)
_PUBLICATION_WORDS = (("jma_news", re.compile(r"日医ニュース")),
                      ("journal_regular", re.compile(r"通常号")),
                      ("journal_special", re.compile(r"特別号")))
_SELF = re.compile(r"私|わたし|自分|僕|ぼく")

_HONORIFIC = re.compile(r"(先生|さん|様|さま)(?!方|がた|たち|達)")
_INSTITUTION_SUFFIX = re.compile(r"クリニック|医院|病院|診療所|眼科|皮膚科|内科|外科|小児科|耳鼻咽喉科|産婦人科")
_QUOTED = re.compile(r"[「『\"]([^」』\"]{2,40})[」』\"]")
_PARTICLES = set("のはがをにで")
# Words before 先生/さん that are not a person's name.
_NOT_NAMES = {
    "会員", "担当", "担当の", "みな", "皆", "みんな", "お医者", "医師会", "事務局", "各", "その", "この", "あの",
    "院長", "副院長", "主治医", "かかりつけ", "患者", "お客", "職員", "事務員", "新人", "新規", "どの", "ほかの",
    "他の", "ご担当", "先方", "相手", "開業医", "勤務医",
}
# Words before クリニック/病院 that describe rather than name an institution.
_NOT_INSTITUTIONS = {
    "新しい", "新規", "新設", "開業", "新規開業", "手入力", "自院", "当院", "近く", "同じ", "別", "他", "各",
    "大学", "総合", "地域", "一般", "専門", "うち", "その", "この", "あの", "どの", "ほかの", "他の", "整形",
    "歯科", "有床", "無床", "医療", "該当",
}
_DESCRIPTIVE_ENDINGS = ("した", "する", "される", "された", "い", "な", "の", "を", "て")


@dataclass(frozen=True)
class Request:
    """What a message asks for; empty fields were not found in it."""

    topic: str | None = None
    member_number: str | None = None
    application_number: str | None = None
    institution_code: str | None = None
    person: str | None = None
    institution: str | None = None
    publications: tuple[str, ...] = ()
    self_reference: bool = False

    @property
    def subject(self) -> bool:
        return any((self.member_number, self.application_number, self.institution_code, self.person,
                    self.institution))


def _is_kanji_or_katakana(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u30a0" <= ch <= "\u30ff" or ch in "々〆ヵヶ"


def _is_name_char(ch: str) -> bool:
    return (_is_kanji_or_katakana(ch) or "\u3041" <= ch <= "\u3096" or ch in "ー・ "
            or ch.isascii() and ch.isalpha())


def _scan_back(text: str, end: int) -> str:
    """The run of name characters ending at `end`, stopping at a particle that follows a word
    (「会員番号の山田」 → 山田) or at anything that cannot be part of a name."""
    start = end
    while start > 0 and _is_name_char(text[start - 1]):
        if text[start - 1] in _PARTICLES and start >= 2 and _is_kanji_or_katakana(text[start - 2]):
            break
        start -= 1
    return text[start:end].strip()


def _person(text: str) -> str | None:
    for m in _HONORIFIC.finditer(text):
        name = _scan_back(text, m.start())
        if (name and name not in _NOT_NAMES and not name.endswith(_DESCRIPTIVE_ENDINGS)
                and not (len(name) == 1 and not _is_kanji_or_katakana(name))):
            return name
    return None


def _institution(text: str) -> str | None:
    for quoted in _QUOTED.findall(text):
        if _INSTITUTION_SUFFIX.search(quoted):
            return quoted.strip()
    best = None
    for m in _INSTITUTION_SUFFIX.finditer(text):
        name = _scan_back(text, m.end())
        if best is None or len(name) > len(best):
            best = name
    if not best:
        return None
    prefix = _INSTITUTION_SUFFIX.sub("", best).strip()
    if (not prefix or prefix in _NOT_INSTITUTIONS or prefix.endswith(_DESCRIPTIVE_ENDINGS)
            or any(prefix.startswith(w) and len(prefix) <= len(w) + 1 for w in _NOT_INSTITUTIONS)):
        return None
    return best


def parse(text: str, pending_topic: str | None = None) -> Request:
    """Find the topic and the subject of a message; `pending_topic` is the topic a prompt asked for.

    After a prompt, a message that is only a name (no question of its own) is taken as the name.
    """
    t = unicodedata.normalize("NFKC", text or "").strip()
    topic = next((name for name, words in _TOPIC_WORDS if words.search(t)), None)
    labelled = bool(_LABELS.search(t))
    publications = tuple(p for p, words in _PUBLICATION_WORDS if words.search(t))
    if not publications and re.search(r"雑誌", t):
        publications = ("journal_regular", "journal_special")

    application = _APPLICATION.search(t)
    rest = _APPLICATION.sub(" ", t)
    code = _INSTITUTION_CODE.search(rest)
    rest = _INSTITUTION_CODE.sub(" ", rest)
    number = _MEMBER_NUMBER.search(rest)
    bare = re.sub(r"[\s、。,.!?！？]|会員番号|医療機関コード|申請番号|は|です|の", "", t)
    alone = bool(number or code) and bare.isdigit()
    counts = labelled or topic is not None or alone or pending_topic is not None

    effective = topic or pending_topic
    request = Request(
        topic=effective,
        member_number=number.group(0) if number and counts else None,
        application_number=f"A{application.group(1)}-{application.group(2)}" if application else None,
        institution_code=code.group(0) if code and counts else None,
        publications=publications,
        self_reference=bool(_SELF.search(t)),
    )
    if request.subject:
        return request
    person = _person(t)
    if person and (topic is not None or pending_topic is not None or len(t) <= len(person) + 8):
        return replace(request, person=person)
    institution = _institution(t)
    if institution and (effective in ("institution", "report")):
        return replace(request, institution=institution)
    if pending_topic and topic is None and _looks_like_a_name(t):
        if pending_topic in ("institution", "report"):
            return replace(request, institution=t)
        return replace(request, person=t)
    return request


def _looks_like_a_name(t: str) -> bool:
    """A short message without a question of its own: 「山田太郎」「さくら皮膚科クリニック」."""
    return 0 < len(t) <= 30 and not re.search(r"[?？]|ですか|ますか|でしょう|教えて|とは|について|いつ|どこ|なぜ", t)


def quick_action(text: str) -> str | None:
    """The topic of a quick-action label sent back as it is, or None."""
    label = unicodedata.normalize("NFKC", text or "").strip()
    return next((topic for name, topic in QUICK_ACTIONS if unicodedata.normalize("NFKC", name) == label), None)


def quick_buttons() -> tuple[Button, ...]:
    return tuple(Button(label, label) for label, _topic in QUICK_ACTIONS)


# -------------------------------------------------------------------------------- masking

_APPLICATION_IN_TEXT = re.compile(r"A[0-9]{4}-[0-9]{6}")


def redact(text: str, names: tuple[str, ...] = ()) -> str:
    """`text` as it may leave the asker's own view: member numbers, institution codes and application
    numbers masked, and the given names (and any name asked for with 先生/さん) reduced to one
    character. Uses the records package's masking helpers so logs and transcripts mask alike."""
    person = _person(unicodedata.normalize("NFKC", text or ""))
    for name in sorted({n for n in (*names, person) if n}, key=len, reverse=True):
        text = text.replace(name, access.mask_name(name))
    text = _APPLICATION_IN_TEXT.sub(lambda m: access.mask_identifier(m.group(0), 3), text)
    return access.mask_identifiers_in_text(text)


# -------------------------------------------------------------------------------- who is asking

def records_asker(asker: Asker) -> access.Asker:
    """The one place where the chat's Asker becomes the records' Asker (whose rules decide access)."""
    label = asker.account or ""
    if asker.role == "staff":
        code = asker.association_code or ""
        level = asker.association_level or ("prefecture" if len(code) == 2 else "county")
        if level == "prefecture":
            return access.Asker.prefecture_staff(code, label=label)
        return access.Asker.county_staff(code, label=label)
    if asker.role == "member" and asker.member_number:
        return access.Asker.member(asker.member_number, label=label)
    if asker.role == "desk":
        return access.Asker.desk(label=label)
    return access.Asker.anonymous()


def may_look_up(asker: Asker) -> bool:
    """Staff, and members whose messaging account is linked; nobody else gets near the records."""
    return asker.role == "staff" or (asker.role == "member" and bool(asker.member_number))


# -------------------------------------------------------------------------------- answering


class StaffOnly(RecordsError):
    """Only secretariat staff issue link codes."""


class WithdrawnMember(RecordsError):
    """A withdrawn member cannot be linked."""


class Lookups:
    """Answers record requests for the core, from `records` (a records.lookup.Records).

    `links` issues one-time link codes and `now` gives the current aware datetime (the core's clock).
    """

    def __init__(self, records: Records, links: LinkCodes, now: Callable[[], datetime]):
        self.records = records
        self.links = links
        self.now = now

    # -- what the core asks

    def wants(self, text: str, asker: Asker, history=()) -> Request | None:
        """The request in `text` if it is one (given the last replies, newest first), else None."""
        pending = self.pending_topic(history)
        if may_look_up(asker):
            topic = quick_action(text)
            if topic:
                return Request(topic=topic)
        request = parse(text, pending)
        if request.subject:
            return request
        # A linked doctor asking about themselves: 「私の日医ニュースの送付先は」.
        if (asker.role == "member" and request.topic in ("application", "delivery", "member")
                and (request.self_reference or pending)):
            return replace(request, member_number=asker.member_number)
        return None

    @staticmethod
    def pending_topic(history) -> str | None:
        last = history[0] if history else None
        if last is not None and last.kind == "lookup_prompt" and last.choices:
            return last.choices[0]
        return None

    def answer(self, request: Request, asker: Asker) -> Reply:
        """The reply to a recognised request; anonymous askers are told to sign in, untouched records."""
        if not may_look_up(asker):
            if asker.role == "desk":
                return Reply(message_ja(RecordUnavailable()), "lookup")
            return Reply(SIGN_IN_TEXT, "sign_in_required")
        if not request.subject:
            topic = request.topic or "member"
            return Reply(PROMPTS[topic] + PROMPT_NOTE, "lookup_prompt", choices=(topic,))
        try:
            return self._answer(request, records_asker(asker), asker)
        except DatabaseMissing:
            return Reply(NO_DATA_TEXT, "lookup")
        except RecordsError as e:
            return Reply(message_ja(e), "lookup")

    def choose(self, text: str, last: Reply, asker: Asker) -> Reply | None:
        """A 「もしかして」 button of a lookup was pressed: answer for the record behind it."""
        if last.kind != "lookup_choices" or not may_look_up(asker):
            return None
        for button, choice in zip(last.buttons, last.choices):
            if text == button.payload:
                topic, kind, key, *name = choice.split("|", 3)
                topic = None if topic == "-" else topic
                if kind == "member":
                    request = Request(topic=topic, member_number=key)
                elif key:
                    request = Request(topic=topic, institution_code=key)
                else:
                    request = Request(topic=topic, institution=name[0] if name else "")
                return self.answer(request, asker)
        return None

    # -- dispatch

    def _answer(self, req: Request, who: access.Asker, asker: Asker) -> Reply:
        if req.application_number:
            return self._mark(self._application(self.records.application(who, req.application_number)))
        if req.institution_code or req.institution:
            return self._institution_request(req, who)
        number = req.member_number
        if number is None:
            matches = self.records.find_members(who, req.person or "")
            picked = _pick([(m.member, m.score) for m in matches])
            if picked is None:
                return self._member_choices(req, matches)
            if picked is False:
                raise MemberNotFound()
            number = picked.member_number
        topic = req.topic
        if topic == "link_code":
            return self._link_code(asker, who, number)
        if topic == "application":
            return self._mark(self._applications(who, number))
        if topic == "delivery":
            return self._mark(self._delivery(who, number, req.publications))
        return self._mark(self._member(who, number))

    def _institution_request(self, req: Request, who: access.Asker) -> Reply:
        code = req.institution_code
        if code is None:
            found = self.records.find_institutions(who, req.institution or "")
            picked = _pick(found)
            if picked is None:
                return self._institution_choices(req, found)
            if picked is False:
                raise RecordUnavailable("institution")
            if picked.institution_code is None:  # typed in by hand: no code, no report, the entry says why
                return self._mark(self._institution(picked))
            code = picked.institution_code
        if req.topic == "report":
            return self._mark(self._report(self.records.family_doctor_report(who, code)))
        return self._mark(self._institution(self.records.institution(who, code)))

    def _mark(self, reply: Reply) -> Reply:
        """Put the demo-data mark first when the records are the demo's (fiction must say so)."""
        label = self.records.dataset_label()
        if not label:
            return reply
        text = f"【{label}】\n{reply.text}"
        redacted = f"【{label}】\n{reply.redacted}" if reply.redacted else None
        return replace(reply, text=text, redacted=redacted)

    # -- members

    def _member(self, who, number: str) -> Reply:
        m = self.records.member(who, number)
        rows = [("氏名", f"{m.name}（{m.kana}）"), ("会員番号", m.member_number),
                ("所属", f"{m.county.name}（{m.prefecture.name}医師会）"), ("会員状態", m.status_label),
                ("勤務先", m.workplace_name or "登録なし")]
        if m.joined_on:
            rows.append(("入会日", japanese_date(m.joined_on)))
        if m.withdrawn_on:
            rows.append(("退会日", japanese_date(m.withdrawn_on)))
        text = f"{_who(m.name, number)}の会員情報です。"
        buttons = (Button("入会手続きの状況", f"会員番号{number}の入会手続きの状況"),
                   Button("送付先の確認", f"会員番号{number}の送付先"))
        return _reply(text, "lookup", Table(("項目", "内容"), tuple(rows)), (m.name, m.kana), buttons=buttons)

    def _member_choices(self, req: Request, matches) -> Reply:
        exact = [m for m in matches if m.score >= 100]
        shown = exact if len(exact) > 1 else matches
        topic = req.topic or "-"
        buttons, choices, names = [], [], []
        for match in shown:
            m = match.member
            label = f"{m.name}（{m.county.name}・会員番号 {access.mask_member_number(m.member_number)}）"
            buttons.append(Button(label, label))
            choices.append(f"{topic}|member|{m.member_number}")
            names += [m.name]
        text = MANY_TEXT if len(exact) > 1 else NEAR_TEXT
        return _reply(text, "lookup_choices", None, tuple(names), buttons=tuple(buttons), choices=tuple(choices))

    # -- procedures

    def _applications(self, who, number: str) -> Reply:
        apps = self.records.applications(who, number)
        try:
            name = self.records.member(who, number).name
        except RecordUnavailable:  # a transfer's old county sees the application, not the member now
            name = None
        if not apps:
            text = f"{_who(name, number)}の入会届・異動届の記録はありません。"
            return _reply(text, "lookup", None, (name,) if name else ())
        reply = self._application(apps[0], name)
        if len(apps) > 1:
            others = "、".join(a.application_number for a in apps[1:4])
            reply = replace(reply, text=reply.text + f"\nほかに{len(apps) - 1}件の届があります（{others}）。")
            reply = replace(reply, redacted=redact(reply.full_text, (name,) if name else ()))
        return reply

    def _application(self, app, name: str | None = None) -> Reply:
        who = _who(name, app.member_number)
        text = (f"{who}の{app.kind_label}（申請番号 {app.application_number}、"
                f"{japanese_date(app.submitted_on)}提出）は、現在「{app.status_label}」です。")
        if app.from_county:
            text += f"\n異動元: {app.from_county.name} → 異動先: {app.county.name}"
        if app.return_reason:
            text += f"\n差戻し理由: {app.return_reason}"
        return _reply(text, "lookup", _history_table(app.history), (name,) if name else ())

    # -- delivery settings

    def _delivery(self, who, number: str, publications: tuple[str, ...]) -> Reply:
        ds = self.records.delivery_settings(who, number)
        text = f"{_who(ds.name, number)}の送付区分です。"
        by_pub = {item.publication: item for item in ds.items}
        for pub in publications:
            text += "\n" + by_pub[pub].sentence
        rows = tuple((PUBLICATION_JA[i.publication],
                      "未設定" if i.send is None else ("する" if i.send else "しない"),
                      DESTINATION_JA[i.destination] if i.send and i.destination else "—")
                     for i in (by_pub[p] for p in PUBLICATIONS))
        return _reply(text, "lookup", Table(("送付物", "送付", "送付先"), rows), (ds.name,))

    # -- institutions and reports

    def _institution(self, inst) -> Reply:
        code = inst.institution_code or "未付番（手入力の医療機関）"
        named = f"{inst.name}（医療機関コード {inst.institution_code}）" if inst.institution_code else \
            f"{inst.name}（手入力の医療機関、コード未付番）"
        text = f"{named}は「{inst.status_label}」です。\n{inst.advice}"
        rows = [("名称", inst.name), ("医療機関コード", code), ("地区", f"{inst.prefecture.name} {inst.county.name}"),
                ("登録元", SOURCE_JA[inst.source]), ("状況", inst.status_label)]
        if inst.filed_on:
            rows.append(("厚生局への届出日", japanese_date(inst.filed_on)))
        if inst.window:
            rows.append(("マスタ更新の見込み", f"{japanese_date(inst.window.earliest_night)}〜"
                                          f"{japanese_date(inst.window.latest_night)}の週末夜間（目安）"))
        if inst.registered_on:
            rows.append(("マスタ反映日", japanese_date(inst.registered_on)))
        return _reply(text, "lookup", Table(("項目", "内容"), tuple(rows)))

    def _institution_choices(self, req: Request, found) -> Reply:
        exact = [(i, s) for i, s in found if s >= 100]
        shown = exact if len(exact) > 1 else found
        buttons, choices = [], []
        for inst, _score in shown:
            label = f"{inst.name}（{inst.county.name}）"
            buttons.append(Button(label, label))
            choices.append(f"{req.topic or '-'}|institution|{inst.institution_code or ''}|{inst.name}")
        text = MANY_INSTITUTIONS_TEXT if len(exact) > 1 else NEAR_INSTITUTION_TEXT
        return _reply(text, "lookup_choices", None, buttons=tuple(buttons), choices=tuple(choices))

    def _report(self, rep) -> Reply:
        text = (f"{rep.institution_name}の{rep.fiscal_year_label}かかりつけ医機能報告（{japanese_date(rep.submitted_on)}提出）"
                f"は、現在「{rep.status_label}」です。")
        if rep.return_reason:
            text += f"\n差戻し理由: {rep.return_reason}"
        return _reply(text, "lookup", _history_table(rep.history))

    # -- link codes

    def issue_link_code(self, asker: Asker, member_number: str) -> IssuedCode:
        """Issue a one-time link code for a member the staff member may see; logged, refused alike.

        The member lookup is the access check (and writes the access log); the issue itself is logged
        too, as `link_code_issue`, with the member number masked.
        """
        who = records_asker(asker)
        if asker.role != "staff":
            raise StaffOnly()
        member = self.records.member(who, member_number)
        if member.status == "withdrawn":
            raise WithdrawnMember()
        issued = self.links.issue(member.member_number, asker.account or who.log_ref(), self.now())
        self.records.log.write(who, "link_code_issue", access.mask_member_number(member.member_number), True)
        return issued

    def _link_code(self, asker: Asker, who, number: str) -> Reply:
        try:
            issued = self.issue_link_code(asker, number)
        except StaffOnly:
            return Reply(STAFF_ONLY_LINK_TEXT, "lookup")
        except WithdrawnMember:
            return Reply(WITHDRAWN_LINK_TEXT, "lookup")
        name = self.records.member(who, number).name
        expires = datetime.fromisoformat(issued.expires_at)
        text = (f"{_who(name, number)}の連携コードを発行しました。\n"
                f"連携コード: {issued.code}\n"
                f"有効期限: {japanese_date(expires.date())} {expires:%H:%M} まで（1回限り）\n"
                "先生に、MAMISヘルプデスクのボットへこのコードを送っていただくと、アカウントが会員番号と連携されます。"
                "コードはこの画面でしか表示されません。")
        return replace(_reply(text, "link_code", None, (name,)), conceal=(issued.code,))


def _pick(scored):
    """One clear match → it; nothing → False; several or only near matches → None (offer choices)."""
    if not scored:
        return False
    exact = [item for item, score in scored if score >= 100]
    if len(exact) == 1:
        return exact[0]
    return None


def _who(name: str | None, number: str) -> str:
    return f"{name} 先生（会員番号 {number}）" if name else f"会員番号 {number} の先生"


def _history_table(history) -> Table:
    rows = tuple((japanese_date(e.happened_on), LEVEL_JA[e.level], ACTION_JA[e.action])
                 for e in history[-HISTORY_ROWS:])
    return Table(("日付", "段階", "処理"), rows, "経過" if len(history) <= HISTORY_ROWS else "経過（直近）")


def _reply(text: str, kind: str, table: Table | None, names: tuple[str, ...] = (), **fields) -> Reply:
    reply = Reply(text, kind, table=table, **fields)
    return replace(reply, redacted=redact(reply.full_text, names))

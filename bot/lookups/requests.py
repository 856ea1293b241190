"""Recognising a request for a record in plain Japanese.

「会員番号1234567の入会手続きはどこまで進んでいますか」「〇〇クリニックはマスタに載っていますか」
「△△先生の日医ニュースの送付先は」: `parse` finds the subject (a member number, an application number,
an institution code, a person's name with 先生/さん, an institution name ending in クリニック/医院/病院…)
and the topic (application, delivery settings, institution master, family-doctor report, link code).

Recognition is deliberately narrow: an identifier counts only when it is labelled (会員番号…), comes
with a topic, or is the whole message, so knowledge-base questions (「新しく開業したクリニックがマスタに
出てこない」) still reach the search.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

from bot.conversation.buttons import LOOKUP_BUTTON, Button

TOPICS = ("application", "delivery", "institution", "report", "member", "link_code")

# Quick actions offered to signed-in staff; pressing one (button `lookup:<topic>`, or its label sent as
# text) gets a `lookup_prompt` asking for the number or name, whose memory is the pending topic.
QUICK_ACTIONS: tuple[tuple[str, str], ...] = (
    ("入会手続きの状況", "application"),
    ("送付先の確認", "delivery"),
    ("医療機関マスタの確認", "institution"),
    ("かかりつけ医機能報告の確認", "report"),
    ("連携コードの発行", "link_code"),
)

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
    # conjunctions, which the scan back reads as a hiragana name: the bot's own 「会員番号（7桁）または
    # 先生のお名前」 was masked as 「ま＊＊先生」 in the desk's transcript
    "または", "もしくは", "あるいは", "および", "ならびに", "それとも",
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


def person_in(text: str) -> str | None:
    """The name asked for with 先生/さん/様 (「山田太郎先生の…」 → 山田太郎), if any."""
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


NAME_CHARS = 40  # no institution's name is longer
_TRAILING = re.compile(r"[\s、。,.!?！？]*(は|って|とは)?[\s、。,.!?！？]*$")


def institution_name_candidates(text: str) -> list[str]:
    """Every stretch of the message that could be an institution's whole name: whatever ends at a
    クリニック/医院/病院… (however far back it starts), a quoted phrase, or the whole short message.

    Which of them is a name only the institution table knows (Lookups.exact_institution asks it);
    scanning back alone cuts 「丸の内メディカルクリニック」 at its の.
    """
    t = unicodedata.normalize("NFKC", text or "").strip()
    found = {q.strip() for q in _QUOTED.findall(t)}
    for m in _INSTITUTION_SUFFIX.finditer(t):
        end = m.end()
        found.update(t[start:end].strip() for start in range(max(0, end - NAME_CHARS), m.start() + 1))
    whole = _TRAILING.sub("", t)
    if 0 < len(whole) <= NAME_CHARS:
        found.add(whole)
    return sorted((c for c in found if len(c) >= 2), key=len, reverse=True)


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
    person = person_in(t)
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
    return tuple(Button(label, LOOKUP_BUTTON + topic) for label, topic in QUICK_ACTIONS)



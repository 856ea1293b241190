"""Normalising names and kana so that lookups match what people actually type.

Staff type a doctor's name the way they remember it: hiragana instead of katakana,
half-width kana pasted from an old system, no space between family and given name,
or an old character form (髙, 﨑, 邊). Everything stored for search and every query
goes through the same functions here, so the two sides always agree.
"""
from __future__ import annotations

import re
import unicodedata

# Old or variant character forms that people and systems use interchangeably in
# surnames. NFKC leaves them alone, so they are folded here for matching only; the
# stored display name keeps the form the member registered.
_VARIANTS = {
    "髙": "高", "﨑": "崎", "嵜": "崎", "邊": "辺", "邉": "辺", "齋": "斎", "齊": "斎",
    "斉": "斎", "濵": "浜", "濱": "浜", "澤": "沢", "冨": "富", "德": "徳", "櫻": "桜",
    "廣": "広", "國": "国", "眞": "真", "實": "実", "嶋": "島", "嶌": "島", "籠": "篭",
    "槇": "槙", "瀨": "瀬", "曻": "昇", "淸": "清", "惠": "恵",
}

# Honorifics that arrive glued to a name in chat questions (「山田先生の…」).
_HONORIFICS = ("先生", "医師", "ドクター", "様", "さま", "さん", "氏")

_SPACES = re.compile(r"\s+")

# One translation table for folding: hiragana → katakana (the blocks are 0x60
# apart), variant forms → common forms, whitespace → removed. A single
# str.translate is several times faster than chaining converters, which matters
# when 180,000 names are folded during an import.
_HIRA_TO_KATA = {chr(c): chr(c + 0x60) for c in [*range(0x3041, 0x3097), 0x309D, 0x309E]}
_KATAKANA_ONLY = str.maketrans(_HIRA_TO_KATA)
_FOLD = str.maketrans(_HIRA_TO_KATA | _VARIANTS | {ch: None for ch in " \t\r\n\u3000\u00a0"})
_KATAKANA = re.compile(r"^[\u30a0-\u30ffー]+$")


def display_name(raw: str) -> str:
    """Canonical display form: trimmed, parts joined by one full-width space.

    Japanese forms separate family and given name with 「　」; collapsing whatever
    the source used keeps the CSV round trip stable (and so the import idempotent).
    """
    text = unicodedata.normalize("NFKC", raw or "")
    return "\u3000".join(text.split())


def display_kana(raw: str) -> str:
    """Canonical kana: full-width katakana (NFKC folds half-width), hiragana converted."""
    return display_name(raw).translate(_KATAKANA_ONLY)


def fold(text: str) -> str:
    """The matching key: NFKC, katakana, variant forms folded, no spaces."""
    return unicodedata.normalize("NFKC", text or "").translate(_FOLD)


def family_part(display: str) -> str:
    """The family name of a display name (the part before the first space)."""
    return fold(display.split("\u3000", 1)[0])


def is_katakana(folded: str) -> bool:
    """True when a folded key is pure katakana, i.e. the user typed a reading."""
    return bool(_KATAKANA.match(folded))


def strip_honorifics(query: str) -> str:
    """Drop a trailing 「先生」「様」 etc., which are never part of a stored name."""
    text = query.strip()
    changed = True
    while changed:
        changed = False
        for word in _HONORIFICS:
            if text.endswith(word) and len(text) > len(word):
                text = text[: -len(word)].rstrip()
                changed = True
    return text


def bigrams(folded: str) -> set[str]:
    """Character bigrams of a folded key: the unit of the candidate prefilter.

    Bigrams rather than trigrams because Japanese names are two to four characters;
    a wrong kanji in 「山田太朗」 still leaves 「山田」「田太」 to find 「山田太郎」.
    """
    return {folded[i:i + 2] for i in range(len(folded) - 1)}


def member_grams(name: str, kana: str) -> set[str]:
    """All bigrams under which a member can be found: name key and kana key."""
    return bigrams(fold(name)) | bigrams(fold(kana))


# Words in institution names so common that they would make every clinic a
# candidate; stripped before grams are taken (never from the display name).
_INSTITUTION_NOISE = (
    "医療法人社団", "医療法人財団", "医療法人", "社会医療法人", "一般財団法人", "公益財団法人",
    "クリニック", "病院", "医院", "診療所", "内科", "外科", "小児科", "整形外科", "皮膚科", "眼科",
    "耳鼻咽喉科", "産婦人科", "ナイカ", "ゲカ", "ビョウイン", "イイン", "シンリョウジョ",
    "セイケイ", "ショウニカ", "ヒフカ", "ガンカ", "ジビインコウカ", "サンフジンカ",
)


_NOISE_RE = re.compile("|".join(sorted({fold(w) for w in _INSTITUTION_NOISE}, key=len, reverse=True)))


def institution_core(folded: str) -> str:
    """The distinctive part of a folded institution name (「サクラ」 of さくら内科クリニック)."""
    return _NOISE_RE.sub("", folded) or folded


def institution_grams(name: str, kana: str) -> set[str]:
    """Bigrams of the distinctive parts of an institution's name and kana."""
    return institution_key_grams(fold(name), fold(kana))


def institution_key_grams(name_key: str, kana_key: str) -> set[str]:
    """The same from the folded keys, which an import has already computed for its rows."""
    grams = set()
    for folded in (name_key, kana_key):
        core = institution_core(folded)
        grams |= bigrams(core) if len(core) > 1 else {core}
    return grams

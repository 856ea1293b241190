"""Japanese text analysis shared by the indexer and the search.

Both sides of a match must be folded the same way, so this is the one place that
decides what a "term" is:

1. NFKC (ﾏｽﾀ → マスタ, Ａｐｉ → Api), case folding, hyphen-like marks after katakana
   read as the long-vowel mark (ニュ-ス → ニュース);
2. the domain synonym table (`synonyms.txt`) rewrites variants to one canonical spelling;
3. SudachiPy (core dictionary) segments the text; each content word contributes its
   *normalized form* (差戻し → 差し戻し, マスタ → マスター) folded to katakana with long-vowel
   marks removed, plus its shorter (mode A) parts, so a compound like 医療機関マスタ also
   matches マスタ alone;
4. the reading (katakana) of the whole text is kept as character bigrams, so a question
   typed in kana (にちいニュース) meets the kanji article (日医ニュース), and two-character
   fragments the segmenter does not know (差戻) still match.

SudachiPy was chosen over fugashi+unidic-lite and Janome after measuring all three on
our questions (see docs/search.md): only its normalized forms fold 差戻し/差し戻し and
ﾏｽﾀ/マスタ/マスター, and it is fast enough (tens of microseconds per question).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import jaconv
from sudachipy import Dictionary, SplitMode

#: Bump when analysis changes: the indexer then rebuilds every document.
ANALYZER_VERSION = "9"

SYNONYMS_PATH = Path(__file__).with_name("synonyms.txt")

# Parts of speech that carry no topic: particles, auxiliaries, symbols, blanks. Words that
# Sudachi marks 非自立可能 (ほしい, できる, ある, いる, こと, もの …) are left out too: they
# mostly serve grammar (〜してほしい, 〜できますか), and measured, dropping them helps both
# evaluation sets.
SKIP_POS = {"助詞", "助動詞", "補助記号", "空白", "記号"}
# Very common verbs/nouns whose normalized forms would match nearly every document.
STOP_LEMMAS = {
    "為る", "有る", "居る", "成る", "出来る", "言う", "思う", "いう", "ある", "いる", "する", "なる",
    "事", "物", "所", "其れ", "此れ", "何", "様", "的", "達", "等", "さん", "ください", "下さる", "頂く",
    "いただく", "致す", "御", "お", "ご",
    # Interrogatives say what kind of answer is wanted (kb.passages reads that from the text),
    # not what it is about.
    "何処", "どこ", "何時", "いつ", "何故", "なぜ", "誰", "だれ", "どう", "如何", "どれ", "どちら", "どなた",
    "幾ら", "いくら",
}
# Nouns that say what kind of answer is wanted, not what it is about (内容を教えて, 方法は): never
# the word that makes a question this question (see `_morpheme_entry`, key words).
GENERIC_NOUNS = {"内容", "方法", "場合", "仕方", "遣り方", "やり方", "詳細", "一覧", "件", "点", "時", "際", "為", "ため", "最新"}
# Noun kinds that are never key words: counters (3件, 機) and time words (今回, 当日, 最近).
NOT_KEY_NOUNS = {"助数詞可能", "副詞可能"}
HYPHEN_AFTER_KATAKANA = re.compile(r"(?<=[ァ-ヴー])[-‐‑‒–—―−ｰ~〜～]")
LONG_VOWEL = "ー"
NON_WORD = re.compile(r"[\s\W_]+")
HIRAGANA_ONLY = re.compile(r"[ぁ-ゖー]+")
MAX_INPUT_CHARS = 2000
# Distinct words remembered by an Analyzer (unknown spellings from questions could grow it without end).
MORPHEME_CACHE = 200_000
# Sudachi gives unknown words word ids from here on (0xF in the dictionary field).
OOV_WORD_ID = 0xF000_0000
# Text per segmenter call, in UTF-8 bytes: Sudachi refuses more than 49,149.
SEGMENT_BYTES = 40_000
PIECE_CHARS = SEGMENT_BYTES // 4  # at most four bytes a character


def nfkc(text: str) -> str:
    """Width and compatibility folding, case folding, and katakana long-vowel hyphens."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return HYPHEN_AFTER_KATAKANA.sub(LONG_VOWEL, text)


def fold_kana(text: str) -> str:
    """Hiragana → katakana and long-vowel marks dropped, so ますたー = マスタ = マスター."""
    return jaconv.hira2kata(text).replace(LONG_VOWEL, "").casefold()


@cache
def sudachi_dictionary() -> Dictionary:
    """The core dictionary, loaded once per process.

    It is read-only and takes about 75 MB, so every Analyzer (one per searcher, per thread)
    shares it and only holds a tokenizer of its own.
    """
    return Dictionary(dict="core")


def load_synonyms(path: Path = SYNONYMS_PATH) -> dict[str, str]:
    """Map every variant (after nfkc) to its canonical spelling."""
    table: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = [nfkc(w) for w in line.split("#", 1)[0].split()]
        if len(words) >= 2:
            for variant in words[1:]:
                table[variant] = words[0]
    return table


def _morpheme_entry(m) -> tuple[tuple[str, ...], str | None, bool, tuple | None, tuple[str, ...]]:
    """(terms, reading, is a known word, the word's unit for `Analysis.units`, its lemma) of one morpheme.

    The unit is (terms, known, key). A key word is a known common or proper noun that names a thing
    (パスワード, 自宅, スマホアプリ, 新機能): the words that make a question this question. The
    answer shown must meet every one of them (kb.confidence); verbs, time words, counters and nouns
    that only ask for a kind of answer (内容, 方法) are not key.

    The lemma is the normalized form as Sudachi spells it (not folded), then its mode-A parts
    for a compound: what word vectors are keyed by (kb.vectors).

    The reading is None for a symbol or blank, "" to read it as spelled (ASCII). A known word
    is one the dictionary has and that is not written in hiragana alone: when the index lacks it,
    the question asks about something the articles do not mention, rather than spelling a
    word of theirs differently (ますた, にちい), see kb.search.
    """
    pos = m.part_of_speech()
    surface = m.surface()
    read = None if pos[0] in ("補助記号", "空白", "記号") else ("" if surface.isascii() else m.reading_form())
    if pos[0] in SKIP_POS or pos[1] == "非自立可能" or m.normalized_form() in STOP_LEMMAS or not surface.strip():
        return (), read, False, None, ()
    term = fold_kana(m.normalized_form())
    if not term or NON_WORD.fullmatch(term):
        return (), read, False, None, ()
    terms = [term]
    lemma = [m.normalized_form()]
    parts = m.split(SplitMode.A)
    if len(parts) > 1:
        lemma.extend(p.normalized_form() for p in parts)
        for p in parts:
            sub = fold_kana(p.normalized_form())
            if sub and sub != term and p.part_of_speech()[0] not in SKIP_POS and not NON_WORD.fullmatch(sub):
                terms.append(sub)
    known = not m.is_oov() and not HIRAGANA_ONLY.fullmatch(surface)
    key = (known and pos[0] == "名詞" and pos[1] in ("普通名詞", "固有名詞") and pos[2] not in NOT_KEY_NOUNS
           and m.normalized_form() not in GENERIC_NOUNS)
    return tuple(terms), read, known, (tuple(terms), known, key), tuple(lemma)


@dataclass(frozen=True)
class Analysis:
    terms: tuple[str, ...]  # folded normalized forms of content words, in order, with repeats
    reading: str  # folded katakana reading of the whole text
    surface: str  # folded text with punctuation and spaces removed (for fuzzy matching)
    # One per content word: its terms (the word's own first, then its parts), whether it is a
    # known word and whether it is a key word (see _morpheme_entry). Coverage is counted per word,
    # not per term, so a compound and its parts do not weigh three times.
    units: tuple[tuple[tuple[str, ...], bool, bool], ...] = ()
    # One per content word, in order with repeats: its lemma (see _morpheme_entry).
    lemmas: tuple[tuple[str, ...], ...] = ()
    # One per content word (beside `units`): its folded reading, and whether the dictionary lacks
    # it (not merely written in hiragana), so kb.confidence can tell a kana spelling or a typo (the
    # reading meets an article's) from a word no article has. Empty when analysed without readings.
    readings: tuple[str, ...] = ()
    oov: tuple[bool, ...] = ()

    def unique_terms(self) -> list[str]:
        return list(dict.fromkeys(self.terms))


def _batches(texts: list[str]) -> list[list[int]]:
    """Indices of `texts` (each at most PIECE_CHARS long) grouped so that each group, joined
    by line breaks, fits one segmenter call."""
    batches, current, size = [], [], 0
    for i, text in enumerate(texts):
        n = len(text.encode("utf-8")) + 1
        if current and size + n > SEGMENT_BYTES:
            batches.append(current)
            current, size = [], 0
        current.append(i)
        size += n
    if current:
        batches.append(current)
    return batches


def bigrams(text: str) -> list[str]:
    """Overlapping character pairs; a single character is its own gram."""
    if len(text) < 2:
        return [text] if text else []
    return [text[i:i + 2] for i in range(len(text) - 1)]


class Analyzer:
    """Segmenter plus folding rules; build one and reuse it (loading the dictionary takes a moment)."""

    def __init__(self, synonyms: dict[str, str] | None = None):
        self.synonyms = load_synonyms() if synonyms is None else synonyms
        # Longest variant first, so 郡市区等 wins over 郡市区 and canonical forms stay put.
        keys = sorted(set(self.synonyms) | set(self.synonyms.values()), key=len, reverse=True)
        self._synonym_re = re.compile("|".join(map(re.escape, keys))) if keys else None
        self._tokenizer = sudachi_dictionary().tokenizer(mode=SplitMode.C)
        self._morphemes: dict = {}

    def canonical(self, text: str) -> str:
        """NFKC plus the synonym table."""
        text = nfkc(text)
        if self._synonym_re is None:
            return text
        return self._synonym_re.sub(lambda m: self.synonyms.get(m.group(0), m.group(0)), text)

    def analyze(self, text: str, limit: int | None = MAX_INPUT_CHARS, reading: bool = True) -> Analysis:
        """Terms, words, reading and folded surface of `text`.

        `reading=False` skips the reading and the surface (the indexer needs them only for
        short fields, and they cost a third of the time on long bodies).
        """
        return self.analyze_many([text], limit, reading)[0]

    def analyze_many(self, texts: list[str], limit: int | None = MAX_INPUT_CHARS,
                     reading: bool = True) -> list[Analysis]:
        """Each text analysed exactly as `analyze` would, in as few segmenter calls as possible.

        The indexer has a dozen short texts per article (title, questions, tags, and each
        section's heading, stated and "not stated" sentences); one call per text spent more
        on the per-call work than on segmenting. The texts are joined by line breaks (never
        part of a word), segmented in pieces below the segmenter's input limit, and every
        word goes back to the text its offset falls in.
        """
        # Lone surrogates (possible in JSON input) cannot be encoded for the segmenter.
        texts = [self.canonical((t[:limit] if limit is not None else t).encode("utf-8", "ignore").decode("utf-8"))
                 for t in texts]
        terms: list[list[str]] = [[] for _ in texts]
        readings: list[list[str]] = [[] for _ in texts]
        units: list[list] = [[] for _ in texts]
        lemmas: list[list] = [[] for _ in texts]
        unit_readings: list[list] = [[] for _ in texts]  # (reading, out of vocabulary) per word
        # A text longer than one call allows (a very long section) goes in pieces; its pieces
        # share its lists.
        pieces = [(i, text[at:at + PIECE_CHARS]) for i, text in enumerate(texts)
                  for at in range(0, max(len(text), 1), PIECE_CHARS)]
        for batch in _batches([piece for _, piece in pieces]):
            owners = [pieces[j][0] for j in batch]
            self._segment([pieces[j][1] for j in batch], [terms[i] for i in owners],
                          [readings[i] for i in owners] if reading else None, [units[i] for i in owners],
                          [lemmas[i] for i in owners], [unit_readings[i] for i in owners])
        return [
            Analysis(
                terms=tuple(terms[i]),
                reading=fold_kana(NON_WORD.sub("", "".join(readings[i]))) if reading else "",
                surface=fold_kana(NON_WORD.sub("", text)) if reading else "",
                units=tuple(units[i]),
                lemmas=tuple(lemmas[i]),
                readings=tuple(r for r, _ in unit_readings[i]),
                oov=tuple(o for _, o in unit_readings[i]),
            )
            for i, text in enumerate(texts)
        ]

    def _segment(self, texts: list[str], terms: list[list], readings: list[list] | None, units: list[list],
                 lemmas: list[list], unit_readings: list[list]) -> None:
        """Segment `texts` (joined by line breaks) in one call; append each one's words to its lists."""
        ends, at = [], -1
        for text in texts:
            at += len(text) + 1
            ends.append(at)  # offset of the line break after the text
        i, end, several = 0, ends[0], len(texts) > 1
        cache = self._morphemes
        get = cache.get
        words, unit_list, lemma_list, unit_read = terms[0], units[0], lemmas[0], unit_readings[0]
        read = readings[0] if readings is not None else None
        for m in self._tokenizer.tokenize("\n".join(texts)):
            if several and m.begin() >= end:
                while m.begin() >= end:
                    i += 1
                    end = ends[i]
                words, unit_list, lemma_list, unit_read = terms[i], units[i], lemmas[i], unit_readings[i]
                read = readings[i] if readings is not None else None
            # A dictionary word always folds the same way, so each is worked out once per
            # process; unknown words (one shared word id per part of speech) by their spelling.
            key = m.word_id()
            if key >= OOV_WORD_ID:
                key = (m.surface(), key)
            entry = get(key)
            if entry is None:
                if len(cache) > MORPHEME_CACHE:
                    cache.clear()
                entry = cache[key] = _morpheme_entry(m)
            if entry[0]:
                words.extend(entry[0])
                unit_list.append(entry[3])
                lemma_list.append(entry[4])
                if read is not None:
                    unit_read.append((fold_kana(NON_WORD.sub("", entry[1] or m.surface())), m.is_oov()))
            if read is not None and entry[1] is not None:
                read.append(entry[1] or m.surface())

    @cached_property
    def version(self) -> str:
        """Analyzer code version plus the synonym table, so editing synonyms triggers a rebuild."""
        table = "\n".join(f"{k}={v}" for k, v in sorted(self.synonyms.items()))
        return f"{ANALYZER_VERSION}:{hash_text(table)}"


def hash_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

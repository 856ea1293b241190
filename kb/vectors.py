"""Word vectors: what a question means when it shares no word with the answer.

BM25 cannot see that 「仕事をやめた」 asks about 退職, or 「なくなった」 about 死亡. Static word
vectors can: words used alike sit close together. The vectors are chiVe (Works Applications,
Apache-2.0, trained on Sudachi's normalized forms, so they meet our analysis word for word) as
shipped, pruned to 20,000 vectors for 480,443 words, inside the `ja-ginza` package on PyPI. They are
data, not a dependency: `helpdesk fetch-vectors` (kb.vector_fetch) downloads the pinned wheel, checks
its sha256 and writes the table into the vectors folder (`folder()`) as .npy files of our own; this
module reads only those.

An article is one vector per field group (title, example questions and tags; body): the
weighted sum of its words' unit vectors (idf over the articles × rarity in Japanese, see
`weights_of`) with the direction common to all words taken out, then normalised: the "smooth
inverse frequency" recipe of Arora et al. (2017), with these weights in place of word
probabilities and the common direction read from the word table rather than from the articles,
so that a knowledge base of a dozen articles gets vectors as sound as a large one. The search
adds a question's cosine to an article to its lexical score (kb.search). Without the vectors
everything still works, lexically only, and `helpdesk index` and /readyz say so.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import Counter
from functools import lru_cache
from pathlib import Path

import jaconv
import numpy as np

log = logging.getLogger(__name__)

#: The table the vectors folder must hold (kb.vector_fetch writes it); an index records it.
SOURCE = "ja_ginza-5.3.0"
#: The vectors folder, when not the default (a declared setting, VECTORS_PATH in helpdesk/settings.py).
ENV = "HELPDESK_VECTORS_PATH"
WIDTH = 300
# The two field groups an article's meaning is read from, and how much each counts when a
# question is compared with the article (measured on the localgovFAQ dev half: the answer
# says more than the question it answers).
FIELDS = ("head", "body")
FIELD_MIX = (0.3, 0.7)
# Frequency rank at which a word's rarity weight reaches log 2 (see weights_of).
RANK_SCALE = 10.0


def folder() -> Path:
    """Where the vectors are kept: HELPDESK_VECTORS_PATH, else the user's data folder
    (~/.local/share/mamis-helpdesk/vectors), shared by every instance and checkout of this user:
    the table is the same 20 MB for all of them."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "mamis-helpdesk" / "vectors"


def source_of(path: Path) -> str | None:
    """The table a vectors folder holds (first line of its SOURCE), or None without one."""
    try:
        return (Path(path) / "SOURCE").read_text(encoding="utf-8").split("\n", 1)[0].strip() or None
    except OSError:
        return None


def word_key(word: str) -> int:
    """A word's key in `keys.npy`: the first 8 bytes of its BLAKE2b digest over UTF-8, little-endian."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


class WordVectors:
    """The vector table and the word → row map, read once per process (see `load`)."""

    def __init__(self, path: Path):
        path = Path(path)
        self.source = source_of(path)  # an index records what it was built with
        if self.source != SOURCE:
            raise ValueError(f"SOURCE is {self.source!r}, not {SOURCE}")
        #: Every row as a unit vector, in float16 (12 MB; cosines need no more).
        self.units = np.load(path / "vectors.npy")
        if self.units.ndim != 2 or self.units.shape[1] != WIDTH or self.units.dtype != np.float16:
            raise ValueError(f"unexpected vector table {self.units.shape} {self.units.dtype}")
        self.size = len(self.units)
        self._keys, self._rows = np.load(path / "keys.npy"), np.load(path / "rows.npy")
        if len(self._keys) != len(self._rows):
            raise ValueError("keys.npy and rows.npy differ in length")
        self.rows = lru_cache(maxsize=100_000)(self._rows_of)
        mean = sum(self.unit(np.arange(at, min(at + SLICE, self.size))).sum(axis=0) for at in range(0, self.size, SLICE))
        #: What every word shares (mostly frequency): taken out of every vector so that cosines
        #: compare what texts are about.
        self.common = (mean / np.linalg.norm(mean)).astype(np.float32)

    def row(self, word: str) -> int | None:
        key = word_key(word)
        at = int(np.searchsorted(self._keys, np.uint64(key)))
        if at < len(self._keys) and int(self._keys[at]) == key:
            return int(self._rows[at])
        return None

    def _rows_of(self, unit: tuple[str, ...]) -> tuple[int, ...]:  # cached per process: see __init__
        """A word's row, also under its other kana (our dictionary keeps ゴミ where the vectors have
        ごみ); for a compound the table lacks (生活保護申請), the rows of its parts."""
        word = unit[0]
        for spelling in dict.fromkeys((word, jaconv.kata2hira(word), jaconv.hira2kata(word))):
            row = self.row(spelling)
            if row is not None:
                return (row,)
        return tuple(r for r in map(self.row, unit[1:]) if r is not None)

    def bag(self, units) -> "Bag":
        """The rows of a text's words (`Analysis.lemmas`) and how often each occurs."""
        found: dict[int, int] = {}
        for unit, times in Counter(units).items():  # each word looked up once, however often it occurs
            for row in self.rows(unit):
                found[row] = found.get(row, 0) + times
        rows = sorted(found)
        return Bag(np.array(rows, dtype=np.int32), np.array([found[r] for r in rows], dtype=np.int32))

    def unit(self, rows) -> np.ndarray:
        return self.units[np.asarray(rows, dtype=np.int64)].astype(np.float32)

    def meaning(self, bag: "Bag", weights: np.ndarray) -> np.ndarray:
        """A text's vector (see `meanings`)."""
        return self.meanings([bag], weights)[0]

    def meanings(self, bags: list["Bag"], weights: np.ndarray) -> np.ndarray:
        """One vector per bag: Σ weight × (1 + log times) × unit vector over its rows (weights:
        `weights_of`), the common direction taken out, normalised; zero for an empty bag."""
        raw = np.zeros((len(bags), WIDTH), dtype=np.float32)
        for i, bag in enumerate(bags):  # one bag at a time: its rows' vectors stay in the CPU cache
            if len(bag.rows):
                raw[i] = (weights[bag.rows] * (1.0 + np.log(bag.counts))) @ self.unit(bag.rows)
        raw -= np.outer(raw @ self.common, self.common)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return (raw / np.where(norms > 0, norms, 1.0)).astype(np.float32)


# Rows of the vector table summed at once (the common direction).
SLICE = 4096


class Bag:
    """Rows and their counts (int32 arrays, rows ascending); stored in the index as one blob."""

    __slots__ = ("rows", "counts")

    def __init__(self, rows: np.ndarray, counts: np.ndarray):
        self.rows, self.counts = rows, counts

    def to_bytes(self) -> bytes:
        return np.concatenate([self.rows, self.counts]).tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "Bag":
        both = np.frombuffer(blob, dtype=np.int32)
        half = len(both) // 2
        return cls(both[:half], both[half:])


_loaded: dict[Path, WordVectors | None] = {}
_lock = threading.Lock()


def load(path: Path | None = None) -> WordVectors | None:
    """The word vectors of `path` (default: `folder()`), read once per process, or None when they
    have not been fetched (then the search is lexical)."""
    path = Path(path or folder())
    with _lock:
        if path not in _loaded:
            vectors = None
            if source_of(path) is None:
                log.warning("word vectors not found in %s (helpdesk fetch-vectors): searching by words only", path)
            else:
                try:
                    vectors = WordVectors(path)
                except (OSError, ValueError) as e:
                    log.warning("word vectors in %s unreadable (%s): searching by words only", path, e)
            _loaded[path] = vectors
        return _loaded[path]


def weights_of(row_sets: list[np.ndarray], size: int) -> np.ndarray:
    """Per row, how much a word of it says: its idf over the articles times its rarity in Japanese.

    The idf alone misleads in a small knowledge base, where an everyday word (時, 方) that no
    article happens to use gets the highest weight. The table's rows are in order of frequency
    (の, に, だ first), so log(1 + rank / RANK_SCALE) tells an everyday word from a rare one,
    whatever the articles; measured on the localgovFAQ dev half, the product of the two ranks
    better than either. `row_sets` holds each article's distinct rows.
    """
    df = np.bincount(np.concatenate(row_sets), minlength=size) if row_sets else np.zeros(size)
    idf = np.log((len(row_sets) + 1) / (df[:size] + 1)) + 1.0
    return (idf * np.log1p(np.arange(size) / RANK_SCALE)).astype(np.float32)

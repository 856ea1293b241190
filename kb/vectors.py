"""Word vectors: what a question means when it shares no word with the answer.

BM25 cannot see that 「仕事をやめた」 asks about 退職, or 「なくなった」 about 死亡. Static word
vectors can: words used alike sit close together. The vectors are chiVe (Works Applications,
Apache-2.0, trained on Sudachi's normalized forms, so they meet our analysis word for word) as
shipped, pruned to 20,000 vectors for 480,443 words, inside the `ja-ginza` package on PyPI. Only
its data files are read: the package is installed without its dependencies (spaCy, and a
SudachiPy older than ours; see `[tool.helpdesk] data-packages` in pyproject.toml), and never
imported.

An article is one vector per field group (title, example questions and tags; body): the
weighted sum of its words' unit vectors (idf over the articles × rarity in Japanese, see
`weights_of`) with the direction common to all words taken out, then normalised: the "smooth
inverse frequency" recipe of Arora et al. (2017), with these weights in place of word
probabilities and the common direction read from the word table rather than from the articles,
so that a knowledge base of a dozen articles gets vectors as sound as a large one. The search
adds a question's cosine to an article to its lexical score (kb.search). Without the package
everything still works, lexically only.
"""
from __future__ import annotations

import importlib.util
import logging
import struct
import threading
from collections import Counter
from functools import lru_cache
from pathlib import Path

import jaconv
import msgpack
import numpy as np

log = logging.getLogger(__name__)

PACKAGE = "ja_ginza"
WIDTH = 300
# The two field groups an article's meaning is read from, and how much each counts when a
# question is compared with the article (measured on the localgovFAQ dev half: the answer
# says more than the question it answers).
FIELDS = ("head", "body")
FIELD_MIX = (0.3, 0.7)
# Frequency rank at which a word's rarity weight reaches log 2 (see weights_of).
RANK_SCALE = 10.0

_M = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1


def murmurhash64a(data: bytes, seed: int = 1) -> int:
    """MurmurHash64A, the hash spaCy keys its vectors by (seed 1, over UTF-8)."""
    h = (seed ^ (len(data) * _M)) & _MASK
    blocks = len(data) // 8
    for (k,) in struct.iter_unpack("<Q", data[:blocks * 8]):
        k = (k * _M) & _MASK
        k ^= k >> 47
        h ^= (k * _M) & _MASK
        h = (h * _M) & _MASK
    tail = data[blocks * 8:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    return h ^ (h >> 47)


def _vocab_dir() -> Path | None:
    """The package's vocab folder, found without importing the package (it would import spaCy)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        for vocab in sorted(Path(root).glob(f"{PACKAGE}-*/vocab")):
            if (vocab / "vectors").is_file() and (vocab / "key2row").is_file():
                return vocab
    return None


class WordVectors:
    """The vector table and the word → row map, read once per process (see `load`)."""

    def __init__(self, vocab: Path):
        self.source = vocab.parent.name  # e.g. ja_ginza-5.3.0: an index records what it was built with
        #: Every row as a unit vector, in float16 (12 MB, half the file; cosines need no more).
        self.units = _read_unit_vectors(vocab / "vectors")
        self.size = len(self.units)
        self._keys, self._rows = _read_key_map(vocab / "key2row")
        self.rows = lru_cache(maxsize=100_000)(self._rows_of)
        mean = sum(self.unit(np.arange(at, min(at + SLICE, self.size))).sum(axis=0) for at in range(0, self.size, SLICE))
        #: What every word shares (mostly frequency): taken out of every vector so that cosines
        #: compare what texts are about.
        self.common = (mean / np.linalg.norm(mean)).astype(np.float32)

    def row(self, word: str) -> int | None:
        key = murmurhash64a(word.encode("utf-8"))
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


# Rows of the vector table handled at once while reading it whole.
SLICE = 4096


def _read_unit_vectors(path: Path) -> np.ndarray:
    """The .npy table normalised row by row into float16, read a slice at a time, so that the
    float32 file never sits in memory whole."""
    with path.open("rb") as f:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = header(f)
        if len(shape) != 2 or shape[1] != WIDTH or fortran:
            raise ValueError(f"unexpected vector table {shape}")
        units = np.empty(shape, dtype=np.float16)
        for at in range(0, shape[0], SLICE):
            block = np.fromfile(f, dtype=dtype, count=min(SLICE, shape[0] - at) * WIDTH).reshape(-1, WIDTH)
            if len(block) != min(SLICE, shape[0] - at):
                raise ValueError("vector table cut short")
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            units[at:at + len(block)] = block / np.where(norms > 0, norms, 1.0)
    return units


def _read_key_map(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """spaCy's key2row (a msgpack map of word hash → row) as two sorted arrays, read as a stream:
    as a dict its 480,443 entries would take a hundred megabytes for a moment."""
    with path.open("rb") as f:
        unpacker = msgpack.Unpacker(f, read_size=1 << 20)
        n = unpacker.read_map_header()
        keys, rows = np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.int32)
        for i in range(n):
            keys[i] = unpacker.unpack()
            rows[i] = unpacker.unpack()
    order = np.argsort(keys)
    return keys[order], rows[order]


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


_loaded: list = []
_lock = threading.Lock()


def load() -> WordVectors | None:
    """The word vectors, or None when the package is not installed (then the search is lexical)."""
    with _lock:
        if not _loaded:
            vocab = _vocab_dir()
            vectors = None
            if vocab is None:
                log.warning("word vectors not found (pip install --no-deps ja-ginza): searching by words only")
            else:
                try:
                    vectors = WordVectors(vocab)
                except (OSError, ValueError, msgpack.UnpackException) as e:
                    log.warning("word vectors in %s unreadable (%s): searching by words only", vocab, e)
            _loaded.append(vectors)
        return _loaded[0]


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

"""Fetch the word vectors once, check them, and keep them in a format of our own (kb.vectors reads it).

The vectors are chiVe as shipped inside the `ja-ginza` wheel on PyPI. That package cannot live in our
environment (it requires spaCy and a SudachiPy older than ours, so `pip check` would fail and any
resolver would pull them in), and only two of its files are wanted. So it is treated as data: pip
downloads the one pinned wheel, without its dependencies, into a temporary folder; its sha256 must be
the one below; and its vocabulary is written into the vectors folder (`kb.vectors.folder()`) as

- `vectors.npy`: every row of the table as a unit vector, float16, in the table's order (frequency);
- `keys.npy` and `rows.npy`: a word's key (the first 8 bytes of its BLAKE2b digest, see
  `kb.vectors.word_key`), sorted, and its row, for every word of the package's string table that
  has a vector;
- `SOURCE`: what it was made from, so that an index records which table its bags of rows belong to.

spaCy keys its table by MurmurHash64A of the word, which is why it is implemented here: to read the
package's map once. Nothing at run time depends on spaCy's hash or on the package's layout.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import msgpack
import numpy as np

from kb import vectors as word_vectors

PIN = "ja-ginza==5.3.0"
WHEEL = "ja_ginza-5.3.0-py3-none-any.whl"
SHA256 = "ac6479a805c5c5c23c270554934c1c1f344039560ef3a7e4b15a4275bea3c685"
VOCAB = "ja_ginza/ja_ginza-5.3.0/vocab/"


class FetchFailed(Exception):
    """The vectors could not be downloaded or were not the pinned file; the message is Japanese."""


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


def fetch(folder: Path | None = None, wheel: Path | None = None) -> Path:
    """Make sure the vectors folder holds the pinned table; download it unless it is there already.

    `wheel` names an already downloaded file (it is checked all the same). The folder is written
    beside its final place and renamed into it, so a reader never sees half a table.
    """
    folder = Path(folder or word_vectors.folder())
    if word_vectors.source_of(folder) == word_vectors.SOURCE:
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            wheel = download(Path(tmp))
        check(Path(wheel))
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".vectors-", dir=folder.parent))
        try:
            convert(Path(wheel), staging)
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def download(into: Path) -> Path:
    """`pip download --no-deps` of the pinned wheel (pip's own cache spares a second download)."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--dest", str(into), PIN]
    done = subprocess.run(command, capture_output=True, text=True)
    path = into / WHEEL
    if done.returncode != 0 or not path.exists():
        reason = (done.stderr.strip().splitlines() or ["不明"])[-1]
        raise FetchFailed(f"単語ベクトル（{PIN}）をダウンロードできませんでした: {reason}")
    return path


def check(wheel: Path) -> None:
    digest = hashlib.sha256()
    with wheel.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != SHA256:
        raise FetchFailed(f"{wheel.name} のハッシュが固定値と違います（sha256 {digest.hexdigest()}）。"
                          "取得元を確認してください。")


def convert(wheel: Path, into: Path) -> None:
    """The package's `vocab/vectors` (.npy), `key2row` (msgpack: spaCy hash → row) and
    `strings.json` (the words) as our files."""
    with zipfile.ZipFile(wheel) as z:
        with z.open(VOCAB + "vectors") as f:
            units = _unit_vectors(f)
        with z.open(VOCAB + "key2row") as f:
            row_of = msgpack.unpack(f, strict_map_key=False)
        with z.open(VOCAB + "strings.json") as f:
            words = json.load(f)
    keys, rows = [], []
    for word in words:
        row = row_of.get(murmurhash64a(word.encode("utf-8")))
        if row is not None:
            keys.append(word_vectors.word_key(word))
            rows.append(row)
    keys_array = np.array(keys, dtype=np.uint64)
    order = np.argsort(keys_array, kind="stable")
    if len(np.unique(keys_array)) != len(keys_array):
        raise FetchFailed("単語のキーが重複しました")  # 64-bit keys over half a million words: never seen
    np.save(into / "vectors.npy", units)
    np.save(into / "keys.npy", keys_array[order])
    np.save(into / "rows.npy", np.array(rows, dtype=np.int32)[order])
    (into / "SOURCE").write_text(f"{word_vectors.SOURCE}\nsha256:{SHA256}\n", encoding="utf-8")
    os.chmod(into, 0o755)


# Rows of the vector table normalised at once.
SLICE = 4096


def _unit_vectors(f) -> np.ndarray:
    """The .npy table normalised row by row into float16, a slice at a time (the float32 table
    never sits in memory whole)."""
    version = np.lib.format.read_magic(f)
    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = header(f)
    if len(shape) != 2 or shape[1] != word_vectors.WIDTH or fortran:
        raise FetchFailed(f"単語ベクトルの表の形が想定と違います: {shape}")
    units = np.empty(shape, dtype=np.float16)
    for at in range(0, shape[0], SLICE):
        count = min(SLICE, shape[0] - at)
        raw = f.read(count * word_vectors.WIDTH * dtype.itemsize)
        block = np.frombuffer(raw, dtype=dtype).reshape(-1, word_vectors.WIDTH)
        if len(block) != count:
            raise FetchFailed("単語ベクトルの表が途中で切れています")
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        units[at:at + count] = block / np.where(norms > 0, norms, 1.0)
    return units

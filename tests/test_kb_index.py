"""Incremental index builds: unchanged files skipped, deleted files gone, broken files reported."""
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from kb.indexer import build_index
from kb.search import Searcher

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [ROOT / "kb" / "articles", ROOT / "release_notes"]


@pytest.fixture()
def articles(tmp_path):
    folder = tmp_path / "articles"
    shutil.copytree(ROOT / "kb" / "articles", folder)
    return folder


def dump(db: Path) -> list:
    """Everything that decides an answer, independent of row ids and file times."""
    conn = sqlite3.connect(db)
    docs = conn.execute(
        "SELECT slug, title, kind, audience, tags, questions, updated, event_date, source, d.body, terms, head_terms, "
        "head_bag, body_bag, v.head, v.body FROM documents d JOIN doc_vectors v ON v.id = d.id ORDER BY slug"
    ).fetchall()
    sections = conn.execute(
        "SELECT d.slug, s.ord, s.heading, s.body, f.title, f.questions, f.body, f.grams "
        "FROM sections s JOIN documents d ON d.id = s.doc_id JOIN fts f ON f.rowid = s.id ORDER BY d.slug, s.ord"
    ).fetchall()
    conn.close()
    return [docs, sections]


def test_shipped_knowledge_base_indexes_cleanly(tmp_path):
    report = build_index(SHIPPED, tmp_path / "kb.sqlite")
    assert report.broken == []
    assert report.indexed == len(list((ROOT / "kb" / "articles").glob("*.md"))) + 1


def test_incremental_rebuild(tmp_path, articles):
    db = tmp_path / "kb.sqlite"
    first = build_index([articles], db)
    n = first.indexed
    again = build_index([articles], db)
    assert (again.indexed, again.unchanged, again.removed) == (0, n, 0)

    # Touched but identical: not re-processed.
    path = articles / "member-count.md"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    touched = build_index([articles], db)
    assert (touched.indexed, touched.unchanged) == (0, n)

    # Edited: only that one.
    path.write_text(path.read_text(encoding="utf-8").replace("178,559人", "178,559人（テスト追記）"), encoding="utf-8")
    edited = build_index([articles], db)
    assert (edited.indexed, edited.unchanged) == (1, n - 1)
    s = Searcher(db)
    assert "テスト追記" in s.article("member-count").body

    # Deleted: leaves the index.
    (articles / "usage-survey.md").unlink()
    removed = build_index([articles], db)
    assert removed.removed == 1
    assert Searcher(db).article("usage-survey") is None
    assert all(r.slug != "usage-survey" for r in Searcher(db).search("アンケートへの回答", k=10))


def test_broken_file_is_reported_and_the_rest_indexed(tmp_path, articles):
    (articles / "broken.md").write_text("---\ntitle: [\n---\n本文", encoding="utf-8")
    (articles / "binary.md").write_bytes(b"\xff\xfe\x00garbage")
    db = tmp_path / "kb.sqlite"
    report = build_index([articles], db)
    assert sorted(Path(p).name for p, _ in report.broken) == ["binary.md", "broken.md"]
    assert report.indexed == len(list(articles.glob("*.md"))) - 2
    # Reported again until fixed, so the exit status keeps saying so.
    assert len(build_index([articles], db).broken) == 2
    (articles / "broken.md").write_text("---\ntitle: 直した記事\nupdated: 2026-02-01\n---\n\n## 本文\n\n直しました。", encoding="utf-8")
    (articles / "binary.md").unlink()
    fixed = build_index([articles], db)
    assert fixed.broken == [] and fixed.indexed == 1
    assert Searcher(db).article("broken").title == "直した記事"


def test_deleted_index_is_rebuilt_identical(tmp_path, articles):
    db = tmp_path / "kb.sqlite"
    build_index([articles], db)
    (articles / "usage-survey.md").unlink()
    build_index([articles], db)  # incremental history: a delete
    before = dump(db)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    build_index([articles], db)
    assert dump(db) == before


def test_duplicate_slug_across_sources_is_reported(tmp_path, articles):
    corpus = tmp_path / "extra.jsonl"
    corpus.write_text('{"id": "member-count", "question": "重複", "answer": "重複"}\n', encoding="utf-8")
    report = build_index([articles], tmp_path / "kb.sqlite", extra=[corpus])
    assert [r for _, r in report.broken] == [f"スラッグ「member-count」が {articles / 'member-count.md'} と重複しています"]


def test_extra_corpus_is_searched(tmp_path):
    corpus = tmp_path / "faq.jsonl"
    corpus.write_text(
        '{"id": "g1", "question": "粗大ごみの出し方を知りたい", "answer": "粗大ごみは申込制です。"}\n'
        '{"id": "g2", "question": "住民票の写しを取りたい", "answer": "市民課の窓口で交付します。"}\n',
        encoding="utf-8",
    )
    db = tmp_path / "c.sqlite"
    assert build_index([], db, extra=[corpus]).indexed == 2
    assert [r.slug for r in Searcher(db).search("住民票がほしい", k=1)] == ["g2"]


def test_a_build_in_worker_processes_writes_the_same_index(tmp_path, articles, monkeypatch):
    """Many changed files are analysed in worker processes (kb.indexer.PARALLEL_FROM); what they write
    is what one process writes, row for row, and broken files are reported alike."""
    import kb.indexer

    (articles / "broken.md").write_text("---\ntitle: 壊れた記事\n", encoding="utf-8")
    one = build_index([articles], tmp_path / "one.sqlite")
    monkeypatch.setattr(kb.indexer, "PARALLEL_FROM", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    many = build_index([articles], tmp_path / "many.sqlite")
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime > children  # the workers did the analysing
    assert (many.indexed, many.unchanged, sorted(many.broken)) == (one.indexed, one.unchanged, sorted(one.broken))
    assert one.indexed >= 10 and len(one.broken) == 1
    assert dump(tmp_path / "many.sqlite") == dump(tmp_path / "one.sqlite")

"""Build the knowledge-base index: a disposable SQLite file with an FTS5 table.

The index can always be thrown away: `build_index` recreates it from the Markdown
articles (and any JSON-lines corpora) and, when it already exists, re-processes only
files whose size, modification time and content hash changed. Deleted files leave the
index. A broken file is reported and skipped; the rest is indexed.

Text is segmented by `kb.analysis` (into the rows of `kb.index_rows`) before FTS5 sees it, so the
FTS5 tokenizer is plain `unicode61` splitting on the spaces we put between terms.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from kb import vectors as word_vectors
from kb.analysis import Analyzer
from kb.candidates import write_common_top
from kb.index_rows import analyse_document
from kb.loader import BrokenArticle, Document, iter_corpus, parse_article
from kb.passages import CUES_VERSION
from storage.sqlite import connect

#: Bump when the tables below change: an older index is then rebuilt from scratch.
SCHEMA_VERSION = "14"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE files (
    path TEXT PRIMARY KEY,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    file TEXT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    audience TEXT NOT NULL,
    tags TEXT NOT NULL,
    questions TEXT NOT NULL,
    updated TEXT,
    event_date TEXT,
    source TEXT,
    body TEXT NOT NULL,
    terms TEXT NOT NULL,
    head_terms TEXT NOT NULL,
    title_terms TEXT NOT NULL,
    hedged_terms TEXT NOT NULL,
    match_texts TEXT NOT NULL,
    release INTEGER NOT NULL,  -- 1 for a release note (kb.loader.RELEASE_NOTES_FOLDER)
    head_bag BLOB NOT NULL,  -- the vector rows of title, questions and tags (kb.vectors.Bag)
    body_bag BLOB NOT NULL   -- ... and of the body
);
CREATE INDEX documents_file ON documents(file);
CREATE INDEX documents_release ON documents(release, updated);
CREATE TABLE sections (
    id INTEGER PRIMARY KEY,
    doc_id INTEGER NOT NULL,
    ord INTEGER NOT NULL,
    heading TEXT,
    body TEXT NOT NULL,
    terms TEXT NOT NULL,
    heading_terms TEXT NOT NULL,
    kinds TEXT NOT NULL,
    -- What the section says (heading, stated sentences, its example questions): the words a
    -- question may be answered with from it (kb.confidence), and their vector rows (kb.vectors).
    said_terms TEXT NOT NULL,
    said_rows BLOB NOT NULL,
    questions TEXT NOT NULL,  -- its example questions as [folded surface, reading] pairs
    UNIQUE (doc_id, ord)
);
CREATE VIRTUAL TABLE fts USING fts5(
    title, questions, body, grams, tokenize = 'unicode61 remove_diacritics 0'
);
CREATE VIRTUAL TABLE fts_vocab USING fts5vocab(fts, 'row');
CREATE TABLE term_df (term TEXT PRIMARY KEY, doc INTEGER NOT NULL) WITHOUT ROWID;
-- Per word in half the rows or more, its best rows by BM25 (kb.candidates.write_common_top).
CREATE TABLE common_top (term TEXT NOT NULL, id INTEGER NOT NULL, score REAL NOT NULL,
                         PRIMARY KEY (term, id)) WITHOUT ROWID;
-- Each article's meaning as vectors (float16), and what a question needs to be compared with
-- them (the weight of each vector row): derived from the documents' bags after every change.
CREATE TABLE doc_vectors (id INTEGER PRIMARY KEY, head BLOB NOT NULL, body BLOB NOT NULL);
CREATE TABLE vector_space (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


@dataclass
class BuildReport:
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    broken: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken


def source_files(sources) -> list[Path]:
    """Every indexable file under the given folders or files, in a stable order."""
    found: list[Path] = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            found.extend(sorted(p for p in src.glob("*.md") if p.is_file()))
        elif src.exists():
            found.append(src)
        else:
            raise FileNotFoundError(src)
    return found


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _connect(db_path: Path, version: str) -> sqlite3.Connection:
    """Open the index, starting it afresh when it was built by another analyzer or schema.

    The index is disposable, so a version change simply drops everything: every stored
    term would be stale anyway.
    """
    conn = connect(db_path)
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
    row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone() if has_meta else None
    if row is None or row[0] != version:
        conn.execute("BEGIN")
        for table in ("vector_space", "doc_vectors", "common_top", "term_df", "fts_vocab", "fts", "sections",
                      "documents", "files", "meta"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO meta (key, value) VALUES ('version', :version)", {"version": version})
        conn.execute("COMMIT")
    return conn


def _delete_file(conn: sqlite3.Connection, path: str) -> list[str]:
    """Remove a source file and everything indexed from it; return the slugs it had."""
    rows = conn.execute("SELECT id, slug FROM documents WHERE file = :file", {"file": path}).fetchall()
    for doc_id, _slug in rows:
        conn.execute("DELETE FROM fts WHERE rowid = :id", {"id": doc_id})
        conn.execute("DELETE FROM sections WHERE doc_id = :id", {"id": doc_id})
        conn.execute("DELETE FROM doc_vectors WHERE id = :id", {"id": doc_id})
    conn.execute("DELETE FROM documents WHERE file = :file", {"file": path})
    conn.execute("DELETE FROM files WHERE path = :file", {"file": path})
    return [slug for _id, slug in rows]


INSERT_DOCUMENT = """
INSERT INTO documents (slug, file, title, kind, audience, tags, questions, updated, event_date, source, body,
                       terms, head_terms, title_terms, hedged_terms, match_texts, release, head_bag, body_bag)
VALUES (:slug, :file, :title, :kind, :audience, :tags, :questions, :updated, :event_date, :source, :body,
        :terms, :head_terms, :title_terms, :hedged_terms, :match_texts, :release, :head_bag, :body_bag)
"""


def _write_document(conn: sqlite3.Connection, file: str, analysed: tuple[dict, list[dict], dict]) -> None:
    """Store one analysed document: its row, its sections and its FTS entry (terms joined by spaces)."""
    document, section_rows, fts = analysed
    doc_id = conn.execute(INSERT_DOCUMENT, {**document, "file": file}).lastrowid
    conn.executemany(
        "INSERT INTO sections (doc_id, ord, heading, body, terms, heading_terms, kinds, said_terms, said_rows, questions)"
        " VALUES (:doc_id, :ord, :heading, :body, :terms, :heading_terms, :kinds, :said_terms, :said_rows, :questions)",
        [{**row, "doc_id": doc_id} for row in section_rows],
    )
    conn.execute(
        "INSERT INTO fts (rowid, title, questions, body, grams) VALUES (:id, :title, :questions, :body, :grams)",
        {**fts, "id": doc_id},
    )


def _load(path: Path, raw: bytes) -> tuple[list[Document], list[BrokenArticle]]:
    if path.suffix == ".jsonl":
        docs, broken = [], []
        for item in iter_corpus(path):
            (broken if isinstance(item, BrokenArticle) else docs).append(item)
        return docs, broken
    try:
        return [parse_article(path, raw)], []
    except BrokenArticle as e:
        return [], [e]


#: From this many changed files on, a build analyses in worker processes, one per CPU: segmenting is
#: most of a build's time, and each document is analysed on its own. Below it, starting the workers
#: (each loads the Sudachi dictionary) costs more than it saves.
PARALLEL_FROM = 2000
_worker_analyzer: Analyzer | None = None


def _analyse_in_worker(docs: list[Document]) -> list:
    global _worker_analyzer
    if _worker_analyzer is None:
        _worker_analyzer = Analyzer()
    vectors = word_vectors.load()
    return [analyse_document(_worker_analyzer, doc, vectors) for doc in docs]


def _analyse_all(pairs: Iterator[tuple[str, Document]], analyzer: Analyzer | None,
                 vectors: word_vectors.WordVectors | None, batch: int = 128):
    """Each (file, document) with its analysis, in order. With the default analyzer (None here) the
    work goes to worker processes started fresh ("spawn": nothing of this process, its threads or its
    connections, is carried into them, so each loads the word vectors itself); the results are the
    same, only sooner. Batches are handed out a few at a time and yielded as they come back, so
    reading, analysing and writing overlap and memory stays flat."""
    workers = min(os.cpu_count() or 1, 4)
    if analyzer is not None or workers < 2:
        analyzer = analyzer or Analyzer()
        for key, doc in pairs:
            yield key, analyse_document(analyzer, doc, vectors)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    def submit(pool):
        chunk = list(islice(pairs, batch))
        return ([key for key, _ in chunk], pool.submit(_analyse_in_worker, [doc for _, doc in chunk])) if chunk else None

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        flight = deque(filter(None, (submit(pool) for _ in range(2 * workers))))
        while flight:
            keys, future = flight.popleft()
            done = future.result()
            more = submit(pool)
            if more:
                flight.append(more)
            yield from zip(keys, done)


def _changed_documents(conn, todo, known, report: BuildReport, finished_files: list) -> Iterator[tuple[str, Document]]:
    """The documents of the files that changed, in order, each file's old rows deleted first; broken
    files and duplicate slugs go to `report`, and the files read cleanly to `finished_files`.
    A generator, so that files are read only as fast as their documents are analysed."""
    slugs = {r[0]: r[1] for r in conn.execute("SELECT slug, file FROM documents")}
    for path, st in todo:
        key = str(path)
        raw = path.read_bytes()
        digest = _sha256(raw)
        old = known.get(key)
        if old and old[2] == digest:
            # Touched but not changed: remember the new mtime, skip the work.
            conn.execute("UPDATE files SET mtime_ns = :m, size = :s WHERE path = :p",
                         {"m": st.st_mtime_ns, "s": st.st_size, "p": key})
            report.unchanged += 1
            continue
        for slug in _delete_file(conn, key):
            del slugs[slug]
        docs, broken = _load(path, raw)
        report.broken.extend((e.path, e.reason) for e in broken)
        for doc in docs:
            if doc.slug in slugs:
                report.broken.append((key, f"スラッグ「{doc.slug}」が {slugs[doc.slug]} と重複しています"))
                continue
            slugs[doc.slug] = key
            yield key, doc
        if not broken:  # a file with errors is read again next time, and reported again
            finished_files.append({"p": key, "m": st.st_mtime_ns, "s": st.st_size, "h": digest})


def build_index(sources, db_path, extra=(), analyzer: Analyzer | None = None, progress: bool | None = None) -> BuildReport:
    """Bring the index at `db_path` up to date with `sources` (folders of .md) and `extra` (.jsonl files).

    Returns what was indexed, left unchanged, removed and skipped as broken. A broken file is
    removed from the index too, so the index never answers from a version that no longer exists.
    """
    custom = analyzer is not None  # a caller's own analyzer cannot be recreated in worker processes
    analyzer = analyzer or Analyzer()
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    files = source_files(list(sources) + list(extra))
    report = BuildReport()
    vectors = word_vectors.load()
    # Bags of vector rows are only comparable within one vector table: another (or none) rebuilds.
    source = vectors.source if vectors else "-"
    conn = _connect(db_path, f"{SCHEMA_VERSION}/{analyzer.version}/{CUES_VERSION}/{source}")
    try:
        known = {
            r[0]: (r[1], r[2], r[3]) for r in conn.execute("SELECT path, mtime_ns, size, sha256 FROM files")
        }
        seen = set()
        todo = []
        for path in files:
            key = str(path)
            seen.add(key)
            st = path.stat()
            old = known.get(key)
            if old and old[0] == st.st_mtime_ns and old[1] == st.st_size:
                report.unchanged += 1
            else:
                todo.append((path, st))
        show = sys.stderr.isatty() if progress is None else progress
        conn.execute("BEGIN")
        for key in sorted(set(known) - seen):
            report.removed += len(_delete_file(conn, key))
        finished_files: list[dict] = []
        changed = _changed_documents(conn, todo, known, report, finished_files)
        parallel = not custom and len(todo) >= PARALLEL_FROM
        analysed = _analyse_all(changed, None if parallel else analyzer, vectors)
        for key, result in tqdm(analysed, desc="索引作成", unit="件", disable=not show):
            _write_document(conn, key, result)
            report.indexed += 1
        conn.executemany("INSERT INTO files (path, mtime_ns, size, sha256) VALUES (:p, :m, :s, :h)",
                         finished_files)
        if report.indexed or report.removed:
            # Row counts per term, kept as a table: fts5vocab walks a term's whole posting
            # list on every lookup, which costs milliseconds per common term at query time.
            conn.execute("DELETE FROM term_df")
            conn.execute("INSERT INTO term_df (term, doc) SELECT term, doc FROM fts_vocab")
            write_common_top(conn)
            if vectors is not None:
                _write_vectors(conn, vectors)
        conn.execute("COMMIT")
        if report.indexed or report.removed:
            conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return report


# Articles whose vectors are worked out and written together.
VECTOR_BATCH = 1024


def _write_vectors(conn: sqlite3.Connection, vectors: word_vectors.WordVectors) -> None:
    """Every article's vectors again, from the stored bags.

    A row's weight depends on all the articles (its idf), so one changed article changes every
    vector a little; recomputing them all takes a second or two at 10,000 articles, and only
    when something changed.
    """
    Bag = word_vectors.Bag
    stored = [(doc_id, Bag.from_bytes(head), Bag.from_bytes(body))
              for doc_id, head, body in conn.execute("SELECT id, head_bag, body_bag FROM documents ORDER BY id")]
    weights = word_vectors.weights_of([np.union1d(h.rows, b.rows) for _, h, b in stored], vectors.size)
    conn.execute("DELETE FROM doc_vectors")
    for at in range(0, len(stored), VECTOR_BATCH):
        batch = stored[at:at + VECTOR_BATCH]
        head = vectors.meanings([h for _, h, _ in batch], weights).astype(np.float16)
        body = vectors.meanings([b for _, _, b in batch], weights).astype(np.float16)
        conn.executemany("INSERT INTO doc_vectors (id, head, body) VALUES (:id, :head, :body)",
                         ({"id": doc_id, "head": head[i].tobytes(), "body": body[i].tobytes()}
                          for i, (doc_id, _, _) in enumerate(batch)))
    conn.execute("INSERT OR REPLACE INTO vector_space (key, value) VALUES ('weights', :value)",
                 {"value": weights.tobytes()})

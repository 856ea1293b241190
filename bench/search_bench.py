"""Benchmark the knowledge-base index and search at help-desk scale.

Why this exists
---------------
The shipped knowledge base is about a dozen articles, so every path in `kb/` is fast
with it and nothing tells us when that stops being true. The targets are set at
10,000 articles (outside FAQ collections and years of notices add up):

* search p99 under 10 ms — one search runs for every chat message and for
  suggest-as-you-type, so it must stay invisible next to the network round trip;
* an incremental rebuild with nothing changed under 1 s — `helpdesk index` is meant
  to be run freely (on every deploy, on a timer), so the nothing-to-do path must
  cost next to nothing;
* peak memory under 300 MB — the same process holds the Sudachi dictionary (each
  `Analyzer` costs about 80 MB) and serves the web app.

What it does
------------
1. Writes N synthetic Japanese articles (Markdown + YAML front matter, the format
   of `kb/articles/`) to a temporary folder. Text comes from a small vocabulary of
   medical-association administration (会費, 異動届, 承認, パスワード …) mixed with
   Faker('ja_JP') names, companies, cities and lorem text, seeded, so two runs
   index byte-identical files. Domain words repeat across thousands of articles as
   they would in a real knowledge base; Faker words make every article distinct.
2. Times a full build (`build_s`) and then a rebuild with nothing changed
   (`rebuild_unchanged_s`), both through `build_index` exactly as `helpdesk index`
   calls it (it makes its own Analyzer, so dictionary loading is included). Before it,
   in the same run, a baseline (`baseline_build_s`): Sudachi segmenting the same files
   into a bare FTS5 table, the floor any build of ours stands on. Each comes with its
   CPU time (`*_cpu_s`, this process plus any it started), which a loaded machine inflates
   far less than wall time.
3. Runs `--queries` queries after a warm-up, one `Searcher.search(q, k=5)` each,
   timed with `time.perf_counter`. The mix is what the chat actually receives:
   an example question verbatim, a paraphrase with words dropped, a word typed in
   hiragana, a bare two-character word, a half-width katakana variant, an
   out-of-domain question and hostile FTS5 syntax (`NEAR("a" OR *` …).
4. Runs the same queries against a naive baseline built in the same run: one
   SQLite FTS5 table with `tokenize='trigram'` over the raw title + questions + body,
   each query quoted as one FTS5 string, `ORDER BY bm25 LIMIT 5`. It says what the
   Sudachi analysis and the re-rank cost over "just let SQLite do it". Queries under
   three characters match nothing with the trigram tokenizer; that is its real
   behaviour and is kept.
5. Reports the process's peak RSS (`ru_maxrss`), which covers generation, both
   builds, the searcher and the baseline.

Usage:  .venv/bin/python bench/search_bench.py [--docs 10000] [--queries 1000] [--json]

With `--json` stdout is exactly one JSON object (`build_s`, `rebuild_unchanged_s`,
`query_p50_ms`, `query_p99_ms`, `naive_query_p50_ms`, `naive_query_p99_ms`,
`peak_rss_mb`, `build_cpu_s`, `baseline_build_s`, `baseline_build_cpu_s`,
`rebuild_unchanged_cpu_s`, `query_cpu_p50_ms`, `query_cpu_p99_ms`, `load_average`,
`naive_query_cpu_p50_ms`, `naive_query_cpu_p99_ms`, `query_p99_over_naive`, `query_cpu_p99_over_naive`
(issue 21's target: within 2.5×), `peak_rss_by_phase_mb`, `rss_at_end_mb` (anon / file), plus `docs`, `queries`, `targets`); otherwise a table, followed by
per-query-kind latencies and a sanity check that the search found what it should
(a fast search that finds nothing would be a useless benchmark). The table also shows
each query's thread CPU time: wall-clock latency is what the targets are about, but on
a shared machine it includes time spent waiting for other processes, and CPU time says
what the query itself cost. The exit status is 1 when a target is missed. `--profile DIR`
writes cProfile stats of the build, the rebuild and the queries to DIR (timings are
then inflated by the profiler; do not compare them with unprofiled runs).
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import random
import re
import resource
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import jaconv
from faker import Faker

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from kb.indexer import build_index  # noqa: E402
from kb.search import CONFIDENCE_THRESHOLD, Searcher  # noqa: E402

TARGET_QUERY_P99_MS = 10.0
TARGET_REBUILD_UNCHANGED_S = 1.0
TARGET_PEAK_RSS_MB = 300.0
TARGET_BUILD_S = 15.0
# Sudachi refuses more than 49,149 bytes per call; the baseline segments a file in pieces below that.
SEGMENT_CHARS = 10_000
WARMUP_QUERIES = 50

# -- vocabulary ----------------------------------------------------------------------------
# (spelling, hiragana reading). Readings are given by hand so the kana queries do not depend
# on the analyser under test.
NOUNS = [
    ("会員", "かいいん"), ("会員数", "かいいんすう"), ("入会届", "にゅうかいとどけ"),
    ("異動届", "いどうとどけ"), ("退会届", "たいかいとどけ"), ("会費", "かいひ"),
    ("年会費", "ねんかいひ"), ("郡市区等医師会", "ぐんしくとういしかい"),
    ("都道府県医師会", "とどうふけんいしかい"), ("日本医師会", "にほんいしかい"),
    ("医籍登録番号", "いせきとうろくばんごう"), ("医療機関", "いりょうきかん"),
    ("勤務先", "きんむさき"), ("送付先", "そうふさき"), ("承認", "しょうにん"),
    ("差し戻し", "さしもどし"), ("申請", "しんせい"), ("届出", "とどけで"),
    ("請求書", "せいきゅうしょ"), ("領収書", "りょうしゅうしょ"), ("口座振替", "こうざふりかえ"),
    ("研修会", "けんしゅうかい"), ("生涯教育", "しょうがいきょういく"), ("単位", "たんい"),
    ("認定証", "にんていしょう"), ("会員証", "かいいんしょう"), ("住所", "じゅうしょ"),
    ("氏名", "しめい"), ("旧姓", "きゅうせい"), ("生年月日", "せいねんがっぴ"),
    ("医師免許証", "いしめんきょしょう"), ("賠償責任保険", "ばいしょうせきにんほけん"),
    ("年金", "ねんきん"), ("理事会", "りじかい"), ("総会", "そうかい"), ("議事録", "ぎじろく"),
    ("委員会", "いいんかい"), ("運営事務局", "うんえいじむきょく"), ("担当者", "たんとうしゃ"),
    ("権限", "けんげん"), ("画面", "がめん"), ("帳票", "ちょうひょう"), ("名簿", "めいぼ"),
    ("手続き", "てつづき"), ("期限", "きげん"), ("通知", "つうち"), ("様式", "ようしき"),
    ("証明書", "しょうめいしょ"), ("診療科", "しんりょうか"), ("専門医", "せんもんい"),
    ("勤務医", "きんむい"), ("開業医", "かいぎょうい"), ("研修医", "けんしゅうい"),
    ("休会", "きゅうかい"), ("再入会", "さいにゅうかい"), ("会員区分", "かいいんくぶん"),
    ("医師会雑誌", "いしかいざっし"), ("電子署名", "でんしょめい"), ("押印", "おういん"),
    ("都道府県", "とどうふけん"), ("保険証", "ほけんしょう"), ("減免", "げんめん"),
]
KATAKANA = [
    "システム", "パスワード", "ログイン", "アカウント", "メールアドレス", "マスター", "データ",
    "ファイル", "アップロード", "ダウンロード", "エラー", "ブラウザ", "スマートフォン",
    "アンケート", "マニュアル", "メニュー", "ボタン", "チェックボックス", "プルダウン",
    "ワンタイムパスワード", "タブレット", "プリンター", "テンプレート", "ステータス",
]
# verb stem (サ変名詞 or 連用形 phrase) used as 「Xを{verb}したい」「Xの{verb}方法」
VERBS = [
    "変更", "登録", "確認", "削除", "修正", "提出", "承認", "印刷", "出力", "取り消し", "再発行",
    "申請", "送付", "入力", "検索", "更新", "閲覧", "集計", "照会", "差し替え",
]
STATES = ["承認待ち", "差し戻し", "保留", "未提出", "エラー", "処理中", "未承認", "期限切れ"]
HEADINGS = [
    "概要", "手順", "注意事項", "よくあるお問い合わせ", "対象となる会員", "提出期限", "問い合わせ先",
    "画面の操作", "入力のポイント", "よくある誤り", "関連する手続き", "補足",
]
OUT_OF_DOMAIN = [
    "明日の{city}の天気は晴れますか", "{city}でおすすめのラーメン屋を教えて", "{company}の株価はいくらですか",
    "iPhoneの機種変更のやり方を知りたい", "カレーの美味しい作り方", "{name}さんの誕生日はいつ？",
    "来週の競馬の予想をお願いします", "{prefecture}の観光名所はどこですか", "電車の遅延証明書はどこでもらえる？",
    "新しい掃除機を買いたいのですがおすすめは", "英語の勉強法を教えて", "{city}行きの高速バスの時刻表",
]
HOSTILE = [
    'NEAR("a" OR *', '"', '""""', "*", "AND", "OR NOT", "title:会費", "^会員", "会員 NEAR/3 会費",
    "'; DROP TABLE documents; --", "(((((", "NEAR(", "-", "会費*", "{title questions}: 会員",
    "\x00会費", "🙂🙂🙂", "a" * 5000, "会費の" * 1500, "\u202e会員\u202d", "\ud800会費",
]

QUESTION_TEMPLATES = [
    "{a}の{b}を{v}するにはどうすればよいですか",
    "{a}を{v}したいのですが、どこから操作しますか",
    "{person}さんの{a}が{state}になっているのはなぜですか",
    "{city}医師会から{a}の{v}を依頼されました。手順を教えてください",
    "{company}に勤務している会員の{a}はどう{v}しますか",
    "{a}の{v}期限はいつまでですか",
    "{kat}で{a}が表示されません",
    "{kat}の{a}を{v}できません",
    "{a}と{b}の違いは何ですか",
    "{kat}から{a}を{v}する方法を教えてください",
    "{prefecture}の{a}は{v}できますか",
]
TITLE_TEMPLATES = [
    "{a}の{v}方法", "{a}を{v}する手順（{city}医師会の場合）", "{kat}での{a}の{v}について",
    "{a}が{state}のときの対応", "{a}・{b}の{v}", "{company}勤務の会員の{a}{v}",
]
NOTICE_TEMPLATES = ["【お知らせ】{a}の{v}受付について（{date}）", "{a}{v}の締切延長のお知らせ（{prefecture}）"]
BODY_TEMPLATES = [
    "{a}を{v}する場合は、{kat}の{menu}から操作してください。",
    "{city}医師会では、{a}の{v}を{b}とあわせて受け付けています。",
    "{state}の{a}は、{b}の担当者が内容を確認したあとで{v}されます。",
    "{person}先生のように{company}に勤務している場合、{a}は勤務先の情報で{v}します。",
    "{a}の{v}に必要な{b}は、{kat}からダウンロードできます。",
    "ご不明な点は運営事務局（フリーダイヤル）までお問い合わせください。",
]
# Splits a question after a particle, to drop whole phrases for a paraphrase.
PHRASE_RE = re.compile(r"(?<=[のをにはがでとへ、])")


@dataclass
class Meta:
    """What the query generator needs to remember about one article (kept small on purpose)."""
    slug: str
    title: str
    questions: list[str]
    nouns: list[tuple[str, str]]


@dataclass
class Query:
    kind: str
    text: str
    expect: str | None = None  # slug that should be in the top 5, when one clearly should


@dataclass
class Timings:
    ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # thread CPU time: what the query cost, whatever the load
    kinds: list[str] = field(default_factory=list)
    hits: dict = field(default_factory=dict)  # kind -> [expected found, expected total]
    answered: dict = field(default_factory=dict)  # kind -> queries with any result
    confident: dict = field(default_factory=dict)  # kind -> queries with top confidence >= threshold
    errors: list[str] = field(default_factory=list)


# -- corpus ---------------------------------------------------------------------------------

class Corpus:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.fake = Faker("ja_JP")
        self.fake.seed_instance(seed)

    def _slots(self, nouns):
        rng, fake = self.rng, self.fake
        a, b = nouns[0][0], nouns[1][0]
        return {
            "a": a, "b": b, "v": rng.choice(VERBS), "state": rng.choice(STATES), "kat": rng.choice(KATAKANA),
            "menu": rng.choice(["メニュー", "トップ画面", "会員一覧", "設定画面"]),
            "person": fake.last_name(), "city": fake.city(), "company": fake.company(),
            "prefecture": fake.prefecture(),
        }

    def _paragraph(self, nouns) -> str:
        target = self.rng.randint(150, 400)
        text = ""
        while len(text) < target:
            if self.rng.random() < 0.55:
                picked = self.rng.sample(nouns, 2)
                text += self.rng.choice(BODY_TEMPLATES).format(**self._slots(picked))
            else:
                text += self.fake.text(max_nb_chars=120).replace("\n", "")
        if len(text) > 400:
            cut = text.rfind("。", 150, 400)
            text = text[: cut + 1] if cut >= 0 else text[:400]
        return text

    def article(self, i: int) -> tuple[str, str, Meta]:
        rng, fake = self.rng, self.fake
        nouns = rng.sample(NOUNS, 5)
        kind = rng.choices(["faq", "guide", "notice"], weights=[6, 3, 1])[0]
        updated = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(1200))
        slots = self._slots(nouns)
        template = rng.choice(NOTICE_TEMPLATES if kind == "notice" else TITLE_TEMPLATES)
        title = template.format(**slots, date=f"{updated.year}年{updated.month}月")
        questions = []
        for _ in range(rng.randint(3, 6)):
            picked = rng.sample(nouns, 2)
            questions.append(rng.choice(QUESTION_TEMPLATES).format(**self._slots(picked)))
        tags = [n for n, _ in nouns[: rng.randint(2, 4)]]
        headings = rng.sample(HEADINGS, rng.randint(3, 5))
        sections = [f"## {h}\n\n{self._paragraph(nouns)}" for h in headings]
        lead = fake.text(max_nb_chars=100).replace("\n", "")
        slug = f"art-{i:05d}"
        q = lambda s: json.dumps(s, ensure_ascii=False)  # noqa: E731 — a JSON string is a YAML scalar
        front = "\n".join([
            "---",
            f"title: {q(title)}",
            f"kind: {kind}",
            f"audience: {rng.choice(['staff', 'member', 'all'])}",
            f"tags: [{', '.join(q(t) for t in tags)}]",
            "questions:",
            *[f"  - {q(x)}" for x in questions],
            f"updated: {updated.isoformat()}",
            f"source: {q('MAMIS LETTER 第' + str(rng.randint(1, 30)) + '号')}",
            "---",
        ])
        text = front + "\n\n" + lead + "\n\n" + "\n\n".join(sections) + "\n"
        return slug, text, Meta(slug, title, questions, nouns)


def write_corpus(folder: Path, n: int, seed: int, naive: sqlite3.Connection) -> list[Meta]:
    """Write n articles and feed the raw text to the naive baseline as we go (nothing big kept)."""
    corpus = Corpus(seed)
    metas = []
    for i in range(1, n + 1):
        slug, text, meta = corpus.article(i)
        (folder / f"{slug}.md").write_text(text, encoding="utf-8")
        body = text.split("\n---\n", 1)[1]
        naive.execute(
            "INSERT INTO naive (rowid, slug, title, questions, body) VALUES (?, ?, ?, ?, ?)",
            (i, slug, meta.title, "\n".join(meta.questions), body),
        )
        metas.append(meta)
    return metas


# -- queries --------------------------------------------------------------------------------

KINDS = ["verbatim", "paraphrase", "kana", "two_char", "halfwidth", "out_of_domain", "hostile"]


def make_queries(metas: list[Meta], n: int, seed: int) -> list[Query]:
    rng = random.Random(seed)
    fake = Faker("ja_JP")
    fake.seed_instance(seed)
    two_char = sorted({w for w, _ in NOUNS if len(w) == 2})
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        meta = rng.choice(metas)
        question = rng.choice(meta.questions)
        if kind == "verbatim":
            out.append(Query(kind, question, meta.slug))
        elif kind == "paraphrase":
            phrases = [p for p in PHRASE_RE.split(question) if p]
            if len(phrases) > 2:
                drop = set(rng.sample(range(len(phrases) - 1), k=min(2, len(phrases) - 2)))
                phrases = [p for j, p in enumerate(phrases) if j not in drop]
            text = "".join(phrases)
            text = re.sub(r"(はいつまでですか|ですか|を教えてください)$", "", text) or question
            out.append(Query(kind, text, meta.slug))
        elif kind == "kana":
            present = [(w, r) for w, r in meta.nouns if w in question] or meta.nouns
            word, reading = max(present, key=lambda p: len(p[0]))
            text = question.replace(word, reading) if word in question else f"{reading}を{rng.choice(VERBS)}したい"
            out.append(Query(kind, text, meta.slug if word in question else None))
        elif kind == "two_char":
            words = [w for w, _ in meta.nouns if len(w) == 2] or two_char
            out.append(Query(kind, rng.choice(words)))
        elif kind == "halfwidth":
            # The question with the most katakana, folded to half-width (ﾊﾟｽﾜｰﾄﾞ), digits and ASCII too.
            best = max(meta.questions + [meta.title], key=lambda s: sum(0x30A0 <= ord(c) <= 0x30FF for c in s))
            out.append(Query(kind, jaconv.z2h(best, kana=True, ascii=True, digit=True), meta.slug))
        elif kind == "out_of_domain":
            template = rng.choice(OUT_OF_DOMAIN)
            out.append(Query(kind, template.format(
                city=fake.city(), company=fake.company(), name=fake.name(), prefecture=fake.prefecture())))
        else:
            out.append(Query(kind, HOSTILE[(i // len(KINDS)) % len(HOSTILE)]))
    return out


# -- measuring ------------------------------------------------------------------------------

def baseline_build(folder: Path, db: Path) -> None:
    """What any Sudachi-based index must pay: segment every file's text and put the words in a bare FTS5 table.

    Same files as the real build, one transaction, no analysis beyond the segmenter (no
    folding, no sections, no extra tables); the dictionary is loaded here too, as the real
    build loads its own.
    """
    from sudachipy import Dictionary, SplitMode

    tokenizer = Dictionary(dict="core").tokenizer(mode=SplitMode.C)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE VIRTUAL TABLE bare USING fts5(body)")
    conn.execute("BEGIN")
    for path in sorted(folder.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        words = [m.surface() for at in range(0, len(text), SEGMENT_CHARS)
                 for m in tokenizer.tokenize(text[at:at + SEGMENT_CHARS])]
        conn.execute("INSERT INTO bare (body) VALUES (?)", (" ".join(words),))
    conn.execute("COMMIT")
    conn.close()


def cpu_s() -> float:
    """CPU seconds of this process and of its finished children (none today; a build that
    spread its work over processes would still be measured whole)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(fn, *args):
    """(result, wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), cpu_s()
    result = fn(*args)
    return result, time.perf_counter() - wall, cpu_s() - cpu


def rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_kinds_mb() -> dict[str, float]:
    """Resident memory now, by kind (Linux): `anon` is the process's own; `file` is mapped files, mostly
    Sudachi's system.dic (about 200 MB, memory-mapped: shared by every process and dropped under
    memory pressure), which `ru_maxrss` counts as well."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    found = dict(re.findall(r"^Rss(Anon|File):\s+(\d+) kB", status, re.M))
    return {kind.lower(): round(int(kb) / 1024, 1) for kind, kb in found.items()}


def profiled(profile_dir: Path | None, name: str, fn, *args):
    if profile_dir is None:
        return fn(*args)
    # Process CPU time, not wall time: on a shared machine the wall clock mostly measures waiting.
    prof = cProfile.Profile(time.process_time)
    try:
        return prof.runcall(fn, *args)
    finally:
        prof.dump_stats(profile_dir / f"{name}.prof")


def run_timed(search, queries: list[Query], warmup: list[Query]) -> Timings:
    """Time `search(text) -> [(slug, confidence or None)]` over the queries, after a warm-up.

    One loop for both systems, so the knowledge-base search and the naive baseline are
    measured exactly alike; an exception is recorded, not raised (the knowledge-base
    search promises never to raise, and this is where a broken promise shows).
    """
    for q in warmup:
        try:
            search(q.text)
        except Exception:
            pass
    t = Timings()
    clock, cpu = time.perf_counter, time.thread_time
    for q in queries:
        cpu_start = cpu()
        start = clock()
        try:
            results = search(q.text)
        except Exception as e:
            elapsed = clock() - start
            results = []
            t.errors.append(f"{q.kind}: {q.text[:30]!r} → {type(e).__name__}: {e}")
        else:
            elapsed = clock() - start
        t.ms.append(elapsed * 1000)
        t.cpu_ms.append((cpu() - cpu_start) * 1000)
        t.kinds.append(q.kind)
        if q.expect:
            h = t.hits.setdefault(q.kind, [0, 0])
            h[0] += any(slug == q.expect for slug, _ in results)
            h[1] += 1
        t.answered[q.kind] = t.answered.get(q.kind, 0) + bool(results)
        confidence = results[0][1] if results else None
        t.confident[q.kind] = t.confident.get(q.kind, 0) + bool(
            confidence is not None and confidence >= CONFIDENCE_THRESHOLD)
    return t


def run_kb(searcher: Searcher, queries: list[Query], warmup: list[Query]) -> Timings:
    return run_timed(lambda text: [(r.slug, r.confidence) for r in searcher.search(text, k=5)], queries, warmup)


NAIVE_SQL = "SELECT slug, title FROM naive WHERE naive MATCH ? ORDER BY bm25(naive) LIMIT 5"


def run_naive(conn: sqlite3.Connection, queries: list[Query], warmup: list[Query]) -> Timings:
    def search(text):
        rows = conn.execute(NAIVE_SQL, ('"' + text.replace('"', '""') + '"',)).fetchall()
        return [(slug, None) for slug, _title in rows]

    return run_timed(search, queries, warmup)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20260115)
    ap.add_argument("--json", action="store_true", help="print exactly one JSON object")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="write cProfile stats per phase to DIR")
    args = ap.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    phases_rss = {}
    load_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        tmp = Path(tmp)
        articles = tmp / "articles"
        articles.mkdir()
        db = tmp / "index.sqlite"
        naive = sqlite3.connect(tmp / "naive.sqlite", isolation_level=None)
        naive.execute("CREATE VIRTUAL TABLE naive USING fts5(slug UNINDEXED, title, questions, body, tokenize='trigram')")

        log(f"generating {args.docs} articles …")
        naive.execute("BEGIN")
        metas = write_corpus(articles, args.docs, args.seed, naive)
        queries = make_queries(metas, args.queries, args.seed + 1)
        warmup = make_queries(metas, WARMUP_QUERIES, args.seed + 2)
        naive.execute("COMMIT")
        del metas
        phases_rss["generate"] = rss_mb()

        log("baseline: segmenting the same files into a bare FTS5 table …")
        _, base_build_s, base_build_cpu_s = timed(baseline_build, articles, tmp / "bare.sqlite")

        log("full build …")
        report, build_s, build_cpu_s = timed(profiled, args.profile, "build", build_index, [articles], db, (), None, False)
        if report.indexed != args.docs or report.broken:
            raise SystemExit(f"build indexed {report.indexed}/{args.docs}, broken: {report.broken[:3]}")
        phases_rss["build"] = rss_mb()

        log("rebuild, nothing changed …")
        report, rebuild_s, rebuild_cpu_s = timed(
            profiled, args.profile, "rebuild_unchanged", build_index, [articles], db, (), None, False)
        if report.unchanged != args.docs or report.indexed or report.removed:
            raise SystemExit(f"unchanged rebuild did work: {report}")
        phases_rss["rebuild"] = rss_mb()

        log(f"{len(queries)} queries …")
        searcher = Searcher(db)
        kb = profiled(args.profile, "queries", run_kb, searcher, queries, warmup)
        searcher.close()
        phases_rss["search"] = rss_mb()

        log("naive trigram baseline …")
        naive.execute("INSERT INTO naive (naive) VALUES ('optimize')")
        base = run_naive(naive, queries, warmup)
        naive.close()
        phases_rss["naive"] = rss_mb()

    peak = rss_mb()
    result = {
        "build_s": round(build_s, 3),
        "rebuild_unchanged_s": round(rebuild_s, 4),
        "query_p50_ms": round(percentile(kb.ms, 50), 3),
        "query_p99_ms": round(percentile(kb.ms, 99), 3),
        "naive_query_p50_ms": round(percentile(base.ms, 50), 3),
        "naive_query_p99_ms": round(percentile(base.ms, 99), 3),
        "peak_rss_mb": round(peak, 1),
        # Added for issue 11: on a shared machine wall time includes waiting for the CPU, so
        # process CPU time stands beside it, and the build beside a same-run baseline.
        "build_cpu_s": round(build_cpu_s, 3),
        "baseline_build_s": round(base_build_s, 3),
        "baseline_build_cpu_s": round(base_build_cpu_s, 3),
        "rebuild_unchanged_cpu_s": round(rebuild_cpu_s, 4),
        "query_cpu_p50_ms": round(percentile(kb.cpu_ms, 50), 3),
        "query_cpu_p99_ms": round(percentile(kb.cpu_ms, 99), 3),
        # Added for the issue 21 speed target (p99 within 2.5× the naive trigram table): wall time on a
        # shared machine is mostly waiting, so the same ratio is given in thread CPU time as well.
        "naive_query_cpu_p50_ms": round(percentile(base.cpu_ms, 50), 3),
        "naive_query_cpu_p99_ms": round(percentile(base.cpu_ms, 99), 3),
        "query_p99_over_naive": round(percentile(kb.ms, 99) / max(percentile(base.ms, 99), 1e-9), 2),
        "query_cpu_p99_over_naive": round(percentile(kb.cpu_ms, 99) / max(percentile(base.cpu_ms, 99), 1e-9), 2),
        # Which phase set the peak (ru_maxrss after each phase, MB).
        "peak_rss_by_phase_mb": {k: round(v, 1) for k, v in phases_rss.items()},
        "rss_at_end_mb": rss_kinds_mb(),
        "load_average": [round(load_start, 1), round(os.getloadavg()[0], 1)],
        "docs": args.docs,
        "queries": len(queries),
    }
    targets = {
        "query_p99_ms": {"target": f"< {TARGET_QUERY_P99_MS}", "met": result["query_p99_ms"] < TARGET_QUERY_P99_MS},
        "rebuild_unchanged_s": {"target": f"< {TARGET_REBUILD_UNCHANGED_S}",
                                "met": result["rebuild_unchanged_s"] < TARGET_REBUILD_UNCHANGED_S},
        "peak_rss_mb": {"target": f"< {TARGET_PEAK_RSS_MB}", "met": result["peak_rss_mb"] < TARGET_PEAK_RSS_MB},
        "build_s": {"target": f"< {TARGET_BUILD_S}", "met": result["build_s"] < TARGET_BUILD_S},
    }
    result["targets"] = targets
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0 if all(t["met"] for t in targets.values()) else 1

    print(f"\nkb search benchmark — {args.docs:,} articles, {len(queries):,} queries (seed {args.seed})\n")
    rows = [
        ("build_s", f"{result['build_s']:.2f} s", "build_s"),
        ("build_cpu_s", f"{result['build_cpu_s']:.2f} s", ""),
        ("baseline_build_s", f"{result['baseline_build_s']:.2f} s", ""),
        ("baseline_build_cpu_s", f"{result['baseline_build_cpu_s']:.2f} s", ""),
        ("rebuild_unchanged_s", f"{result['rebuild_unchanged_s']:.3f} s", "rebuild_unchanged_s"),
        ("rebuild_unchanged_cpu_s", f"{result['rebuild_unchanged_cpu_s']:.3f} s", ""),
        ("query_p50_ms", f"{result['query_p50_ms']:.2f} ms", ""),
        ("query_p99_ms", f"{result['query_p99_ms']:.2f} ms", "query_p99_ms"),
        ("naive_query_p50_ms", f"{result['naive_query_p50_ms']:.2f} ms", ""),
        ("naive_query_p99_ms", f"{result['naive_query_p99_ms']:.2f} ms", ""),
        ("naive_query_cpu_p99_ms", f"{result['naive_query_cpu_p99_ms']:.2f} ms", ""),
        ("query_p99_over_naive", f"{result['query_p99_over_naive']:.2f} ×", ""),
        ("query_cpu_p99_over_naive", f"{result['query_cpu_p99_over_naive']:.2f} ×", ""),
        ("peak_rss_mb", f"{result['peak_rss_mb']:.0f} MB", "peak_rss_mb"),
    ]
    print(f"{'metric':<26}{'value':>12}   target")
    for name, value, target in rows:
        mark = ""
        if target:
            t = targets[target]
            mark = f"{t['target']:<8} {'met' if t['met'] else 'MISSED'}"
        print(f"{name:<26}{value:>12}   {mark}")

    print("\nper query kind (kb search / naive trigram):")
    print(f"{'kind':<15}{'n':>5}{'p50 ms':>9}{'p99 ms':>9}{'cpu p99':>9}{'naive p50':>11}{'naive p99':>11}"
          f"{'top5 hit':>10}{'naive hit':>11}{'answered':>10}{'confident':>11}")
    for kind in KINDS:
        ms = [m for m, k in zip(kb.ms, kb.kinds) if k == kind]
        cpu_ms = [m for m, k in zip(kb.cpu_ms, kb.kinds) if k == kind]
        nms = [m for m, k in zip(base.ms, base.kinds) if k == kind]
        if not ms:
            continue
        hit = kb.hits.get(kind)
        nhit = base.hits.get(kind)
        fmt = lambda h: f"{h[0] / h[1]:.0%}" if h else "—"  # noqa: E731
        print(f"{kind:<15}{len(ms):>5}{percentile(ms, 50):>9.2f}{percentile(ms, 99):>9.2f}{percentile(cpu_ms, 99):>9.2f}"
              f"{percentile(nms, 50):>11.2f}{percentile(nms, 99):>11.2f}{fmt(hit):>10}{fmt(nhit):>11}"
              f"{kb.answered.get(kind, 0) / len(ms):>10.0%}{kb.confident.get(kind, 0) / len(ms):>11.0%}")
    print(f"{'all':<15}{len(kb.ms):>5}{percentile(kb.ms, 50):>9.2f}{percentile(kb.ms, 99):>9.2f}"
          f"{percentile(kb.cpu_ms, 99):>9.2f}{percentile(base.ms, 50):>11.2f}{percentile(base.ms, 99):>11.2f}")
    print(f"kb search CPU time per query: p50 {percentile(kb.cpu_ms, 50):.2f} ms, p99 {percentile(kb.cpu_ms, 99):.2f} ms"
          f" (wall minus CPU is waiting: other processes, I/O)")
    print("load average at start / end: " + " / ".join(f"{a:.1f}" for a in (load_start, os.getloadavg()[0]))
          + f" on {os.cpu_count()} CPUs")
    slow = sorted(zip(kb.ms, kb.kinds), reverse=True)[:5]
    print("\nslowest kb queries: " + ", ".join(f"{m:.1f} ms ({k})" for m, k in slow))
    print("peak RSS after each phase (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in phases_rss.items()))
    for label, t in (("kb search", kb), ("naive", base)):
        if t.errors:
            print(f"\n{label} raised on {len(t.errors)} queries:")
            for e in t.errors[:5]:
                print("  " + e)
    return 0 if all(t["met"] for t in targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

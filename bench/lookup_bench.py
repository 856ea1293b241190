"""Benchmark the member import and the read-only lookups at national scale.

Why this exists
---------------
MAMIS held 178,559 members on 2025-12-01. The help desk keeps a local copy, which
`helpdesk sync-members` refreshes from the member CSV (daily differences, or a full
file on demand), and the chat looks members up while someone waits. Targets:

* full import of 180,000 rows under 30 s, a 1,000-row difference under 1 s;
* lookup by member number p99 under 2 ms;
* fuzzy name search p99 under 30 ms.

What it does
------------
1. Generates the demo database at `--members` (records.demo) in a temporary folder
   and exports it as a full member CSV (UTF-8, the format of docs/records.md).
2. Imports that CSV with `import_members(..., "full")` into a fresh database
   (`import_full_s`), then a difference of 1,000 rows — 400 changed, 300 added,
   300 deleted — (`import_diff_1000_s`). Baseline from the same run: parsing and
   validating the same full file without writing anything.
3. Runs `--queries` lookups by number through `Records.member` as the member's own
   prefectural secretariat (the access check and the access log included), and the
   same number of fuzzy name searches through `Records.find_members`: each query is
   a real member's name with one of the usual slips (a wrong kanji, no space,
   hiragana reading, half-width kana, 「先生」 appended). Prefectural staff are the
   widest scope (Tokyo: about one in nine members). Baselines: a bare primary-key
   SELECT, and an exact `name_key` match, on a plain connection.
4. Reports the process's peak RSS (`ru_maxrss`), which covers generation too.

`--json` prints exactly the five target figures; the text report adds the baselines,
the search hit rate and refused-vs-not-found timings.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jaconv

from records.access import Asker
from records.demo import generate_demo
from records.errors import MemberNotFound
from records.lookup import Records
from records.member_csv import MemberRow, parse_members_csv, write_members_csv
from records.sync import export_members_csv, import_members, load_member_rows

WRONG_KANJI = "一二三四五六七八九十上下中山川田本木林森"


def p99_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.99 + 0.5) - 1)] * 1000


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def slip(rng: random.Random, row: MemberRow, kind: int) -> str:
    """A member's name as someone might type it."""
    family, given = row.name.split("\u3000")
    if kind == 0:  # one wrong kanji in the given name
        pos = rng.randrange(len(given))
        wrong = rng.choice([c for c in WRONG_KANJI if c != given[pos]])
        return family + given[:pos] + wrong + given[pos + 1:]
    if kind == 1:
        return family + given
    if kind == 2:
        kana = row.kana.replace("\u3000", " ")
        return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in kana)
    if kind == 3:  # half-width kana pasted from an old system
        return jaconv.z2h(row.kana, kana=True, digit=False, ascii=False)
    return f"{family}{given}先生"


def make_diff(rng: random.Random, rows: list[MemberRow]) -> tuple[list[MemberRow], list[str], list[str]]:
    sample = rng.sample(rows, 700)
    changed = []
    for row in sample[:400]:
        row = dataclasses.replace(row, updated_on="2026-12-01")  # MAMIS stamps every change
        pick = rng.randrange(3)
        if pick == 0:
            changed.append(dataclasses.replace(row, status="withdrawn", withdrawn_on="2026-11-30",
                                               delivery=((0, None), (0, None), (0, None))))
        elif pick == 1:
            changed.append(dataclasses.replace(row, delivery=((1, "home"), (1, "home"), (0, None))))
        else:
            changed.append(dataclasses.replace(row, kana=row.kana + "ー"))
    deleted = [r.member_number for r in sample[400:]]
    taken = {r.member_number for r in rows}
    added = []
    while len(added) < 300:
        base = rng.choice(rows)
        number = f"{base.prefecture_code}{rng.randrange(10000, 100000)}"
        if number in taken:
            continue
        taken.add(number)
        added.append(dataclasses.replace(base, member_number=number, status="pending", joined_on=None))
    return changed + added, ["changed"] * len(changed) + ["added"] * len(added), deleted


def run(members: int, queries: int, seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    extra: dict = {}
    with tempfile.TemporaryDirectory(prefix="lookup-bench-") as tmp:
        tmp = Path(tmp)
        extra["demo_s"] = timed(generate_demo, tmp / "demo.sqlite", members, seed)
        export_members_csv(tmp / "demo.sqlite", tmp / "full.csv")
        data = (tmp / "full.csv").read_bytes()
        extra["parse_only_full_s"] = timed(parse_members_csv, data, "full")
        db = tmp / "records.sqlite"
        import_full_s = timed(import_members, db, tmp / "full.csv", "full")

        conn = sqlite3.connect(db)
        rows = load_member_rows(conn)
        conn.close()
        upserts, ops, deleted = make_diff(rng, rows)
        write_members_csv(tmp / "diff.csv", upserts, operations=ops, deleted=deleted)
        start = time.perf_counter()
        summary = import_members(db, tmp / "diff.csv", "diff")
        import_diff_s = time.perf_counter() - start
        extra["diff_counts"] = (summary.added, summary.changed, summary.deleted, len(summary.rejected))

        conn = sqlite3.connect(db)
        rows = load_member_rows(conn)
        with Records(db, tmp / "audit.sqlite") as records:
            targets = rng.sample(rows, queries)
            for row in targets[:50]:  # warm-up: page cache, statement cache
                records.member(Asker.prefecture_staff(row.prefecture_code), row.member_number)
            by_number = []
            for row in targets:
                asker = Asker.prefecture_staff(row.prefecture_code)
                start = time.perf_counter()
                records.member(asker, row.member_number)
                by_number.append(time.perf_counter() - start)
            bare = []
            for row in targets:
                start = time.perf_counter()
                conn.execute("SELECT * FROM members WHERE member_number = ?", (row.member_number,)).fetchone()
                bare.append(time.perf_counter() - start)

            fuzzy, exact, hits = [], [], 0
            for i, row in enumerate(targets):
                kind = i % 5
                query = slip(rng, row, kind)
                asker = Asker.prefecture_staff(row.prefecture_code)
                start = time.perf_counter()
                found = records.find_members(asker, query)
                fuzzy.append(time.perf_counter() - start)
                hits += row.member_number in [m.member.member_number for m in found]
                key = row.name.replace("\u3000", "")
                start = time.perf_counter()
                conn.execute("SELECT * FROM members WHERE county_code = ? AND name_key = ?",
                             (row.county_code, key)).fetchall()
                exact.append(time.perf_counter() - start)

            outsider = Asker.county_staff("47001")
            refused, missing = [], []
            for row in targets[:300]:
                if row.county_code == "47001":
                    continue
                for bucket, number in ((refused, row.member_number), (missing, "0000000")):
                    start = time.perf_counter()
                    try:
                        records.member(outsider, number)
                    except MemberNotFound:
                        pass
                    bucket.append(time.perf_counter() - start)
        conn.close()

    figures = {
        "import_full_s": round(import_full_s, 2),
        "import_diff_1000_s": round(import_diff_s, 3),
        "by_number_p99_ms": round(p99_ms(by_number), 3),
        "fuzzy_name_p99_ms": round(p99_ms(fuzzy), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    extra.update(
        bare_pk_p99_ms=p99_ms(bare), exact_name_p99_ms=p99_ms(exact), fuzzy_median_ms=median_ms(fuzzy),
        by_number_median_ms=median_ms(by_number), fuzzy_hit_rate=hits / len(targets),
        refused_median_ms=median_ms(refused), not_found_median_ms=median_ms(missing),
    )
    return figures, extra


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="会員データの取り込みと照会の性能を測定します。")
    parser.add_argument("--members", type=int, default=180_000, help="デモデータの会員数（既定 180000）")
    parser.add_argument("--queries", type=int, default=1_000, help="照会・検索の回数（既定 1000）")
    parser.add_argument("--seed", type=int, default=15, help="乱数の種")
    parser.add_argument("--json", action="store_true", help="目標値の5項目だけをJSONで出力")
    args = parser.parse_args(argv)
    figures, extra = run(args.members, min(args.queries, args.members), args.seed)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"members={args.members:,} queries={args.queries:,}")
    print(f"demo generation           {extra['demo_s']:8.2f} s")
    print(f"import full               {figures['import_full_s']:8.2f} s   (target < 30; parse only: "
          f"{extra['parse_only_full_s']:.2f} s)")
    a, c, d, r = extra["diff_counts"]
    print(f"import diff 1,000 rows    {figures['import_diff_1000_s']:8.3f} s   (target < 1; "
          f"added {a}, changed {c}, deleted {d}, rejected {r})")
    print(f"by number p99             {figures['by_number_p99_ms']:8.3f} ms  (target < 2; median "
          f"{extra['by_number_median_ms']:.3f}; bare PK SELECT p99 {extra['bare_pk_p99_ms']:.3f})")
    print(f"fuzzy name p99            {figures['fuzzy_name_p99_ms']:8.2f} ms  (target < 30; median "
          f"{extra['fuzzy_median_ms']:.2f}; exact name in county p99 {extra['exact_name_p99_ms']:.3f}; "
          f"hit rate {extra['fuzzy_hit_rate']:.1%})")
    print(f"refused vs not found      {extra['refused_median_ms']:8.3f} / {extra['not_found_median_ms']:.3f} ms (medians)")
    print(f"peak RSS                  {figures['peak_rss_mb']:8.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

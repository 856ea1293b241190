"""Benchmark the institution and application imports at national scale, beside a bare baseline.

Why this exists
---------------
The vendor's institution master has about 180,000 rows and arrives monthly; applications
are about 50,000 a year. `helpdesk sync-institutions` and `sync-applications` validate every
row, keep search grams and histories, count by effect and run in one transaction, so they
cost more than copying a CSV into SQLite. How much more is the question. Targets:

* full import ≤ 20 × a bare CSV-into-SQLite load of the same file in the same run;
* a 1,000-row difference ≤ 0.5 × that same bare full load;
* lookups keep their p99 afterwards: an institution by code < 2 ms, a fuzzy institution
  name search < 30 ms, an application by number < 2 ms.

What it does
------------
1. Builds `--institutions` synthetic institutions (names from the demo's material, codes in
   the project's format, every county association) and `--applications` applications, and
   writes them as our files (records/kinds.py formats).
2. Baseline, same run: `csv.reader` over the same file into one table of TEXT columns with
   `executemany` in one transaction (`*_baseline_s`), `--repeats` times.
3. `run_import(..., "full")` into a fresh records database, then `--repeats` different 1,000-row
   differences (400 changed, 300 added, 300 deleted), one after another as monthly files arrive,
   for each kind. Each is timed in wall and CPU seconds (`*_cpu_*`): the bare baseline is mostly
   I/O, so its wall time swings with the machine's load. The ratios compare medians (each run is
   listed in `*_runs_s`): a single 0.2 s step on a shared machine measures its neighbours as much
   as itself.
4. `--queries` lookups through `Records` as county staff (the access check and the log
   included): institution by code, fuzzy institution name (a stem in hiragana), application
   by number, each with its wall and CPU time; then the same applications by number again with the
   access log replaced by a no-op (`application_by_number_unlogged_*`), to show what the audit row costs.

`--json` prints one object with every figure; exit status 1 means a target was missed.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from records.access import Asker
from records.csv_format import write_csv
from records.errors import RecordUnavailable
from records.demo_material import Builder, institution_code
from records.import_applications import STEPS, ApplicationRow
from records.import_institutions import InstitutionRow
from records.importer import run_import
from records.kinds import KINDS
from records.lookup import Records

_D2000, _D2025, _D2026 = date(2000, 1, 1), date(2025, 4, 1), date(2026, 11, 30)


def p99_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.99 + 0.5) - 1)] * 1000


class Timings:
    """Wall and CPU time of each call: on a shared machine the wall tail is mostly waiting for a CPU,
    and the CPU time says what the look-up itself costs."""

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def time(self, fn, *args) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            fn(*args)
        except RecordUnavailable:  # deleted by the difference: timed the same, the refusal included
            pass
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)


class _NoLog:
    """Stands in for the access log to measure what writing it costs (never outside this benchmark)."""

    def write(self, *args) -> None:
        pass

    def close(self) -> None:
        pass


def timed_both(fn, *args, **kw) -> tuple[float, float, object]:
    """Wall and CPU seconds of one call, and its result: on a shared machine the wall ratio moves with
    the load (the bare baseline is mostly I/O), the CPU ratio much less."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kw)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def make_institutions(b: Builder, count: int) -> list[InstitutionRow]:
    names = {code: name for code, name, _p in b.counties}
    rows, used = [], set()
    while len(rows) < count:
        county, county_name, pref = b.county()
        code = institution_code(pref, int(county[2:]) % 100, f"{b.rng.randrange(10000):04d}")
        if code in used:
            continue
        used.add(code)
        hospital = b.rng.random() < 0.08
        name, kana = b.institution_name(hospital)
        registered = b.day(_D2000, _D2026)
        rows.append(InstitutionRow(code, name, kana, f"{b.rng.randrange(100, 1000)}-{b.rng.randrange(10000):04d}",
                                   f"{b.pref_names[pref]}{names[county].removesuffix('医師会')}{b.rng.randrange(1, 30)}"
                                   f"丁目{b.rng.randrange(1, 30)}番{b.rng.randrange(1, 30)}号",
                                   pref, county, county_name, "hospital" if hospital else "clinic", registered.isoformat(),
                                   None, f"{registered:%Y-%m}", registered.isoformat()))
    return rows


def make_applications(b: Builder, count: int) -> list[ApplicationRow]:
    rows = []
    for i in range(count):
        county, county_name, _pref = b.county()
        submitted = b.day(_D2025, _D2026)
        stage, state = b.rng.choice([("county", "in_review"), ("prefecture", "in_review"), ("jma", "in_review"),
                                     ("done", "completed"), ("county", "returned")])
        dates = {s.column: None for s in STEPS}
        dates["submitted_on"] = submitted.isoformat()
        reason = returned_by = None
        if stage in ("prefecture", "jma", "done"):
            dates["county_approved_on"] = submitted.isoformat()
        if stage in ("jma", "done"):
            dates["prefecture_approved_on"] = submitted.isoformat()
        if stage == "done":
            dates["jma_completed_on"] = submitted.isoformat()
        if state == "returned":
            dates["returned_on"], returned_by, reason = submitted.isoformat(), "county", "添付書類が不鮮明です。"
        rows.append(ApplicationRow(f"A{submitted.year}-{i + 1:06d}", f"{county[:2]}{b.rng.randrange(10000, 100000)}",
                                   "admission", county, None, stage, state, tuple(dates[s.column] for s in STEPS),
                                   returned_by, reason, county_name))
    return rows


def bare_load(csv_path: Path, db_path: Path) -> None:
    """The baseline: the same file into one table of TEXT columns, one transaction, nothing else."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    with open(csv_path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        cols = ", ".join(f"c{i} TEXT" for i in range(len(header)))
        conn.execute(f"CREATE TABLE bare ({cols})")
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO bare VALUES ({', '.join('?' * len(header))})", reader)
        conn.execute("COMMIT")
    conn.close()


def diff_of(rng: random.Random, rows: list, change, add, first: int = 0) -> tuple[list, list[str], list[dict]]:
    """400 changed, 300 added, 300 deleted rows of a kind; `add(row, i)` numbers its new keys from `first`."""
    sample = rng.sample(rows, 700)
    changed = [change(r) for r in sample[:400]]
    added = [add(r, first + i) for i, r in enumerate(rng.sample(rows, 300))]
    deleted = [{c.key: v for c, v in zip(KIND_COLUMNS[type(r)], r.to_csv())} for r in sample[400:]]
    return changed + added, ["changed"] * 400 + ["added"] * 300, deleted


def after_diff(rows: list, diff: tuple) -> list:
    """The rows a database holds once `diff` is applied, for drawing the next difference from."""
    upserts, _ops, deleted = diff
    gone = {d[_KEY[type(rows[0])]] for d in deleted}
    by_key = {r.key: r for r in rows if r.key not in gone}
    by_key.update((r.key, r) for r in upserts)
    return list(by_key.values())


KIND_COLUMNS = {InstitutionRow: KINDS["institutions"].format.columns,
                ApplicationRow: KINDS["applications"].format.columns}
_KEY = {InstitutionRow: "institution_code", ApplicationRow: "application_number"}


def median_of(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The median wall and CPU seconds of repeated runs: one run of a 0.2 s step on a shared machine
    says more about the neighbours than about the step."""
    return statistics.median(w for w, _c in runs), statistics.median(c for _w, c in runs)


def import_kind(tmp: Path, db: Path, kind: str, rows: list, make_diff, repeats: int) -> dict:
    """The bare baseline `repeats` times, the full import once, then `repeats` different 1,000-row
    differences one after another (each drawn from the rows the previous one left): medians of each."""
    fmt = KINDS[kind].format
    full = tmp / f"{kind}.csv"
    write_csv(full, fmt, rows)
    baselines = [timed_both(bare_load, full, tmp / f"{kind}_bare{i}.sqlite")[:2] for i in range(repeats)]
    full_s, full_cpu, _ = timed_both(run_import, db, full, "full", KINDS[kind])
    diffs, counts = [], None
    for i in range(repeats):
        diff = make_diff(rows, i * 300)
        delta = tmp / f"{kind}_diff{i}.csv"
        upserts, ops, deleted = diff
        write_csv(delta, fmt, upserts, operations=ops, deleted=deleted)
        wall, cpu, summary = timed_both(run_import, db, delta, "diff", KINDS[kind])
        diffs.append((wall, cpu))
        counts = counts or [summary.added, summary.changed, summary.deleted, len(summary.rejected)]
        rows = after_diff(rows, diff)
    baseline, baseline_cpu = median_of(baselines)
    diff_s, diff_cpu = median_of(diffs)
    return {"rows": len(rows), "baseline_s": round(baseline, 3), "full_s": round(full_s, 2),
            "diff_1000_s": round(diff_s, 3), "full_x_baseline": round(full_s / baseline, 1),
            "diff_x_baseline": round(diff_s / baseline, 3),
            "baseline_cpu_s": round(baseline_cpu, 3), "full_cpu_x_baseline": round(full_cpu / baseline_cpu, 1),
            "diff_cpu_x_baseline": round(diff_cpu / baseline_cpu, 3),
            "baseline_runs_s": [round(w, 3) for w, _c in baselines],
            "diff_runs_s": [round(w, 3) for w, _c in diffs],
            "diff_counts": counts}


def run(institutions: int, applications: int, queries: int, seed: int, repeats: int = 3) -> dict:
    rng = random.Random(seed)
    b = Builder(seed)
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        tmp = Path(tmp)
        db = tmp / "records.sqlite"
        inst = make_institutions(b, institutions)
        apps = make_applications(b, applications)
        figures["institutions"] = import_kind(tmp, db, "institutions", inst, lambda rows, first: diff_of(
            rng, rows, lambda r: dataclasses.replace(r, address=r.address + "２階"),
            lambda r, i: dataclasses.replace(r, institution_code=f"{r.prefecture_code}9{i:06d}0"[:10],
                                             name=r.name + "分院"), first), repeats)
        figures["applications"] = import_kind(tmp, db, "applications", apps, lambda rows, first: diff_of(
            rng, rows, lambda r: dataclasses.replace(r, stage="prefecture", state="in_review",
                                                     dates=(r.dates[0], r.dates[0], *r.dates[2:])),
            lambda r, i: dataclasses.replace(r, application_number=f"A2027-{i + 1:06d}"), first), repeats)

        by_code, fuzzy, by_number = Timings(), Timings(), Timings()
        with Records(db, tmp / "audit.sqlite") as records:
            for row in rng.sample(inst, queries):
                asker = Asker.county_staff(row.county_code)
                by_code.time(records.institution, asker, row.institution_code)
                stem = row.name.removesuffix("クリニック").removesuffix("医院")
                fuzzy.time(records.find_institutions, asker, stem)
            numbers = [(Asker.county_staff(row.county_code), row.application_number)
                       for row in rng.sample(apps, queries)]
            for asker, number in numbers:
                by_number.time(records.application, asker, number)
            # The same look-ups again without writing the access log: what the audit row costs.
            log, records.log = records.log, _NoLog()
            unlogged = Timings()
            for asker, number in numbers:
                unlogged.time(records.application, asker, number)
            records.log = log
    figures.update(institution_by_code_p99_ms=round(p99_ms(by_code.wall), 3),
                   institution_fuzzy_p99_ms=round(p99_ms(fuzzy.wall), 2),
                   institution_fuzzy_median_ms=round(statistics.median(fuzzy.wall) * 1000, 2),
                   institution_fuzzy_cpu_p99_ms=round(p99_ms(fuzzy.cpu), 2),
                   application_by_number_p99_ms=round(p99_ms(by_number.wall), 3),
                   application_by_number_cpu_p99_ms=round(p99_ms(by_number.cpu), 3),
                   application_by_number_median_ms=round(statistics.median(by_number.wall) * 1000, 3),
                   application_by_number_unlogged_p99_ms=round(p99_ms(unlogged.wall), 3),
                   application_by_number_unlogged_median_ms=round(statistics.median(unlogged.wall) * 1000, 3),
                   peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                   load_average=[round(x, 2) for x in os.getloadavg()])
    return figures


def missed(f: dict) -> list[str]:
    out = []
    for kind in ("institutions", "applications"):
        if f[kind]["full_x_baseline"] > 20:
            out.append(f"{kind} full > 20× baseline")
        if f[kind]["diff_x_baseline"] > 0.5:
            out.append(f"{kind} diff > 0.5× baseline")
    if f["institution_by_code_p99_ms"] >= 2 or f["application_by_number_p99_ms"] >= 2:
        out.append("lookup by number p99 ≥ 2 ms")
    if f["institution_fuzzy_p99_ms"] >= 30:
        out.append("fuzzy name p99 ≥ 30 ms")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="医療機関・申請の取り込みと照会の性能を測定します。")
    parser.add_argument("--institutions", type=int, default=180_000, help="医療機関の数（既定 180000）")
    parser.add_argument("--applications", type=int, default=50_000, help="申請の数（既定 50000）")
    parser.add_argument("--queries", type=int, default=1_000, help="照会の回数（既定 1000）")
    parser.add_argument("--seed", type=int, default=15, help="乱数の種")
    parser.add_argument("--repeats", type=int, default=3, help="基準と差分取り込みを測る回数（中央値を使う。既定 3）")
    parser.add_argument("--json", action="store_true", help="JSONで出力")
    args = parser.parse_args(argv)
    f = run(args.institutions, args.applications, min(args.queries, args.institutions, args.applications), args.seed,
            max(1, args.repeats))
    if args.json:
        print(json.dumps(f, ensure_ascii=False))
    else:
        for kind in ("institutions", "applications"):
            k = f[kind]
            print(f"{kind:<13} {k['rows']:,} rows: full {k['full_s']:.2f} s = {k['full_x_baseline']}× bare "
                  f"{k['baseline_s']:.2f} s (target ≤ 20×); diff 1,000 {k['diff_1000_s']:.3f} s = "
                  f"{k['diff_x_baseline']}× (target ≤ 0.5×); added/changed/deleted/rejected {k['diff_counts']}")
            print(f"{'':<13} CPU: full {k['full_cpu_x_baseline']}× bare {k['baseline_cpu_s']:.2f} s; "
                  f"diff {k['diff_cpu_x_baseline']}×")
        print(f"institution by code p99   {f['institution_by_code_p99_ms']:.3f} ms (target < 2)")
        print(f"institution fuzzy p99     {f['institution_fuzzy_p99_ms']:.2f} ms (target < 30; median "
              f"{f['institution_fuzzy_median_ms']:.2f})")
        print(f"institution fuzzy CPU p99 {f['institution_fuzzy_cpu_p99_ms']:.2f} ms")
        print(f"application by number p99 {f['application_by_number_p99_ms']:.3f} ms (target < 2; CPU p99 "
              f"{f['application_by_number_cpu_p99_ms']:.3f}, median {f['application_by_number_median_ms']:.3f})")
        print(f"  without the access log  {f['application_by_number_unlogged_p99_ms']:.3f} ms (median "
              f"{f['application_by_number_unlogged_median_ms']:.3f})")
        print(f"peak RSS {f['peak_rss_mb']} MB; load average {f['load_average']}")
    failures = missed(f)
    for line in failures:
        print(f"missed: {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Compare SudachiPy (core), fugashi (unidic-lite) and Janome for the knowledge-base search.

Quality: do the spellings people really type fold to one form (the lemma/normalized form
each analyser offers)? Speed: microseconds per question over the dev questions.
Needs the optional `bench` extra: pip install -e '.[bench]'.
"""
import argparse
import json
import time
from pathlib import Path

PAIRS = [("差戻し", "差し戻し"), ("ﾏｽﾀ", "マスタ"), ("マスタ", "マスター"), ("問合せ", "問い合わせ"),
         ("申込み", "申し込み"), ("ニュ-ス", "ニュース"), ("送り先", "送付先")]
DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "mamis_dev.jsonl"


def sudachi():
    from sudachipy import Dictionary, SplitMode

    tok = Dictionary(dict="core").tokenizer(mode=SplitMode.C)
    return lambda s: [m.normalized_form() for m in tok.tokenize(s)]


def fugashi():
    import fugashi as f

    tagger = f.Tagger()
    return lambda s: [(w.feature.lemma or w.surface).split("-")[0] for w in tagger(s)]


def janome():
    from janome.tokenizer import Tokenizer

    tok = Tokenizer()
    return lambda s: [t.base_form for t in tok.tokenize(s)]


def measure(name, make, questions):
    start = time.perf_counter()
    analyse = make()
    load_s = time.perf_counter() - start
    folded = sum(analyse(a) == analyse(b) for a, b in PAIRS)
    # The raw analyser, without our own NFKC pass, so its own folding is what is measured.
    start = time.perf_counter()
    for _ in range(5):
        for q in questions:
            analyse(q)
    per_q_us = (time.perf_counter() - start) / (5 * len(questions)) * 1e6
    return {"analyser": name, "load_s": round(load_s, 3), "folded_pairs": f"{folded}/{len(PAIRS)}",
            "us_per_question": round(per_q_us, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    questions = [json.loads(l)["query"] for l in DEV.read_text(encoding="utf-8").splitlines() if l.strip()] \
        if DEV.exists() else [a for a, _ in PAIRS]
    rows = [measure(n, m, questions) for n, m in (("sudachipy+core", sudachi), ("fugashi+unidic-lite", fugashi), ("janome", janome))]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for r in rows:
            print(f"{r['analyser']:<22} 表記揺れ {r['folded_pairs']:<5} {r['us_per_question']:>8} µs/質問  読込 {r['load_s']} s")


if __name__ == "__main__":
    main()

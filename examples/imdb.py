"""Filter real IMDB reviews for positive ones with the embedded offline LLM.

Reads ../shared/data/imdb.parquet (or --path), draws --rows reviews, keeps the
positive ones and prints the run report, the wall time, and how often the rows
the proxy decided agree with the human gold labels.

With a hosted model (``--llm openai/gpt-4o-mini``) this is one call,
``df.thrifty.filter("Is this movie review positive?")``. The embedded offline
model (135M parameters) cannot answer yes/no questions -- it says "no" to
nearly everything, measured in benchmarks/results/offline_llm.md -- but it can
pick between class names, so offline the script asks for the sentiment with
``classify`` and keeps the "positive" rows. The pipeline is the same.

    python examples/imdb.py --rows 5000 --sample-size 300 --max-llm-calls 400
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

import thrifty_frames as tf

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb.parquet"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", type=Path, default=DEFAULT)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--sample-size", type=int, default=300)
    ap.add_argument("--max-llm-calls", type=int, default=None,
                    help="hard cap on LLM calls (sample + escalation)")
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--no-target", action="store_true",
                    help="keep every proxy answer (target=None): no certificate, "
                    "no escalation")
    ap.add_argument("--llm", default=None, help="litellm model string; default: offline model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    if not args.path.exists():
        raise SystemExit(f"{args.path} not found; pass --path to imdb.parquet")

    df = pd.read_parquet(args.path, columns=["text", "label"])
    df = df.sample(n=min(args.rows, len(df)), random_state=args.seed)
    opts = dict(
        column="text", llm=args.llm, sample_size=args.sample_size,
        max_llm_calls=args.max_llm_calls, seed=args.seed,
        target=None if args.no_target else args.target,
        cache_dir=args.cache_dir,
    )
    if args.llm:
        question, classes = "Is this movie review positive?", None
    else:
        question = "Is the sentiment of this movie review positive or negative?"
        classes = ["positive", "negative"]
    t0 = time.perf_counter()
    if classes is None:
        kept = df.thrifty.filter(question, provenance=True, **opts)
    else:
        out = df.thrifty.classify(question, classes, into="sentiment", **opts)
        kept = out[out.sentiment == "positive"]
    wall = time.perf_counter() - t0
    rep = tf.last_report()
    print(rep)
    # The same call again: every LLM label now comes from the cache.
    res = df.thrifty.label(question, classes, **opts)
    labels = res.labels.to_pylist()
    pred = pd.Series(
        labels if classes is None else [v == "positive" if v else None for v in labels],
        index=df.index,
    )
    how = pd.Series(res.decided_by.to_pylist(), index=df.index)
    gold = df.label.eq("pos")
    print(f"\nwall time {wall:.1f}s for {len(df):,} rows; kept {len(kept):,}")
    print(f"second identical call: {res.report.llm_calls} LLM calls")
    for name, sel in [("proxy-decided", how.isin(["proxy", "proxy_below_target"])),
                      ("LLM-decided", how.isin(["llm", "cache"])),
                      ("all", how.notna())]:
        if sel.any():
            agree = (pred[sel].astype(bool) == gold[sel]).mean()
            print(f"agreement with gold labels, {name} rows ({sel.sum():,}): {agree:.3f}")


if __name__ == "__main__":
    main()

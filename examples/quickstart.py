"""Quickstart: filter a frame of reviews with the embedded offline LLM.

No API key, no network: the LLM is a small local model that runs in-process,
and the embedder hashes words. The data are written by the project itself.

    python examples/quickstart.py
"""

from __future__ import annotations

import argparse
import time

import thrifty_frames as tf
from thrifty_frames.datasets import make_reviews


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=800)
    ap.add_argument("--sample-size", type=int, default=200)
    ap.add_argument("--cache-dir", default=None, help="label cache folder (default: user cache)")
    args = ap.parse_args()

    df = make_reviews(args.rows, seed=0, null_share=0.02)
    print(f"{len(df)} reviews, for example:\n  {df.review.iloc[0]}\n  {df.review.iloc[1]}\n")

    t0 = time.perf_counter()
    liked = df.thrifty.filter(
        "Is this review positive?",
        column="review",
        sample_size=args.sample_size,
        cache_dir=args.cache_dir,
        provenance=True,
    )
    wall = time.perf_counter() - t0
    report = tf.last_report()
    print(report)
    print()
    print(liked[["review", "thrifty_decided_by", "thrifty_score"]].head(8).to_string())
    print()
    agree = (df.index.isin(liked.index) == df.positive)[df.review.notna()].mean()
    print(f"kept {len(liked)} of {len(df)} rows in {wall:.1f}s; "
          f"{report.proxy_rows} rows decided by the proxy, {report.llm_calls} LLM calls")
    print(f"agreement with the sentiment the texts were written with: {agree:.3f}")


if __name__ == "__main__":
    main()

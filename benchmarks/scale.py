"""Embeddings at scale: wall time, peak memory and embedding overhead on IMDB.

Every figure comes from one run of this script, each measurement in a fresh
subprocess that reads only its own rows (so ``ru_maxrss`` is that
measurement's own peak; the peak during the call alone is read from VmHWM,
reset just before the call)::

    python benchmarks/scale.py --thrifty-ml-python /tmp/thrifty-ml-venv/bin/python

It writes ``benchmarks/results/scale.md``. What it measures, on the 50,000
IMDB reviews of ``../shared/data/imdb.parquet``:

(a) the whole filter ("Is this movie review positive?"), cold cache then warm
    cache, with two embedders: the offline default (hashed n-grams, not
    cacheable) and ``hashproj256``, a cacheable dense embedder defined below
    (word 1-2 gram hashing, 2^20 features, sublinear tf, L2, then a fixed
    seeded sparse random projection to 256 float32 dims);
(b) peak RSS of the same run on 50,000 rows and on 5,000 rows;
(c) embedding-stage throughput (``embed_texts``) over the bare embedder's
    (``embedder.embed`` in its own batches) on the same distinct texts;
(d) thrifty-ml 0.1.2, installed in a separate virtual environment, on the
    same rows with the same ``hashproj256`` embedder and the same LLM
    stand-in, next to thrifty-frames.

The LLM is a stand-in that replays the gold labels (a strong LLM's accuracy on
IMDB is about 0.94-0.96): ``RuleLLMDouble`` in (a)-(c); in (d) a litellm
custom provider (``gold/replay``) so both libraries reach it the same way,
through ``litellm``. No network is used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data" / "imdb.parquet"
RESULTS = HERE / "results"
PROMPT = "Is this movie review positive?"
SAMPLE = 1000
PROJ_DIM = 256
SEED = 0


# -- shared by both libraries (imports only numpy, scikit-learn, litellm) -------
class HashProj:
    """Word 1-2 gram hashing (2^20), sublinear tf, L2, sparse random projection."""

    id = f"hashproj{PROJ_DIM}/word1-2/2^20/seed{SEED}/v1"

    def __init__(self) -> None:
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.random_projection import SparseRandomProjection

        self.vec = HashingVectorizer(
            ngram_range=(1, 2), n_features=2**20, alternate_sign=False, norm=None,
            dtype=np.float32,
        )
        self.proj = SparseRandomProjection(PROJ_DIM, dense_output=True, random_state=SEED)
        self.proj.fit(sp.csr_matrix((1, 2**20), dtype=np.float32))

    def __call__(self, texts: list[str]) -> np.ndarray:
        from sklearn.preprocessing import normalize

        X = self.vec.transform([t.replace("<br />", " ") for t in texts]).tocsr()
        X.data = 1.0 + np.log(X.data)
        X = normalize(X, copy=False)
        return np.asarray(self.proj.transform(X), dtype=np.float32)


def load_rows(n: int) -> pd.DataFrame:
    df = pd.read_parquet(DATA, columns=["text", "label"])
    return df.sample(frac=1.0, random_state=SEED).head(n).reset_index(drop=True)


def read_rows(path: str) -> pd.DataFrame:
    """The rows a child works on, as plain object columns in both environments."""
    return pd.read_parquet(path).astype({"text": object, "label": object})


def _answer_for(content: str, gold: dict[str, bool]) -> str:
    """The gold answer, formatted as each library's prompt asks."""
    if "\n\nReply with JSON" in content:  # thrifty-ml
        text = content.split("\n\nText: ", 1)[1].rsplit("\n\nReply with JSON", 1)[0]
        return json.dumps({"label": gold.get(text, False)})
    text = content.split("\n\nInput:\n", 1)[1].rsplit("\n\nAllowed labels:", 1)[0]
    return "yes" if gold.get(text, False) else "no"


def register_gold_provider(gold: dict[str, bool]) -> None:
    """``gold/replay``: a litellm custom provider replaying gold labels (no network)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm
    from litellm import CustomLLM

    def respond(kwargs):
        content = kwargs["messages"][-1]["content"]
        if "allowed labels" in content and "Input:" not in content:  # a corrective turn
            content = kwargs["messages"][1]["content"]
        return litellm.completion(
            model="gpt-3.5-turbo", messages=kwargs["messages"],
            mock_response=_answer_for(content, gold),
        )

    class GoldReplay(CustomLLM):
        def completion(self, *args, **kwargs):
            return respond(kwargs)

        async def acompletion(self, *args, **kwargs):
            return respond(kwargs)

    litellm.custom_provider_map = [{"provider": "gold", "custom_handler": GoldReplay()}]


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _start_measuring() -> int:
    """RSS now, after resetting the peak (VmHWM) so it covers only what follows."""
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status("VmRSS")


def _peaks() -> dict:
    """Peak RSS since _start_measuring, and the process's lifetime ru_maxrss."""
    return {
        "peak_rss": _status("VmHWM"),
        "maxrss_lifetime": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


# -- children ------------------------------------------------------------------
def child_thrifty_frames(spec: dict) -> dict:
    sys.path.insert(0, str(ROOT))
    import thrifty_frames  # noqa: F401  registers df.thrifty
    from thrifty_frames.backends.embeddings.callable import CallableEmbedder
    from thrifty_frames.backends.llm.doubles import RuleLLMDouble

    df = read_rows(spec["data"])
    gold = dict(zip(df["text"], df["label"] == "pos", strict=True))
    if spec["llm"] == "litellm":
        register_gold_provider(gold)
        llm = "gold/replay"
    else:
        llm = RuleLLMDouble(
            lambda t: "yes" if gold.get(t) else "no", id="double/gold-replay", record=False
        )
    embedder = (
        None
        if spec["embedder"] == "hashing"
        else CallableEmbedder(HashProj(), id=HashProj.id, batch_size=2048)
    )
    base = _start_measuring()
    t0 = time.perf_counter()
    res = df.thrifty.label(
        PROMPT, column="text", llm=llm, embedder=embedder, sample_size=SAMPLE,
        cache_dir=spec["cache_dir"], progress=False, seed=SEED,
        **({"target": spec["target"]} if "target" in spec else {}),
    )
    wall = time.perf_counter() - t0
    rep = res.report
    got = np.asarray(res.labels.fill_null(False).to_numpy(zero_copy_only=False))
    return {
        "wall": wall,
        **_peaks(),
        "base_rss": base,
        "llm_calls": rep.llm_calls,
        "cache_hits": rep.cache_hits,
        "decided_by": rep.decided_by,
        "seconds": rep.seconds,
        "truncated_texts": rep.truncated_texts,
        "embedder": rep.embedder,
        "agreement": float((got == (df["label"] == "pos").to_numpy()).mean()),
    }


def child_throughput(spec: dict) -> dict:
    sys.path.insert(0, str(ROOT))
    from thrifty_frames._stages.embed import embed_texts
    from thrifty_frames.backends.embeddings import resolve_embedder
    from thrifty_frames.backends.embeddings.callable import CallableEmbedder
    from thrifty_frames.embedding_cache import EmbeddingCache

    texts = list(dict.fromkeys(read_rows(spec["data"])["text"]))
    if spec["embedder"] == "hashing":
        emb = resolve_embedder(None)
    else:
        emb = CallableEmbedder(HashProj(), id=HashProj.id, batch_size=2048)

    def bare() -> float:
        t0 = time.perf_counter()
        step = emb.batch_size
        for s in range(0, len(texts), step):
            emb.embed(texts[s : s + step])
        return time.perf_counter() - t0

    def stage(cache_dir) -> float:
        cache = EmbeddingCache(cache_dir, emb.id) if cache_dir else None
        t0 = time.perf_counter()
        embed_texts(texts, emb, cache=cache)
        took = time.perf_counter() - t0
        if cache is not None:
            cache.close()
        return took

    out = {"texts": len(texts)}
    folder = tempfile.mkdtemp(prefix="tf-scale-")
    try:
        rounds = spec.get("rounds", 2)
        bares, stages, colds, warms = [], [], [], []
        for r in range(rounds):  # interleaved, best of each
            bares.append(bare())
            stages.append(stage(None))
            if emb.cacheable:
                cold_dir = os.path.join(folder, f"r{r}")
                colds.append(stage(cold_dir))
                warms.append(stage(cold_dir))
        out["bare"] = min(bares)
        out["stage"] = min(stages)
        if colds:
            out["stage_cold_cache"] = min(colds)
            out["stage_warm_cache"] = min(warms)
            out["cache_bytes"] = sum(
                p.stat().st_size for p in Path(folder, "r0").rglob("*") if p.is_file()
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def child_thrifty_ml(spec: dict) -> dict:
    import thrifty_ml
    from thrifty_ml.embeddings import EmbeddingBackend

    df = read_rows(spec["data"])
    gold = dict(zip(df["text"], df["label"] == "pos", strict=True))
    register_gold_provider(gold)

    class Backend(EmbeddingBackend):
        def __init__(self) -> None:
            self.fn = HashProj()

        @property
        def model_id(self) -> str:
            return HashProj.id

        def embed(self, texts):
            return self.fn(texts)

    base = _start_measuring()
    t0 = time.perf_counter()
    mask = thrifty_ml.ml_filter(
        df, PROMPT, "text", llm="gold/replay", embedding_model=Backend(),
        sample_size=SAMPLE, cache_dir=Path(spec["cache_dir"]), seed=SEED,
    )
    wall = time.perf_counter() - t0
    return {
        "wall": wall,
        **_peaks(),
        "base_rss": base,
        "version": thrifty_ml.__version__,
        "agreement": float((mask == (df["label"] == "pos").to_numpy()).mean()),
    }


CHILDREN = {
    "thrifty_frames": child_thrifty_frames,
    "throughput": child_throughput,
    "thrifty_ml": child_thrifty_ml,
}


def run_child(python: str, kind: str, **spec) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--child", kind, json.dumps(spec)]
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONHASHSEED="0")
    print("  ", kind, spec, flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"child {kind} {spec} failed")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    print("    ->", {k: v for k, v in out.items() if k not in ("seconds", "decided_by")},
          flush=True)
    return out


# -- the report ----------------------------------------------------------------
def mib(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--small", type=int, default=5_000)
    ap.add_argument("--throughput-rows", type=int, default=50_000,
                    help="distinct texts for (c) with hashproj256")
    ap.add_argument("--throughput-rows-hashing", type=int, default=5_000,
                    help="distinct texts for (c) with the slower default embedder")
    ap.add_argument("--thrifty-ml-python", default=None)
    ap.add_argument("--embedders", default="hashing,hashproj256",
                    help="embedders for (a)/(b), comma-separated")
    ap.add_argument("--parts", default="abc,d",
                    help="abc: (a)-(c); d: thrifty-ml side by side; each saves its JSON")
    ap.add_argument("--out", default=str(RESULTS / "scale.md"))
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, spec = args.child
        print(json.dumps(CHILDREN[kind](json.loads(spec))))
        return

    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="tf-scale-"))
    res: dict = {}
    data = {}
    for n in {args.rows, args.small, args.throughput_rows, args.throughput_rows_hashing}:
        data[n] = str(work / f"rows-{n}.parquet")
        load_rows(n).to_parquet(data[n])
    parts = set(args.parts.split(","))
    try:
        for emb in args.embedders.split(",") if "abc" in parts else ():
            cache = str(work / f"cache-{emb}")
            print(f"(a)/(b) {emb}", flush=True)
            res[emb, "cold"] = run_child(py, "thrifty_frames", data=data[args.rows], embedder=emb,
                                         llm="double", cache_dir=cache)
            res[emb, "warm"] = run_child(py, "thrifty_frames", data=data[args.rows], embedder=emb,
                                         llm="double", cache_dir=cache)
            res[emb, "small"] = run_child(py, "thrifty_frames", data=data[args.small],
                                          embedder=emb, llm="double",
                                          cache_dir=str(work / f"small-{emb}"))
        if "abc" in parts:
            print("(c)", flush=True)
            res["tp", "hashing"] = run_child(py, "throughput", data=data[args.throughput_rows_hashing],
                                         embedder="hashing")
            res["tp", "hashproj256"] = run_child(
                py, "throughput", data=data[args.throughput_rows], embedder="hashproj256"
            )
        if args.thrifty_ml_python and "d" in parts:
            print("(d)", flush=True)
            for name, kind, python in (
                ("thrifty-frames", "thrifty_frames", py),
                ("thrifty-ml", "thrifty_ml", args.thrifty_ml_python),
            ):
                cache = str(work / f"d-{name}")
                spec = dict(data=data[args.rows], embedder="hashproj256", llm="litellm",
                            cache_dir=cache)
                res["d", name, "cold"] = run_child(python, kind, **spec)
                res["d", name, "warm"] = run_child(python, kind, **spec)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    cmd = shlex.join(["python", "benchmarks/scale.py", *sys.argv[1:]])
    for part in sorted(parts):
        keys = [k for k in res if (k[0] == "d") == (part == "d")]
        if keys:
            saved = {"command": cmd, "results": {"|".join(k): res[k] for k in keys}}
            if part == "d":
                saved["thrifty_ml_python"] = args.thrifty_ml_python
            out.with_name(f"{out.stem}-{part}.json").write_text(json.dumps(saved, indent=1))
    write_report(args, out)


def write_report(args, out: Path) -> None:
    """Render every saved part next to ``out`` into ``out``."""
    res: dict = {}
    cmds = []
    for part in ("abc", "d"):
        path = out.with_name(f"{out.stem}-{part}.json")
        if path.exists():
            saved = json.loads(path.read_text())
            cmds.append(saved["command"])
            res.update({tuple(k.split("|")): v for k, v in saved["results"].items()})
            if saved.get("thrifty_ml_python"):
                args.thrifty_ml_python = saved["thrifty_ml_python"]
    cmd = "` and `".join(cmds)
    lines = [
        "# Embeddings at scale (IMDB)",
        "",
        f"Commands: `{cmd}` (every measurement in a fresh subprocess; the parts "
        "were run at the same time, on a machine shared with other jobs).",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}. Data: `../shared/data/imdb.parquet`, "
        f"shuffled with seed {SEED}, first {args.rows:,} rows (418 exact duplicate texts "
        f"in the full set). Prompt: \"{PROMPT}\", sample_size={SAMPLE}, default cascade "
        "(target 0.9, delta 0.05), proxy `lr`.",
        "",
        "**LLM stand-in:** the gold labels replayed (a strong LLM's accuracy on IMDB is "
        "about 0.94-0.96). In (a)-(c) it is `RuleLLMDouble` (a test double, no model); in "
        "(d) a litellm custom provider `gold/replay` reached through `litellm` by both "
        "libraries. It answers instantly, so wall times are the libraries' own work: "
        "embedding, training, prediction and caching. With a real LLM, every LLM call "
        "adds its latency and cost.",
        "",
        "**Embedders:** `hashing` is the offline default "
        "(`hashing/word1-2+char2-5/2^20/...`, sparse, `cacheable=False`: it is never "
        "cached). `hashproj256` is a cacheable dense embedder made for this benchmark: "
        "word 1-2 gram hashing (2^20), sublinear tf, L2, then a fixed seeded sparse "
        "random projection to 256 float32 dims, wrapped in `CallableEmbedder(id=...)`.",
        "",
        "## (a) Whole filter, cold then warm cache; (b) peak memory",
        "",
        "| embedder | rows | cache | wall s | LLM calls | label-cache hits | "
        "embed s | ru_maxrss MiB | peak RSS during the call MiB | RSS before the call MiB "
        "| agreement with gold |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for emb in ("hashing", "hashproj256") if ("tp", "hashing") in res else ():
        for key, rows in (("cold", args.rows), ("warm", args.rows), ("small", args.small)):
            r = res[emb, key]
            lines.append(
                f"| {emb} | {rows:,} | {'cold' if key != 'warm' else 'warm'} | "
                f"{r['wall']:.1f} | {r['llm_calls']:,} | {r['cache_hits']:,} | "
                f"{r['seconds'].get('embed', 0):.1f} | {mib(r['maxrss_lifetime'])} | "
                f"{mib(r['peak_rss'])} | {mib(r['base_rss'])} | {r['agreement']:.3f} |"
            )
    lines += ["", "Ratios:", ""]
    for emb in ("hashing", "hashproj256") if ("tp", "hashing") in res else ():
        c, w, s = res[emb, "cold"], res[emb, "warm"], res[emb, "small"]
        grow_big = c["peak_rss"] - c["base_rss"]
        grow_small = s["peak_rss"] - s["base_rss"]
        lines.append(
            f"- {emb}: warm / cold wall time = {w['wall'] / c['wall']:.2f} "
            f"({c['wall']:.1f} s -> {w['wall']:.1f} s); ru_maxrss {args.rows:,} rows / "
            f"{args.small:,} rows = {c['maxrss_lifetime'] / s['maxrss_lifetime']:.2f}, "
            f"peak during the call {c['peak_rss'] / s['peak_rss']:.2f}; growth during "
            f"the call (peak minus RSS before it) {mib(grow_big)} MiB vs "
            f"{mib(grow_small)} MiB = {grow_big / max(grow_small, 1):.2f}x for "
            f"{args.rows / args.small:.0f}x the rows. Long texts cut: "
            f"{c['truncated_texts']:,} rows."
        )
    lines += [
        "",
        "## (c) Framework overhead: embedding stage vs bare embedder",
        "",
        "Same distinct texts; bare = `embedder.embed` over batches of its "
        "`batch_size`; stage = `thrifty_frames._stages.embed.embed_texts` (long-text "
        "policy, de-duplication, batching, and for a cacheable embedder the cache). "
        "Best of 2 interleaved rounds.",
        "",
        "| embedder | texts | bare texts/s | stage texts/s | stage / bare | "
        "stage, cold cache / bare | stage, warm cache / bare | cache on disk MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for emb in ("hashing", "hashproj256") if ("tp", "hashing") in res else ():
        r = res["tp", emb]
        n = r["texts"]
        cold = f"{r['bare'] / r['stage_cold_cache']:.3f}" if "stage_cold_cache" in r else "n/a (not cacheable)"
        warm = f"{r['bare'] / r['stage_warm_cache']:.1f}" if "stage_warm_cache" in r else "n/a"
        disk = mib(r["cache_bytes"]) if "cache_bytes" in r else "-"
        lines.append(
            f"| {emb} | {n:,} | {n / r['bare']:,.0f} | {n / r['stage']:,.0f} | "
            f"{r['bare'] / r['stage']:.3f} | {cold} | {warm} | {disk} |"
        )
    if ("d", "thrifty-ml", "cold") in res:
        lines += [
            "",
            "## (d) thrifty-ml 0.1.2 side by side (same rows, embedder and LLM stand-in)",
            "",
            f"thrifty-ml 0.1.2 from PyPI in its own virtual environment "
            f"(`{args.thrifty_ml_python}`), called as `ml_filter(df, prompt, 'text', "
            f"llm='gold/replay', embedding_model=<EmbeddingBackend wrapping hashproj256>, "
            f"sample_size={SAMPLE}, cache_dir=..., seed={SEED})` with its defaults "
            "otherwise (proxy `lr`, fallback when holdout F1 < 0.9). thrifty-frames: "
            f"`df.thrifty.label(prompt, llm='gold/replay', embedder=hashproj256, "
            f"sample_size={SAMPLE})`, default cascade.",
            "",
            "| library | cache | wall s | ru_maxrss MiB | peak RSS during the call MiB | "
            "RSS before the call MiB | agreement with gold |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in ("thrifty-frames", "thrifty-ml"):
            for key in ("cold", "warm"):
                r = res["d", name, key]
                lines.append(
                    f"| {name} | {key} | {r['wall']:.1f} | {mib(r['maxrss_lifetime'])} | "
                    f"{mib(r['peak_rss'])} | "
                    f"{mib(r['base_rss'])} | {r['agreement']:.3f} |"
                )
        lines += ["", "Ratios (thrifty-frames / thrifty-ml):", ""]
        for key in ("cold", "warm"):
            a, b = res["d", "thrifty-frames", key], res["d", "thrifty-ml", key]
            ga, gb = a["peak_rss"] - a["base_rss"], b["peak_rss"] - b["base_rss"]
            lines.append(
                f"- {key} cache: wall time {a['wall'] / b['wall']:.2f}, ru_maxrss "
                f"{a['maxrss_lifetime'] / b['maxrss_lifetime']:.2f}, peak RSS during the "
                f"call {a['peak_rss'] / b['peak_rss']:.2f}, memory growth during the call "
                f"{ga / max(gb, 1):.2f} ({mib(ga)} vs {mib(gb)} MiB)."
            )
        fr = res["d", "thrifty-frames", "cold"]
        lines.append(
            f"- thrifty-frames in (d) made {fr['llm_calls']:,} LLM calls "
            f"(decided by: {fr['decided_by']})."
        )
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

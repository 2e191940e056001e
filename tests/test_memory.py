"""Memory stays bounded by the chunk, not by the number of rows.

A million synthetic rows are predicted by a proxy; the embedder returns
256-d float32 vectors, so holding every row's vector at once would take
1 GiB (plus the same again at a copy). The ceiling is measured with
tracemalloc, which sees NumPy and Python allocations made during the run; the
input strings (Arrow memory, allocated before tracing starts) are not counted.
The LLM is the rule-based test double, not a language model.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pyarrow as pa
import pytest

from thrifty_frames._core.pipeline import run_pipeline
from thrifty_frames._core.task import make_task
from thrifty_frames.backends.embeddings.callable import CallableEmbedder
from thrifty_frames.backends.llm.doubles import RuleLLMDouble
from thrifty_frames.config import make_options

ROWS = 1_000_000
DIM = 256
ALL_VECTORS = ROWS * DIM * 4  # bytes, if every vector were held at once
#: The ceiling: per-row bookkeeping (codes, labels, scores, provenance: about
#: 80 bytes a row) plus a few chunks of vectors, far below ALL_VECTORS.
CEILING = 200 * 2**20


def _texts(n: int) -> pa.Array:
    ids = np.arange(n).astype(str).astype(object)
    return pa.array(np.char.add("row ", ids.astype(str)).astype(object), type=pa.string())


def _features(texts: list[str]) -> np.ndarray:
    """256 numbers per text; the first says whether the row number is odd."""
    v = np.fromiter((int(t[4:]) for t in texts), dtype=np.int64, count=len(texts))
    out = np.empty((len(texts), DIM), dtype=np.float32)
    out[:, 0] = (v % 2) * 2.0 - 1.0
    out[:, 1:] = ((v[:, None] * np.arange(1, DIM)) % 7) / 7.0
    return out


def _odd_rule(text: str) -> str:
    return "yes" if int(text[4:]) % 2 else "no"


def _traced_peak(fn):
    gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak


@pytest.mark.slow
def test_million_rows_predicted_chunk_by_chunk_under_a_memory_ceiling():
    texts = _texts(ROWS)
    llm = RuleLLMDouble(_odd_rule, id="double/odd")
    embedder = CallableEmbedder(_features, id="synthetic/odd/v1", batch_size=4096)
    opts = make_options(
        llm=llm,
        embedder=embedder,
        sample_size=300,
        target=None,
        cache_dir=False,
        progress=False,
        chunk_size=8192,
    )
    task = make_task("filter", "Is the row number odd?", None)

    result, peak = _traced_peak(lambda: run_pipeline(texts, task, opts, "filter"))

    assert peak < CEILING, f"traced peak {peak / 2**20:.0f} MiB"
    assert peak < ALL_VECTORS / 5
    rep = result.report
    assert rep.rows == ROWS
    assert llm.calls == 300
    assert rep.decided_by["proxy"] == ROWS - 300
    labels = result.labels.to_numpy(zero_copy_only=False)
    assert labels.sum() == ROWS // 2  # every odd row, and only those
    assert labels[1] and not labels[0]


@pytest.mark.slow
def test_million_rows_through_a_fitted_proxy_under_a_memory_ceiling():
    fitted = pytest.importorskip("thrifty_frames.fitted")
    llm = RuleLLMDouble(_odd_rule, id="double/odd")
    embedder = CallableEmbedder(_features, id="synthetic/odd/v1", batch_size=4096)
    proxy = fitted.fit(
        _texts(2_000), "Is the row number odd?", llm=llm, embedder=embedder,
        sample_size=300, target=None, cache_dir=False, progress=False,
    )
    texts = _texts(ROWS)

    labels, peak = _traced_peak(lambda: proxy.predict_arrow(texts))

    assert peak < CEILING, f"traced peak {peak / 2**20:.0f} MiB"
    assert len(labels) == ROWS
    assert labels.to_numpy(zero_copy_only=False).sum() == ROWS // 2


def _half_informative(texts: list[str]) -> np.ndarray:
    """Odd or even is plain on three rows in four; every fourth row says nothing."""
    v = np.fromiter((int(t[4:]) for t in texts), dtype=np.int64, count=len(texts))
    out = np.zeros((len(texts), 2), dtype=np.float32)
    out[:, 0] = np.where((v // 2) % 4 == 0, 0.0, (v % 2) * 2.0 - 1.0)
    out[:, 1] = 1.0
    return out


def test_escalated_rows_reach_the_label_stage_a_chunk_at_a_time(monkeypatch):
    """However many rows the cascade escalates, the label stage builds texts,
    messages and cache keys for one chunk at a time; a cap still stops the
    run after exactly that many calls."""
    import thrifty_frames._stages.label as lab

    sizes: list[int] = []
    real = lab.label_distinct

    def spy(texts, *args, **kwargs):
        sizes.append(len(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(lab, "label_distinct", spy)
    texts = _texts(12_000)
    embedder = CallableEmbedder(_half_informative, id="half/v1")
    opts = dict(embedder=embedder, sample_size=400, cache_dir=False,
                progress=False, chunk_size=1_000)
    task = make_task("filter", "Is the row number odd?", None)

    llm = RuleLLMDouble(_odd_rule, record=False)
    result = run_pipeline(texts, task, make_options(llm=llm, **opts), "filter")
    rep = result.report
    escalated = llm.calls - 400
    # The uninformative quarter of the unsampled rows is escalated, no more.
    assert 2_500 < escalated < 3_100
    assert rep.decided_by["proxy"] == 12_000 - llm.calls
    assert sizes[0] == 400 and max(sizes[1:]) == 1_000 and sum(sizes) == llm.calls
    assert len(sizes) == 1 + -(-escalated // 1_000)
    labels = result.labels.to_numpy(zero_copy_only=False)
    assert labels.sum() == 6_000  # every row right: the kept ones and the asked ones

    sizes.clear()
    capped = RuleLLMDouble(_odd_rule, record=False)
    with pytest.warns(Warning):
        result = run_pipeline(
            texts, task, make_options(llm=capped, max_llm_calls=1_500, **opts), "filter"
        )
    assert capped.calls == 1_500
    assert result.report.over_budget == llm.calls - 1_500
    assert result.report.decided_by["proxy_below_target"] == llm.calls - 1_500


def test_a_cost_cap_stops_every_later_chunk(recwarn):
    """Once max_cost refuses a call, no later chunk asks anything, even an input
    cheap enough to fit what is left: the inputs asked stay a prefix of the
    priority order whatever the chunk size."""

    class PricedDouble(RuleLLMDouble):
        """The rule-based test double, priced by prompt length."""

        def complete(self, request):
            out = super().complete(request)
            out.cost = self.estimate_cost(out.prompt_tokens, 1)
            return out

        def estimate_cost(self, prompt_tokens, completion_tokens):
            return 0.30 if prompt_tokens > 100 else 0.001

    texts = [f"s{i}" if i % 7 == 0 else "long text " * 40 + str(i) for i in range(70)]
    task = make_task("filter", "Is it long?", None)
    asked = {}
    for chunk in (7, 2048):
        llm = PricedDouble(lambda t: "yes" if len(t) > 20 else "no")
        opts = make_options(llm=llm, cache_dir=False, sample_size=10**6, chunk_size=chunk,
                            max_cost=1.0, progress=False)
        result = run_pipeline(pa.array(texts), task, opts, "label")
        asked[chunk] = [texts.index(t) for t in llm.seen]
        assert result.report.cost <= 1.0
        assert result.report.over_budget == 70 - llm.calls
    assert asked[7] == asked[2048] == [0, 1, 2, 3]

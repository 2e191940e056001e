"""The on-disk embedding cache: compact shards, batched lookups, hit counts.

The LLM in the pipeline tests is the rule-based test double (not a language model).
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import thrifty_frames.embedding_cache as ec
from thrifty_frames._stages.embed import embed_texts
from thrifty_frames.backends.embeddings.callable import CallableEmbedder
from thrifty_frames.embedding_cache import EmbeddingCache

from .conftest import sentiment_rule
from .test_pandas_frontend import make_reviews


def _counting(dim: int = 4, id: str = "count/v1") -> CallableEmbedder:
    """A cacheable embedder that records every text it is asked to embed.

    Its first feature is the double's answer, so a proxy on it is viable.
    """
    seen: list[str] = []

    def fn(texts):
        seen.extend(texts)
        codes = np.array(
            [[sentiment_rule(t) == "yes", len(t) % 7] for t in texts], dtype=np.float32
        )
        return np.tile(codes, (1, dim // 2))

    emb = CallableEmbedder(fn, id=id, batch_size=7)
    emb.seen = seen
    return emb


def test_round_trip_dedup_and_compact_files(tmp_path):
    cache = EmbeddingCache(tmp_path, "e/v1")
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert cache.put_many(["a", "b", "a", "c"], X) == 3  # "a" stored once
    assert cache.put_many(["b", "d"], X[:2]) == 1  # "b" was there
    found = cache.get_many(["c", "zz", "a", "d", "a"], dim=3)
    assert sorted(found) == [0, 2, 3, 4]
    assert found[0].tolist() == X[3].tolist()
    assert found[2].tolist() == found[4].tolist() == X[0].tolist()
    assert found[3].tolist() == X[1].tolist()
    assert len(cache) == 4
    assert cache.get_many(["a"], dim=5) == {}  # another width is another key
    # One raw float32 shard of 4 rows and an index; no pickles, no file per vector.
    shards = sorted(p.name for p in cache.directory.glob("*.f32"))
    assert shards == ["d3-00000.f32"]
    assert (cache.directory / shards[0]).stat().st_size == 4 * 3 * 4
    cache.close()


def test_vectors_survive_reopening_and_are_keyed_by_embedder(tmp_path):
    with EmbeddingCache(tmp_path, "e/v1") as cache:
        cache.put_many(["x"], np.ones((1, 2), dtype=np.float32))
    with EmbeddingCache(tmp_path, "e/v1") as cache:
        assert cache.known_dim() == 2
        assert cache.get_many(["x"], dim=2)[0].tolist() == [1.0, 1.0]
    with EmbeddingCache(tmp_path, "e/v2") as other:
        assert other.get_many(["x"], dim=2) == {}
        assert other.known_dim() is None


def test_shards_roll_over_and_a_torn_tail_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(ec, "SHARD_BYTES", 64)
    cache = EmbeddingCache(tmp_path, "e/v1")
    X = np.random.default_rng(0).random((6, 4), dtype=np.float32)
    cache.put_many([f"t{i}" for i in range(4)], X[:4])  # 64 bytes: shard 0 is full
    shard1 = cache.directory / "d4-00001.f32"
    shard1.write_bytes(b"\x01\x02\x03")  # an interrupted writer left a torn row
    cache.put_many(["t4", "t5"], X[4:])
    assert shard1.stat().st_size == 16 + 2 * 16
    found = cache.get_many([f"t{i}" for i in range(6)], dim=4)
    np.testing.assert_array_equal(np.vstack([found[i] for i in range(6)]), X)
    cache.close()


def test_a_shard_cut_short_from_outside_never_serves_wrong_vectors(tmp_path):
    X = np.arange(40, dtype=np.float32).reshape(10, 4)
    texts = [f"t{i}" for i in range(10)]
    with EmbeddingCache(tmp_path, "e/v1") as cache:
        cache.put_many(texts, X)
        shard = cache.directory / "d4-00000.f32"
    with open(shard, "r+b") as fh:  # a bad copy keeps the first 6 rows only
        fh.truncate(6 * 16)
    with EmbeddingCache(tmp_path, "e/v1") as cache:
        assert sorted(cache.get_many(texts, 4)) == list(range(6))  # the rest: misses
        other = np.full((2, 4), -1.0, dtype=np.float32)
        assert cache.put_many(["u0", "u1"], other) == 2
        assert cache.put_many(texts, X) == 4  # the lost rows are stored again
        found = cache.get_many(texts + ["u0", "u1"], 4)
    np.testing.assert_array_equal(np.vstack([found[i] for i in range(10)]), X)
    np.testing.assert_array_equal(np.vstack([found[10], found[11]]), other)


def test_lookups_are_batched(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path, "e/v1")
    texts = [f"text {i}" for i in range(1200)]
    cache.put_many(texts, np.zeros((1200, 2), dtype=np.float32))
    queries: list[str] = []
    cache._db.set_trace_callback(queries.append)
    found = cache.get_many(texts, dim=2)
    assert len(found) == 1200
    assert sum(q.startswith("SELECT key, shard, row") for q in queries) == 3  # 500 a query
    cache.close()


def test_embed_stage_counts_hits_and_embeds_only_misses(tmp_path):
    emb = _counting()
    cache = EmbeddingCache(tmp_path, emb.id)
    texts = [f"review {i}" for i in range(30)]
    X1, st1 = embed_texts(texts[:20], emb, cache=cache)
    assert (st1.cache_hits, st1.embedded, st1.cache_writes) == (0, 20, 20)
    emb.seen.clear()
    X2, st2 = embed_texts(texts, emb, cache=cache)
    assert (st2.cache_hits, st2.embedded, st2.cache_writes) == (20, 10, 10)
    assert emb.seen == texts[20:]
    np.testing.assert_array_equal(X2[:20], X1)
    fresh, _ = embed_texts(texts, _counting())
    np.testing.assert_array_equal(X2, fresh)
    cache.close()


def test_uncacheable_embedders_skip_the_cache(tmp_path):
    emb = _counting()
    emb.cacheable = False
    cache = EmbeddingCache(tmp_path, emb.id)
    _, st = embed_texts(["a", "b"], emb, cache=cache)
    _, st = embed_texts(["a", "b"], emb, cache=cache)
    assert st.cache_hits == 0 and st.embedded == 2 and len(cache) == 0
    cache.close()


def test_identical_texts_are_embedded_once():
    emb = _counting()
    X, st = embed_texts(["same", "other", "same"], emb)
    assert emb.seen == ["same", "other"]
    assert st.embedded == 2
    assert X[0].tolist() == X[2].tolist()


def test_second_pipeline_run_reads_every_vector_from_the_cache(tmp_path, double_llm, caplog):
    df = make_reviews(300)
    emb = _counting(dim=8, id="count/pipeline/v1")
    kw = dict(column="review", embedder=emb, sample_size=100, cache_dir=tmp_path,
              target=None)
    first = df.thrifty.label("Is it positive?", llm=double_llm(), **kw)
    n_first = len(emb.seen)
    assert n_first == 300
    assert (first.report.embedded_texts, first.report.embedding_cache_hits) == (300, 0)
    emb.seen.clear()
    with caplog.at_level("INFO", logger="thrifty_frames"):
        second = df.thrifty.label("Is it positive?", llm=double_llm(), **kw)
    assert emb.seen == []  # every vector came from the cache
    assert second.labels.to_pylist() == first.labels.to_pylist()
    assert second.report.cache_hits == 100  # and every label from the label cache
    assert (second.report.embedded_texts, second.report.embedding_cache_hits) == (0, 300)
    assert "0 (embedding cache hits 300)" in str(second.report)
    assert "embedding cache: 300 of 300 distinct inputs found, 0 written" in caplog.text
    # The store is one index and one shard of 300 rows x 8 float32.
    folder = next((tmp_path / "embeddings").iterdir())
    assert (folder / "d8-00000.f32").stat().st_size == 300 * 8 * 4
    with sqlite3.connect(folder / "index.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == 300


def test_cache_dir_false_keeps_vectors_off_disk(tmp_path, double_llm, monkeypatch):
    monkeypatch.chdir(tmp_path)
    df = make_reviews(120)
    emb = _counting(dim=4, id="count/nodisk/v1")
    df.thrifty.label("Is it positive?", column="review", llm=double_llm(), embedder=emb,
                     sample_size=40, cache_dir=False, target=None)
    df.thrifty.label("Is it positive?", column="review", llm=double_llm(), embedder=emb,
                     sample_size=40, cache_dir=False, target=None)
    assert len(emb.seen) == 240
    assert not list(tmp_path.rglob("*.f32"))


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2)), np.zeros((3, 2))])
def test_put_many_needs_one_row_per_text(tmp_path, bad):
    with EmbeddingCache(tmp_path, "e/v1") as cache, pytest.raises(ValueError):
        cache.put_many(["a", "b"], bad)

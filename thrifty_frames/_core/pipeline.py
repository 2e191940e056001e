"""The shared core: sample -> label -> embed -> train -> evaluate -> predict.

It works on one Arrow string array and knows nothing of pandas or Polars.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._stages import label as lab
from .._stages.embed import EmbedStats, PrecomputedVectors, embed_texts
from .._stages.evaluate import (
    band_quality,
    calibration_of,
    certify,
    clopper_pearson,
    evaluate_at,
    viability_reason,
)
from .._stages.sample import draw_sample
from .._stages.train import predict_proba, train_proxy
from ..backends.embeddings import resolve_embedder
from ..backends.llm import resolve_llm
from ..cache import LabelCache, default_cache_dir
from ..config import Options
from ..exceptions import (
    BudgetExceededWarning,
    InvalidArgumentError,
    LLMCallFailedWarning,
    ProxyNotViableWarning,
    UnparseableAnswerWarning,
)
from .distinct import DistinctTexts
from .progress import make_bar
from .report import Report
from .task import Task

logger = logging.getLogger("thrifty_frames")

# Provenance codes, per row.
DECIDERS = ("llm", "cache", "proxy", "proxy_below_target", "none")
# What asking the LLM about one distinct text came to (see _stages.label).
_OUTCOMES = (lab.OK, lab.CACHED, lab.UNPARSEABLE, lab.FAILED, lab.SKIPPED)


@dataclass
class Result:
    """What the core returns: one entry per input row, in input order.

    Attributes
    ----------
    labels
        ``pa.bool_()`` for a filter (``True`` = yes), ``pa.string()`` for
        classify; null where the text was null or no label could be given.
    decided_by
        ``"llm"``, ``"cache"``, ``"proxy"``, ``"proxy_below_target"`` or
        ``"none"``; null for null texts.
    score
        The proxy's top-class probability for the row: the number the
        cascade's threshold is compared with. Null where no proxy scored the
        row (null texts, runs without a proxy).
    report
        The :class:`Report` of the run.
    """

    labels: pa.Array
    decided_by: pa.Array
    score: pa.Array
    report: Report
    classes: tuple[str, ...] = ()
    proxy: object | None = None
    #: Set by ``fit_only`` runs: the labeled rows behind the proxy (see
    #: :meth:`_Run.run`), for :mod:`thrifty_frames.fitted`.
    fit_data: dict | None = None

    def to_arrow(self) -> pa.Table:
        return pa.table(
            {"label": self.labels, "decided_by": self.decided_by, "score": self.score}
        )


class _Run:
    """State of one pipeline run over distinct texts."""

    def __init__(
        self,
        texts: pa.Array,
        task: Task,
        opts: Options,
        verb: str,
        fit_only: bool = False,
        vectors: pa.Array | pa.ChunkedArray | None = None,
    ) -> None:
        self.task = task
        self.opts = opts
        self.fit_only = fit_only
        self.fit_data: dict | None = None
        # Distinct texts are found without copying the column; a distinct text
        # is its first row, read a chunk at a time (see _texts), so memory does
        # not hold a second copy of the column nor every row as a Python object.
        self.distinct = DistinctTexts(texts)
        self.valid = self.distinct.valid
        self.codes = self.distinct.codes
        n_u = self.distinct.n_distinct
        # Per distinct text: label index into task.classes (-1 none), how decided.
        self.lab = np.full(n_u, -1, dtype=np.int64)
        self.how = np.full(n_u, 4, dtype=np.int8)  # index into DECIDERS
        self.score = np.full(n_u, np.nan, dtype=np.float64)
        # Last labeling outcome per distinct text (index into _OUTCOMES; -1 not
        # asked), an array rather than a dict so it stays small for many rows.
        self.outcome = np.full(n_u, -1, dtype=np.int8)
        self.llm = resolve_llm(opts.llm)
        self.embedder = resolve_embedder(opts.embedder)
        self.vectors = None
        if opts.embeddings is not None:
            self._use_vectors(vectors, opts.embeddings)
        self.vec_cache = None
        if self.vectors is None and self.embedder.cacheable and opts.cache_dir is not False:
            from ..embedding_cache import EmbeddingCache

            root = default_cache_dir() if opts.cache_dir in (None, True) else opts.cache_dir
            self.vec_cache = EmbeddingCache(root, self.embedder.id)
        self.long_rows = 0
        self.cache = LabelCache(opts.cache_dir)
        self.budget = lab.Budget(opts.max_llm_calls, opts.max_cost)
        self.settings = lab.LabelSettings(
            progress=opts.progress, rate=lab.RateLimiter(opts.rpm, opts.tpm)
        )
        self.stats = lab.LabelStats()
        self.embed_stats = EmbedStats()
        self.report = Report(
            verb=verb,
            rows=len(texts),
            null_rows=int((~self.valid).sum()),
            distinct_texts=n_u,
            llm=self.llm.id,
            embedder=(
                self.embedder.id
                if self.vectors is None
                else f"precomputed column {opts.embeddings!r} ({self.vectors.dim} dims)"
            ),
            proxy=opts.proxy,
            target=opts.target,
            delta=opts.delta if opts.target is not None else None,
            metric=opts.metric if opts.target is not None else None,
        )
        self.class_index = {c: i for i, c in enumerate(task.classes)}

    # -- stages ----------------------------------------------------------------
    def _ask(self, codes: np.ndarray, stage: str) -> None:
        """Label distinct texts ``codes`` with the LLM (in the given order).

        The texts are handed to the label stage ``chunk_size`` at a time, so
        the strings, messages and cache keys of only one chunk are in memory
        however many rows are asked about; a cap stops the run within the
        chunk it is reached in and the later chunks make no calls.
        """
        codes = np.asarray(codes, dtype=np.int64)
        if len(codes) == 0:
            return
        step = self.opts.chunk_size
        bar = make_bar(len(codes), self.opts.progress, stage) if len(codes) > step else None
        total = lab.LabelStats()
        try:
            for start in range(0, len(codes), step):
                part = codes[start : start + step]
                labels, outcomes, stats = lab.label_distinct(
                    self._texts(part),
                    self.task,
                    self.llm,
                    self.cache,
                    self.budget,
                    self.settings,
                    desc=stage,
                    bar=bar,
                )
                self.stats.add(stats)
                total.add(stats)
                self.outcome[part] = [_OUTCOMES.index(o) for o in outcomes]
                for c, label, outcome in zip(part, labels, outcomes, strict=True):
                    if label is not None:
                        self.lab[c] = self.class_index[label]
                        self.how[c] = 0 if outcome == lab.OK else 1
                self._time(stage, stats.seconds)
        finally:
            if bar is not None:
                bar.close()
        logger.info(
            "%s: %d distinct inputs, %d LLM calls, %d cache hits, %d unanswered",
            stage,
            len(codes),
            total.llm_calls,
            total.cache_hits,
            total.unparseable + total.failed + total.over_budget,
        )

    def _time(self, stage: str, seconds: float) -> None:
        self.report.seconds[stage] = self.report.seconds.get(stage, 0.0) + seconds

    def _texts(self, codes: np.ndarray) -> list[str]:
        """The distinct texts ``codes`` as Python strings."""
        return self.distinct.strings(codes)

    def _use_vectors(self, vectors, column: str) -> None:
        """Read vectors from the ``embeddings=`` column instead of an embedder."""
        if vectors is None:
            msg = (
                f"embeddings={column!r} names a column of a DataFrame; it works through "
                "the DataFrame accessors (df.thrifty...), not on a bare array of texts."
            )
            raise InvalidArgumentError(msg)
        self.vectors = PrecomputedVectors(vectors, column, needed=self.valid)

    def _embed(self, codes: np.ndarray):
        """Vectors of distinct texts ``codes`` (callers pass one chunk at a time)."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.vectors is not None:
            # Rows sharing a text share a vector: the first such row's is used.
            X, st = self.vectors.rows(self.distinct.first_row[codes])
        else:
            X, st = embed_texts(
                self._texts(codes),
                self.embedder,
                cache=self.vec_cache,
                long_texts=self.opts.long_texts,
            )
            if len(st.long):
                if not hasattr(self, "_row_counts"):
                    self._row_counts = np.bincount(
                        self.codes[self.valid], minlength=self.distinct.n_distinct
                    )
                self.long_rows += int(self._row_counts[codes[st.long]].sum())
        self.embed_stats.add(st)
        self._time("embed", st.seconds)
        logger.debug(
            "embed: %d distinct texts, %d from the embedding cache", st.texts, st.cache_hits
        )
        return X

    def run(self) -> Result:
        opts, rep = self.opts, self.report
        valid_rows = np.flatnonzero(self.valid)
        if len(valid_rows) == 0:
            rep.notes.append("every text is null: nothing was sent to the LLM")
            return self._finish(None)

        t0 = time.perf_counter()
        sample_rows = draw_sample(valid_rows, opts.sample_size, opts.seed)
        self._time("sample", time.perf_counter() - t0)
        rep.sample_rows = len(sample_rows)
        logger.info("sample: %d of %d non-null rows", len(sample_rows), len(valid_rows))

        # Codes index the dictionary, so a presence mask replaces sorting 1M codes.
        present = np.zeros(self.distinct.n_distinct, dtype=bool)
        present[self.codes[valid_rows]] = True
        all_distinct = np.flatnonzero(present)
        if len(sample_rows) >= len(valid_rows):
            # Everything is labeled by the LLM; there is nothing for a proxy to do.
            self._ask(all_distinct, "label")
            rep.viability_note = (
                "sample_size covers every row: all rows were labeled by the LLM, "
                "no proxy was trained"
            )
            return self._finish(None)

        sample_codes = list(dict.fromkeys(self.codes[sample_rows].tolist()))
        self._ask(np.array(sample_codes), "label")

        # Which sampled rows have a usable LLM label, and the train/calibration split.
        y_rows = self.lab[self.codes[sample_rows]]
        ok = y_rows >= 0
        rows_ok = sample_rows[ok]
        y_ok = y_rows[ok]
        if opts.target is not None:
            n_cal = int(round(len(rows_ok) * opts.calibration_share))
            cal_rows, cal_y = rows_ok[:n_cal], y_ok[:n_cal]
            tr_rows, tr_y = rows_ok[n_cal:], y_ok[n_cal:]
        else:
            cal_rows, cal_y = rows_ok[:0], y_ok[:0]
            tr_rows, tr_y = rows_ok, y_ok

        # Embed only the labeled rows first: a proxy that is no good costs no more.
        lab_codes = np.unique(self.codes[rows_ok])
        pos = {int(c): i for i, c in enumerate(lab_codes)}
        # One class in the training share: no proxy can be trained, embed nothing.
        one_class = len(np.unique(tr_y)) < 2
        X_lab = self._embed(lab_codes) if len(lab_codes) and not one_class else None

        model = None
        tr = train_proxy(
            X_lab[[pos[int(c)] for c in self.codes[tr_rows]]] if X_lab is not None else None,
            tr_y,
            opts.proxy,
            opts.seed,
        ) if len(tr_rows) else None
        if tr is not None:
            self._time("train", tr.seconds)
            rep.proxy_params = tr.params
            model = tr.model
        t0 = time.perf_counter()
        threshold = None
        reason = None if model is not None else (tr.reason if tr else "no labeled rows")
        if model is not None and opts.target is not None:
            if len(cal_rows) == 0:
                reason = "no calibration rows to certify a threshold"
            else:
                P = predict_proba(model, X_lab[[pos[int(c)] for c in self.codes[cal_rows]]])
                yes = self.task.classes.index("yes") if self.task.is_filter else None
                self._cal, rep.quality = calibration_of(P, model.classes_, cal_y, yes)
                threshold = certify(self._cal, opts.metric, opts.target, opts.delta)
                rep.threshold = threshold.as_dict()
                rep.achieved = dict(rep.threshold)
                rep.calibration = self._cal
                reason = viability_reason(
                    threshold, rep.quality, tr.majority_rate, self._cal
                )
        elif model is not None and tr.cv_accuracy is not None:
            lo, hi = clopper_pearson(round(tr.cv_accuracy * tr.cv_rows), tr.cv_rows)
            rep.quality = {
                "accuracy": tr.cv_accuracy,
                "low": lo,
                "high": hi,
                "rows": tr.cv_rows,
                "method": "cross-validation",
            }
            if lo <= tr.majority_rate:
                reason = (
                    f"cross-validated accuracy {tr.cv_accuracy:.3f} is not significantly "
                    f"better than always answering the commonest label "
                    f"({tr.majority_rate:.3f})"
                )
        self._time("evaluate", time.perf_counter() - t0)

        if self.fit_only:
            # Fit: stop once the proxy is trained and certified; label nothing else.
            rep.viable = reason is None
            if reason is not None:
                rep.viability_note = f"proxy not viable: {reason}"
            self.fit_data = {
                "texts": self._texts(lab_codes),
                "X": X_lab[[pos[int(c)] for c in self.codes[rows_ok]]]
                if X_lab is not None
                else None,
                "y": y_ok,
                "train_rows": len(tr_rows),
                "calibration_rows": len(cal_rows),
            }
            return self._finish(model)

        present[lab_codes] = False
        rest = np.flatnonzero(present)
        del present
        # A distinct text whose sampled answer was unusable joins the rest.
        rest = rest[self.lab[rest] < 0]
        viable = reason is None
        rep.viable = viable
        if not viable:
            rep.viability_note = f"proxy not viable: {reason}"
            warnings.warn(
                f"thrifty-frames: the proxy is not viable ({reason}); "
                + (
                    "labeling the remaining rows with the LLM (fallback='llm')."
                    if opts.fallback == "llm" or model is None
                    else "keeping its answers anyway (fallback='proxy')."
                ),
                ProxyNotViableWarning,
                stacklevel=4,
            )
            logger.info("proxy not viable: %s", reason)
            if opts.fallback == "llm" or model is None:
                # No proxy answer is kept, so the threshold's figures do not
                # describe the output; the LLM's answers are the output.
                rep.achieved = {}
                self._ask(rest, "fallback")
                return self._finish(model)
            if threshold is not None and getattr(self, "_cal", None) is not None:
                # Say what keeping every proxy answer delivers against the target.
                rep.achieved = evaluate_at(self._cal, threshold.keep_all()).as_dict()
            threshold = None  # fallback='proxy': keep every proxy answer

        # Predict the rest chunk by chunk; keep confident answers.
        t_pred = 0.0
        escalate: list[np.ndarray] = []
        esc_conf: list[np.ndarray] = []
        esc_p: list[np.ndarray] = []
        yes_col = None
        if self.task.is_filter:
            yes_col = int(np.flatnonzero(model.classes_ == self.task.classes.index("yes"))[0])
        for start in range(0, len(rest), opts.chunk_size):
            chunk = rest[start : start + opts.chunk_size]
            X = self._embed(chunk)
            t0 = time.perf_counter()
            P = predict_proba(model, X)
            top = P.argmax(axis=1)
            conf = P.max(axis=1)
            labels = np.asarray(model.classes_, dtype=np.int64)[top]
            self.lab[chunk] = labels
            self.score[chunk] = conf
            p_yes = P[:, yes_col] if yes_col is not None else None
            if threshold is None:
                keep = np.ones(len(chunk), dtype=bool)
            else:
                keep = threshold.keep(conf, p_yes)
            self.how[chunk] = np.where(keep, 2, 3)
            escalate.append(chunk[~keep])
            esc_conf.append(conf[~keep])
            esc_p.append(p_yes[~keep] if p_yes is not None else conf[~keep])
            t_pred += time.perf_counter() - t0
        self._time("predict", t_pred)
        # The labeled rows get proxy scores too, for provenance.
        if X_lab is not None and len(lab_codes):
            self.score[lab_codes] = predict_proba(model, X_lab).max(axis=1)
        if escalate:
            esc = np.concatenate(escalate)
            order = np.argsort(np.concatenate(esc_conf), kind="stable")
            esc = esc[order]  # least confident first, in case a cap stops us
            esc_conf_sorted = np.concatenate(esc_conf)[order]
            esc_p_sorted = np.concatenate(esc_p)[order]
            if len(esc):
                before = self.lab[esc].copy()
                self._ask(esc, "escalate")
                changed = self.how[esc] <= 1
                left = esc[~changed]
                self.lab[left] = before[~changed]
                if len(left):
                    self._below_target(
                        threshold, esc_conf_sorted[~changed], esc_p_sorted[~changed]
                    )
        return self._finish(model)

    def _below_target(self, threshold, conf_left, p_left) -> None:
        """Report what the output delivers when escalated rows kept the proxy."""
        rep = self.report
        note = (
            f"{len(conf_left):,} distinct texts below the threshold kept the proxy's "
            "answer (decided_by='proxy_below_target') because the LLM could not be "
            "asked (cap reached, failed or unparseable)"
        )
        if threshold is not None and getattr(self, "_cal", None) is not None:
            p = p_left if self.task.is_filter else None
            widened = evaluate_at(self._cal, threshold.widened(conf_left, p))
            rep.achieved = widened.as_dict()
            rep.below_target = band_quality(self._cal, threshold, widened)
            note += (
                f"; {widened.metric} now certified >= {widened.certified:.3f} "
                f"(target {widened.target:.2f}, estimate {widened.estimate:.3f})"
            )
        rep.notes.append(note)

    def _warn_unanswered(self) -> None:
        """Tell the user about inputs a cap or failing calls kept from the LLM."""
        rep, opts = self.report, self.opts
        if rep.over_budget:
            caps = []
            if opts.max_llm_calls is not None:
                caps.append(f"max_llm_calls={opts.max_llm_calls}")
            if opts.max_cost is not None:
                caps.append(f"max_cost={opts.max_cost}")
            msg = (
                f"thrifty-frames: {' / '.join(caps) or 'a cap'} was reached after "
                f"{self.budget.calls} LLM calls; {rep.over_budget:,} distinct inputs "
                "were not asked. Their rows keep the proxy's answer where there is one "
                "(decided_by='proxy_below_target') or get no label (decided_by='none'). "
                "Raise the cap and re-run: answers already paid for come from the cache."
            )
            rep.notes.append(msg.removeprefix("thrifty-frames: "))
            warnings.warn(msg, BudgetExceededWarning, stacklevel=_user_stacklevel())
        if rep.failed:
            msg = (
                f"thrifty-frames: {rep.failed:,} distinct inputs got no LLM answer "
                "because their calls failed after retries or the provider refused them; "
                "their rows keep the proxy's answer where there is one, or get no label. "
                "A re-run asks them again."
            )
            rep.notes.append(msg.removeprefix("thrifty-frames: "))
            warnings.warn(msg, LLMCallFailedWarning, stacklevel=_user_stacklevel())
        if self.stats.retries_transient:
            rep.notes.append(
                f"{self.stats.retries_transient} LLM calls were retried after a rate "
                "limit, server error, timeout or dropped connection"
            )

    def _finish(self, model) -> Result:
        rep, st = self.report, self.stats
        rep.llm_calls = st.llm_calls
        rep.cache_hits = st.cache_hits
        rep.unparseable = st.unparseable
        rep.failed = st.failed
        rep.over_budget = st.over_budget
        rep.prompt_tokens = st.prompt_tokens
        rep.completion_tokens = st.completion_tokens
        rep.cost = st.cost
        # An input asked about in two stages (sampled, then escalated) counts once,
        # by its last outcome.
        final = np.bincount(self.outcome[self.outcome >= 0], minlength=len(_OUTCOMES))
        rep.unparseable = int(final[_OUTCOMES.index(lab.UNPARSEABLE)])
        rep.failed = int(final[_OUTCOMES.index(lab.FAILED)])
        rep.over_budget = int(final[_OUTCOMES.index(lab.SKIPPED)])
        self._warn_unanswered()
        # Rows whose text was longer than the embedder's window (cut or pooled).
        rep.truncated_texts = self.long_rows
        # Distinct texts whose vectors were computed, and those read from the
        # embedding cache instead (precomputed vectors count as neither).
        rep.embedded_texts = self.embed_stats.embedded
        rep.embedding_cache_hits = self.embed_stats.cache_hits
        if self.vec_cache is not None:
            es = self.embed_stats
            logger.info(
                "embedding cache: %d of %d distinct inputs found, %d written",
                es.cache_hits,
                es.cache_hits + es.embedded,
                es.cache_writes,
            )
            self.vec_cache.close()
        if rep.unparseable:
            warnings.warn(
                f"thrifty-frames: {rep.unparseable} LLM answers were outside the allowed "
                "labels even after a corrective retry; those inputs were left out of "
                "training and their rows take the proxy's answer where there is one "
                "(decided_by='proxy_below_target') or stay null (decided_by='none').",
                UnparseableAnswerWarning,
                stacklevel=4,
            )
        # Rows with no label at all carry no provenance but "none".
        self.how[self.lab < 0] = 4
        row_how = _per_row(self.how, self.codes, self.valid, -1)
        counts = {d: int((row_how == i).sum()) for i, d in enumerate(DECIDERS)}
        rep.decided_by = counts
        rep.proxy_used = bool(counts["proxy"] + counts["proxy_below_target"])
        logger.info(
            "done: %d rows; decided by llm %d, cache %d, proxy %d; %d LLM calls",
            rep.rows,
            counts["llm"],
            counts["cache"],
            counts["proxy"] + counts["proxy_below_target"],
            rep.llm_calls,
        )
        return _assemble(self, row_how, model)


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside
    thrifty_frames (the user's own line)."""
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(pkg):
        frame, level = frame.f_back, level + 1
    return level


def _per_row(per_text: np.ndarray, codes: np.ndarray, valid: np.ndarray, fill):
    """Spread a per-distinct-text array over rows; ``fill`` where the text is null.

    An all-null column has no distinct texts at all, hence the empty case.
    """
    if len(per_text) == 0:
        return np.full(len(codes), fill, dtype=np.result_type(per_text.dtype, type(fill)))
    return np.where(valid, per_text[np.maximum(codes, 0)], fill)


def _assemble(run: _Run, row_how: np.ndarray, model) -> Result:
    lab_rows = _per_row(run.lab, run.codes, run.valid, -1)
    has = lab_rows >= 0
    if run.task.is_filter:
        yes = run.task.classes.index("yes")
        labels = pa.array(lab_rows == yes, type=pa.bool_(), mask=~has)
    else:
        cls = pa.array(list(run.task.classes), type=pa.string())
        idx = pa.array(np.where(has, lab_rows, 0), type=pa.int32(), mask=~has)
        labels = pc.take(cls, idx)
    how_names = pa.array(list(DECIDERS), type=pa.string())
    how = pc.take(
        how_names, pa.array(np.maximum(row_how, 0), type=pa.int32(), mask=row_how < 0)
    )
    sc = _per_row(run.score, run.codes, run.valid, np.nan)
    score = pa.array(sc, type=pa.float64(), mask=np.isnan(sc))
    return Result(
        labels, how, score, run.report, run.task.classes, model, run.fit_data
    )


def run_pipeline(
    texts: pa.Array,
    task: Task,
    opts: Options,
    verb: str = "label",
    fit_only: bool = False,
    vectors: pa.Array | pa.ChunkedArray | None = None,
) -> Result:
    """Run the whole pipeline over ``texts`` (a pyarrow string array).

    ``fit_only=True`` stops after the proxy is trained and certified: only the
    sample is labeled, and ``Result.fit_data`` holds the labeled rows.
    ``vectors`` is the column named by ``opts.embeddings`` (one vector per
    row, as Arrow), read in place of the embedder.
    """
    if opts.metric != "accuracy" and not task.is_filter:
        msg = (
            f"metric={opts.metric!r} applies to filters (yes/no questions) only; "
            "for classify use metric='accuracy'."
        )
        raise InvalidArgumentError(msg)
    t0 = time.perf_counter()
    run = _Run(texts, task, opts, verb, fit_only, vectors)
    run._time("prepare", time.perf_counter() - t0)
    return run.run()

"""Fit once, predict forever: a trained proxy with its certificate.

``df.thrifty.fit(...)`` pays the LLM for one labeled sample and returns a
:class:`FittedProxy`. It predicts any later frame with zero LLM calls, saves to
a file that cannot run code on load (:mod:`thrifty_frames.proxyfile`), and
re-certifies itself on fresh data with :meth:`FittedProxy.check`, paying the
LLM for ``budget`` rows only.

>>> proxy = df.thrifty.fit("Is this review positive?", column="text")  # doctest: +SKIP
>>> proxy.save("sentiment.proxy")  # doctest: +SKIP
>>> proxy = thrifty_frames.load("sentiment.proxy")  # doctest: +SKIP
>>> new_df.thrifty.predict(proxy)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from scipy.stats import fisher_exact

from . import proxyfile
from ._core.inputs import (
    as_string_array,
    check_fields,
    is_text_type,
    pick_column,
    render_template,
)
from ._core.pipeline import Result, run_pipeline
from ._core.report import Report
from ._core.reports import record
from ._core.task import Task, make_task
from ._stages import label as lab
from ._stages.embed import EmbedStats, embed_texts
from ._stages.evaluate import (
    METRICS,
    Calibration,
    Cascade,
    calibration_of,
    certify,
    clopper_pearson,
    evaluate_at,
)
from ._stages.sample import draw_sample
from ._stages.train import predict_proba, train_proxy
from ._version import __version__
from .backends.embeddings import resolve_embedder
from .backends.embeddings.base import Embedder
from .backends.embeddings.hashing import HashingEmbedder
from .backends.llm import resolve_llm
from .cache import LabelCache, default_cache_dir
from .config import make_options
from .estimator_io import edited_member
from .exceptions import (
    EmptyInputError,
    InvalidArgumentError,
    ProxyFileError,
    ProxyNotViableWarning,
)

__all__ = ["DriftCheck", "FittedProxy", "fit", "fit_texts", "load"]

logger = logging.getLogger(__name__)

#: Distinct texts embedded and scored at a time; bounds memory per batch
#: (the default embedder's n-grams of 2,048 short texts take about 12 MiB).
_CHUNK = 2048
#: One chunk is embedded and scored at a time in the whole process. Polars'
#: streaming engine calls predict_arrow from several threads at once; the
#: work holds the GIL for most of its time anyway, so running the chunks one
#: after another costs little speed and keeps one working set in memory.
_SCORING = threading.Lock()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fingerprint(texts: Sequence[str]) -> str:
    """SHA-256 over the sorted SHA-256 digests of the distinct training texts."""
    digests = sorted({hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts})
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()


def _embedder_spec(
    embedder: Embedder, long_texts: str = "truncate", width: int | None = None
) -> dict[str, Any]:
    """What a file records about the embedder: its id and vector width, how
    long texts were handled, and for the built-in hashing embedder the
    settings that rebuild it."""
    dim = embedder.dim if embedder.dim else width
    spec: dict[str, Any] = {
        "id": embedder.id,
        "dim": None if dim is None else int(dim),
        "long_texts": long_texts,
    }
    if type(embedder) is HashingEmbedder:
        spec["kind"] = "hashing"
        spec["settings"] = {
            "word_ngrams": embedder.word_ngrams,
            "char_ngrams": embedder.char_ngrams,
            "n_features": embedder.n_features,
            "alternate_sign": embedder.alternate_sign,
            "sublinear_tf": embedder.sublinear_tf,
            "lowercase": embedder.lowercase,
        }
    else:
        spec["kind"] = "other"
    return spec


def _rebuild_embedder(spec: dict[str, Any], given: Any) -> Embedder:
    saved_id = spec.get("id")
    if given is not None:
        emb = resolve_embedder(given)
        if emb.id != saved_id:
            msg = (
                f"embedder has id {emb.id!r}, but the proxy was trained on vectors "
                f"of {saved_id!r}; pass that embedder, or refit the proxy."
            )
            raise InvalidArgumentError(msg)
        return emb
    if spec.get("kind") != "hashing":
        msg = (
            f"the proxy was trained on embedder {saved_id!r}, which cannot be rebuilt "
            "from the file; pass the same embedder to thrifty_frames.load(path, "
            "embedder=...)."
        )
        raise ProxyFileError(msg)
    s = dict(spec.get("settings") or {})
    for k in ("word_ngrams", "char_ngrams"):
        if s.get(k) is not None:
            s[k] = tuple(s[k])
    try:
        emb = HashingEmbedder(**s)
    except (TypeError, ValueError) as exc:
        msg = (
            f"the proxy file's embedder settings are invalid ({exc}); it is corrupted."
        )
        raise ProxyFileError(msg) from None
    if emb.id != saved_id:
        msg = (
            f"the proxy was trained on embedder {saved_id!r}, but this version of "
            f"thrifty-frames ({__version__}) builds {emb.id!r} from the same settings, "
            "and its vectors differ; refit the proxy, or install the thrifty-frames "
            "version that saved it."
        )
        raise ProxyFileError(msg)
    return emb


def _frame_texts(frame: Any, column: str | None, task: Task) -> pa.Array:
    """The text per row of ``frame`` (any Arrow-convertible frame, series or list)."""
    if isinstance(frame, (list, tuple)):
        frame = pa.array(frame, type=pa.string())
    if isinstance(frame, pa.RecordBatch):
        frame = pa.Table.from_batches([frame])
    if not isinstance(frame, (pa.Array, pa.ChunkedArray, pa.Table)):
        try:
            frame = pa.table(frame)
        except (TypeError, ValueError, pa.ArrowException):
            try:
                frame = pa.chunked_array(frame)
            except (TypeError, ValueError, pa.ArrowException):
                msg = (
                    "frame must be a pandas or Polars DataFrame or Series, a pyarrow "
                    f"Table or Array, or a list of strings; got {type(frame).__name__}."
                )
                raise InvalidArgumentError(msg) from None
    if isinstance(frame, (pa.Array, pa.ChunkedArray)):
        # The texts themselves (for a template prompt: the rendered template).
        return as_string_array(frame, "texts", str(frame.type))
    columns = frame.column_names
    check_fields(task, columns, column)
    if task.fields:
        return render_template(task.prompt, {f: frame.column(f) for f in task.fields})

    def is_text(name: str) -> bool:
        return is_text_type(frame.schema.field(name).type)

    name = pick_column(columns, column, is_text)
    col = frame.column(name)
    return as_string_array(col, name, str(col.type))


def _as_text_array(texts: Any) -> pa.Array:
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        try:
            texts = pa.array(texts)
        except (TypeError, ValueError, pa.ArrowException):
            texts = pa.chunked_array(texts)
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    if pa.types.is_dictionary(texts.type):
        texts = texts.cast(pa.string())
    if not is_text_type(texts.type):
        msg = f"texts must be an Arrow string array, got type {texts.type}."
        raise InvalidArgumentError(msg)
    if texts.type != pa.string():
        texts = texts.cast(pa.string())
    return texts


@dataclass
class DriftCheck:
    """What :meth:`FittedProxy.check` found on fresh rows.

    Attributes
    ----------
    rows
        Fresh rows drawn uniformly at random and sent to the LLM.
    labeled
        Of those, rows the LLM answered with one of the classes.
    llm_calls, cache_hits, cost
        What labeling them took.
    accuracy, low, high
        The proxy's accuracy against the LLM on the labeled rows, with a 95%
        Clopper-Pearson interval. This is what ``predict`` delivers.
    certified_accuracy, certified_low
        The certificate's accuracy and its lower confidence bound.
    holds
        False when the fresh interval lies wholly below the certified lower
        bound: a significant loss of accuracy.
    loss
        ``certified_accuracy - accuracy`` (positive is worse).
    metric
        The cascade's target metric (``"accuracy"``, ``"precision"`` or
        ``"recall"``); None when the proxy was fitted with ``target=None``.
    cascade_accuracy, cascade_low, cascade_high
        That metric for the cascade's output (rows the cascade would not keep
        sent to the LLM) on the fresh rows, with its 95% interval.
    certified_cascade_lower
        The certificate's lower bound on that metric.
    cascade_holds
        False when ``cascade_high`` is below ``certified_cascade_lower``.
    confident_share, certified_confident_share
        Share of rows whose proxy answer the cascade keeps, fresh and certified.
    confident_low, confident_high
        95% Clopper-Pearson interval of ``confident_share``.
    confident_holds
        False when the fresh rows keep significantly fewer proxy answers than
        the calibration rows did (one-sided Fisher exact test at 0.05): the
        output may still meet its target, but more rows go to the LLM, so the
        cost per row rises. ``extra_llm_per_1000`` says by how much.
    """

    rows: int
    labeled: int
    llm: str
    llm_calls: int
    cache_hits: int
    cost: float
    accuracy: float
    low: float
    high: float
    certified_accuracy: float | None
    certified_low: float | None
    holds: bool
    loss: float | None
    metric: str | None = None
    cascade_accuracy: float | None = None
    cascade_low: float | None = None
    cascade_high: float | None = None
    certified_cascade_lower: float | None = None
    cascade_holds: bool | None = None
    confident_share: float | None = None
    certified_confident_share: float | None = None
    confident_low: float | None = None
    confident_high: float | None = None
    confident_holds: bool | None = None
    notes: list = field(default_factory=list)
    #: Distinct fresh texts and their LLM labels (class indexes), for refit.
    texts: list = field(default_factory=list, repr=False)
    labels: np.ndarray = field(
        default_factory=lambda: np.zeros(0, np.int64), repr=False
    )

    @property
    def extra_llm_per_1000(self) -> float:
        """LLM calls per 1,000 rows beyond what the certificate's kept share implies."""
        if self.confident_share is None or self.certified_confident_share is None:
            return 0.0
        return 1000 * (self.certified_confident_share - self.confident_share)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("texts")
        d.pop("labels")
        d["extra_llm_per_1000"] = self.extra_llm_per_1000
        return d

    def __str__(self) -> str:
        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        lines = [
            ("rows checked", f"{self.rows:,} ({self.labeled:,} labeled by {self.llm})"),
            (
                "LLM calls",
                f"{self.llm_calls:,} (cache hits {self.cache_hits:,}; ${self.cost:.4f})",
            ),
            (
                "accuracy vs LLM",
                f"{self.accuracy:.3f} (95% CI {self.low:.3f}-{self.high:.3f})",
            ),
            (
                "certified",
                f"{f(self.certified_accuracy)} (lower bound {f(self.certified_low)})",
            ),
            ("loss", f(self.loss)),
            ("certificate holds", "yes" if self.holds else "NO: significant loss"),
        ]
        if self.cascade_accuracy is not None:
            lines += [
                (
                    f"cascade {self.metric}",
                    f"{self.cascade_accuracy:.3f} (95% CI {f(self.cascade_low)}-"
                    f"{f(self.cascade_high)}; certified >= "
                    f"{f(self.certified_cascade_lower)}; "
                    + ("holds" if self.cascade_holds else "NOT held")
                    + ")",
                ),
                (
                    "confident rows",
                    f"{f(self.confident_share)} (95% CI {f(self.confident_low)}-"
                    f"{f(self.confident_high)}; certified "
                    f"{f(self.certified_confident_share)}; "
                    + (
                        "holds"
                        if self.confident_holds
                        else "NOT held: significantly fewer rows kept, about "
                        f"{self.extra_llm_per_1000:,.0f} more LLM calls per 1,000 rows"
                    )
                    + ")",
                ),
            ]
        lines += [("note", n) for n in self.notes]
        width = max(len(k) for k, _ in lines)
        body = [f"  {k.ljust(width)}  {v}" for k, v in lines]
        return "\n".join(["thrifty-frames drift check"] + body)


class FittedProxy:
    """A trained proxy with the certificate of what it was trained for.

    Get one from ``df.thrifty.fit(...)``, :func:`fit` or :func:`load`; do not
    build it directly.

    Attributes
    ----------
    task : Task
        The prompt, the task kind and the classes.
    classes : tuple of str
        The allowed labels (``("yes", "no")`` for a yes/no question).
    certificate : dict
        Prompt, classes, task kind, LLM id, embedder id and dimensions,
        library version, cascade threshold, quality with its interval,
        training-set fingerprint and size, creation time (UTC, ISO 8601).
    report : Report
        The report of the run that fitted it.
    model_ : ActiveColumns
        The fitted proxy over the embedder's vectors.
    last_check : DriftCheck or None
        The result of the latest :meth:`check`, used by :meth:`refit`.
    cache_dir : path, None or False
        Where vectors of a cacheable embedder (an API or sentence-transformers
        model; the built-in hashing embedder is never cached) are looked up
        and stored when the proxy embeds texts: None is the default cache
        folder, False turns the cache off. Set from ``fit``'s ``cache_dir``;
        assign it to change it.

    Examples
    --------
    >>> proxy = df.thrifty.fit("Is this review positive?")  # doctest: +SKIP
    >>> proxy.predict(other_df).labels  # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        task: Task,
        embedder: Embedder,
        certificate: dict[str, Any],
        report: Report,
        *,
        training: tuple[Any, np.ndarray] | None = None,
        llm: Any = None,
        cache_dir: Any = None,
    ) -> None:
        self.model_ = model
        self.cache_dir = cache_dir
        self._vec_cache = None  # opened on first use (see _embed)
        self._embedded = EmbedStats()  # running counts, read by predict
        self.task = task
        self.embedder = embedder
        self.certificate = certificate
        self.report = report
        self.last_check: DriftCheck | None = None
        self._training = training
        self._llm = llm
        cols = model.columns_
        self._colmap = None
        if cols is not None:
            self._colmap = np.full(int(model.n_features_in_), -1, dtype=np.int64)
            self._colmap[cols] = np.arange(len(cols))
        self._cascade = _cascade_of(certificate)
        spec = certificate.get("embedder") or {}
        # Files written before the policy was recorded were fitted with "truncate".
        self._long_texts = spec.get("long_texts") or "truncate"
        width = getattr(model, "n_features_in_", None)
        self._width = int(width) if width is not None else spec.get("dim")
        self._yes_col = None
        if task.is_filter:
            cols = np.flatnonzero(
                np.asarray(model.classes_) == task.classes.index("yes")
            )
            self._yes_col = int(cols[0]) if len(cols) else None
        self._classes_arr = pa.array(list(task.classes), type=pa.string())
        self._yes = task.classes.index("yes") if task.is_filter else None

    # -- the public surface ------------------------------------------------------
    @property
    def classes(self) -> tuple[str, ...]:
        return self.task.classes

    @property
    def estimator(self):
        """The fitted scikit-learn or LightGBM estimator, for SHAP or a registry.

        It sees only the embedder's columns listed in :attr:`columns`, in that
        order, and its ``classes_`` are indexes into :attr:`classes`.
        """
        return self.model_.estimator_

    @property
    def columns(self) -> np.ndarray | None:
        """The embedder columns the estimator reads (None: all of them)."""
        return self.model_.columns_

    @property
    def threshold(self) -> dict:
        """The certified cascade: where an answer is kept, and what it delivers.

        Empty when the proxy was fitted with ``target=None``.
        """
        return dict(self.certificate.get("threshold") or {})

    def __repr__(self) -> str:
        q = self.certificate.get("quality") or {}
        acc = f", accuracy={q['accuracy']:.3f}" if q else ""
        return (
            f"FittedProxy(kind={self.task.kind!r}, classes={list(self.classes)!r}, "
            f"proxy={self.certificate.get('proxy', {}).get('name')!r}{acc})"
        )

    def predict_arrow(self, texts: pa.Array) -> pa.Array:
        """Labels for ``texts``, one per element, with no LLM call.

        Elementwise: each element is scored on its own, so any batch of rows,
        in any order or size (empty included), gives the same per-row answer.
        Thread-safe.

        Parameters
        ----------
        texts : pyarrow.Array or pyarrow.ChunkedArray
            Strings (``string``, ``large_string``, ``string_view`` or a
            dictionary of them); nulls give null.

        Returns
        -------
        pyarrow.Array
            ``bool`` for a yes/no proxy (True = yes), ``string`` holding one of
            :attr:`classes` otherwise; same length as ``texts``.
        """
        idx, _, _ = self._score(_as_text_array(texts))
        return self._labels(idx)

    def predict_arrow_provenance(self, texts: pa.Array) -> pa.StructArray:
        """Like :meth:`predict_arrow`, with the proxy's score and ``decided_by``.

        Returns
        -------
        pyarrow.StructArray
            Fields ``label`` (as :meth:`predict_arrow`), ``decided_by``
            (``"proxy"`` where the certified cascade keeps the proxy's answer,
            ``"proxy_below_target"`` where it would ask the LLM) and ``score``
            (the top-class probability); a null text gives nulls in every field.
        """
        idx, conf, keep = self._score(_as_text_array(texts))
        label, how, score = self._columns(idx, conf, keep)
        valid = pa.array(idx >= 0)
        return pa.StructArray.from_arrays(
            [label, how, score],
            names=["label", "decided_by", "score"],
            mask=pc.invert(valid),
        )

    def predict(self, frame: Any, column: str | None = None) -> Result:
        """Apply the proxy to ``frame`` with zero LLM calls.

        Parameters
        ----------
        frame
            A pandas or Polars DataFrame or Series, a pyarrow Table or Array,
            or a list of strings. A series, array or list holds the texts
            themselves (for a template prompt: the rendered template).
        column : str, optional
            The text column; may be left out when the frame has one text
            column, and must be when the prompt is a template.

        Returns
        -------
        Result
            Labels, ``decided_by``, scores and a report holding the
            certificate's quality and threshold.
        """
        texts = _frame_texts(frame, column, self.task)
        counts: dict = {}
        before = dataclasses.replace(self._embedded)
        idx, conf, keep = self._score(texts, counts=counts)
        label, how, score = self._columns(idx, conf, keep)
        cert = self.certificate
        report = Report(
            verb="predict",
            rows=len(texts),
            null_rows=texts.null_count,
            llm=cert.get("llm", ""),
            embedder=self.embedder.id,
            proxy=cert.get("proxy", {}).get("name", ""),
            proxy_params=dict(cert.get("proxy", {}).get("params", {})),
            viable=cert.get("viable"),
            quality=dict(cert.get("quality") or {}),
            target=cert.get("target"),
            delta=cert.get("delta"),
            threshold=dict(cert.get("threshold") or {}),
        )
        confident = int(((idx >= 0) & keep).sum())
        labeled = int((idx >= 0).sum())
        report.decided_by = {
            "llm": 0,
            "cache": 0,
            "proxy": confident,
            "proxy_below_target": labeled - confident,
            "none": 0,
        }
        report.proxy_used = labeled > 0
        report.truncated_texts = counts.get("long_rows", 0)
        report.distinct_texts = counts.get("distinct", 0)
        report.embedded_texts = self._embedded.embedded - before.embedded
        report.embedding_cache_hits = self._embedded.cache_hits - before.cache_hits
        report.notes.append(
            "applied a fitted proxy: no LLM calls; rows the certified cascade "
            "would send to the LLM are marked proxy_below_target"
        )
        record(report)
        return Result(label, how, score, report, self.classes, self.model_)

    def save(
        self, path: str | os.PathLike, *, folder: bool = False, training: bool = True
    ) -> Path:
        """Write the proxy and its certificate to ``path``.

        Parameters
        ----------
        path : str or path-like
            A file (a zip archive), or a folder with ``folder=True``.
        folder : bool, default False
            Write a folder of plain members instead of one file.
        training : bool, default True
            Keep the embedded vectors and LLM labels of the training rows, so
            that :meth:`refit` can build on them after loading. The vectors are
            hashed n-gram counts, not the texts, but short texts can be guessed
            back from them: pass False when the training texts are sensitive.

        Returns
        -------
        pathlib.Path
            Where it was written.
        """
        est_meta, est_arrays, est_texts = proxyfile.dump_estimator(self.model_)
        arrays = {f"est_{k}": v for k, v in est_arrays.items()}
        if training and self._training is not None:
            arrays.update(_training_arrays(*self._training))
        meta = {
            "certificate": self.certificate,
            "estimator": est_meta,
            "report": _report_dict(self.report),
        }
        return proxyfile.write_members(path, meta, arrays, est_texts, folder=folder)

    def check(
        self,
        frame: Any,
        budget: int = 200,
        *,
        column: str | None = None,
        llm: Any = None,
        seed: int = 0,
        cache_dir: Any = None,
        max_cost: float | None = None,
        progress: bool | None = None,
    ) -> DriftCheck:
        """Label ``budget`` fresh rows with the LLM and test the certificate on them.

        Rows are drawn uniformly at random (seeded) from the non-null rows of
        ``frame``, labeled through the label cache (cached answers cost
        nothing) and compared with the proxy's answers.

        Parameters
        ----------
        frame
            Fresh data, as for :meth:`predict`.
        budget : int, default 200
            Rows to send to the LLM (each distinct text is asked once).
        llm
            The LLM to ask, as for ``Options.llm``. Defaults to the one the
            proxy was fitted with in this process; required after :func:`load`.
        seed, cache_dir, max_cost, progress
            As in :class:`~thrifty_frames.config.Options`.

        Returns
        -------
        DriftCheck
            Accuracy with its interval, whether the certificate holds, and the
            loss; also kept as :attr:`last_check` for :meth:`refit`.
        """
        opts = make_options(seed=seed, cache_dir=cache_dir, max_cost=max_cost)
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            msg = f"budget must be a number of rows >= 1, got {budget!r}."
            raise InvalidArgumentError(msg)
        if llm is None and self._llm is None:
            msg = (
                "llm is required to check a loaded proxy; pass the LLM it was "
                f"certified against (id {self.certificate.get('llm')!r}) as llm=...."
            )
            raise InvalidArgumentError(msg)
        backend = resolve_llm(llm if llm is not None else self._llm)
        texts = _frame_texts(frame, column, self.task)
        valid = np.flatnonzero(texts.is_valid().to_numpy(zero_copy_only=False))
        if len(valid) == 0:
            raise EmptyInputError("frame has no non-null text to check the proxy on.")
        rows = draw_sample(valid, budget, opts.seed)
        row_texts = texts.take(pa.array(rows)).to_pylist()
        distinct = list(dict.fromkeys(row_texts))
        labels, _, stats = lab.label_distinct(
            distinct,
            self.task,
            backend,
            LabelCache(opts.cache_dir),
            lab.Budget(None, opts.max_cost),
            lab.LabelSettings(progress=progress),
            desc="check",
        )
        index = {c: i for i, c in enumerate(self.task.classes)}
        y_of = {
            t: (index[a] if a is not None else -1)
            for t, a in zip(distinct, labels, strict=True)
        }
        y = np.array([y_of[t] for t in row_texts], dtype=np.int64)
        ok = y >= 0
        pred, conf, p_yes = self._score(
            pa.array(row_texts, type=pa.string()), with_p_yes=True
        )
        p_yes = p_yes[ok] if p_yes is not None else None
        result = self._compare(pred[ok], conf[ok], p_yes, y[ok], backend.id, stats)
        result.rows = len(rows)
        result.texts = [t for t in distinct if y_of[t] >= 0]
        result.labels = np.array([y_of[t] for t in result.texts], dtype=np.int64)
        if backend.id != self.certificate.get("llm"):
            result.notes.append(
                f"checked against LLM {backend.id!r}, but the certificate was made "
                f"with {self.certificate.get('llm')!r}"
            )
        logger.info(
            "check: %d rows, %d LLM calls, accuracy %.3f, certificate %s",
            len(rows),
            stats.llm_calls,
            result.accuracy,
            "holds" if result.holds else "does not hold",
        )
        self.last_check = result
        return result

    def refit(
        self,
        check: DriftCheck | None = None,
        *,
        calibration_share: float = 0.5,
        seed: int = 0,
    ) -> FittedProxy:
        """A new proxy trained on the old rows plus a check's fresh LLM labels.

        The fresh rows are split at random: ``calibration_share`` of them
        certify the new proxy (quality and threshold, so the certificate speaks
        for the new data), the rest join the stored training rows. No LLM call
        is made. The proxy it is called on is left unchanged.

        Parameters
        ----------
        check : DriftCheck, optional
            Defaults to :attr:`last_check`.
        calibration_share : float, default 0.5
            Share of the fresh rows held out to certify the new proxy.
        seed : int, default 0
            Seeds the split and the training.

        Returns
        -------
        FittedProxy
        """
        check = check if check is not None else self.last_check
        if check is None:
            msg = "check is required: run proxy.check(frame, budget=k) first."
            raise InvalidArgumentError(msg)
        opts = make_options(seed=seed, calibration_share=calibration_share)
        n = len(check.texts)
        if n < 2:
            msg = f"refit needs at least 2 fresh labeled rows, the check has {n}."
            raise InvalidArgumentError(msg)
        order = np.random.default_rng(opts.seed).permutation(n)
        n_cal = int(round(n * opts.calibration_share))
        cal, new = order[:n_cal], order[n_cal:]
        X_fresh, _ = self._embed(check.texts)
        y_fresh = check.labels
        parts, ys = [], []
        if self._training is not None:
            parts.append(self._training[0])
            ys.append(self._training[1])
        parts.append(X_fresh[new])
        ys.append(y_fresh[new])
        X_tr = (
            sp.vstack(parts, format="csr") if sp.issparse(X_fresh) else np.vstack(parts)
        )
        y_tr = np.concatenate(ys).astype(np.int64)
        cert = copy.deepcopy(self.certificate)
        tr = train_proxy(X_tr, y_tr, cert["proxy"]["name"], opts.seed)
        if tr.model is None:
            msg = f"refit could not train a proxy: {tr.reason}; check more rows."
            raise InvalidArgumentError(msg)
        P = predict_proba(tr.model, X_fresh[cal])
        yes = self.task.classes.index("yes") if self.task.is_filter else None
        calib, quality = calibration_of(P, tr.model.classes_, y_fresh[cal], yes)
        quality["method"] = "fresh calibration rows (refit)"
        cert["quality"] = quality
        if cert.get("target") is not None:
            metric = (cert.get("threshold") or {}).get("metric", "accuracy")
            cascade = certify(calib, metric, cert["target"], cert["delta"])
            cert["threshold"] = cascade.as_dict()
            cert["viable"] = bool(cascade.keeps_any)
        else:
            cert["viable"] = True
        cert["proxy"]["params"] = tr.params
        old = cert["training"]
        fresh_fp = _fingerprint([check.texts[i] for i in new])
        cert["training"] = {
            "fingerprint": hashlib.sha256(
                f"{old['fingerprint']}\n{fresh_fp}".encode("ascii")
            ).hexdigest(),
            "rows": len(y_tr) + len(cal),
            "train_rows": len(y_tr),
            "calibration_rows": len(cal),
            "refit_of": old["fingerprint"],
            "refits": int(old.get("refits", 0)) + 1,
        }
        cert["library_version"] = __version__
        cert["created_at"] = _now()
        report = Report(
            verb="refit",
            rows=n,
            distinct_texts=n,
            sample_rows=n,
            llm=cert.get("llm", ""),
            embedder=self.embedder.id,
            proxy=cert["proxy"]["name"],
            proxy_params=tr.params,
            viable=cert["viable"],
            quality=dict(cert["quality"]),
            target=cert.get("target"),
            delta=cert.get("delta"),
            threshold=dict(cert.get("threshold") or {}),
        )
        report.notes.append(
            f"refit on {len(new)} fresh rows plus {len(y_tr) - len(new)} stored "
            f"training rows; certified on {len(cal)} fresh rows"
        )
        return FittedProxy(
            tr.model,
            self.task,
            self.embedder,
            json.loads(json.dumps(cert)),
            report,
            training=(X_tr, y_tr),
            llm=self._llm,
            cache_dir=self.cache_dir,
        )

    # -- scoring -----------------------------------------------------------------
    def _score(
        self, texts: pa.Array, *, with_p_yes: bool = False, counts: dict | None = None
    ):
        """Per row: class index into :attr:`classes` (-1 for null), confidence,
        and whether the certified cascade keeps the answer (or, with
        ``with_p_yes``, the probability of "yes" for a filter, else None).
        ``counts``, when given, receives ``long_rows``: rows whose text was
        longer than the embedder's window (cut or pooled)."""
        n = len(texts)
        idx = np.full(n, -1, dtype=np.int64)
        conf = np.full(n, np.nan, dtype=np.float64)
        third = np.zeros(n, dtype=np.float64 if with_p_yes else bool)
        if n == 0 or texts.null_count == n:
            return idx, conf, (None if with_p_yes and self._yes_col is None else third)
        # Score each distinct text once; rows then take their text's answer.
        enc = pc.dictionary_encode(texts)
        uniq = enc.dictionary
        u_idx = np.empty(len(uniq), dtype=np.int64)
        u_conf = np.empty(len(uniq), dtype=np.float64)
        u_third = np.empty(len(uniq), dtype=third.dtype)
        u_long = np.zeros(len(uniq), dtype=bool)
        classes = np.asarray(self.model_.classes_, dtype=np.int64)
        for start in range(0, len(uniq), _CHUNK):
            batch = uniq.slice(start, _CHUNK).to_pylist()
            with _SCORING:
                X, long = self._embed(batch)
                P = predict_proba(self.model_.estimator_, self._cut_columns(X))
                del X
            u_long[start + long] = True
            stop = start + len(batch)
            top = P.max(axis=1)
            p_yes = P[:, self._yes_col] if self._yes_col is not None else None
            u_idx[start:stop] = classes[P.argmax(axis=1)]
            u_conf[start:stop] = top
            if with_p_yes:
                u_third[start:stop] = p_yes if p_yes is not None else np.nan
            elif self._cascade is None:
                u_third[start:stop] = True
            else:
                u_third[start:stop] = self._cascade.keep(top, p_yes)
        valid = enc.indices.is_valid().to_numpy(zero_copy_only=False)
        codes = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)[valid]
        idx[valid] = u_idx[codes]
        conf[valid] = u_conf[codes]
        third[valid] = u_third[codes]
        if counts is not None:
            counts["long_rows"] = int(u_long[codes].sum())
            counts["distinct"] = len(uniq)
        if with_p_yes and self._yes_col is None:
            return idx, conf, None
        return idx, conf, third

    def _cache(self):
        """The embedding cache for this proxy's embedder, or None."""
        if not self.embedder.cacheable or self.cache_dir is False:
            return None
        if self._vec_cache is None:
            from .embedding_cache import EmbeddingCache

            root = (
                default_cache_dir()
                if self.cache_dir in (None, True)
                else self.cache_dir
            )
            self._vec_cache = EmbeddingCache(root, self.embedder.id)
        return self._vec_cache

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_vec_cache"] = None  # an open SQLite connection does not travel
        return state

    def _embed(self, texts: list[str]):
        """Vectors of ``texts`` as the proxy was fitted: the same embedder, the
        same long-text policy, and the width the proxy was trained on; also the
        positions of the texts longer than the embedder's window."""
        X, st = embed_texts(
            texts, self.embedder, cache=self._cache(), long_texts=self._long_texts
        )
        self._embedded.add(st)
        if self._width is not None and X.shape[1] != self._width:
            msg = (
                f"embedder {self.embedder.id!r} gives {X.shape[1]}-dimensional vectors "
                f"but the proxy was trained on {self._width}; pass the embedder it was "
                "fitted with (tf.load(path, embedder=...))."
            )
            raise InvalidArgumentError(msg)
        return X, np.asarray(st.long, dtype=np.int64)

    def _cut_columns(self, X):
        """Keep the active columns, in ``columns_`` order (as ``ActiveColumns``)."""
        if self._colmap is None:
            return X
        X = sp.csr_matrix(X)
        if X.shape[1] != len(self._colmap):
            msg = (
                f"the embedder gave {X.shape[1]} columns, the proxy was trained on "
                f"{len(self._colmap)}; pass the embedder it was trained with."
            )
            raise InvalidArgumentError(msg)
        new = self._colmap[X.indices]
        keep = new >= 0
        row = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        counts = np.bincount(row[keep], minlength=X.shape[0])
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return sp.csr_matrix(
            (X.data[keep], new[keep], indptr), shape=(X.shape[0], len(self.columns))
        )

    def _labels(self, idx: np.ndarray) -> pa.Array:
        has = idx >= 0
        if self._yes is not None:
            return pa.array(idx == self._yes, type=pa.bool_(), mask=~has)
        take = pa.array(np.where(has, idx, 0), type=pa.int32(), mask=~has)
        return pc.take(self._classes_arr, take)

    def _columns(self, idx: np.ndarray, conf: np.ndarray, keep: np.ndarray):
        has = idx >= 0
        names = pa.array(["proxy", "proxy_below_target"], type=pa.string())
        below = np.where(keep, 0, 1).astype(np.int32)
        how = pc.take(names, pa.array(below, type=pa.int32(), mask=~has))
        score = pa.array(conf, type=pa.float64(), mask=~has)
        return self._labels(idx), how, score

    def _compare(self, pred, conf, p_yes, y, llm_id: str, stats) -> DriftCheck:
        cert = self.certificate
        q = cert.get("quality") or {}
        n = len(y)
        correct = pred == y
        k = int(correct.sum())
        lo, hi = clopper_pearson(k, n)
        acc = k / n if n else float("nan")
        c_low = q.get("low")
        out = DriftCheck(
            rows=n,
            labeled=n,
            llm=llm_id,
            llm_calls=stats.llm_calls,
            cache_hits=stats.cache_hits,
            cost=stats.cost,
            accuracy=acc,
            low=lo,
            high=hi,
            certified_accuracy=q.get("accuracy"),
            certified_low=c_low,
            holds=bool(n == 0 or c_low is None or hi >= c_low),
            loss=(q["accuracy"] - acc) if q and n else None,
        )
        if n == 0:
            out.notes.append("the LLM answered none of the drawn rows: nothing to test")
        if self._cascade is not None and n:
            # The certified cascade's own metric, measured on the fresh rows.
            cal = Calibration(conf, correct)
            if self._yes_col is not None:
                cal.p_yes = p_yes
                cal.positive = y == self.task.classes.index("yes")
            fresh = evaluate_at(cal, _copy_cascade(self._cascade))
            certified = self.certificate["threshold"].get("certified")
            out.metric = fresh.metric
            out.cascade_accuracy = fresh.estimate
            out.cascade_low, out.cascade_high = fresh.low, fresh.high
            out.certified_cascade_lower = certified
            out.cascade_holds = bool(certified is None or fresh.high >= certified)
            out.confident_share = fresh.kept_share
            out.certified_confident_share = self._cascade.kept_share
            kept = int(round(fresh.kept_share * n))
            out.confident_low, out.confident_high = clopper_pearson(kept, n)
            m = int(self._cascade.calibration_rows)
            m_kept = int(round(self._cascade.kept_share * m))
            out.confident_holds = True
            if m:
                # One-sided: do the fresh rows keep fewer answers than calibration?
                p = fisher_exact([[kept, n - kept], [m_kept, m - m_kept]], "less")[1]
                out.confident_holds = bool(p >= 0.05)
        return out


def _cascade_of(cert: dict) -> Cascade | None:
    """The certified cascade, rebuilt from the certificate's threshold."""
    th = cert.get("threshold") or {}
    if cert.get("target") is None or not th:
        return None
    cas = Cascade(
        th.get("metric", "accuracy"),
        float(cert["target"]),
        float(cert.get("delta") or 0.05),
        int(th.get("calibration_rows", 0)),
    )
    cas.conf_at = float(th.get("conf_at", th.get("value", np.inf)))
    cas.yes_at = float(th.get("yes_at", np.inf))
    cas.no_below = float(th.get("no_below", 0.0))
    cas.kept_share = float(th.get("kept_share", 0.0))
    return cas


def _copy_cascade(cas: Cascade) -> Cascade:
    out = Cascade(cas.metric, cas.target, cas.delta, cas.calibration_rows)
    out.conf_at, out.yes_at, out.no_below = cas.conf_at, cas.yes_at, cas.no_below
    return out


# -- building, saving, loading -----------------------------------------------------
def _report_dict(report: Report) -> dict:
    d = report.to_dict()
    d.pop("llm_labeled_rows", None)
    d.pop("proxy_rows", None)
    return d


def _training_arrays(X, y: np.ndarray) -> dict[str, np.ndarray]:
    out = {"train_y": np.asarray(y, dtype=np.int64)}
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        out["train_data"] = X.data
        out["train_indices"] = X.indices.astype(np.int64)
        out["train_indptr"] = X.indptr.astype(np.int64)
        out["train_shape"] = np.array(X.shape, dtype=np.int64)
    else:
        out["train_dense"] = np.asarray(X)
    return out


def _training_from(
    arrays: dict[str, np.ndarray], path: Any = "", width: int = 0, n_classes: int = 0
):
    """The stored training rows (vectors and class indexes), checked."""
    if "train_y" not in arrays:
        return None
    y = arrays["train_y"]
    if (
        y.ndim != 1
        or y.dtype.kind not in "iu"
        or (len(y) and not (0 <= y.min() and y.max() < n_classes))
    ):
        raise edited_member(
            path, "train_y.npy", "is not one class index per training row"
        )
    if "train_dense" in arrays:
        X = arrays["train_dense"]
        if X.ndim != 2 or X.shape != (len(y), width) or not np.isfinite(X).all():
            raise edited_member(
                path, "train_dense.npy", "does not hold one finite row per label"
            )
        return X, y
    for name in ("train_shape", "train_data", "train_indices", "train_indptr"):
        if name not in arrays:
            raise edited_member(path, f"{name}.npy", "is missing")
    shape = arrays["train_shape"]
    if (
        shape.shape != (2,)
        or shape.dtype.kind not in "iu"
        or tuple(shape)
        != (
            len(y),
            width,
        )
    ):
        raise edited_member(path, "train_shape.npy", f"is not ({len(y)}, {width})")
    data = arrays["train_data"]
    if data.ndim != 1 or data.dtype.kind != "f" or not np.isfinite(data).all():
        raise edited_member(
            path, "train_data.npy", "is not one finite number per entry"
        )
    try:
        X = sp.csr_matrix(
            (data, arrays["train_indices"], arrays["train_indptr"]),
            shape=(len(y), width),
        )
        X.check_format(full_check=True)
    except (ValueError, TypeError) as exc:
        raise edited_member(
            path, "train_indices.npy", f"does not fit the rows ({exc})"
        ) from None
    return X, y


def _number(value: Any, lo: float, hi: float, inf_ok: bool = False) -> bool:
    """A real number (not a bool) in [lo, hi], or +inf where allowed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if inf_ok and value == float("inf"):
        return True
    return bool(np.isfinite(value)) and lo <= value <= hi


def _check_certificate(path: Any, cert: dict) -> Task:
    """The task the certificate describes, after checking every field the
    proxy reads; an inconsistent field is named in a ProxyFileError."""
    member = "certificate.json"
    t = cert.get("task")
    if not isinstance(t, dict) or t.get("kind") not in ("filter", "classify"):
        raise edited_member(path, member, "has no valid task (kind filter or classify)")
    classes = t.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise edited_member(
            path, member, "has task classes that are not a list of labels"
        )
    try:
        task = make_task(
            t["kind"], cert.get("prompt"), None if t["kind"] == "filter" else classes
        )
    except (InvalidArgumentError, TypeError, ValueError) as exc:
        raise edited_member(
            path, member, f"has an invalid task ({type(exc).__name__})"
        ) from None
    if list(task.classes) != classes or list(task.fields) != list(
        t.get("fields") or []
    ):
        raise edited_member(
            path, member, "has task classes or fields that do not match it"
        )
    spec = cert.get("embedder")
    if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
        raise edited_member(path, member, "has no valid embedder")
    dim = spec.get("dim")
    if dim is not None and (
        isinstance(dim, bool) or not isinstance(dim, int) or dim < 1
    ):
        raise edited_member(
            path, member, "has an embedder width that is not a positive integer"
        )
    if spec.get("long_texts", "truncate") not in ("truncate", "pool"):
        raise edited_member(path, member, "has an unknown long-text policy")
    settings = spec.get("settings")
    if spec.get("kind") == "hashing" and not isinstance(settings, dict):
        raise edited_member(path, member, "has no hashing embedder settings")
    for k in ("word_ngrams", "char_ngrams"):
        v = (settings or {}).get(k)
        if v is not None and not (
            isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v)
        ):
            raise edited_member(
                path, member, f"has embedder setting {k} that is not two integers"
            )
    target, delta = cert.get("target"), cert.get("delta")
    if target is not None and not _number(target, 0.0, 1.0):
        raise edited_member(
            path, member, "has a target that is not a number from 0 to 1"
        )
    if delta is not None and not _number(delta, 0.0, 1.0):
        raise edited_member(
            path, member, "has a delta that is not a number from 0 to 1"
        )
    th = cert.get("threshold")
    if th is None:
        th = {}
    if not isinstance(th, dict):
        raise edited_member(path, member, "has a threshold that is not a mapping")
    if th and th.get("metric", "accuracy") not in METRICS:
        raise edited_member(path, member, "has an unknown threshold metric")
    for k, inf_ok in (
        ("conf_at", True),
        ("value", True),
        ("yes_at", True),
        ("no_below", False),
        ("kept_share", False),
    ):
        if k in th and not _number(th[k], 0.0, 1.0, inf_ok):
            raise edited_member(path, member, f"has threshold {k} outside 0 to 1")
    rows = th.get("calibration_rows", 0)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise edited_member(
            path, member, "has a calibration row count that is not an integer"
        )
    q = cert.get("quality")
    if q is None:
        q = {}
    if not isinstance(q, dict) or not all(
        _number(q[k], 0.0, 1.0) for k in ("accuracy", "low", "high") if k in q
    ):
        raise edited_member(
            path, member, "has a quality estimate that is not numbers from 0 to 1"
        )
    if q and not all(k in q for k in ("accuracy", "low", "high", "rows")):
        raise edited_member(path, member, "has an incomplete quality estimate")
    return task


def _check_report(path: Any, data: dict) -> Report:
    """The stored report, every field of the type :class:`Report` declares."""
    out, defaults = {}, Report()
    for f in dataclasses.fields(Report):
        if f.name not in data:
            continue
        v = data[f.name]
        default = getattr(defaults, f.name)
        if f.name == "calibration":
            v = None  # stored as plain lists; only the fitting run plots it
        elif isinstance(default, bool) or default is None:
            pass
        elif isinstance(default, int) and (
            isinstance(v, bool) or not isinstance(v, int)
        ):
            raise edited_member(
                path, "report.json", f"has {f.name} that is not an integer"
            )
        elif isinstance(default, float) and (
            isinstance(v, bool) or not isinstance(v, (int, float))
        ):
            raise edited_member(
                path, "report.json", f"has {f.name} that is not a number"
            )
        elif isinstance(default, (dict, list, str)) and not isinstance(
            v, type(default)
        ):
            raise edited_member(
                path,
                "report.json",
                f"has {f.name} that is not a {type(default).__name__}",
            )
        out[f.name] = v
    return Report(**out)


def fit_texts(texts: pa.Array, task: Task, opts, verb: str = "fit") -> FittedProxy:
    """Label a sample of ``texts``, train and certify a proxy, and return it.

    The shared step under every front end's ``fit`` verb: ``texts`` is the
    pyarrow string array a front end built for ``task``; ``opts`` the
    validated :class:`~thrifty_frames.config.Options`.
    """
    if len(texts) == 0:
        raise EmptyInputError("there are no rows to fit a proxy on (0 rows).")
    if getattr(opts, "embeddings", None) is not None:
        # TODO: a proxy fitted on a precomputed vector column would need that
        # column at predict time too; predict_arrow takes texts only, so fit
        # refuses embeddings= until predict accepts vectors.
        msg = (
            "fit does not take embeddings= (a column of precomputed vectors) yet; "
            "leave it unset, or pass an embedder= that computes the vectors."
        )
        raise InvalidArgumentError(msg)
    result = run_pipeline(texts, task, opts, verb, fit_only=True)
    record(result.report)
    rep, data = result.report, result.fit_data
    if result.proxy is None or data is None:
        why = rep.viability_note or "no proxy could be trained"
        msg = (
            f"fit could not train a proxy ({why}); lower sample_size below the "
            "number of rows, or give rows whose answers differ."
        )
        raise InvalidArgumentError(msg)
    embedder = resolve_embedder(opts.embedder)
    if not rep.viable:
        warnings.warn(
            f"thrifty-frames: the fitted proxy is not certified ({rep.viability_note}); "
            "predict() will mark its answers proxy_below_target. Raise sample_size "
            "or lower target.",
            ProxyNotViableWarning,
            stacklevel=3,
        )
    certificate = {
        "prompt": task.prompt,
        "task": {
            "kind": task.kind,
            "classes": list(task.classes),
            "fields": list(task.fields),
        },
        "llm": rep.llm,
        "embedder": _embedder_spec(
            embedder,
            getattr(opts, "long_texts", "truncate"),
            None if data["X"] is None else int(data["X"].shape[1]),
        ),
        "proxy": {"name": opts.proxy, "params": dict(rep.proxy_params)},
        "library_version": __version__,
        "created_at": _now(),
        "seed": opts.seed,
        "metric": getattr(opts, "metric", "accuracy"),
        "target": opts.target,
        "delta": rep.delta,
        "threshold": dict(rep.threshold),
        "quality": dict(rep.quality),
        "viable": bool(rep.viable),
        "training": {
            "fingerprint": _fingerprint(data["texts"]),
            "rows": int(len(data["y"])),
            "distinct_texts": len(data["texts"]),
            "train_rows": int(data["train_rows"]),
            "calibration_rows": int(data["calibration_rows"]),
        },
    }
    certificate = json.loads(json.dumps(certificate))  # exactly what a file holds
    return FittedProxy(
        result.proxy,
        task,
        embedder,
        certificate,
        rep,
        training=(data["X"], np.asarray(data["y"], dtype=np.int64)),
        llm=opts.llm,
        cache_dir=opts.cache_dir,
    )


def fit(
    texts: Any, prompt: str, classes: Sequence[str] | None = None, **options: Any
) -> FittedProxy:
    """Fit a proxy on ``texts`` (a pyarrow array or a list of strings).

    ``classes=None`` asks a yes/no question. Options are those of
    :class:`~thrifty_frames.config.Options`.

    Examples
    --------
    >>> proxy = fit(texts, "Is it positive?", llm="openai/gpt-4o-mini")  # doctest: +SKIP
    """
    task = make_task("filter" if classes is None else "classify", prompt, classes)
    opts = make_options(**options)
    arr = _as_text_array(texts)
    return fit_texts(arr, task, opts)


def load(path: str | os.PathLike, *, embedder: Any = None) -> FittedProxy:
    """Load a proxy saved by :meth:`FittedProxy.save`.

    Only JSON, NumPy arrays of numbers (read without pickle) and LightGBM's
    text model are read; nothing in the file can run code.

    Parameters
    ----------
    path : str or path-like
        The file or folder given to ``save``.
    embedder : optional
        The embedder to use when the proxy was trained on one that cannot be
        rebuilt from the file (anything but the built-in hashing embedder).

    Raises
    ------
    ProxyFileError
        The file is not a proxy, is truncated or corrupted, was written by a
        newer incompatible version, or its embedder cannot be rebuilt.

    Examples
    --------
    >>> proxy = thrifty_frames.load("sentiment.proxy")  # doctest: +SKIP
    """
    meta, arrays, texts = proxyfile.read_members(path)
    for name in ("certificate", "estimator", "report"):
        if not isinstance(meta.get(name), dict):
            msg = f"proxy file {str(path)!r} has no valid {name}.json; it is corrupted."
            raise ProxyFileError(msg)
    cert = meta["certificate"]
    task = _check_certificate(path, cert)
    emb = _rebuild_embedder(cert["embedder"], embedder)
    est_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("est_")}
    model = proxyfile.load_estimator(
        meta["estimator"], est_arrays, texts, n_classes=len(task.classes)
    )
    width, dim = int(model.n_features_in_), cert["embedder"].get("dim")
    if dim is not None and width != dim:
        raise edited_member(
            path, "estimator.json", f"says {width} input columns, the embedder {dim}"
        )
    report = _check_report(path, meta["report"])
    training = _training_from(arrays, path, width, len(task.classes))
    return FittedProxy(model, task, emb, cert, report, training=training)

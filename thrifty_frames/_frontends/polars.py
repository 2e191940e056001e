"""The Polars front end: ``df.thrifty``, ``lf.thrifty`` and ``pl.col(...).thrifty``.

A thin adapter, like the pandas one: columns go to Arrow, one call into the
core, Arrow back to Polars. The frame namespaces offer the verbs of the pandas
``df.thrifty`` with the same signatures; the steps a plan holds live in
:mod:`._polars_steps`.

When the LLM runs
-----------------
``pl.DataFrame.thrifty`` runs the pipeline when a verb is called.

``pl.LazyFrame.thrifty`` verbs and the ``pl.Expr.thrifty`` expressions only
add a step to the plan; nothing is sampled, labeled or embedded until the plan
is collected. Building the plan, ``explain()`` and ``collect_schema()`` never
call the LLM. At collect time the step receives the *whole* column in one
batch (it is a non-elementwise ``map_batches``, which Polars never splits, not
even with ``engine="streaming"``), so the sample is drawn from the complete
column and the labels equal the eager ones for the same seed. Collecting the
same plan again draws the same sample and finds every answer in the label
cache: it makes no LLM calls (unless ``cache_dir=False``, which keeps answers
only for the duration of one run). The column the step sees is the one at its
place in the plan: a filter written before it narrows the rows it labels, as
it would in eager code.

``lf.thrifty.label``, ``lf.thrifty.fit`` and ``lf.thrifty.estimate`` return a
``Result``, a ``FittedProxy`` and an ``Estimate``, which are not plans: they
collect the columns they read and run at once. ``predict`` applies a fitted
proxy with no LLM; it is elementwise, so it streams batch by batch.

Empty input: an eager verb on an empty frame raises ``EmptyInputError`` (as
in pandas); a lazy step that receives an empty column returns an empty one,
because Polars may evaluate expressions on empty batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from .._core.estimate import Estimate
from .._core.inputs import check_fields, not_text_error, pick_column
from .._core.pipeline import Result
from .._core.task import Task, make_task
from ..config import make_options
from ..exceptions import ColumnNotFoundError, EmptyInputError, InvalidArgumentError
from ..fitted import FittedProxy, fit_texts
from . import _polars_steps as steps
from ._common import check_into, run_estimate, run_verb, texts_for


class _PolarsFrame:
    def __init__(self, df: pl.DataFrame) -> None:
        self.df = df

    @property
    def columns(self) -> list[str]:
        return self.df.columns

    @property
    def n_rows(self) -> int:
        return self.df.height

    def dtype_name(self, name: str) -> str:
        return str(self.df.schema[name])

    def is_text(self, name: str) -> bool:
        return steps.is_text_dtype(self.df.schema[name])

    def arrow(self, name: str) -> pa.Array:
        return steps.to_arrow(self.df.get_column(name))


def _result(df: pl.DataFrame, verb: str, prompt, classes, column, options) -> Result:
    return run_verb(_PolarsFrame(df), verb, prompt, classes, column, options)


def _kind(classes: Any) -> str:
    return "filter" if classes is None else "classify"


def _check_proxy(proxy: Any) -> FittedProxy:
    if not isinstance(proxy, FittedProxy):
        msg = (
            "proxy must be a FittedProxy (from df.thrifty.fit or "
            f"thrifty_frames.load), got {type(proxy).__name__}."
        )
        raise InvalidArgumentError(msg)
    return proxy


# -- pl.DataFrame.thrifty --------------------------------------------------------


@pl.api.register_dataframe_namespace("thrifty")
class ThriftyFrame:
    """LLM-quality labels at the cost of a small classifier: ``df.thrifty``.

    The verbs, arguments and answers are those of the pandas ``df.thrifty``.
    Every verb accepts the options of :class:`thrifty_frames.Options` as
    keywords (``llm``, ``embedder``, ``proxy``, ``sample_size``, ``seed``,
    ``cache_dir``, ``target``, ``delta``, ``max_llm_calls``, ``max_cost``, ...).
    """

    def __init__(self, df: pl.DataFrame) -> None:
        self._df = df

    def filter(
        self,
        prompt: str,
        column: str | None = None,
        *,
        provenance: bool = False,
        **options: Any,
    ) -> pl.DataFrame:
        """Rows for which the answer to ``prompt`` is yes, in their order.

        Every column is kept; rows with a null text are dropped.
        ``provenance=True`` adds ``thrifty_decided_by`` and ``thrifty_score``.

        Examples
        --------
        >>> kept = df.thrifty.filter("Is this review positive?")  # doctest: +SKIP
        """
        result = _result(self._df, "filter", prompt, None, column, options)
        out = self._df
        if provenance:
            out = out.with_columns(steps.provenance_series(result, "thrifty_"))
        return out.filter(steps.mask_series(result))

    def mask(self, prompt: str, column: str | None = None, **options: Any) -> pl.Series:
        """A Boolean Series ``thrifty_mask``, one value per row: True where yes.

        Null texts give False.

        Examples
        --------
        >>> df.with_columns(df.thrifty.mask("Is it positive?"))  # doctest: +SKIP
        """
        return steps.mask_series(
            _result(self._df, "mask", prompt, None, column, options)
        )

    def classify(
        self,
        prompt: str,
        classes: list[str],
        column: str | None = None,
        *,
        into: str = "label",
        provenance: bool = False,
        **options: Any,
    ) -> pl.DataFrame:
        """The frame with column ``into`` (an ``Enum`` of ``classes``) added.

        Null texts (and rows no label could be given to) get a null.
        ``provenance=True`` adds ``{into}_decided_by`` and ``{into}_score``.

        Examples
        --------
        >>> df.thrifty.classify("Topic?", ["World", "Sports"])  # doctest: +SKIP
        """
        into = check_into(into, self._df.columns, provenance)
        result = _result(self._df, "classify", prompt, classes, column, options)
        return self._df.with_columns(_with_provenance(result, into, provenance))

    def label(
        self,
        prompt: str,
        classes: list[str] | None = None,
        column: str | None = None,
        **options: Any,
    ) -> Result:
        """The core result as Arrow arrays: labels, provenance, scores and report.

        ``classes=None`` asks a yes/no question (labels are booleans).
        """
        return _result(self._df, "label", prompt, classes, column, options)

    def estimate(
        self,
        prompt: str,
        classes: list[str] | None = None,
        column: str | None = None,
        *,
        escalation_share: float | None = None,
        **options: Any,
    ) -> Estimate:
        """Predict the LLM calls, tokens and dollars of a verb, calling no LLM.

        Takes what ``filter`` (``classes=None``) or ``classify`` take; see the
        pandas ``df.thrifty.estimate`` for the assumptions.

        Examples
        --------
        >>> df.thrifty.estimate("Is it positive?").cost  # doctest: +SKIP
        """
        frame = _PolarsFrame(self._df)
        return run_estimate(frame, prompt, classes, column, escalation_share, options)

    def fit(
        self,
        prompt: str,
        classes: list[str] | None = None,
        column: str | None = None,
        **options: Any,
    ) -> FittedProxy:
        """Label a sample with the LLM, train and certify a proxy, and return it.

        Only the sample is sent to the LLM; apply the proxy with
        :meth:`predict` or ``pl.col(...).thrifty.predict(proxy)``.

        Examples
        --------
        >>> proxy = df.thrifty.fit("Is this review positive?")  # doctest: +SKIP
        """
        task = make_task(_kind(classes), prompt, classes)
        opts = make_options(**options)
        texts = texts_for(_PolarsFrame(self._df), task, column)
        if self._df.height == 0:
            msg = "the frame is empty (0 rows), so there is nothing to fit a proxy on."
            raise EmptyInputError(msg)
        return fit_texts(texts, task, opts)

    def predict(
        self,
        proxy: FittedProxy,
        column: str | None = None,
        *,
        into: str = "label",
        provenance: bool = False,
    ) -> pl.DataFrame:
        """The frame with column ``into`` holding a fitted proxy's labels.

        No LLM call is made. Labels are Boolean for a yes/no proxy, else an
        ``Enum`` of its classes; null texts give null. ``provenance=True`` adds
        ``{into}_decided_by`` and ``{into}_score``.
        """
        proxy = _check_proxy(proxy)
        into = check_into(into, self._df.columns, provenance)
        result = proxy.predict(texts_for(_PolarsFrame(self._df), proxy.task, column))
        return self._df.with_columns(_with_provenance(result, into, provenance))


def _with_provenance(result: Result, into: str, provenance: bool) -> list[pl.Series]:
    new = [steps.labels_series(result.labels, result.classes, into)]
    if provenance:
        new += steps.provenance_series(result, f"{into}_")
    return new


# -- pl.LazyFrame.thrifty --------------------------------------------------------


@pl.api.register_lazyframe_namespace("thrifty")
class ThriftyLazyFrame:
    """``lf.thrifty``: the verbs of ``df.thrifty``, as steps of the plan.

    Each verb checks its arguments and the schema now and returns a LazyFrame;
    the LLM runs when the plan is collected, over the whole column (see the
    module documentation). Collecting twice makes no new LLM calls.
    """

    def __init__(self, lf: pl.LazyFrame) -> None:
        self._lf = lf

    def _source(
        self, task: Task, column: str | None, embeddings: str | None = None
    ) -> tuple[pl.Expr, list[str]]:
        """The expression a step reads, and the columns behind it."""
        schema = self._lf.collect_schema()
        names = schema.names()
        check_fields(task, names, column)
        if embeddings is not None and embeddings not in names:
            hint = "Pass the name of the column holding the vectors as embeddings=...."
            raise ColumnNotFoundError(embeddings, names, hint)
        extra = [] if embeddings is None else [embeddings]
        if task.fields:
            return pl.struct(list(task.fields)), [*task.fields, *extra]
        name = pick_column(names, column, lambda c: steps.is_text_dtype(schema[c]))
        dtype = schema[name]
        if not (steps.is_text_dtype(dtype) or dtype == pl.Null):
            raise not_text_error(name, str(dtype))
        return pl.col(name), list(dict.fromkeys([name, *extra]))

    def _online(
        self, verb, prompt, classes, column, options
    ) -> tuple[pl.LazyFrame, str]:
        """The plan with a struct column (label, decided_by, score) added."""
        task = make_task(_kind(classes), prompt, classes)
        opts = make_options(**options)
        source, _ = self._source(task, column, opts.embeddings)
        tmp = _free_name("__thrifty", self._lf.collect_schema().names())
        step = steps.online(source, task, opts, verb, "struct").alias(tmp)
        return self._lf.with_columns(step), tmp

    def filter(
        self,
        prompt: str,
        column: str | None = None,
        *,
        provenance: bool = False,
        **options: Any,
    ) -> pl.LazyFrame:
        """Rows for which the answer to ``prompt`` is yes (runs at collect).

        Examples
        --------
        >>> plan = lf.thrifty.filter("Is this review positive?")  # doctest: +SKIP
        >>> kept = plan.collect()  # doctest: +SKIP
        """
        lf, tmp = self._online("filter", prompt, None, column, options)
        lf = lf.filter(pl.col(tmp).struct.field("label").fill_null(False))
        if provenance:
            lf = lf.with_columns(_fields(tmp, "thrifty_"))
        return lf.drop(tmp)

    def mask(
        self, prompt: str, column: str | None = None, **options: Any
    ) -> pl.LazyFrame:
        """A one-column LazyFrame ``thrifty_mask``: True where the answer is yes.

        The lazy counterpart of a Series; null texts give False.
        """
        task = make_task("filter", prompt)
        opts = make_options(**options)
        source, _ = self._source(task, column, opts.embeddings)
        step = steps.online(source, task, opts, "mask", "mask")
        return self._lf.select(step.alias("thrifty_mask"))

    def classify(
        self,
        prompt: str,
        classes: list[str],
        column: str | None = None,
        *,
        into: str = "label",
        provenance: bool = False,
        **options: Any,
    ) -> pl.LazyFrame:
        """The plan with column ``into`` (an ``Enum`` of ``classes``) added."""
        into = check_into(into, self._lf.collect_schema().names(), provenance)
        lf, tmp = self._online("classify", prompt, classes, column, options)
        new = [pl.col(tmp).struct.field("label").alias(into)]
        if provenance:
            new += _fields(tmp, f"{into}_")
        return lf.with_columns(new).drop(tmp)

    def label(
        self,
        prompt: str,
        classes: list[str] | None = None,
        column: str | None = None,
        **options: Any,
    ) -> Result:
        """The core result, at once: collects only the columns it reads."""
        return self._collect(prompt, classes, column, options).thrifty.label(
            prompt, classes, column, **options
        )

    def estimate(
        self,
        prompt: str,
        classes: list[str] | None = None,
        column: str | None = None,
        *,
        escalation_share: float | None = None,
        **options: Any,
    ) -> Estimate:
        """The cost estimate, at once (no LLM): collects only the columns it reads."""
        df = self._collect(prompt, classes, column, options)
        return df.thrifty.estimate(
            prompt, classes, column, escalation_share=escalation_share, **options
        )

    def fit(
        self,
        prompt: str,
        classes: list[str] | None = None,
        column: str | None = None,
        **options: Any,
    ) -> FittedProxy:
        """A fitted proxy, at once: collects only the columns it reads."""
        return self._collect(prompt, classes, column, options).thrifty.fit(
            prompt, classes, column, **options
        )

    def predict(
        self,
        proxy: FittedProxy,
        column: str | None = None,
        *,
        into: str = "label",
        provenance: bool = False,
    ) -> pl.LazyFrame:
        """The plan with a fitted proxy's labels in ``into``; it streams (no LLM)."""
        proxy = _check_proxy(proxy)
        into = check_into(into, self._lf.collect_schema().names(), provenance)
        source, _ = self._source(proxy.task, column)
        if not provenance:
            return self._lf.with_columns(
                steps.fitted(source, proxy, "label").alias(into)
            )
        tmp = _free_name("__thrifty", self._lf.collect_schema().names())
        lf = self._lf.with_columns(steps.fitted(source, proxy, "struct").alias(tmp))
        new = [pl.col(tmp).struct.field("label").alias(into), *_fields(tmp, f"{into}_")]
        return lf.with_columns(new).drop(tmp)

    def _collect(self, prompt, classes, column, options) -> pl.DataFrame:
        task = make_task(_kind(classes), prompt, classes)
        _, used = self._source(task, column, make_options(**options).embeddings)
        return self._lf.select(used).collect()


def _fields(tmp: str, prefix: str) -> list[pl.Expr]:
    col = pl.col(tmp).struct
    return [
        col.field("decided_by").alias(f"{prefix}decided_by"),
        col.field("score").alias(f"{prefix}score"),
    ]


def _free_name(base: str, taken: Sequence[str]) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}{i}"
    return name


# -- pl.Expr.thrifty -------------------------------------------------------------


@pl.api.register_expr_namespace("thrifty")
class ThriftyExpr:
    """``pl.col(...).thrifty``: the pipeline, or a fitted proxy, as an expression.

    ``filter``/``mask``, ``classify`` and ``label`` run the online pipeline
    over the whole column the expression yields, once per collect (never per
    streaming batch). ``predict`` applies a fitted proxy row by row and
    streams. A template prompt reads a struct:
    ``pl.struct("title", "body").thrifty.filter("Is {title} about {body}?")``.
    The output keeps the input's name, as Polars expressions do; use
    ``.alias(...)`` to add a column beside the text. Inside
    ``group_by(...).agg(...)`` or ``.over(...)`` the online verbs run once per
    group, each with its own sample.

    Examples
    --------
    >>> lf.filter(pl.col("review").thrifty.filter("Is it positive?"))  # doctest: +SKIP
    """

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def filter(self, prompt: str, **options: Any) -> pl.Expr:
        """A Boolean expression: True where the answer is yes, False for nulls."""
        task = make_task("filter", prompt)
        return steps.online(self._expr, task, make_options(**options), "filter", "mask")

    mask = filter

    def classify(self, prompt: str, classes: list[str], **options: Any) -> pl.Expr:
        """An ``Enum(classes)`` expression; null where no label could be given."""
        task = make_task("classify", prompt, classes)
        return steps.online(
            self._expr, task, make_options(**options), "classify", "label"
        )

    def label(
        self, prompt: str, classes: list[str] | None = None, **options: Any
    ) -> pl.Expr:
        """A struct expression with fields ``label``, ``decided_by`` and ``score``.

        ``label`` is Boolean for ``classes=None``, else an ``Enum(classes)``.
        Unnest it with ``.struct.unnest()`` or pick a field with
        ``.struct.field("label")``.
        """
        task = make_task(_kind(classes), prompt, classes)
        return steps.online(
            self._expr, task, make_options(**options), "label", "struct"
        )

    def predict(self, proxy: FittedProxy, *, provenance: bool = False) -> pl.Expr:
        """A fitted proxy's labels, computed batch by batch with no LLM call.

        Elementwise, so ``sink_parquet`` and ``engine="streaming"`` process a
        file larger than memory in bounded memory. Boolean for a yes/no proxy,
        else ``Enum(classes)``; ``provenance=True`` gives the struct of
        :meth:`label` instead.

        Examples
        --------
        >>> proxy = thrifty_frames.load("sentiment.proxy")  # doctest: +SKIP
        >>> lf.with_columns(pl.col("text").thrifty.predict(proxy).alias("pos"))  # doctest: +SKIP
        """
        proxy = _check_proxy(proxy)
        return steps.fitted(self._expr, proxy, "struct" if provenance else "label")


__all__ = ["ThriftyExpr", "ThriftyFrame", "ThriftyLazyFrame"]

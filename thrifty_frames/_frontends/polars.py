"""The Polars front end: ``df.thrifty``, ``lf.thrifty`` and ``pl.col(...).thrifty``.

A thin adapter, like the pandas one: columns go to Arrow, one call into the
core, Arrow back to Polars. The three namespaces offer the same verbs.

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

The one exception is ``lf.thrifty.label``, which returns a
:class:`~thrifty_frames.Result` rather than a plan, so it collects the columns
it reads and runs at once.

Empty input: an eager verb on an empty frame raises ``EmptyInputError`` (as
in pandas); a lazy step that receives an empty column returns an empty one,
because Polars may evaluate expressions on empty batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from .._core.inputs import (
    as_string_array,
    check_fields,
    not_text_error,
    pick_column,
    render_template,
)
from .._core.pipeline import Result
from .._core.task import Task, make_task
from ..config import Options, make_options
from ..exceptions import ColumnNotFoundError, InvalidArgumentError
from ._common import check_into, run_task, run_verb

#: Text dtypes a verb picks on its own when ``column=None``. An all-null column
#: of dtype ``Null`` is accepted when named, but never guessed.
_TEXT_DTYPES = (pl.String, pl.Categorical, pl.Enum)


def _is_text_dtype(dtype: pl.DataType) -> bool:
    return dtype.base_type() in _TEXT_DTYPES


def _to_arrow(s: pl.Series) -> pa.Array:
    """The series as Arrow, without a copy where Polars allows it.

    Polars stores strings as views, which the newest compat level hands over
    as ``string_view`` without copying. Categorical and Enum come as
    dictionary arrays (the core casts them); pyarrow cannot yet cast
    dictionaries of views, so those use the default compat level.
    """
    if s.dtype == pl.String:
        return s.to_arrow(compat_level=pl.CompatLevel.newest())
    return s.to_arrow()


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
        return _is_text_dtype(self.df.schema[name])

    def arrow(self, name: str) -> pa.Array:
        return _to_arrow(self.df.get_column(name))


def _series(name: str, arr: pa.Array) -> pl.Series:
    return pl.Series(name, arr)


def _labels(result: Result, name: str) -> pl.Series:
    """Booleans for a filter, an Enum of the classes for classify."""
    s = _series(name, result.labels)
    if result.classes and s.dtype == pl.String:
        s = s.cast(pl.Enum(list(result.classes)))
    return s


def _mask(result: Result, name: str = "thrifty_mask") -> pl.Series:
    return _series(name, result.labels).fill_null(False)


def _provenance(result: Result, prefix: str) -> list[pl.Series]:
    return [
        _series(f"{prefix}decided_by", result.decided_by),
        _series(f"{prefix}score", result.score),
    ]


# -- the step a lazy plan holds ------------------------------------------------


def _struct_dtype(task: Task) -> pl.Struct:
    label = pl.Boolean if task.is_filter else pl.Enum(list(task.classes))
    return pl.Struct({"label": label, "decided_by": pl.String, "score": pl.Float64})


class _OnlineStep:
    """What a plan calls at collect time: the whole pipeline over one column.

    The task and options were validated when the plan was built. ``output``
    says what comes back: ``"mask"`` (Boolean, nulls False), ``"label"`` (the
    labels) or ``"struct"`` (label, decided_by and score).
    """

    def __init__(self, task: Task, opts: Options, verb: str, output: str) -> None:
        self.task = task
        self.opts = opts
        self.verb = verb
        self.output = output
        struct = _struct_dtype(task)
        self.dtype = {
            "mask": pl.Boolean,
            "label": struct.to_schema()["label"],
            "struct": struct,
        }[output]

    def __call__(self, s: pl.Series, return_dtype: Any = None) -> pl.Series:
        # Polars passes return_dtype to callables that accept it; it is self.dtype.
        name = s.name
        if s.len() == 0:
            return pl.Series(name, [], dtype=self.dtype)
        vectors = None
        if self.opts.embeddings is not None:  # see _online: a {text, vectors} struct
            vectors = _to_arrow(s.struct.field(_VECTORS))
            s = s.struct.field(_TEXT)
        texts = self._texts(s)
        result = run_task(texts, self.task, self.opts, self.verb, vectors)
        if self.output == "mask":
            return _mask(result, name)
        if self.output == "label":
            return _labels(result, name)
        parts = [_labels(result, "label"), *_provenance(result, "")]
        return pl.DataFrame(parts).to_struct(name)

    def _texts(self, s: pl.Series) -> pa.Array:
        fields = self.task.fields
        if not fields:
            return as_string_array(_to_arrow(s), s.name, str(s.dtype))
        if not isinstance(s.dtype, pl.Struct):
            msg = (
                f"the prompt is a template with placeholders "
                f"{['{' + f + '}' for f in fields]}, so the expression must be a "
                f"struct of those columns, got dtype {s.dtype}; write e.g. "
                f"pl.struct({', '.join(repr(f) for f in fields)}).thrifty...."
            )
            raise InvalidArgumentError(msg)
        check_fields(self.task, [f.name for f in s.dtype.fields], None)
        arr = s.to_arrow()
        return render_template(self.task.prompt, {f: arr.field(f) for f in fields})


_TEXT, _VECTORS = "text", "vectors"


def _online(
    expr: pl.Expr, task: Task, options: dict, verb: str, output: str
) -> pl.Expr:
    """``expr`` followed by the pipeline step, keeping ``expr``'s output name."""
    opts = make_options(**options)
    step = _OnlineStep(task, opts, verb, output)
    if opts.embeddings is not None:
        # The step needs the vectors column beside the text, in the same batch.
        name = expr.meta.output_name(raise_if_undetermined=False)
        expr = pl.struct(expr.alias(_TEXT), pl.col(opts.embeddings).alias(_VECTORS))
        if name is not None:
            expr = expr.alias(name)
    # Not elementwise: Polars hands the whole column over in one batch.
    return expr.map_batches(step, return_dtype=step.dtype)


# -- pl.DataFrame.thrifty --------------------------------------------------------


def _result(df: pl.DataFrame, verb: str, prompt, classes, column, options) -> Result:
    return run_verb(_PolarsFrame(df), verb, prompt, classes, column, options)


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
            out = out.with_columns(_provenance(result, "thrifty_"))
        return out.filter(_mask(result))

    def mask(self, prompt: str, column: str | None = None, **options: Any) -> pl.Series:
        """A Boolean Series ``thrifty_mask``, one value per row: True where yes.

        Null texts give False.

        Examples
        --------
        >>> df.with_columns(df.thrifty.mask("Is it positive?"))  # doctest: +SKIP
        """
        return _mask(_result(self._df, "mask", prompt, None, column, options))

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
        into = check_into(into, self._df.columns)
        result = _result(self._df, "classify", prompt, classes, column, options)
        new = [_labels(result, into)]
        if provenance:
            new += _provenance(result, f"{into}_")
        return self._df.with_columns(new)

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


# -- pl.LazyFrame.thrifty --------------------------------------------------------


@pl.api.register_lazyframe_namespace("thrifty")
class ThriftyLazyFrame:
    """``lf.thrifty``: the verbs of ``df.thrifty``, as steps of the plan.

    Each verb checks its arguments and the schema now, and returns a
    LazyFrame; the LLM runs when the plan is collected, over the whole column
    (see the module documentation). Collecting twice makes no new LLM calls.
    """

    def __init__(self, lf: pl.LazyFrame) -> None:
        self._lf = lf

    def _source(
        self, task: Task, column: str | None, options: dict
    ) -> tuple[pl.Expr, list[str]]:
        """The expression the step reads, and the columns behind it."""
        schema = self._lf.collect_schema()
        names = schema.names()
        check_fields(task, names, column)
        emb = make_options(**options).embeddings
        if emb is not None and emb not in names:
            raise ColumnNotFoundError(
                emb, names, "Pass the name of the column holding the vectors."
            )
        used = [] if emb is None else [emb]
        if task.fields:
            return pl.struct(list(task.fields)), [*task.fields, *used]
        name = pick_column(names, column, lambda c: _is_text_dtype(schema[c]))
        dtype = schema[name]
        if not (_is_text_dtype(dtype) or dtype == pl.Null):
            raise not_text_error(name, str(dtype))
        return pl.col(name), [name, *used]

    def _with_step(
        self, verb: str, prompt, classes, column, options
    ) -> tuple[pl.LazyFrame, str]:
        kind = "filter" if classes is None else "classify"
        task = make_task(kind, prompt, classes)
        source, _ = self._source(task, column, options)
        tmp = _free_name("__thrifty", self._lf.collect_schema().names())
        step = _online(source, task, options, verb, "struct").alias(tmp)
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
        lf, tmp = self._with_step("filter", prompt, None, column, options)
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
        source, _ = self._source(task, column, options)
        step = _online(source, task, options, "mask", "mask")
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
        into = check_into(into, self._lf.collect_schema().names())
        lf, tmp = self._with_step("classify", prompt, classes, column, options)
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
        """The core result, at once: collects only the columns it reads.

        Unlike the other lazy verbs this runs now, since a
        :class:`~thrifty_frames.Result` is not a plan.
        """
        kind = "filter" if classes is None else "classify"
        _, used = self._source(make_task(kind, prompt, classes), column, options)
        df = self._lf.select(used).collect()
        return df.thrifty.label(prompt, classes, column, **options)


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
    """``pl.col(...).thrifty``: the pipeline as an expression.

    ``filter``/``mask``, ``classify`` and ``label`` run the online pipeline
    over the whole column the expression yields, once per collect (never per
    streaming batch). A template prompt reads a struct:
    ``pl.struct("title", "body").thrifty.filter("Is {title} about {body}?")``.
    The output keeps the input's name, as Polars expressions do; use
    ``.alias(...)`` to add a column beside the text.

    Examples
    --------
    >>> lf.filter(pl.col("review").thrifty.filter("Is it positive?"))  # doctest: +SKIP
    """

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def filter(self, prompt: str, **options: Any) -> pl.Expr:
        """A Boolean expression: True where the answer is yes, False for nulls."""
        return _online(
            self._expr, make_task("filter", prompt), options, "filter", "mask"
        )

    mask = filter

    def classify(self, prompt: str, classes: list[str], **options: Any) -> pl.Expr:
        """An ``Enum(classes)`` expression; null where no label could be given."""
        task = make_task("classify", prompt, classes)
        return _online(self._expr, task, options, "classify", "label")

    def label(
        self, prompt: str, classes: list[str] | None = None, **options: Any
    ) -> pl.Expr:
        """A struct expression with fields ``label``, ``decided_by`` and ``score``.

        ``label`` is Boolean for ``classes=None``, else an ``Enum(classes)``.
        Unnest it with ``.struct.unnest()`` or pick a field with
        ``.struct.field("label")``.
        """
        kind = "filter" if classes is None else "classify"
        task = make_task(kind, prompt, classes)
        return _online(self._expr, task, options, "label", "struct")

    def predict(self, proxy: Any) -> pl.Expr:
        """Apply an already fitted proxy row by row, so the plan can stream.

        Reserved for the fit-once workflow (fit a proxy on one frame, apply it
        to others without the LLM).
        """
        # TODO: wire this to the fitted proxy of the fit-once issue as an
        # elementwise map_batches (is_elementwise=True) so it streams batch by
        # batch; no fitted-proxy type with an Arrow predict method exists yet.
        msg = (
            "Expr.thrifty.predict(proxy) is not available yet: applying a fitted "
            "proxy arrives with the fit-once workflow. Use .thrifty.filter or "
            ".thrifty.classify, which fit and apply a proxy in one run."
        )
        raise NotImplementedError(msg)


__all__ = ["ThriftyExpr", "ThriftyFrame", "ThriftyLazyFrame"]

"""The steps a Polars plan holds, and the Series <-> Arrow hand-off they share.

Two kinds of step, both ``map_batches`` callables with a fixed return dtype:

- :class:`OnlineStep` runs the whole pipeline (sample, LLM, proxy, cascade).
  It is *not* elementwise, so Polars hands it the whole column in one batch,
  also under ``engine="streaming"``: one sample, one run, per collect.
- :class:`FittedStep` applies an already fitted proxy. It *is* elementwise
  (each row's answer depends on that row alone), so Polars may stream it batch
  by batch in bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from .._core.inputs import as_text_array, check_fields, render_template
from .._core.pipeline import Result
from .._core.task import Task
from ..config import Options
from ..exceptions import InvalidArgumentError
from ._common import run_task

#: Text dtypes a verb picks on its own when ``column=None``. An all-null column
#: of dtype ``Null`` is accepted when named, but never guessed.
TEXT_DTYPES = (pl.String, pl.Categorical, pl.Enum)
#: Field names of the struct a step reads when ``embeddings=`` is set.
TEXT, VECTORS = "text", "vectors"


def is_text_dtype(dtype: pl.DataType) -> bool:
    return dtype.base_type() in TEXT_DTYPES


def to_arrow(s: pl.Series) -> pa.Array:
    """The series as Arrow, without a copy where Polars allows it.

    Polars stores strings as views, which the newest compat level hands over
    as ``string_view`` without copying. Categorical and Enum come as
    dictionary arrays (the core casts them); pyarrow cannot cast dictionaries
    of views, so those use the default compat level.
    """
    if s.dtype == pl.String:
        return s.to_arrow(compat_level=pl.CompatLevel.newest())
    return s.to_arrow()


def series_texts(s: pl.Series, task: Task) -> pa.Array:
    """The text per row: the series itself, or the template over its struct fields."""
    fields = task.fields
    if not fields:
        return as_text_array(to_arrow(s), s.name, str(s.dtype))
    if not isinstance(s.dtype, pl.Struct):
        msg = (
            f"the prompt is a template with placeholders "
            f"{['{' + f + '}' for f in fields]}, so the expression must be a "
            f"struct of those columns, got dtype {s.dtype}; write e.g. "
            f"pl.struct({', '.join(repr(f) for f in fields)}).thrifty...."
        )
        raise InvalidArgumentError(msg)
    check_fields(task, [f.name for f in s.dtype.fields], None)
    arr = s.to_arrow()
    return render_template(task.prompt, {f: arr.field(f) for f in fields})


# -- Arrow results back to Polars ----------------------------------------------


def label_dtype(task: Task) -> pl.DataType:
    """Boolean for a yes/no question, an Enum of the classes otherwise."""
    return pl.Boolean if task.is_filter else pl.Enum(list(task.classes))


def struct_dtype(task: Task) -> pl.Struct:
    return pl.Struct(
        {"label": label_dtype(task), "decided_by": pl.String, "score": pl.Float64}
    )


def labels_series(labels: pa.Array, classes: Sequence[str], name: str) -> pl.Series:
    """Booleans stay Boolean; class names become an ``Enum`` of ``classes``."""
    s = pl.Series(name, labels)
    return s if s.dtype == pl.Boolean else s.cast(pl.Enum(list(classes)))


def mask_series(result: Result, name: str = "thrifty_mask") -> pl.Series:
    return pl.Series(name, result.labels).fill_null(False)


def provenance_series(result: Result, prefix: str) -> list[pl.Series]:
    return [
        pl.Series(f"{prefix}decided_by", result.decided_by),
        pl.Series(f"{prefix}score", result.score),
    ]


def _struct(labels: pl.Series, decided_by: Any, score: Any, name: str) -> pl.Series:
    parts = [labels.alias("label"), pl.Series("decided_by", decided_by)]
    return pl.DataFrame([*parts, pl.Series("score", score)]).to_struct(name)


# -- the steps -----------------------------------------------------------------


class OnlineStep:
    """The whole pipeline over one full column, at collect time.

    The task and options were validated when the plan was built. ``output``
    says what comes back: ``"mask"`` (Boolean, nulls False), ``"label"`` or
    ``"struct"`` (label, decided_by and score).
    """

    def __init__(self, task: Task, opts: Options, verb: str, output: str) -> None:
        self.task = task
        self.opts = opts
        self.verb = verb
        self.output = output
        self.dtype = {
            "mask": pl.Boolean,
            "label": label_dtype(task),
            "struct": struct_dtype(task),
        }[output]

    def __call__(self, s: pl.Series, return_dtype: Any = None) -> pl.Series:
        # Polars passes return_dtype to callables that accept it; it is self.dtype.
        name = s.name
        if s.len() == 0:
            return pl.Series(name, [], dtype=self.dtype)
        vectors = None
        if self.opts.embeddings is not None:  # a {text, vectors} struct, see online()
            vectors = to_arrow(s.struct.field(VECTORS))
            s = s.struct.field(TEXT)
        texts = series_texts(s, self.task)
        result = run_task(texts, self.task, self.opts, self.verb, vectors)
        if self.output == "mask":
            return mask_series(result, name)
        labels = labels_series(result.labels, self.task.classes, name)
        if self.output == "label":
            return labels
        return _struct(labels, result.decided_by, result.score, name)


def online(expr: pl.Expr, task: Task, opts: Options, verb: str, output: str) -> pl.Expr:
    """``expr`` followed by an :class:`OnlineStep`, keeping ``expr``'s name."""
    step = OnlineStep(task, opts, verb, output)
    if opts.embeddings is not None:
        # The step needs the vectors column beside the text, in the same batch.
        name = expr.meta.output_name(raise_if_undetermined=False)
        expr = pl.struct(expr.alias(TEXT), pl.col(opts.embeddings).alias(VECTORS))
        if name is not None:
            expr = expr.alias(name)
    # Not elementwise: Polars hands the whole column over in one batch.
    return expr.map_batches(step, return_dtype=step.dtype)


class FittedStep:
    """A fitted proxy applied batch by batch, with no LLM call.

    ``output`` is ``"label"`` or ``"struct"`` (label, decided_by, score).
    """

    def __init__(self, proxy: Any, output: str) -> None:
        self.proxy = proxy
        self.output = output
        task = proxy.task
        self.dtype = label_dtype(task) if output == "label" else struct_dtype(task)

    def __call__(self, s: pl.Series, return_dtype: Any = None) -> pl.Series:
        name = s.name
        if s.len() == 0:
            return pl.Series(name, [], dtype=self.dtype)
        task = self.proxy.task
        texts = series_texts(s, task)
        if self.output == "label":
            return labels_series(self.proxy.predict_arrow(texts), task.classes, name)
        res = self.proxy.predict_arrow_provenance(texts)
        labels = labels_series(res.field("label"), task.classes, "label")
        return _struct(labels, res.field("decided_by"), res.field("score"), name)


def fitted(expr: pl.Expr, proxy: Any, output: str) -> pl.Expr:
    """``expr`` followed by a :class:`FittedStep` (elementwise, so it streams)."""
    step = FittedStep(proxy, output)
    return expr.map_batches(step, return_dtype=step.dtype, is_elementwise=True)

"""What every front end shares: from a frame's columns to one core call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa

from .._core.estimate import Estimate, estimate_run
from .._core.inputs import as_text_array, check_fields, pick_column, render_template
from .._core.pipeline import Result, run_pipeline
from .._core.reports import record
from .._core.task import Task, make_task
from ..config import Options, make_options
from ..exceptions import ColumnNotFoundError, EmptyInputError, InvalidArgumentError


class FrameAdapter(Protocol):
    """The few things the shared code needs from a native frame."""

    @property
    def columns(self) -> Sequence[str]: ...

    @property
    def n_rows(self) -> int: ...

    def is_text(self, name: str) -> bool: ...

    def arrow(self, name: str) -> pa.Array: ...

    def dtype_name(self, name: str) -> str: ...


def texts_for(adapter: FrameAdapter, task: Task, column: str | None) -> pa.Array:
    """The text each row contributes: one column, or the rendered template."""
    check_fields(task, adapter.columns, column)
    if task.fields:
        return render_template(task.prompt, {f: adapter.arrow(f) for f in task.fields})
    name = pick_column(adapter.columns, column, adapter.is_text)
    return as_text_array(adapter.arrow(name), name, adapter.dtype_name(name))


def run_verb(
    adapter: FrameAdapter,
    verb: str,
    prompt: Any,
    classes: Any,
    column: str | None,
    options: dict,
) -> Result:
    """Validate everything once, run the core, record the report."""
    kind = "filter" if verb in ("filter", "mask") else "classify"
    if verb == "label":
        kind = "filter" if classes is None else "classify"
    task = make_task(kind, prompt, classes)
    opts = make_options(**options)
    texts = texts_for(adapter, task, column)
    if adapter.n_rows == 0:
        msg = (
            f"the frame is empty (0 rows), so there is nothing to {verb}; "
            "check the filter or file that produced it."
        )
        raise EmptyInputError(msg)
    return run_task(texts, task, opts, verb, vectors_for(adapter, opts))


def vectors_for(adapter: FrameAdapter, opts: Options) -> pa.Array | None:
    """The ``embeddings=`` column as Arrow (None when the option is unset).

    Every front end passes this to :func:`run_task`; the core checks the
    vectors (numeric, one length, none missing where there is a text).
    """
    if opts.embeddings is None:
        return None
    if opts.embeddings not in adapter.columns:
        raise ColumnNotFoundError(
            opts.embeddings,
            list(adapter.columns),
            "Pass the name of the column holding the vectors as embeddings=....",
        )
    return adapter.arrow(opts.embeddings)


def run_task(
    texts: pa.Array,
    task: Task,
    opts: Options,
    verb: str,
    vectors: pa.Array | pa.ChunkedArray | None = None,
) -> Result:
    """Run the core over already validated texts and record the report.

    The lazy Polars routes call this at collect time, with the task and options
    they validated when the plan was built.
    """
    result = run_pipeline(texts, task, opts, verb, vectors=vectors)
    record(result.report)
    return result


def run_estimate(
    adapter: FrameAdapter,
    prompt: Any,
    classes: Any,
    column: str | None,
    escalation_share: float | None,
    options: dict,
) -> Estimate:
    """Validate as a verb would, then predict its calls, tokens and cost."""
    task = make_task("filter" if classes is None else "classify", prompt, classes)
    opts = make_options(**options)
    texts = texts_for(adapter, task, column)
    if adapter.n_rows == 0:
        msg = "the frame is empty (0 rows), so there is nothing to estimate."
        raise EmptyInputError(msg)
    return estimate_run(texts, task, opts, escalation_share)


def check_into(into: Any, columns: Sequence[str], provenance: bool = False) -> str:
    """The new column's name; it must not replace a column the frame has."""
    if not isinstance(into, str) or not into:
        msg = f"into must be a non-empty column name, got {into!r}."
        raise InvalidArgumentError(msg)
    names = [into] + ([f"{into}_decided_by", f"{into}_score"] if provenance else [])
    taken = [n for n in names if n in set(columns)]
    if taken:
        msg = (
            f"the frame already has a column {taken[0]!r}, which into={into!r} would "
            "replace; pass another name as into=..., or drop that column first."
        )
        raise InvalidArgumentError(msg)
    return into

"""From a frame's columns (as Arrow) to the one text array the pipeline reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..exceptions import ColumnNotFoundError, ColumnTypeError, InvalidArgumentError
from .task import Task


def is_text_type(t: pa.DataType) -> bool:
    """String-like Arrow types: string, large_string, string_view, or a
    dictionary (categorical / enum) of those; ``null`` (an all-null column) too."""
    if pa.types.is_dictionary(t):
        return is_text_type(t.value_type)
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_null(t)
    )


def not_text_error(column: str, dtype_name: str) -> ColumnTypeError:
    """The error for a column that holds no text, naming it and its dtype."""
    msg = (
        f"column {column!r} has dtype {dtype_name}, not text; pass a string "
        "column as column=..., or cast it first (e.g. .astype(str) in pandas, "
        ".cast(pl.String) in Polars)."
    )
    return ColumnTypeError(msg)


def as_string_array(arr: pa.Array | pa.ChunkedArray, column: str, dtype_name: str) -> pa.Array:
    """A plain ``pa.string()`` array, or an error naming the column and dtype."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not is_text_type(arr.type):
        raise not_text_error(column, dtype_name)
    if pa.types.is_dictionary(arr.type):
        # Decode through the dictionary: pyarrow cannot cast a dictionary of
        # string views (Polars' Categorical and Enum) directly.
        values = arr.dictionary
        if values.type != pa.string():
            values = pc.cast(values, pa.string())
        arr = values.take(arr.indices)
    if arr.type != pa.string():
        arr = pc.cast(arr, pa.string())
    return arr


def as_text_array(
    arr: pa.Array | pa.ChunkedArray, column: str, dtype_name: str
) -> pa.Array | pa.ChunkedArray:
    """The column as the pipeline reads it, or an error naming the column and dtype.

    String, large string and string view arrays, chunked or not, are passed on
    as they are: the pipeline reads them in place, so a large column is not
    copied. Dictionaries (categorical, enum) are decoded to strings.
    """
    if not is_text_type(arr.type):
        raise not_text_error(column, dtype_name)
    if pa.types.is_dictionary(arr.type):
        return as_string_array(arr, column, dtype_name)
    return arr


def pick_column(
    columns: Sequence[str],
    column: str | None,
    is_text: Callable[[str], bool],
) -> str:
    """The column to read: the one named, or the only text column."""
    if column is not None:
        if not isinstance(column, str):
            msg = f"column must be a column name (str), got {type(column).__name__}."
            raise InvalidArgumentError(msg)
        if column not in columns:
            raise ColumnNotFoundError(
                column, list(columns), "Pass one of them as column=...."
            )
        return column
    text_cols = [c for c in columns if is_text(c)]
    if len(text_cols) == 1:
        return text_cols[0]
    if not text_cols:
        msg = (
            f"column=None needs exactly one text column, but the frame has none "
            f"(columns: {list(columns)[:30]}); pass column=... naming a string column."
        )
        raise ColumnTypeError(msg)
    msg = (
        f"column=None is ambiguous: the frame has {len(text_cols)} text columns "
        f"{text_cols[:30]}; pass column=... to choose one."
    )
    raise InvalidArgumentError(msg)


def check_fields(task: Task, columns: Sequence[str], column: str | None) -> None:
    """Every template placeholder must be a column; a template takes no column=."""
    if not task.fields:
        return
    if column is not None:
        msg = (
            "the prompt is a template with placeholders "
            f"{['{' + f + '}' for f in task.fields]}, so column= must be left as None."
        )
        raise InvalidArgumentError(msg)
    missing = [f for f in task.fields if f not in columns]
    if missing:
        raise ColumnNotFoundError(
            missing[0],
            list(columns),
            f"The prompt template refers to {{{missing[0]}}}; rename the placeholder "
            "to one of these columns, or write literal braces as '{{' and '}}'.",
        )


def render_template(template: str, values: Mapping[str, pa.Array]) -> pa.Array:
    """Fill ``template`` row by row. Nulls render as empty text; a row whose
    referenced values are all null stays null (it is never sent anywhere)."""
    names = list(values)
    cols = []
    for name in names:
        arr = values[name]
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if not pa.types.is_string(arr.type):
            arr = pc.cast(arr, pa.string()) if not pa.types.is_dictionary(arr.type) else pc.cast(arr, pa.string())
        cols.append(arr.to_pylist())
    out: list[str | None] = []
    for row in zip(*cols, strict=True):
        if all(v is None for v in row):
            out.append(None)
            continue
        out.append(template.format(**{n: ("" if v is None else v) for n, v in zip(names, row, strict=True)}))
    return pa.array(out, type=pa.string())

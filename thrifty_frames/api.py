"""Plain typed functions under the accessors, for type checkers and Arrow users.

They take a pyarrow string array (or anything ``pa.array`` accepts) and return
a :class:`~thrifty_frames.Result`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ._core.inputs import as_text_array
from ._core.pipeline import Result, run_pipeline
from ._core.reports import record
from ._core.task import make_task
from .config import make_options
from .exceptions import EmptyInputError


def _texts(texts: Any) -> pa.Array:
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(texts)
    arr = as_text_array(arr, "texts", str(arr.type))
    if len(arr) == 0:
        raise EmptyInputError("texts is empty (0 rows); there is nothing to label.")
    return arr


def label(texts: Any, prompt: str, classes: Sequence[str] | None = None, **options: Any) -> Result:
    """Label ``texts`` with the proxy-model pipeline.

    ``classes=None`` asks a yes/no question (boolean labels); otherwise each
    text gets one of ``classes``.

    Examples
    --------
    >>> import thrifty_frames as tf
    >>> res = tf.label(["great", "awful"], "Is it positive?", sample_size=2)  # doctest: +SKIP
    >>> res.labels.to_pylist()  # doctest: +SKIP
    [True, False]
    """
    task = make_task("filter" if classes is None else "classify", prompt, classes)
    opts = make_options(**options)
    result = run_pipeline(_texts(texts), task, opts, "label")
    record(result.report)
    return result


def filter_mask(texts: Any, prompt: str, **options: Any) -> pa.Array:
    """Boolean Arrow array: True where the answer to ``prompt`` is yes (nulls False)."""
    return label(texts, prompt, None, **options).labels.fill_null(False)


def classify(texts: Any, prompt: str, classes: Sequence[str], **options: Any) -> pa.Array:
    """Arrow string array with one of ``classes`` per text (null where unknown)."""
    return label(texts, prompt, classes, **options).labels

"""The pandas front end: ``df.thrifty``.

A thin adapter: columns go to Arrow, one call into the core, Arrow back to
pandas. It holds no state; reports come back through
:func:`thrifty_frames.last_report` and :func:`thrifty_frames.collect_reports`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .._core.estimate import Estimate
from .._core.inputs import is_text_type
from .._core.pipeline import Result
from .._core.task import make_task
from ..config import make_options
from ..exceptions import ColumnTypeError, EmptyInputError, InvalidArgumentError
from ..fitted import FittedProxy, fit_texts
from ._common import check_into, run_estimate, run_verb, texts_for


class _PandasFrame:
    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df

    @property
    def columns(self) -> list[str]:
        return [c for c in self.df.columns if isinstance(c, str)]

    @property
    def n_rows(self) -> int:
        return len(self.df)

    def dtype_name(self, name: str) -> str:
        return str(self.df[name].dtype)

    def is_text(self, name: str) -> bool:
        s = self.df[name]
        if isinstance(s, pd.DataFrame):  # duplicated column label
            return False
        dt = s.dtype
        if isinstance(dt, pd.StringDtype):
            return True
        if isinstance(dt, pd.CategoricalDtype):
            cats = dt.categories
            return cats.dtype == object or isinstance(cats.dtype, pd.StringDtype)
        if isinstance(dt, pd.ArrowDtype):
            t = dt.pyarrow_dtype
            return is_text_type(t) and not pa.types.is_null(t)
        if pd.api.types.is_object_dtype(dt):
            sample = s.dropna().head(100)
            return len(sample) == 0 or all(isinstance(v, str) for v in sample)
        return False

    def arrow(self, name: str) -> pa.Array:
        s = self.df[name]
        if isinstance(s, pd.DataFrame):
            msg = f"column {name!r} appears more than once in the frame; rename the copies."
            raise ColumnTypeError(msg)
        try:
            arr = pa.Array.from_pandas(s.reset_index(drop=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            msg = (
                f"column {name!r} has dtype {s.dtype} holding values that are not all "
                "text; convert it with .astype(str) or pass another column."
            )
            raise ColumnTypeError(msg) from None
        return arr


def _result(df: pd.DataFrame, verb: str, prompt, classes, column, options) -> Result:
    return run_verb(_PandasFrame(df), verb, prompt, classes, column, options)


def _bool_mask(result: Result) -> np.ndarray:
    return result.labels.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _with_labels(
    df: pd.DataFrame, values, result: Result, into: str, provenance: bool
) -> pd.DataFrame:
    """``df`` with the label column ``into`` and, on request, its provenance."""
    new = {into: pd.Series(values, index=df.index)}
    if provenance:
        for k, v in _provenance_columns(result, f"{into}_").items():
            new[k] = pd.Series(v.to_numpy(), index=df.index)
    return df.assign(**new)


def _provenance_columns(result: Result, prefix: str) -> dict[str, pd.Series]:
    return {
        f"{prefix}decided_by": result.decided_by.to_pandas(),
        f"{prefix}score": result.score.to_pandas(),
    }


@pd.api.extensions.register_dataframe_accessor("thrifty")
class ThriftyAccessor:
    """LLM-quality labels at the cost of a small classifier: ``df.thrifty``.

    Every verb accepts the options of :class:`thrifty_frames.config.Options`
    as keywords (``llm``, ``embedder``, ``proxy``, ``sample_size``, ``seed``,
    ``cache_dir``, ``target``, ``delta``, ``max_llm_calls``, ``max_cost``, ...).
    """

    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df

    def filter(
        self,
        prompt: str,
        column: str | None = None,
        *,
        provenance: bool = False,
        **options: Any,
    ) -> pd.DataFrame:
        """Rows for which the answer to ``prompt`` is yes.

        The original index, its order and every column are kept; rows with a
        null text are dropped. ``provenance=True`` adds ``thrifty_decided_by``
        and ``thrifty_score`` columns.

        Examples
        --------
        >>> kept = df.thrifty.filter("Is this review positive?")  # doctest: +SKIP
        """
        result = _result(self._df, "filter", prompt, None, column, options)
        keep = _bool_mask(result)
        out = self._df
        if provenance:
            out = out.assign(
                **{k: v.to_numpy() for k, v in _provenance_columns(result, "thrifty_").items()}
            )
        return out[keep]

    def mask(self, prompt: str, column: str | None = None, **options: Any) -> pd.Series:
        """A boolean Series aligned to ``df.index``: True where the answer is yes.

        Null texts give False.
        """
        result = _result(self._df, "mask", prompt, None, column, options)
        return pd.Series(_bool_mask(result), index=self._df.index, name="thrifty_mask")

    def classify(
        self,
        prompt: str,
        classes: list[str],
        column: str | None = None,
        *,
        into: str = "label",
        provenance: bool = False,
        **options: Any,
    ) -> pd.DataFrame:
        """A copy of the frame with column ``into`` holding one of ``classes`` per row.

        Null texts (and rows no label could be given to) get a missing value.
        ``provenance=True`` adds ``{into}_decided_by`` and ``{into}_score``.
        """
        into = check_into(into, self._df.columns, provenance)
        result = _result(self._df, "classify", prompt, classes, column, options)
        values = pd.Categorical(
            result.labels.to_numpy(zero_copy_only=False), categories=list(result.classes)
        )
        return _with_labels(self._df, values, result, into, provenance)

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

        Takes what ``filter`` (``classes=None``) or ``classify`` take, with the
        same options, and returns an :class:`~thrifty_frames.Estimate`. The
        share of not-sampled inputs that the cascade would send to the LLM is
        unknown before any label exists: 90% is assumed when ``target`` is set
        (above the 2-88% measured on four data sets), or pass
        ``escalation_share``. The
        estimate also gives the range from "only the sample" to "every input".

        Examples
        --------
        >>> est = df.thrifty.estimate("Is it positive?", llm="openai/gpt-4o-mini")  # doctest: +SKIP
        >>> est.calls, est.cost  # doctest: +SKIP
        """
        return run_estimate(
            _PandasFrame(self._df), prompt, classes, column, escalation_share, options
        )

    def fit(
        self,
        prompt: str,
        classes: list[str] | None = None,
        column: str | None = None,
        **options: Any,
    ) -> FittedProxy:
        """Label a sample with the LLM, train and certify a proxy, and return it.

        Only the sample is sent to the LLM; apply the proxy to this or any
        other frame with :meth:`predict`, save it with ``proxy.save(path)``.
        ``classes=None`` asks a yes/no question.

        Examples
        --------
        >>> proxy = df.thrifty.fit("Is this review positive?")  # doctest: +SKIP
        >>> new_df.thrifty.predict(proxy)  # doctest: +SKIP
        """
        kind = "filter" if classes is None else "classify"
        task = make_task(kind, prompt, classes)
        opts = make_options(**options)
        texts = texts_for(_PandasFrame(self._df), task, column)
        if len(self._df) == 0:
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
    ) -> pd.DataFrame:
        """A copy of the frame with column ``into`` holding the proxy's labels.

        No LLM call is made. Labels are booleans (nullable ``boolean`` dtype)
        for a yes/no proxy, else a categorical of its classes; null texts give
        a missing value. ``provenance=True`` adds ``{into}_decided_by``
        (``"proxy"`` where the certified cascade keeps the answer,
        ``"proxy_below_target"`` where it would ask the LLM) and
        ``{into}_score``.

        Examples
        --------
        >>> proxy = thrifty_frames.load("sentiment.proxy")  # doctest: +SKIP
        >>> df.thrifty.predict(proxy, column="review", into="positive")  # doctest: +SKIP
        """
        if not isinstance(proxy, FittedProxy):
            msg = (
                f"proxy must be a FittedProxy (from df.thrifty.fit or "
                f"thrifty_frames.load), got {type(proxy).__name__}."
            )
            raise InvalidArgumentError(msg)
        into = check_into(into, self._df.columns, provenance)
        texts = texts_for(_PandasFrame(self._df), proxy.task, column)
        result = proxy.predict(texts)
        if proxy.task.is_filter:
            values = result.labels.to_pandas(
                types_mapper={pa.bool_(): pd.BooleanDtype()}.get
            ).array
        else:
            values = pd.Categorical(
                result.labels.to_numpy(zero_copy_only=False), categories=list(result.classes)
            )
        return _with_labels(self._df, values, result, into, provenance)

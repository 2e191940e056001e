"""thrifty-frames: LLM-quality labels over pandas and Polars at a classifier's cost.

Importing the package registers the ``.thrifty`` namespace on pandas
DataFrames (and on Polars frames and expressions when Polars is installed).

>>> import pandas as pd
>>> import thrifty_frames  # noqa: F401
>>> kept = df.thrifty.filter("Is this review positive?")  # doctest: +SKIP
"""

from __future__ import annotations

import logging

from ._core.estimate import Estimate
from ._core.pipeline import Result
from ._core.report import Report
from ._core.reports import collect_reports, last_report
from ._version import __version__
from .api import classify, filter_mask, label
from .backends.embeddings.base import Embedder
from .backends.llm.base import Completion, LabelRequest, LLMBackend
from .config import Options
from .exceptions import (
    BackendError,
    BudgetExceededError,
    BudgetExceededWarning,
    ColumnNotFoundError,
    ColumnTypeError,
    EmptyInputError,
    InvalidArgumentError,
    LLMCallFailedWarning,
    MissingDependencyError,
    NotFittedError,
    OfflineModelNotFoundError,
    ProxyFileError,
    ProxyNotViableWarning,
    ThriftyError,
    ThriftyWarning,
    UnparseableAnswerWarning,
)
from .fitted import FittedProxy, load

logging.getLogger("thrifty_frames").addHandler(logging.NullHandler())

from ._frontends import pandas as _pandas_frontend  # noqa: E402,F401  registers df.thrifty

try:  # Polars is a core dependency, but keep pandas-only environments working.
    from ._frontends import polars as _polars_frontend  # noqa: F401
except ImportError:  # pragma: no cover
    pass

__all__ = [
    "BackendError",
    "BudgetExceededError",
    "BudgetExceededWarning",
    "ColumnNotFoundError",
    "ColumnTypeError",
    "Completion",
    "Embedder",
    "EmptyInputError",
    "Estimate",
    "FittedProxy",
    "InvalidArgumentError",
    "LLMBackend",
    "LLMCallFailedWarning",
    "LabelRequest",
    "MissingDependencyError",
    "NotFittedError",
    "OfflineModelNotFoundError",
    "Options",
    "ProxyFileError",
    "ProxyNotViableWarning",
    "Report",
    "Result",
    "ThriftyError",
    "ThriftyWarning",
    "UnparseableAnswerWarning",
    "__version__",
    "classify",
    "collect_reports",
    "filter_mask",
    "label",
    "last_report",
    "load",
]

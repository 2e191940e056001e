"""The public surface is pinned: a change to it is a deliberate decision."""

from __future__ import annotations

import logging

import thrifty_frames as tf


def test_all_is_pinned():
    expected = {
        "BackendError", "BudgetExceededError", "ColumnNotFoundError", "ColumnTypeError",
        "Completion", "Embedder", "EmptyInputError", "InvalidArgumentError", "LLMBackend",
        "LabelRequest", "MissingDependencyError", "NotFittedError",
        "OfflineModelNotFoundError", "Options", "ProxyFileError", "ProxyNotViableWarning",
        "Report", "Result", "ThriftyError", "ThriftyWarning", "UnparseableAnswerWarning",
        "__version__", "classify", "collect_reports", "filter_mask", "label", "last_report",
    }
    assert expected <= set(tf.__all__)
    for name in tf.__all__:
        assert hasattr(tf, name), name


def test_errors_inherit_builtins():
    assert issubclass(tf.ColumnNotFoundError, KeyError)
    assert issubclass(tf.ColumnTypeError, TypeError)
    assert issubclass(tf.InvalidArgumentError, ValueError)
    assert issubclass(tf.EmptyInputError, ValueError)
    assert issubclass(tf.MissingDependencyError, ImportError)
    for name in ("ColumnNotFoundError", "BackendError", "ProxyFileError"):
        assert issubclass(getattr(tf, name), tf.ThriftyError)


def test_logger_has_only_a_null_handler():
    logger = logging.getLogger("thrifty_frames")
    assert [type(h) for h in logger.handlers] == [logging.NullHandler]


def test_info_logs_carry_no_row_text(double_llm, caplog):
    import pandas as pd

    secret = "zebra-secret-text"
    df = pd.DataFrame({"t": [f"{secret} good {i}" for i in range(60)] + [f"bad {i}" for i in range(60)]})
    with caplog.at_level(logging.DEBUG, logger="thrifty_frames"):
        df.thrifty.mask("Is it positive? PROMPT-MARK", llm=double_llm(), sample_size=100)
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert info, "one INFO line per stage is expected"
    assert all(secret not in m and "PROMPT-MARK" not in m for m in info)

"""Fitted estimators as plain arrays, JSON and LightGBM text, and back.

A proxy file (:mod:`thrifty_frames.proxyfile`) stores the proxy's estimator
through :func:`dump_estimator` and rebuilds it with :func:`load_estimator`:

* ``LogisticRegression`` and an uncalibrated ``LinearSVC``: ``coef_``,
  ``intercept_``, ``classes_``;
* ``CalibratedClassifierCV`` over ``LinearSVC`` with sigmoid calibration: each
  calibrated classifier's base ``coef_`` and ``intercept_`` plus the sigmoid's
  ``a_`` and ``b_`` per class;
* ``LGBMClassifier``: the booster's text model and ``classes_``.

The arrays reproduce ``predict_proba`` exactly. Loading checks every array's
dtype, shape, index range and finiteness, and that the column map,
coefficients and classes agree, before building anything from them, so an
edited member is a :class:`ProxyFileError` naming it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._version import __version__
from .exceptions import ProxyFileError

__all__ = ["dump_estimator", "edited_member", "load_estimator"]

#: The estimator's settings member (its arrays are stored as ``est_<name>.npy``).
_EST_JSON = "estimator.json"
_KINDS = ("logistic_regression", "linear_svc", "calibrated_linear_svc", "lightgbm")
#: Columns an embedder can give: the hashing embedder's largest is 2 * (2**31 - 1).
_MAX_FEATURES = 2**32
_MAX_FOLDS = 1000


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """The estimator settings that survive JSON (ours are all plain values)."""
    return {
        k: v
        for k, v in params.items()
        if v is None or isinstance(v, (bool, int, float, str))
    }


def dump_estimator(model) -> tuple[dict, dict[str, np.ndarray], dict[str, str]]:
    """Describe a fitted ``ActiveColumns`` proxy as JSON, arrays and text.

    Raises
    ------
    TypeError
        The wrapped estimator is of a kind this format does not store.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    est = model.estimator_
    meta: dict[str, Any] = {"n_features_in": int(model.n_features_in_)}
    arrays: dict[str, np.ndarray] = {"classes": np.asarray(model.classes_)}
    texts: dict[str, str] = {}
    meta["dense"] = model.columns_ is None
    if model.columns_ is not None:
        arrays["columns"] = np.asarray(model.columns_, dtype=np.int64)
    if isinstance(est, (LogisticRegression, LinearSVC)):
        meta["kind"] = (
            "logistic_regression"
            if isinstance(est, LogisticRegression)
            else "linear_svc"
        )
        meta["params"] = _json_params(est.get_params())
        arrays["coef"] = est.coef_
        arrays["intercept"] = np.asarray(est.intercept_)
    elif isinstance(est, CalibratedClassifierCV) and isinstance(
        est.calibrated_classifiers_[0].estimator, LinearSVC
    ):
        meta["kind"] = "calibrated_linear_svc"
        meta["params"] = _json_params(
            est.calibrated_classifiers_[0].estimator.get_params()
        )
        meta["folds"] = len(est.calibrated_classifiers_)
        for i, cc in enumerate(est.calibrated_classifiers_):
            if cc.method != "sigmoid":
                raise TypeError(f"calibration method {cc.method!r} is not stored")
            arrays[f"fold{i}_coef"] = cc.estimator.coef_
            arrays[f"fold{i}_intercept"] = np.asarray(cc.estimator.intercept_)
            arrays[f"fold{i}_classes"] = np.asarray(cc.estimator.classes_)
            arrays[f"fold{i}_a"] = np.array([c.a_ for c in cc.calibrators])
            arrays[f"fold{i}_b"] = np.array([c.b_ for c in cc.calibrators])
    elif type(est).__name__ == "LGBMClassifier":
        meta["kind"] = "lightgbm"
        meta["params"] = _json_params(est.get_params())
        meta["objective"] = est.objective_ if isinstance(est.objective_, str) else None
        texts["lightgbm_model"] = est.booster_.model_to_string()
    else:
        raise TypeError(f"estimator {type(est).__name__} cannot be stored")
    return meta, arrays, texts


def load_estimator(
    meta: dict,
    arrays: dict[str, np.ndarray],
    texts: dict[str, str],
    *,
    n_classes: int | None = None,
):
    """Rebuild the ``ActiveColumns`` proxy described by :func:`dump_estimator`.

    The wrapped estimator is a real scikit-learn or LightGBM object whose
    ``predict_proba`` equals the saved one's bit for bit. Everything is
    checked before use: types, shapes, index ranges, finiteness, and that
    the column map, coefficients and classes agree with one another.
    ``arrays`` are keyed without the ``est_`` prefix they are stored under.

    Parameters
    ----------
    n_classes : int, optional
        How many labels the task has; the estimator's classes are indexes
        into them. Unchecked when None.

    Raises
    ------
    ProxyFileError
        The description is incomplete, or inconsistent with itself or with
        ``n_classes``; the message names the member and what is wrong.
    """
    from ._stages.train import ActiveColumns

    if not isinstance(meta, dict):
        raise edited_member(None, _EST_JSON, "is not a JSON object")
    kind = meta.get("kind")
    if kind not in _KINDS:
        if isinstance(kind, str):
            raise ProxyFileError(
                f"the proxy file holds an estimator of kind {kind!r}, which this "
                f"version of thrifty-frames ({__version__}) cannot rebuild; upgrade "
                "with `pip install -U thrifty-frames`."
            )
        raise edited_member(
            None, _EST_JSON, f"has kind {kind!r} where a name is expected"
        )
    n_features = _json_int(meta, "n_features_in", 1, _MAX_FEATURES)
    dense = meta.get("dense")
    if not isinstance(dense, bool):
        raise edited_member(
            None, _EST_JSON, f"has dense {dense!r} where true or false is expected"
        )
    params = meta.get("params", {})
    if (
        not isinstance(params, dict)
        or _json_params(params) != params
        or not all(isinstance(k, str) for k in params)
    ):
        raise edited_member(
            None, _EST_JSON, "has params that are not a map of plain values"
        )
    high = n_classes if n_classes is not None else np.iinfo(np.int64).max
    classes = _indexes(arrays, "classes", "class indexes", high)
    if len(classes) < 2:
        msg = f"holds {len(classes)} class index where 2 or more are expected"
        raise edited_member(None, _npy("classes"), msg)
    if dense:
        if "columns" in arrays:
            raise edited_member(
                None, _npy("columns"), f"is present although {_EST_JSON} says dense"
            )
        columns = None
        width = n_features
    else:
        columns = _indexes(arrays, "columns", "column indexes", n_features)
        width = len(columns)
    try:
        if kind in ("logistic_regression", "linear_svc"):
            est = _linear(kind, params, arrays, "", classes, width)
        elif kind == "calibrated_linear_svc":
            folds = _json_int(meta, "folds", 1, _MAX_FOLDS)
            est = _calibrated_svc(params, folds, arrays, classes, width)
        else:
            objective = meta.get("objective")
            if objective is not None and not isinstance(objective, str):
                msg = f"has objective {objective!r} where a name or null is expected"
                raise edited_member(None, _EST_JSON, msg)
            if not isinstance(texts.get("lightgbm_model"), str):
                raise edited_member(None, "lightgbm_model.txt", "is missing")
            est = _lightgbm(params, objective, texts["lightgbm_model"], classes, width)
        est.n_features_in_ = width
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ProxyFileError):
            raise
        msg = (
            f"the proxy file's estimator description is incomplete or invalid "
            f"({type(exc).__name__}: {exc}); the file is corrupted. Save the proxy again."
        )
        raise ProxyFileError(msg) from None
    model = ActiveColumns(est)
    model.estimator_ = est
    model.columns_ = columns
    model.n_features_in_ = n_features
    model.classes_ = est.classes_
    return model


def _npy(name: str) -> str:
    return f"est_{name}.npy"


def edited_member(path: Any, member: str, problem: str) -> ProxyFileError:
    """The error for a member whose content does not hold together (naming the
    file too when ``path`` is not None)."""
    where = f"proxy file {str(path)!r}: member" if path else "the proxy file's member"
    msg = (
        f"{where} {member!r} {problem}; the file is corrupted or was edited. "
        "Save the proxy again, or refit it."
    )
    return ProxyFileError(msg)


def _json_int(meta: dict, key: str, low: int, high: int) -> int:
    value = meta.get(key)
    if type(value) is not int or not low <= value <= high:
        msg = f"has {key} {value!r} where an integer in {low}..{high} is expected"
        raise edited_member(None, _EST_JSON, msg)
    return value


def _array(
    arrays: dict, name: str, kinds: str, shape: tuple[int | None, ...]
) -> np.ndarray:
    """The array ``name``, checked for dtype kind, shape (None: any length) and
    finiteness."""
    if name not in arrays:
        raise edited_member(None, _npy(name), "is missing")
    arr = arrays[name]
    if arr.dtype.kind not in kinds:
        what = "integers" if kinds == "iu" else "floating-point numbers"
        raise edited_member(
            None, _npy(name), f"has dtype {arr.dtype} where {what} are expected"
        )
    fits = arr.ndim == len(shape) and all(
        want in (None, got) for got, want in zip(arr.shape, shape, strict=True)
    )
    if not fits:
        want = tuple("any" if s is None else s for s in shape)
        raise edited_member(
            None, _npy(name), f"has shape {arr.shape} where {want} is expected"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise edited_member(None, _npy(name), "holds NaN or infinite values")
    return arr


def _indexes(arrays: dict, name: str, what: str, high: int) -> np.ndarray:
    """The 1-D array ``name`` of distinct, increasing indexes in ``0..high-1``."""
    arr = _array(arrays, name, "iu", (None,))
    low, top = (int(arr.min()), int(arr.max())) if len(arr) else (0, 0)
    if low < 0 or top >= high:
        msg = f"holds {what} from {low} to {top}, outside 0..{high - 1}"
        raise edited_member(None, _npy(name), msg)
    arr = arr.astype(np.int64)
    if np.any(np.diff(arr) <= 0):
        raise edited_member(
            None, _npy(name), f"holds {what} that are not increasing and distinct"
        )
    return arr


def _rows(n_classes: int) -> int:
    """Rows of ``coef_``: one for two classes, else one per class."""
    return 1 if n_classes == 2 else n_classes


def _linear(kind: str, params: dict, arrays: dict, prefix: str, classes, width: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    k = _rows(len(classes))
    cls = LogisticRegression if kind == "logistic_regression" else LinearSVC
    est = cls(**params)
    est.coef_ = _array(arrays, f"{prefix}coef", "f", (k, width))
    est.intercept_ = _array(arrays, f"{prefix}intercept", "f", (k,))
    est.classes_ = classes
    est.n_iter_ = np.zeros(1, dtype=np.int32)
    return est


def _calibrated_svc(params: dict, folds: int, arrays: dict, classes, width: int):
    # TODO: _CalibratedClassifier and _SigmoidCalibration are private scikit-learn
    # classes; they are the only way to rebuild a fitted CalibratedClassifierCV
    # without pickle. A scikit-learn release that renames them breaks loading of
    # "svc" proxies (the round-trip test catches it).
    from sklearn.calibration import (
        CalibratedClassifierCV,
        _CalibratedClassifier,
        _SigmoidCalibration,
    )
    from sklearn.svm import LinearSVC

    pairs = []
    for i in range(folds):
        fold_classes = _indexes(
            arrays, f"fold{i}_classes", "class indexes", int(classes[-1]) + 1
        )
        if len(fold_classes) < 2 or not np.isin(fold_classes, classes).all():
            msg = "holds classes that are not two or more of the estimator's classes"
            raise edited_member(None, _npy(f"fold{i}_classes"), msg)
        svc = _linear("linear_svc", params, arrays, f"fold{i}_", fold_classes, width)
        svc.n_features_in_ = width
        k = _rows(len(fold_classes))
        a = _array(arrays, f"fold{i}_a", "f", (k,))
        b = _array(arrays, f"fold{i}_b", "f", (k,))
        calibrators = []
        for a_i, b_i in zip(a, b, strict=True):
            sig = _SigmoidCalibration()
            sig.a_, sig.b_ = a_i, b_i  # numpy scalars of the saved dtype
            calibrators.append(sig)
        pairs.append(
            _CalibratedClassifier(svc, calibrators, classes=classes, method="sigmoid")
        )
    est = CalibratedClassifierCV(LinearSVC(**params), method="sigmoid", cv=folds)
    est.calibrated_classifiers_ = pairs
    est.classes_ = classes
    return est


def _lightgbm(params: dict, objective: str | None, model_str: str, classes, width: int):
    import lightgbm as lgb
    from lightgbm.compat import _LGBMLabelEncoder

    member = "lightgbm_model.txt"
    for line in model_str.splitlines():
        if line.startswith("leaf_value="):
            try:
                leaves = np.array(line[len("leaf_value=") :].split(), dtype=np.float64)
            except ValueError:
                raise edited_member(
                    None, member, "holds leaf values that are not numbers"
                ) from None
            if not np.isfinite(leaves).all():
                raise edited_member(None, member, "holds NaN or infinite leaf values")
    try:
        booster = lgb.Booster(model_str=model_str)
    except lgb.basic.LightGBMError as exc:
        raise edited_member(None, member, f"is not a LightGBM model ({exc})") from None
    if booster.num_feature() != width:
        msg = (
            f"reads {booster.num_feature()} columns where the column map gives {width}"
        )
        raise edited_member(None, member, msg)
    if booster.num_model_per_iteration() != _rows(len(classes)):
        msg = (
            f"gives {booster.num_model_per_iteration()} scores per row where "
            f"{len(classes)} classes need {_rows(len(classes))}"
        )
        raise edited_member(None, member, msg)
    est = lgb.LGBMClassifier(**params)
    # The attributes LGBMClassifier.fit sets, for predict and predict_proba.
    est._Booster = booster
    est._n_features = booster.num_feature()
    est._n_features_in = booster.num_feature()
    est._classes = classes
    est._n_classes = len(classes)
    est._le = _LGBMLabelEncoder().fit(classes)
    est._class_map = dict(
        zip(est._le.classes_, est._le.transform(est._le.classes_), strict=True)
    )
    est._objective = objective or ("binary" if len(classes) <= 2 else "multiclass")
    est._best_iteration = booster.best_iteration
    est.fitted_ = True
    return est

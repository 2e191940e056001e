"""Train stage: pick the proxy (and its regularisation) by cross-validation, then fit.

Every setting of :func:`~thrifty_frames.backends.proxies.base.candidates` is
scored by stratified K-fold accuracy on the rows given, and the best is refitted
on all of them. The pipeline passes every labeled row when no target is set
(no label is wasted) and only the training share when a target is set (the
calibration rows must stay unseen; see :mod:`thrifty_frames._stages.evaluate`).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import StratifiedKFold

from ..backends.embeddings.base import Matrix
from ..backends.proxies.base import candidates, make_proxy

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: object | None
    params: dict = field(default_factory=dict)
    cv_accuracy: float | None = None  # mean out-of-fold accuracy of the chosen setting
    cv_rows: int = 0
    majority_rate: float = 0.0  # accuracy of always answering the commonest label
    reason: str | None = None  # why no model, when model is None
    seconds: float = 0.0


class ActiveColumns:
    """Fit on the columns that are non-zero in the training rows only.

    Hashed text features have a million columns, of which a few thousand occur
    in a labeled sample. A linear model or a tree gives unseen columns no
    weight anyway, so training on the active ones gives the same predictions
    far faster; at prediction time the other columns are dropped.

    ``estimator_`` is the fitted scikit-learn or LightGBM model (on the active
    columns, in ``columns_`` order), for SHAP, calibration plots or registries.
    """

    def __init__(self, estimator) -> None:
        self.estimator = estimator

    def fit(self, X, y):
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            self.columns_ = np.unique(X.indices).astype(np.int64)
            self.n_features_in_ = X.shape[1]
            X = X[:, self.columns_]
        else:
            self.columns_ = None
            self.n_features_in_ = X.shape[1]
        self.estimator_ = self.estimator.fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def _cut(self, X):
        if self.columns_ is not None:
            X = sp.csr_matrix(X)[:, self.columns_]
        return X

    def predict_proba(self, X):
        return self.estimator_.predict_proba(self._cut(X))

    def decision_function(self, X):
        return self.estimator_.decision_function(self._cut(X))

    def predict(self, X):
        return self.estimator_.predict(self._cut(X))


def _n_splits(y: np.ndarray, wanted: int = 5) -> int:
    _, counts = np.unique(y, return_counts=True)
    return int(min(wanted, counts.min()))


def train_proxy(X: Matrix, y: np.ndarray, name: str, seed: int) -> TrainResult:
    """Choose among :func:`candidates` by stratified CV and refit on all rows.

    Classes seen only once cannot be cross-validated; they are kept for the
    final fit (so the proxy can still predict them) but left out of the CV
    score. One class only gives no model and a reason.
    """
    t0 = time.perf_counter()
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    majority = float(counts.max() / counts.sum()) if len(y) else 0.0
    if len(classes) < 2:
        return TrainResult(
            None,
            majority_rate=majority,
            reason=f"the labeled rows hold one class only ({len(y)} rows)",
            seconds=time.perf_counter() - t0,
        )
    keep = np.isin(y, classes[counts >= 2])
    best_params: dict = {}
    best_name = name
    best_acc: float | None = None
    cv_rows = int(keep.sum())
    y_cv = y[keep]
    if cv_rows >= 4 and len(np.unique(y_cv)) >= 2:
        X_cv = X[np.flatnonzero(keep)]
        k = max(2, _n_splits(y_cv))
        folds = list(
            StratifiedKFold(k, shuffle=True, random_state=seed).split(X_cv, y_cv)
        )
        for model_name, params in candidates(name):
            hits = 0
            try:
                for tr, te in folds:
                    model = ActiveColumns(make_proxy(model_name, seed, **params))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model.fit(X_cv[tr], y_cv[tr])
                    hits += int((model.predict(X_cv[te]) == y_cv[te]).sum())
            except ValueError:
                # E.g. the SVM's internal calibration folds miss a rare class.
                continue
            acc = hits / len(y_cv)
            if best_acc is None or acc > best_acc + 1e-12:
                best_acc, best_name, best_params = acc, model_name, params
    elif name == "auto":
        best_name = "lr"
    model = make_proxy(best_name, seed, **best_params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if best_name == "svc" and counts.min() < 3:
            # Sigmoid calibration needs every class in each of its folds.
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.svm import LinearSVC

            svc = LinearSVC(C=best_params.get("C", 0.5), random_state=seed)
            if counts.min() >= 2:
                model = CalibratedClassifierCV(svc, method="sigmoid", cv=2)
            else:  # no calibration possible; scores come from a softmax
                model = svc
        model = ActiveColumns(model).fit(X, y)
    logger.debug(
        "proxy %s chosen with %s (cv accuracy %s)", best_name, best_params, best_acc
    )
    if name == "auto":
        best_params = {"model": best_name, **best_params}
    return TrainResult(
        model,
        params=best_params,
        cv_accuracy=best_acc,
        cv_rows=cv_rows,
        majority_rate=majority,
        seconds=time.perf_counter() - t0,
    )


def predict_proba(model, X: Matrix) -> np.ndarray:
    """Class probabilities, columns in ``model.classes_`` order."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X), dtype=np.float64)
    # A bare decision function (an SVM that could not be calibrated): softmax it.
    d = np.asarray(model.decision_function(X), dtype=np.float64)
    if d.ndim == 1:
        d = np.column_stack([-d, d])
    d = d - d.max(axis=1, keepdims=True)
    e = np.exp(d)
    return e / e.sum(axis=1, keepdims=True)

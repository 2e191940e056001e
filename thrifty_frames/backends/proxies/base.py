"""Proxy models: light scikit-learn-style classifiers, chosen by cross-validation.

Every proxy follows the scikit-learn estimator contract and is seeded. The
built-ins are ``"lr"`` (logistic regression, the default), ``"svc"`` (a linear
SVM calibrated by sigmoid so it yields probabilities) and ``"lgbm"`` (LightGBM).
Each comes with a small grid of regularisation settings; the training stage
picks the best by stratified cross-validation on the labeled rows.
``"auto"`` lets cross-validation choose the model as well, among all three
grids (slower: LightGBM dominates the time).

Logistic regression uses the Newton-CG solver: on hashed text features (tens
of thousands of active columns, hundreds of rows) it reaches the same fit as
L-BFGS 10 to 40 times faster.
"""

from __future__ import annotations

from typing import Any

from ...exceptions import InvalidArgumentError

PROXY_NAMES = ("lr", "svc", "lgbm")
#: Lets cross-validation choose among every model in :data:`PROXY_NAMES`.
AUTO = "auto"


def make_proxy(name: str, seed: int, **params: Any):
    """A fresh, unfitted estimator for ``name`` with ``params`` applied."""
    if name == "lr":
        from sklearn.linear_model import LogisticRegression

        kw = {"C": 4.0, "max_iter": 2000, "solver": "newton-cg", "random_state": seed}
        kw.update(params)
        return LogisticRegression(**kw)
    if name == "svc":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        c = params.pop("C", 0.5)
        base = LinearSVC(C=c, random_state=seed)
        return CalibratedClassifierCV(base, method="sigmoid", cv=3, **params)
    if name == "lgbm":
        from lightgbm import LGBMClassifier

        kw = {
            "n_estimators": 200,
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_child_samples": 5,
            "subsample": 0.9,
            "subsample_freq": 1,
            "colsample_bytree": 0.5,
            "random_state": seed,
            "verbose": -1,
            "n_jobs": 1,
        }
        kw.update(params)
        return LGBMClassifier(**kw)
    msg = f"proxy must be one of {list(PROXY_NAMES)}, got {name!r}."
    raise InvalidArgumentError(msg)


def candidates(name: str) -> list[tuple[str, dict]]:
    """(model, settings) pairs cross-validation chooses among for ``name``."""
    names = PROXY_NAMES if name == AUTO else (name,)
    return [(n, p) for n in names for p in param_grid(n)]


def param_grid(name: str) -> list[dict]:
    """The regularisation settings cross-validation chooses among."""
    if name == "lr":
        return [{"C": c} for c in (0.5, 2.0, 8.0, 32.0)]
    if name == "svc":
        return [{"C": c} for c in (0.05, 0.2, 1.0)]
    if name == "lgbm":
        return [{"num_leaves": n} for n in (7, 15)]
    msg = f"proxy must be one of {list(PROXY_NAMES)}, got {name!r}."
    raise InvalidArgumentError(msg)

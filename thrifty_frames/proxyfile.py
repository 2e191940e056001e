"""Saving and loading fitted proxies in formats that cannot run code on load.

A proxy file is a zip archive (or, with ``folder=True``, a plain folder) of
three kinds of member and nothing else:

``manifest.json``
    The format name and version, the library version that wrote it, and the
    SHA-256 and byte size of every other member.
``*.json``
    Metadata: the certificate, the estimator's settings, the embedder.
``*.npy``
    NumPy arrays of numbers (coefficients, active columns, training rows),
    read with ``allow_pickle=False`` and refused unless their dtype is boolean,
    integer or floating point.
``*.txt``
    LightGBM's own text model (``Booster.model_to_string``).

No member is ever unpickled, imported or executed: a file crafted to run code
under :mod:`pickle` or :mod:`joblib` is refused with :class:`ProxyFileError`.
Checksums catch corruption and truncation before any member is parsed, and a
file written by a newer, incompatible format version is refused with an
upgrade hint.

Estimators are stored as the arrays that reproduce ``predict_proba`` exactly
and rebuilt on load as real scikit-learn or LightGBM objects:

* ``LogisticRegression`` and an uncalibrated ``LinearSVC``: ``coef_``,
  ``intercept_``, ``classes_``;
* ``CalibratedClassifierCV`` over ``LinearSVC`` with sigmoid calibration: each
  calibrated classifier's base ``coef_`` and ``intercept_`` plus the sigmoid's
  ``a_`` and ``b_`` per class;
* ``LGBMClassifier``: the booster's text model and ``classes_``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .exceptions import ProxyFileError

__all__ = ["FORMAT", "FORMAT_VERSION", "read_members", "write_members"]

FORMAT = "thrifty-frames-proxy"
#: Bump when a reader of the previous version could misread a new file.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

_NAME = re.compile(r"^[a-z0-9_]{1,64}\.(json|npy|txt)$")
_SAFE_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_PICKLE_MAGIC = (b"\x80", b"(", b"c", b"]", b"}")
#: A member larger than this is refused before it is read (a zip bomb guard).
_MAX_MEMBER_BYTES = 4 * 2**30
_MAX_MANIFEST_BYTES = 16 * 2**20


# -- writing -------------------------------------------------------------------
def _npy_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr)  # np.save keeps C or Fortran order, as predict sees it
    if arr.dtype.kind not in _SAFE_KINDS:
        msg = f"cannot store an array of dtype {arr.dtype} in a proxy file"
        raise TypeError(msg)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _encode(
    meta: dict[str, Any], arrays: dict[str, np.ndarray], texts: dict[str, str]
) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    for name, value in meta.items():
        members[f"{name}.json"] = json.dumps(
            value, ensure_ascii=False, indent=1, sort_keys=True
        ).encode("utf-8")
    for name, arr in arrays.items():
        members[f"{name}.npy"] = _npy_bytes(arr)
    for name, text in texts.items():
        members[f"{name}.txt"] = text.encode("utf-8")
    for name in members:
        if not _NAME.match(name) or name == MANIFEST:
            raise ValueError(f"bad member name {name!r}")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "members": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in sorted(members.items())
        },
    }
    members[MANIFEST] = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    return members


def write_members(
    path: str | os.PathLike,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    texts: dict[str, str],
    *,
    folder: bool = False,
) -> Path:
    """Write a proxy file atomically: a zip file, or a folder with ``folder=True``.

    ``meta`` maps member names to JSON-serialisable values, ``arrays`` to
    numeric arrays, ``texts`` to text. An existing proxy at ``path`` is
    replaced; an existing folder that is not a proxy is never touched.
    """
    path = Path(path)
    members = _encode(meta, arrays, texts)
    parent = path.parent if str(path.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not (path / MANIFEST).is_file() and any(path.iterdir()):
        msg = (
            f"path {str(path)!r} is a folder that does not hold a saved proxy; "
            "pass a new path, or an empty folder."
        )
        raise ProxyFileError(msg)
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
        try:
            for name, data in members.items():
                (tmp / name).write_bytes(data)
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    try:
        with (
            os.fdopen(fd, "wb") as fh,
            zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        ):
            # The manifest first, so a reader meets it at once.
            for name in [MANIFEST] + sorted(n for n in members if n != MANIFEST):
                zf.writestr(name, members[name])
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path


# -- reading -------------------------------------------------------------------
class _Source:
    """Raw member bytes from a folder or a zip file, size-checked before reading."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zf: zipfile.ZipFile | None = None
        if path.is_dir():
            return
        if not path.exists():
            msg = f"path {str(path)!r} does not exist; pass the path given to save()."
            raise ProxyFileError(msg)
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head[:2] != b"PK":
            looks = (
                "it looks like a pickle or joblib file"
                if head[:1] in _PICKLE_MAGIC
                else "it is not a zip archive, or it is truncated"
            )
            msg = (
                f"path {str(path)!r} is not a thrifty-frames proxy file ({looks}). "
                "Proxy files are zip archives written by FittedProxy.save(); "
                "thrifty-frames never loads pickles."
            )
            raise ProxyFileError(msg)
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            msg = (
                f"proxy file {str(path)!r} is truncated or corrupted ({exc}); save "
                "the proxy again or copy the whole file."
            )
            raise ProxyFileError(msg) from None

    def names(self) -> list[str]:
        if self.zf is not None:
            return self.zf.namelist()
        return [p.name for p in self.path.iterdir()]

    def read(self, name: str, expected_bytes: int | None) -> bytes:
        limit = _MAX_MANIFEST_BYTES if expected_bytes is None else expected_bytes
        try:
            if self.zf is not None:
                info = self.zf.getinfo(name)
                if info.file_size > limit:
                    raise _SizeError(info.file_size)
                data = self.zf.read(name)
            else:
                file = self.path / name
                size = file.stat().st_size
                if size > limit:
                    raise _SizeError(size)
                data = file.read_bytes()
        except KeyError:
            raise FileNotFoundError(name) from None
        except FileNotFoundError:
            raise
        except _SizeError as exc:
            recorded = (
                f"the manifest records {expected_bytes}"
                if expected_bytes is not None
                else f"a manifest holds at most {_MAX_MANIFEST_BYTES}"
            )
            msg = (
                f"proxy file {str(self.path)!r}: member {name!r} holds {exc.size} "
                f"bytes where {recorded}; the file is corrupted. Save the proxy again."
            )
            raise ProxyFileError(msg) from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            msg = (
                f"proxy file {str(self.path)!r}: member {name!r} cannot be read "
                f"({exc}); the file is truncated or corrupted. Save the proxy again."
            )
            raise ProxyFileError(msg) from None
        return data

    def close(self) -> None:
        if self.zf is not None:
            self.zf.close()


class _SizeError(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


def _load_json(where: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        msg = f"{where} is not valid JSON; the file is corrupted. Save the proxy again."
        raise ProxyFileError(msg) from None


def _load_npy(where: str, data: bytes) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            msg = (
                f"{where} holds Python objects, which load only through pickle and "
                "could run code; refused. A proxy file written by thrifty-frames "
                "holds only numeric arrays: do not load this file."
            )
        else:
            msg = f"{where} is not a valid NumPy array ({exc}); the file is corrupted."
        raise ProxyFileError(msg) from None
    except (OSError, EOFError) as exc:
        msg = f"{where} is not a valid NumPy array ({exc}); the file is corrupted."
        raise ProxyFileError(msg) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in _SAFE_KINDS:
        msg = (
            f"{where} has dtype {getattr(arr, 'dtype', '?')}; only numbers are allowed."
        )
        raise ProxyFileError(msg)
    return arr


def read_members(
    path: str | os.PathLike,
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
    """Read and verify a proxy file written by :func:`write_members`.

    Returns
    -------
    meta, arrays, texts
        Keyed by member name without its suffix.

    Raises
    ------
    ProxyFileError
        The path is not a proxy file, was written by a newer incompatible
        format version, is truncated or corrupted (a checksum or size differs,
        a member is missing), or holds a member that could run code.
    """
    path = Path(path)
    src = _Source(path)
    try:
        try:
            raw = src.read(MANIFEST, None)
        except FileNotFoundError:
            msg = (
                f"path {str(path)!r} has no {MANIFEST}, so it is not a thrifty-frames "
                "proxy (or it is truncated); pass the path given to save()."
            )
            raise ProxyFileError(msg) from None
        manifest = _load_json(f"proxy file {str(path)!r}: {MANIFEST}", raw)
        members = _check_manifest(path, manifest)
        meta: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        texts: dict[str, str] = {}
        for name, info in members.items():
            where = f"proxy file {str(path)!r}: member {name!r}"
            try:
                data = src.read(name, info["bytes"])
            except FileNotFoundError:
                msg = (
                    f"{where} is missing; the file is truncated. Save the proxy again."
                )
                raise ProxyFileError(msg) from None
            if len(data) != info["bytes"]:
                msg = (
                    f"{where} holds {len(data)} bytes where the manifest records "
                    f"{info['bytes']}; the file is truncated. Save the proxy again."
                )
                raise ProxyFileError(msg)
            if hashlib.sha256(data).hexdigest() != info["sha256"]:
                msg = (
                    f"{where} does not match its checksum; the file is corrupted. "
                    "Save the proxy again."
                )
                raise ProxyFileError(msg)
            stem, suffix = name.rsplit(".", 1)
            if suffix == "json":
                meta[stem] = _load_json(where, data)
            elif suffix == "npy":
                arrays[stem] = _load_npy(where, data)
            else:
                try:
                    texts[stem] = data.decode("utf-8")
                except UnicodeDecodeError:
                    msg = f"{where} is not UTF-8 text; the file is corrupted."
                    raise ProxyFileError(msg) from None
        # Members not named in the manifest are never read.
        return meta, arrays, texts
    finally:
        src.close()


def _check_manifest(path: Path, manifest: Any) -> dict[str, dict]:
    where = f"proxy file {str(path)!r}"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        msg = (
            f"{where} is not a thrifty-frames proxy (its manifest names no {FORMAT!r})."
        )
        raise ProxyFileError(msg)
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        msg = f"{where} has an invalid format_version {version!r}; it is corrupted."
        raise ProxyFileError(msg)
    if version > FORMAT_VERSION:
        msg = (
            f"{where} was written by thrifty-frames "
            f"{manifest.get('library_version', '?')} in proxy format version "
            f"{version}, but this installation (thrifty-frames {__version__}) reads "
            f"format versions up to {FORMAT_VERSION}; upgrade with "
            "`pip install -U thrifty-frames`."
        )
        raise ProxyFileError(msg)
    members = manifest.get("members")
    if not isinstance(members, dict):
        raise ProxyFileError(
            f"{where} has a manifest without members; it is corrupted."
        )
    for name, info in members.items():
        ok = (
            isinstance(name, str)
            and _NAME.match(name) is not None
            and name != MANIFEST
            and isinstance(info, dict)
            and isinstance(info.get("sha256"), str)
            and isinstance(info.get("bytes"), int)
            and 0 <= info["bytes"] <= _MAX_MEMBER_BYTES
        )
        if not ok:
            msg = (
                f"{where} lists a member {name!r} that a proxy file cannot hold; "
                "refused (only *.json, *.npy and *.txt members with plain names)."
            )
            raise ProxyFileError(msg)
    return members


# -- estimators ------------------------------------------------------------------
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


def load_estimator(meta: dict, arrays: dict[str, np.ndarray], texts: dict[str, str]):
    """Rebuild the ``ActiveColumns`` proxy described by :func:`dump_estimator`.

    The wrapped estimator is a real scikit-learn or LightGBM object whose
    ``predict_proba`` equals the saved one's bit for bit.
    """
    from ._stages.train import ActiveColumns

    try:
        kind = meta["kind"]
        classes = arrays["classes"]
        columns = None if meta["dense"] else arrays["columns"]
        width = int(meta["n_features_in"]) if columns is None else len(columns)
        params = dict(meta.get("params", {}))
        if kind in ("logistic_regression", "linear_svc"):
            est = _linear(kind, params, arrays["coef"], arrays["intercept"], classes)
        elif kind == "calibrated_linear_svc":
            est = _calibrated_svc(params, int(meta["folds"]), arrays, classes)
        elif kind == "lightgbm":
            est = _lightgbm(
                params, meta.get("objective"), texts["lightgbm_model"], classes
            )
        else:
            raise ProxyFileError(
                f"the proxy file holds an estimator of kind {kind!r}, which this "
                f"version of thrifty-frames ({__version__}) cannot rebuild; upgrade "
                "with `pip install -U thrifty-frames`."
            )
        est.n_features_in_ = width
    except (KeyError, TypeError, ValueError) as exc:
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
    model.n_features_in_ = int(meta["n_features_in"])
    model.classes_ = est.classes_
    return model


def _linear(kind: str, params: dict, coef, intercept, classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    cls = LogisticRegression if kind == "logistic_regression" else LinearSVC
    est = cls(**params)
    est.coef_ = coef
    est.intercept_ = intercept
    est.classes_ = classes
    est.n_iter_ = np.zeros(1, dtype=np.int32)
    return est


def _calibrated_svc(params: dict, folds: int, arrays: dict, classes):
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
        svc = _linear(
            "linear_svc",
            params,
            arrays[f"fold{i}_coef"],
            arrays[f"fold{i}_intercept"],
            arrays[f"fold{i}_classes"],
        )
        svc.n_features_in_ = arrays[f"fold{i}_coef"].shape[1]
        calibrators = []
        for a, b in zip(arrays[f"fold{i}_a"], arrays[f"fold{i}_b"], strict=True):
            sig = _SigmoidCalibration()
            sig.a_, sig.b_ = a, b  # numpy scalars of the saved dtype
            calibrators.append(sig)
        pairs.append(
            _CalibratedClassifier(svc, calibrators, classes=classes, method="sigmoid")
        )
    est = CalibratedClassifierCV(LinearSVC(**params), method="sigmoid", cv=folds)
    est.calibrated_classifiers_ = pairs
    est.classes_ = classes
    return est


def _lightgbm(params: dict, objective: str | None, model_str: str, classes):
    import lightgbm as lgb
    from lightgbm.compat import _LGBMLabelEncoder

    try:
        booster = lgb.Booster(model_str=model_str)
    except lgb.basic.LightGBMError as exc:
        raise ValueError(f"LightGBM rejected the model text: {exc}") from None
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

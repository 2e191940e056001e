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
Checksums catch corruption and truncation before any member is parsed (any
damage to the zip structure is reported the same way), and a file written by
a newer, incompatible format version is refused with an upgrade hint. A file
whose members were edited and whose checksums were recomputed is caught by
:func:`load_estimator`, which checks every array's dtype, shape, index range
and finiteness, and that the column map, coefficients and classes agree,
before building anything from them.

Saving replaces a proxy file or folder this library wrote, and nothing else.

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
import secrets
import shutil
import struct
import zipfile
import zlib
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

_NAME = re.compile(r"[a-z0-9_]{1,64}\.(json|npy|txt)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SAFE_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_PICKLE_MAGIC = (b"\x80", b"(", b"c", b"]", b"}")
#: A member larger than this is refused before it is read (a zip bomb guard).
_MAX_MEMBER_BYTES = 4 * 2**30
_MAX_MANIFEST_BYTES = 16 * 2**20
#: The estimator's settings member (its arrays are stored as ``est_<name>.npy``).
_EST_JSON = "estimator.json"
_KINDS = ("logistic_regression", "linear_svc", "calibrated_linear_svc", "lightgbm")
#: Columns an embedder can give: the hashing embedder's largest is 2 * (2**31 - 1).
_MAX_FEATURES = 2**32
_MAX_FOLDS = 1000
#: What :mod:`zipfile` raises on a damaged archive, beyond ``BadZipFile``: a
#: flipped byte in compressed data gives ``zlib.error`` (or ``lzma.LZMAError``
#: when the compression method byte is hit), a flipped version or method gives
#: ``NotImplementedError``, a flipped encryption flag ``RuntimeError``.
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    NotImplementedError,
    RuntimeError,
    OSError,
    EOFError,
    ValueError,
)
try:
    import lzma
except ImportError:  # Python built without lzma: zipfile raises RuntimeError
    pass
else:
    _ZIP_ERRORS += (lzma.LZMAError,)


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
        if not _NAME.fullmatch(name) or name == MANIFEST:
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
    numeric arrays, ``texts`` to text. A leading ``~`` in ``path`` is the
    user's home folder. An existing proxy at ``path`` (file or folder) is
    replaced; anything else there (a file, or a folder that is not empty) is
    never touched. The result gets the usual modes for new files and folders
    (those the umask allows).

    Raises
    ------
    ProxyFileError
        ``path`` holds something other than a proxy file, or names no file.
    """
    path = Path(path).expanduser()
    if path.name in ("", ".", ".."):
        msg = f"path {str(path)!r} names no file; pass a file name such as 'a.proxy'."
        raise ProxyFileError(msg)
    members = _encode(meta, arrays, texts)
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    _refuse_foreign(path)
    # Not tempfile.mkstemp or mkdtemp: their modes (0600, 0700) would stick to
    # the result; open "x" and mkdir give a new file's usual umask-derived mode.
    tmp = parent / f".{path.name[:64]}.{secrets.token_hex(8)}.tmp"
    if folder:
        tmp.mkdir()
    else:
        fh = open(tmp, "xb")  # closed by the with block below
    try:
        if folder:
            for name, data in members.items():
                (tmp / name).write_bytes(data)
            _remove(path)
        else:
            with fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                # The manifest first, so a reader meets it at once.
                for name in [MANIFEST] + sorted(n for n in members if n != MANIFEST):
                    zf.writestr(name, members[name])
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def _refuse_foreign(path: Path) -> None:
    """Refuse to replace anything at ``path`` but a proxy file or an empty folder."""
    if not os.path.lexists(path):
        return
    if path.is_dir():
        if _holds_proxy(path) or not any(path.iterdir()):
            return
        what = "a folder"
        fix = "pass a new path, or an empty folder."
    else:
        if path.is_file() and _holds_proxy(path):
            return
        what = "a file" if path.is_file() else "something"
        fix = "pass a new path, or delete it first if it is no longer needed."
    msg = (
        f"path {str(path)!r} is {what} that does not hold a saved proxy, and save() "
        f"replaces only proxy files; {fix}"
    )
    raise ProxyFileError(msg)


def _holds_proxy(path: Path) -> bool:
    """Whether ``path`` is a proxy file or folder (judged by its manifest)."""
    if path.is_dir():
        for entry in path.iterdir():
            if not entry.is_file() or not (
                entry.name == MANIFEST or _NAME.fullmatch(entry.name)
            ):
                return False  # a proxy folder holds its members and nothing else
    try:
        src = _Source(path)
    except ProxyFileError:
        return False
    try:
        manifest = json.loads(src.read(MANIFEST, None))
    except (ProxyFileError, FileNotFoundError, ValueError, RecursionError):
        return False
    finally:
        src.close()
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


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
        except _ZIP_ERRORS as exc:
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
        except _ZIP_ERRORS as exc:
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
            f"{where} has dtype {getattr(arr, 'dtype', '?')}; only numbers are allowed "
            "(booleans, integers, real floating point)."
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
    path = Path(path).expanduser()
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
            f"{where} is not a thrifty-frames proxy (its manifest names no "
            f"{FORMAT!r}), or it is corrupted."
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
            and _NAME.fullmatch(name) is not None
            and name != MANIFEST
            and isinstance(info, dict)
            and isinstance(info.get("sha256"), str)
            and _SHA256.fullmatch(info["sha256"]) is not None
            and type(info.get("bytes")) is int
            and 0 <= info["bytes"] <= _MAX_MEMBER_BYTES
        )
        if not ok:
            msg = (
                f"{where} lists a member {name!r} that a proxy file cannot hold; "
                "refused (only *.json, *.npy and *.txt members with plain names). "
                "The file is corrupted, or was not written by thrifty-frames."
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
        raise _bad(_EST_JSON, "is not a JSON object")
    kind = meta.get("kind")
    if kind not in _KINDS:
        if isinstance(kind, str):
            raise ProxyFileError(
                f"the proxy file holds an estimator of kind {kind!r}, which this "
                f"version of thrifty-frames ({__version__}) cannot rebuild; upgrade "
                "with `pip install -U thrifty-frames`."
            )
        raise _bad(_EST_JSON, f"has kind {kind!r} where a name is expected")
    n_features = _json_int(meta, "n_features_in", 1, _MAX_FEATURES)
    dense = meta.get("dense")
    if not isinstance(dense, bool):
        raise _bad(_EST_JSON, f"has dense {dense!r} where true or false is expected")
    params = meta.get("params", {})
    if (
        not isinstance(params, dict)
        or _json_params(params) != params
        or not all(isinstance(k, str) for k in params)
    ):
        raise _bad(_EST_JSON, "has params that are not a map of plain values")
    high = n_classes if n_classes is not None else np.iinfo(np.int64).max
    classes = _indexes(arrays, "classes", "class indexes", high)
    if len(classes) < 2:
        msg = f"holds {len(classes)} class index where 2 or more are expected"
        raise _bad(_npy("classes"), msg)
    if dense:
        if "columns" in arrays:
            raise _bad(_npy("columns"), f"is present although {_EST_JSON} says dense")
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
                raise _bad(_EST_JSON, msg)
            if not isinstance(texts.get("lightgbm_model"), str):
                raise _bad("lightgbm_model.txt", "is missing")
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


def _bad(member: str, problem: str) -> ProxyFileError:
    msg = (
        f"the proxy file's member {member!r} {problem}; the file is corrupted or "
        "was edited. Save the proxy again."
    )
    return ProxyFileError(msg)


def _json_int(meta: dict, key: str, low: int, high: int) -> int:
    value = meta.get(key)
    if type(value) is not int or not low <= value <= high:
        msg = f"has {key} {value!r} where an integer in {low}..{high} is expected"
        raise _bad(_EST_JSON, msg)
    return value


def _array(
    arrays: dict, name: str, kinds: str, shape: tuple[int | None, ...]
) -> np.ndarray:
    """The array ``name``, checked for dtype kind, shape (None: any length) and
    finiteness."""
    if name not in arrays:
        raise _bad(_npy(name), "is missing")
    arr = arrays[name]
    if arr.dtype.kind not in kinds:
        what = "integers" if kinds == "iu" else "floating-point numbers"
        raise _bad(_npy(name), f"has dtype {arr.dtype} where {what} are expected")
    fits = arr.ndim == len(shape) and all(
        want in (None, got) for got, want in zip(arr.shape, shape, strict=True)
    )
    if not fits:
        want = tuple("any" if s is None else s for s in shape)
        raise _bad(_npy(name), f"has shape {arr.shape} where {want} is expected")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise _bad(_npy(name), "holds NaN or infinite values")
    return arr


def _indexes(arrays: dict, name: str, what: str, high: int) -> np.ndarray:
    """The 1-D array ``name`` of distinct, increasing indexes in ``0..high-1``."""
    arr = _array(arrays, name, "iu", (None,))
    low, top = (int(arr.min()), int(arr.max())) if len(arr) else (0, 0)
    if low < 0 or top >= high:
        msg = f"holds {what} from {low} to {top}, outside 0..{high - 1}"
        raise _bad(_npy(name), msg)
    arr = arr.astype(np.int64)
    if np.any(np.diff(arr) <= 0):
        raise _bad(_npy(name), f"holds {what} that are not increasing and distinct")
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
            raise _bad(_npy(f"fold{i}_classes"), msg)
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
                raise _bad(member, "holds leaf values that are not numbers") from None
            if not np.isfinite(leaves).all():
                raise _bad(member, "holds NaN or infinite leaf values")
    try:
        booster = lgb.Booster(model_str=model_str)
    except lgb.basic.LightGBMError as exc:
        raise _bad(member, f"is not a LightGBM model ({exc})") from None
    if booster.num_feature() != width:
        msg = (
            f"reads {booster.num_feature()} columns where the column map gives {width}"
        )
        raise _bad(member, msg)
    if booster.num_model_per_iteration() != _rows(len(classes)):
        msg = (
            f"gives {booster.num_model_per_iteration()} scores per row where "
            f"{len(classes)} classes need {_rows(len(classes))}"
        )
        raise _bad(member, msg)
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

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
and rebuilt on load as real scikit-learn or LightGBM objects; that part is
:mod:`thrifty_frames.estimator_io`.
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
from .estimator_io import dump_estimator, load_estimator
from .exceptions import ProxyFileError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "dump_estimator",
    "load_estimator",
    "read_members",
    "write_members",
]

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

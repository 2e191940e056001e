"""Persistent store of paid LLM labels.

Labels live in a :mod:`diskcache` folder. Keys are SHA-256 digests of
everything that shaped the answer (backend id, the rendered messages, the
allowed choices, the prompt-template version), so a change to any of them can
never return a stale label. Values are short JSON strings, stored raw: loading
a cache never unpickles anything.

Lookups are batched: one SQL query per few hundred keys, not one per row.
Writes happen one answer at a time, as answers arrive, so an interrupted run
keeps everything it paid for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import diskcache

logger = logging.getLogger(__name__)

_MODE_RAW = 1  # diskcache's storage mode for short str values
_CHUNK = 500  # keys per SQL query, under SQLite's parameter limit


def default_cache_dir() -> Path:
    """Where caches live unless ``cache_dir`` says otherwise.

    ``$THRIFTY_FRAMES_CACHE`` if set, else ``$XDG_CACHE_HOME/thrifty-frames``,
    else ``~/.cache/thrifty-frames``.
    """
    env = os.environ.get("THRIFTY_FRAMES_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return Path(base) / "thrifty-frames"


def digest(*parts: object) -> str:
    """A stable hex digest of JSON-serialisable parts."""
    blob = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LabelCache:
    """A folder of LLM answers keyed by :func:`digest`.

    Parameters
    ----------
    directory
        The cache folder; created if missing. ``False`` disables caching (a
        memory-only dict that lives as long as this object).
    """

    def __init__(self, directory: str | os.PathLike | None | bool = None) -> None:
        self._lock = threading.Lock()
        if directory is False:
            self._cache = None
            self._memory: dict[str, str] = {}
            self.directory = None
            return
        if directory is None or directory is True:
            directory = default_cache_dir()
        self.directory = Path(directory) / "labels"
        self._cache = diskcache.Cache(str(self.directory), eviction_policy="none")

    def get_many(self, keys: Sequence[str]) -> dict[str, dict]:
        """Return ``{key: record}`` for the keys present; absent keys are left out."""
        found: dict[str, dict] = {}
        if self._cache is None:
            for k in keys:
                if k in self._memory:
                    found[k] = json.loads(self._memory[k])
            return found
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._cache._sql(  # noqa: SLF001 - batched read, see module doc
                f"SELECT key, value FROM Cache WHERE raw = 1 AND mode = {_MODE_RAW} "
                f"AND key IN ({marks})",
                chunk,
            ).fetchall()
            for key, value in rows:
                try:
                    found[key] = json.loads(value)
                except (TypeError, ValueError):  # a foreign entry: ignore it
                    continue
        logger.debug("label cache: %d of %d keys found", len(found), len(unique))
        return found

    def put(self, key: str, record: dict) -> None:
        """Store one answer now (called as each answer arrives)."""
        value = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        if self._cache is None:
            with self._lock:
                self._memory[key] = value
            return
        self._cache.set(key, value)

    def put_many(self, items: Iterable[tuple[str, dict]]) -> None:
        """Store several answers in one transaction."""
        if self._cache is None:
            for k, r in items:
                self.put(k, r)
            return
        with self._cache.transact():
            for k, r in items:
                self.put(k, r)

    def __len__(self) -> int:
        return len(self._memory) if self._cache is None else len(self._cache)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

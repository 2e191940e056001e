"""Loading a proxy file never runs code from it.

Every crafted file here would run code under pickle (it writes a marker file
when unpickled). Each test first proves the payload is live, then asserts that
``thrifty_frames.load`` refuses the file (or ignores the dangerous member) and
that the marker was never written. The LLM in the fixture is a rule-based test
double, not a language model.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import thrifty_frames as tf
from thrifty_frames.exceptions import ProxyFileError


class _Payload:
    """Writes ``marker`` when unpickled: what an attacker's pickle would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        code = f"open({self.marker!r}, 'w').write('code ran')"
        return (exec, (code,))


def _live(build, marker: Path, loader=pickle.loads) -> None:
    """Prove that bytes made by ``build`` run code when unpickled (on a probe)."""
    probe = marker.with_name(marker.name + ".probe")
    loader(build(probe))
    assert probe.read_text() == "code ran"
    probe.unlink()


def _object_npy(marker: Path) -> bytes:
    buf = io.BytesIO()
    arr = np.empty(1, dtype=object)
    arr[0] = _Payload(marker)
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


@pytest.fixture
def proxy_folder(double_llm, tmp_path) -> Path:
    from .test_pandas_frontend import make_reviews

    p = make_reviews(300).thrifty.fit(
        "Is it positive?",
        llm=double_llm(),
        sample_size=200,
        cache_dir=False,
        progress=False,
        target=None,
    )
    return p.save(tmp_path / "p", folder=True)


def _set_member(folder: Path, name: str, data: bytes) -> None:
    """Replace a member and fix the manifest, so only the content is hostile."""
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["members"][name] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _zip(folder: Path, dest: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return dest


def test_object_array_member_with_a_pickle_payload_is_refused(proxy_folder, tmp_path):
    marker = tmp_path / "pwned"
    hostile = _object_npy(marker)
    _live(_object_npy, marker, lambda b: np.load(io.BytesIO(b), allow_pickle=True))
    _set_member(proxy_folder, "est_coef.npy", hostile)
    with pytest.raises(ProxyFileError, match="Python objects.*refused"):
        tf.load(proxy_folder)
    with pytest.raises(ProxyFileError, match="Python objects.*refused"):
        tf.load(_zip(proxy_folder, tmp_path / "hostile.zip"))
    assert not marker.exists()


def test_a_pickle_or_joblib_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps({"model": _Payload(marker)})
    _live(lambda m: pickle.dumps({"model": _Payload(m)}), marker)
    path = tmp_path / "model.joblib"
    path.write_bytes(blob)
    with pytest.raises(
        ProxyFileError, match="pickle or joblib file.*never loads pickles"
    ):
        tf.load(path)
    assert not marker.exists()


def test_a_declared_pickle_member_is_refused_by_name(proxy_folder, tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(_Payload(marker))
    _set_member(proxy_folder, "model.pkl", blob)
    with pytest.raises(
        ProxyFileError, match="'model.pkl' that a proxy file cannot hold"
    ):
        tf.load(proxy_folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name", ["../escape.json", "/etc/x.json", "a/b.npy", "x.npy\x00"]
)
def test_member_names_outside_the_archive_are_refused(proxy_folder, tmp_path, name):
    manifest = json.loads((proxy_folder / "manifest.json").read_text())
    manifest["members"][name] = {"sha256": "0" * 64, "bytes": 2}
    (proxy_folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ProxyFileError, match="cannot hold"):
        tf.load(proxy_folder)


def test_undeclared_members_are_never_read(proxy_folder, tmp_path):
    marker = tmp_path / "pwned"
    extra = {
        "evil.pkl": pickle.dumps(_Payload(marker)),
        "evil.npy": _object_npy(marker),
    }
    q = tf.load(_zip(proxy_folder, tmp_path / "p.zip", extra))  # harmless: ignored
    assert len(q.predict_arrow(["a good film"])) == 1
    assert not marker.exists()


def test_an_oversized_member_is_refused_before_it_is_read(proxy_folder, tmp_path):
    big = np.zeros(2_000_000, dtype=np.float64)  # 16 MB that compresses to little
    buf = io.BytesIO()
    np.save(buf, big)
    (proxy_folder / "est_coef.npy").write_bytes(buf.getvalue())  # manifest unchanged
    with pytest.raises(ProxyFileError, match="holds 16000128 bytes where the manifest"):
        tf.load(_zip(proxy_folder, tmp_path / "bomb.zip"))


def test_non_numeric_arrays_are_refused(proxy_folder):
    buf = io.BytesIO()
    np.save(buf, np.array(["import os"]), allow_pickle=False)
    _set_member(proxy_folder, "est_coef.npy", buf.getvalue())
    with pytest.raises(ProxyFileError, match="only numbers are allowed"):
        tf.load(proxy_folder)


def test_saved_files_hold_only_json_npy_and_text(proxy_folder, tmp_path):
    names = sorted(p.name for p in proxy_folder.iterdir())
    assert all(n.endswith((".json", ".npy", ".txt")) for n in names)
    for n in names:
        if n.endswith(".npy"):
            arr = np.load(proxy_folder / n, allow_pickle=False)
            assert arr.dtype.kind in "biuf"

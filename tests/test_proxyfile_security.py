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
import lzma
import os
import pickle
import re
import shutil
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import thrifty_frames as tf
from thrifty_frames import proxyfile
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


# -- corrupted files -------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """One proxy folder per estimator kind, fitted once for the module."""
    from thrifty_frames.backends.llm.doubles import RuleLLMDouble

    from .conftest import sentiment_rule
    from .test_pandas_frontend import make_reviews

    df = make_reviews(300)
    base = tmp_path_factory.mktemp("saved")
    out = {}
    for name in ("lr", "svc", "lgbm"):
        p = df.thrifty.fit(
            "Is it positive?",
            llm=RuleLLMDouble(sentiment_rule),
            sample_size=200,
            cache_dir=False,
            progress=False,
            target=None,
            proxy=name,
        )
        out[name] = p.save(base / name, folder=True)
    return out


def _copy(saved: dict[str, Path], name: str, dest: Path) -> Path:
    return Path(shutil.copytree(saved[name], dest / name))


def _central_record(raw: bytes, member: str) -> int:
    """Offset of ``member``'s record in the zip's central directory."""
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        pos = zf.start_dir
    while raw[pos : pos + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack("<HHH", raw[pos + 28 : pos + 34])
        if raw[pos + 46 : pos + 46 + n] == member.encode():
            return pos
        pos += 46 + n + m + k
    raise KeyError(member)


def _compressed_span(raw: bytes, member: str) -> slice:
    """Where ``member``'s compressed bytes lie in the zip."""
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        info = zf.getinfo(member)
    n, m = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + n + m
    return slice(start, start + info.compress_size)


def _garble_deflate(raw: bytearray, member: str) -> None:
    span = _compressed_span(bytes(raw), member)
    raw[span] = b"\xff" * (span.stop - span.start)  # an invalid deflate block type


def _set_method(method: int):
    def change(raw: bytearray, member: str) -> None:
        pos = _central_record(bytes(raw), member)
        raw[pos + 10 : pos + 12] = struct.pack("<H", method)

    return change


def _lzma_garbage(raw: bytearray, member: str) -> None:
    _set_method(14)(raw, member)
    span = _compressed_span(bytes(raw), member)
    header = b"\x09\x14\x05\x00"  # an LZMA header with five bytes of settings
    raw[span] = header + b"\xff" * (span.stop - span.start - len(header))


def _set_encrypted(raw: bytearray, member: str) -> None:
    raw[_central_record(bytes(raw), member) + 8] |= 0x01


@pytest.mark.parametrize(
    "damage, raw_error",
    [
        (_garble_deflate, zlib.error),
        (_set_method(9), NotImplementedError),  # deflate64, which zipfile lacks
        (_lzma_garbage, lzma.LZMAError),
        (_set_encrypted, RuntimeError),
    ],
    ids=["deflate-stream", "method-deflate64", "method-lzma", "encrypted-flag"],
)
@pytest.mark.parametrize("member", ["manifest.json", "est_coef.npy"])
def test_a_damaged_zip_gives_proxyfileerror_not_a_zip_library_error(
    saved, tmp_path, member, damage, raw_error
):
    folder = _copy(saved, "lr", tmp_path)
    path = tf.load(folder).save(tmp_path / "p.proxy")
    raw = bytearray(path.read_bytes())
    damage(raw, member)
    path.write_bytes(bytes(raw))
    with pytest.raises(raw_error), zipfile.ZipFile(path) as zf:
        zf.read(member)  # the damage is live: zipfile itself fails
    with pytest.raises(ProxyFileError, match=f"{member}.*truncated or corrupted"):
        tf.load(path)


def test_every_flipped_byte_of_a_zip_is_refused_or_harmless(tmp_path):
    path = proxyfile.write_members(
        tmp_path / "small.proxy",
        {"meta": {"a": 1, "b": "some text " * 20}},
        {"arr": np.arange(200, dtype=np.float64)},
        {"model": "tree=0\nleaf_value=0.5\n" * 20},
    )
    raw = path.read_bytes()
    original = proxyfile.read_members(path)
    bad = tmp_path / "bad.proxy"
    for pos in range(len(raw)):
        for mask in (0x01, 0x55, 0xFF):
            b = bytearray(raw)
            b[pos] ^= mask
            bad.write_bytes(b)
            try:
                meta, arrays, texts = proxyfile.read_members(bad)
            except ProxyFileError as exc:
                assert re.search("corrupted|truncated", str(exc)), (pos, mask, exc)
                continue
            # Only bytes that hold nothing read back (dates, spare fields) may change.
            assert meta == original[0] and texts == original[2], (pos, mask)
            assert np.array_equal(arrays["arr"], original[1]["arr"]), (pos, mask)


# -- edited files (checksums recomputed) ---------------------------------------------
def _edit(folder: Path, name: str, change) -> None:
    """Rewrite member ``name`` through ``change`` and fix the manifest to match."""
    path = folder / name
    if name.endswith(".npy"):
        buf = io.BytesIO()
        np.save(buf, np.asarray(change(np.load(path, allow_pickle=False))))
        data = buf.getvalue()
    elif name.endswith(".json"):
        value = json.loads(path.read_text())
        change(value)
        data = json.dumps(value).encode()
    else:
        data = change(path.read_text()).encode()
    _set_member(folder, name, data)


def _first(value):
    out = value.copy()
    out.flat[0] = value.dtype.type(-1) if value.dtype.kind in "iu" else np.nan
    return out


def _nan_leaf(text: str) -> str:
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("leaf_value="))
    lines[i] = "leaf_value=" + " ".join(["nan"] * len(lines[i].split()))
    return "\n".join(lines) + "\n"


EDITS = [
    # The column map: range, order, and agreement with the coefficients.
    ("lr", "est_columns.npy", _first, "'est_columns.npy' holds column indexes from -1"),
    (
        "lr",
        "est_columns.npy",
        lambda a: np.append(a[:-1], 10**9),
        r"'est_columns.npy' holds column indexes .* outside 0\.\.",
    ),
    ("lr", "est_columns.npy", lambda a: a[::-1], "not increasing and distinct"),
    ("lr", "est_columns.npy", lambda a: a[:-3], r"'est_coef.npy' has shape \(1, "),
    ("lr", "est_coef.npy", lambda a: a[:, :-3], r"'est_coef.npy' has shape \(1, "),
    ("lr", "est_coef.npy", _first, "'est_coef.npy' holds NaN or infinite values"),
    ("lr", "est_coef.npy", lambda a: a * np.inf, "'est_coef.npy' holds NaN or inf"),
    ("lr", "est_intercept.npy", lambda a: np.zeros(3), "'est_intercept.npy' has shape"),
    # The classes: integer indexes, at least two, one-dimensional.
    ("lr", "est_classes.npy", lambda a: a + 0.5, "'est_classes.npy' has dtype float"),
    ("lr", "est_classes.npy", lambda a: a[:1], "1 class index where 2 or more"),
    ("lr", "est_classes.npy", lambda a: a[None, :], "'est_classes.npy' has shape"),
    ("lr", "est_classes.npy", lambda a: a[::-1], "not increasing and distinct"),
    # The settings.
    (
        "lr",
        "estimator.json",
        lambda j: j.update(n_features_in=5),
        r"'est_columns.npy' holds column indexes .* outside 0\.\.4",
    ),
    (
        "lr",
        "estimator.json",
        lambda j: j.update(n_features_in="2097152"),
        "'estimator.json' has n_features_in '2097152' where an integer",
    ),
    ("lr", "estimator.json", lambda j: j.update(dense=True), "says dense"),
    ("lr", "estimator.json", lambda j: j.update(dense="no"), "true or false"),
    ("lr", "estimator.json", lambda j: j.update(kind=7), "has kind 7 where a name"),
    ("lr", "estimator.json", lambda j: j.update(params=[1]), "not a map of plain"),
    # Calibrated SVC folds.
    ("svc", "est_fold0_a.npy", lambda a: a[:0], "'est_fold0_a.npy' has shape"),
    ("svc", "est_fold0_b.npy", _first, "'est_fold0_b.npy' holds NaN"),
    ("svc", "est_fold0_coef.npy", lambda a: a[:, 1:], "'est_fold0_coef.npy' has shape"),
    (
        "svc",
        "est_fold0_classes.npy",
        lambda a: a + 1,
        r"'est_fold0_classes.npy' holds class indexes .* outside 0\.\.1",
    ),
    ("svc", "estimator.json", lambda j: j.update(folds=0), "has folds 0 where"),
    (
        "svc",
        "estimator.json",
        lambda j: j.update(folds=99),
        r"_classes.npy' is missing",
    ),
    # LightGBM's model text against the column map and the classes.
    (
        "lgbm",
        "est_columns.npy",
        lambda a: a[:-1],
        r"'lightgbm_model.txt' reads \d+ columns where the column map gives",
    ),
    ("lgbm", "lightgbm_model.txt", _nan_leaf, "NaN or infinite leaf values"),
    ("lgbm", "estimator.json", lambda j: j.update(objective=3), "objective 3"),
]


@pytest.mark.parametrize(
    "kind, member, change, message", EDITS, ids=[f"{e[0]}-{e[1]}" for e in EDITS]
)
def test_an_edited_estimator_is_refused_naming_the_member(
    saved, tmp_path, kind, member, change, message
):
    folder = _copy(saved, kind, tmp_path)
    tf.load(folder)  # the unedited copy loads
    _edit(folder, member, change)
    with pytest.raises(ProxyFileError, match=message):
        tf.load(folder)


def test_estimator_classes_are_checked_against_the_task_labels(saved, tmp_path):
    folder = _copy(saved, "lr", tmp_path)
    _edit(folder, "est_classes.npy", lambda a: np.array([0, 7]))
    meta, arrays, texts = proxyfile.read_members(folder)
    est = {k[4:]: v for k, v in arrays.items() if k.startswith("est_")}
    with pytest.raises(ProxyFileError, match=r"'est_classes.npy' .* outside 0\.\.1"):
        proxyfile.load_estimator(meta["estimator"], est, texts, n_classes=2)
    model = proxyfile.load_estimator(meta["estimator"], est, texts, n_classes=8)
    assert model.classes_.tolist() == [0, 7]


# Checked by fitted.load, which parses the certificate, the report and the
# training rows and knows the task's labels and the embedder's width.
FITTED_EDITS = [
    ("certificate.json", lambda c: c["task"].update(classes="yes")),
    ("certificate.json", lambda c: c["task"].update(classes=["yes"])),
    ("certificate.json", lambda c: c["task"].update(kind="bogus")),
    ("certificate.json", lambda c: c.update(threshold=[1, 2])),
    ("certificate.json", lambda c: c.update(threshold={"conf_at": "abc"})),
    ("certificate.json", lambda c: c.update(target="high")),
    ("certificate.json", lambda c: c.update(quality={"accuracy": "x"})),
    ("certificate.json", lambda c: c["embedder"]["settings"].update(word_ngrams=7)),
    ("report.json", lambda r: r.update(rows="many")),
    ("report.json", lambda r: r.update(decided_by=None)),
    ("est_classes.npy", lambda a: np.array([0, 7])),
    ("estimator.json", lambda e: e.update(n_features_in=2**22)),
    ("train_data.npy", _first),
    ("train_y.npy", lambda a: a + 5),
    ("train_shape.npy", lambda a: a + np.array([0, 1])),
]


@pytest.mark.parametrize(
    "member, change",
    FITTED_EDITS,
    ids=[f"{m}-{i}" for i, (m, _) in enumerate(FITTED_EDITS)],
)
def test_an_edited_certificate_report_or_training_set_is_refused(
    saved, tmp_path, member, change
):
    folder = _copy(saved, "lr", tmp_path)
    _edit(folder, member, change)
    with pytest.raises(ProxyFileError, match=re.escape(repr(member))):
        repr(tf.load(folder))


# -- saving ------------------------------------------------------------------------
@pytest.mark.parametrize("folder", [False, True])
def test_save_never_replaces_a_file_that_is_not_a_proxy(saved, tmp_path, folder):
    proxy = tf.load(saved["lr"])
    target = tmp_path / "out" / "data.parquet"
    target.parent.mkdir()
    target.write_bytes(b"IMPORTANT USER DATA")
    with pytest.raises(
        ProxyFileError,
        match=r"data.parquet' is a file that does not hold a saved proxy",
    ):
        proxy.save(target, folder=folder)
    assert target.read_bytes() == b"IMPORTANT USER DATA"
    assert [p.name for p in target.parent.iterdir()] == ["data.parquet"]  # no temp


def test_save_never_replaces_a_folder_whose_manifest_is_not_a_proxys(saved, tmp_path):
    proxy = tf.load(saved["lr"])
    site = tmp_path / "site"
    site.mkdir()
    (site / "manifest.json").write_text('{"name": "my web app"}')
    (site / "index.html").write_text("<html></html>")
    for folder in (False, True):
        with pytest.raises(ProxyFileError, match="folder that does not hold a saved"):
            proxy.save(site, folder=folder)
    assert sorted(p.name for p in site.iterdir()) == ["index.html", "manifest.json"]
    assert (site / "manifest.json").read_text() == '{"name": "my web app"}'


def test_save_replaces_its_own_proxy_file_or_folder_either_way(saved, tmp_path):
    proxy = tf.load(saved["lr"])
    path = tmp_path / "p.proxy"
    for folder in (False, True, True, False, False):
        proxy.save(path, folder=folder)
        assert path.is_dir() == folder
        assert tf.load(path).certificate == proxy.certificate
    assert [p.name for p in tmp_path.iterdir()] == ["p.proxy"]


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["022", "077"])
def test_saved_files_and_folders_get_the_modes_the_umask_gives(saved, tmp_path, umask):
    proxy = tf.load(saved["lr"])
    old = os.umask(umask)
    try:
        file = proxy.save(tmp_path / "p.proxy")
        folder = proxy.save(tmp_path / "f", folder=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask
    for member in folder.iterdir():
        assert stat.S_IMODE(member.stat().st_mode) == 0o666 & ~umask


def test_save_and_load_expand_the_home_folder(saved, tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    proxy = tf.load(saved["lr"])
    assert proxy.save("~/x.proxy") == home / "x.proxy"
    assert (home / "x.proxy").is_file()
    assert list(cwd.iterdir()) == []  # no literal "~" folder
    assert tf.load("~/x.proxy").certificate == proxy.certificate


@pytest.mark.parametrize("path", ["", ".", ".."])
def test_save_needs_a_path_that_names_a_file(saved, tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProxyFileError, match="names no file"):
        tf.load(saved["lr"]).save(path)
    assert list(tmp_path.iterdir()) == []

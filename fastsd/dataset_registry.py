"""Named image data sets besides MNIST: where they come from and how they are checked.

Each :class:`RemoteSet` names the files of a data set, their SHA-256 digests and sizes,
and the mirrors serving them. :func:`load_registered` finds a set, in order, at an
explicit ``path``, in its cache directory (``default_cache_dir() / name``), or by
download; downloaded files are kept only if their SHA-256 matches, and files in the
cache are checked again on every load (a damaged one is fetched anew).

Where each digest comes from is noted next to it. The real servers cannot be reached
from the machines that test fastsd; the tests serve small fakes from a local server.
"""
from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ._dataset import Dataset, make_dataset
from ._download import fetch_files, sha256_of
from ._idx import DataError
from ._io import atomic_open
from ._sources import IDX_FILES, default_cache_dir, read_idx_set, read_path

__all__ = ["RemoteSet", "REGISTRY", "dataset_names", "load_registered"]

logger = logging.getLogger("fastsd.datasets")


@dataclass(frozen=True)
class RemoteSet:
    """A data set that fastsd can download and check.

    Attributes
    ----------
    name : str
        Registry name, also the cache sub-directory, e.g. ``"fashion-mnist"``.
    homepage : str
        Where the data set and its licence are described.
    files : dict of str to (str, int)
        Downloaded file name -> (SHA-256, size in bytes).
    mirrors : tuple of str
        Base URLs, tried in order for every file.
    counts : (int, int)
        Training and test images; other counts are refused.
    classes : int
        Number of classes (labels ``0 .. classes - 1`` after ``label_offset``).
    members : tuple of str, optional
        For a set shipped in a zip archive (the one entry of ``files``): the four IDX
        files to take from it, in the order train images/labels, test images/labels.
    transpose : bool
        Images are stored column by column (EMNIST) and are transposed on loading.
    label_offset : int
        Subtracted from every label (EMNIST letters are stored as 1..26).
    """

    name: str
    homepage: str
    files: dict[str, tuple[str, int]]
    mirrors: tuple[str, ...]
    counts: tuple[int, int]
    classes: int
    members: tuple[str, ...] = ()
    transpose: bool = False
    label_offset: int = 0

    def wanted(self) -> tuple[str, ...]:
        """The four IDX file names this set is read from."""
        return self.members or tuple(s + ".gz" for s in IDX_FILES)


def _emnist(split: str, counts: tuple[int, int], classes: int, label_offset: int = 0
            ) -> RemoteSet:
    stems = [f"emnist-{split}-{s}" for s in
             ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "test-images-idx3-ubyte", "test-labels-idx1-ubyte")]
    return RemoteSet(
        name=f"emnist-{split}",
        homepage="https://www.nist.gov/itl/products-and-services/emnist-dataset",
        # NIST's gzip.zip (all six splits): SHA-256 and size from tensorflow-datasets
        # (tensorflow_datasets/url_checksums/emnist.txt, URL www.itl.nist.gov/...);
        # the same SHA-256 is pinned for the biometrics.nist.gov URL by other projects.
        files={"gzip.zip": ("fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e",
                            561753746)},
        mirrors=("https://biometrics.nist.gov/cs_links/EMNIST/",
                 "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/"),
        counts=counts, classes=classes, members=tuple(s + ".gz" for s in stems),
        transpose=True, label_offset=label_offset)


#: The registered data sets by name (MNIST itself is :func:`fastsd.datasets.load_mnist`).
REGISTRY: dict[str, RemoteSet] = {
    "fashion-mnist": RemoteSet(
        name="fashion-mnist",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        # SHA-256 and sizes from tensorflow-datasets
        # (tensorflow_datasets/url_checksums/fashion_mnist.txt); the same SHA-256 values
        # are pinned in torchvision (torchvision/prototype/datasets/_builtin/mnist.py).
        files={
            "train-images-idx3-ubyte.gz":
                ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
            "train-labels-idx1-ubyte.gz":
                ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
            "t10k-images-idx3-ubyte.gz":
                ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
            "t10k-labels-idx1-ubyte.gz":
                ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
                 "data/fashion/"),
        counts=(60000, 10000), classes=10),
    "kmnist": RemoteSet(
        name="kmnist",
        homepage="https://github.com/rois-codh/kmnist",
        # SHA-256 and sizes from tensorflow-datasets
        # (tensorflow_datasets/url_checksums/kmnist.txt); the same SHA-256 values are
        # pinned in torchvision (torchvision/prototype/datasets/_builtin/mnist.py).
        files={
            "train-images-idx3-ubyte.gz":
                ("51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4", 18165135),
            "train-labels-idx1-ubyte.gz":
                ("e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17", 29497),
            "t10k-images-idx3-ubyte.gz":
                ("edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5", 3041136),
            "t10k-labels-idx1-ubyte.gz":
                ("20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c", 5120),
        },
        # one server, by https then http (the only published source)
        mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
                 "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
        counts=(60000, 10000), classes=10),
    "emnist-balanced": _emnist("balanced", (112800, 18800), 47),
    "emnist-digits": _emnist("digits", (240000, 40000), 10),
    "emnist-letters": _emnist("letters", (124800, 20800), 26, label_offset=1),
}


def dataset_names() -> list[str]:
    """Every name :func:`fastsd.datasets.load` accepts: ``"mnist"`` and the registry's."""
    return ["mnist", *REGISTRY]


# ----------------------------------------------------------------------------- files
def _verified_download(spec: RemoteSet, directory: Path, mirrors, progress
                       ) -> tuple[list[Path], list[str]]:
    files = {name: sha for name, (sha, _) in spec.files.items()}
    sizes = {name: size for name, (_, size) in spec.files.items()}
    return fetch_files(files, directory, mirrors, progress, sizes)


def _cached(spec: RemoteSet, directory: Path) -> list[Path] | None:
    """The set's downloaded files in ``directory`` if all are there and intact."""
    paths = [directory / name for name in spec.files]
    if not all(p.is_file() for p in paths):
        return None
    for p in paths:
        if sha256_of(p) != spec.files[p.name][0]:
            logger.warning("fastsd: %s in the cache fails its SHA-256 check; fetching it "
                           "again", p)
            return None
    return paths


def _extract(archive: Path, members: Sequence[str], directory: Path) -> list[Path]:
    """Copy ``members`` (matched by file name, in any folder) out of a zip archive."""
    try:
        with zipfile.ZipFile(archive) as zf:
            by_name = {os.path.basename(i.filename): i for i in zf.infolist()
                       if not i.is_dir()}
            missing = [m for m in members if m not in by_name]
            if missing:
                raise DataError(f"{archive}: archive has no {missing}")
            out = []
            for m in members:
                dest = directory / m
                if not dest.is_file():
                    with zf.open(by_name[m]) as src, atomic_open(dest, "wb") as fh:
                        while chunk := src.read(1 << 20):
                            fh.write(chunk)
                out.append(dest)
            return out
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{archive}: cannot read zip archive ({exc})") from None


def _idx_paths(spec: RemoteSet, directory: Path) -> list[Path] | None:
    """The four IDX files of ``spec`` in ``directory`` (or a ``gzip`` folder in it)."""
    for d in (directory, directory / "gzip"):
        paths = [d / m for m in spec.wanted()]
        plain = [p.with_suffix("") for p in paths]
        if all(p.is_file() for p in paths):
            return paths
        if all(p.is_file() for p in plain):
            return plain
    return None


# ----------------------------------------------------------------------------- loading
def _finish(spec: RemoteSet, arrays: dict, source: str, where: str) -> Dataset:
    if spec.transpose:
        arrays["x_train"] = np.swapaxes(arrays["x_train"], 1, 2)
        arrays["x_test"] = np.swapaxes(arrays["x_test"], 1, 2)
    for key in ("y_train", "y_test"):
        y = arrays[key].astype(np.int64) - spec.label_offset
        if y.size and (y.min() < 0 or y.max() >= spec.classes):
            raise DataError(f"{where} ({key}): {spec.name} labels must be "
                            f"{spec.label_offset}..{spec.classes - 1 + spec.label_offset}, "
                            f"found {y.min() + spec.label_offset}..{y.max() + spec.label_offset}")
        arrays[key] = y
    got = (len(arrays["x_train"]), len(arrays["x_test"]))
    if got != spec.counts:
        raise DataError(f"{where}: {spec.name} has {spec.counts[0]} training and "
                        f"{spec.counts[1]} test images, found {got[0]} and {got[1]}")
    return make_dataset(arrays, name=spec.name, source=source, where=where)


def _from_path(spec: RemoteSet, path: Path) -> Dataset:
    """The set from a user-given directory, zip archive or ``.npz``."""
    if path.is_file() and zipfile.is_zipfile(path) and spec.members:
        with tempfile.TemporaryDirectory(prefix="fastsd-") as tmp:
            arrays = read_idx_set(_extract(path, spec.members, Path(tmp)))
        return _finish(spec, arrays, f"path: {path} (zip archive)", str(path))
    if path.is_dir() and spec.members:
        paths = _idx_paths(spec, path)
        if paths is None:
            raise DataError(f"{path}: no {', '.join(spec.wanted())} (plain or .gz) there "
                            f"or in {path / 'gzip'}; they are in {spec.name}'s gzip.zip "
                            f"({spec.homepage})")
        return _finish(spec, read_idx_set(paths), f"path: {path} (IDX files)", str(path))
    arrays, source = read_path(path)
    return _finish(spec, arrays, source, str(path))


def load_registered(name: str, path: str | os.PathLike | None = None, *,
                    cache_dir: str | os.PathLike | None = None, download: bool = True,
                    mirrors: Sequence[str] | None = None, progress: bool = True) -> Dataset:
    """Load a registered data set (:data:`REGISTRY`).

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY`, e.g. ``"fashion-mnist"``.
    path : path-like, optional
        The only source if given: a directory with the set's four IDX files (plain or
        ``.gz``; for EMNIST the ``emnist-<split>-...`` files, also in a ``gzip``
        folder), EMNIST's ``gzip.zip`` itself, or an ``.npz``.
    cache_dir : path-like, optional
        Cache directory (default :func:`~fastsd.datasets.default_cache_dir`); the set
        lives in its sub-directory ``name``.
    download : bool, default True
        Download missing or damaged files.
    mirrors : sequence of str, optional
        Base URLs instead of the set's own.
    progress : bool, default True
        Show a progress bar while downloading.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Unknown name; bad ``path``; files not in the cache and download disabled or
        failing on every mirror; data with the wrong counts or labels.
    """
    spec = REGISTRY.get(name)
    if spec is None:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(dataset_names())}")
    if path is not None:
        return _from_path(spec, Path(path))
    directory = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / name
    if spec.members:  # extracted members need no archive
        paths = _idx_paths(spec, directory)
        if paths is not None:
            return _finish(spec, read_idx_set(paths), f"cache: {directory}", str(directory))
    files = _cached(spec, directory)
    used: list[str] = []
    if files is None:
        if not download:
            raise DataError(f"{name} is not in the cache {directory} and download=False; "
                            f"pass path= a directory holding its files ({spec.homepage})")
        files, used = _verified_download(spec, directory,
                                         spec.mirrors if mirrors is None else tuple(mirrors),
                                         progress)
    if spec.members:
        files = _extract(files[0], spec.members, directory)
    source = (f"download: {', '.join(used)} -> {directory}" if used
              else f"cache: {directory}")
    return _finish(spec, read_idx_set(files), source, str(directory))

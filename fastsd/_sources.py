"""Data sets from local places: IDX directories, ``.npz`` files and arrays in memory,
and the cache directory where downloaded sets are kept."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ._datafiles import KEYS, read_npz
from ._dataset import Dataset, make_dataset
from ._idx import DataError, load_idx

__all__ = ["IDX_FILES", "default_cache_dir", "find_idx", "read_idx_set", "load_idx_dataset",
           "read_path", "from_arrays"]

#: The four standard IDX file stems, in the order train images/labels, test images/labels.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")



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


# ----------------------------------------------------------------------- IDX sets
def find_idx(directory: Path) -> list[Path]:
    """The four standard IDX files in ``directory``, each plain or ``.gz``.

    Two candidates for the same file (``x`` and ``x.gz``, or both spellings) are
    ambiguous and refused: they may differ, and which one is read must not depend on
    a hidden preference.
    """
    found, missing, ambiguous = [], [], []
    for stem in IDX_FILES:
        alt = stem.replace("-idx", ".idx")
        hits = [c for c in (directory / (s + e) for s in (stem, alt) for e in ("", ".gz"))
                if c.is_file()]
        if not hits:
            missing.append(stem)
        elif len(hits) > 1:
            ambiguous.append(" and ".join(h.name for h in hits))
        found.append(hits[0] if hits else None)
    if ambiguous:
        raise DataError(f"{directory}: ambiguous IDX files: {'; '.join(ambiguous)} hold the "
                        "same data set file; keep only one of each")
    if missing:
        raise DataError(f"{directory}: missing IDX files {missing} (plain or .gz)")
    return found


def read_idx_set(paths: Sequence[Path]) -> dict[str, np.ndarray]:
    """The four arrays of an IDX set; images keep their (n, rows, cols) shape."""
    xtr, ytr = load_idx(paths[0], paths[1], flatten=False)
    xte, yte = load_idx(paths[2], paths[3], flatten=False)
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

    Images may have any size (rows and columns need not be equal); labels may be
    any integers in ``0 .. MAX_CLASSES - 1`` (1 000), e.g. EMNIST's 62 classes.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Missing, ambiguous (``x`` and ``x.gz`` both present), corrupt or inconsistent
        files, no images, or too large declared sizes.
    """
    if isinstance(directory_or_paths, (str, os.PathLike)):
        directory = Path(directory_or_paths)
        paths = find_idx(directory)
        where = str(directory)
    else:
        paths = [Path(p) for p in directory_or_paths]
        if len(paths) != 4:
            raise DataError(f"need 4 IDX paths (train images/labels, test images/labels), "
                            f"got {len(paths)}")
        where = str(paths[0].parent)
    return make_dataset(read_idx_set(paths), name=name, source=f"IDX files: {where}",
                        where=where)


def read_path(path: str | os.PathLike, npz_name: str | None = None
              ) -> tuple[dict[str, np.ndarray], str]:
    """The four arrays at ``path`` and a description of it.

    ``path`` is a directory holding the four standard IDX files (plain or ``.gz``), an
    ``.npz`` archive with ``x_train``, ``y_train``, ``x_test``, ``y_test``, or (if
    ``npz_name`` is given) a directory holding such an archive by that name.
    """
    p = Path(path)
    if p.is_dir():
        try:
            idx = find_idx(p)
        except DataError as exc:
            if npz_name is None or not (p / npz_name).is_file():
                also = f"; no {npz_name} there either" if npz_name else ""
                raise DataError(f"{exc}{also}") from None
            p = p / npz_name
        else:
            return read_idx_set(idx), f"path: {p} (IDX files)"
    return read_npz(p), f"path: {p}"


def from_arrays(data: Sequence | Mapping, *, name: str = "arrays") -> Dataset:
    """A :class:`Dataset` from arrays in memory, checked like data read from files.

    Parameters
    ----------
    data : sequence or mapping
        ``(x_train, y_train, x_test, y_test)`` or a mapping with those four keys.
        Images are ``(n, rows, cols)`` of any size, or ``(n, side**2)`` (square);
        integer pixels 0-255 or floats in [0, 1]; labels integers 0-999.
    name : str, default "arrays"
        Name stored in the result.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Wrong number of arrays, or arrays that fail the checks of every data set.
    """
    if isinstance(data, Mapping):
        missing = [k for k in KEYS if k not in data]
        if missing:
            raise DataError(f"arrays: missing {missing} (need {list(KEYS)})")
        arrays = {k: data[k] for k in KEYS}
    elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        if len(data) != 4:
            raise DataError(f"arrays: need 4 arrays (x_train, y_train, x_test, y_test), "
                            f"got {len(data)}")
        arrays = dict(zip(KEYS, data))
    else:
        raise DataError(f"arrays: expected (x_train, y_train, x_test, y_test) or a "
                        f"mapping of them, got {type(data).__name__}")
    return make_dataset(arrays, name=name, source="arrays in memory", where="arrays")

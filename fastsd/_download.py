"""Verified downloads: streamed to a temporary file, kept only if the SHA-256 matches."""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.parse
import urllib.request
from pathlib import Path

from ._idx import DataError
from ._io import atomic_open

__all__ = ["fetch_verified", "sha256_of"]

_MAX_DOWNLOAD = 64 * 2**20  # refuse anything bigger when the server gives no length
_TIMEOUT = 30.0


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

"""Verified downloads: streamed to a temporary file, kept only if the SHA-256 matches.

:func:`fetch_files` puts a set of files, each with its known SHA-256, in a directory,
trying mirror after mirror for each file; :func:`fetch_verified` downloads one URL.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

from ._idx import DataError
from ._io import atomic_open

__all__ = ["fetch_files", "fetch_verified", "sha256_of"]

logger = logging.getLogger("fastsd.datasets")

_MAX_DOWNLOAD = 64 * 2**20  # refuse anything bigger when the server gives no length
_TIMEOUT = 30.0


def fetch_verified(url: str, dest: Path, sha256: str, progress: bool = False,
                   max_bytes: int | None = None) -> None:
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
    max_bytes : int, optional
        Most bytes accepted when the server sends no ``Content-Length`` (default 64 MiB).

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
        limit = total if total is not None else (max_bytes or _MAX_DOWNLOAD)
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


def _url(base: str, name: str) -> str:
    return urllib.parse.urljoin(base if base.endswith("/") else base + "/", name)


def fetch_files(files: Mapping[str, str], dest_dir: Path, mirrors: Sequence[str],
                progress: bool = False, sizes: Mapping[str, int] | None = None,
                ) -> tuple[list[Path], list[str]]:
    """Put each of ``files`` (name -> SHA-256) in ``dest_dir``, verified.

    A file already there with the right SHA-256 is kept; otherwise each mirror is tried
    in turn (``mirror + name``) until one serves it intact. A corrupted, truncated or
    missing copy on one mirror is logged (WARNING, logger ``fastsd.datasets``) and the
    next mirror is tried.

    Parameters
    ----------
    files : mapping of str to str
        File name -> expected hex SHA-256.
    dest_dir : pathlib.Path
        Directory for the files (created if needed).
    mirrors : sequence of str
        Base URLs, tried in order for every file.
    progress : bool, default False
        Show a progress bar per file.
    sizes : mapping of str to int, optional
        Known sizes in bytes, the limit for a server that sends no length.

    Returns
    -------
    (list of pathlib.Path, list of str)
        The files, in the order of ``files``, and the URLs actually downloaded.

    Raises
    ------
    DataError
        No mirrors, or a file no mirror served intact (naming each URL and why).
    """
    if not mirrors:
        raise DataError("no mirrors configured")
    dest_dir.mkdir(parents=True, exist_ok=True)
    paths, used = [], []
    for name, sha in files.items():
        dest = dest_dir / name
        if not (dest.is_file() and sha256_of(dest) == sha):
            used.append(_fetch_one(name, sha, dest, mirrors, progress,
                                   (sizes or {}).get(name)))
        paths.append(dest)
    return paths, used


def _fetch_one(name: str, sha: str, dest: Path, mirrors: Sequence[str], progress: bool,
               size: int | None) -> str:
    """Download ``name`` from the first mirror that serves it intact; return the URL."""
    problems = []
    for base in mirrors:
        url = _url(base, name)
        try:
            logger.info("fastsd: downloading %s", url)
            fetch_verified(url, dest, sha, progress, max_bytes=size)
            return url
        except Exception as exc:  # noqa: BLE001 - HTTP/URL/socket errors, bad data, ...
            problems.append(f"{url}: {exc if isinstance(exc, DataError) else repr(exc)}")
            logger.warning("fastsd: %s failed: %s", url, exc)
    raise DataError(f"could not download {name} from any mirror: " + "; ".join(problems))

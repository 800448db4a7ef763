"""The results file of a sweep: a header line, then one JSON record per run.

The first line identifies the file::

    {"format": "fastsd-sweep-results", "format_version": 1}

A sweep appends only to a missing or empty file (which gets the header) or to a file
that starts with this header, so it never writes into a file that is something else
(a model, another tool's JSON Lines). Records are appended one whole line at a time
(locked, fsynced), so a results file holds every finished run exactly once even if the
sweep was interrupted.

Readers check every line: an incomplete last line (a write cut short by a crash), a
line that is not a JSON object, or a record whose values cannot be (an accuracy
outside [0, 1], negative seconds, an unknown status) is skipped with a warning naming
its line, and so are later duplicates of a run. Files written before the header
existed (records only) are still read, with a note.
"""
from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

from .records import _record_key

try:  # POSIX: an advisory lock keeps lines from two processes from interleaving
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: The first line of a results file.
HEADER = {"format": "fastsd-sweep-results", "format_version": 1}
#: The header as written (and recognised).
HEADER_LINE = json.dumps(HEADER) + "\n"

#: Bytes read to find the header (its line is 56).
HEAD_BYTES = 4096

#: Longest line read (bytes): a record is about 1-2 KiB.
MAX_LINE = 1 << 20

#: Lines warned about one by one; the others are counted in one last warning.
MAX_WARNINGS = 10

#: What a record's ``status`` and ``evaluated_on`` may be.
STATUSES = ("ok", "diverged")
EVALUATED_ON = ("validation", "test")

_WRITE_LOCK = threading.Lock()


# ----------------------------------------------------------------------------- paths
def _check_not_directory(path: Path) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"results path {path} is a directory, not a file")


def _check_results_path(results) -> Path:
    """``results`` as a Path once it is known to be a file this sweep may use: missing,
    empty, or a results file (header first); anything else is refused."""
    if not isinstance(results, (str, os.PathLike)) or not os.fspath(results):
        raise TypeError(f"results must be a file path, got {results!r}")
    path = Path(results)
    _check_not_directory(path)
    if path.exists():
        if not path.is_file():
            raise ValueError(f"results path {path} is not a regular file")
        if not os.access(path, os.R_OK | os.W_OK):
            raise PermissionError(f"results file {path} is not readable and writable")
        with open(path, "rb") as fh:
            _check_header(path, fh.read(HEAD_BYTES), for_writing=True)
    return path


def _check_header(path, start: bytes, *, for_writing: bool) -> bool:
    """Whether a file beginning with ``start`` (its first :data:`HEAD_BYTES` bytes) has
    the header. A header of another version is refused (``ValueError`` naming
    ``path``); so is, for writing, a non-empty file without the header."""
    if not start:
        return False
    try:
        head = json.loads(start.split(b"\n", 1)[0].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        head = None
    if isinstance(head, dict) and head.get("format") == HEADER["format"]:
        version = head.get("format_version")
        if type(version) is int and version == HEADER["format_version"]:
            return True
        raise ValueError(f"{path}: results file format_version {version!r} is not "
                         f"supported (this fastsd reads and writes version "
                         f"{HEADER['format_version']})")
    if for_writing:
        raise ValueError(
            f"{path} is not a sweep results file (its first line is not "
            f"{HEADER_LINE.strip()}); a sweep does not write into it: choose another "
            "results file. A results file written before results files had this header "
            "can be continued once this line is put first")
    return False


# ------------------------------------------------------------------------ appending
def append_record(path: str | os.PathLike, record: Mapping) -> None:
    """Append ``record`` as one JSON line: a single ``write``, flushed and fsynced.

    A missing or empty file first gets the header line (in the same write). An
    advisory lock (``flock``) keeps concurrent writers' lines whole. If the file ends
    in an incomplete line (a write cut short by a crash), the new record starts on a
    line of its own; readers skip the incomplete one.

    Parameters
    ----------
    path : path
        The results file; it and its directory are created if missing.
    record : dict
        A JSON-able record (strict JSON: ``ValueError`` for NaN or infinity).

    Raises
    ------
    ValueError
        ``path`` is a non-empty file that does not start with the header: nothing is
        written.
    """
    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _WRITE_LOCK:
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if not _check_header(path, os.pread(fd, HEAD_BYTES, 0),
                                 for_writing=True):
                line = HEADER_LINE.encode() + line
            elif os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock
        if created and hasattr(os, "O_DIRECTORY"):
            with contextlib.suppress(OSError):
                dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)


# -------------------------------------------------------------------------- records
def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _count(value, low: int) -> bool:
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and value >= low)


def _record_problem(rec) -> str | None:
    """What makes ``rec`` not a valid record, or None.

    NaN or infinite accuracies and seconds are accepted (summaries count them as failed
    runs); finite ones must be in range.
    """
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not a record (object)"
    if not isinstance(rec.get("params"), dict):
        return "no 'params' object"
    if not _count(rec.get("seed"), 0):
        return f"seed {rec.get('seed')!r} is not an integer >= 0"
    if "status" in rec and rec["status"] not in STATUSES:
        return f"unknown status {rec['status']!r} (expected 'ok' or 'diverged')"
    if "evaluated_on" in rec and rec["evaluated_on"] not in EVALUATED_ON:
        return f"unknown evaluated_on {rec['evaluated_on']!r}"
    if "rule" in rec and not isinstance(rec["rule"], str):
        return f"rule {rec['rule']!r} is not a name"
    if "data" in rec and not isinstance(rec["data"], (dict, type(None))):
        return f"data {rec['data']!r} is not an object"
    if "epochs" in rec and not _count(rec["epochs"], 1):
        return f"epochs {rec['epochs']!r} is not an integer >= 1"
    spe = rec.get("samples_per_epoch")
    if spe is not None and not _count(spe, 1):
        return f"samples_per_epoch {spe!r} is not an integer >= 1"
    accuracy = rec.get("accuracy")
    if accuracy is not None:
        if not isinstance(accuracy, dict):
            return f"accuracy {accuracy!r} is not an object"
        for name, value in accuracy.items():
            if value is None or (_real(value) and not math.isfinite(value)):
                continue
            if not _real(value) or not 0 <= value <= 1:
                return f"accuracy {name} = {value!r} is not a fraction in [0, 1]"
    for name in ("seconds", "eval_seconds"):
        value = rec.get(name)
        if value is None or (_real(value) and not math.isfinite(value)):
            continue
        if not _real(value) or value < 0:
            return f"{name} = {value!r} is not a duration >= 0"
    return None


def _lines(fh) -> Iterator[tuple[int, bytes | None, bool]]:
    """``(number, line, complete)`` of an open binary file; ``line`` is None for a line
    longer than :data:`MAX_LINE` (skipped, never held in memory whole)."""
    number = 0
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of it
                line = fh.readline(MAX_LINE)
            yield number, None, True
            continue
        yield number, line, line.endswith(b"\n")


def _parse(line: bytes | None) -> tuple[dict | None, str | None]:
    """The record of one line and None, or None and what is wrong with it."""
    if line is None:
        return None, f"longer than {MAX_LINE} bytes"
    try:
        rec = json.loads(line.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"not JSON ({exc})"
    except RecursionError:
        return None, "JSON nested too deeply"
    problem = _record_problem(rec)
    if problem is None:
        try:
            key = _record_key(rec)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            problem = f"parameters cannot be read ({type(exc).__name__}: {exc})"
        else:
            return {"record": rec, "key": key}, None
    return None, problem


def read_results(path: str | os.PathLike, *, missing_ok: bool = False) -> list[dict]:
    """Records of a results file, in file order, each run once.

    Every line is checked: lines that are not a valid record (an incomplete last line
    from a crash, a value out of range, text that is not JSON) are skipped with a
    ``RuntimeWarning`` naming the line, and so are later duplicates of a run. A file
    without the header whose first line is a valid record (written before the header
    existed) is read with a note (a ``UserWarning``).

    Parameters
    ----------
    path : path
        The results file (JSON Lines).
    missing_ok : bool, default False
        Return ``[]`` for a missing file instead of raising ``FileNotFoundError``.

    Returns
    -------
    list of dict
        The records, the first of each run.

    Raises
    ------
    ValueError
        ``path`` is not a results file: no header, and its first line is no record
        (a model, an image, another tool's file); or a header of another version.
    """
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return []
        raise FileNotFoundError(f"results file not found: {path}")
    _check_not_directory(path)
    records, seen, dups, bad = [], set(), 0, []
    with open(path, "rb") as fh:
        headed = _check_header(path, fh.read(HEAD_BYTES), for_writing=False)
        fh.seek(0)
        first = True
        for number, line, complete in _lines(fh):
            if line is not None and not line.strip():
                continue
            if headed and first:
                first = False
                continue
            parsed, problem = _parse(line)
            if first and parsed is None:  # neither the header nor a record
                raise ValueError(f"{path} is not a sweep results file: its first line is "
                                 f"neither {HEADER_LINE.strip()} nor a record ({problem})")
            if first:
                first = False
                warnings.warn(f"{path} has no header line (written before results files "
                              "had one); its records are read as they are",
                              UserWarning, stacklevel=2)
            if parsed is None:
                what = ("incomplete last line (a write cut short by a crash?)"
                        if not complete else f"not a valid record: {problem}")
                bad.append(f"line {number} ignored: {what}")
                continue
            if parsed["key"] in seen:
                dups += 1
                continue
            seen.add(parsed["key"])
            records.append(parsed["record"])
    for message in bad[:MAX_WARNINGS]:
        warnings.warn(f"{path}: {message}", RuntimeWarning, stacklevel=2)
    if len(bad) > MAX_WARNINGS:
        warnings.warn(f"{path}: {len(bad) - MAX_WARNINGS} more invalid line(s) ignored "
                      f"({len(bad)} in all)", RuntimeWarning, stacklevel=2)
    if dups:
        warnings.warn(f"{path}: {dups} duplicate record(s) of runs already in the file "
                      "ignored", RuntimeWarning, stacklevel=2)
    return records

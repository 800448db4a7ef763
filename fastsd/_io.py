"""Atomic file writes: a file is either absent, the old one, or the complete new one.

:func:`atomic_open` writes to a temporary file next to the target and moves it onto
the target only once it is complete and flushed to disk. Its rules:

- **Temporary files** are named ``.<name>.<host>-<pid>.<random>.part``. A process
  killed while writing (SIGKILL, power loss) leaves its part behind; the next write of
  the same target removes the parts of that target whose process, on this host, is no
  longer alive. Parts of live processes and of other hosts are left alone.
- **Mode**: replacing a file keeps its permission bits (set-user/group-ID bits
  dropped); a new file gets ``0666 & ~umask``, as ``open`` would give it.
- **Symlinks** are written through: when the target is a symbolic link, the file it
  points to is replaced (created if the link dangles) and the link stays a link.
- **Read-only files** are not replaced: an existing target without write permission
  for its owner (``chmod u-w``), or one this process may not write, raises
  ``PermissionError`` naming it, even for root (``os.replace`` alone would silently
  replace it, since only the directory's permissions matter to a rename).
- A target that exists but is not a regular file (a directory, a FIFO, a device) is
  refused with ``ValueError`` before anything is written.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import socket
import stat
from pathlib import Path
from typing import IO, Iterator


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once at import: ``os.umask`` can only be read by setting it, which is not
#: thread-safe.
_UMASK = _read_umask()

#: This host, as it appears in temporary names (characters other than letters,
#: digits, ``_`` and ``-`` replaced, so that a name parses unambiguously).
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "localhost"


def part_name(target: str, pid: int | None = None) -> str:
    """A fresh temporary file name for writing ``target`` (a base name): ``.<target>.
    <host>-<pid>.<random>.part``."""
    pid = os.getpid() if pid is None else pid
    return f".{target}.{_HOST}-{pid}.{secrets.token_hex(4)}.part"


def _part_pattern(target: str) -> re.Pattern:
    return re.compile(rf"\.{re.escape(target)}\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)"
                      r"\.[0-9a-f]+\.part")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as alive)."""
    if pid <= 0:
        return True  # not a pid we wrote: never treat as stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # exists, owned by someone else (or not a pid at all: keep)
    return True


def remove_stale_parts(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that writers of ``target`` killed on this host left.

    Parameters
    ----------
    target : path-like
        The file being written (already resolved through symlinks).

    Returns
    -------
    list of Path
        The files removed.
    """
    target = Path(target)
    pattern = _part_pattern(target.name)
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or match["host"] != _HOST or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):  # another writer removed it first
            os.unlink(target.parent / name)
            removed.append(target.parent / name)
    return removed


def _target_mode(target: Path) -> int:
    """The mode the new file gets; refuses read-only and non-regular targets."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return 0o666 & ~_UMASK
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ValueError(f"{target}: cannot write a file there, it is {kind}")
    if not st.st_mode & stat.S_IWUSR or not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, "refusing to replace a read-only file "
                              "(make it writable or remove it first)", str(target))
    return stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID)


def _create_part(directory: Path, target: str) -> tuple[int, Path]:
    for _ in range(100):
        tmp = directory / part_name(target)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), tmp
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
    raise FileExistsError(f"cannot create a temporary file next to {directory / target}")


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system can sync a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; move it onto ``path`` only on success.

    The module docstring gives the rules for temporary files, modes, symlinks and
    read-only targets.

    Parameters
    ----------
    path : path-like
        Final destination. Its directory is created if missing.
    mode : {"wb", "w"}
        Binary or text mode.

    Yields
    ------
    file object
        Write to it; if the ``with`` block raises, the temporary file is removed
        and ``path`` is left untouched.

    Raises
    ------
    PermissionError
        ``path`` exists and is read-only.
    ValueError
        ``path`` exists and is not a regular file, or ``mode`` is not supported.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports modes 'wb' and 'w', got {mode!r}")
    target = Path(os.path.realpath(path))  # through symlinks: the link stays a link
    file_mode = _target_mode(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(target)
    fd, tmp = _create_part(target.parent, target.name)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            os.fchmod(fh.fileno(), file_mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_directory(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise

"""Memory and time budgets checked before a model allocates anything.

A model at the field's large sizes can need more memory than the machine has (the
inhibition matrix alone is N² numbers: 20 GB at N = 50 000 in float64), and the exact
per-sample rule can take hours per epoch. :func:`check_memory` refuses such a request
with the numbers before any array is made; :func:`warn_slow` says once when a pass is
expected to be slow and what to use instead.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

#: Fraction of the available memory a model may plan to use (the rest is left for the
#: data, Python and the operating system).
MEMORY_FRACTION = 0.9

#: Passes expected to take longer than this many seconds get a warning.
SLOW_PASS_SECONDS = 600.0

_WARNED: set[tuple] = set()


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """Bytes left under a cgroup v2 memory limit, if one is set."""
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as fh:
            used = int(fh.read().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """Memory this process can still allocate, in bytes (None if unknown).

    The smaller of the kernel's ``MemAvailable`` and what a cgroup v2 memory limit
    leaves; on systems without ``/proc``, the physical memory.
    """
    candidates = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if not candidates:
        try:
            candidates = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
        except (ValueError, OSError, AttributeError):
            return None
    return min(candidates)


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_memory(needed: dict[str, int], *, model: str, available: int | None = None,
                 advice: str = "use fewer neurons") -> None:
    """Raise ``MemoryError`` if the arrays in ``needed`` (name -> bytes) do not fit.

    ``model`` describes the request (e.g. ``"SparseDream(n_neurons=50000, float64)"``);
    the message names it, the total, the largest parts, what is available and
    ``advice``.
    """
    total = sum(needed.values())
    if available is None:
        available = available_bytes()
    if available is None or total <= MEMORY_FRACTION * available:
        return
    parts = sorted(needed.items(), key=lambda kv: -kv[1])[:3]
    detail = ", ".join(f"{name} {format_bytes(size)}" for name, size in parts)
    raise MemoryError(
        f"{model} needs about {format_bytes(total)} ({total:,} bytes: {detail}, ...) but "
        f"only {format_bytes(available)} ({available:,} bytes) are available; {advice}")


def warn_slow(key: tuple, seconds: float, message: str) -> None:
    """Warn once per ``key`` if ``seconds`` exceeds :data:`SLOW_PASS_SECONDS`."""
    if seconds <= SLOW_PASS_SECONDS or key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(f"{message} (estimated {seconds / 60:.0f} min per pass)", RuntimeWarning,
                  stacklevel=4)


class ResourceChecks:
    """The model's side of the budgets: what a pass of its parameters allocates and
    how long it may take (hooks a rule overrides), checked before a pass starts."""

    def _check_resources(self, params: dict, X, n_samples: int | None = None) -> None:
        """Refuse a pass whose arrays cannot fit in memory, before allocating them, and
        with ``n_samples`` warn once if a pass over that many samples is expected to be
        slow (:mod:`fastsd._memory`). ``X``: anything with a 2-D ``shape`` (else no
        check: inputs are checked again once converted)."""
        shape = getattr(X, "shape", None)
        if shape is None or len(shape) != 2:
            return
        n_features = int(shape[1])
        dtype = np.dtype(params["dtype"])
        label = (f"{type(self).__name__}(n_neurons={params['n_neurons']}, "
                 f"dtype={dtype.name!r}, {n_features} features)")
        advice = "use fewer neurons" + (" or dtype='float32'" if dtype.itemsize > 4 else "")
        check_memory(self._memory_needed(params, n_features), model=label, advice=advice)
        slow = None if n_samples is None else self._seconds_per_sample(params, n_features)
        if slow is not None:
            seconds, advice = slow
            warn_slow((label, params.get("batch_size")), seconds * n_samples,
                      f"{label}: a pass over {n_samples} samples will be slow; {advice}")

    def _memory_needed(self, params: dict, n_features: int) -> dict[str, int]:
        """Hook: bytes of every large array a pass allocates, by name (state, its
        working copy, scratch). Default: the state arrays twice (state and copy)."""
        n, item = params["n_neurons"], np.dtype(params["dtype"]).itemsize
        sizes = {}
        for name, shape_of in self._state.items():
            size = int(np.prod(shape_of(n, n_features), dtype=np.float64)) * item
            sizes[name] = sizes[name + " (pass copy)"] = size
        return sizes

    def _seconds_per_sample(self, params: dict, n_features: int
                            ) -> tuple[float, str] | None:
        """Hook: a rough estimate of the seconds per training sample (a lower bound
        will do: it only decides a warning) and advice for a faster setting, or None
        (never slow enough to warn)."""
        return None

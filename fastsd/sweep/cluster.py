"""Where a sweep's runs execute: a local Dask cluster started for it, or a running
scheduler reached within a deadline.

Connecting to a scheduler is bounded as a whole: before a ``Client`` is made, the
address is asked who it is (Dask's ``identity``) under one deadline, in a thread of
its own, so an address that accepts TCP but is no Dask scheduler (an HTTP server,
something that sends garbage) is a ``ConnectionError`` naming it within the timeout,
not a hang or a traceback from the wire protocol.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import warnings
from collections.abc import Mapping

from .._validation import check_number

#: Environment of the local cluster's worker processes: one task = one core.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1"}

#: Seconds allowed, beyond the connection timeout, for the probe's thread to finish
#: closing its connection.
_CLOSE_GRACE = 2.0


def _check_execution(client, scheduler, n_workers, retries, connect_timeout):
    """``scheduler`` as a string once the execution arguments are checked."""
    if client is not None and scheduler is not None:
        raise ValueError("give either client or scheduler, not both")
    if scheduler is not None:
        if not isinstance(scheduler, (str, os.PathLike)) or not os.fspath(scheduler):
            raise TypeError(f"scheduler must be an address like 'tcp://host:8786' or a "
                            f"scheduler file, got {scheduler!r}")
        scheduler = os.fspath(scheduler)
        if scheduler.endswith(".json") and not os.path.isfile(scheduler):
            raise FileNotFoundError(f"scheduler file not found: {scheduler}")
    if n_workers is not None:
        check_number("n_workers", n_workers, low=1, integer=True)
        if client is not None or scheduler is not None:
            warnings.warn("n_workers only sizes the local cluster; ignored with an "
                          "existing client or scheduler", UserWarning, stacklevel=3)
    check_number("retries", retries, low=0, integer=True)
    check_number("connect_timeout", connect_timeout, low=0, low_open=True)
    return scheduler


def _scheduler_address(scheduler: str) -> str:
    """The address of ``scheduler``: itself, or the ``address`` in a scheduler file."""
    if not os.path.isfile(scheduler):
        return scheduler
    try:
        with open(scheduler, encoding="utf-8") as fh:
            address = json.loads(fh.read(1 << 20))["address"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ValueError(f"{scheduler} is not a Dask scheduler file (a JSON object with "
                         f"an 'address'): {type(exc).__name__}: {exc}") from None
    if not isinstance(address, str) or not address:
        raise ValueError(f"{scheduler}: 'address' must be an address like "
                         f"'tcp://host:8786', got {address!r}")
    return address


async def _identity(address: str, timeout: float) -> object:
    """What the server at ``address`` says it is (Dask's ``identity`` operation)."""
    from distributed.comm import connect
    from distributed.security import Security

    args = Security().get_connection_args("client")
    comm = await connect(address, timeout=timeout, **args)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        with contextlib.suppress(Exception):
            comm.abort()


def _probe(address: str, timeout: float, where: str) -> None:
    """Raise ``ConnectionError`` unless a Dask scheduler answers at ``address`` within
    ``timeout`` seconds.

    The exchange runs on an event loop of its own in a daemon thread (so it works
    whether or not the caller runs an event loop) under ``asyncio.wait_for``; the
    caller waits at most ``timeout`` plus a short grace for it.
    """
    outcome: dict[str, object] = {}

    def target():
        try:
            outcome["reply"] = asyncio.run(asyncio.wait_for(_identity(address, timeout),
                                                            timeout))
        except BaseException as exc:  # noqa: BLE001 - reported below, in the caller
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="fastsd-scheduler-probe", daemon=True)
    thread.start()
    thread.join(timeout + _CLOSE_GRACE)
    reach = f"cannot reach the Dask scheduler at {where} within {timeout:g} s"
    if thread.is_alive() or isinstance(outcome.get("error"), (TimeoutError,
                                                              asyncio.TimeoutError)):
        raise ConnectionError(f"{reach} (no Dask scheduler answered: nothing listens "
                              "there, or it is not a Dask scheduler)")
    error = outcome.get("error")
    if isinstance(error, OSError):
        raise ConnectionError(f"{reach} ({type(error).__name__}: {error})")
    if error is not None:  # garbage on the wire: a decoding error, a huge frame size
        raise ConnectionError(f"{where} is not a Dask scheduler: its answer could not be "
                              f"read ({type(error).__name__}: {str(error)[:200]})")
    reply = outcome.get("reply")
    kind = reply.get("type") if isinstance(reply, Mapping) else None
    if kind != "Scheduler":
        what = f"a Dask {kind}" if isinstance(kind, str) else f"{str(reply)[:100]!r}"
        raise ConnectionError(f"{where} is not a Dask scheduler: it answered as {what}")


def _start_client(stack: contextlib.ExitStack, client, scheduler, n_workers,
                  timeout: float):
    """The Client to run on; what we start is closed by ``stack``.

    Raises
    ------
    ConnectionError
        ``scheduler`` does not answer as a Dask scheduler within ``timeout`` seconds;
        the message names it.
    """
    if client is not None:
        return client
    from distributed import Client
    if scheduler is not None:
        address = _scheduler_address(scheduler)
        where = address if address == scheduler else f"{address} (from {scheduler})"
        _probe(address, timeout, where)
        try:
            c = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"cannot reach the Dask scheduler at {where} within "
                                  f"{timeout:g} s ({type(exc).__name__}: {exc})") from None
        stack.callback(c.close)
        return c
    import logging

    import dask
    from distributed import LocalCluster

    # Worker processes import numpy and numba while unpickling (before a Nanny's
    # ``env`` is applied), so the thread counts must be in the environment they are
    # spawned with. Dask's nannies (which run in this process) set ``pre-spawn-environ``
    # in os.environ here too: put our values back once the cluster is closed.
    saved = {k: os.environ.get(k) for k in WORKER_ENV}
    stack.callback(_restore_env, saved)
    spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_ENV}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
        cluster = LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1,
            processes=True, env=WORKER_ENV, silence_logs=logging.ERROR,
            dashboard_address=":0")  # any free port: 8787 may be another cluster's
    stack.callback(cluster.close)
    c = Client(cluster, set_as_default=False)
    stack.callback(c.close)
    return c


def _restore_env(saved: Mapping[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

"""Running a sweep on Dask: the client or cluster, the data scattered once, one task
per pending run, and each record appended as soon as its task completes.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .cluster import WORKER_ENV, _check_execution, _start_client  # noqa: F401
from .._memory import available_bytes, check_memory, format_bytes
from ..rules import rule_class
from .config import DEFAULT_SEEDS, _check_seeds, _describe, count_runs, expand
from .data import DEFAULT_VALIDATION, _check_split, _describe_split, _load_data, _split
from .records import _plan, _record_key, _record_split
from .resultsfile import _check_results_path, append_record, read_results
from .task import run_one


class SweepError(RuntimeError):
    """Some runs of a sweep failed (not diverged: raised). The others were recorded.

    Attributes
    ----------
    records : list of dict
        Records of the runs that completed (including earlier ones from the file).
    failures : list of (dict, BaseException)
        The failed runs' descriptions and exceptions; rerunning the sweep retries them.
    """

    def __init__(self, message, records, failures):
        super().__init__(message)
        self.records = records
        self.failures = failures


# ------------------------------------------------------------------------------ sweep
def sweep(grid: Mapping[str, Sequence] | None = None, *,
          settings: Sequence[Mapping] | None = None, seeds: Sequence[int] = DEFAULT_SEEDS,
          base: Mapping | None = None, epochs: int | None = None,
          samples_per_epoch: int | None = None,
          results: str | os.PathLike = "sweep.jsonl", client: Any = None,
          scheduler: str | None = None, n_workers: int | None = None,
          probe: bool = False, data: Any = None, progress: bool = True, retries: int = 1,
          connect_timeout: float = 5.0, rule: str = "sd", evaluate: str = "validation",
          validation: int | float = DEFAULT_VALIDATION) -> list[dict]:
    """Run every (setting, seed) not yet in ``results`` on Dask; return all records.

    By default each run trains on the training set less its last ``validation`` images
    and is scored on those (the WTA's neuron classes come from the images trained on);
    the test set is not used. ``evaluate="test"`` trains on the whole training set and
    scores on the test set: for the final report of settings chosen on validation.

    Parameters
    ----------
    grid : dict name -> list of values, optional
        Swept parameters; their cartesian product gives the settings.
    settings : list of dict, optional
        Explicit settings instead of ``grid`` (each overrides ``base``).
    seeds : sequence of int, default (0, 1, 2)
        ``random_state`` of the runs of each setting.
    base : dict, optional
        Fixed model parameters and fit arguments of every run.
    epochs, samples_per_epoch : int, optional
        Fixed fit arguments (default 1 epoch of all training samples); they, and any
        other ``fit`` argument, may also be swept or put in ``base``.
    results : path, default "sweep.jsonl"
        JSON Lines file: every finished run is appended at once; runs already in it
        are skipped (resume). Created on the first record, with a header line that
        identifies it; an existing non-empty file without the header is refused.
    client : distributed.Client, optional
        Run on this client (left open).
    scheduler : str, optional
        Address (``tcp://host:port``) or scheduler JSON file of a running cluster.
    n_workers : int, optional
        Worker processes of the default ``LocalCluster`` (default ``os.cpu_count()``).
    probe : bool, default False
        Also evaluate ``fastsd.probe.linear_probe``.
    data : None, path, Dataset, dict or tuple, optional
        ``(x_train, y_train, x_test, y_test)``; default MNIST (``load_mnist(data)`` for a
        path).
    evaluate : {"validation", "test"}, default "validation"
        What runs are scored on: the last ``validation`` training images (trained on
        the others), or the test set (trained on all training images).
    validation : int or float, default 1/6
        Images held out of the end of the training set with ``evaluate="validation"``:
        a count, or a fraction of the training set rounded to the nearest int (1/6:
        the last 10 000 of MNIST's 60 000). Ignored with ``evaluate="test"``.
    progress : bool, default True
        Progress bar and the plan on stderr: first the number of runs (settings x
        seeds, before they are validated), then how many are already recorded.
    retries : int, default 1
        Dask reruns of a task that raised (tasks of a dead worker are rerun anyway).
    connect_timeout : float, default 5
        Seconds to wait for ``scheduler`` to answer as a Dask scheduler (the whole
        exchange, not only the TCP connection).
    rule : str, default "sd"
        The registered rule to train (:mod:`fastsd.rules`); ``grid``, ``settings``
        and ``base`` name its parameters.

    Returns
    -------
    list of dict
        The records of all runs of this sweep (earlier ones read from ``results``), in
        plan order (settings, then seeds).

    Raises
    ------
    ValueError, TypeError
        Before any cluster is started or file written: more than
        :data:`~fastsd.sweep.config.MAX_RUNS` runs; bad settings, seeds, split or
        data; a setting no run could train (``samples_per_epoch`` above the images
        trained on, ``batch_size`` above ``samples_per_epoch``); ``results`` not a
        results file, or holding runs of other data or another split.
    MemoryError
        A setting whose run cannot fit in memory: with the local cluster before it
        starts (this machine's available memory shared by its workers), with
        ``client`` or ``scheduler`` before any run is submitted (the smallest
        worker's memory limit per thread, when the workers report one).
    ConnectionError
        ``scheduler`` does not answer as a Dask scheduler within ``connect_timeout``
        (the message names it).
    SweepError
        Some runs raised (other than diverging); all others are recorded.
    """
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (
        lambda msg: None)
    what = dict(settings=settings, base=base, epochs=epochs,
                samples_per_epoch=samples_per_epoch, rule=rule)
    n_settings, n_seeds = count_runs(grid, seeds=seeds, **what)
    say(f"sweep: {n_settings} settings x {n_seeds} seeds = {n_settings * n_seeds} runs")
    specs = expand(grid, **what)
    seeds = _check_seeds(seeds)
    evaluate, validation = _check_split(evaluate, validation)
    results = _check_results_path(results)
    scheduler = _check_execution(client, scheduler, n_workers, retries, connect_timeout)
    if not isinstance(probe, bool):
        raise TypeError(f"probe must be True or False, got {probe!r}")
    if probe:
        import fastsd.probe  # noqa: F401 - fail now, not on every worker
    arrays, info = _split(*_load_data(data), evaluate, validation)
    runs = _plan(specs, seeds, info["n_train"],
                 held_out=info["n_eval"] if evaluate == "validation" else 0)
    if client is None and scheduler is None:  # others: once their workers are known
        _check_memory(specs, info["n_features"], None, n_workers or os.cpu_count() or 1)
    done = _recorded(results, runs, info, evaluate)
    pending = [r for r in runs if r.key not in done]
    say(f"sweep: {len(runs) - len(pending)} of the {len(runs)} runs already in "
        f"{results}, {len(pending)} to run")
    failures = []
    if pending:
        stamp = {"data": info, "evaluated_on": evaluate}
        failures = _execute(pending, arrays, stamp, results, done, client, scheduler,
                            n_workers, probe, progress, retries, connect_timeout, say)
    out = [done[r.key] for r in runs if r.key in done]
    if failures:
        spec, exc = failures[0]
        raise SweepError(f"{len(failures)} of {len(pending)} runs failed (not recorded; "
                         f"run the sweep again to retry them); first: "
                         f"{_describe(spec['setting'])} seed {spec['seed']}: "
                         f"{type(exc).__name__}: {exc}", out, failures)
    return out


def _check_memory(specs, n_features: int, available: int | None, runs_at_once: int
                  ) -> None:
    """Refuse a setting whose run cannot fit in memory (``MemoryError`` naming it), as
    its model's ``fit`` would in every run, but before any run starts.

    Each of ``runs_at_once`` runs (one per worker) gets ``available / runs_at_once``
    bytes; ``available`` defaults to what this machine has.
    """
    total = available_bytes() if available is None else available
    if total is None:
        return
    share = total // runs_at_once
    advice = "use fewer neurons" + (
        f" or fewer workers (the {runs_at_once} workers share {format_bytes(total)})"
        if runs_at_once > 1 else "")
    for entry in specs:
        params = {**entry["params"], "dtype": np.dtype(entry["params"]["dtype"])}
        model = rule_class(entry["rule"])(**entry["params"])
        label = (f"setting {_describe(entry['setting'])} ({type(model).__name__}("
                 f"n_neurons={params['n_neurons']}, dtype={params['dtype'].name!r}), "
                 f"{n_features} features)")
        check_memory(model._memory_needed(params, n_features), available=share,
                     model=label, advice=advice)


def _recorded(results, runs, info: Mapping, evaluate: str) -> dict:
    """Records already in ``results``, by run key, once checked that this sweep may add
    to the file: its runs were made on the same data and scored on the same split.

    The split is checked over the whole file, since runs of different splits can have
    different keys (``samples_per_epoch=None`` is the number of images trained on).
    """
    done = {}
    records = read_results(results, missing_ok=True)
    for rec in records:
        done[_record_key(rec)] = rec
    clash = [r for r in runs if r.key in done
             and done[r.key].get("data", {}).get("hash") not in (None, info["hash"])]
    if clash:
        raise ValueError(f"{results} holds runs of this sweep made on different data "
                         f"({done[clash[0].key]['data']} vs now {info}); use another "
                         "results file")
    here = (evaluate, info["split"])
    for rec in records:
        theirs = _record_split(rec)
        if theirs != here:
            fix = (f"evaluate={theirs[0]!r}" if theirs[0] != evaluate
                   else "the validation split of its runs")
            raise ValueError(f"{results} holds runs scored on {_describe_split(*theirs)}, "
                             f"but this sweep scores on {_describe_split(*here)}; a "
                             "results file holds the runs of one split: use another "
                             f"results file (or {fix} to add to this one)")
    return done


def _execute(pending, arrays, stamp, results, done, client, scheduler, n_workers, probe,
             progress, retries, connect_timeout, say) -> list:
    """Submit ``pending`` runs, record each as it completes; returns the failures.

    ``arrays`` are the four arrays runs receive (training and scored images); ``stamp``
    (``data`` and ``evaluated_on``) goes into every record.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    failures = []
    with contextlib.ExitStack() as stack:
        c = _start_client(stack, client, scheduler, n_workers, connect_timeout)
        workers = c.scheduler_info(n_workers=-1).get("workers", {})
        n = len(workers)
        shares = [(w.get("memory_limit") or 0) // max(int(w.get("nthreads") or 1), 1)
                  for w in workers.values()]
        if (client is not None or scheduler is not None) and shares and min(shares) > 0:
            # each setting's run must fit in the memory of the smallest worker's task
            unique = {id(run.params): run.spec() for run in pending}
            _check_memory(unique.values(), stamp["data"]["n_features"], min(shares), 1)
        link = (getattr(c, "dashboard_link", None)
                if importlib.util.find_spec("bokeh") else None)
        say(f"sweep: on {c.scheduler.address} with {n} worker(s)"
            + (f", dashboard {link}" if link and n else ""))
        if n == 0:
            warnings.warn("the scheduler has no workers yet; the sweep waits for them",
                          RuntimeWarning, stacklevel=3)
        data_futures = c.scatter(list(arrays), broadcast=True)
        by_key = {}
        futures = []
        for run in pending:
            key = (f"fastsd-run-{run.run_id}-{stamp['data']['hash'][:8]}-"
                   f"{stamp['evaluated_on']}{stamp['data']['n_eval']}")
            fut = c.submit(run_one, run.spec(), *data_futures, probe, key=key,
                           retries=retries, pure=False)
            by_key[fut.key] = run
            futures.append(fut)
        bar = stack.enter_context(tqdm(total=len(pending), unit="run", desc="sweep",
                                       disable=not progress, smoothing=0))
        try:
            for fut in as_completed(futures, loop=c.loop):
                run = by_key[fut.key]
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported, others continue
                    failures.append((run.spec(), exc))
                    warnings.warn(f"run {_describe(run.setting)} seed {run.seed} failed: "
                                  f"{type(exc).__name__}: {exc}", RuntimeWarning,
                                  stacklevel=3)
                    continue
                finally:
                    fut.release()
                if run.key in done:  # exactly once, whatever Dask did
                    continue
                rec["run_id"] = run.run_id
                rec.update(stamp)
                append_record(results, rec)
                done[run.key] = rec
                bar.update(1)
                acc = rec["accuracy"].get("cosine")
                bar.set_postfix_str("diverged" if acc is None else f"cosine {100 * acc:.1f}%")
        except BaseException:
            with contextlib.suppress(Exception):
                c.cancel(futures)
            raise
    return failures

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

from .cluster import WORKER_ENV, _check_execution, _start_client  # noqa: F401
from .config import _check_seeds, _describe, expand
from .data import DEFAULT_VALIDATION, _check_split, _describe_split, _load_data, _split
from .records import (_check_results_path, _plan, _record_key, _record_split, append_record,
                      read_results)
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
          settings: Sequence[Mapping] | None = None, seeds: Sequence[int] = (0, 1, 2),
          base: Mapping | None = None, epochs: int | None = None,
          samples_per_epoch: int | None = None,
          results: str | os.PathLike = "sweep.jsonl", client=None,
          scheduler: str | None = None, n_workers: int | None = None,
          probe: bool = False, data=None, progress: bool = True, retries: int = 1,
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
        are skipped (resume). Created on the first record.
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
        Progress bar and a one-line plan on stderr.
    retries : int, default 1
        Dask reruns of a task that raised (tasks of a dead worker are rerun anyway).
    connect_timeout : float, default 5
        Seconds to wait for ``scheduler``.
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
        Bad settings, seeds, split or data, or ``results`` holding runs of other data
        or another split: before any cluster is started or file written.
    ConnectionError
        ``scheduler`` not reachable within ``connect_timeout``.
    SweepError
        Some runs raised (other than diverging); all others are recorded.
    """
    specs = expand(grid, settings=settings, base=base, epochs=epochs,
                   samples_per_epoch=samples_per_epoch, rule=rule)
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
    done = _recorded(results, runs, info, evaluate)
    pending = [r for r in runs if r.key not in done]
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (
        lambda msg: None)
    say(f"sweep: {len(runs)} runs ({len(specs)} settings x {len(seeds)} seeds), "
        f"{len(runs) - len(pending)} already in {results}, {len(pending)} to run")
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
        n = len(c.scheduler_info(n_workers=-1).get("workers", {}))
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

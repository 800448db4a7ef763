"""Hyper-parameter sweeps of SparseDream on a Dask cluster, recorded run by run.

A sweep is a set of *settings* (a grid, whose cartesian product is taken, or an
explicit list) times a list of *seeds*. Every (setting, seed) pair is one *run*: a Dask
task that trains ``SparseDream(**base, **setting, random_state=seed)``, times the fit,
evaluates it (cosine and network-response WTA, optionally the linear probe) and returns
a JSON-able record. The client appends each record to a JSON Lines file as soon as it
arrives, so an interrupted sweep (crash, Ctrl-C, lost cluster) resumes where it
stopped: running the same sweep again skips every run already in the file.

By default (``evaluate="validation"``) a run trains on the training set less its last
``validation`` images (a count, or a fraction: default 1/6, the last 10 000 of MNIST's
60 000) and is scored on those; the test set is not sent to the workers. Choose
settings this way, then report the chosen ones with ``evaluate="test"`` (trained on the
whole training set, scored on the test set) in another results file.

>>> from fastsd.sweep import sweep, summarize, format_summary
>>> records = sweep({"gamma": [0.5, 1, 2]}, base={"samples_per_epoch": 6000},
...                 seeds=(0, 1, 2), results="runs/gamma.jsonl")      # doctest: +SKIP
>>> print(format_summary(summarize("runs/gamma.jsonl")))               # doctest: +SKIP

Where runs execute
------------------
* default: a ``LocalCluster`` with ``n_workers`` (default ``os.cpu_count()``) worker
  processes of one thread each, started for the sweep and closed after it;
* ``scheduler="tcp://host:port"`` (or a scheduler JSON file): an existing cluster;
* ``client=``: a ``distributed.Client`` you made (it is left open).

A script that starts the local cluster must guard its top level with
``if __name__ == "__main__":``: worker processes are spawned and import the main module
(the ``fastsd sweep`` command needs nothing).

Each task limits Numba and BLAS to one thread, so one task uses one core; worker
processes of the local cluster get ``NUMBA_NUM_THREADS=1`` and ``OMP_NUM_THREADS=1``.
The data is sent to every worker once (``scatter(..., broadcast=True)``). If a worker
dies, Dask reruns its tasks elsewhere; a run is still recorded exactly once.

Run identity
------------
A run is keyed by the canonical JSON of all model parameters (defaults filled in and
normalised, e.g. ``gamma=1`` and ``gamma=1.0`` are the same), the fit arguments
(``epochs``, ``samples_per_epoch`` with ``None`` resolved to the number of images trained
on) and the seed. A results file belongs to one data set and one split: resuming with
different data, or another ``evaluate`` or ``validation``, is an error (use another
results file).

Modules
-------
``config`` (parameter names, settings, seeds, TOML configs), ``records`` (run keys,
the plan of runs), ``resultsfile`` (the results file: header, appending, reading and
checking records), ``data`` (the data, its fingerprint, the validation split),
``task`` (one run: the Dask task, :func:`run_one`), ``cluster`` (the local cluster or
a scheduler reached within a deadline), ``runner`` (:func:`sweep` on a Dask client) and
``summary`` (:func:`summarize`, :func:`format_summary`, :func:`plot_sweep`: one split
at a time, named in the table's header); everything public is imported here.

Records
-------
The first line of a results file is its header, ``{"format": "fastsd-sweep-results",
"format_version": 1}``; a sweep refuses to write into a non-empty file without it.
Then one JSON object per line::

    run_id, status ("ok" or "diverged"), error, setting (the swept values), params (all
    model parameters except random_state), seed, epochs, samples_per_epoch, samples
    (samples trained in total), accuracy {"cosine", "response"[, "probe"]} as fractions
    in [0, 1] (None when diverged), evaluated_on ("validation" or "test": what the
    accuracies were measured on; records without it were scored on the test set),
    seconds (fit), eval_seconds, warnings, numba_threads (in use), numba_pool_threads,
    data {name, n_train (images trained on), n_eval (images scored), n_test (the data
    set's test images), n_features, hash (of the data set's four arrays), split
    ("test" or "validation: last V of N training images")}, fastsd_version, host,
    worker, pid, timestamp (UTC, ISO 8601)
"""
from __future__ import annotations

import sys
import types

from ..passes import TrainingDiverged  # noqa: F401 - test seam
from .config import MAX_RUNS, count_runs, expand, sweepable_params  # noqa: F401
from .configfile import CONFIG_SWEEP_KEYS, CONFIG_TABLES, load_config  # noqa: F401
from .records import _plan, run_key  # noqa: F401
from .resultsfile import HEADER, append_record, read_results  # noqa: F401
from .runner import WORKER_ENV, SweepError, _start_client, sweep  # noqa: F401
from .summary import TIME_METRICS, format_summary, plot_sweep, summarize  # noqa: F401
from .task import SCORES, run_one  # noqa: F401

__all__ = ["sweep", "summarize", "format_summary", "plot_sweep", "read_results",
           "append_record", "load_config", "expand", "count_runs", "run_key",
           "sweepable_params",
           "SweepError", "WORKER_ENV", "SCORES"]


class _CallableModule(types.ModuleType):
    """Lets ``fastsd.sweep(...)`` call :func:`sweep` while ``fastsd.sweep.*`` stays a
    package (``import fastsd.sweep.runner`` and friends keep working)."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

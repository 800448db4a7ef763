"""Sweeps on a real Dask cluster: worker death, exactly-once records, resume, bad configs,
the validation split held out of the training set.

A scheduler and two single-threaded workers run as separate processes on 127.0.0.1
(module fixture); one test SIGKILLs a worker in the middle of a sweep.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import fastsd  # noqa: E402
from fastsd import sweep as sw  # noqa: E402
from fastsd.cli import main  # noqa: E402

WORKER_ENV = {**os.environ, **sw.WORKER_ENV, "PYTHONUNBUFFERED": "1"}


# ------------------------------------------------------------------------------ data
def _toy_data():
    """4 classes of sparse prototypes plus noise, 64 pixels in [0, 1]."""
    rng = np.random.default_rng(0)
    protos = rng.random((4, 64)) * (rng.random((4, 64)) < 0.4)

    def make(n):
        y = rng.integers(0, 4, n)
        return np.clip(protos[y] + 0.1 * rng.random((n, 64)), 0, 1), y

    x_train, y_train = make(1000)
    x_test, y_test = make(300)
    return x_train, y_train, x_test, y_test


DATA = _toy_data()
FAST = dict(n_neurons=16, epochs=50, samples_per_epoch=500)  # ~0.05 s of training
SLOW = dict(n_neurons=64, epochs=375, samples_per_epoch=800)  # ~1.5 s; 833 to train on


# --------------------------------------------------------------------------- cluster
class ProcessCluster:
    """``dask scheduler`` and ``dask worker --no-nanny`` processes on 127.0.0.1."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.workers: dict[int, subprocess.Popen] = {}
        self.scheduler_file = str(tmp / "scheduler.json")
        self.scheduler = self._spawn(
            "scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
            "--port", "0", "--dashboard-address", "127.0.0.1:0",
            "--scheduler-file", self.scheduler_file)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.address = json.loads(Path(self.scheduler_file).read_text())["address"]
                break
            except (OSError, ValueError, KeyError):
                if time.monotonic() > deadline or self.scheduler.poll() is not None:
                    raise RuntimeError("dask scheduler did not start: "
                                       + (tmp / "scheduler.log").read_text()[-2000:])
                time.sleep(0.1)
        self.client = distributed.Client(self.address, timeout=20, set_as_default=False)

    def _spawn(self, name, module, *args):
        log = open(self.tmp / f"{name}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=log,
                                stderr=subprocess.STDOUT, env=WORKER_ENV, cwd=self.tmp)
        log.close()
        self.procs.append(proc)
        return proc

    def add_workers(self, n):
        before = len(self.alive_workers())
        for _ in range(n):
            i = len(self.workers)
            self.workers[i] = self._spawn(
                f"worker{i}", "distributed.cli.dask_worker", self.address, "--nthreads",
                "1", "--no-nanny", "--name", f"w{i}", "--host", "127.0.0.1",
                "--no-dashboard", "--memory-limit", "0")
        self.client.wait_for_workers(before + n, timeout=45)

    def alive_workers(self) -> dict[str, int]:
        """Worker address -> pid, as the scheduler sees them."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return {addr: self.workers[int(str(w["name"])[1:])].pid
                for addr, w in info.items()}

    def close(self):
        try:
            self.client.close(timeout=5)
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = None
    try:
        c = ProcessCluster(tmp_path_factory.mktemp("dask"))
        c.add_workers(2)
        yield c
    finally:
        if c is not None:
            c.close()


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if the sweep tries to start or connect to a cluster."""
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(sw.runner, "_start_client", forbidden)
    return calls


def _lines(path):
    """The record lines of a results file; its first line must be the header."""
    header, *lines = Path(path).read_text().splitlines()
    assert json.loads(header) == sw.HEADER
    return lines


def _by_hand(records, metric="cosine"):
    """Mean, sd (ddof=1) and n per full setting, recomputed independently."""
    groups = {}
    for r in records:
        setting = json.dumps({**r["params"], "epochs": r["epochs"],
                              "samples_per_epoch": r["samples_per_epoch"]}, sort_keys=True)
        groups.setdefault(setting, []).append(r["accuracy"][metric])
    out = {}
    for setting, vals in groups.items():
        a = np.array(vals, dtype=float)
        out[setting] = (a.mean(), a.std(ddof=1) if a.size > 1 else None, a.size)
    return out


def _check_summary(rows, records):
    expected = _by_hand(records)
    assert len(rows) == len(expected)
    for row in rows:
        key = json.dumps(row["params"], sort_keys=True)
        mean, sd, n = expected[key]
        assert row["n"] == n
        assert row["mean"] == pytest.approx(mean, rel=1e-12, abs=1e-15)
        if sd is None:
            assert row["sd"] is None
        else:
            assert row["sd"] == pytest.approx(sd, rel=1e-9, abs=1e-15)
    means = [r["mean"] for r in rows]
    assert means == sorted(means, reverse=True)


# ------------------------------------------------------------------ worker killed
def test_worker_killed_mid_sweep_every_run_recorded_once(cluster, tmp_path):
    results = tmp_path / "kill.jsonl"
    settings = [dict(FAST, gamma=0.5), dict(SLOW), dict(FAST, gamma=1.0),
                dict(FAST, gamma=2.0), dict(FAST, xi=0.05)]
    seeds = (0, 1)
    n_runs = len(settings) * len(seeds)
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(sw.sweep, settings=settings, seeds=seeds, data=DATA,
                          results=results, scheduler=cluster.scheduler_file,
                          progress=False)
        deadline = time.monotonic() + 40
        while not (results.exists() and results.stat().st_size > 0):
            assert not job.done(), job.exception()
            assert time.monotonic() < deadline, "no record within 40 s"
            time.sleep(0.02)
        # the first record is in: pick a worker busy with a slow run and kill it
        processing = cluster.client.processing()
        pids = cluster.alive_workers()
        slow_ids = {r.run_id for r in sw._plan(sw.expand(settings=[SLOW]), list(seeds),
                                               len(DATA[0]))}

        def slow_keys(addr):
            return [k for k in processing.get(addr, ()) if str(k).split("-")[2] in slow_ids]

        victim = max(pids, key=lambda a: (len(slow_keys(a)), len(processing.get(a, ()))))
        in_flight = {str(k).split("-")[2] for k in slow_keys(victim)}
        assert in_flight, f"no slow run in flight at the kill: {processing}"
        os.kill(pids[victim], signal.SIGKILL)
        records = job.result(timeout=50)

    survivor = next(a for a in pids if a != victim)
    lines = _lines(results)
    assert len(lines) == n_runs == len(records)
    parsed = [json.loads(line) for line in lines]
    keys = [sw.run_key(r["params"], {"epochs": r["epochs"],
                                     "samples_per_epoch": r["samples_per_epoch"]},
                       r["seed"]) for r in parsed]
    assert len(set(keys)) == n_runs  # every run exactly once
    assert {r["run_id"] for r in parsed} == {r["run_id"] for r in records}
    assert all(r["status"] == "ok" and 0 <= r["accuracy"]["cosine"] <= 1 for r in parsed)
    # the runs the dead worker was doing were redone by the survivor
    for rec in parsed:
        if rec["run_id"] in in_flight:
            assert rec["worker"] == survivor
    assert {r["worker"] for r in parsed} <= {victim, survivor}
    assert all(r["numba_threads"] == 1 for r in parsed)
    # summary over seeds, recomputed by hand
    rows = sw.summarize(results)
    _check_summary(rows, parsed)
    assert all(r["n"] == 2 for r in rows)
    text = sw.format_summary(rows)
    assert "cosine mean %" in text and len(text.splitlines()) == 3 + len(settings)


# ---------------------------------------------------------------------------- resume
def test_resume_skips_recorded_runs_and_survives_truncated_line(
        cluster, tmp_path, monkeypatch):
    results = tmp_path / "resume.jsonl"
    grid = {"gamma": [0.5, 2], "xi": [0.01, 0.03]}
    kw = dict(base=FAST, seeds=(0, 1), data=DATA, results=results,
              scheduler=cluster.address, progress=False)
    first = sw.sweep(grid, **kw)
    assert len(first) == 8 and len(_lines(results)) == 8
    content = results.read_bytes()

    # same sweep again: nothing to run, no cluster contacted, file untouched
    real_start = sw._start_client
    monkeypatch.setattr(sw.runner, "_start_client", lambda *a, **k: pytest.fail("cluster used"))
    again = sw.sweep({"xi": [0.01, 0.03], "gamma": [0.5, 2.0]}, **kw)  # order/int-float
    assert results.read_bytes() == content
    assert sorted(r["run_id"] for r in again) == sorted(r["run_id"] for r in first)
    monkeypatch.setattr(sw.runner, "_start_client", real_start)

    # a crash cut the last record short: it is ignored with a warning and rerun
    lines = content.decode().splitlines(keepends=True)
    cut = json.loads(lines[-1])["run_id"]
    results.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    with pytest.warns(RuntimeWarning, match="line 9 ignored: incomplete last line"):
        assert len(sw.read_results(results)) == 7
    with pytest.warns(RuntimeWarning, match="incomplete last line"):
        resumed = sw.sweep(grid, **kw)
    assert len(resumed) == 8
    raw = _lines(results)
    assert len(raw) == 9  # 7 + the cut line (kept, on its own line) + the rerun
    with pytest.warns(RuntimeWarning, match="line 9 ignored: not a valid record"):
        recs = sw.read_results(results)
    assert sorted(r["run_id"] for r in recs) == sorted(r["run_id"] for r in first)
    assert json.loads(raw[-1])["run_id"] == cut
    # runs are deterministic given the seed: the rerun reproduces the lost record
    lost = next(r for r in first if r["run_id"] == cut)
    assert json.loads(raw[-1])["accuracy"] == lost["accuracy"]

    # a third seed adds only the new runs
    with pytest.warns(RuntimeWarning):
        more = sw.sweep(grid, **{**kw, "seeds": (0, 1, 2)})
    assert len(more) == 12 and len(_lines(results)) == 13
    with pytest.warns(RuntimeWarning):
        _check_summary(sw.summarize(results), sw.read_results(results))


def test_append_record_is_one_whole_line(tmp_path):
    path = tmp_path / "sub" / "r.jsonl"
    sw.append_record(path, {"a": 1})
    path.write_bytes(path.read_bytes() + b'{"params": {"gam')  # a write cut short
    sw.append_record(path, {"b": 2})
    assert _lines(path) == ['{"a": 1}', '{"params": {"gam', '{"b": 2}']
    with pytest.raises(ValueError):
        sw.append_record(path, {"x": float("nan")})  # strict JSON only


def test_concurrent_appends_do_not_interleave(tmp_path):
    path = tmp_path / "r.jsonl"
    big = "x" * 20000

    def write(i):
        for j in range(20):
            sw.append_record(path, {"i": i, "j": j, "pad": big})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = [json.loads(line) for line in _lines(path)]
    assert sorted((r["i"], r["j"]) for r in rows) == [(i, j) for i in range(4)
                                                      for j in range(20)]


# ------------------------------------------------------------------- local cluster
def test_default_local_cluster_one_thread_per_task(tmp_path):
    results = tmp_path / "local.jsonl"
    numba_env = os.environ.get("NUMBA_NUM_THREADS")
    recs = sw.sweep({"gamma": [0.5, 1.0]}, base=FAST, seeds=(3,), data=DATA,
                    results=results, n_workers=1, progress=False)
    assert len(recs) == 2 == len(_lines(results))
    assert all(r["numba_threads"] == 1 and r["worker"].startswith("tcp://") for r in recs)
    # NUMBA_NUM_THREADS=1 was in the workers' environment before Numba was imported,
    # and this process's environment is as it was
    assert all(r["numba_pool_threads"] == 1 for r in recs)
    assert os.environ.get("NUMBA_NUM_THREADS") == numba_env
    assert all(r["pid"] != os.getpid() for r in recs)
    assert [r["setting"] for r in recs] == [{"gamma": 0.5}, {"gamma": 1.0}]
    r = recs[0]
    assert r["samples"] == FAST["epochs"] * FAST["samples_per_epoch"]
    assert set(r["accuracy"]) == {"cosine", "response"} and r["seconds"] > 0
    assert r["data"]["n_train"] == 833 and r["data"]["n_eval"] == 167  # 1/6 held out
    assert r["evaluated_on"] == "validation" and r["fastsd_version"]
    assert r["params"]["dtype"] == "float32" and "random_state" not in r["params"]


# ------------------------------------------------------------------------ bad config
def _toml(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


BAD_CONFIGS = [
    ("[grid]\ngama = [1, 2]\n", ValueError,
     r"unknown parameter 'gama' for rule 'sd'; valid parameters: n_neurons, xi, sp, gamma"),
    ("[grid]\n", ValueError, r"the grid is empty"),
    ("[grid]\ngamma = []\n", ValueError, r"value list of 'gamma' is empty"),
    ("[grid]\ngamma = [1, -2]\n", ValueError, r"setting \{gamma=-2\}: gamma must be >= 0"),
    ("[grid]\nsp = [0.01, 1.5]\n", ValueError, r"sp must be < 1"),
    ("[grid]\nxi = [0.01, \"fast\"]\n", TypeError, r"xi must be a number or \"auto\""),
    ("[grid]\nn_neurons = [10.5]\n", TypeError, r"n_neurons must be an integer"),
    ("[grid]\ngamma = 1\n", TypeError, r"values of 'gamma' must be a list"),
    ("[grid]\nrandom_state = [1, 2]\n", ValueError, r"set by the sweep's seeds"),
    ("[base]\ngamma = 1\n[grid]\ngamma = [1, 2]\n", ValueError, r"both fixed .* and swept"),
    ("[base]\nepochs = 0\n[grid]\ngamma = [1]\n", ValueError, r"epochs must be >= 1"),
    ("[base]\ndtype = \"float16\"\n[grid]\ngamma = [1]\n", ValueError, r"dtype must be"),
    ("[grid]\ngamma = [1, 1.0]\n", ValueError, r"duplicates"),
    ("[[settings]]\ngamma = 1\n[[settings]]\nbeta = -1\n", ValueError,
     r"settings\[1\] \{beta=-1\}: beta must be >= 0"),
    ("[grid]\ngamma = [1]\n[[settings]]\ngamma = 1\n", ValueError, r"either a grid"),
    ("[base]\ngamma = 1\n", ValueError, r"nothing to sweep"),
    ("[grid]\ngamma = [1, 2\nxi = [1]\n", ValueError, r"not valid TOML: .*line 3"),
    ("[gird]\ngamma = [1]\n", ValueError, r"unknown table or key 'gird'"),
    ("[sweep]\nseed = [1]\n[grid]\ngamma = [1]\n", ValueError, r"unknown key 'seed'"),
    ("[sweep]\nseeds = []\n[grid]\ngamma = [1]\n", ValueError, r"seeds is empty"),
    ("[sweep]\nseeds = [0, -1]\n[grid]\ngamma = [1]\n", ValueError, r"seed must be >= 0"),
    ("[sweep]\nseeds = 3\n[grid]\ngamma = [1]\n", TypeError, r"seeds must be list"),
    ("[sweep]\nworkers = \"two\"\n[grid]\ngamma = [1]\n", TypeError, r"workers must be int"),
    ("[sweep]\ngamma = 1\n[grid]\nxi = [1]\n", ValueError, r"go in \[base\] or \[grid\]"),
    ("[sweep]\nevaluate = \"foo\"\n[grid]\ngamma = [1]\n", ValueError,
     r"evaluate must be 'validation' or 'test', got 'foo'"),
    ("[sweep]\nevaluate = 1\n[grid]\ngamma = [1]\n", TypeError, r"evaluate must be str"),
    ("[sweep]\nvalidation = 0\n[grid]\ngamma = [1]\n", ValueError,
     r"validation=0: a count of validation images must be >= 1"),
    ("[sweep]\nvalidation = 1.0\n[grid]\ngamma = [1]\n", ValueError,
     r"validation=1.0: a fraction of the training set must be in \(0, 1\)"),
    ("[sweep]\nvalidation = true\n[grid]\ngamma = [1]\n", TypeError,
     r"validation must be int or float, got True"),
    ("[sweep]\nvalidation = \"1/6\"\n[grid]\ngamma = [1]\n", TypeError,
     r"validation must be int or float"),
]


@pytest.mark.parametrize("text, exc, match", BAD_CONFIGS,
                         ids=[f"bad{i}" for i in range(len(BAD_CONFIGS))])
def test_bad_config_fails_before_any_run(tmp_path, no_cluster, text, exc, match):
    results = tmp_path / "never.jsonl"
    path = _toml(tmp_path, text)
    with pytest.raises(exc, match=match):
        sw.sweep(results=results, data=DATA, progress=False, **sw.load_config(path))
    assert not results.exists() and not no_cluster


def test_load_config_checks_the_split_itself(tmp_path):
    """The split is checked when the config is read, not only when a sweep starts."""
    for text, match in [('evaluate = "foo"', r"got 'foo'"),
                        ("validation = 0", r"validation=0: a count"),
                        ("validation = 1.5", r"validation=1.5: a fraction")]:
        path = _toml(tmp_path, f"[sweep]\n{text}\n[grid]\ngamma = [1]\n")
        with pytest.raises(ValueError, match=f"^{path}: .*{match}"):
            sw.load_config(path)


def test_bad_config_in_cli_is_one_line_exit_2(tmp_path, no_cluster, capsys):
    path = _toml(tmp_path, "[grid]\ngama = [1]\n")
    assert main(["sweep", str(path), "--results", str(tmp_path / "r.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown parameter 'gama'" in err
    assert not no_cluster and not (tmp_path / "r.jsonl").exists()


def test_errors_that_need_the_data_still_come_before_the_cluster(tmp_path, no_cluster):
    results = tmp_path / "never.jsonl"
    with pytest.raises(ValueError, match="samples_per_epoch=5000 is more than the 1000 "
                                         "training samples$"):
        sw.sweep({"gamma": [1]}, base={"samples_per_epoch": 5000}, data=DATA,
                 results=results, progress=False, evaluate="test")
    with pytest.raises(ValueError, match=r"samples_per_epoch=900 is more than the 833 "
                                         r"training samples \(the training set less the "
                                         r"last 167 images, held out for validation\)"):
        sw.sweep({"gamma": [1]}, base={"samples_per_epoch": 900}, data=DATA,
                 results=results, progress=False)
    bad = (DATA[0] * 255, *DATA[1:])
    with pytest.raises(ValueError, match="divide by 255"):
        sw.sweep({"gamma": [1]}, data=bad, results=results, progress=False)
    with pytest.raises(ValueError, match="either client or scheduler"):
        sw.sweep({"gamma": [1]}, data=DATA, client=object(), scheduler="tcp://x:1",
                 results=results)
    with pytest.raises(IsADirectoryError):
        sw.sweep({"gamma": [1]}, data=DATA, results=tmp_path)
    assert not results.exists() and not no_cluster


def test_results_of_other_data_are_not_mixed(tmp_path, no_cluster):
    results = tmp_path / "r.jsonl"
    spec = sw._plan(sw.expand({"gamma": [1.0]}, base=FAST), [0], 1000)[0]
    rec = sw.run_one(spec.spec(), *DATA)
    rec["data"] = {"hash": "0123456789abcdef"}
    sw.append_record(results, rec)
    with pytest.raises(ValueError, match="different data"):
        sw.sweep({"gamma": [1]}, base=FAST, seeds=(0,), data=DATA, results=results,
                 progress=False, evaluate="test")


def _toy_npz(tmp_path):
    """DATA as a Keras-style mnist.npz (8x8 uint8 images) for ``--data``."""
    path = tmp_path / "toy.npz"
    x, y, xt, yt = DATA
    np.savez(path, x_train=np.round(255 * x).astype(np.uint8).reshape(-1, 8, 8),
             y_train=y, x_test=np.round(255 * xt).astype(np.uint8).reshape(-1, 8, 8),
             y_test=yt)
    return path


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_fails_fast(tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"cannot reach the Dask scheduler at "
                                              f"{address} within 1 s"):
        sw.sweep({"gamma": [1]}, base=FAST, data=DATA, results=results,
                 scheduler=address, connect_timeout=1, progress=False)
    assert time.monotonic() - start < 8
    assert not results.exists()
    cfg = _toml(tmp_path, f'[sweep]\nresults = "{results}"\n[grid]\ngamma = [1]\n')
    start = time.monotonic()
    # the CLI's default timeout is 5 s
    assert main(["sweep", str(cfg), "--scheduler", address, "--no-progress",
                 "--data", str(_toy_npz(tmp_path))]) == 2
    assert time.monotonic() - start < 15
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Dask scheduler" in err[0]


# ------------------------------------------------------------------ CLI and summary
def test_cli_sweep_and_summary(cluster, tmp_path, capsys):
    results = tmp_path / "cli.jsonl"
    toy = _toy_npz(tmp_path)
    cfg = _toml(tmp_path, f"""
[sweep]
seeds = [0, 1, 2]
results = "{results}"
data = "{toy}"
[base]
n_neurons = 16
epochs = 5
samples_per_epoch = 500
[grid]
gamma = [0.5, 1, 2]
""")
    assert main(["sweep", str(cfg), "--scheduler", cluster.scheduler_file,
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "gamma" in out and "cosine mean %" in out
    assert ("cosine accuracy on the validation split (last 167 of 1000 training images), "
            "mean ± sd over seeds") in out
    records = sw.read_results(results)
    assert len(records) == 9
    assert {r["data"]["n_train"] for r in records} == {833}
    png = tmp_path / "gamma.png"
    assert main(["sweep", "--summary", str(results), "--by", "gamma", "--metric",
                 "response", "--plot", "gamma", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "response mean %" in out and png.stat().st_size > 1000
    rows = sw.summarize(results, by="gamma", metric="response")
    for row in rows:
        vals = [r["accuracy"]["response"] for r in records
                if r["params"]["gamma"] == row["params"]["gamma"]]
        assert row["n"] == 3 == len(vals)
        assert row["mean"] == pytest.approx(np.mean(vals))
        assert row["sd"] == pytest.approx(np.std(vals, ddof=1))
    with pytest.raises(ValueError, match="cannot group by 'gama'"):
        sw.summarize(results, by="gama")
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        sw.summarize(results, metric="accuracy")


def test_summary_of_diverged_and_single_seed_runs():
    def rec(gamma, seed, acc, status="ok"):
        return {"params": {"n_neurons": 4, "gamma": gamma}, "seed": seed, "epochs": 1,
                "samples_per_epoch": 10, "status": status,
                "accuracy": {"cosine": acc, "response": acc}}

    records = [rec(1.0, 0, 0.5), rec(1.0, 1, 0.7), rec(1.0, 2, None, "diverged"),
               rec(2.0, 0, 0.8), rec(3.0, 0, None, "diverged")]
    rows = sw.summarize(records)
    assert [r["params"]["gamma"] for r in rows] == [2.0, 1.0, 3.0]
    assert rows[0]["sd"] is None and rows[0]["n"] == 1
    assert rows[1]["mean"] == pytest.approx(0.6) and rows[1]["failed"] == 1
    assert rows[1]["sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert rows[2]["mean"] is None and rows[2]["failed"] == 1
    text = sw.format_summary(rows)
    assert "failed" in text and text.count("\n") == 5
    assert text.startswith("cosine accuracy on the test set, mean ± sd over seeds\n")
    fig = sw.plot_sweep(records, "gamma")
    assert fig.axes


def test_summary_counts_nan_or_foreign_accuracies_as_failed(tmp_path, capsys):
    """One NaN accuracy (a hand-edited or foreign file) made ``statistics.stdev``
    raise and the summary crash; it is a failed run, not a number."""
    def rec(seed, acc):
        return {"params": {"n_neurons": 4, "gamma": 1.0}, "seed": seed, "epochs": 1,
                "samples_per_epoch": 10, "status": "ok",
                "accuracy": {"cosine": acc, "response": acc}}

    rows = sw.summarize([rec(0, 0.5), rec(1, float("nan")), rec(2, 0.7),
                         rec(3, float("inf")), rec(4, "0.9"), rec(5, True)])
    assert rows[0]["n"] == 2 and rows[0]["failed"] == 4
    assert rows[0]["mean"] == pytest.approx(0.6)
    assert rows[0]["sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [rec(0, 0.5), rec(1, float("nan"))])
                    + "\n")
    assert main(["sweep", "--summary", str(path)]) == 0
    assert "50.00" in capsys.readouterr().out


def test_run_one_probe_and_diverged(monkeypatch):
    spec = sw._plan(sw.expand({"gamma": [1.0]}, base=FAST), [0], 1000)[0].spec()
    rec = sw.run_one(spec, *DATA, probe=True)
    assert set(rec["accuracy"]) == {"cosine", "response", "probe"}
    assert all(0 <= v <= 1 for v in rec["accuracy"].values())
    assert rec == {**rec, "status": "ok", "error": None, "seed": 0, "epochs": 50}
    json.dumps(rec, allow_nan=False)  # JSON-able as it is

    def diverge(self, X, **kwargs):
        raise sw.TrainingDiverged("training diverged: by sample 7")

    monkeypatch.setattr(fastsd.SparseDream, "fit", diverge)
    rec = sw.run_one(spec, *DATA, probe=True)
    assert rec["status"] == "diverged" and "sample 7" in rec["error"]
    assert rec["accuracy"] == {"cosine": None, "response": None, "probe": None}
    rows = sw.summarize([rec])
    assert rows[0]["n"] == 0 and rows[0]["failed"] == 1 and rows[0]["mean"] is None


def test_failed_runs_are_reported_not_recorded_and_retried_next_time(tmp_path,
                                                                     monkeypatch):
    """A run that raises (a bug, not divergence) fails alone; the rest are recorded.

    Uses a given ``client=`` on an in-process cluster (threads), so the patched ``fit``
    is the one the worker runs; the client is left open.
    """
    results = tmp_path / "fail.jsonl"
    real_fit = fastsd.SparseDream.fit

    @functools.wraps(real_fit)  # same signature: the sweepable fit arguments
    def flaky(self, X, **kwargs):
        if self.gamma == 2.0:
            raise RuntimeError("boom")
        return real_fit(self, X, **kwargs)

    monkeypatch.setattr(fastsd.SparseDream, "fit", flaky)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as lc, \
            distributed.Client(lc, set_as_default=False) as client:
        kw = dict(base=FAST, seeds=(0,), data=DATA, results=results, client=client,
                  progress=False, retries=0)
        with pytest.warns(RuntimeWarning, match="failed: RuntimeError: boom"), \
                pytest.raises(sw.SweepError, match=r"1 of 3 runs failed .* \{gamma=2.0\} "
                                                   r"seed 0: RuntimeError: boom") as info:
            sw.sweep({"gamma": [0.5, 1, 2]}, **kw)
        assert len(info.value.records) == 2 and len(info.value.failures) == 1
        assert len(_lines(results)) == 2
        monkeypatch.setattr(fastsd.SparseDream, "fit", real_fit)
        recs = sw.sweep({"gamma": [0.5, 1, 2]}, **kw)
        assert len(recs) == 3 and len(_lines(results)) == 3
        assert json.loads(_lines(results)[-1])["setting"] == {"gamma": 2.0}
        assert client.status == "running"


# ------------------------------------------------------------------ validation split
#: DATA with a test set the runs must not see: other images, labels shifted by one.
POISON = (DATA[0], DATA[1], DATA[2][::-1].copy(), (DATA[3][::-1] + 1) % 4)
SCORED = ("cosine", "response")


def _direct(setting, seed, x_fit, y_fit, x_eval, y_eval):
    """Accuracies of a direct ``fit`` on (x_fit, y_fit) scored on (x_eval, y_eval)."""
    fit = {k: v for k, v in setting.items() if k in ("epochs", "samples_per_epoch")}
    params = {k: v for k, v in setting.items() if k not in fit}
    model = fastsd.SparseDream(**params, random_state=seed).fit(x_fit, **fit)
    return {s: fastsd.evaluate.wta(model, x_fit, y_fit, x_eval, y_eval, score=s).accuracy
            for s in SCORED}


def _held_out(setting, seed, n_val, data=POISON):
    """:func:`_direct` trained on the training set less its last ``n_val`` images and
    scored on those."""
    x, y = data[0], data[1]
    cut = len(x) - n_val
    return _direct(setting, seed, x[:cut], y[:cut], x[cut:], y[cut:])


def test_validation_runs_never_see_the_test_set(cluster, tmp_path, monkeypatch):
    sent = []
    scatter = cluster.client.scatter

    def spy(data, **kwargs):
        sent.extend(data)
        return scatter(data, **kwargs)

    monkeypatch.setattr(cluster.client, "scatter", spy)
    # samples_per_epoch unset: one epoch of the images trained on
    settings = [dict(FAST), dict(n_neurons=16, epochs=5)]
    recs = sw.sweep(settings=settings, seeds=(0,), data=POISON, validation=200,
                    results=tmp_path / "v.jsonl", client=cluster.client, progress=False)
    # the workers got the first 800 training images and the last 200, nothing else
    x, y = POISON[:2]
    for got, want in zip(sent, (x[:800], y[:800], x[800:], y[800:]), strict=True):
        np.testing.assert_array_equal(got, want)
    for rec, setting in zip(recs, settings, strict=True):
        assert rec["evaluated_on"] == "validation"
        assert {k: rec["data"][k] for k in ("n_train", "n_eval", "n_test", "split")} == {
            "n_train": 800, "n_eval": 200, "n_test": 300,
            "split": "validation: last 200 of 1000 training images"}
        assert {k: rec["accuracy"][k] for k in SCORED} == _held_out(setting, 0, 200)
        on_test = _direct(setting, 0, *POISON)
        assert rec["accuracy"]["cosine"] != on_test["cosine"]
    assert recs[1]["samples_per_epoch"] == 800 and recs[1]["samples"] == 5 * 800
    assert recs[1]["setting"] == {"n_neurons": 16, "epochs": 5}


def test_validation_as_a_fraction_or_a_count(cluster, tmp_path):
    kw = dict(settings=[FAST], seeds=(1,), data=POISON, client=cluster.client,
              progress=False)
    # default 1/6 of 1000: round(166.7) = 167 held out
    rec, = sw.sweep(results=tmp_path / "sixth.jsonl", **kw)
    assert (rec["data"]["n_train"], rec["data"]["n_eval"]) == (833, 167)
    assert rec["data"]["split"] == "validation: last 167 of 1000 training images"
    assert {k: rec["accuracy"][k] for k in SCORED} == _held_out(FAST, 1, 167)
    rec, = sw.sweep(results=tmp_path / "quarter.jsonl", validation=0.25, **kw)
    assert (rec["data"]["n_train"], rec["data"]["n_eval"]) == (750, 250)
    rec, = sw.sweep(results=tmp_path / "count.jsonl", validation=np.int64(100), **kw)
    assert (rec["data"]["n_train"], rec["data"]["n_eval"]) == (900, 100)
    assert {k: rec["accuracy"][k] for k in SCORED} == _held_out(FAST, 1, 100)


def test_default_validation_is_the_last_10000_of_mnists_60000():
    x, y = np.zeros((60000, 1), np.float32), np.zeros(60000, np.int64)
    arrays, info = sw.data._split((x, y, x[:1], y[:1]), {"n_test": 1}, "validation",
                                  sw.data.DEFAULT_VALIDATION)
    assert [len(a) for a in arrays] == [50000, 50000, 10000, 10000]
    assert info == {"n_test": 1, "n_train": 50000, "n_eval": 10000,
                    "split": "validation: last 10000 of 60000 training images"}


def test_evaluate_test_reproduces_the_test_set_records(cluster, tmp_path):
    rec, = sw.sweep(settings=[FAST], seeds=(0,), data=POISON, evaluate="test",
                    validation=0.5, results=tmp_path / "t.jsonl",
                    client=cluster.client, progress=False)
    run = sw._plan(sw.expand(settings=[FAST]), [0], 1000)[0]
    assert rec["run_id"] == run.run_id
    assert rec["accuracy"] == sw.run_one(run.spec(), *POISON)["accuracy"]
    assert {k: rec["accuracy"][k] for k in SCORED} == _direct(FAST, 0, *POISON)
    assert rec["evaluated_on"] == "test"
    assert {k: rec["data"][k] for k in ("n_train", "n_eval", "n_test", "split")} == {
        "n_train": 1000, "n_eval": 300, "n_test": 300, "split": "test"}


BAD_SPLITS = [
    (dict(validation=0), ValueError, r"validation=0: a count of validation images must "
                                     r"be >= 1"),
    (dict(validation=-5), ValueError, r"validation=-5: a count .* must be >= 1"),
    (dict(validation=1.0), ValueError, r"validation=1.0: a fraction of the training set "
                                       r"must be in \(0, 1\) \(give a count of images as "
                                       r"an int\)"),
    (dict(validation=0.0), ValueError, r"validation=0.0: a fraction"),
    (dict(validation=float("nan")), ValueError, r"validation=nan: a fraction"),
    (dict(validation=True), TypeError, r"validation must be a count of images \(int\) or "
                                       r"a fraction of the training set"),
    (dict(validation="10%"), TypeError, r"validation must be a count .* got '10%'"),
    (dict(evaluate="foo"), ValueError, r"evaluate must be 'validation' or 'test', got "
                                       r"'foo'"),
    (dict(evaluate=None), ValueError, r"evaluate must be .* got None"),
]


@pytest.mark.parametrize("kwargs, exc, match", BAD_SPLITS,
                         ids=[f"bad{i}" for i in range(len(BAD_SPLITS))])
def test_bad_split_fails_before_the_data_is_loaded(tmp_path, no_cluster, kwargs, exc,
                                                    match):
    results = tmp_path / "never.jsonl"
    with pytest.raises(exc, match=match):  # object() is no data: loading would fail
        sw.sweep({"gamma": [1]}, data=object(), results=results, progress=False, **kwargs)
    assert not results.exists() and not no_cluster


@pytest.mark.parametrize("validation, match", [
    (1000, r"validation=1000 leaves no image to train on: the training set has 1000 "
           r"images; hold out at most 999"),
    (5000, r"validation=5000 leaves no image to train on: the training set has 1000"),
    (0.9999, r"validation=0.9999 \(1000 of the 1000 training images\) leaves no image to "
             r"train on"),
    (0.0004, r"validation=0.0004 \(0 of the 1000 training images\) holds out no image; "
             r"the validation split needs at least 1"),
])
def test_a_split_with_an_empty_side_fails_before_the_cluster(tmp_path, no_cluster,
                                                             validation, match):
    results = tmp_path / "never.jsonl"
    with pytest.raises(ValueError, match=match):
        sw.sweep({"gamma": [1]}, data=DATA, validation=validation, results=results,
                 progress=False)
    assert not results.exists() and not no_cluster


def test_resume_refuses_a_changed_split(cluster, tmp_path, monkeypatch):
    results = tmp_path / "split.jsonl"
    # FAST's key is the same on every split; the other's samples_per_epoch (unset: the
    # images trained on) makes its key depend on the split
    settings = [dict(FAST), dict(n_neurons=16, epochs=5)]
    kw = dict(settings=settings, seeds=(0,), data=DATA, results=results,
              client=cluster.client, progress=False)
    first = sw.sweep(validation=200, **kw)
    content = results.read_bytes()
    monkeypatch.setattr(sw.runner, "_start_client", lambda *a, **k: pytest.fail("ran"))
    assert sw.sweep(validation=0.2, **kw) == first  # the same split: nothing to run
    ours = r"holds runs scored on the validation split \(last 200 of 1000 training images\)"
    with pytest.raises(ValueError, match=ours + r", but this sweep scores on the "
                       r"validation split \(last 100 of 1000 training images\); .*another "
                       r"results file \(or the validation split of its runs"):
        sw.sweep(validation=100, **kw)
    with pytest.raises(ValueError, match=ours + r", but this sweep scores on the test set;"
                       r" .*\(or evaluate='validation' to add to this one\)"):
        sw.sweep(evaluate="test", **kw)
    for split in (dict(validation=100), dict(evaluate="test")):  # no run key in common
        with pytest.raises(ValueError, match=ours):
            sw.sweep(**{**kw, "settings": settings[1:]}, **split)
    assert results.read_bytes() == content


def test_records_that_name_no_split_count_as_test_set_records(tmp_path, no_cluster,
                                                              capsys):
    """A results file written before records said their split resumes with
    ``evaluate="test"`` and is refused by a validation sweep."""
    results = tmp_path / "old.jsonl"
    run = sw._plan(sw.expand(settings=[FAST]), [0], 1000)[0]
    rec = sw.run_one(run.spec(), *DATA)
    info = sw.data._load_data(DATA)[1]  # name, n_train, n_test, n_features, hash
    sw.append_record(results, {**rec, "run_id": run.run_id, "data": info})
    kw = dict(settings=[FAST], seeds=(0,), data=DATA, results=results, progress=False)
    again, = sw.sweep(evaluate="test", **kw)
    assert again["run_id"] == run.run_id and "evaluated_on" not in again
    with pytest.raises(ValueError, match=r"holds runs scored on the test set, but this "
                       r"sweep scores on the validation split \(last 167 of 1000 training "
                       r"images\); .*\(or evaluate='test' to add to this one\)"):
        sw.sweep(**kw)
    assert main(["sweep", "--summary", str(results)]) == 0
    assert capsys.readouterr().out.startswith(
        "cosine accuracy on the test set, mean ± sd over seeds\n")


def _summary_record(seed, acc, evaluated_on=None, split=None, gamma=1.0):
    rec = {"params": {"n_neurons": 4, "gamma": gamma}, "seed": seed, "epochs": 1,
           "samples_per_epoch": 10, "status": "ok", "seconds": 1.0 + seed,
           "accuracy": {"cosine": acc, "response": acc}}
    if evaluated_on is not None:
        rec.update(evaluated_on=evaluated_on, data={"split": split})
    return rec


def test_summary_header_names_the_split_and_splits_are_not_mixed(tmp_path, capsys):
    mnist = "validation: last 10000 of 60000 training images"
    val = [_summary_record(s, 0.5 + s / 10, "validation", mnist) for s in range(3)]
    rows = sw.summarize(val)
    assert {(r["evaluated_on"], r["split"]) for r in rows} == {("validation", mnist)}
    head = ("cosine accuracy on the validation split (last 10000 of 60000 training "
            "images), mean ± sd over seeds")
    assert sw.format_summary(rows).splitlines()[0] == head
    assert sw.format_summary(sw.summarize(val, metric="seconds")).splitlines()[0] == (
        "seconds (s), mean ± sd over seeds; runs scored on the validation split (last "
        "10000 of 60000 training images)")
    path = tmp_path / "v.jsonl"
    for rec in val:
        sw.append_record(path, rec)
    assert main(["sweep", "--summary", str(path), "--top", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == head
    # old records (no evaluated_on) and new test-set records are one split
    test = [_summary_record(0, 0.9), _summary_record(1, 0.8, "test", "test")]
    assert sw.format_summary(sw.summarize(test)).startswith(
        "cosine accuracy on the test set, mean ± sd over seeds\n")
    with pytest.raises(ValueError, match=r"the records were scored on different splits "
                       r"\(3 on the validation split \(last 10000 of 60000 training "
                       r"images\); 2 on the test set\); summarize each split's records "
                       r"separately"):
        sw.summarize(val + test)
    other = _summary_record(3, 0.7, "validation", "validation: last 5000 of 60000 "
                                                   "training images")
    with pytest.raises(ValueError, match="different splits"):
        sw.summarize(val + [other], by="gamma")
    with pytest.raises(ValueError, match="different splits"):
        sw.plot_sweep(val + test, "gamma")


def test_cli_evaluate_overrides_the_config(tmp_path, monkeypatch, capsys):
    cfg = _toml(tmp_path, '[sweep]\nevaluate = "validation"\nvalidation = 5000\n'
                          '[grid]\ngamma = [1]\n')
    calls = []
    monkeypatch.setattr(sw, "sweep", lambda **kwargs: calls.append(kwargs))
    results = str(tmp_path / "r.jsonl")
    assert main(["sweep", str(cfg), "--results", results]) == 0
    assert main(["sweep", str(cfg), "--results", results, "--evaluate", "test"]) == 0
    assert [(c["evaluate"], c["validation"]) for c in calls] == [("validation", 5000),
                                                                ("test", 5000)]
    with pytest.raises(SystemExit):
        main(["sweep", str(cfg), "--evaluate", "tset"])
    assert "invalid choice: 'tset'" in capsys.readouterr().err
    kwargs = sw.load_config(_toml(tmp_path, '[sweep]\nevaluate = "test"\nvalidation = '
                                            '0.1\n[grid]\ngamma = [1]\n', "ok.toml"))
    assert (kwargs["evaluate"], kwargs["validation"]) == ("test", 0.1)

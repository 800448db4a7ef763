"""Fault injection: sweeps refuse what they cannot run before they start anything.

Results files that are something else (a model), schedulers that are not Dask
schedulers (an HTTP server, a server sending garbage), settings no run could train
(batch larger than the samples per epoch, N that cannot fit in memory), absurdly large
grids, and results files with invalid records (out of range, deeply nested JSON).
Every test here failed before these faults were handled.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402 - with distributed

from fastsd import sweep as sw  # noqa: E402
from fastsd.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HEADER_LINE = '{"format": "fastsd-sweep-results", "format_version": 1}\n'


def _data():
    """80 training and 40 test images of 16 pixels, 2 classes."""
    rng = np.random.default_rng(0)
    x = rng.random((120, 16)) * (rng.random((120, 16)) < 0.5)
    y = rng.integers(0, 2, 120)
    return x[:80], y[:80], x[80:], y[80:]


DATA = _data()
TINY = dict(n_neurons=4, epochs=1)
ONE = dict(epochs=1, batch_size=1)  # "auto" batch sizes of large N exceed 80 images


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if the sweep starts or connects to a cluster."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(sw.runner, "_start_client", forbidden)


def _run(*args, timeout=30):
    """``fastsd ...`` in a subprocess (so a hang is a failure, not a stuck test)."""
    return subprocess.run([sys.executable, "-m", "fastsd", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def _record(seed, acc=0.5, **extra):
    return {"params": {"n_neurons": 4, "gamma": 1.0}, "seed": seed, "epochs": 1,
            "samples_per_epoch": 10, "status": "ok", "seconds": 1.0,
            "accuracy": {"cosine": acc, "response": acc}, **extra}


def _write(path, lines, header=True):
    path.write_text((HEADER_LINE if header else "") + "".join(
        (line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


# ------------------------------------------------------- item 4: the results file
def _model_file(tmp_path):
    path = tmp_path / "model.npz"
    np.savez(path, weights=np.ones((4, 16)))
    return path


def test_a_sweep_does_not_write_into_a_model_file(tmp_path, no_cluster):
    model = _model_file(tmp_path)
    before = model.read_bytes()
    with pytest.raises(ValueError, match=f"{model} is not a sweep results file"):
        sw.sweep({"gamma": [1]}, base=TINY, seeds=(0,), data=DATA, results=model,
                 progress=False)
    with pytest.raises(ValueError, match="is not a sweep results file"):
        sw.append_record(model, _record(0))
    assert model.read_bytes() == before


def test_cli_refuses_a_model_as_results_before_any_run(tmp_path):
    model = _model_file(tmp_path)
    before = model.read_bytes()
    cfg = tmp_path / "c.toml"
    cfg.write_text("[grid]\ngamma = [1]\n")
    # a local cluster would start (and take seconds) if the file were not refused first
    done = _run("sweep", str(cfg), "--results", str(model), "--no-progress",
                "--scheduler", "tcp://127.0.0.1:9")
    assert done.returncode == 2
    assert f"{model} is not a sweep results file" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert model.read_bytes() == before


def test_header_less_results_are_not_continued_but_still_summarized(tmp_path,
                                                                     no_cluster):
    old = _write(tmp_path / "old.jsonl", [_record(0, 0.4), _record(1, 0.6)], header=False)
    before = old.read_bytes()
    with pytest.raises(ValueError, match="not a sweep results file .* can be continued "
                                         "once this line is put first"):
        sw.sweep({"gamma": [1]}, base=TINY, seeds=(0,), data=DATA, results=old,
                 progress=False)
    assert old.read_bytes() == before
    with pytest.warns(UserWarning, match="has no header line"):
        rows = sw.summarize(old)
    assert rows[0]["n"] == 2 and rows[0]["mean"] == pytest.approx(0.5)


def test_a_new_results_file_starts_with_its_header(tmp_path):
    path = tmp_path / "new.jsonl"
    sw.append_record(path, _record(0))
    sw.append_record(path, _record(1))
    lines = path.read_text().splitlines(keepends=True)
    assert lines[0] == HEADER_LINE and len(lines) == 3
    assert len(sw.read_results(path)) == 2


def test_summary_refuses_what_is_not_a_results_file(tmp_path):
    model = _model_file(tmp_path)
    with pytest.raises(ValueError, match=f"{model} is not a sweep results file: its "
                                         "first line is neither"):
        sw.read_results(model)
    newer = _write(tmp_path / "v2.jsonl", [_record(0)], header=False)
    newer.write_text('{"format": "fastsd-sweep-results", "format_version": 2}\n'
                     + newer.read_text())
    with pytest.raises(ValueError, match="format_version 2 is not supported"):
        sw.read_results(newer)
    with pytest.raises(ValueError, match="format_version 2 is not supported"):
        sw.append_record(newer, _record(1))


# -------------------------------------------------- summary: invalid records
BAD_LINES = [
    (_record(9, 1.5), r"accuracy cosine = 1.5 is not a fraction in \[0, 1\]"),
    (_record(9, -0.1), r"accuracy cosine = -0.1 is not a fraction"),
    (_record(9, "0.9"), r"accuracy cosine = '0.9' is not a fraction"),
    (_record(9, seconds=-3.0), r"seconds = -3.0 is not a duration >= 0"),
    (_record(9, status="weird"), r"unknown status 'weird'"),
    (_record(9, evaluated_on="train"), r"unknown evaluated_on 'train'"),
    ({**_record(9), "seed": -1}, r"seed -1 is not an integer >= 0"),
    ({**_record(9), "params": [1]}, r"no 'params' object"),
    ("[" * 100_000 + "]" * 100_000, r"JSON nested too deeply"),
    ('{"params": ' * 50_000 + "{}" + "}" * 50_000, r"JSON nested too deeply"),
    ("[1, 2]", r"a JSON list, not a record"),
    ("not json", r"not JSON"),
    (json.dumps(_record(9, pad="x" * (1 << 20))), r"longer than 1048576 bytes"),
]


@pytest.mark.parametrize("line, problem", BAD_LINES, ids=[f"bad{i}" for i in
                                                          range(len(BAD_LINES))])
def test_an_invalid_record_is_reported_by_line_and_left_out(tmp_path, capsys, line,
                                                            problem):
    path = _write(tmp_path / "r.jsonl", [_record(0, 0.4), line, _record(1, 0.6)])
    with pytest.warns(RuntimeWarning, match=f"line 3 ignored: not a valid record: "
                                            f"{problem}"):
        rows = sw.summarize(path)
    assert rows[0]["n"] == 2 and rows[0]["failed"] == 0
    assert rows[0]["mean"] == pytest.approx(0.5)
    with pytest.warns(RuntimeWarning):
        assert main(["sweep", "--summary", str(path)]) == 0
    assert "50.00" in capsys.readouterr().out


def test_many_invalid_records_are_counted_not_each_warned(tmp_path):
    path = _write(tmp_path / "r.jsonl",
                  [_record(0, 0.4)] + [_record(i, 2.0) for i in range(1, 31)])
    with pytest.warns(RuntimeWarning) as caught:
        assert len(sw.read_results(path)) == 1
    messages = [str(w.message) for w in caught]
    assert len(messages) == 11
    assert messages[-1].endswith("20 more invalid line(s) ignored (30 in all)")


def test_nan_accuracy_still_counts_as_a_failed_run(tmp_path, capsys):
    """Item 10 (fixed earlier): a NaN accuracy is a failed run, not an invalid line."""
    path = tmp_path / "r.jsonl"
    path.write_text(HEADER_LINE + json.dumps(_record(0, 0.5)) + "\n"
                    + json.dumps(_record(1, float("nan"))) + "\n")
    rows = sw.summarize(path)
    assert rows[0]["n"] == 1 and rows[0]["failed"] == 1
    assert main(["sweep", "--summary", str(path)]) == 0
    assert "50.00" in capsys.readouterr().out


# ------------------------------------------------ item 8: not a Dask scheduler
GARBAGE_SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    print(s.getsockname()[1], flush=True)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(b"\\xff" * 64)  # a frame count of 2**64 - 1
        except OSError:
            pass
""")


@pytest.fixture
def servers():
    """Addresses of an HTTP server and of a server that answers garbage, on
    127.0.0.1; both accept TCP and are no Dask scheduler."""
    procs = [subprocess.Popen([sys.executable, "-u", "-c", GARBAGE_SERVER],
                              stdout=subprocess.PIPE, text=True)]
    try:
        garbage = f"tcp://127.0.0.1:{int(procs[0].stdout.readline())}"
        http_code = ("import http.server as h; s = h.ThreadingHTTPServer(('127.0.0.1', 0),"
                     " h.SimpleHTTPRequestHandler); print(s.server_address[1], "
                     "flush=True); s.serve_forever()")
        procs.append(subprocess.Popen([sys.executable, "-u", "-c", http_code],
                                      stdout=subprocess.PIPE, text=True,
                                      stderr=subprocess.DEVNULL))
        http = f"tcp://127.0.0.1:{int(procs[1].stdout.readline())}"
        yield {"http": http, "garbage": garbage}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def _sweep_in_thread(seconds, **kwargs):
    """Run a sweep in a daemon thread; its exception, or fail if it is still running
    after ``seconds`` (a hang)."""
    outcome = {}

    def target():
        try:
            sw.sweep({"gamma": [1]}, base=TINY, seeds=(0,), data=DATA, progress=False,
                     **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the sweep still hangs after {seconds} s"
    return outcome.get("error")


@pytest.mark.parametrize("kind", ["http", "garbage"])
def test_an_address_that_is_not_a_scheduler_fails_within_the_timeout(
        tmp_path, servers, kind):
    address = servers[kind]
    results = tmp_path / "r.jsonl"
    start = time.monotonic()
    error = _sweep_in_thread(12, results=results, scheduler=address, connect_timeout=2)
    assert time.monotonic() - start < 8
    assert isinstance(error, ConnectionError), repr(error)
    assert address in str(error)
    assert not results.exists()


def test_cli_names_the_address_that_is_not_a_scheduler(tmp_path, servers):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[sweep]\nresults = "{tmp_path / "r.jsonl"}"\n[grid]\ngamma = [1]\n')
    data = tmp_path / "d.npz"
    x, y, xt, yt = DATA
    np.savez(data, x_train=np.round(255 * x).astype(np.uint8).reshape(-1, 4, 4),
             y_train=y, x_test=np.round(255 * xt).astype(np.uint8).reshape(-1, 4, 4),
             y_test=yt)
    start = time.monotonic()
    done = _run("sweep", str(cfg), "--scheduler", servers["http"], "--no-progress",
                "--data", str(data), timeout=25)
    assert time.monotonic() - start < 20
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and servers["http"] in err[0], done.stderr


# ----------------------------------------- item 9: settings that cannot run
def test_batch_larger_than_the_samples_per_epoch_fails_before_the_cluster(
        tmp_path, no_cluster):
    results = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match=r"setting \{batch_size=100\}: batch_size=100 is "
                                         r"larger than the 50 samples per epoch"):
        sw.sweep({"batch_size": [1, 100]}, base={**TINY, "samples_per_epoch": 50},
                 seeds=(0,), data=DATA, results=results, progress=False, evaluate="test")
    with pytest.raises(ValueError, match=r"batch_size=100 is larger than the 67 samples"):
        sw.sweep({"batch_size": [100]}, base=TINY, seeds=(0,), data=DATA,
                 results=results, progress=False)  # 80 less 13 held out
    assert not results.exists()


def test_a_setting_that_cannot_fit_in_memory_fails_before_the_cluster(tmp_path,
                                                                      no_cluster):
    results = tmp_path / "r.jsonl"
    with pytest.raises(MemoryError, match=r"setting \{n_neurons=1000000\} \(SparseDream\("
                                          r"n_neurons=1000000, dtype='float32'\), 16 "
                                          r"features\) needs about 7.3 TiB"):
        sw.sweep({"n_neurons": [4, 10**6]}, base=ONE, seeds=(0,), data=DATA,
                 results=results, progress=False)
    with pytest.raises(MemoryError, match="or fewer workers"):
        sw.sweep({"n_neurons": [10**6]}, base=ONE, seeds=(0,), data=DATA, n_workers=2,
                 results=results, progress=False)
    assert not results.exists()


def test_a_worker_too_small_for_a_setting_gets_no_run(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a run was submitted")

    monkeypatch.setattr(sw.runner, "run_one", never)
    results = tmp_path / "r.jsonl"
    # a 64 MiB limit on an in-process worker, never enforced (this process uses more)
    unenforced = {f"distributed.worker.memory.{k}": False
                  for k in ("target", "spill", "pause", "terminate")}
    with dask.config.set(unenforced), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                     memory_limit="64 MiB", dashboard_address=":0") as lc, \
            distributed.Client(lc, set_as_default=False) as client:
        with pytest.raises(MemoryError, match=r"setting \{n_neurons=4000\} .* only 64.0 "
                                              r"MiB"):
            sw.sweep({"n_neurons": [4000]}, base=ONE, seeds=(0,), data=DATA,
                     results=results, client=client, progress=False)
    assert not results.exists()


def test_the_number_of_runs_is_said_before_settings_are_validated(tmp_path, no_cluster,
                                                                  capsys):
    with pytest.raises(ValueError, match=r"gamma must be >= 0"):
        sw.sweep({"gamma": [1, -1], "xi": [0.01, 0.02, 0.03]}, seeds=(0, 1), data=DATA,
                 results=tmp_path / "r.jsonl")
    assert capsys.readouterr().err.splitlines()[0] == (
        "sweep: 6 settings x 2 seeds = 12 runs")


ABSURD = textwrap.dedent("""
    from fastsd import sweep as sw
    grid = {"gamma": [1 + i / 1000 for i in range(1000)],
            "xi": [0.01 + i / 1e5 for i in range(1000)]}
    for call in (lambda: sw.sweep(grid, data=None, results="never.jsonl", progress=False),
                 lambda: sw.expand(grid)):
        try:
            call()
        except ValueError as exc:
            print(exc)
""")


def test_an_absurd_grid_is_refused_at_once(tmp_path):
    # in a subprocess, so that validating a million settings one by one (over a
    # minute) is a timeout, not a stuck test run
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", ABSURD], capture_output=True, text=True,
                          timeout=30, cwd=tmp_path)
    assert time.monotonic() - start < 20
    assert done.stdout.splitlines() == [
        "the sweep is too large: 1000000 settings x 3 seeds = 3000000 runs, more than the "
        "100000 a sweep may have; sweep fewer values (or split it into several sweeps)",
        "the sweep is too large: 1000000 settings, more than the 100000 a sweep may have; "
        "sweep fewer values (or split it into several sweeps)"], done.stderr
    assert not (tmp_path / "never.jsonl").exists()


def test_cli_refuses_an_absurd_config_at_once(tmp_path):
    values = ", ".join(str(1 + i / 1000) for i in range(1000))
    cfg = tmp_path / "big.toml"
    cfg.write_text(f"[grid]\ngamma = [{values}]\nxi = [{values}]\n")
    done = _run("sweep", str(cfg), "--results", str(tmp_path / "r.jsonl"), timeout=30)
    assert done.returncode == 2
    assert "too large: 1000000 settings x 3 seeds = 3000000 runs" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["nested", "fifo", "huge"])
def test_a_config_that_is_no_config_is_a_clear_error(kind, tmp_path):
    """Deeply nested TOML (RecursionError in tomllib), a FIFO (would block) and a file
    too large to be a config are refused by name."""
    from fastsd.sweep import load_config

    path = tmp_path / "sweep.toml"
    if kind == "nested":
        path.write_text("[grid]\nxi = " + "[" * 100_000 + "]" * 100_000 + "\n")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("# padding\n" * 200_000)
    with pytest.raises(ValueError, match="sweep.toml"):
        load_config(path)

"""Fault injection: Ctrl-C in compiled code, unbounded labels and numbers, closed pipes,
sparse or untyped input, and inputs the probe must not change (issue 14, items 6, 11,
13 and 15).

Signals go to real subprocesses (``subprocess.Popen``), at several moments of the
parallel part: a run must end with exit status 130 (the command line) or a
``KeyboardInterrupt`` (the library), never with a ``SystemError`` from a kernel.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastsd
from conftest import sigint_default
from fastsd import KrotovHopfield, SparseDream
from fastsd.cli import main
from fastsd.evaluate import assign_classes, summarize, wta, wta_all
from fastsd.probe import linear_probe

#: Subprocesses import the fastsd under test.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastsd.__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def images(n, seed):
    """Random MNIST-like rows: 784 pixels in [0, 1], four in five of them zero."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 784)) * (rng.random((n, 784)) < 0.2)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 400-neuron model and a Keras-style data file large enough that the WTA
    evaluation takes a few seconds (the window for the signals)."""
    root = tmp_path_factory.mktemp("faults_cli")
    rng = np.random.default_rng(0)
    x = (images(48000, 1) * 255).astype(np.uint8).reshape(-1, 28, 28)
    y = rng.integers(0, 10, len(x))
    data = root / "data.npz"
    np.savez(data, x_train=x[:40000], y_train=y[:40000], x_test=x[40000:],
             y_test=y[40000:])
    model = root / "model.npz"
    SparseDream(400, random_state=0).partial_fit(images(200, 2)).save(model)
    return {"data": str(data), "model": str(model), "root": root}


def interrupt(cmd, ready, delay):
    """Start ``cmd``, wait for a line of stdout starting with ``ready``, then
    ``delay`` seconds, send SIGINT; returns (exit status, stderr)."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=sigint_default)
    try:
        for line in proc.stdout:
            if line.startswith(ready):
                break
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


# ----------------------------------------------------------------- item 6: Ctrl-C
def test_ctrl_c_during_parallel_eval_exits_130(files):
    """Ctrl-C at several moments of ``fastsd eval``'s parallel WTA evaluation (it
    raised ``SystemError: CPUDispatcher(...) returned a result with an exception set``
    in most tries, or died by SIGINT, on main)."""
    cmd = [sys.executable, "-m", "fastsd", "eval", files["model"], "--no-probe", "--data",
           files["data"]]
    # (an idle machine finished the evaluation of half this data within 1.5 s)
    outcomes = [interrupt(cmd, "data:", delay) for delay in (0.2, 0.5, 0.9)]
    for status, err in outcomes:
        assert "SystemError" not in err and "Traceback" not in err, err
    assert [status for status, _ in outcomes] == [130] * 3, outcomes


SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from fastsd import SparseDream
    from fastsd.evaluate import wta_all
    from fastsd.probe import linear_probe

    rng = np.random.default_rng(0)
    X = rng.random((4000, 784)) * (rng.random((4000, 784)) < 0.2)
    y = rng.integers(0, 10, len(X))
    model = SparseDream(400, random_state=0).partial_fit(X[:200])
    work = {
        "eval": lambda: wta_all(model, X, y, X[:1000], y[:1000]),
        "transform": lambda: model.transform(X),
        "probe": lambda: linear_probe(model, X, y, X[:1000], y[:1000], max_iter=2),
        "fit": lambda: SparseDream(400, random_state=0).fit(X, epochs=100),
    }
    model.transform(X[:500])  # compiled (or loaded) before the first signal
    linear_probe(model, X[:300], y[:300], X[:300], y[:300], max_iter=1)
    wta_all(model, X[:300], y[:300], X[:300], y[:300])
    SparseDream(400, random_state=0).partial_fit(X[:200])
    for name in sys.argv[1:]:
        print("ready", name, flush=True)
        try:
            while True:
                work[name]()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
""")


def test_ctrl_c_while_the_command_imports_its_libraries(monkeypatch, capsys):
    """The console entry imports the package and ``fastsd.cli`` first: they load none
    of the heavy libraries, so a Ctrl-C in the seconds those take lands in ``main``
    (exit 130, one line) instead of printing Python's traceback."""
    code = ("import sys, fastsd.cli; heavy = {'numba', 'sklearn', 'scipy', 'matplotlib'}"
            " & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
    import fastsd.cli as cli

    def interrupted():
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["eval", "x.npz"]) == 130
    assert capsys.readouterr().err == "fastsd: interrupted\n"


def test_ctrl_c_in_library_is_keyboard_interrupt(files):
    """SIGINT at several moments while the library runs compiled kernels
    (evaluators, transform, probe, training passes): a clean ``KeyboardInterrupt``
    every time, in one process that catches it and goes on to the next round."""
    script = files["root"] / "interrupt_me.py"
    script.write_text(SCRIPT)
    rounds = [(work, delay) for work in ("eval", "transform", "probe", "fit")
              for delay in (0.1, 0.4, 0.9)]
    proc = subprocess.Popen([sys.executable, str(script), *(w for w, _ in rounds)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=sigint_default)
    seen = []
    try:
        for work, delay in rounds:
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                break
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            line = proc.stdout.readline()
            seen.append((work, delay, line.strip()))
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "SystemError" not in err and proc.returncode == 0, (seen, err)
    assert [line for *_, line in seen] == ["interrupted"] * len(rounds), seen


def test_deferred_interrupt_records_and_raises_after(sigint_raises):
    from fastsd._interrupt import deferred_interrupt

    before = signal.getsignal(signal.SIGINT)
    finished = False
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # Python runs handlers here: only recorded
            finished = True
    assert finished
    assert signal.getsignal(signal.SIGINT) is before


def test_map_rows_matches_whole_and_stops_between_chunks(sigint_raises):
    from fastsd._interrupt import map_rows

    X = np.arange(1000.0).reshape(500, 2)
    np.testing.assert_array_equal(map_rows(lambda r: r * 2, X, rows=7), X * 2)
    calls = []

    def slow(rows):
        calls.append(len(rows))
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return rows

    with pytest.raises(KeyboardInterrupt):
        map_rows(slow, X, rows=100)
    assert calls == [100, 100]  # stopped after the chunk that saw the signal


# ----------------------------------------------------------------- item 11: labels
@pytest.fixture(scope="module")
def small():
    X = images(60, 3)
    model = SparseDream(4, random_state=0, batch_size=1).partial_fit(X)
    return model, X, np.arange(60) % 3


@pytest.mark.parametrize("bad", [10 ** 7, 5000, 1000])
def test_huge_label_is_refused_by_every_evaluator(small, bad):
    model, X, y = small
    y_bad = y.copy()
    y_bad[5] = bad
    for call in (lambda: wta(model, X, y_bad, X, y),
                 lambda: wta_all(model, X, y, X, y_bad),
                 lambda: linear_probe(model, X, y_bad, X, y, max_iter=2),
                 lambda: assign_classes(np.zeros(60, np.int64), y_bad, 4, 3),
                 lambda: SparseDream(4, random_state=0, batch_size=1).fit(
                     X, y_bad, eval_set=(X, y))):
        with pytest.raises(ValueError, match=r"labels must be class numbers in \[0, 1000\)"):
            call()


def test_uint64_label_does_not_wrap_negative(small):
    model, X, y = small
    y_bad = y.astype(np.uint64)
    y_bad[0] = 2 ** 63
    with pytest.raises(ValueError, match="label 9223372036854775808"):
        wta(model, X, y_bad, X, y)


def test_labels_integral_floats_accepted_others_refused(small):
    model, X, y = small
    assert wta(model, X, y.astype(np.float32), X, y).n_test == 60
    for bad, kind in ((y + 0.5, TypeError), (np.where(y == 0, np.nan, y), TypeError),
                      (np.where(y == 0, 1e300, y), ValueError)):
        with pytest.raises(kind):
            wta(model, X, bad, X, y)


def test_n_classes_is_bounded(small):
    model, X, y = small
    with pytest.raises(ValueError, match="n_classes must be <= 1000"):
        wta(model, X, y, X, y, n_classes=10 ** 6)
    with pytest.raises(ValueError, match="n_classes must be <= 1000"):
        summarize("cosine", np.zeros(4, np.int64), np.zeros(60, np.int64), y, 10 ** 9)


# ----------------------------------------------------------------- item 13: numbers
def test_integers_for_kernels_must_fit_int64():
    for model in (SparseDream(prune_every=10 ** 29), SparseDream(batch_size=2 ** 63),
                  KrotovHopfield(k=10 ** 20)):
        with pytest.raises(ValueError, match="int64"):
            model._check_params()


def test_cli_prune_every_overflow_is_one_line(capsys):
    """``--prune-every 10**29`` gave a Numba TypingError traceback; now the parameter
    check refuses it before any data is read."""
    assert main(["train", "--prune-every", str(10 ** 29), "--data", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "prune_every" in err and "int64" in err and "Traceback" not in err


def test_cli_huge_neurons_is_refused_before_allocating(files, capsys):
    assert main(["train", "--neurons", "1000000000", "--data", files["data"],
                 "--no-progress", "--out", str(files["root"] / "x.npz")]) == 2
    assert "use fewer neurons" in capsys.readouterr().err


def test_eval_into_closed_pipe_is_quiet(files):
    """``fastsd eval ... | head -1``: status 141, nothing on stderr (was an
    'error: [Errno 32] Broken pipe' line, or a traceback at exit)."""
    proc = subprocess.Popen([sys.executable, "-m", "fastsd", "eval", files["model"],
                             "--no-probe", "--data", files["data"]], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == "", err


# ----------------------------------------------------------------- item 15: smaller
def test_sweep_top_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--summary", "results.jsonl", "--top", "-1"])
    assert exc.value.code == 2
    assert "--top" in capsys.readouterr().err


def test_sparse_input_is_refused_with_advice(small):
    sparse = pytest.importorskip("scipy.sparse")
    model, X, y = small
    for call in (lambda: SparseDream(4).fit(sparse.csr_matrix(X)),
                 lambda: model.transform(sparse.csr_array(X)),
                 lambda: wta(model, sparse.csr_matrix(X), y, X, y)):
        with pytest.raises(TypeError, match=r"sparse.*toarray\(\)"):
            call()


def test_dtype_none_is_refused():
    for model in (SparseDream(dtype=None), KrotovHopfield(dtype=None)):
        with pytest.raises(TypeError, match="float32' or 'float64', got None"):
            model._check_params()


def test_linear_probe_leaves_inputs_unchanged(small):
    _, X, y = small
    for model in (None, lambda rows: rows):
        x_train, x_test = X.copy(), X[:30].copy()
        linear_probe(model, x_train, y, x_test, y[:30], max_iter=3)
        np.testing.assert_array_equal(x_train, X)
        np.testing.assert_array_equal(x_test, X[:30])

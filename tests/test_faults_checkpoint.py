"""Faults of training (issue 14, item 3): checkpoints, resume, and the model file's
record of a fit. Interrupted + resumed must be bit-identical to uninterrupted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import fastsd
from fastsd import KrotovHopfield, SparseDream
from fastsd.fit_progress import FitProgress

from conftest import image_like, sigint_default

RULES = {
    "sd": (SparseDream, {}),
    "sd-b10": (SparseDream, {"batch_size": 10}),
    "kh": (KrotovHopfield, {}),
}


def interrupt_at_pass(model, n):
    """Make ``model``'s n-th training pass raise KeyboardInterrupt (as Ctrl-C would)."""
    original, calls = model._run_pass, [0]

    def run_pass(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            raise KeyboardInterrupt
        return original(*args, **kwargs)
    model._run_pass = run_pass


def state_of(model):
    return {name: np.array(getattr(model, name)) for name in model._state}


def assert_same_state(a, b):
    for name, value in state_of(a).items():
        other = getattr(b, name)
        assert value.dtype == other.dtype, name
        assert np.array_equal(value, other), f"{name} differs"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_interrupted_then_resumed_is_bit_identical(rule, dtype, tmp_path):
    cls, params = RULES[rule]
    X = image_like(240, seed=1)
    y = np.arange(240) % 10
    fit = dict(epochs=4, eval_set=(X[:60], y[:60]))
    whole = cls(8, random_state=3, dtype=dtype, **params).fit(X, y, **fit)

    path = tmp_path / "ckpt.npz"
    cut = cls(8, random_state=3, dtype=dtype, **params)
    interrupt_at_pass(cut, 3)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(X, y, checkpoint=path, **fit)
    assert not cut._has_state()  # the object is as before the call
    resumed = fastsd.load(path)
    assert resumed._fit_progress.epochs_done == 2
    assert resumed.samples_seen_ == 480
    resumed.resume_fit(X, y, eval_set=fit["eval_set"], checkpoint=path)
    assert_same_state(whole, resumed)
    assert resumed.samples_seen_ == whole.samples_seen_
    assert resumed.history_["samples"] == whole.history_["samples"]
    assert resumed.history_["accuracy"] == whole.history_["accuracy"]
    assert fastsd.load(path)._fit_progress.finished


def test_saved_generator_continues_the_sample_orders(tmp_path):
    """fit, save, load, partial_fit draws the same next order as without the file."""
    X = image_like(200, seed=2)
    a = SparseDream(6, random_state=0).fit(X, epochs=1)
    a.save(tmp_path / "m.npz")
    b = fastsd.load(tmp_path / "m.npz")
    a.partial_fit(X)
    b.partial_fit(X)
    assert_same_state(a, b)


def test_checkpoint_every_epoch_and_failed_save_keeps_the_model(tmp_path, monkeypatch):
    X = image_like(100, seed=3)
    path = tmp_path / "c.npz"
    model = SparseDream(4, random_state=0)
    model.fit(X, epochs=2, checkpoint=path)
    first = state_of(model)
    progress = fastsd.load(path)._fit_progress
    assert (progress.epochs_done, progress.epochs) == (2, 2)
    saves = []

    def failing_save(self, where):  # the disk fills up at the second checkpoint
        saves.append(where)
        if len(saves) == 2:
            raise OSError(28, "No space left on device")
        original_save(self, where)
    original_save = SparseDream.save
    monkeypatch.setattr(SparseDream, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        model.fit(X, epochs=3, checkpoint=path)
    assert all(np.array_equal(v, getattr(model, k)) for k, v in first.items())
    assert model._fit_progress.epochs == 2 and model.samples_seen_ == 200
    assert fastsd.load(path)._fit_progress.epochs_done == 1  # the last complete epoch


@pytest.mark.parametrize("bad, error", [("", ValueError), (".", ValueError),
                                        (3, TypeError)])
def test_bad_checkpoint_path_fails_before_training(bad, error):
    model = SparseDream(4, random_state=0)
    with pytest.raises(error, match="checkpoint"):
        model.fit(image_like(50), checkpoint=bad)
    assert not model._has_state()


def test_checkpoint_needs_a_seed_that_can_be_saved(tmp_path):
    model = SparseDream(4, random_state=np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        model.fit(image_like(50), checkpoint=tmp_path / "c.npz")


def test_resume_refuses_other_data_and_unrecorded_fits(tmp_path):
    X = image_like(120, seed=4)
    path = tmp_path / "c.npz"
    SparseDream(4, random_state=0).fit(X, epochs=1, checkpoint=path)
    model = fastsd.load(path)
    model._fit_progress = FitProgress(3, 120, 1, 120, model._fit_progress.data_sha256)
    other = X.copy()
    other[0, -1] = 0.5 if other[0, -1] != 0.5 else 0.25
    with pytest.raises(ValueError, match="not the data"):
        model.resume_fit(other)
    with pytest.raises(ValueError, match="not the data"):
        model.resume_fit(X[:100])
    model.partial_fit(X)  # trained beyond the checkpoint: no fit to resume any more
    with pytest.raises(ValueError, match="no checkpointed fit"):
        model.resume_fit(X)
    with pytest.raises(ValueError, match="no checkpointed fit"):
        SparseDream(4, random_state=0).fit(X).resume_fit(X)


def rewrite_meta(path, change):
    """Rewrite the JSON metadata of a model file with ``change(meta)``."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(str(np.load(path)["meta"]))
    change(meta)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            if name == "meta.npy":
                import io
                buffer = io.BytesIO()
                np.save(buffer, np.array(json.dumps(meta)))
                data = buffer.getvalue()
            archive.writestr(name, data)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("rng"), "random generator"),
    (lambda m: m["rng"].update(bit_generator="Nope"), "rng"),
    (lambda m: m["rng"]["state"].update(state="x"), "rng"),
    (lambda m: m.update(samples_seen=7), "samples_seen"),
    (lambda m: m["fit_progress"].update(epochs=2**70), "epochs"),
    (lambda m: m["fit_progress"].update(epochs_done=9), "epochs_done"),
    (lambda m: m["fit_progress"].update(data_sha256=""), "data_sha256"),
    (lambda m: m["fit_progress"].update(extra=1), "fit_progress"),
    (lambda m: m.update(fit_progress=[1, 2]), "fit_progress"),
    (lambda m: m.update(dataset=3), "dataset must be"),
    (lambda m: m.update(dataset=""), "dataset must be"),
    (lambda m: m.update(dataset="x\n" * 5), "dataset must be"),
])
def test_tampered_fit_record_is_refused(change, message, tmp_path):
    path = tmp_path / "c.npz"
    SparseDream(4, random_state=0).fit(image_like(60), epochs=2, checkpoint=path)
    rewrite_meta(path, change)
    with pytest.raises(ValueError, match=message):
        fastsd.load(path)


# -- the command line, with real signals ---------------------------------------------
def _cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "fastsd", "train", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default, **kwargs)


@pytest.fixture(scope="module")
def small_mnist(mnist, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "small.npz"
    u8 = lambda x: np.round(x * 255).astype(np.uint8).reshape(-1, 28, 28)  # noqa: E731
    np.savez(path, x_train=u8(mnist.x_train[:6000]), y_train=mnist.y_train[:6000],
             x_test=u8(mnist.x_test[:500]), y_test=mnist.y_test[:500])
    return str(path)


def _progress(path):
    try:
        return fastsd.load(path)._fit_progress
    except (ValueError, OSError):
        return None


CLI_RUNS = {
    "sd-float32": ["--dtype", "float32"],
    "sd-float64": ["--dtype", "float64"],
    "sd-b100": ["--batch-size", "100"],
    "kh": ["--rule", "kh"],
}


@pytest.mark.parametrize("run", sorted(CLI_RUNS))
def test_sigkill_mid_epoch_then_resume_is_bit_identical(run, small_mnist, tmp_path):
    from fastsd.datasets import load_mnist
    from fastsd.train import settings

    flags = CLI_RUNS[run]
    args = ["--data", small_mnist, "--neurons", "48", "--epochs", "10", "--weights-png",
            "", "--no-progress", *flags]
    out = tmp_path / "model.npz"
    proc = _cli(*args, "--out", str(out), cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        progress = _progress(out) if out.exists() else None
        if progress is not None and progress.epochs_done >= 2:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_at = _progress(out)
    assert killed_at is not None and not killed_at.finished, \
        "the run was not killed mid-way; make the epochs longer"
    done = subprocess.run([sys.executable, "-m", "fastsd", "train", "--resume", str(out),
                           "--data", small_mnist, "--weights-png", "", "--no-progress"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"epoch {killed_at.epochs_done} of 10" in done.stdout

    rule = "kh" if "kh" in flags else "sd"
    given = {"n_neurons": 48, "random_state": 0, "epochs": 10}
    if "--dtype" in flags:
        given["dtype"] = flags[flags.index("--dtype") + 1]
    if "--batch-size" in flags:
        given["batch_size"] = 100
    cls, params, fit = settings(rule, **given)
    data = load_mnist(small_mnist)
    whole = cls(**params).fit(data.x_train, data.y_train, **fit,
                              eval_set=(data.x_test, data.y_test))
    resumed = fastsd.load(out)
    assert_same_state(whole, resumed)
    assert resumed.history_["accuracy"] == whole.history_["accuracy"]


def test_ctrl_c_names_the_checkpoint_and_how_to_continue(small_mnist, tmp_path):
    out = tmp_path / "model.npz"
    proc = _cli("--data", small_mnist, "--neurons", "48", "--epochs", "50",
                "--weights-png", "", "--no-progress", "--out", str(out), cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and _progress(out) is not None:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    epochs_done = _progress(out).epochs_done
    assert f"holds epoch {epochs_done} of 50" in err
    assert f"fastsd train --resume {out}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "3"], "drop --epochs"),
    (["--xi", "0.1"], "drop --xi"),
    (["--rule", "kh"], "drop --rule"),
])
def test_resume_refuses_flags_that_change_the_run(flags, message, tmp_path, capsys):
    from fastsd.cli import main

    path = tmp_path / "c.npz"
    SparseDream(4, random_state=0).fit(image_like(60, m=784), epochs=2, checkpoint=path)
    assert main(["train", "--resume", str(path), *flags]) == 2
    assert message in capsys.readouterr().err


def test_empty_out_is_refused(capsys):
    from fastsd.cli import main

    assert main(["train", "--out", ""]) == 2
    assert "--out must name a file" in capsys.readouterr().err


@pytest.mark.parametrize("batch_size", [1, 100])
def test_partial_fit_split_on_the_grid_is_bit_identical(batch_size):
    """docs/reliability.md: cuts at multiples of prune_every and batch_size."""
    X = image_like(1500, seed=5)
    order = np.random.default_rng(0).permutation(1500)
    make = lambda: SparseDream(12, random_state=0, dtype="float64",  # noqa: E731
                               batch_size=batch_size)
    whole = make().partial_fit(X, order=order)
    split = make().partial_fit(X, order=order[:700]).partial_fit(X, order=order[700:])
    assert_same_state(whole, split)


REFIT_SCRIPT = r"""
import sys, numpy as np, fastsd
sys.path.insert(0, sys.argv[1])
from conftest import image_like, sigint_default
X = image_like(4000, m=784, seed=0)
model = fastsd.SparseDream(64, random_state=0).fit(X, epochs=1)
before = {k: getattr(model, k).copy() for k in model._state}
kept = (model.samples_seen_, model.history_, model._rng.bit_generator.state)
print("ready", flush=True)
try:
    model.set_params(random_state=1).fit(X, epochs=10000)
except KeyboardInterrupt:
    same = all(np.array_equal(v, getattr(model, k)) for k, v in before.items())
    same &= (model.samples_seen_, model.history_, model._rng.bit_generator.state) == kept
    print("SAME" if same else "CHANGED", flush=True)
"""


def test_sigint_during_a_refit_leaves_the_trained_model(tmp_path):
    """Item 2 with a real signal: Ctrl-C in a second fit keeps the first one's model."""
    script = tmp_path / "refit.py"
    script.write_text(REFIT_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), os.path.dirname(__file__)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)  # inside the long refit
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert out.strip() == "SAME", err


def test_ctrl_c_before_the_first_epoch_does_not_point_at_an_older_file(
        small_mnist, tmp_path, monkeypatch, capsys):
    """--out holds an earlier finished model; Ctrl-C before this run's first epoch must
    not offer to resume that older run."""
    from fastsd.cli import main

    out = tmp_path / "model.npz"
    SparseDream(4, random_state=0).fit(image_like(60, m=784), epochs=2, checkpoint=out)
    before = out.read_bytes()

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(SparseDream, "fit", interrupted)
    assert main(["train", "--data", small_mnist, "--neurons", "8", "--out", str(out),
                 "--weights-png", "", "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "no checkpoint was written" in err and "--resume" not in err
    assert out.read_bytes() == before


@pytest.mark.parametrize("grid", ["0x0", "3x3", "1x1000", "100000x100000"])
def test_bad_grid_fails_before_any_data_or_training(grid, capsys):
    from fastsd.cli import main

    clock = time.monotonic()
    assert main(["train", "--neurons", "100", "--grid", grid, "--data", "/nonexistent",
                 "--weights-png", ""]) == 2
    assert "grid" in capsys.readouterr().err
    assert time.monotonic() - clock < 5

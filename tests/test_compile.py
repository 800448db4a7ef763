"""First use of the kernels: compiled before the clock starts, said on the progress bar,
and the evaluator compiled by a second process into Numba's cache."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
from tqdm.auto import tqdm

import fastsd
from fastsd import _compile


def test_compiling_shows_and_restores_the_description():
    seen = []
    with tqdm(total=1, desc="SparseDream", disable=False, file=open(os.devnull, "w")) as bar:
        with _compile.compiling(bar, "preparing the training kernels"):
            seen.append(bar.desc)
        seen.append(bar.desc)
    assert "preparing the training kernels" in seen[0] and "first use" in seen[0]
    assert seen[1] == "SparseDream"


def test_fit_prepares_kernels_before_training_and_keeps_them_out_of_the_clock(monkeypatch):
    calls = []
    real = fastsd.SparseDream._prepare

    def prepare(self, X, per_epoch):
        calls.append((self._has_state(), X.shape, per_epoch))
        real(self, X, per_epoch)
        time.sleep(0.3)  # as if compiling

    monkeypatch.setattr(fastsd.SparseDream, "_prepare", prepare)
    X = np.random.default_rng(0).random((300, 16))
    model = fastsd.SparseDream(6, batch_size=10, random_state=0).fit(X, epochs=2)
    assert calls == [(False, (300, 16), 300)]  # once, before any state existed
    again = fastsd.SparseDream(6, batch_size=10, random_state=0).fit(X, epochs=2)
    np.testing.assert_array_equal(model.weights_, again.weights_)  # no effect on results
    assert model.history_["seconds"][0] < 0.1  # the 0.3 s of "compiling" not counted


def test_tiny_copy_keeps_the_rule_valid():
    model = fastsd.KrotovHopfield(50, k=7)
    assert model._tiny_params() == {"n_neurons": 7}
    X = np.random.default_rng(1).random((40, 9))
    model.set_params(batch_size=20)._prepare(X, 40)
    assert not model._has_state()  # the model itself is untouched


def test_background_process_fills_the_numba_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-m", "fastsd._compile", "float32"], env=env,
                   check=True, timeout=300)
    cached = [name for _, _, files in os.walk(tmp_path) for name in files]
    assert any("linear_winners" in name and name.endswith(".nbc") for name in cached)


def test_stop_ends_a_running_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    _compile.stop(proc)
    assert proc.returncode is not None
    _compile.stop(None)

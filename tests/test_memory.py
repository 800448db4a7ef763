"""Memory and time budgets: refused before allocation, with the numbers; slow passes warned."""
from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import fastsd
from fastsd import _memory
from fastsd.cli import main


@pytest.mark.parametrize("cls", [fastsd.SparseDream, fastsd.KrotovHopfield])
def test_too_large_model_is_refused_before_any_allocation(cls, monkeypatch):
    monkeypatch.setattr(_memory, "available_bytes", lambda: 10**9)  # 1 GB machine
    X = np.random.default_rng(0).random((50, 784))
    model = cls(8000 if cls is fastsd.SparseDream else 200_000, dtype="float64")
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError) as info:
            model.fit(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10**7  # nothing of the model's size was allocated
    message = str(info.value)
    for part in ("n_neurons=", "float64", "1,000,000,000 bytes", "available",
                 "dtype='float32'"):
        assert part in message
    with pytest.raises(MemoryError) as info:
        model.set_params(dtype="float32", n_neurons=10 * model.n_neurons).fit(X)
    assert "float32" in str(info.value) and "or dtype=" not in str(info.value)
    assert not model._has_state()


def test_estimate_counts_inhibition_and_copies():
    params = fastsd.SparseDream(6400, dtype="float32", batch_size=1)._check_params()
    sizes = fastsd.SparseDream(6400)._memory_needed(params, 784)
    # W, t, L and their pass copies: 2 (6400·784 + 6400 + 6400²) float32 numbers
    assert sum(sizes.values()) == 2 * 4 * (6400 * 784 + 6400 + 6400 ** 2)
    params["batch_size"] = 100
    mini = fastsd.SparseDream(6400)._memory_needed(params, 784)
    assert mini["transposed inhibition (if L is not symmetric)"] == 4 * 6400 ** 2


def test_n50000_float64_refused_on_this_machine_size():
    """The acceptance case: 50 000 neurons in float64 need ~38 GiB (a 24 GiB machine)."""
    with pytest.raises(MemoryError, match="n_neurons=50000"):
        _memory.check_memory(
            fastsd.SparseDream(50000)._memory_needed(
                fastsd.SparseDream(50000, dtype="float64")._check_params(), 784),
            model="SparseDream(n_neurons=50000)", available=24 * 2**30)


def test_partial_fit_and_cli_refuse_cleanly(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(_memory, "available_bytes", lambda: 10**8)
    X = np.random.default_rng(0).random((20, 784))
    with pytest.raises(MemoryError):
        fastsd.SparseDream(3000).partial_fit(X)
    np.savez(tmp_path / "d.npz", x_train=X, y_train=np.zeros(20, int),
             x_test=X, y_test=np.zeros(20, int))
    code = main(["train", "--neurons", "3000", "--data", str(tmp_path / "d.npz"),
                 "--no-progress", "--out", str(tmp_path / "m.npz")])
    assert code == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "dtype='float32'" in err  # the CLI's default dtype
    assert err.rstrip().endswith("use fewer neurons")
    assert not (tmp_path / "m.npz").exists()


def test_slow_per_sample_pass_warns_once_and_names_the_faster_option(monkeypatch):
    monkeypatch.setattr(_memory, "_WARNED", set())
    model = fastsd.SparseDream(6400, beta=0.005, dtype="float32", batch_size=1)
    params = model._check_params()
    X = np.zeros((60000, 784), np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model._check_resources(params, X, 60000)
        model._check_resources(params, X, 60000)
        model.set_params(batch_size=100)._check_resources(model._check_params(), X, 60000)
        fastsd.SparseDream(100)._check_resources(fastsd.SparseDream(100)._check_params(),
                                                 X, 60000)
    assert len(caught) == 1
    assert "batch_size=100" in str(caught[0].message)


def test_available_bytes_is_positive():
    assert _memory.available_bytes() > 0

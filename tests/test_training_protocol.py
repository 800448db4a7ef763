"""What ``fit`` and the command line do around the kernels, pinned against references:
the annealed rate per chunk, mini-batch chunks cut on whole batches, and flags that must
reach the model."""
from __future__ import annotations

import numpy as np
import pytest

import naive
from conftest import image_like
from fastsd import KrotovHopfield, SparseDream
from fastsd.rules import rule_classes
from fastsd._tunables import SAMPLES_PER_CALL
from fastsd.cli import main
from fastsd.sparsedream_passes import MiniBatchWork as MiniBatchPass
from conftest import reference_defaults

SD = reference_defaults(SparseDream)

RATES = dict(xi=0.05, sp=0.1, gamma=0.5, beta=0.01, prec=1e-3)


def test_annealed_fit_matches_a_numpy_reference_with_one_rate_per_chunk():
    """``fit(anneal=True)``: the sample at position ``k`` of epoch ``e`` (of ``E``, ``n``
    samples each) uses ``xi (1 - (e n + c) / (E n))`` with ``c`` its chunk's first
    position (chunks of ``CHUNK``); W from ``uniform(0.1, 1)`` then one permutation per
    epoch, from one generator. Two epochs of two chunks each: a rate that forgets the
    epoch, or changes per sample or per call, misses by far more than the tolerance."""
    n, m, N, epochs = SAMPLES_PER_CALL + 500, 12, 5, 2
    X = image_like(n, m, seed=11)
    model = SD(N, **RATES, anneal=True, random_state=4).fit(X, epochs=epochs)
    rng = np.random.default_rng(4)
    W = rng.uniform(0.1, 1.0, (N, m))
    t, L = np.zeros(N), np.zeros((N, N))
    params = dict(RATES)
    for epoch in range(epochs):
        order = rng.permutation(n)
        for k, idx in enumerate(order):
            chunk_start = k - k % SAMPLES_PER_CALL
            params["xi"] = RATES["xi"] * (1 - (epoch * n + chunk_start) / (epochs * n))
            naive.sparsedream_step(X[idx], W, t, L, prune=(k % 100 == 0), **params)
    np.testing.assert_allclose(model.weights_, W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.thresholds_, t, rtol=1e-9, atol=1e-12)


def test_minibatch_pass_over_many_chunks_equals_one_uninterrupted_pass():
    """The model cuts a pass into chunks of whole batches: B = 100 over more than one
    chunk of samples gives exactly what one uninterrupted kernel pass gives (a chunk of
    4096 samples would cut a batch in two)."""
    n, m, N, batch = 2 * SAMPLES_PER_CALL + 300, 16, 8, 100
    X = image_like(n, m, seed=12)
    order = np.random.default_rng(13).permutation(n)
    model = SD(N, **RATES, batch_size=batch, random_state=5)
    rng = np.random.default_rng(6)
    W0 = rng.uniform(0.1, 1.0, (N, m))
    model.weights_, model.thresholds_, model.inhibition_ = W0, np.zeros(N), np.zeros((N, N))
    model.partial_fit(X, order=order)
    W, t, L = W0.copy(), np.zeros(N), np.zeros((N, N))
    params = model._check_params()
    work = MiniBatchPass(N, m, batch, np.dtype("float64"), params["min_response"],
                         params["saturate_excitation"])
    assert work.run(X, order, 0, n, W, t, L, model._kernel_rates(params), 100) == -1
    for got, want in zip((model.weights_, model.thresholds_, model.inhibition_), (W, t, L)):
        np.testing.assert_array_equal(got, want)


def _train(tiny_data, tmp_path, *flags):
    out = tmp_path / "m.npz"
    assert main(["train", "--data", tiny_data, "--epochs", "1", "--out", str(out),
                 "--weights-png", "", "--no-progress", *flags]) == 0
    return out


def test_krotov_flags_reach_the_model(tiny_data, tmp_path):
    out = _train(tiny_data, tmp_path, "--rule", "kh", "--neurons", "7", "--eps0", "0.03",
                 "--delta", "0.25", "--p", "3", "--k", "4", "--batch-size", "40",
                 "--seed", "9", "--dtype", "float64")
    model = KrotovHopfield.load(out)
    assert (model.n_neurons, model.eps0, model.delta, model.p, model.k, model.batch_size,
            model.random_state, model.dtype) == (7, 0.03, 0.25, 3.0, 4, 40, 9, "float64")


@pytest.mark.parametrize("flag, anneal", [("--anneal", True), ("--no-anneal", False)])
def test_sparsedream_flags_reach_the_model(tiny_data, tmp_path, flag, anneal):
    out = _train(tiny_data, tmp_path, flag, "--neurons", "6", "--xi", "0.03", "--sp",
                 "0.05", "--gamma", "0.7", "--beta", "0.002", "--prec", "1e-8",
                 "--prune-every", "50", "--seed", "3")
    model = SparseDream.load(out)
    assert (model.anneal, model.n_neurons, model.xi, model.sp, model.gamma, model.beta,
            model.prec, model.prune_every, model.random_state) == (
        anneal, 6, 0.03, 0.05, 0.7, 0.002, 1e-8, 50, 3)
    # and the training followed them: the same fit in Python gives the same weights
    X = np.load(tiny_data)["x_train"].reshape(400, -1) / 255.0
    direct = SD(6, xi=0.03, sp=0.05, gamma=0.7, beta=0.002, prec=1e-8,
                prune_every=50, anneal=anneal, dtype=model.dtype,
                random_state=3).fit(X)
    np.testing.assert_array_equal(model.weights_, direct.weights_)


def test_sweep_run_equals_a_direct_fit_with_the_same_seed():
    """A swept setting reaches the model: the run of ``expand``'s spec (what a Dask
    worker runs) scores exactly what a direct fit with those parameters and seed scores."""
    from fastsd.evaluate import wta
    from fastsd.sweep.config import expand
    from fastsd.sweep.task import run_one

    X = image_like(600, 16, seed=14)
    y = np.arange(600) % 4
    specs = expand(grid={"xi": [0.01, 0.08]}, base=dict(n_neurons=6, sp=0.1, gamma=0.5,
                                                        beta=0.0, prune_every=50),
                   epochs=2)
    for spec in specs:
        record = run_one({**spec, "seed": 7}, X[:500], y[:500], X[500:], y[500:])
        direct = SparseDream(6, xi=spec["setting"]["xi"], sp=0.1, gamma=0.5, beta=0.0,
                             prune_every=50, random_state=7).fit(X[:500], epochs=2)
        want = wta(direct, X[:500], y[:500], X[500:], y[500:], score="cosine").accuracy
        assert record["status"] == "ok" and record["samples"] == 1000
        assert record["accuracy"]["cosine"] == want
    assert specs[0]["params"]["xi"] == 0.01 and specs[1]["params"]["xi"] == 0.08


# ------------------------------------------------- a failed fit keeps the old model
@pytest.mark.parametrize("cls", list(rule_classes().values()), ids=lambda c: c.__name__)
def test_a_fit_that_fails_leaves_the_previous_model_exactly(cls, monkeypatch):
    """fit re-initialises before training; if training then fails (here: Ctrl-C in the
    second epoch), the model must keep its earlier state, counters and history."""
    import fastsd.base

    X = image_like(120, 16, seed=5)
    model = cls(6, random_state=0, batch_size=1 if cls.__name__ != "KrotovHopfield"
                else 20).fit(X, epochs=2)
    before = {k: np.array(v, copy=True) for k, v in model._checked_state(
        6, model._check_params()["dtype"]).items()}
    seen, history, rng = model.samples_seen_, model.history_, model._rng
    calls = []
    original = fastsd.base.PrototypeModel._run_pass

    def interrupt_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(fastsd.base.PrototypeModel, "_run_pass", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        model.set_params(random_state=7).fit(X, epochs=3)
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(model, name), value)
    assert model.samples_seen_ == seen and model.history_ is history
    assert model._rng is rng
    calls.clear()
    fresh = cls(6, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X, epochs=3)
    assert not fresh._has_state() and not hasattr(fresh, "samples_seen_")

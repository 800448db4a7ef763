"""``KrotovHopfield``: the mini-batch rule of "Unsupervised learning by competing hidden
units" (Krotov & Hopfield, PNAS 2019) as an estimator."""
from __future__ import annotations

import os

import numba
import numpy as np
from tqdm.auto import tqdm

from . import base
from ._threads import ThreadChooser
from ._validation import (
    check_dtype, check_fits_dtype, check_inputs, check_number, check_random_state,
)
from .kernels import krotov as kernel
from .sparsedream import TrainingDiverged, _check_order

#: Samples handed to the compiled pass per call (rounded down to whole batches, at
#: least one): bounds the time between progress-bar updates and Ctrl-C checks.
#: Chunking does not change results.
CHUNK = 6000

#: Chooses one or all threads for a pass by timing its first batches.
_CHOOSER = ThreadChooser()
#: Turns of the probe on each setting (its fastest turn of each is compared).
PROBE_ROUNDS = 4


@base.register
class KrotovHopfield(base.PrototypeModel):
    """Krotov & Hopfield's competing hidden units (unsupervised, mini-batch).

    For each batch ``X_b`` (B×m) of a pass, with ``S = sign(W)|W|^(p-1)`` and the drives
    ``I = S X_bᵀ`` (N×B): every sample's top-ranked unit gets ``g = 1`` and its
    ``k``-th ranked unit ``g = -delta`` (other units 0); then
    ``ds = g X_b - (Σ_b g ⊙ I)[:, None] ⊙ W`` and ``W += eps * ds / max(max|ds|, prec)``.
    Ranking ties go to the lower unit index (a stable sort of ``-I``); the computation
    is described in :mod:`fastsd.kernels.krotov`.

    Parameters
    ----------
    n_neurons : int, default 100
        Number of hidden units N.
    eps0 : float, default 0.02
        Learning rate (> 0): the first epoch's rate in :meth:`fit` (annealed linearly
        to 0 over its epochs), the default fixed rate of :meth:`partial_fit`.
    delta : float, default 0.4
        Strength of the anti-Hebbian update of the k-th ranked unit (>= 0).
    p : float, default 2.0
        Lebesgue-norm exponent (>= 1). Integer values are computed with products;
        ``p = 2`` makes ``S = W``.
    k : int, default 2
        Rank of the unit that is pushed away (2 <= k <= n_neurons).
    batch_size : int, default 100
        Samples per mini-batch (the notebook's ``Num``). The last batch of a pass is
        shorter when the pass length is not a multiple (the notebook dropped it).
    prec : float, default 1e-30
        Floor of the normaliser ``max|ds|`` (> 0).
    dtype : {"float64", "float32"}, default "float64"
        Dtype of the weights and of the arithmetic.
    random_state : int or None
        Seed. :meth:`fit` draws ``W = normal(0, 1, (n_neurons, n_features))`` and then
        one ``permutation(n_samples)`` per epoch, in that order, from
        ``numpy.random.default_rng(random_state)`` (the protocol of
        ``bench/krotov_notebook.py``).

    Attributes
    ----------
    weights_ : ndarray (n_neurons, n_features)
    samples_seen_ : int
        Samples processed since the weights were initialised.

    Notes
    -----
    The compiled pass can use ``numba.get_num_threads()`` threads (all cores unless
    ``NUMBA_NUM_THREADS`` or ``numba.set_num_threads`` says otherwise). Its threads meet
    twice per batch, which costs little on an idle machine but can make it many times
    slower than one thread when other processes keep the cores busy. So a pass of at
    least 32 batches first alternates four times between 2 batches with all threads
    and 2 with one, and it and the passes of the next 30 s with the same shapes use all
    threads only if their fastest turn was clearly (20%) faster than one thread's (the
    probe stops early, for one thread, when a turn on all threads took 3 times as long
    as one thread's, 9 times in the first round); shorter passes with no such recent choice use one
    thread. A pass on several threads drops
    to one for its remaining chunks if a chunk took longer per sample than one thread
    did in the probe. Results do not depend on the number of threads (every number is
    computed by the same code either way).
    """

    _state = {"weights_": lambda n, m: (n, m)}

    def __init__(self, n_neurons=100, *, eps0=0.02, delta=0.4, p=2.0, k=2, batch_size=100,
                 prec=1e-30, dtype="float64", random_state=None):
        self.n_neurons = n_neurons
        self.eps0 = eps0
        self.delta = delta
        self.p = p
        self.k = k
        self.batch_size = batch_size
        self.prec = prec
        self.dtype = dtype
        self.random_state = random_state

    # -- parameters -----------------------------------------------------------------
    def _check_params(self) -> dict:
        """Validated parameters (raises TypeError/ValueError naming the bad one)."""
        n_neurons = check_number("n_neurons", self.n_neurons, low=1, integer=True)
        k = check_number("k", self.k, low=2, integer=True)
        if k > n_neurons:
            raise ValueError(f"k must be <= n_neurons (the k-th ranked of {n_neurons} "
                             f"units must exist), got k={k}")
        params = dict(
            n_neurons=n_neurons,
            eps0=check_number("eps0", self.eps0, low=0, low_open=True),
            delta=check_number("delta", self.delta, low=0),
            p=check_number("p", self.p, low=1),
            k=k,
            batch_size=check_number("batch_size", self.batch_size, low=1, integer=True),
            prec=check_number("prec", self.prec, low=0, low_open=True),
            dtype=check_dtype(self.dtype),
        )
        for name in ("eps0", "delta", "prec"):
            check_fits_dtype(name, params[name], params["dtype"])
        return params

    def _tiny_params(self) -> dict:
        return {"n_neurons": max(4, self._check_params()["k"])}

    def _memory_needed(self, params, n_features) -> dict:
        """Weights, the pass's working copy and transposed drive matrix, and per-batch
        scratch (:class:`fastsd.kernels.krotov.Workspace`)."""
        n, batch = params["n_neurons"], params["batch_size"]
        item = np.dtype(params["dtype"]).itemsize
        return {"weights_": n * n_features * item,
                "pass copy and transposed drive matrix": 2 * n * n_features * item,
                "batch scratch": batch * (n * item + n_features * (4 * item + 16))}

    # -- training -------------------------------------------------------------------
    def _init_state(self, n_features: int, rng: np.random.Generator, dtype) -> None:
        n = self._n_neurons()
        self.weights_ = rng.normal(0.0, 1.0, size=(n, n_features)).astype(dtype)
        self.samples_seen_ = 0

    _progress_name = "Krotov-Hopfield"

    def _check_fit(self, params, per_epoch) -> None:
        _check_batch(params["batch_size"], per_epoch, "samples per epoch")

    def _fit_epoch(self, X, order, epoch, epochs, params, bar) -> None:
        """Epoch ``e`` of ``fit`` runs at ``eps0 * (1 - e / epochs)``, the notebook's
        annealing with ``Nep = epochs``."""
        self._run_pass(X, order, params["eps0"] * (1 - epoch / epochs), params, bar)

    def partial_fit(self, X, y=None, *, order=None, eps=None, progress=False):
        """One pass over ``X[order]`` in batches of ``batch_size`` at the fixed rate
        ``eps`` (default ``eps0``), from the current weights.

        If there are no weights yet they are initialised from ``random_state`` first.
        ``order`` defaults to a fresh random permutation of all rows. To continue an
        annealed schedule by hand, pass ``eps=eps0 * (1 - e / n_epochs)`` for epoch ``e``.
        """
        params = self._check_params()
        if eps is not None:
            eps = check_number("eps", eps, low=0, low_open=True)
            check_fits_dtype("eps", eps, params["dtype"])
        else:
            eps = params["eps0"]
        self._check_resources(params, X)
        fresh = not self._has_state()
        n_features = None if fresh else np.shape(self.weights_)[1]
        X = check_inputs(X, dtype=params["dtype"], n_features=n_features)
        self._check_resources(params, X)
        if order is not None:
            order = _check_order(order, X.shape[0])
            _check_batch(params["batch_size"], order.size, "samples in order")
        else:
            _check_batch(params["batch_size"], X.shape[0], "samples in X")
        if getattr(self, "_rng", None) is None:
            self._rng = check_random_state(self.random_state)
        if fresh:
            self._init_state(X.shape[1], self._rng, params["dtype"])
        if order is None:
            order = self._rng.permutation(X.shape[0])
        with tqdm(total=order.size, unit="sample", disable=not progress,
                  desc="Krotov-Hopfield") as bar:
            self._run_pass(X, order, eps, params, bar)
        return self

    def _run_pass(self, X, order, eps, params, bar) -> None:
        """One pass on a copy of the weights; commit it only if it stayed finite."""
        dtype = params["dtype"]
        W = self._checked_state(params["n_neurons"], dtype)["weights_"]
        batch = params["batch_size"]
        W, ST, p_int, q = kernel.pass_state(W, params["p"])
        max_threads = numba.get_num_threads()
        ws = kernel.Workspace(batch, W.shape[0], W.shape[1], params["k"], dtype)
        t = dtype.type
        order = np.ascontiguousarray(order, dtype=np.int64)

        def run(start, stop, threads):
            numba.set_num_threads(threads)
            try:
                done = kernel.krotov_pass(X, order, start, stop, batch, W, ST, p_int, q,
                                          params["k"], t(params["delta"]), t(eps),
                                          t(params["prec"]), ws)
            finally:
                numba.set_num_threads(max_threads)
            if done < 0:
                raise TrainingDiverged(
                    f"training diverged: the weights became NaN or infinite by sample "
                    f"{stop} of this pass (eps={eps:g}, p={params['p']}); lower eps0/eps. "
                    "The model keeps the weights it had before this pass.")
            bar.update(stop - start)

        key = (*W.shape, batch, dtype.name)
        threads, position = _CHOOSER.start(key, run, order.size, batch, max_threads,
                                            rounds=PROBE_ROUNDS)
        step = max(1, CHUNK // batch) * batch
        _CHOOSER.run_chunks(key, run, position, order.size, step, threads, max_threads)
        self.weights_ = W
        self.samples_seen_ = int(getattr(self, "samples_seen_", 0)) + int(order.size)

    # -- inference ------------------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Hidden drives ``I`` (n_samples, n_neurons): ``X (sign(W)|W|^(p-1))ᵀ``, the
        transpose of the rule's ``I = S Xᵀ``. Unit ``i`` of the result is sample-wise
        ``Σ_j sign(W_ij)|W_ij|^(p-1) X_j``; its argmax is the winning unit."""
        params = self._check_params()
        W = self._checked_state(params["n_neurons"], params["dtype"])["weights_"]
        X = check_inputs(X, dtype=params["dtype"], n_features=W.shape[1])
        _, ST, _, _ = kernel.pass_state(W, params["p"])
        out = np.empty((X.shape[0], params["n_neurons"]), dtype=params["dtype"])
        return kernel.hidden_drive(X, ST, out)

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """``fit(X, **fit_params).transform(X)``."""
        return self.fit(X, **fit_params).transform(X)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "KrotovHopfield":
        """Read a model written by :meth:`save` (``.npz``, no pickle)."""
        return base.load(path, expected=cls)


def _check_batch(batch_size: int, n: int, what: str) -> None:
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the {n} {what}; "
                         "lower batch_size")

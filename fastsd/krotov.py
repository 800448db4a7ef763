"""``KrotovHopfield``: the mini-batch rule of "Unsupervised learning by competing hidden
units" (Krotov & Hopfield, PNAS 2019) as an estimator."""
from __future__ import annotations

import numba
import numpy as np

from . import base
from ._tunables import PROBE_ROUNDS
from ._validation import check_dtype, check_fits_dtype, check_number
from .kernels import krotov as kernel
from .kernels.inputs import krotov_rates, krotov_workspace
from .passes import Pass
from .scaling import ScaledDefaults


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
    eps0 : float or "auto", default "auto"
        Learning rate (> 0): the first epoch's rate in :meth:`fit` (annealed linearly
        to 0 over its epochs), the default fixed rate of :meth:`partial_fit`. "auto":
        the searched rate for this N (``KrotovHopfield.scaled_defaults``,
        ``docs/scaling.md``).
    delta : float or "auto", default "auto"
        Strength of the anti-Hebbian update of the k-th ranked unit (>= 0). "auto":
        the searched strength for this N.
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
    epochs : int or "auto", default 1
        Epochs of :meth:`fit` (>= 1; ``fit(X, epochs=...)`` overrides it for one
        call). "auto": :meth:`default_epochs` for the samples per epoch, the number
        of epochs ``fastsd.train`` runs (``docs/scaling.md``).
    features : "response", "drive", default "response"
        What :meth:`transform` returns (:mod:`fastsd.features`): the hidden
        drives ``X Sᵀ`` (the response) or ``a = W x`` (the same for ``p = 2``).
    %(transform_parameters)s
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

    _progress_name = "Krotov-Hopfield"
    #: Settings by N, searched on a validation split (``docs/scaling.md``).
    scaled_defaults = ScaledDefaults(
        rows={100: dict(eps0=0.05, delta=0.2, samples_per_neuron=12000),
              400: dict(eps0=0.05, delta=0.3, samples_per_neuron=3000),
              1600: dict(eps0=0.1, delta=0.2, samples_per_neuron=750)})
    #: The settings of Krotov & Hopfield's notebook (``bench/krotov_notebook.py``).
    presets = {"notebook": dict(eps0=0.02, delta=0.4, p=2.0, k=2, batch_size=100,
                                prec=1e-30, dtype="float64")}

    def __init__(self, n_neurons=100, *, eps0="auto", delta="auto", p=2.0, k=2, batch_size=100,
                 prec=1e-30, epochs=1, features="response", feature_norm="zscore",
                 max_input=1.0, dtype="float64",
                 random_state=None):
        self.n_neurons = n_neurons
        self.eps0 = eps0
        self.delta = delta
        self.p = p
        self.k = k
        self.batch_size = batch_size
        self.prec = prec
        self.epochs = epochs
        self.features = features
        self.feature_norm = feature_norm
        self.max_input = max_input
        self.dtype = dtype
        self.random_state = random_state

    # -- parameters -----------------------------------------------------------------
    def _check_params(self) -> dict:
        """Validated parameters, "auto" resolved (raises TypeError/ValueError naming the
        bad one)."""
        given = self._given_params()
        n_neurons = check_number("n_neurons", given["n_neurons"], low=1, integer=True)
        k = check_number("k", given["k"], low=2, integer=True)
        if k > n_neurons:
            raise ValueError(f"k must be <= n_neurons (the k-th ranked of {n_neurons} "
                             f"units must exist), got k={k}")
        params = dict(
            n_neurons=n_neurons,
            eps0=check_number("eps0", given["eps0"], low=0, low_open=True),
            delta=check_number("delta", given["delta"], low=0),
            p=check_number("p", given["p"], low=1),
            k=k,
            batch_size=check_number("batch_size", given["batch_size"], low=1, integer=True),
            prec=check_number("prec", given["prec"], low=0, low_open=True),
            dtype=check_dtype(given["dtype"]),
        )
        for name in ("eps0", "delta", "prec"):
            check_fits_dtype(name, params[name], params["dtype"])
        return params

    def _tiny_params(self) -> dict:
        return {"n_neurons": max(4, self._check_params()["k"])}

    def _memory_needed(self, params, n_features) -> dict:
        """Weights, the pass's working copy and transposed drive matrix, and per-batch
        scratch (:class:`fastsd.kernels.inputs.KrotovWorkspace`)."""
        n, batch = params["n_neurons"], params["batch_size"]
        item = np.dtype(params["dtype"]).itemsize
        return {"weights_": n * n_features * item,
                "pass copy and transposed drive matrix": 2 * n * n_features * item,
                "batch scratch": batch * (n * item + n_features * (4 * item + 16))}

    # -- training -------------------------------------------------------------------
    def _init_state(self, n_features: int, rng: np.random.Generator, dtype) -> None:
        n = self._n_neurons()
        self.weights_ = rng.normal(0.0, 1.0, size=(n, n_features)).astype(dtype)

    def partial_fit(self, X, y=None, *, order=None, eps=None, progress=False):
        """One pass over ``X[order]`` in batches of ``batch_size`` at the fixed rate
        ``eps`` (default ``eps0``), from the current weights.

        If there are no weights yet they are initialised from ``random_state`` first.
        ``order`` defaults to a fresh random permutation of all rows. To continue an
        annealed schedule by hand, pass ``eps=eps0 * (1 - e / n_epochs)`` for epoch ``e``.

        Returns
        -------
        self
        """
        if eps is not None:
            eps = check_number("eps", eps, low=0, low_open=True)
            check_fits_dtype("eps", eps, self._check_params()["dtype"])
        return self._partial_fit(X, order, progress, eps=eps)

    def _make_pass(self, state, params, schedule, eps=None):
        """Epoch ``e`` of ``fit`` runs at ``eps0 * (1 - e / epochs)``, the notebook's
        annealing with ``Nep = epochs``; ``partial_fit`` at ``eps`` (default ``eps0``)."""
        if eps is None:
            eps = params["eps0"] * (1 - (schedule.at(0) if schedule else 0.0))
        return _KrotovPass(state["weights_"], params, eps)

    # -- inference ------------------------------------------------------------------
    def _respond(self, state, X) -> np.ndarray:
        """Hidden drives ``I`` (n_samples, n_neurons): ``X (sign(W)|W|^(p-1))ᵀ``, the
        transpose of the rule's ``I = S Xᵀ``. Unit ``i`` of the result is sample-wise
        ``Σ_j sign(W_ij)|W_ij|^(p-1) X_j``; its argmax is the winning unit."""
        _, ST = kernel.pass_state(state["weights_"], self._check_params()["p"])
        out = np.empty((X.shape[0], ST.shape[1]), dtype=X.dtype)
        return kernel.hidden_drive(X, ST, out)


class _KrotovPass(Pass):
    """A pass of :func:`fastsd.kernels.krotov.krotov_pass` at the fixed rate ``eps``;
    its batches may use all threads (chosen by a probe of a few batches)."""

    probe_rounds = PROBE_ROUNDS

    def __init__(self, W, params, eps):
        self.W, self.ST = kernel.pass_state(W, params["p"])
        self.params, self.eps = params, eps
        self.batch_size = params["batch_size"]
        self.max_threads = numba.get_num_threads()
        self.rates = krotov_rates(self.batch_size, params["p"], params["k"],
                                  params["delta"], eps, params["prec"], self.W.dtype)
        self.ws = krotov_workspace(self.batch_size, *self.W.shape, params["k"],
                                   self.W.dtype)

    def run(self, X, order, start, stop, threads) -> int:
        numba.set_num_threads(threads)
        try:
            done = kernel.krotov_pass(X, order, start, stop, self.W, self.ST, self.rates,
                                      self.ws)
        finally:
            numba.set_num_threads(self.max_threads)
        return -1 if done >= 0 else stop

    def state(self) -> dict:
        return {"weights_": self.W}

    def diverged(self, position: int) -> str:
        return (f"training diverged: the weights became NaN or infinite by sample "
                f"{position} of this pass (eps={self.eps:g}, p={self.params['p']}); lower "
                "eps0/eps. The model keeps the weights it had before this pass.")

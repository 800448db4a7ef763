"""``SparseDream``: the per-sample rule with lateral inhibition, as an estimator.

The rule step by step: ``docs/rules/sparsedream.md``; its passes:
:mod:`fastsd.sparsedream_passes`.
"""
from __future__ import annotations

import numpy as np

from . import base
from ._tunables import PASS_BANDWIDTH
from ._validation import check_bool, check_dtype, check_fits_dtype, check_number
from .kernels import sparsedream as kernel
from .kernels import wta
from .kernels.inputs import SparseDreamRates, sparsedream_rates
from .scaling import ScaledDefaults
from .sparsedream_passes import ExactPass, MiniBatchPass


class SparseDream(base.PrototypeModel):
    """SparseDream network with lateral inhibition (exact per-sample rule).

    The defaults depend on N: ``sp = 1/N`` and the rates, the batch size and the
    number of epochs ``fastsd.train`` runs come from a table of settings searched on a
    validation split at N = 100, 400 and 1600 (``scaled_defaults``,
    ``docs/scaling.md``): no inhibition, homeostasis, ``xi`` annealed, float32.
    ``presets["notebook"]`` holds the research notebook's setting. The rule:
    ``docs/rules/sparsedream.md``.

    Parameters
    ----------
    n_neurons : int, default 100
        Number of neurons N (shown as a Kx×Ky grid in pictures).
    xi : float or "auto", default "auto"
        Weight learning rate (> 0). "auto": the searched rate for this N
        (``SparseDream.scaled_defaults``, ``docs/scaling.md``).
    sp : float or "auto", default "auto"
        Target firing rate, in (0, 1). "auto": ``1 / n_neurons`` (one neuron fires per
        sample on average).
    gamma : float or "auto", default "auto"
        Threshold (homeostasis) rate (>= 0). "auto": the searched rate for this N.
    beta : float or "auto", default "auto"
        Lateral inhibition rate (>= 0); 0 disables inhibition. "auto": the searched
        rate for this N (0 up to about 800 neurons).
    prec : float, default 1e-10
        Floor of the reconstruction in the update and pruning threshold (> 0).
    prune_every : int, default 100
        Weights ``<= prec`` are set to zero on every ``prune_every``-th sample of a pass.
    anneal : bool, default True
        If True, ``fit`` lowers ``xi`` linearly from its value at the first sample to
        zero at the last one (in steps of one chunk of at most 4096 samples), as
        Krotov & Hopfield anneal their rate; ``partial_fit`` always uses ``xi``.
    batch_size : int or "auto", default "auto"
        1 runs the exact per-sample rule ("auto": 1 up to about 200 neurons, 100
        above, ``docs/scaling.md``). Larger values train in mini-batches: ``W``
        is held fixed within a batch and updated once from the summed per-sample
        updates (see :mod:`fastsd.kernels.minibatch`), while thresholds and inhibition
        are still updated sample by sample (``docs/minibatch.md``). Much faster, not
        identical; 100 (with the default ``min_response``) stays within 1 pp of the
        exact rule (``docs/accuracy.md#mini-batches-against-the-exact-rule``).
        Mini-batches can use two threads (see Notes).
    min_response : float, default 1e-6
        Mini-batches only: responses below this value are left out of every product
        with the responses (the reconstruction, the weight update, ``L p`` and the
        inhibition update; the thresholds still see them), which makes those products
        sparse. In [0, 1); 0 keeps every response (~2x slower); 1e-4 is less
        accurate at some rates (``docs/accuracy.md``).
    saturate_excitation : bool, default True
        Mini-batches only: in ``L p`` also count the excitations ``p`` within
        ``min_response`` of 1 as 1. With many neurons and a small ``sp`` nearly all
        ``p`` are that close to 1, and ``L p`` is computed from the row sums of ``L``
        less the rows of the others; this makes those fewer (N=1600, ``sp = 1/N``,
        first epoch: 33 rows of ``L`` read per sample on average, 56 without). No
        accuracy cost was measurable (docs/performance.md). False leaves ``p`` as it is.
    epochs : int or "auto", default 1
        Epochs of :meth:`fit` (>= 1; ``fit(X, epochs=...)`` overrides it for one
        call). "auto": :meth:`default_epochs` for the samples per epoch, the number
        of epochs ``fastsd.train`` runs (``docs/scaling.md``).
    features : "logit", "response", "drive", default "logit"
        What :meth:`transform` returns (:mod:`fastsd.features`): the log-odds
        ``a − L p − t`` (the linear probe's default), the response ``o`` or the
        drive ``a = W x``. "logit" gives a linear classifier the most
        (``docs/evaluation.md#transform-features``).
    %(transform_parameters)s
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the state and of the arithmetic.
    random_state : int or None
        Seed for the initial weights (uniform in [0.1, 1)) and the sample orders.

    Attributes
    ----------
    weights_ : ndarray (n_neurons, n_features)
    thresholds_ : ndarray (n_neurons,)
    inhibition_ : ndarray (n_neurons, n_neurons), zero diagonal
    samples_seen_ : int
        Samples processed since the state was initialised.

    Notes
    -----
    From ``PARTS_MIN_NEURONS`` (1024) neurons on, the per-sample rule may split its
    work on ``W`` and ``L`` over two threads (three parallel regions per sample); below,
    it runs on one. The mini-batch pass splits the weight half of each batch over two
    threads (:mod:`fastsd.kernels.columns`). Either uses two threads if Numba may use
    two or more (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``) and if they are
    faster: a pass of at least three chunks (4096 samples each) runs its first chunk
    on two threads, times its second on one and its third on two, and continues with
    the faster (two only if clearly, 20%, faster); passes of the next 30 s with the
    same shapes reuse the choice. A pass on two threads drops to one for its remaining
    chunks if a chunk took longer per sample than one thread did. Results do not
    depend on the number of threads.
    """

    _state = {
        "weights_": lambda n, m: (n, m),
        "thresholds_": lambda n, m: (n,),
        "inhibition_": lambda n, m: (n, n),
    }

    _progress_name = "SparseDream"
    #: Settings by N, searched on a validation split (``docs/scaling.md``).
    scaled_defaults = ScaledDefaults(
        rows={100: dict(xi=0.015, gamma=1.5, beta=0.0, batch_size=1,
                        samples_per_neuron=4800),
              400: dict(xi=0.05, gamma=5.0, beta=0.0, batch_size=100,
                        samples_per_neuron=4500),
              1600: dict(xi=0.1, gamma=20.0, beta=0.01, batch_size=100,
                         samples_per_neuron=750)},
        formulas={"sp": lambda n: 1.0 / n})
    #: The research notebook's best-documented setting (86.4% cosine WTA at N=100 in
    #: the notebook): ``fastsd train --preset notebook``.
    presets = {"notebook": dict(xi=0.02, sp=0.01, gamma=1.0, beta=0.005, prec=1e-10,
                                prune_every=100, anneal=False, batch_size=1,
                                dtype="float64", epochs=10, samples_per_epoch=6000)}

    def __init__(self, n_neurons=100, *, xi="auto", sp="auto", gamma="auto", beta="auto",
                 prec=1e-10, prune_every=100, anneal=True, batch_size="auto",
                 min_response=1e-6,
                 saturate_excitation=True, epochs=1, features="logit", feature_norm="zscore",
                 max_input=1.0,
                 dtype="float32", random_state=None):
        self.n_neurons = n_neurons
        self.xi = xi
        self.sp = sp
        self.gamma = gamma
        self.beta = beta
        self.prec = prec
        self.prune_every = prune_every
        self.anneal = anneal
        self.batch_size = batch_size
        self.min_response = min_response
        self.saturate_excitation = saturate_excitation
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
        p = self._given_params()
        return dict(
            n_neurons=check_number("n_neurons", p["n_neurons"], low=1, integer=True),
            xi=check_number("xi", p["xi"], low=0, low_open=True),
            sp=check_number("sp", p["sp"], low=0, high=1, low_open=True, high_open=True),
            gamma=check_number("gamma", p["gamma"], low=0),
            beta=check_number("beta", p["beta"], low=0),
            prec=check_number("prec", p["prec"], low=0, low_open=True),
            prune_every=check_number("prune_every", p["prune_every"], low=1, integer=True),
            anneal=check_bool("anneal", p["anneal"]),
            batch_size=check_number("batch_size", p["batch_size"], low=1, integer=True),
            min_response=check_number("min_response", p["min_response"], low=0, high=1,
                                      high_open=True),
            saturate_excitation=check_bool("saturate_excitation", p["saturate_excitation"]),
            dtype=check_dtype(p["dtype"]),
        )

    def _kernel_rates(self, params) -> SparseDreamRates:
        """The rates for the kernels in the state's dtype (checked to fit in it)."""
        for name in SparseDreamRates._fields:
            check_fits_dtype(name, params[name], params["dtype"])
        return sparsedream_rates(params, params["dtype"])

    def _memory_needed(self, params, n_features) -> dict:
        """State, its working copy and, for mini-batches, the pass's transposed copies
        and per-batch scratch (:class:`fastsd.sparsedream_passes.MiniBatchWork`)."""
        sizes = super()._memory_needed(params, n_features)
        n, batch = params["n_neurons"], params["batch_size"]
        item = np.dtype(params["dtype"]).itemsize
        if batch > 1:
            sizes["transposed weights"] = n_features * n * item
            sizes["transposed inhibition (if L is not symmetric)"] = n * n * item
            sizes["batch scratch"] = batch * (4 * n * item + n_features * (item + 8) + 8 * n)
        return sizes

    def _seconds_per_sample(self, params, n_features):
        """The exact rule reads ``W`` three times and, with inhibition, ``L`` twice per
        sample: at ``PASS_BANDWIDTH`` bytes/s that bounds its time from below."""
        if params["batch_size"] > 1:
            return None
        n, item = params["n_neurons"], np.dtype(params["dtype"]).itemsize
        moved = 3 * n * n_features + (2 * n * n if params["beta"] > 0 else 0)
        return (moved * item / PASS_BANDWIDTH,
                "the exact per-sample rule moves all of W (and L) per sample; "
                "batch_size=100 trains in mini-batches, much faster")

    # -- training -------------------------------------------------------------------
    def _init_state(self, n_features: int, rng: np.random.Generator, dtype) -> None:
        n = self._n_neurons()
        self.weights_ = rng.uniform(0.1, 1.0, size=(n, n_features)).astype(dtype)
        self.thresholds_ = np.zeros(n, dtype=dtype)
        self.inhibition_ = np.zeros((n, n), dtype=dtype)

    def _make_pass(self, state, params, schedule):
        """The exact pass (``batch_size=1``) or mini-batches; with ``anneal`` in a fit,
        ``xi`` falls linearly from its value at the first sample to 0 at the last (one
        step per chunk of :data:`fastsd._tunables.SAMPLES_PER_CALL` samples)."""
        kind = ExactPass if params["batch_size"] == 1 else MiniBatchPass
        return kind(state, params, self._kernel_rates(params), schedule)

    # -- inference ------------------------------------------------------------------
    def _respond(self, state, X) -> np.ndarray:
        """Network response ``o`` (n_samples, n_neurons): steps 1–3 with the learned
        state."""
        out = np.empty((X.shape[0], state["weights_"].shape[0]), dtype=X.dtype)
        return kernel.sparsedream_response(X, state["weights_"], state["thresholds_"],
                                           state["inhibition_"], out)

    def _winners(self, state, X) -> np.ndarray:
        """Winner of every row of ``X`` by the response ``o``, computed in float64 (a
        float32 response saturates to exactly 1 and would tie neurons)."""
        WT = np.ascontiguousarray(state["weights_"].T, dtype=np.float64)
        t = np.ascontiguousarray(state["thresholds_"], dtype=np.float64)
        L = np.ascontiguousarray(state["inhibition_"], dtype=np.float64)
        return wta.response_winners(X, WT, t, L, np.empty(X.shape[0], np.int64))

    def _logits(self, state, X) -> np.ndarray:
        """Steps 1–3 without the last sigmoid, in float64: ``a − σ(a − t) Lᵀ − t``."""
        from scipy.special import expit
        WT = np.ascontiguousarray(state["weights_"].T, dtype=np.float64)
        a = wta.drives(X, WT, np.empty((X.shape[0], WT.shape[1])))
        t = state["thresholds_"].astype(np.float64)
        return a - expit(a - t) @ state["inhibition_"].astype(np.float64).T - t

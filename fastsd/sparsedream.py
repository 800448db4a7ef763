"""``SparseDream``: the per-sample rule with lateral inhibition, as an estimator."""
from __future__ import annotations

import os
import warnings

import numba
import numpy as np
from tqdm.auto import tqdm

from . import base
from ._validation import (
    check_dtype, check_fits_dtype, check_inputs, check_number, check_random_state,
)
from ._threads import ThreadChooser
from .kernels import sparsedream as kernel
from .kernels.columns import ALIGN, PARTS
from .minibatch import MiniBatchPass

#: Samples handed to the compiled pass per call: bounds the time between progress-bar
#: updates and Ctrl-C checks. Chunking does not change results (the drive ``a`` of the
#: next sample is carried across calls).
CHUNK = 4096

#: Bytes per second the exact per-sample pass moves through memory at best, for the
#: slow-pass warning (its state is streamed through the caches once per sample; the
#: memory bandwidth of one core of a current server is of this order).
PASS_BANDWIDTH = 20e9

#: The exact per-sample pass may use two threads from this many neurons on: a sample
#: then moves megabytes (N=1600 with inhibition: 15 MB, 1.9x faster on two threads of
#: an idle 2-core AMD EPYC), while at N=400 three parallel regions per sample gained
#: nothing and at N=100 they cost 1.6x.
PARTS_MIN_NEURONS = 1024

#: Chooses one or two threads for a pass by timing whole chunks of it.
_CHOOSER = ThreadChooser()


class TrainingDiverged(FloatingPointError, ValueError):
    """The state became NaN or infinite during a pass (too large a rate)."""


@base.register
class SparseDream(base.PrototypeModel):
    """SparseDream network with lateral inhibition (exact per-sample rule).

    Parameters
    ----------
    n_neurons : int, default 100
        Number of neurons N (shown as a Kx×Ky grid in pictures).
    xi : float, default 0.02
        Weight learning rate (> 0).
    sp : float, default 0.01
        Target firing rate, in (0, 1).
    gamma : float, default 1.0
        Threshold (homeostasis) rate (>= 0).
    beta : float, default 0.005
        Lateral inhibition rate (>= 0); 0 disables inhibition.
    prec : float, default 1e-10
        Floor of the reconstruction in the update and pruning threshold (> 0).
    prune_every : int, default 100
        Weights ``<= prec`` are set to zero on every ``prune_every``-th sample of a pass.
    anneal : bool, default False
        If True, ``fit`` lowers ``xi`` linearly from its value at the first sample to
        zero at the last one (in steps of one chunk of at most 4096 samples), as
        Krotov & Hopfield anneal their rate; ``partial_fit`` always uses ``xi``.
    batch_size : int, default 1
        1 runs the exact per-sample rule. Larger values train in mini-batches: ``W``
        is held fixed within a batch and updated once from the summed per-sample
        updates (see :mod:`fastsd.kernels.minibatch`), while thresholds and inhibition
        are still updated sample by sample. Much faster, not identical; 100 (with the
        default ``min_response``) stays within 1 pp of the exact rule (README, Accuracy).
        Mini-batches can use two threads (see Notes).
    min_response : float, default 1e-6
        Mini-batches only: responses below this value are left out of every product
        with the responses (the reconstruction, the weight update, ``L p`` and the
        inhibition update; the thresholds still see them), which makes those products
        sparse. In [0, 1); 0 keeps every response (~2x slower); 1e-4 is less
        accurate at some rates (README, Accuracy).
    saturate_excitation : bool, default True
        Mini-batches only: in ``L p`` also count the excitations ``p`` within
        ``min_response`` of 1 as 1. With many neurons and a small ``sp`` nearly all
        ``p`` are that close to 1, and ``L p`` is computed from the row sums of ``L``
        less the rows of the others; this makes those fewer (N=1600, ``sp = 1/N``,
        first epoch: 33 rows of ``L`` read per sample on average, 56 without). No
        accuracy cost was measurable (docs/performance.md). False leaves ``p`` as it is.
    dtype : {"float64", "float32"}, default "float64"
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

    def __init__(self, n_neurons=100, *, xi=0.02, sp=0.01, gamma=1.0, beta=0.005,
                 prec=1e-10, prune_every=100, anneal=False, batch_size=1, min_response=1e-6,
                 saturate_excitation=True, dtype="float64", random_state=None):
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
        self.dtype = dtype
        self.random_state = random_state

    # -- parameters -----------------------------------------------------------------
    def _check_params(self) -> dict:
        """Validated parameters (raises TypeError/ValueError naming the bad one)."""
        return dict(
            n_neurons=check_number("n_neurons", self.n_neurons, low=1, integer=True),
            xi=check_number("xi", self.xi, low=0, low_open=True),
            sp=check_number("sp", self.sp, low=0, high=1, low_open=True, high_open=True),
            gamma=check_number("gamma", self.gamma, low=0),
            beta=check_number("beta", self.beta, low=0),
            prec=check_number("prec", self.prec, low=0, low_open=True),
            prune_every=check_number("prune_every", self.prune_every, low=1, integer=True),
            anneal=_check_bool("anneal", self.anneal),
            batch_size=check_number("batch_size", self.batch_size, low=1, integer=True),
            min_response=check_number("min_response", self.min_response, low=0, high=1,
                                      high_open=True),
            saturate_excitation=_check_bool("saturate_excitation", self.saturate_excitation),
            dtype=check_dtype(self.dtype),
        )

    def _kernel_hyper(self, params) -> np.ndarray:
        """The rates packed for the kernel in the state's dtype (checked to fit in it)."""
        dtype = params["dtype"]
        names = ("xi", "sp", "gamma", "beta", "prec")
        hp = np.empty(kernel.N_HYPER, dtype=dtype)
        for name, slot in zip(names, (kernel.XI, kernel.SP, kernel.GAMMA, kernel.BETA,
                                      kernel.PREC)):
            check_fits_dtype(name, params[name], dtype)
            hp[slot] = params[name]
        return hp

    def _memory_needed(self, params, n_features) -> dict:
        """State, its working copy and, for mini-batches, the pass's transposed copies
        and per-batch scratch (:class:`fastsd.minibatch.MiniBatchPass`)."""
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
        self.samples_seen_ = 0

    _progress_name = "SparseDream"

    def _fit_epoch(self, X, order, epoch, epochs, params, bar) -> None:
        """One epoch of ``fit``; with ``anneal`` the rate falls linearly over the fit."""
        xi_at = None
        if params["anneal"]:
            done, total = epoch * order.size, epochs * order.size
            xi_at = lambda k: params["xi"] * (1 - (done + k) / total)  # noqa: E731
        self._run_pass(X, order, params, bar, xi_at)

    def partial_fit(self, X, y=None, *, order=None, progress=False):
        """One pass over ``X[order]`` from the current state.

        Pruning is counted by position in this pass. If there is no state yet it is
        initialised from ``random_state`` first. ``order`` defaults to a fresh random
        permutation of all rows.
        """
        params = self._check_params()
        self._check_resources(params, X, None if order is None else np.size(order))
        fresh = not self._has_state()
        n_features = None if fresh else np.shape(self.weights_)[1]
        X = check_inputs(X, dtype=params["dtype"], n_features=n_features)
        self._check_resources(params, X, X.shape[0] if order is None else np.size(order))
        if getattr(self, "_rng", None) is None:
            self._rng = check_random_state(self.random_state)
        if fresh:
            self._init_state(X.shape[1], self._rng, params["dtype"])
        if order is None:
            order = self._rng.permutation(X.shape[0])
        order = _check_order(order, X.shape[0])
        with tqdm(total=order.size, unit="sample", disable=not progress,
                  desc="SparseDream") as bar:
            self._run_pass(X, order, params, bar)
        return self

    def _run_pass(self, X, order, params, bar, xi_at=None) -> None:
        """Run one pass on copies of the state; commit them only if all stayed finite.

        ``xi_at(k)``, if given, is the rate for the chunk starting at position ``k``.
        """
        dtype = params["dtype"]
        state = self._checked_state(params["n_neurons"], dtype)
        W = state["weights_"].copy()
        t = state["thresholds_"].copy()
        L = state["inhibition_"].copy()
        hp = self._kernel_hyper(params)
        N, m = W.shape
        batch = params["batch_size"]
        if batch > order.size:
            raise ValueError(f"batch_size={batch} is larger than the {order.size} samples "
                             "of this pass")
        if batch == 1:
            a, p, o = (np.empty(N, dtype) for _ in range(3))
            r, g = (np.empty(m, dtype) for _ in range(2))
            rows, cols = kernel.part_cuts(N, kernel.BLOCK), kernel.part_cuts(m, ALIGN)

            def kernel_run(start, stop, threads):
                args = (X, order, start, stop, W, t, L, hp, params["prune_every"], a, p, o,
                        r, g)
                if threads == 1:
                    return kernel.sparsedream_pass(*args)
                before = numba.get_num_threads()
                numba.set_num_threads(threads)
                try:  # the same numbers, the work on W and L split over two threads
                    return kernel.sparsedream_pass_parts(*args, rows, cols)
                finally:
                    numba.set_num_threads(before)
        else:
            work = MiniBatchPass(N, m, batch, dtype, params["min_response"],
                                 params["saturate_excitation"])

            def kernel_run(start, stop, threads):
                return work.run(X, order, start, stop, W, t, L, hp, params["prune_every"],
                                threads)

        chunk = -(-CHUNK // batch) * batch  # whole batches per chunk

        def run(start, stop, threads):
            # Calls are cut at chunk boundaries, and each chunk has one rate, however
            # the pass is split into calls: results do not depend on the split.
            while start < stop:
                end = min(stop, (start // chunk + 1) * chunk)
                if xi_at is not None:
                    hp[kernel.XI] = xi_at(start - start % chunk)
                bad = kernel_run(start, end, threads)
                if bad >= 0:
                    raise TrainingDiverged(
                        f"training diverged: weights, thresholds or inhibition became NaN "
                        f"or infinite by sample {bad} of this pass (xi={params['xi']}, "
                        f"gamma={params['gamma']}, beta={params['beta']}); lower the "
                        "rates. The model keeps the state it had before this pass.")
                bar.update(end - start)
                start = end

        key = ("sparsedream", N, m, batch, np.dtype(dtype).name)
        max_threads = min(numba.get_num_threads(), PARTS)
        if batch == 1 and N < PARTS_MIN_NEURONS:
            max_threads = 1
        _CHOOSER.run_probing_chunks(key, run, order.size, chunk, max_threads)
        self.weights_, self.thresholds_, self.inhibition_ = W, t, L
        self.samples_seen_ = int(getattr(self, "samples_seen_", 0)) + int(order.size)
        dead = int(np.sum(~W.any(axis=1)))
        if dead:
            warnings.warn(f"{dead} of {N} neurons have all-zero weights (pruned away); "
                          f"xi={params['xi']} may be too large", RuntimeWarning, stacklevel=3)

    # -- inference ------------------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Network response ``o`` (n_samples, n_neurons): steps 1–3 with the learned state."""
        params = self._check_params()
        state = self._checked_state(params["n_neurons"], params["dtype"])
        X = check_inputs(X, dtype=params["dtype"], n_features=state["weights_"].shape[1])
        out = np.empty((X.shape[0], params["n_neurons"]), dtype=params["dtype"])
        return kernel.sparsedream_response(X, state["weights_"], state["thresholds_"],
                                           state["inhibition_"], out)

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """``fit(X, **fit_params).transform(X)``."""
        return self.fit(X, **fit_params).transform(X)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SparseDream":
        """Read a model written by :meth:`save` (``.npz``, no pickle)."""
        return base.load(path, expected=cls)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_order(order, n_samples: int) -> np.ndarray:
    """Validate a sample order: 1-D integers in ``[0, n_samples)``, at least one."""
    arr = np.asarray(order)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"order must be a non-empty 1-D array of row indices, got shape "
                         f"{arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"order must hold integers, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n_samples:
        raise ValueError(f"order has indices outside [0, {n_samples}): min {arr.min()}, "
                         f"max {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64)

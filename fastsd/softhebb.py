"""``SoftHebb``: Hebbian soft winner-take-all (Moraitis et al., Neuromorph. Comput. Eng.
2022) as an estimator. The rule and its sources: ``docs/rules/softhebb.md``."""
from __future__ import annotations

import numpy as np

from . import base
from ._validation import check_bool, check_dtype, check_fits_dtype, check_number
from .kernels import softhebb as kernel
from .passes import Pass


class SoftHebb(base.PrototypeModel):
    """SoftHebb: a soft winner-take-all layer trained by a local Hebbian rule.

    For each sample ``x`` (or each mini-batch, see ``batch_size``), with ``u = W x + b``
    and ``y = softmax(inverse_temperature * u)``: every neuron ``k`` moves
    ``w_k += learning_rate * y_k * (x - u_k w_k)`` and
    ``b_k += (bias_learning_rate / inverse_temperature) * exp(-β b_k) * (y_k - exp(β b_k))``
    (β the inverse temperature), all from the state before the update. The defaults
    (β and the init radius of the authors' MNIST preset, rates tuned on a validation
    split of MNIST's training set) are explained in ``docs/rules/softhebb.md``.

    Parameters
    ----------
    n_neurons : int, default 100
        Number of neurons N.
    inverse_temperature : float, default 12.0
        β of the softmax (> 0); large values approach a hard winner-take-all.
    learning_rate : float, default 0.005
        Weight rate η (> 0).
    bias_learning_rate : float, default 0.0005
        Bias rate η_b (>= 0); 0 keeps the biases at the uniform prior ``-ln(N)/β``.
    init_radius : float, default 10.0
        Initial weights are uniform on ``[0, init_radius * sqrt(3 / n_features))``,
        so their expected norm is about ``init_radius`` (> 0).
    anneal : bool, default False
        If True, ``fit`` scales both rates by ``1 - t/T`` at sample ``t`` of its ``T``
        samples (per batch); ``partial_fit`` always uses the fixed rates.
    batch_size : int, default 1
        1: the paper's online rule. B > 1: the mean of the B per-sample updates, all
        computed from the state at the batch's start.
    epochs : int or "auto", default 1
        Epochs of :meth:`fit` (>= 1; ``fit(X, epochs=...)`` overrides it for one
        call). "auto": :meth:`default_epochs` for the samples per epoch, the number
        of epochs ``fastsd.train`` runs (``docs/scaling.md``).
    features : "logit", "response", "drive", default "logit"
        What :meth:`transform` returns (:mod:`fastsd.features`): the log of the
        soft winner-take-all ``log y`` (the linear probe's default), ``y`` itself or
        the drive ``a = W x`` (without the biases).
    %(transform_parameters)s
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the state and of the arithmetic.
    random_state : int or None
        Seed: ``numpy.random.default_rng(random_state)`` draws the weights, then the
        sample orders.

    Attributes
    ----------
    weights_ : ndarray (n_neurons, n_features)
    biases_ : ndarray (n_neurons,)
    samples_seen_ : int
        Samples processed since the state was initialised.
    """

    _state = {"weights_": lambda n, m: (n, m), "biases_": lambda n, m: (n,)}
    _progress_name = "SoftHebb"
    #: The authors' MNIST fully connected preset (``2SoftMlpMNIST`` in their code's
    #: ``presets.json``) where it applies to this rule: β = 12, init radius 35. Their
    #: rate (0.045) is for a rescaled update this rule does not use (see the doc page).
    presets = {"authors-mnist": dict(inverse_temperature=12.0, init_radius=35.0,
                                     learning_rate=0.003, bias_learning_rate=0.0003)}

    def __init__(self, n_neurons=100, *, inverse_temperature=12.0, learning_rate=0.005,
                 bias_learning_rate=0.0005, init_radius=10.0, anneal=False, batch_size=1,
                 epochs=1, features="logit", feature_norm="zscore",
                 max_input=1.0, dtype="float32", random_state=None):
        self.n_neurons = n_neurons
        self.inverse_temperature = inverse_temperature
        self.learning_rate = learning_rate
        self.bias_learning_rate = bias_learning_rate
        self.init_radius = init_radius
        self.anneal = anneal
        self.batch_size = batch_size
        self.epochs = epochs
        self.features = features
        self.feature_norm = feature_norm
        self.max_input = max_input
        self.dtype = dtype
        self.random_state = random_state

    def _check_params(self) -> dict:
        """Validated parameters (raises TypeError/ValueError naming the bad one)."""
        params = dict(
            n_neurons=check_number("n_neurons", self.n_neurons, low=1, integer=True),
            inverse_temperature=check_number("inverse_temperature",
                                             self.inverse_temperature, low=0,
                                             low_open=True),
            learning_rate=check_number("learning_rate", self.learning_rate, low=0,
                                       low_open=True),
            bias_learning_rate=check_number("bias_learning_rate",
                                            self.bias_learning_rate, low=0),
            init_radius=check_number("init_radius", self.init_radius, low=0,
                                     low_open=True),
            anneal=check_bool("anneal", self.anneal),
            batch_size=check_number("batch_size", self.batch_size, low=1, integer=True),
            dtype=check_dtype(self.dtype),
        )
        for name in ("inverse_temperature", "learning_rate", "bias_learning_rate",
                     "init_radius"):
            check_fits_dtype(name, params[name], params["dtype"])
        return params

    def _memory_needed(self, params, n_features) -> dict:
        """Weights and their pass copy; biases and scratch are small."""
        n, item = params["n_neurons"], np.dtype(params["dtype"]).itemsize
        return {"weights_": n * n_features * item,
                "weights_ (pass copy)": n * n_features * item,
                "biases and batch scratch": (2 * params["batch_size"] + 3) * n * item}

    def _init_state(self, n_features: int, rng: np.random.Generator, dtype) -> None:
        p = self._check_params()
        high = p["init_radius"] * np.sqrt(3.0 / n_features)
        self.weights_ = (rng.random((p["n_neurons"], n_features)) * high).astype(dtype)
        self.biases_ = np.full(p["n_neurons"], -np.log(p["n_neurons"])
                               / p["inverse_temperature"], dtype=dtype)

    def _make_pass(self, state, params, schedule):
        """``fit`` with ``anneal`` scales the rates by ``1 - t/T`` (``t``: sample of the
        whole fit at the batch's start); otherwise they are fixed."""
        return _SoftHebbPass(state, params, schedule if params["anneal"] else None)

    def _drives(self, state, X) -> np.ndarray:
        return X @ state["weights_"].T + state["biases_"]

    def _respond(self, state, X) -> np.ndarray:
        """The soft winner-take-all ``softmax(β (X Wᵀ + b))``, (n_samples, n_neurons)."""
        U = np.ascontiguousarray(self._drives(state, X))
        return kernel.softmax_rows(U, self._check_params()["inverse_temperature"])

    def _winners(self, state, X) -> np.ndarray:
        """The neuron with the largest drive ``u = W x + b`` for each row of ``X``,
        computed in float64 like every WTA score."""
        W, b = state["weights_"].astype(np.float64), state["biases_"].astype(np.float64)
        U = np.asarray(X, np.float64) @ W.T + b
        return np.argmax(U, axis=1).astype(np.int64)

    def _logits(self, state, X) -> np.ndarray:
        """The response on the log scale, ``log y = β u - logsumexp(β u)``, in float64
        (the linear probe's default features; ``y`` itself underflows to 0)."""
        from scipy.special import log_softmax
        W, b = state["weights_"].astype(np.float64), state["biases_"].astype(np.float64)
        return log_softmax(self._check_params()["inverse_temperature"]
                           * (np.asarray(X, np.float64) @ W.T + b), axis=1)


class _SoftHebbPass(Pass):
    """A pass of :func:`fastsd.kernels.softhebb.softhebb_pass` (one thread)."""

    def __init__(self, state, params, schedule):
        self.W, self.b = state["weights_"], state["biases_"]
        self.params = params
        self.batch_size = params["batch_size"]
        # the kernel anneals per batch from the absolute position in the fit, so the
        # rates do not depend on how the pass is cut into calls
        done, total = ((schedule.done, schedule.total) if schedule is not None
                       else (0.0, 0.0))
        self.rates = kernel.softhebb_rates(self.batch_size, params["inverse_temperature"],
                                    params["learning_rate"], params["bias_learning_rate"],
                                    done, total)
        self.scratch = kernel.softhebb_scratch(self.batch_size, self.W.shape[0], self.W.dtype)

    def run(self, X, order, start, stop, threads) -> int:
        return kernel.softhebb_pass(X, order, start, stop, self.W, self.b, self.rates,
                                    self.scratch)

    def state(self) -> dict:
        return {"weights_": self.W, "biases_": self.b}

    def diverged(self, position: int) -> str:
        p = self.params
        return (f"training diverged: the weights or biases became NaN or infinite at "
                f"sample {position} of this pass (learning_rate={p['learning_rate']:g}, "
                f"bias_learning_rate={p['bias_learning_rate']:g}); lower learning_rate "
                "(the Oja term needs learning_rate * u << 1, so also init_radius) or "
                "bias_learning_rate. The model keeps the state it had before this pass.")

"""One-call entry points: ``fastsd.train``."""
from __future__ import annotations

from .sparsedream import SparseDream

#: Defaults of ``fastsd.train`` and ``fastsd train``: the best setting of the search in
#: ``sweeps/search_*.toml`` (88.8 ± 0.4% cosine WTA over 3 seeds at N=100 in ~6 s of
#: training, against 86.0 ± 0.3% for the notebook's best-documented setting): no
#: inhibition, gentler homeostasis, xi annealed to 0 over 8 full epochs, float32.
TRAIN_DEFAULTS = dict(n_neurons=100, xi=0.015, sp=0.01, gamma=1.5, beta=0.0,
                      anneal=True, dtype="float32", epochs=8, samples_per_epoch=None)

FIT_KEYS = ("epochs", "samples_per_epoch", "progress")


def train(X=None, y=None, *, dataset="mnist", data_path=None, progress=False, **params):
    """Train a SparseDream model in one call.

    Parameters
    ----------
    X : array-like (n_samples, n_features), optional
        Training inputs in [0, 1]. If omitted, the training split of ``dataset`` is loaded.
    y : array-like, optional
        Labels of ``X`` (not used by the unsupervised rule).
    dataset : {"mnist"}
        Data set to load when ``X`` is None.
    data_path : path-like, optional
        Where to find the data set files (see :func:`fastsd.datasets.load_mnist`).
    progress : bool
        Show a progress bar.
    **params
        Model parameters (``n_neurons``, ``xi``, ``sp``, ``gamma``, ``beta``, ``prec``,
        ``prune_every``, ``dtype``, ``random_state``) and ``epochs``,
        ``samples_per_epoch``; unspecified ones take ``TRAIN_DEFAULTS``.

    Returns
    -------
    SparseDream
        The fitted model.
    """
    if X is None:
        if dataset != "mnist":
            raise ValueError(f"unknown dataset {dataset!r}; available: 'mnist' "
                             "(or pass X yourself)")
        from .datasets import load_mnist
        X = load_mnist(data_path).x_train
    merged = {**TRAIN_DEFAULTS, **params}
    fit_kwargs = {k: merged.pop(k) for k in FIT_KEYS if k in merged}
    model = SparseDream()
    model.set_params(**merged)
    return model.fit(X, progress=progress, **fit_kwargs)

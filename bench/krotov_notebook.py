"""Krotov & Hopfield's training loop in plain numpy, in the style of their public notebook.

This is the speed and accuracy baseline for ``fastsd.KrotovHopfield``. It follows the
structure of the notebook accompanying "Unsupervised learning by competing hidden units"
(PNAS 2019): a loop over epochs with a linearly annealed rate, a fresh permutation of
the training matrix per epoch, mini-batches of ``Num`` columns, a full ``np.argsort``
ranking of the hidden units, a dense ``yl`` matrix, ``np.tile`` and the global
``max |ds|`` normalisation.

Two deliberate changes, neither of which alters the rule or its cost:

* the random numbers come from a ``numpy.random.Generator`` passed in, and every
  epoch permutes the *original* rows (``M[rng.permutation(Ns)]``) where the notebook
  re-permuted the already permuted matrix. With the protocol ``synapses =
  rng.normal(0, 1, (hid, N))`` then one ``rng.permutation(Ns)`` per epoch, this code
  and ``KrotovHopfield(random_state=seed).fit`` see the same initial weights and the
  same sample order, so their results can be compared run for run;
* ``Nep`` (the annealing horizon) and the number of epochs actually run are separate
  arguments, so one epoch of a long schedule can be timed.

As in the notebook, the ``Ns % Num`` samples left over at the end of an epoch are not
used.
"""
from __future__ import annotations

import numpy as np


def notebook_krotov(M, synapses, rng, *, Nep, epochs=None, eps0=2e-2, delta=0.4, p=2.0,
                    k=2, Num=100, prec=1e-30):
    """Train ``synapses`` (hid, N) in place on the rows of ``M`` (Ns, N); returns it.

    ``epochs`` (default ``Nep``) epochs are run, epoch ``nep`` with rate
    ``eps0 * (1 - nep / Nep)``.
    """
    hid, N = synapses.shape
    Ns = M.shape[0]
    for nep in range(Nep if epochs is None else epochs):
        eps = eps0 * (1 - nep / Nep)
        M_perm = M[rng.permutation(Ns), :]
        for i in range(Ns // Num):
            inputs = np.transpose(M_perm[i * Num:(i + 1) * Num, :])
            sig = np.sign(synapses)
            tot_input = np.dot(sig * np.absolute(synapses) ** (p - 1), inputs)

            y = np.argsort(tot_input, axis=0)
            yl = np.zeros((hid, Num))
            yl[y[hid - 1, :], np.arange(Num)] = 1.0
            yl[y[hid - k], np.arange(Num)] = -delta

            xx = np.sum(np.multiply(yl, tot_input), 1)
            ds = np.dot(yl, np.transpose(inputs)) - np.multiply(
                np.tile(xx.reshape(xx.shape[0], 1), (1, N)), synapses)

            nc = np.amax(np.absolute(ds))
            if nc < prec:
                nc = prec
            synapses += eps * np.true_divide(ds, nc)
    return synapses


def notebook_init(rng, hid, N, mu=0.0, sigma=1.0):
    """The notebook's initial weights, ``normal(mu, sigma)`` of shape (hid, N)."""
    return rng.normal(mu, sigma, (hid, N))

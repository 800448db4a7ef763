"""Flags of the Krotov & Hopfield rule, for ``fastsd train --rule kh``.

``add_krotov_arguments`` adds ``--eps0``, ``--delta``, ``--p`` and ``--k`` (stored as
``kh_eps0`` ... so they cannot clash with other rules' flags); ``krotov_params`` turns
parsed flags into ``KrotovHopfield`` keyword arguments, taking ``n_neurons``, ``dtype``,
``random_state`` and ``batch_size`` from the shared ``--neurons``, ``--dtype``,
``--seed`` and ``--batch-size`` flags when the parser has them.
"""
from __future__ import annotations

import argparse

#: ``KrotovHopfield``'s own defaults (those of Krotov & Hopfield's notebook).
KROTOV_DEFAULTS = dict(eps0=0.02, delta=0.4, p=2.0, k=2, batch_size=100)


def add_krotov_arguments(parser: argparse.ArgumentParser, defaults: dict | None = None):
    """Add the rule's flags to ``parser`` in their own group; returns the group.

    ``defaults`` overrides entries of :data:`KROTOV_DEFAULTS`.
    """
    d = {**KROTOV_DEFAULTS, **(defaults or {})}
    group = parser.add_argument_group("Krotov-Hopfield parameters (--rule kh)")
    group.add_argument("--eps0", dest="kh_eps0", type=float, default=d["eps0"],
                       help="initial learning rate, annealed linearly to 0 over the epochs "
                            "(default %(default)s; 0.05 reaches ~91%% cosine WTA on MNIST "
                            "with 100 units in 10 epochs)")
    group.add_argument("--delta", dest="kh_delta", type=float, default=d["delta"],
                       help="anti-Hebbian strength for the k-th ranked unit "
                            "(default %(default)s)")
    group.add_argument("--p", dest="kh_p", type=float, default=d["p"],
                       help="Lebesgue exponent p >= 1 of the weights "
                            "(default %(default)s)")
    group.add_argument("--k", dest="kh_k", type=int, default=d["k"],
                       help="rank of the unit pushed away, 2 <= k <= neurons "
                            "(default %(default)s)")
    return group


def krotov_params(args: argparse.Namespace) -> dict:
    """``KrotovHopfield`` keyword arguments from parsed flags (unvalidated: the model's
    ``_check_params`` reports bad values by name)."""
    params = dict(eps0=args.kh_eps0, delta=args.kh_delta, p=args.kh_p, k=args.kh_k,
                  batch_size=KROTOV_DEFAULTS["batch_size"])
    for flag_dest, name in (("n_neurons", "n_neurons"), ("dtype", "dtype"),
                            ("seed", "random_state"), ("batch_size", "batch_size")):
        if getattr(args, flag_dest, None) is not None:
            params[name] = getattr(args, flag_dest)
    return params

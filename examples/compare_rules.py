"""Compare SparseDream, Krotov-Hopfield and k-means on the same data and seeds.

    python examples/compare_rules.py             # N = 100, seeds 0 1 2: 5-15 minutes
    python examples/compare_rules.py --small     # 2 000 images, N = 25: seconds

Every method learns N prototypes without labels, each rule with its defaults for N
and its default number of epochs (at most 20 with ``--small``); all are scored alike,
by cosine winner-take-all accuracy on the test images (``docs/evaluation.md``), and
reported as mean ± sd over the seeds. k-means is scikit-learn's, one initialisation
per seed.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from sklearn.cluster import KMeans

import fastsd
from fastsd.evaluate import cosine_wta

from _data import epochs, load_data, parse_args


Learner = Callable[[np.ndarray, int, int, bool], np.ndarray]


def rule_prototypes(cls: type[fastsd.PrototypeModel]) -> Learner:
    """A function ``(X, n_neurons, seed, small) -> weights`` training rule ``cls``."""
    def learn(X: np.ndarray, n_neurons: int, seed: int, small: bool) -> np.ndarray:
        model = cls(n_neurons, random_state=seed)
        return model.fit(X, epochs=epochs(model, len(X), small)).weights_
    return learn


def kmeans_prototypes(X: np.ndarray, n_neurons: int, seed: int, small: bool) -> np.ndarray:
    """k-means cluster centres (``small`` changes nothing)."""
    return KMeans(n_neurons, n_init=1, random_state=seed).fit(X).cluster_centers_


METHODS: dict[str, Learner] = {"SparseDream": rule_prototypes(fastsd.SparseDream),
           "Krotov-Hopfield": rule_prototypes(fastsd.KrotovHopfield),
           "k-means": kmeans_prototypes}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], neurons=100, small_neurons=25,
                      seeds=dict(type=int, nargs="+", default=[0, 1, 2],
                                 help="random seeds (default 0 1 2)"))
    data = load_data(args.small)
    print(f"N = {args.neurons}, {len(data.x_train)} training and {len(data.x_test)} "
          f"test images, seeds {' '.join(map(str, args.seeds))}")
    print(f"{'method':<16} {'cosine WTA test accuracy':>26} {'seconds per seed':>17}")
    for name, learn in METHODS.items():
        scores, seconds = [], []
        for seed in args.seeds:
            start = time.perf_counter()
            weights = learn(data.x_train, args.neurons, seed, args.small)
            seconds.append(time.perf_counter() - start)
            result = cosine_wta(weights, data.x_train, data.y_train, data.x_test,
                                data.y_test)
            scores.append(100 * result.accuracy)
        sd = statistics.stdev(scores) if len(scores) > 1 else float("nan")
        print(f"{name:<16} {statistics.fmean(scores):>18.2f} ± {sd:<5.2f}% "
              f"{statistics.fmean(seconds):>17.1f}")
    print("(seconds: learning only; the first run of a rule on a machine also compiles "
          "its kernels)")


if __name__ == "__main__":
    main()

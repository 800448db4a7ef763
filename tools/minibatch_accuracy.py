"""Mini-batch against the exact per-sample rule: cosine WTA after 1 and 3 epochs of 60k.

    python tools/minibatch_accuracy.py [--batch-sizes 50 100] [--seeds 0 1 2]

Same seeds, same rates (the notebook's ξ=0.02, γ=1, β=0.005 unless ``--params`` overrides
them), float32.
Each run evaluates after its first epoch and after its third (the epochs of one
``fit(epochs=3)``: ``partial_fit`` continues the model's sample-order stream).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import fastsd
from fastsd.datasets import load_mnist
from fastsd.evaluate import wta


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--params", default="{}", help="JSON of SparseDream parameters")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    params = {**dict(xi=0.02, sp=0.01, gamma=1.0, beta=0.005, anneal=False),
              **json.loads(args.params)}
    data = load_mnist()
    X = data.x_train.astype(np.float32)
    results = {}
    for batch in [1, *args.batch_sizes]:
        accs = {1: [], 3: []}
        seconds = []
        for seed in args.seeds:
            model = fastsd.SparseDream(100, **params, batch_size=batch, dtype="float32",
                                       random_state=seed)
            start = time.perf_counter()
            model.fit(X, epochs=1)
            seconds.append(time.perf_counter() - start)
            accs[1].append(wta(model, data.x_train, data.y_train, data.x_test,
                               data.y_test).accuracy)
            model.partial_fit(X)
            model.partial_fit(X)
            accs[3].append(wta(model, data.x_train, data.y_train, data.x_test,
                               data.y_test).accuracy)
        results[batch] = {e: (100 * np.mean(a), 100 * np.std(a, ddof=1), a)
                          for e, a in accs.items()}
        label = "exact per-sample" if batch == 1 else f"mini-batch B={batch}"
        print(f"{label:<20} " + "  ".join(
            f"{e} epoch(s): {m:.2f} ± {s:.2f}%" for e, (m, s, _) in results[batch].items())
            + f"   first epoch {np.mean(seconds):.2f} s (incl. first-call compile)",
            flush=True)
    if args.json:
        from fastsd._io import atomic_open
        with atomic_open(args.json, "w") as fh:
            json.dump({str(k): {str(e): v for e, v in r.items()} for k, r in results.items()},
                      fh, indent=2)


if __name__ == "__main__":
    main()

"""Reproduce the three settings the SparseDream notebook reports (docs/accuracy.md#the-research-notebooks-settings), over seeds.

    python tools/reproduce_notebook.py [--seeds 0 1 2] [--dtype float64] [--json out.json]

Prints, per setting, the notebook's figure and fastsd's mean ± sd cosine (and network
response) WTA test accuracy over the seeds.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import fastsd
from fastsd.datasets import load_mnist
from fastsd.evaluate import cosine_wta

#: (label, fit arguments, parameters, notebook cosine figure in %)
SETTINGS = [
    ("10x6000 xi=0.05 gamma=5 beta=0", dict(epochs=10, samples_per_epoch=6000),
     dict(xi=0.05, sp=0.01, gamma=5.0, beta=0.0), (84.5 + 85.4) / 2),
    ("10x6000 xi=0.02 gamma=1 beta=0.005", dict(epochs=10, samples_per_epoch=6000),
     dict(xi=0.02, sp=0.01, gamma=1.0, beta=0.005), 86.4),
    ("20x6000 xi=0.01 gamma=1 beta=0.0005", dict(epochs=20, samples_per_epoch=6000),
     dict(xi=0.01, sp=0.01, gamma=1.0, beta=0.0005), 86.7),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    data = load_mnist()
    rows = []
    for label, fit_args, params, notebook in SETTINGS:
        accs, seconds = [], []
        for seed in args.seeds:
            model = fastsd.SparseDream(100, **params, anneal=False, dtype=args.dtype,
                                       random_state=seed)
            start = time.perf_counter()
            model.fit(data.x_train, **fit_args)
            seconds.append(time.perf_counter() - start)
            accs.append(100 * cosine_wta(model.weights_, data.x_train, data.y_train,
                                         data.x_test, data.y_test).accuracy)
        mean, sd = float(np.mean(accs)), float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0
        rows.append(dict(setting=label, notebook=notebook, mean=mean, sd=sd, runs=accs,
                         seconds=float(np.mean(seconds)), seeds=args.seeds))
        print(f"{label:<38} notebook {notebook:5.2f}%  fastsd {mean:5.2f} ± {sd:4.2f}% "
              f"(n={len(accs)}; {', '.join(f'{a:.2f}' for a in accs)})  "
              f"diff {mean - notebook:+.2f} pp  {np.mean(seconds):.1f} s/run", flush=True)
    if args.json:
        from fastsd._io import atomic_open
        with atomic_open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()

"""Which ``transform`` features serve a downstream classifier: each rule's feature kinds
through scikit-learn's ``LogisticRegression``, against ``fastsd.probe.linear_probe``.

    python tools/transform_features.py [--split validation|test] [--seeds 0 1 2]
        [--rules sd kh softhebb] [--neurons 100] [--epochs auto] [--json out.json]

``--split validation`` (for choosing the default) fits on the first 50 000 MNIST
training images and scores on the last 10 000; ``--split test`` fits on all 60 000 and
scores on the test set. Each (rule, seed) model is fitted once with its defaults and
``epochs`` (default "auto": the rule's searched number of epochs for the data size);
then for every feature kind the rule defines and each ``feature_norm`` ("zscore":
each sample standardised across the neurons; None), ``LogisticRegression()``
(scikit-learn defaults) is fitted on ``transform`` with and without a
``StandardScaler`` before it, and the linear probe (its default features,
standardised) on the same model.
BLAS is held to one thread.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fastsd.datasets import load_mnist
from fastsd.features import FEATURE_NORMS, feature_kinds
from fastsd.probe import linear_probe
from fastsd.rules import rule_class


def _mean_sd(values) -> str:
    sd = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{np.mean(values):.2f} ± {sd:.2f}%"


def _split(name: str):
    data = load_mnist()
    if name == "validation":
        return (data.x_train[:50000], data.y_train[:50000], data.x_train[50000:],
                data.y_train[50000:])
    return data.x_train, data.y_train, data.x_test, data.y_test


def _score(pipeline, F, y, F_eval, y_eval) -> tuple[float, bool]:
    """Accuracy of ``pipeline`` fitted on ``F``; whether L-BFGS converged."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipeline.fit(F, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return float(pipeline.score(F_eval, y_eval)), converged


def run(rule: str, seed: int, n_neurons: int, epochs, data) -> dict:
    """One model of ``rule``: every feature kind, scaled and not, and the probe."""
    x, y, x_eval, y_eval = data
    model = rule_class(rule)(n_neurons, epochs=epochs, random_state=seed)
    start = time.perf_counter()
    model.fit(x)
    out = {"rule": rule, "seed": seed, "n_neurons": n_neurons, "epochs": epochs,
           "fit_seconds": time.perf_counter() - start, "features": {}}
    for kind in feature_kinds(model):
        for norm in FEATURE_NORMS:
            model.set_params(features=kind, feature_norm=norm)
            F, F_eval = model.transform(x), model.transform(x_eval)
            out["features"][kind if norm is None else f"{kind} {norm}"] = {
                "logreg": _score(make_pipeline(LogisticRegression()), F, y, F_eval,
                                 y_eval),
                "scaled_logreg": _score(make_pipeline(StandardScaler(),
                                                      LogisticRegression()),
                                        F, y, F_eval, y_eval)}
    probe = linear_probe(model, x, y, x_eval, y_eval)
    out["probe"] = {"features": probe.features, "accuracy": probe.accuracy}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rules", nargs="+", default=["sd", "kh", "softhebb"])
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--epochs", default="auto", help='an int or "auto"')
    parser.add_argument("--json", default=None, help="write the records there")
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs == "auto" else int(args.epochs)
    data = _split(args.split)
    records = []
    with threadpool_limits(1, user_api="blas"):
        for rule in args.rules:
            for seed in args.seeds:
                rec = run(rule, seed, args.neurons, epochs, data)
                records.append(rec)
                cells = "  ".join(f"{k}: {100 * v['logreg'][0]:.2f} / "
                                  f"{100 * v['scaled_logreg'][0]:.2f}"
                                  for k, v in rec["features"].items())
                print(f"{rule} seed {seed} ({rec['fit_seconds']:.0f} s fit)  {cells}  "
                      f"probe ({rec['probe']['features']}): "
                      f"{100 * rec['probe']['accuracy']:.2f}", flush=True)
    print(f"\n{args.split}: LogisticRegression() on transform, without / with "
          "StandardScaler, mean ± sd over seeds")
    for rule in args.rules:
        rows = [r for r in records if r["rule"] == rule]
        for kind in rows[0]["features"]:
            cells = []
            for variant in ("logreg", "scaled_logreg"):
                acc = [100 * r["features"][kind][variant][0] for r in rows]
                conv = all(r["features"][kind][variant][1] for r in rows)
                cells.append(_mean_sd(acc) + ("" if conv else " (not converged)"))
            print(f"| {rule} | {kind} | " + " | ".join(cells) + " |")
        probe = [100 * r["probe"]["accuracy"] for r in rows]
        print(f"| {rule} | linear_probe ({rows[0]['probe']['features']}) | "
              f"{_mean_sd(probe)} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh, indent=1)


if __name__ == "__main__":
    main()

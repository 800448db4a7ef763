"""Use a fastsd model as the first step of a scikit-learn pipeline.

    python examples/sklearn_pipeline.py          # N = 100 on all of MNIST: minutes
    python examples/sklearn_pipeline.py --small  # 2 000 images, N = 25: seconds

SparseDream learns its prototypes without labels; the pipeline trains a logistic
regression on what the model's ``transform`` returns (its logits, each sample's
standardised across the neurons) and the labels.
For comparison the script also runs ``fastsd.probe.linear_probe`` on the same fitted
model: a logistic regression on the features the probe computes from the model
(``docs/evaluation.md``). The two scores differ as much as ``transform``'s output
and the probe's features do.
"""
from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import fastsd
from fastsd.probe import linear_probe

from _data import epochs, load_data, parse_args


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], neurons=100, small_neurons=25)
    data = load_data(args.small)
    model = fastsd.SparseDream(args.neurons, random_state=0)
    pipeline = make_pipeline(model, LogisticRegression(max_iter=1000))
    # Fit parameters of a step go by its name: make_pipeline names it "sparsedream".
    pipeline.fit(data.x_train, data.y_train,
                 sparsedream__epochs=epochs(model, len(data.x_train), args.small))
    print(f"pipeline test accuracy: {100 * pipeline.score(data.x_test, data.y_test):.2f}%")

    probe = linear_probe(pipeline[0], data.x_train, data.y_train, data.x_test,
                         data.y_test)
    print(f"linear probe on the same model ({probe.features} features): "
          f"{100 * probe.accuracy:.2f}%")


if __name__ == "__main__":
    main()

"""Train SparseDream on MNIST, print its test accuracy and draw its weights.

    python examples/train_and_look.py            # N = 100 on all of MNIST: ~30 s
    python examples/train_and_look.py --small    # 2 000 images, N = 25

Each neuron's weights are drawn as a 28x28 tile, labelled with the class the
cosine winner-take-all evaluation gives it (``docs/evaluation.md``).
"""
from __future__ import annotations

import fastsd
from fastsd.evaluate import wta
from fastsd.plotting import plot_weights

from _data import epochs, load_data, parse_args


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], neurons=100, small_neurons=25,
                      out=dict(default="weights.png", help="where to draw the weights"))
    data = load_data(args.small)
    model = fastsd.SparseDream(args.neurons, random_state=0)  # defaults follow N
    n_epochs = epochs(model, len(data.x_train), args.small)
    model.fit(data.x_train, epochs=n_epochs)
    print(f"trained {model.n_neurons} neurons for {n_epochs} epochs of "
          f"{len(data.x_train)} images")

    result = wta(model, data.x_train, data.y_train, data.x_test, data.y_test)
    print(f"cosine WTA test accuracy: {100 * result.accuracy:.2f}%")

    labels = [None if c < 0 else int(c) for c in result.neuron_classes]
    plot_weights(model.weights_, args.out, image_shape=data.image_shape, labels=labels,
                 title=f"SparseDream, N = {model.n_neurons}: "
                       f"{100 * result.accuracy:.1f}% test")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

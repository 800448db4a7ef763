"""``fastsd eval`` and ``fastsd plot`` on a small saved model."""
from __future__ import annotations

import numpy as np
import pytest

from fastsd import SparseDream
from fastsd.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model_path(mnist, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.npz"
    SparseDream(random_state=0).fit(mnist.x_train[:5000], epochs=1).save(path)
    return str(path)


@pytest.fixture(scope="module")
def small_data(mnist, tmp_path_factory):
    """A Keras-style mnist.npz with the first 6000 train and 2000 test samples."""
    path = tmp_path_factory.mktemp("data") / "mnist.npz"

    def u8(x):
        return np.round(x * 255).astype(np.uint8).reshape(-1, 28, 28)

    np.savez(path, x_train=u8(mnist.x_train[:6000]), y_train=mnist.y_train[:6000],
             x_test=u8(mnist.x_test[:2000]), y_test=mnist.y_test[:2000])
    return str(path)


def is_png(path):
    with open(path, "rb") as fh:
        return fh.read(8) == PNG_SIGNATURE


def test_eval_prints_table(model_path, small_data, capsys):
    assert main(["eval", model_path, "--data", small_data]) == 0
    out = capsys.readouterr().out
    for line in ("cosine WTA", "raw WTA", "response WTA", "linear probe (logit)",
                 "neurons without class", "errors per class, cosine WTA: accuracy"):
        assert line in out, out
    table = out[out.index("class  samples"):].splitlines()
    assert [row.split()[0] for row in table[1:12]] == [*map(str, range(10)), "all"]
    assert table[11].split()[1] == "2000"


def test_eval_without_probe_on_full_mnist(model_path, capsys):
    assert main(["eval", model_path, "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert "linear probe" not in out and "cosine WTA" in out
    assert "10000/10000" not in out and "/10000 test samples" in out


def test_plot_writes_pngs(model_path, small_data, tmp_path, capsys):
    out_dir = tmp_path / "pictures"
    assert main(["plot", model_path, "--out-dir", str(out_dir), "--data", small_data]) == 0
    for name in ("weights.png", "confusion.png", "class_errors.png"):
        assert is_png(out_dir / name), name
    assert not (out_dir / "learning_curve.png").exists()
    assert "learning_curve.png skipped" in capsys.readouterr().out


def test_plot_learning_curve_from_history(model_path, small_data, tmp_path):
    from fastsd import load
    model = load(model_path)
    model.history_ = {"samples": [1000, 2000, 5000], "seconds": [0.1, 0.2, 0.5],
                      "accuracy": [0.5, float("nan"), 0.7]}
    path = tmp_path / "with_history.npz"
    model.save(path)
    assert main(["plot", str(path), "--out-dir", str(tmp_path), "--data", small_data]) == 0
    assert is_png(tmp_path / "learning_curve.png")


@pytest.mark.parametrize("command", ["eval", "plot"])
def test_missing_or_foreign_model_file(command, tmp_path, capsys):
    assert main([command, str(tmp_path / "nope.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model file not found" in err
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones((3, 3)))
    assert main([command, str(foreign)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a fastsd model file" in err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    assert main([command, str(junk)]) == 2
    assert capsys.readouterr().err.startswith(f"fastsd {command}: error:")


def test_bad_data_path(model_path, tmp_path, capsys):
    assert main(["eval", model_path, "--data", str(tmp_path / "none.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err


def test_train_minibatch_flags_reach_the_model(small_data, tmp_path, capsys):
    out = tmp_path / "mb.npz"
    png = tmp_path / "mb.png"
    assert main(["train", "--data", small_data, "--epochs", "1", "--samples-per-epoch",
                 "2000", "--batch-size", "50", "--min-response", "0.001", "--dtype",
                 "float32", "--out", str(out), "--weights-png", str(png),
                 "--no-progress"]) == 0
    assert "cosine WTA test accuracy" in capsys.readouterr().out
    model = SparseDream.load(out)
    assert (model.batch_size, model.min_response, model.samples_seen_) == (50, 0.001, 2000)
    assert is_png(png)


def test_train_rejects_bad_min_response(small_data, tmp_path, capsys):
    assert main(["train", "--data", small_data, "--batch-size", "50", "--min-response",
                 "1.5", "--out", str(tmp_path / "x.npz")]) == 2
    assert "min_response must be < 1" in capsys.readouterr().err

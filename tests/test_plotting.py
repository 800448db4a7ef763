"""Tests for fastsd.plotting: tile placement, file writing, colour choices, input checks."""
import os
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.figure import Figure

from fastsd import plotting as P

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 40  # small pictures keep the tests fast


def _history(n=10):
    samples = np.linspace(6000, 60000, n)
    acc = 0.97 - 0.5 * np.exp(-samples / 1e4)
    acc[3] = np.nan
    return {"samples": samples, "seconds": samples / 2000, "accuracy": acc}


def _confusion(c=10):
    cm = np.full((c, c), 3)
    np.fill_diagonal(cm, 97)
    return cm


# ----------------------------------------------------------------------------- layout
@pytest.mark.parametrize("n, expected", [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (7, (2, 4)),
                                         (40, (5, 8)), (50, (5, 10)), (100, (10, 10)),
                                         (2000, (40, 50))])
def test_grid_shape_default(n, expected):
    rows, cols = P.grid_shape(n)
    assert (rows, cols) == expected
    assert rows * cols >= n and rows <= cols <= 2 * rows


def test_grid_shape_near_square_for_many_sizes():
    for n in range(1, 500):
        rows, cols = P.grid_shape(n)
        assert rows * cols >= n and (rows - 1) * cols < n  # no fully empty row
        assert rows <= cols <= max(2 * rows, 2)


@pytest.mark.parametrize("n, tile, expected", [(12, (64, 8), (1, 12)), (12, (8, 64), (6, 2)),
                                               (7, (20, 30), (3, 3)), (100, (20, 30), (10, 10)),
                                               (40, (7, 7), (5, 8))])
def test_grid_shape_follows_the_tile_shape(n, tile, expected):
    """Tall tiles go in a wide row, wide ones in a column; square tiles as before."""
    assert P.grid_shape(n, tile_shape=tile) == expected
    assert P.tapestry(np.ones((n, tile[0] * tile[1])), tile).shape == (
        expected[0] * tile[0] + expected[0] - 1, expected[1] * tile[1] + expected[1] - 1)


def test_grid_shape_given_grid():
    assert P.grid_shape(100, (4, 25)) == (4, 25)
    assert P.grid_shape(7, [3, 3]) == (3, 3)
    with pytest.raises(ValueError, match=r"grid 3x3 has 9 cells, too small for 10"):
        P.grid_shape(10, (3, 3))
    with pytest.raises(TypeError, match="grid must be a pair"):
        P.grid_shape(10, 10)
    with pytest.raises(ValueError, match=r"grid\[1\] must be >= 1"):
        P.grid_shape(1, (1, 0))
    with pytest.raises(ValueError, match="n_neurons must be >= 1"):
        P.grid_shape(0)
    with pytest.raises(TypeError, match="n_neurons must be an int"):
        P.grid_shape(2.5)


def test_tapestry_places_tiles_row_major_with_nan_separators():
    h, w, pad, n = 3, 4, 1, 7
    weights = np.repeat(np.arange(1.0, n + 1)[:, None], h * w, axis=1)  # neuron i == i+1
    mos = P.tapestry(weights, image_shape=(h, w), grid=(2, 4), pad=pad)
    assert mos.shape == (2 * h + 1 * pad, 4 * w + 3 * pad)
    for i in range(n):
        r, c = divmod(i, 4)
        y, x = r * (h + pad), c * (w + pad)
        np.testing.assert_array_equal(mos[y:y + h, x:x + w], i + 1)
    assert np.isnan(mos[h, :]).all()  # horizontal separator
    for c in range(1, 4):  # vertical separators
        assert np.isnan(mos[:, c * (w + pad) - 1]).all()
    assert np.isnan(mos[h + pad:, 3 * (w + pad):]).all()  # unused 8th cell
    assert np.isnan(mos).sum() == mos.size - n * h * w


def test_tapestry_pixel_order_default_grid_and_no_pad():
    weights = np.arange(2 * 784, dtype=float).reshape(2, 784)
    mos = P.tapestry(weights, pad=0)
    assert mos.shape == (28, 56) and not np.isnan(mos).any()
    np.testing.assert_array_equal(mos[:, :28], weights[0].reshape(28, 28))
    np.testing.assert_array_equal(mos[:, 28:], weights[1].reshape(28, 28))
    assert P.tapestry(np.ones((100, 784))).shape == (10 * 28 + 9, 10 * 28 + 9)


@pytest.mark.parametrize("weights, kwargs, exc, match", [
    (np.ones(784), {}, ValueError, "weights must be 2-D"),
    (np.ones((3, 120)), {}, ValueError, r"120 pixels per neuron, not a square number"),
    (np.ones((3, 100)), {"image_shape": (28, 28)}, ValueError,
     r"shape \(3, 100\) but needs N >= 1 rows of 28x28 = 784"),
    (np.ones((3, 12)), {"image_shape": (3, 5)}, ValueError, "3x5 = 15 pixels"),
    (np.ones((0, 784)), {}, ValueError, "N >= 1 rows"),
    (np.array([[1, np.nan, np.inf, 2]]), {"image_shape": (2, 2)}, ValueError,
     r"contains 2 non-finite \(NaN or inf\)"),
    (np.ones((10, 784)), {"grid": (3, 3)}, ValueError, "too small for 10 neurons"),
    (np.ones((2, 784)), {"pad": -1}, ValueError, "pad must be >= 0"),
    (np.ones((2, 784)), {"image_shape": 784}, TypeError, "image_shape must be a pair"),
    (np.full((2, 4), "a"), {"image_shape": (2, 2)}, TypeError, "real numbers"),
])
def test_tapestry_rejects_bad_input(weights, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        P.tapestry(weights, **kwargs)


# ----------------------------------------------------------------------------- files
RNG = np.random.default_rng(0)
PLOTS = {
    "weights_nonneg": lambda p: P.plot_weights(RNG.random((40, 784)), p, dpi=DPI, title="t"),
    "weights_signed": lambda p: P.plot_weights(RNG.normal(size=(7, 784)), p, dpi=DPI,
                                               labels=[1, None, 3, 4, 5, 6, 7]),
    "learning": lambda p: P.plot_learning_curve(_history(), p, dpi=DPI, title="t"),
    "confusion": lambda p: P.plot_confusion(_confusion(), p, dpi=DPI),
    "confusion_counts": lambda p: P.plot_confusion(_confusion(3), p, normalize=False, dpi=DPI),
    "errors": lambda p: P.plot_class_errors([3, 0, 5], path=p, dpi=DPI),
    "error_rate": lambda p: P.plot_class_errors([3, 0, 5], [10, 0, 50], p, dpi=DPI),
    "param": lambda p: P.plot_param_curve([10, 100, 1000], [90, 92, 95], [1, 0.5, 0.2], p,
                                          xlabel="N", logx=True, label="SD", dpi=DPI),
    "param_multi": lambda p: P.plot_param_curve([1, 2, 3], {"a": [1, 2, 3], "b": [2, 3, 4]},
                                                {"a": [0.1] * 3, "b": [0.2] * 3}, p,
                                                xlabel="k", dpi=DPI, title="t"),
}


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_plot_writes_complete_png(name, tmp_path):
    path = tmp_path / f"{name}.png"
    fig = PLOTS[name](path)
    assert isinstance(fig, Figure)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    w, h = fig.get_size_inches() * DPI  # Agg truncates to whole pixels
    rows, cols = mpimg.imread(path).shape[:2]
    assert abs(rows - h) < 1 and abs(cols - w) < 1
    assert [f.name for f in tmp_path.iterdir()] == [path.name]  # no .part leftovers


def test_plot_without_path_writes_nothing_and_pdf_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert isinstance(PLOTS["confusion"](None), Figure)
    assert list(tmp_path.iterdir()) == []
    P.plot_class_errors([1, 2], path=tmp_path / "e.pdf", dpi=DPI)
    assert (tmp_path / "e.pdf").read_bytes()[:5] == b"%PDF-"


def test_failed_save_leaves_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "w.png"
    path.write_bytes(b"old picture")

    def broken_savefig(self, fh, **kwargs):
        fh.write(b"half a PNG")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        P.plot_weights(np.ones((4, 784)), path)
    assert path.read_bytes() == b"old picture"
    assert [f.name for f in tmp_path.iterdir()] == ["w.png"]


def test_no_pyplot_and_no_backend_change(tmp_path):
    # an interactive backend that cannot start here (no display) must stay unused
    code = ("import matplotlib, sys, numpy as np, fastsd.plotting as P; "
            "P.plot_weights(np.ones((4, 784)), sys.argv[1]); P.plot_learning_curve("
            "{'samples': [1], 'seconds': [1], 'accuracy': [0.5]}); "
            "assert 'matplotlib.pyplot' not in sys.modules; "
            "assert matplotlib.rcParams._get('backend') == 'TkAgg'")
    root = os.path.dirname(os.path.dirname(os.path.abspath(P.__file__)))
    env = {**os.environ, "MPLBACKEND": "TkAgg", "DISPLAY": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "w.png")], check=True, env=env)
    assert (tmp_path / "w.png").read_bytes()[:8] == PNG_SIGNATURE


# ----------------------------------------------------------------------------- content
def test_weight_colour_scales_and_labels():
    fig = P.plot_weights(np.linspace(0, 2, 4 * 784).reshape(4, 784), labels=[0, None, 2, 9])
    im = fig.axes[0].images[0]
    assert im.get_cmap().name.startswith("Greys") and im.get_clim() == (0.0, 2.0)
    assert len(fig.axes) == 2  # image + colour bar
    assert [t.get_text() for t in fig.axes[0].texts] == ["0", "\u2013", "2", "9"]
    signed = np.linspace(-1, 3, 4 * 784).reshape(4, 784)
    im = P.plot_weights(signed, scale="global").axes[0].images[0]
    assert im.get_cmap().name.startswith("bwr") and im.get_clim() == (-3.0, 3.0)
    im = P.plot_weights(signed, cmap="viridis", scale="global").axes[0].images[0]
    assert im.get_cmap().name.startswith("viridis") and im.get_clim() == (-3.0, 3.0)
    # signed weights default to one scale per tile: each tile reaches +-1
    fig = P.plot_weights(signed)
    im = fig.axes[0].images[0]
    assert im.get_clim() == (-1.0, 1.0) and "largest" in fig.axes[1].get_ylabel()
    data = im.get_array()
    tile0 = data[:28, :28]
    assert np.isclose(np.nanmax(np.abs(tile0)), 1.0)
    with pytest.raises(ValueError, match="scale must be 'global' or 'tile'"):
        P.plot_weights(signed, scale="row")


def _tile_pixels(fig, cols, tile=28, pad=1):
    """Device pixels across one tile of a drawn tapestry (at the figure's dpi)."""
    fig.get_layout_engine().execute(fig)  # the layout of a draw, without rendering
    ax = fig.axes[0]
    ax.apply_aspect()
    return ax.get_window_extent().width * tile / (cols * (tile + pad) - pad)


def test_weight_picture_scales_with_n_within_bounds():
    rng = np.random.default_rng(1)
    sizes, tiles = [], []
    for n, cols in ((100, 10), (400, 20), (1600, 40), (6400, 80)):
        fig = P.plot_weights(rng.random((n, 784), dtype=np.float32),
                             labels=[n % 10] * n, title="t")
        sizes.append(fig.get_size_inches())
        tiles.append(_tile_pixels(fig, cols) / fig.dpi)  # inches per tile
        assert len(fig.axes[0].texts) == (n if n <= 400 else 0)  # no labels on small tiles
        assert not fig.axes[0].axison  # no ticks or frame
    widths = [w for w, _ in sizes]
    assert np.allclose(sizes[0], (7.1, 6.45))  # N=100 keeps its former size
    assert widths == sorted(widths) and tiles == sorted(tiles, reverse=True)
    assert max(max(s) for s in sizes) <= 16.0  # bounded, however large N
    assert tiles[1] >= 0.4 and tiles[2] * 150 >= 28  # 400: labelled; 1600: >= 1 px/pixel
    # far more tiles (small ones, to stay cheap) and a tall grid: still bounded
    for weights, grid in ((np.ones((40_000, 4)), None), (np.ones((3000, 4)), (1000, 3))):
        fig = P.plot_weights(weights, image_shape=(2, 2), grid=grid)
        assert max(fig.get_size_inches()) <= 16.0


def test_learning_curve_skips_nan_and_uses_percent():
    fig = P.plot_learning_curve(_history())
    ax0, ax1 = fig.axes
    x, y = ax0.lines[0].get_data()
    assert len(x) == 9 and np.isclose(y[-1], 100 * _history()["accuracy"][-1])
    assert "accuracy (%)" in ax0.get_ylabel() and "(s)" in ax1.get_xlabel()


def test_confusion_annotations():
    cm = np.array([[8, 2, 0], [0, 0, 0], [1, 1, 18]])
    ax = P.plot_confusion(cm).axes[0]
    cells = {(t.get_position()[1], t.get_position()[0]): t for t in ax.texts}
    assert cells[(0, 0)].get_text() == "80" and cells[(0, 1)].get_text() == "20"
    assert cells[(2, 0)].get_text() == "5.0" and (1, 1) not in cells  # empty true class
    assert cells[(0, 0)].get_color() == "white" and cells[(0, 2)].get_color() == "black"
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    ax = P.plot_confusion(cm, normalize=False, class_names="abc").axes[0]
    assert sorted(t.get_text() for t in ax.texts)[-1] == "8"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]


def test_class_errors_rates_and_param_series():
    ax = P.plot_class_errors([1, 0, 5], [10, 0, 50]).axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([10, 0, 10])
    assert "n/a" in [t.get_text() for t in ax.texts]
    ax = PLOTS["param_multi"](None).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    ax = PLOTS["param"](None).axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "accuracy (%)"


# ----------------------------------------------------------------------------- bad input
BAD = [
    (lambda: P.plot_weights(np.ones((2, 784)), labels=[1]), ValueError, "labels has 1"),
    (lambda: P.plot_weights(np.ones((2, 784)), labels=[1, 2.5]), TypeError, r"labels\[1\]"),
    (lambda: P.plot_weights(np.ones((2, 784)), cmap=3), TypeError, "cmap"),
    (lambda: P.plot_weights(np.ones((2, 784)), "w.jpg"), ValueError, ".png, .pdf or .svg"),
    (lambda: P.plot_weights(np.ones((2, 784)), dpi=0), ValueError, "dpi"),
    (lambda: P.plot_learning_curve([1, 2]), TypeError, "mapping"),
    (lambda: P.plot_learning_curve({"samples": [1]}), ValueError,
     r"missing key\(s\) \['seconds', 'accuracy'\]"),
    (lambda: P.plot_learning_curve({"samples": [1, 2], "seconds": [1], "accuracy": [0.5]}),
     ValueError, "equal length"),
    (lambda: P.plot_learning_curve({"samples": [1], "seconds": [1], "accuracy": [95.0]}),
     ValueError, r"out of range \[0, 1\]"),
    (lambda: P.plot_learning_curve({"samples": [-1], "seconds": [1], "accuracy": [0.5]}),
     ValueError, r"history\['samples'\]"),
    (lambda: P.plot_learning_curve({"samples": [1], "seconds": [np.inf], "accuracy": [0.5]}),
     ValueError, "non-finite"),
    (lambda: P.plot_confusion(np.ones((2, 3))), ValueError, "square"),
    (lambda: P.plot_confusion([[1, -1], [0, 1]]), ValueError, "1 negative count"),
    (lambda: P.plot_confusion([[1, 0.5], [0, 1]]), ValueError, "whole-number"),
    (lambda: P.plot_confusion(np.eye(2), class_names=["a"]), ValueError, "class_names has 1"),
    (lambda: P.plot_class_errors([1, 6], [1, 5]), ValueError, r"exceeds totals .*\[1\]"),
    (lambda: P.plot_class_errors([1, 2], [1, 5, 3]), ValueError, "totals has 3 entries"),
    (lambda: P.plot_class_errors([]), ValueError, "empty"),
    (lambda: P.plot_param_curve([1, 2], [1, 2], [1], xlabel="x"), ValueError, "sd has 1"),
    (lambda: P.plot_param_curve([1, 2], [1, 2], [1, -1], xlabel="x"), ValueError, "negative"),
    (lambda: P.plot_param_curve([0, 2], [1, 2], None, xlabel="x", logx=True), ValueError,
     "> 0 for logx"),
    (lambda: P.plot_param_curve([1], {"a": [1]}, {"b": [1]}, xlabel="x"), ValueError,
     "same keys"),
    (lambda: P.plot_param_curve(["a"], [1], [1], xlabel="x"), TypeError, "x must be real"),
]


@pytest.mark.parametrize("call, exc, match", BAD)
def test_bad_input_is_rejected(call, exc, match):
    with pytest.raises(exc, match=match):
        call()

"""The scripts in examples/ run, in their ``--small`` mode, and print what they say.

Each runs in a subprocess from a scratch directory, as a user would run it, on the
first 2 000 / 1 000 MNIST images. The accuracy floors are far above chance (10%) and
far below what the small runs reach, so they catch a script that trains nothing,
misaligns labels or scores the wrong thing, not a small change of rule.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           MPLBACKEND="Agg")
PERCENT = r"(\d+\.\d+)"


def run_example(name: str, cwd: Path, *args: str) -> str:
    """Run ``examples/<name>.py --small *args`` in ``cwd``; its standard output."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--small", *args],
                          cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def percent(pattern: str, out: str) -> float:
    match = re.search(pattern, out)
    assert match, f"no line matching {pattern!r} in:\n{out}"
    return float(match.group(1))


def test_every_example_is_tested():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert scripts <= tested, f"examples without a test: {sorted(scripts - tested)}"


def test_train_and_look(mnist, tmp_path):
    out = run_example("train_and_look", tmp_path, "--out", "w.png")
    assert "trained 25 neurons for 20 epochs of 2000 images" in out
    assert percent(rf"cosine WTA test accuracy: {PERCENT}%", out) >= 40
    image = matplotlib.image.imread(tmp_path / "w.png")  # fails unless it is a PNG
    grey = image[..., :3].mean(axis=-1)
    # Trained tiles are drawn digits: about 19% of the figure is darker than 0.9; with
    # all weights 0 (nothing drawn but frame, text and colour bar) 7%.
    assert (grey < 0.9).mean() > 0.12


def test_compare_rules(mnist, tmp_path):
    out = run_example("compare_rules", tmp_path, "--seeds", "0", "1")
    assert "N = 25, 2000 training and 1000 test images, seeds 0 1" in out
    for method in ("SparseDream", "Krotov-Hopfield", "k-means"):
        match = re.search(rf"^{method} +{PERCENT} ± {PERCENT} *%", out, re.MULTILINE)
        assert match, f"no row for {method} in:\n{out}"
        mean, sd = float(match.group(1)), float(match.group(2))
        assert mean >= 40 and math.isfinite(sd) and sd < 10, (method, mean, sd)


def test_sklearn_pipeline(mnist, tmp_path):
    out = run_example("sklearn_pipeline", tmp_path)
    assert percent(rf"pipeline test accuracy: {PERCENT}%", out) >= 15
    assert percent(rf"linear probe on the same model \(\w+ features\): {PERCENT}%", out) >= 60

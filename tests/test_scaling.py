"""Defaults that scale with N: ``"auto"`` parameters, default epochs, and where they
are used (fit's compile step, save/load, fastsd.train, the command line, sweeps, docs)."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

import fastsd
from fastsd.cli import main as cli_main
from fastsd.rules import rule_classes
from fastsd.scaling import AUTO, ScaledDefaults
from fastsd.sweep import expand

from conftest import image_like

DOCS = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"

TABLE = ScaledDefaults(
    rows={100: dict(rate=0.1, batch_size=1, samples_per_neuron=600),
          400: dict(rate=0.2, batch_size=100, samples_per_neuron=300)},
    formulas={"sp": lambda n: 1.0 / n})


@pytest.mark.parametrize("n, rate", [(1, 0.1), (100, 0.1), (199, 0.1), (200, 0.1),
                                     (201, 0.2), (400, 0.2), (6400, 0.2)])
def test_the_row_nearest_on_a_log_scale_is_used(n, rate):
    # 200 is as far from 100 as from 400 on a log scale: the smaller N wins the tie
    assert TABLE.value("rate", n) == rate


def test_resolve_replaces_only_auto():
    got = TABLE.resolve({"rate": AUTO, "sp": AUTO, "batch_size": 7, "name": "x"}, 400)
    assert got == {"rate": 0.2, "sp": 1 / 400, "batch_size": 7, "name": "x"}


@pytest.mark.parametrize("n, per_epoch, epochs", [
    (100, 60000, 1), (100, 600, 100), (400, 60000, 2), (400, 1000, 120),
    (1, 10 ** 9, 1)])                          # never fewer than one epoch
def test_epochs_follow_samples_per_neuron(n, per_epoch, epochs):
    assert TABLE.epochs(n, per_epoch) == epochs


def test_a_row_gives_samples_per_neuron_or_epochs_not_both():
    with pytest.raises(ValueError, match="exactly one of"):
        ScaledDefaults({100: dict(epochs=2, samples_per_neuron=5)})
    with pytest.raises(ValueError, match="exactly one of"):
        ScaledDefaults({100: dict(rate=1.0)})
    assert ScaledDefaults({100: dict(epochs=3)}).epochs(5000, 10) == 3


@pytest.mark.parametrize("cls", list(rule_classes().values()), ids=lambda c: c.__name__)
def test_every_auto_default_has_a_setting_at_every_n(cls):
    auto = [k for k, v in cls().get_params().items() if v == AUTO]
    for n in (1, 100, 400, 1600, 6400, 10 ** 6):
        model = cls(n_neurons=max(n, 7))
        params = model._check_params()  # validates the resolved values
        assert all(params[k] != AUTO for k in auto)
        assert model.default_epochs(60000) >= 1


@pytest.mark.parametrize("call, match", [
    (lambda: TABLE.row(0), "n_neurons"), (lambda: TABLE.value("rate", float("nan")),
                                           "n_neurons"),
    (lambda: TABLE.epochs(100, float("nan")), "samples_per_epoch"),
    (lambda: TABLE.epochs(100, 0), "samples_per_epoch"),
    (lambda: ScaledDefaults({0: dict(epochs=1)}), "row's N"),
    (lambda: ScaledDefaults({100: 5}), "must be a dict")])
def test_the_table_refuses_bad_input_by_name(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


@pytest.mark.parametrize("bad", [0, -5, float("nan"), 2.5, "many", None])
def test_default_epochs_refuses_a_bad_sample_count(bad):
    with pytest.raises((TypeError, ValueError), match="samples_per_epoch"):
        fastsd.SparseDream(400).default_epochs(bad)


def test_sparsedream_auto_values_change_with_n_and_explicit_values_win():
    small, large = (fastsd.SparseDream(n)._check_params() for n in (100, 1600))
    assert small["sp"] == pytest.approx(0.01) and large["sp"] == pytest.approx(1 / 1600)
    assert small["batch_size"] == 1 and large["batch_size"] > 1
    assert small["xi"] != large["xi"]
    mine = fastsd.SparseDream(1600, xi=0.3, sp=0.02, batch_size=1)._check_params()
    assert (mine["xi"], mine["sp"], mine["batch_size"]) == (0.3, 0.02, 1)
    with pytest.raises(TypeError, match='xi must be a number or "auto", got \'fast\''):
        fastsd.SparseDream(400, xi="fast")._check_params()


def test_get_params_keeps_auto_and_save_load_keeps_it(tmp_path):
    X = image_like(40, 16)
    model = fastsd.SparseDream(6, random_state=0).fit(X)
    assert model.get_params()["xi"] == AUTO
    model.save(tmp_path / "m.npz")
    back = fastsd.load(tmp_path / "m.npz")
    assert back.get_params() == model.get_params()
    assert back._check_params() == model._check_params()


def test_the_compile_step_uses_the_settings_of_the_real_n(monkeypatch):
    """fit first runs a tiny copy of the model to compile its kernels; the copy must
    take "auto" values at the real N (mini-batches at 400), not at its own tiny N."""
    seen = []
    original = fastsd.SparseDream.partial_fit

    def spy(self, X, y=None, **kw):
        seen.append(self._check_params()["batch_size"])
        return original(self, X, y, **kw)

    monkeypatch.setattr(fastsd.SparseDream, "partial_fit", spy)
    X = image_like(200, 16)
    fastsd.SparseDream(400, random_state=0).fit(X, samples_per_epoch=200)
    assert seen == [100]


def test_train_runs_the_default_epochs_for_n_and_data_size():
    X = image_like(300, 16, seed=1)
    model = fastsd.train(X, rule="kh", n_neurons=8, random_state=0)
    want = fastsd.KrotovHopfield(8).default_epochs(300)
    assert want > 1 and model.samples_seen_ == want * 300
    part = fastsd.train(X, rule="kh", n_neurons=8, samples_per_epoch=100, random_state=0)
    assert part.samples_seen_ == fastsd.KrotovHopfield(8).default_epochs(100) * 100
    fixed = fastsd.train(X, rule="kh", n_neurons=8, epochs=2, random_state=0)
    assert fixed.samples_seen_ == 600
    # the model's parameters say what was run: a clone refits the same
    assert model.epochs == want and fixed.epochs == 2
    again = clone(model).fit(X)
    np.testing.assert_array_equal(again.weights_, model.weights_)
    auto = fastsd.train(X, rule="kh", n_neurons=8, epochs="auto", random_state=0)
    assert auto.epochs == want
    # part of the data per epoch: the parameter cannot say it, and is not changed
    assert part.epochs == 1


def test_command_line_accepts_auto_and_numbers(tmp_path, capsys):
    from fastsd.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--xi", "auto", "--batch-size", "20",
                              "--gamma", "2.5"])
    assert (args.rule_xi, args.rule_batch_size, args.rule_gamma) == (AUTO, 20, 2.5)
    assert isinstance(args.rule_batch_size, int)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--xi", "fast"])
    assert "invalid float value: 'fast'" in capsys.readouterr().err


def test_sweeps_record_the_resolved_values_so_sizes_differ():
    specs = expand({"n_neurons": [100, 1600]})
    assert specs[0]["params"]["sp"] == pytest.approx(0.01)
    assert specs[1]["params"]["sp"] == pytest.approx(1 / 1600)
    assert specs[1]["params"]["batch_size"] == 100
    assert all(v != AUTO for s in specs for v in s["params"].values())


@pytest.mark.parametrize("cls", [c for c in rule_classes().values()
                                 if len(c.scaled_defaults.rows) > 1],
                         ids=lambda c: c.__name__)
def test_docs_show_the_tables_the_code_uses(cls):
    """docs/scaling.md holds every rule's table as the code has it."""
    assert cls.scaled_defaults.markdown() in DOCS.read_text()

"""Rules as plug-ins: the registry, ``fastsd.train``, registry-driven flags and sweeps,
and the import structure (no rule imports another, no import circle)."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import numpy as np
import pytest

import fastsd
from conftest import image_like
from fastsd import rules
from fastsd.cli import main
from fastsd.train import settings

PACKAGE = Path(fastsd.__file__).parent


# ------------------------------------------------------------------------- registry
def test_every_registered_rule_is_a_model_reachable_by_name():
    for name, target in rules.RULES.items():
        cls = rules.rule_class(name)
        assert issubclass(cls, fastsd.PrototypeModel)
        assert rules.rule_class(cls.__name__) is cls  # by class name too (load uses it)
        assert rules.rule_name(cls) == name
        assert getattr(fastsd, cls.__name__) is cls  # fastsd.<Class>
        assert next(iter(cls._state)) == "weights_"  # the prototypes, first
        assert cls().default_epochs(60000) >= 1
    with pytest.raises(ValueError, match="unknown rule 'nope'; registered rules: sd"):
        rules.rule_class("nope")


# ---------------------------------------------------------------------- fastsd.train
def test_import_fastsd_train_is_the_callable_entry():
    module = importlib.import_module("fastsd.train")
    assert module is fastsd.train and callable(fastsd.train)
    assert fastsd.train.train.__module__ == "fastsd.train"


def test_settings_layer_class_defaults_preset_and_arguments():
    cls, params, fit = settings("sd")
    assert cls is fastsd.SparseDream and params == {}
    assert fit == {"epochs": None, "samples_per_epoch": None}  # the rule's default
    _, params, fit = settings("sd", "notebook", xi=0.03)
    assert params["xi"] == 0.03 and params["beta"] == 0.005 and not params["anneal"]
    assert fit == {"epochs": 10, "samples_per_epoch": 6000}
    with pytest.raises(ValueError, match="unknown preset 'paper' for SparseDream"):
        settings("sd", "paper")
    with pytest.raises(ValueError, match="unknown parameter 'eps0' for SparseDream"):
        settings("sd", eps0=0.1)


def test_train_trains_any_rule_with_its_parameters():
    X = image_like(300, 16, seed=3)
    kh = fastsd.train(X, rule="kh", n_neurons=6, batch_size=20, epochs=2, random_state=1)
    direct = fastsd.KrotovHopfield(6, batch_size=20, random_state=1).fit(X, epochs=2)
    assert type(kh) is fastsd.KrotovHopfield and kh.samples_seen_ == 600
    np.testing.assert_array_equal(kh.weights_, direct.weights_)
    sd = fastsd.train(X, n_neurons=5, epochs=1, random_state=0)
    assert type(sd) is fastsd.SparseDream and sd.samples_seen_ == 300


# ----------------------------------------------------------------------------- CLI
def _train(tiny_data, tmp_path, *flags):
    out = tmp_path / "m.npz"
    code = main(["train", "--data", tiny_data, "--out", str(out), "--weights-png", "",
                 "--no-progress", "--neurons", "6", *flags])
    return code, out


def test_cli_preset_then_flags(tiny_data, tmp_path):
    code, out = _train(tiny_data, tmp_path, "--preset", "notebook", "--gamma", "0.7",
                       "--epochs", "1", "--samples-per-epoch", "100")
    assert code == 0
    model = fastsd.load(out)
    notebook = fastsd.SparseDream.presets["notebook"]
    assert (model.xi, model.beta, model.anneal, model.dtype) == (
        notebook["xi"], notebook["beta"], notebook["anneal"], notebook["dtype"])
    assert model.gamma == 0.7 and model.samples_seen_ == 100 and model.random_state == 0


def test_cli_defaults_are_the_class_defaults(tiny_data, tmp_path):
    code, out = _train(tiny_data, tmp_path, "--rule", "kh", "--epochs", "1",
                       "--batch-size", "50")
    assert code == 0
    model = fastsd.load(out)
    defaults = fastsd.KrotovHopfield().get_params()
    for name in ("eps0", "delta", "p", "k", "prec", "dtype"):
        assert getattr(model, name) == defaults[name], name


def test_cli_rejects_a_flag_of_another_rule(tiny_data, tmp_path, capsys):
    code, out = _train(tiny_data, tmp_path, "--rule", "kh", "--xi", "0.1")
    assert code == 2 and not out.exists()
    assert "--xi is not a parameter of KrotovHopfield" in capsys.readouterr().err


# --------------------------------------------------------------------------- sweeps
def test_sweep_settings_and_records_name_the_rule():
    X = image_like(240, 16, seed=4)
    y = np.arange(240) % 3
    entries = fastsd.sweep.expand({"eps0": [0.02, 0.05]}, base={"n_neurons": 6,
                                  "batch_size": 20}, rule="kh")
    assert [e["rule"] for e in entries] == ["kh", "kh"]
    assert entries[1]["params"]["eps0"] == 0.05 and entries[1]["params"]["delta"] == 0.2
    spec = {**entries[1], "seed": 2, "fit": {**entries[1]["fit"], "epochs": 2}}
    rec = fastsd.sweep.run_one(spec, X, y, X[:60], y[:60])
    direct = fastsd.KrotovHopfield(6, eps0=0.05, batch_size=20, random_state=2)
    direct.fit(X, epochs=2)
    expected = fastsd.evaluate.wta(direct, X, y, X[:60], y[:60]).accuracy
    assert rec["rule"] == "kh" and rec["status"] == "ok"
    assert rec["accuracy"] == {"cosine": expected, "response": None}
    assert fastsd.sweep.run_key(spec["params"], spec["fit"], 2, "kh") != \
        fastsd.sweep.run_key(spec["params"], spec["fit"], 2)
    with pytest.raises(ValueError, match="unknown parameter 'xi' for rule 'kh'"):
        fastsd.sweep.expand({"xi": [0.1]}, rule="kh")


def test_config_names_the_rule(tmp_path):
    path = tmp_path / "kh.toml"
    path.write_text('[sweep]\nrule = "kh"\nseeds = [0]\n[grid]\ndelta = [0.1, 0.3]\n')
    kwargs = fastsd.sweep.load_config(path)
    assert kwargs["rule"] == "kh"
    path.write_text('[sweep]\nrule = "kh"\n[grid]\nxi = [0.1]\n')
    with pytest.raises(ValueError, match="unknown parameter 'xi' for rule 'kh'"):
        fastsd.sweep.load_config(path)


# -------------------------------------------------------------------- import graph
def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking_block(node) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def _imports(path: Path) -> set[str]:
    """Every fastsd module ``path`` imports, at the top or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking_block(block)
                   for stmt in block.body for n in ast.walk(stmt)}  # annotations only
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("fastsd"))
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("fastsd"):
                continue
            found.add(module)
            for alias in node.names:  # ``from . import x``: x may be a module
                if (PACKAGE.parent / Path(*f"{module}.{alias.name}".split("."))
                        ).with_suffix(".py").exists():
                    found.add(f"{module}.{alias.name}")
    return found - {name}


def _graph() -> dict[str, set[str]]:
    graph = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}
    for name, deps in graph.items():
        # importing a.b.c imports its packages a.b and a, except those a module is in
        # (they are being imported already when it runs)
        for dep in list(deps):
            while "." in dep:
                dep = dep.rpartition(".")[0]
                if not (name + ".").startswith(dep + "."):
                    deps.add(dep)
    return graph


def _reachable(graph, start) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_no_import_circle_below_the_package_facade():
    """Apart from ``fastsd/__init__`` (which imports the public modules, and which every
    ``from fastsd.x import`` runs first), no module reaches itself through imports."""
    graph = _graph()
    for deps in graph.values():
        deps.discard("fastsd")
    circles = [m for m in graph if m in _reachable(graph, m)]
    assert not circles, circles


def test_no_rule_imports_another():
    graph = _graph()
    for deps in graph.values():
        deps.discard("fastsd")
    modules = {name: target.partition(":")[0] for name, target in rules.RULES.items()}
    for name, module in modules.items():
        others = set(modules.values()) - {module}
        assert not (_reachable(graph, module) & others), (name, module)


def test_the_graph_check_sees_a_circle(tmp_path, monkeypatch):
    """The import check itself can fail: evaluate importing base (as it once did)
    closes the circle base -> history -> evaluate -> base."""
    graph = _graph()
    graph["fastsd.evaluate"].add("fastsd.base")
    assert "fastsd.base" in _reachable(graph, "fastsd.base")


@pytest.mark.parametrize("rule", rules.rule_names())
def test_every_rule_trains_evaluates_plots_and_sweeps(rule, tiny_data, tmp_path, capsys):
    """What a registered rule gets with no edit outside its own files: the command
    line's train, eval and plot, and a sweep run."""
    code, out = _train(tiny_data, tmp_path, "--rule", rule, "--epochs", "1",
                       "--batch-size", "20")
    assert code == 0 and type(fastsd.load(out)) is rules.rule_class(rule)
    assert main(["eval", str(out), "--data", tiny_data]) == 0
    text = capsys.readouterr().out
    assert "cosine WTA" in text and "linear probe (" in text
    plots = tmp_path / "plots"
    assert main(["plot", str(out), "--out-dir", str(plots), "--data", tiny_data]) == 0
    assert len(list(plots.glob("*.png"))) >= 3
    X = image_like(200, 16, seed=5)
    y = np.arange(200) % 4
    entry, = fastsd.sweep.expand(settings=[{}], base={"n_neurons": 6, "batch_size": 20},
                                 rule=rule)
    rec = fastsd.sweep.run_one({**entry, "seed": 1}, X, y, X[:50], y[:50])
    assert rec["status"] == "ok" and rec["rule"] == rule and rec["samples"] == 200
    direct = rules.rule_class(rule)(6, batch_size=20, random_state=1).fit(X)
    assert rec["accuracy"]["cosine"] == fastsd.evaluate.wta(direct, X, y, X[:50],
                                                            y[:50]).accuracy


@pytest.mark.parametrize("rule", rules.rule_names())
def test_an_interrupted_pass_leaves_the_model_as_it_was(rule, monkeypatch):
    """Ctrl-C after the first chunk of a pass already changed the working state: the
    model keeps exactly the state and sample count it had before the pass."""
    X = image_like(9000, 16, seed=6)
    model = rules.rule_class(rule)(6, batch_size=20, random_state=0)
    model.partial_fit(X[:400])
    before = {name: getattr(model, name).copy() for name in model._state}
    make = model._make_pass

    def interrupted(*args, **kwargs):
        pass_ = make(*args, **kwargs)
        run, calls = pass_.run, []

        def run_then_interrupt(*a):
            calls.append(run(*a))
            if len(calls) == 2:
                raise KeyboardInterrupt
            return calls[-1]

        pass_.run = run_then_interrupt
        return pass_

    monkeypatch.setattr(model, "_make_pass", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(X)
    assert model.samples_seen_ == 400
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(model, name), value)

"""tools/scale_table.py end to end on scikit-learn's small digits data: the results
file, resuming without re-running, and the summary table and pictures."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

TOOL = Path(__file__).resolve().parents[1] / "tools" / "scale_table.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("scale_table", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _argv(results, seeds, *extra):
    return ["--data", "digits", "--neurons", "4,8", "--seeds", seeds, "--methods",
            "sd,kh-notebook,kmeans", "--evaluate", "test", "--epochs", "1", "--results",
            str(results), *extra]


def test_runs_resumes_and_summarizes(tool, tmp_path, monkeypatch):
    results = tmp_path / "runs.jsonl"
    tool.main(_argv(results, "0"))
    first = [json.loads(line) for line in results.read_text().splitlines()]
    assert {(r["method"], r["n_neurons"], r["seed"]) for r in first} == {
        (m, n, 0) for m in ("sd", "kh-notebook", "kmeans") for n in (4, 8)}
    sd = next(r for r in first if r["method"] == "sd")
    assert sd["params"]["n_neurons"] == 4 and sd["epochs"] == 1 and sd["seconds"] > 0
    assert sd["data"] == "digits" and sd["evaluated_on"] == "test" and sd["n_eval"] == 297
    assert next(r for r in first if r["method"] == "kh-notebook")["params"]["eps0"] == 0.02
    assert all(0 <= r["accuracy"] <= 1 and r["cpu"] for r in first)

    # a torn last line (a run killed mid-write) is skipped, not fatal
    with open(results, "a") as fh:
        fh.write('{"method": "sd", "n_neu')
    ran = []
    real = tool.run_one

    def recording(method, n, seed, data, epochs):
        ran.append((method, n, seed))
        return real(method, n, seed, data, epochs)

    monkeypatch.setattr(tool, "run_one", recording)
    with pytest.warns(UserWarning, match="not a JSON line"):
        tool.main(_argv(results, "0,1"))
    assert sorted(ran) == sorted((m, n, 1) for m in ("sd", "kh-notebook", "kmeans")
                                 for n in (4, 8))  # seed 0 was done: not re-run
    ran.clear()
    with pytest.warns(UserWarning):
        tool.main(_argv(results, "0,1"))
    assert ran == []

    out = tmp_path / "summary"
    with pytest.warns(UserWarning):
        tool.main(["--results", str(results), "--summary", "--out", str(out)])
    table = (out / "scale_table.md").read_text().splitlines()
    header = next(line for line in table if line.startswith("| method"))
    assert header == "| method | N=4 | N=8 |"
    rows = [line for line in table if line.startswith("| ") and line != header]
    assert [r.split(" | ")[0] for r in rows] == ["| sd", "| kh-notebook", "| kmeans"]
    assert all(cell.count("(2) /") == 1 for r in rows for cell in r.split(" | ")[1:])
    assert "test set" in table[0] and "1 epoch(s)" in table[0]
    for name in ("accuracy_vs_n.png", "time_vs_n.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_method_and_mixed_settings_are_refused(tool, tmp_path):
    with pytest.raises(SystemExit, match="unknown method 'sd-nope'"):
        tool.main([*_argv(tmp_path / "r.jsonl", "0"), "--methods", "sd-nope"])
    results = tmp_path / "mixed.jsonl"
    for evaluated_on in ("test", "validation"):
        tool.append_record(results, dict(method="sd", n_neurons=4, seed=0, data="digits",
                                         evaluated_on=evaluated_on, n_eval=1,
                                         epochs_override=None, accuracy=0.5, seconds=1.0))
    with pytest.raises(SystemExit, match="mix 2 settings"):
        tool.main(["--results", str(results), "--summary", "--out", str(tmp_path)])

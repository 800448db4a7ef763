"""Packaging: one version, the licence text, the PEP 561 marker.

The version is written only in ``fastsd/_version.py``; ``pyproject.toml`` reads it
(``dynamic = ["version"]``), so the installed metadata and ``fastsd.__version__`` agree
unless the installation is stale (then reinstall: ``pip install -e .``).
"""
from __future__ import annotations

import configparser
import importlib.metadata
import tomllib
from pathlib import Path

import fastsd

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_version_matches_installed_metadata():
    installed = importlib.metadata.version("fastsd")
    assert fastsd.__version__ == installed, (
        f"fastsd.__version__ is {fastsd.__version__} but the installed metadata says "
        f"{installed}: reinstall (pip install -e .)")


def test_version_is_written_in_one_place():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "fastsd._version.__version__"
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    assert not setup_cfg.has_option("metadata", "version")


def test_py_typed_is_shipped():
    assert (ROOT / "fastsd" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["fastsd"]


def test_license_file_is_the_declared_licence():
    assert PYPROJECT["project"]["license"] == {"text": "BSD-3-Clause"}
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")
    assert "the fastsd developers" in text

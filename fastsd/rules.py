"""The rule registry: every learning rule fastsd can train, by its short name.

The command line (``fastsd train --rule NAME``), :func:`fastsd.train`, sweeps and
:func:`fastsd.load` find rules here. A rule is a subclass of
:class:`fastsd.base.PrototypeModel`; adding one takes its own module and one line below
(``docs/contributing.md``). Rules are imported when first asked for.
"""
from __future__ import annotations

import importlib

#: Short name -> ``"module:Class"``. The first entry is the default rule.
RULES: dict[str, str] = {
    "sd": "fastsd.sparsedream:SparseDream",
    "kh": "fastsd.krotov:KrotovHopfield",
    "softhebb": "fastsd.softhebb:SoftHebb",
}

DEFAULT_RULE = next(iter(RULES))


def rule_names() -> list[str]:
    """The registered short names, default first."""
    return list(RULES)


def rule_class(name: str) -> type:
    """The model class of rule ``name`` (a short name such as ``"sd"``, or the class
    name such as ``"SparseDream"``); ``ValueError`` listing the rules if unknown."""
    if isinstance(name, type):
        return name
    if not isinstance(name, str):
        raise TypeError(f"rule must be a rule name such as {DEFAULT_RULE!r}, got {name!r}")
    target = RULES.get(name)
    if target is None:
        target = next((t for t in RULES.values() if t.rpartition(":")[2] == name), None)
    if target is None:
        raise ValueError(f"unknown rule {name!r}; registered rules: "
                         + ", ".join(f"{k} ({v.rpartition(':')[2]})" for k, v in RULES.items()))
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def rule_name(cls: type) -> str:
    """The short name under which ``cls`` is registered (its class name if none)."""
    for name, target in RULES.items():
        if target == f"{cls.__module__}:{cls.__name__}":
            return name
    return cls.__name__


def rule_classes() -> dict[str, type]:
    """Every registered rule's class, by short name (imports them all)."""
    return {name: rule_class(name) for name in RULES}

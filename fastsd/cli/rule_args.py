"""Command-line flags of the registered rules, made from their constructors.

Every constructor parameter of every rule in :mod:`fastsd.rules` but
:data:`NOT_FLAGS` becomes a flag
(``xi`` -> ``--xi``, ``batch_size`` -> ``--batch-size``; ``n_neurons`` is
``--neurons`` and ``random_state`` is ``--seed``). A name several rules share is one
flag. Flags default to None, meaning "the rule's own default": each rule has one set
of defaults, its class's, and the help text shows them per rule.
"""
from __future__ import annotations

import argparse
import inspect
import re

from ..rules import rule_classes, rule_name
from ..scaling import is_auto

#: Flags whose name is not the parameter's.
FLAG_NAMES = {"n_neurons": "--neurons", "random_state": "--seed"}

#: Constructor parameters that are no rule flag: ``--epochs`` is the command's own
#: (the fit's epochs), ``features`` and ``feature_norm`` only change ``transform``,
#: and the command's data loaders give pixel intensities in [0, 1] (``max_input``).
NOT_FLAGS = ("epochs", "features", "feature_norm", "max_input")

#: The command line's seed when ``--seed`` is not given (runs are reproducible).
SEED = 0


def flag(name: str) -> str:
    """The flag of parameter ``name``."""
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def _defaults(cls) -> dict:
    sig = inspect.signature(cls.__init__)
    return {name: p.default for name, p in sig.parameters.items()
            if name != "self" and name not in NOT_FLAGS}


def _descriptions(cls) -> dict[str, str]:
    """First sentence of each parameter's description in a numpydoc docstring."""
    doc = inspect.getdoc(cls) or ""
    section = re.search(r"Parameters\n-+\n(.*?)(\n\S[^\n]*\n-+\n|\Z)", doc, re.S)
    out = {}
    if section:
        for match in re.finditer(r"^(\w+) :[^\n]*\n((?:    [^\n]*\n?)+)", section.group(1),
                                 re.M):
            text = " ".join(match.group(2).split())
            text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
            out[match.group(1)] = text.split(". ")[0].rstrip(".").replace("%", "%%")
    return out


def _typical(cls, param):
    """The default of ``param``, or for an ``"auto"`` default its setting at 100 neurons
    (which tells its type)."""
    value = _defaults(cls)[param]
    return cls.scaled_defaults.value(param, 100) if is_auto(value) else value


def _type(values: list, typical: list):
    """argparse ``type`` (or ``"bool"``) for parameters whose defaults are ``values``
    (of the types of ``typical``); a parameter with an ``"auto"`` default also accepts
    the word ``auto``."""
    kinds = {type(v) for v in typical if v is not None}
    if kinds == {bool}:
        return "bool"
    kind = int if kinds <= {int} else float if kinds <= {int, float} else str
    if kind is str or not any(is_auto(v) for v in values):
        return kind

    def number_or_auto(text: str):
        return text if is_auto(text) else kind(text)
    number_or_auto.__name__ = kind.__name__  # argparse names it in its error message
    return number_or_auto


def add_rule_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every registered rule's parameters as flags, one group per rule (shared
    parameters in a common group)."""
    classes = rule_classes()
    owners: dict[str, list[str]] = {}
    for name, cls in classes.items():
        for param in _defaults(cls):
            owners.setdefault(param, []).append(name)
    groups = {None: parser.add_argument_group("parameters of several rules")}
    for name, cls in classes.items():
        groups[name] = parser.add_argument_group(f"{cls.__name__} parameters "
                                                 f"(--rule {name})")
    for param, rules in owners.items():
        defaults = {r: _defaults(classes[r])[param] for r in rules}
        text = next((_descriptions(classes[r]).get(param) for r in rules
                     if _descriptions(classes[r]).get(param)), param)
        shown = "; ".join(f"{r}: {d}" for r, d in defaults.items())
        if param == "random_state":
            text, shown = "seed of the initial state and the sample orders", SEED
        kind = _type(list(defaults.values()), [_typical(classes[r], param) for r in rules])
        group = groups[rules[0] if len(rules) == 1 else None]
        options = dict(dest=f"rule_{param}", default=None,
                       help=f"{text} (default {shown})")
        if kind == "bool":
            group.add_argument(flag(param), action=argparse.BooleanOptionalAction,
                               **options)
        else:
            group.add_argument(flag(param), type=kind, metavar=param.upper(), **options)


def rule_params(args: argparse.Namespace, cls) -> dict:
    """The parameters of rule ``cls`` given on the command line (others take the rule's
    defaults). A flag of another rule raises ``ValueError``."""
    own = set(_defaults(cls))
    params = {}
    for dest, value in vars(args).items():
        if not dest.startswith("rule_") or value is None:
            continue
        param = dest[len("rule_"):]
        if param not in own:
            raise ValueError(f"{flag(param)} is not a parameter of {cls.__name__} "
                             f"(--rule {rule_name(cls)})")
        params[param] = value
    params.setdefault("random_state", SEED)
    return params

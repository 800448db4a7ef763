"""Defaults that scale with the number of neurons: ``"auto"`` parameters and epochs.

A rule's good settings change with N: with more neurons each one sees fewer samples
per epoch and fires more rarely. A rule states its searched settings as a
:class:`ScaledDefaults` table by N; a parameter whose default is ``"auto"`` takes its
value from the table row nearest to ``n_neurons`` on a log scale, and the number of
epochs follows from a number of *samples per neuron* (``epochs ≈ samples_per_neuron ×
N / samples per epoch``), a quantity that carries over to data sets of other sizes.
The tables and how they were searched: ``docs/scaling.md``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._validation import check_number

#: The value of a parameter that takes its setting from the rule's table.
AUTO = "auto"

#: Row key of the number of samples each neuron should be trained on.
SAMPLES_PER_NEURON = "samples_per_neuron"
#: Row key of a fixed number of epochs (for rules whose epochs were not searched by N).
EPOCHS = "epochs"


def is_auto(value: Any) -> bool:
    """Whether ``value`` is the string ``"auto"``."""
    return isinstance(value, str) and value == AUTO


@dataclass(frozen=True)
class ScaledDefaults:
    """Settings of a rule by number of neurons.

    Parameters
    ----------
    rows : dict int -> dict
        ``N -> {parameter: value, ...}``, each row also holding either
        ``samples_per_neuron`` or ``epochs``. ``n_neurons`` uses the row whose N is
        nearest on a log scale (ties go to the smaller N).
    formulas : dict name -> callable, optional
        Parameters given as a function of ``n_neurons`` instead (e.g. ``sp = 1/N``).
    """

    rows: Mapping[int, Mapping[str, Any]]
    formulas: Mapping[str, Callable[[int], Any]] = field(default_factory=dict)

    def __post_init__(self):
        if not self.rows:
            raise ValueError("a ScaledDefaults table needs at least one row")
        for n, row in self.rows.items():
            check_number("a table row's N", n, low=1, integer=True)
            if not isinstance(row, Mapping):
                raise TypeError(f"row N={n} must be a dict of settings, got {row!r}")
            if (SAMPLES_PER_NEURON in row) == (EPOCHS in row):
                raise ValueError(f"row N={n} must give exactly one of "
                                 f"{SAMPLES_PER_NEURON!r} and {EPOCHS!r}")

    def row(self, n_neurons: int) -> Mapping[str, Any]:
        """The table row used for ``n_neurons``: nearest N on a log scale."""
        n_neurons = check_number("n_neurons", n_neurons, low=1, integer=True)
        return self.rows[min(sorted(self.rows),
                             key=lambda n: abs(math.log(n / n_neurons)))]

    def names(self) -> set[str]:
        """Parameters the table can set."""
        names = set(self.formulas)
        for row in self.rows.values():
            names.update(row)
        return names - {SAMPLES_PER_NEURON, EPOCHS}

    def value(self, name: str, n_neurons: int) -> Any:
        """The setting of parameter ``name`` at ``n_neurons``."""
        if name in self.formulas:
            return self.formulas[name](n_neurons)
        row = self.row(n_neurons)
        if name not in row:
            raise ValueError(f"{name} has no 'auto' setting at n_neurons={n_neurons}")
        return row[name]

    def resolve(self, params: Mapping[str, Any], n_neurons: int) -> dict[str, Any]:
        """``params`` with every ``"auto"`` value replaced by its setting."""
        return {name: self.value(name, n_neurons) if is_auto(value) else value
                for name, value in params.items()}

    def epochs(self, n_neurons: int, samples_per_epoch: int) -> int:
        """Epochs of a default fit of ``samples_per_epoch`` samples per epoch: the row's
        ``epochs``, or ``samples_per_neuron × n_neurons / samples_per_epoch`` rounded
        to the nearest integer, at least 1."""
        row = self.row(n_neurons)
        samples_per_epoch = check_number("samples_per_epoch", samples_per_epoch, low=1,
                                         integer=True)
        if EPOCHS in row:
            return int(row[EPOCHS])
        return max(1, round(row[SAMPLES_PER_NEURON] * n_neurons / samples_per_epoch))

    def markdown(self, names: list[str] | None = None) -> str:
        """The table as markdown (one row per tabulated N), for the docs."""
        names = names or sorted(n for n in self.names() if n not in self.formulas)
        last = SAMPLES_PER_NEURON if any(SAMPLES_PER_NEURON in r for r in
                                         self.rows.values()) else EPOCHS
        lines = ["| N | " + " | ".join(names + [last]) + " |",
                 "|---" * (len(names) + 2) + "|"]
        for n in sorted(self.rows):
            row = self.rows[n]
            cells = [str(row.get(k, "")) for k in names + [last]]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

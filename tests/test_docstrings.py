"""Every public function, class and method of fastsd has a docstring (numpydoc style:
a summary line first; any section header underlined with dashes)."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import fastsd

SECTION = re.compile(r"^(Parameters|Returns|Yields|Raises|Attributes|Notes|Examples|"
                     r"See Also|Warns|Other Parameters)\s*$")


def _modules():
    yield fastsd
    for info in pkgutil.walk_packages(fastsd.__path__, "fastsd."):
        if info.name.rpartition(".")[2] != "__main__":
            yield importlib.import_module(info.name)


def _public(module):
    """(qualified name, object) of the public functions, classes and methods defined in
    ``module``."""
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        func = getattr(obj, "py_func", obj)  # a Numba dispatcher: its Python function
        if inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj
            for attr, member in vars(obj).items():
                member = getattr(member, "__func__", member)
                if not attr.startswith("_") and (inspect.isfunction(member)
                                                 or isinstance(member, property)):
                    yield f"{module.__name__}.{name}.{attr}", member
        elif inspect.isfunction(func):
            yield f"{module.__name__}.{name}", func


def problems(items) -> list[str]:
    out = []
    for qualname, obj in items:
        doc = inspect.getdoc(obj)
        if not doc or not doc.strip():
            out.append(f"{qualname}: no docstring")
            continue
        lines = doc.splitlines()
        for i, line in enumerate(lines):
            if SECTION.match(line) and (i + 1 >= len(lines)
                                        or not re.fullmatch(r"-{3,}", lines[i + 1].strip())):
                out.append(f"{qualname}: section {line.strip()!r} not underlined")
    return out


def test_every_public_object_has_a_numpydoc_docstring():
    items = [item for module in _modules() for item in _public(module)]
    assert len(items) > 100  # the walk found the package
    assert problems(items) == []


def test_the_check_catches_a_missing_docstring_and_a_bad_section():
    def documented():
        """Summary.

        Parameters
        ----------
        """

    def bare():
        pass

    def bad():
        """Summary.

        Returns
        the thing
        """

    assert problems([("documented", documented)]) == []
    assert problems([("bare", bare), ("bad", bad)]) == [
        "bare: no docstring", "bad: section 'Returns' not underlined"]

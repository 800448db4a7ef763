"""Count the public functions of fastsd that declare their return type.

    python tools/count_annotations.py [--missing] [--by-module] [--exclude PART] [package dir]

A function counts as public when its name does not start with ``_`` and it is
defined at the top level of a public module or in the body of a public class (a
module or class whose name does not start with ``_``; ``__init__`` and
``__main__`` modules are public). Dunder methods, nested functions and private
modules (``fastsd/_io.py``, ...) are not counted. Prints ``annotated of public``
over the whole package (``--exclude kernels`` leaves out the modules with that part
in their dotted name, e.g. the compiled Numba internals), and with ``--missing``
every public function without a return annotation as ``path:line name``.
"""
from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fastsd"


def _is_public_module(path: Path, root: Path) -> bool:
    """Whether no part of the module's dotted name starts with ``_``."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return not any(p.startswith("_") and p not in ("__init__", "__main__") for p in parts)


def public_functions(path: Path) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The public functions and public-class methods defined in one module."""
    def walk(body: list[ast.stmt]) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not node.name.startswith("_"):
                    yield node
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from walk(node.body)
    yield from walk(ast.parse(path.read_text(encoding="utf-8"), str(path)).body)


def count(root: Path, exclude: tuple[str, ...] = ()
          ) -> dict[Path, tuple[int, int, list[str]]]:
    """Per public module: (annotated, public, the unannotated ``line name`` entries)."""
    result = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if not _is_public_module(path, root) or set(parts) & set(exclude):
            continue
        funcs = list(public_functions(path))
        missing = [f"{f.lineno} {f.name}" for f in funcs if f.returns is None]
        result[path] = (len(funcs) - len(missing), len(funcs), missing)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=PACKAGE)
    parser.add_argument("--missing", action="store_true",
                        help="list the public functions without a return annotation")
    parser.add_argument("--by-module", action="store_true", help="one line per module")
    parser.add_argument("--exclude", action="append", default=[], metavar="PART",
                        help="leave out modules with this part in their name (repeatable)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    counts = count(root, tuple(args.exclude))
    for path, (annotated, total, missing) in counts.items():
        rel = path.relative_to(root.parent)
        if args.by_module and total:
            print(f"{annotated:4d} / {total:4d}  {rel}")
        if args.missing:
            for entry in missing:
                line, name = entry.split(" ", 1)
                print(f"{rel}:{line} {name}")
    annotated = sum(a for a, _, _ in counts.values())
    total = sum(t for _, t, _ in counts.values())
    print(f"{annotated} of {total} public functions have return annotations")


if __name__ == "__main__":
    main()

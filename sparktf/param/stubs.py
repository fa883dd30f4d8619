"""Type stubs of the stage modules, written from their source and their Param declarations.

A stage's getters, setters and keyword signatures are made at import from its declarations
(:mod:`sparktf.param.declare`), so a static checker or an editor reading the source does not see
them. The stub (``.pyi``) beside each module in :data:`MODULES` shows them: the module's
imports, constants, functions and classes with their bodies left out, and in each class the
Params, ``getX``, ``setX``, ``__init__`` and ``setParams`` its declarations give it, typed by each
declaration's ``kind``. The package's stub imports the names ``sparktf`` loads on first use.
``tests/house/test_stubs.py`` checks that the stubs are current.

Usage::

    python -m sparktf.param.stubs            # rewrite the stubs
    python -m sparktf.param.stubs --check    # exit 1 if a stub is out of date
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import re
import sys
from typing import Any

from pyspark.ml.util import MLReadable

from sparktf.param.declare import Declared, _declarations, _title

__all__ = ["MODULES", "stub_of", "stub_path"]

#: The modules whose classes get Params from declarations (and those that define the classes).
MODULES = (
    "sparktf",
    "sparktf._classifier_params",
    "sparktf.classification",
    "sparktf._transformer_params",
    "sparktf.transformer",
    "sparktf.search._params",
    "sparktf.search.halving",
)

_HEADER = (
    "# The type stub of {module}, written by 'python -m sparktf.param.stubs' from the\n"
    "# module and its Param declarations. Do not edit: change the module and run it again.\n\n"
)
_DECORATORS = {"declare_stage", "declare_params", "declare_model"}
#: What every stub may name, imported where the module does not import it itself.
_NEEDED = (
    ("Any", "from typing import Any"),
    ("Param", "from pyspark.ml.param import Param"),
    ("Estimator", "from pyspark.ml import Estimator"),
    ("Evaluator", "from pyspark.ml.evaluation import Evaluator"),
    ("Sequence", "from collections.abc import Sequence"),
    ("overload", "from typing import overload"),
    ("DataFrame", "from pyspark.sql import DataFrame"),
)
_BUILTIN_TYPES = (bool, int, float, str, bytes, tuple, list, dict, frozenset, set)


def stub_path(module: str) -> str:
    """Where the stub of ``module`` lives: beside its source."""
    source = importlib.import_module(module).__file__
    assert source is not None
    return os.path.splitext(source)[0] + ".pyi"


def stub_of(module: str) -> str:
    """The text of ``module``'s stub."""
    mod = importlib.import_module(module)
    assert mod.__file__ is not None
    if hasattr(mod, "_LAZY"):
        return _HEADER.format(module=module) + _lazy(mod._LAZY)
    with open(mod.__file__, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    lines: list[str] = []
    for node in tree.body:
        lines.extend(_statement(node, mod, ""))
    named = set(re.findall(r"\w+", "\n".join(lines)))
    needed = [line for name, line in _NEEDED if name in named and not hasattr(mod, name)]
    return _HEADER.format(module=module) + _join(needed + lines)


def _lazy(names: dict[str, str]) -> str:
    """A package whose names load on first use (``_LAZY``: name to module), as imports."""
    lines = [f"from {names[name]} import {name} as {name}" for name in sorted(names)]
    exported = ", ".join(f'"{name}"' for name in sorted(names))
    return "\n".join([*lines, "", "__version__: str", f"__all__ = [{exported}]", ""])


def _join(lines: list[str]) -> str:
    """Blank lines as a formatter puts them: two around top-level blocks, one between methods."""
    out: list[str] = []
    after_block = False  # whether the last top-level statement was a class or a function
    for line in lines:
        if not line.startswith(" "):
            block = line.startswith(("class ", "def ", "@"))
            if out and (block or after_block) and not out[-1].startswith("@"):
                out.extend(["", ""])
            after_block = block
        elif line.startswith(("    def ", "    @")) and not out[-1].startswith(("    @", "class ")):
            out.append("")
        out.append(line)
    return "\n".join(out) + "\n"


def _statement(node: ast.stmt, scope: Any, indent: str) -> list[str]:
    """The stub lines of one statement of a module (``scope`` is it) or a class body."""
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return []
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [indent + ast.unparse(node)]
    if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
        return [line for inner in node.body for line in _statement(inner, scope, indent)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [f"{indent}{node.target.id}: {ast.unparse(node.annotation)}"]
    if isinstance(node, ast.Assign) and _names(node) == ["__all__"]:
        return [indent + ast.unparse(node)]  # as written: it says what the module exports
    if isinstance(node, ast.Assign):
        return [f"{indent}{name}: {_type_of(getattr(scope, name, None))}" for name in _names(node)]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return _function(node, indent)
    if isinstance(node, ast.ClassDef):
        return _class(node, getattr(scope, node.name), indent)
    return []  # docstrings and other statements: nothing a checker needs


def _names(node: ast.Assign) -> list[str]:
    names = []
    for target in node.targets:
        elements = target.elts if isinstance(target, ast.Tuple) else [target]
        names.extend(e.id for e in elements if isinstance(e, ast.Name))
    return names


def _type_of(value: Any) -> str:
    """A constant's type in the stub: its builtin type, else ``Any``."""
    if isinstance(value, _BUILTIN_TYPES):
        return type(value).__name__
    return "Any"


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef, indent: str) -> list[str]:
    """A function's decorators and signature, its body left out."""
    lines = [f"{indent}@{ast.unparse(d)}" for d in node.decorator_list]
    stub = ast.FunctionDef(
        name=node.name,
        args=node.args,
        body=[ast.Expr(ast.Constant(...))],
        decorator_list=[],
        returns=node.returns,
        type_params=[],
    )
    text = ast.unparse(ast.fix_missing_locations(stub)).replace(":\n    ...", ": ...")
    prefix = "async " if isinstance(node, ast.AsyncFunctionDef) else ""
    lines.append(indent + prefix + _defaults_elided(text))
    return lines


def _defaults_elided(signature: str) -> str:
    """Stubs show that a parameter has a default, not the default itself."""
    tree = ast.parse(signature)
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    func.args.defaults = [ast.Constant(...) for _ in func.args.defaults]
    func.args.kw_defaults = [
        None if d is None else ast.Constant(...) for d in func.args.kw_defaults
    ]
    return ast.unparse(tree).replace(":\n    ...", ": ...")


def _class(node: ast.ClassDef, cls: type, indent: str) -> list[str]:
    """A class: its kept decorators, bases, attributes, methods and the declared accessors."""
    decorators = [d for d in node.decorator_list if _decorator_name(d) not in _DECORATORS]
    declared_here = any(_decorator_name(d) == "declare_params" for d in node.decorator_list)
    staged = any(_decorator_name(d) == "declare_stage" for d in node.decorator_list)
    lines = [f"{indent}@{ast.unparse(d)}" for d in decorators]
    bases = ", ".join(ast.unparse(b) for b in node.bases + node.keywords)  # type: ignore[operator]
    lines.append(f"{indent}class {node.name}({bases}):" if bases else f"{indent}class {node.name}:")
    inner = indent + "    "
    written = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    body: list[str] = []
    if declared_here:
        body.extend(_declared_params(cls, inner, written))
    for statement in node.body:
        if staged and isinstance(statement, ast.FunctionDef) and statement.name in _KEYWORDS:
            continue  # written below from the declarations
        body.extend(_statement(statement, cls, inner))
    if staged:
        body.extend(_declared_methods(cls, inner, written))
    elif any(_decorator_name(d) == "declare_model" for d in node.decorator_list):
        body.extend(_declared_setters(cls, inner, written))
    body += _fit(node, inner, written)
    if issubclass(cls, MLReadable) and not node.name.startswith("_") and "load" not in written:
        # pyspark types ``load`` by the class it is inherited from; it reads this class
        body += [f"{inner}@classmethod", f"{inner}def load(cls, path: str) -> {node.name}: ..."]
    return lines + (body or [inner + "..."])


def _fit(node: ast.ClassDef, indent: str, written: set[str]) -> list[str]:
    """An estimator's ``fit`` typed by what its ``_fit`` returns (annotated, or its class's
    ``_model_class``); pyspark's returns its generic model type, unbound for these stages."""
    returns = [
        n.returns
        for n in node.body
        if isinstance(n, ast.FunctionDef) and n.name == "_fit" and n.returns is not None
    ] + [
        n.value
        for n in node.body
        if isinstance(n, ast.Assign) and _names(n) == ["_model_class"] and node.name[0] != "_"
    ]
    if "fit" in written or not returns:
        return []
    model, fit = ast.unparse(returns[0]), f"{indent}def fit(self, dataset: DataFrame, params"
    return [
        f"{indent}@overload",
        f"{fit}: dict[Param, Any] | None = ...) -> {model}: ...",
        f"{indent}@overload",
        f"{fit}: Sequence[dict[Param, Any]]) -> list[{model}]: ...",
    ]


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


_KEYWORDS = ("__init__", "setParams")


def _declared_params(cls: type, indent: str, written: set[str]) -> list[str]:
    """The Params a ``declare_params`` mixin defines and their getters."""
    lines = []
    for item in cls.__dict__["_declared"].values():
        if item.doc is not None:
            lines.append(f"{indent}{item.name}: Param[{item.kind}]")
    for item in cls.__dict__["_declared"].values():
        getter = f"get{_title(item.name)}"
        if getter not in written and _generated(cls, getter):
            lines.append(f"{indent}def {getter}(self) -> {item.kind}: ...")
    return lines


def _declared_methods(cls: type, indent: str, written: set[str]) -> list[str]:
    """A stage's setters and the keyword signatures of ``__init__`` and ``setParams``."""
    declared = _declarations(cls).values()
    keywords = ", ".join(f"{item.name}: {_keyword_type(item)} = ..." for item in declared)
    lines = [
        f"{indent}def __init__(self, *, {keywords}) -> None: ...",
        f"{indent}def setParams(self, *, {keywords}) -> {cls.__name__}: ...",
    ]
    return lines + _declared_setters(cls, indent, written)


def _declared_setters(cls: type, indent: str, written: set[str]) -> list[str]:
    """The setters the declarations gave ``cls`` (a stage's, or a model's ``at_transform``)."""
    lines = []
    for item in _declarations(cls).values():
        setter = f"set{_title(item.name)}"
        if setter not in written and _generated(cls, setter):
            value = _accepted(item.kind)
            lines.append(f"{indent}def {setter}(self, value: {value}) -> {cls.__name__}: ...")
    return lines


def _generated(cls: type, name: str) -> bool:
    """Whether the declarations gave ``cls`` the accessor ``name`` (not a base, not its source)."""
    func = cls.__dict__.get(name)
    return func is not None and ".<locals>." in getattr(func, "__qualname__", "")


def _keyword_type(item: Declared) -> str:
    """A keyword's type: None leaves the Param alone, unless it is declared ``keep_none``."""
    kind = _accepted(item.kind)
    if item.keep_none or kind == "Any" or kind.endswith("| None"):
        return kind
    return f"{kind} | None"


def _accepted(kind: str) -> str:
    """What a keyword or setter takes: a list Param any sequence (its converter makes the list);
    getters return the list."""
    return re.sub(r"\blist\[", "Sequence[", kind)


def _read(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a stub is out of date")
    args = parser.parse_args(argv)
    stale = []
    for module in MODULES:
        path, text = stub_path(module), stub_of(module)
        if _read(path) == text:
            continue
        stale.append(path)
        if not args.check:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
    if args.check and stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

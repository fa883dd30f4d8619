"""The package's layout rules, checked on the source.

* Spark beyond DataFrames (the SparkContext, the JVM gateway, RDDs, broadcast variables,
  accumulators) is used only in the package ``sparktf/_spark/``, so everything else works over Spark
  Connect unchanged.
* No import circles between sparktf's modules, and the lower modules (names starting with
  ``_``) never import a stage or command module.
* No module grows past 400 lines, and no function past 60 (its docstring not counted).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sparktf"
SPARK_MODULE = "sparktf._spark"
# Attributes that only exist on a classic session (or reach into the JVM).
CLASSIC_ONLY = {
    "sparkContext",
    "_jvm",
    "_jdf",
    "_jsc",
    "_jsparkSession",
    "rdd",
    "broadcast",
    "accumulator",
    "parallelize",
}
CLASSIC_IMPORTS = {"SparkContext", "Broadcast", "AccumulatorParam", "Accumulator", "RDD"}
UPPER = ("sparktf.classification", "sparktf.transformer", "sparktf.cli", "sparktf.workflow")
MAX_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, tree: ast.AST) -> set[str]:
    """sparktf modules imported anywhere in a module (top level or inside functions)."""
    package = name if MODULES[name].name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    targets.add(f"{base}.{alias.name}")
                elif base in MODULES:
                    targets.add(base)
    targets.discard(name)
    # A package importing its own submodules is how a package is assembled, not a circle.
    return {t for t in targets if not t.startswith(f"{name}.")}


GRAPH = {name: _imports(name, ast.parse(path.read_text())) for name, path in MODULES.items()}


def test_spark_internals_only_in_the_spark_module():
    offenders = []
    for name, path in MODULES.items():
        if name == SPARK_MODULE or name.startswith(f"{SPARK_MODULE}."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in CLASSIC_ONLY:
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pyspark"):
                for alias in node.names:
                    if alias.name in CLASSIC_IMPORTS:
                        offenders.append(f"{path.name}:{node.lineno} import {alias.name}")
    assert offenders == [], offenders


def test_the_walk_would_catch_a_sparkcontext():
    tree = ast.parse("def f(spark):\n    return spark.sparkContext.broadcast(1)\n")
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert attrs & CLASSIC_ONLY == {"sparkContext", "broadcast"}


def _cycle_from(start: str) -> list[str] | None:
    stack = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for target in GRAPH[node]:
            if target == start:
                return path
            if target not in path:
                stack.append((target, [*path, target]))
    return None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_circle(name):
    assert _cycle_from(name) is None, " -> ".join([*(_cycle_from(name) or []), name])


def test_lower_modules_never_import_stage_or_command_modules():
    offenders = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.rsplit(".", 1)[-1].startswith("_")
        and not name.endswith("__main__")
        and not name.startswith(UPPER)
        for target in targets
        if target.startswith(UPPER)
    ]
    assert offenders == [], offenders


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by job"


def _function_lengths(tree: ast.AST) -> dict[str, int]:
    """Lines of every function and method (signature included, docstring not), by name."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0]
            docstring = isinstance(first, ast.Expr) and isinstance(
                getattr(first, "value", None), ast.Constant
            )
            docstring = docstring and isinstance(first.value.value, str)
            doc_lines = first.end_lineno - first.lineno + 1 if docstring else 0
            lines = node.end_lineno - node.lineno + 1 - doc_lines
            found[f"{node.name}:{node.lineno}"] = lines
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_function_size(name):
    lengths = _function_lengths(ast.parse(MODULES[name].read_text()))
    long = {f: n for f, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert long == {}, f"{name}: functions over {MAX_FUNCTION_LINES} lines {long}; split them"


def test_the_function_walk_skips_docstrings_and_counts_the_rest():
    body = "\n".join(f"    x{i} = {i}" for i in range(3))
    tree = ast.parse(f'def f():\n    """One.\n\n    Two.\n    """\n{body}\n')
    assert _function_lengths(tree) == {"f:1": 4}

"""Generate docs/api.md from the docstrings of sparktf's stages, their Params and helpers.

Usage::

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is out of date

``tests/house/test_docs.py`` runs the same comparison, so the reference cannot drift from the code.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from typing import Any

API_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api.md")

#: (module, name) of every stage, documented with its Params.
STAGES = [
    ("sparktf.classification", "TFClassifier"),
    ("sparktf.classification", "TFClassificationModel"),
    ("sparktf.transformer", "TFGraphTransformer"),
    ("sparktf.search", "HalvingCrossValidator"),
    ("sparktf.search", "HalvingTrainValidationSplit"),
]

#: (module, name) of the helpers, documented with their signature and docstring.
HELPERS = [
    ("sparktf.tuning", "ParamRandomBuilder"),
    ("sparktf.tuning", "tuning_report"),
    ("sparktf.tuning", "plot_sensitivity"),
    ("sparktf.search", "rung_schedule"),
    ("sparktf.classification", "trial_scope"),
    ("sparktf.workflow", "tune_classifier"),
    ("sparktf.workflow", "SearchSpace"),
    ("sparktf.session", "get_spark"),
    ("sparktf.session", "JavaNotFoundError"),
    ("sparktf.datasets", "load_digits"),
    ("sparktf.datasets", "load_mnist"),
    ("sparktf.datasets", "read_idx"),
    ("sparktf.datasets", "arrays_to_dataframe"),
    ("sparktf.datasets", "load_image_folder"),
    ("sparktf.datasets", "class_names"),
    ("sparktf.persistence", "load_cross_validator_model"),
    ("sparktf.errors", "TrainingError"),
    ("sparktf.errors", "TrialFailedError"),
    ("sparktf.errors", "DriverMemoryError"),
]


def _anchor(name: str) -> str:
    return name.lower().replace(".", "").replace("_", "_")


def docstring_markdown(doc: str | None) -> str:
    """A docstring as Markdown: ``>>>`` examples fenced as Python, numpy-style section
    underlines turned into bold headings, ``::`` literal blocks fenced."""
    if not doc:
        return "_No description._"
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and nxt.strip() and set(nxt.strip()) == {"-"} and len(nxt.strip()) >= 3:
            out.append(f"**{line.strip()}**")
            out.append("")
            i += 2
            continue
        if line.lstrip().startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i].strip())
                i += 1
            out += ["```python", *block, "```"]
            continue
        if line.rstrip().endswith("::") and i + 2 < len(lines) and not nxt.strip():
            out.append(line.rstrip()[:-1])
            out.append("")
            i += 2
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += ["```", *block, "```", ""]
            continue
        out.append(line)
        i += 1
    return "\n".join(out).strip()


def _value(value: Any) -> str:
    text = repr(value)
    return "`" + text.replace("|", "\\|") + "`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def _own_methods(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties defined in sparktf (not inherited from pyspark), excluding
    the generated Param getters/setters, which the Params table covers."""
    found = []
    params = {p.name for p in cls().params} if hasattr(cls, "params") else set()
    accessors = {f"{prefix}{n[0].upper()}{n[1:]}" for n in params for prefix in ("get", "set")}
    for name in sorted(dir(cls)):
        if name.startswith("_") or name in accessors or name in params:
            continue
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is None or not owner.__module__.startswith("sparktf"):
            continue
        found.append((name, owner.__dict__[name]))
    return found


def stage_section(module: str, name: str) -> str:
    cls = getattr(importlib.import_module(module), name)
    stage = cls()
    parts = [f"## {name}", "", f"`{module}.{name}`", "", docstring_markdown(cls.__doc__), ""]
    parts += ["### Params", "", "| Param | Default | Type | Description |", "|---|---|---|---|"]
    for param in sorted(stage.params, key=lambda p: p.name):
        default = _value(stage.getOrDefault(param)) if stage.hasDefault(param) else "(unset)"
        converter = getattr(param.typeConverter, "__name__", "") if param.typeConverter else ""
        kind = converter.replace("to", "", 1) if converter.startswith("to") else "see description"
        parts.append(f"| `{param.name}` | {default} | {kind} | {_cell(param.doc)} |")
    parts.append("")
    methods = _own_methods(cls)
    if methods:
        parts += ["### Methods and properties", ""]
        for method_name, member in methods:
            if isinstance(member, property):
                doc = member.__doc__
                parts.append(f"- **`{method_name}`** (property): {_first_paragraph(doc)}")
            else:
                func = (
                    member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                )
                if not callable(func):
                    continue
                sig = _signature(func)
                parts.append(f"- **`{method_name}{sig}`**: {_first_paragraph(func.__doc__)}")
        parts.append("")
    return "\n".join(parts)


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return "_No description._"
    return _cell(inspect.cleandoc(doc).split("\n\n")[0])


def helper_section(module: str, name: str) -> str:
    obj = getattr(importlib.import_module(module), name)
    kind = "class" if inspect.isclass(obj) else "function"
    sig = "" if inspect.isclass(obj) and issubclass(obj, Exception) else _signature(obj)
    parts = [
        f"### {name}",
        "",
        f"{kind} `{module}.{name}{sig}`",
        "",
        docstring_markdown(obj.__doc__),
    ]
    if inspect.isclass(obj) and not issubclass(obj, Exception):
        for method_name, member in sorted(vars(obj).items()):
            if method_name.startswith("_") or not callable(member):
                continue
            parts += [
                "",
                f"- **`{method_name}{_signature(member)}`**: {_first_paragraph(member.__doc__)}",
            ]
    return "\n".join(parts) + "\n"


def generate() -> str:
    """The Markdown text of docs/api.md."""
    import sparktf

    parts = [
        "# API reference",
        "",
        "<!-- Generated by docs/gen_api.py from the docstrings; do not edit by hand. -->",
        "",
        f"sparktf {sparktf.__version__}. Every stage is an ordinary pyspark.ml stage: Params are "
        "set with the constructor keywords or `setX`, read with `getX`, and tuned by "
        "`ParamGridBuilder`/`ParamRandomBuilder` grids. The package is typed (PEP 561): type "
        "checkers and editors see every Param, getter, setter and keyword with its type. "
        "Guides: [getting started]"
        "(getting-started.md), [the classifier](classifier.md), [tuning](tuning.md), "
        "[the transformer](transformer.md), [the command](cli.md).",
        "",
        "Stages: " + ", ".join(f"[{n}](#{_anchor(n)})" for _, n in STAGES) + ".",
        "Helpers: " + ", ".join(f"[{n}](#{_anchor(n)})" for _, n in HELPERS) + ".",
        "",
    ]
    for module, name in STAGES:
        parts.append(stage_section(module, name))
    parts += ["## Helpers", ""]
    for module, name in HELPERS:
        parts.append(helper_section(module, name))
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/api.md from the docstrings.")
    parser.add_argument("--check", action="store_true", help="only check that it is up to date")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        with open(API_PATH, encoding="utf-8") as handle:
            current = handle.read()
        if current != text:
            print("docs/api.md is out of date: run 'python docs/gen_api.py'", file=sys.stderr)
            return 1
        return 0
    with open(API_PATH, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"wrote {API_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

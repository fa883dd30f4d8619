"""The type stubs show static checkers and editors the accessors the declarations make at import."""

from __future__ import annotations

import ast
import importlib
import os

import pytest

import sparktf
from sparktf.param.declare import _declarations, _title
from sparktf.param.stubs import MODULES, stub_of, stub_path

STAGES = [
    ("sparktf.classification", "TFClassifier", True),
    ("sparktf.classification", "TFClassificationModel", False),
    ("sparktf.transformer", "TFGraphTransformer", True),
    ("sparktf.search.halving", "HalvingCrossValidator", True),
    ("sparktf.search.halving", "HalvingTrainValidationSplit", True),
]


@pytest.mark.parametrize("module", MODULES)
def test_each_stub_is_current(module):
    path = stub_path(module)
    assert os.path.exists(path), f"{path} is missing: run 'python -m sparktf.param.stubs'"
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == stub_of(module), (
            f"{path} is out of date: run 'python -m sparktf.param.stubs' and commit the result"
        )


def _stubbed_members() -> dict[tuple[str, str], set[str]]:
    """(module, class) to the names its stub gives the class."""
    members = {}
    for module in MODULES:
        with open(stub_path(module), encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                names = set()
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        names.add(item.name)
                    elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        names.add(item.target.id)
                members[(module, node.name)] = names
    return members


@pytest.mark.parametrize(("module", "name", "stage"), STAGES)
def test_a_checker_sees_every_param_getter_and_setter(module, name, stage):
    cls = getattr(importlib.import_module(module), name)
    members = _stubbed_members()
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__ in MODULES:
            seen |= members[(klass.__module__, klass.__name__)]
        elif not klass.__module__.startswith("sparktf"):
            seen |= set(vars(klass))  # pyspark's own, typed by pyspark
    declared = _declarations(cls)
    wanted = {f"get{_title(p)}" for p in declared} | set(declared)
    wanted |= {f"set{_title(p)}" for p, item in declared.items() if item.at_transform}
    if stage:
        wanted |= {f"set{_title(p)}" for p in _declarations(cls)} | {"__init__", "setParams"}
    assert wanted - seen == set()


def test_the_package_stub_names_every_lazy_export():
    with open(stub_path("sparktf"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    imported = {
        alias.asname: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert set(imported) == set(sparktf.__all__)
    for name, module in imported.items():
        assert getattr(importlib.import_module(module), name) is getattr(sparktf, name)


@pytest.mark.parametrize(
    ("module", "name", "model"),
    [
        ("sparktf.classification", "TFClassifier", "TFClassificationModel"),
        ("sparktf.search.halving", "HalvingCrossValidator", "HalvingCrossValidatorModel"),
        (
            "sparktf.search.halving",
            "HalvingTrainValidationSplit",
            "HalvingTrainValidationSplitModel",
        ),
    ],
)
def test_an_estimator_s_fit_gives_its_model_type(module, name, model):
    """pyspark types ``fit`` by a generic model type these stages do not bind: the stub does."""
    with open(stub_path(module), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    (stage,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
    fits = [n for n in stage.body if isinstance(n, ast.FunctionDef) and n.name == "fit"]
    assert [ast.unparse(f.returns) for f in fits if f.returns] == [model, f"list[{model}]"]

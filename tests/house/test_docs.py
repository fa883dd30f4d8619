"""The docs stay true: docs/api.md matches the docstrings, and relative links resolve."""

from __future__ import annotations

import glob
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(ROOT, "docs")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _gen_api():
    spec = importlib.util.spec_from_file_location("gen_api", os.path.join(DOCS, "gen_api.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_up_to_date():
    with open(os.path.join(DOCS, "api.md"), encoding="utf-8") as handle:
        current = handle.read()
    assert current == _gen_api().generate(), (
        "docs/api.md is out of date: run 'python docs/gen_api.py' and commit the result"
    )


def test_api_reference_covers_every_param():
    from sparktf import TFClassificationModel, TFClassifier, TFGraphTransformer

    text = _gen_api().generate()
    for cls in (TFClassifier, TFClassificationModel, TFGraphTransformer):
        assert f"## {cls.__name__}\n" in text
        for param in cls().params:
            assert f"| `{param.name}` |" in text, f"{cls.__name__}.{param.name} is not documented"


def markdown_files() -> list[str]:
    names = sorted(n for n in os.listdir(DOCS) if n.endswith(".md"))
    return ["README.md", *(f"docs/{n}" for n in names)]


def relative_links(text: str) -> list[str]:
    """Link targets of a Markdown text outside code blocks, without URLs and pure anchors."""
    text = FENCE.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_relative_links_are_found():
    text = "[a](b.md) ![img](images/x.png) [web](https://x.org) [top](#title) `[no](c.md)`\n"
    text += "```\n[no](d.md)\n```\n[anchor](tuning.md#report)\n"
    assert relative_links(text) == ["b.md", "images/x.png", "tuning.md"]


@pytest.mark.parametrize("name", markdown_files())
def test_relative_links_point_to_existing_files(name):
    path = os.path.join(ROOT, name)
    assert os.path.exists(path), f"{name} is missing"
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    base = os.path.dirname(path)
    broken = [t for t in relative_links(text) if not os.path.exists(os.path.join(base, t))]
    assert broken == [], f"{name} links to missing files: {broken}"


def test_every_test_named_in_the_reliability_table_exists():
    with open(os.path.join(DOCS, "reliability.md"), encoding="utf-8") as handle:
        text = handle.read()
    named = re.findall(r"`(test_\w+\.py)::(test_\w+)`", text)
    assert len(named) >= 30
    missing = []
    for module, test in named:
        (found,) = glob.glob(os.path.join(ROOT, "tests", "**", module), recursive=True)
        with open(found, encoding="utf-8") as handle:
            if not re.search(rf"^def {test}\(", handle.read(), re.M):
                missing.append(f"{module}::{test}")
    assert missing == [], missing

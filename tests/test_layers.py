"""Packages point one way: the per-frame models and the engines import nothing from the app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# engines/bench.py times the whole render stage as well as the engines: it is a tool on top of
# both, not part of the engines' runtime.
TOOLS = {REPO / "engines" / "bench.py"}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["models", "engines"])
def test_models_and_engines_do_not_import_the_app(package):
    offenders = [str(p.relative_to(REPO)) for p in sorted((REPO / package).rglob("*.py"))
                 if p not in TOOLS and "app" in _imported_packages(p)]
    assert not offenders, f"{package} must not import app: {offenders}"

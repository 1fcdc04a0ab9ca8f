"""Packages point one way: models <- export <- engines <- app, and no import circle anywhere.

The graph is read from the source with `ast` (nothing is imported). Between packages every
import counts, inside functions and under TYPE_CHECKING as well as at the top: a lazy import is
still a dependency, only a later one. Between modules no circle either, lazy imports included;
only imports under TYPE_CHECKING (types, never run) may point back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Lowest first: a package may import those before it, never those after it. export sits below
# engines because the engines export their model on first use (export.ensure_onnx); export needs
# only the models, and gets real inputs from the app as a file (export/recorded.py).
LAYERS = ("models", "export", "engines", "app")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in LAYERS for p in sorted((REPO / pkg).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules (`app.rig.NUM` -> app.rig)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _scoped_nodes(tree: ast.Module, scope: str) -> list[ast.AST]:
    """The statements of a scope: "runtime", all but `if TYPE_CHECKING:` blocks (function
    bodies too: a lazy import still runs); "import_time", also without function bodies (what
    runs while the module is itself being imported)."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if _is_type_checking(node) or (scope == "import_time" and isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
            continue
        out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def _imports(module: str, path: Path, modules: dict[str, Path], scope: str = "all") -> set[str]:
    """Our modules that `module` imports: anywhere in its body ("all"), or only in the given
    scope of `_scoped_nodes`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree) if scope == "all" else _scoped_nodes(tree, scope):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import name`: name may be a submodule or just an attribute of pkg.
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in (_resolve(n, modules) for n in names) if t and t != module)
    return found


def _graph(scope: str = "all") -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules, scope) for m, p in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_lazy_and_relative_imports():
    graph = _graph()
    assert "models.warp_field" in graph["app.rig"]  # top level, absolute
    assert "app.tracking" in graph["app.model_inputs"]  # inside a function, relative
    assert "export" in graph["engines.onnxruntime_engine"]  # inside a method
    at_import, runtime = _graph("import_time"), _graph("runtime")
    assert "app.tracking" not in at_import["app.model_inputs"] and "app.tracking" in runtime["app.model_inputs"]
    assert "app.animator" in graph["app.renderers"] and "app.animator" not in runtime["app.renderers"]  # TYPE_CHECKING


def test_packages_import_only_the_layers_below_them():
    layer = {pkg: i for i, pkg in enumerate(LAYERS)}
    upward = sorted(f"{m} -> {t}" for m, targets in _graph().items() for t in targets
                    if layer[t.split(".")[0]] > layer[m.split(".")[0]])
    assert not upward, f"imports against the layer order {' <- '.join(LAYERS)}:\n  " + "\n  ".join(upward)


def test_no_package_level_import_cycle():
    packages: dict[str, set[str]] = {}
    for m, targets in _graph().items():
        packages.setdefault(m.split(".")[0], set()).update(t.split(".")[0] for t in targets)
    for pkg, targets in packages.items():
        targets.discard(pkg)
    assert not _cycles(packages)


def test_no_module_level_import_cycle():
    """No circle between modules, lazy imports included: a registry that opens a backend
    lazily imports it, so the backend must not import the registry back (it imports the
    shared types, app/renderer_types.py). Only type-only imports may point back."""
    cycles = _cycles(_graph("runtime"))
    assert not cycles, "import cycles between modules:\n  " + "\n  ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", ["models", "engines", "export"])
def test_models_engines_and_export_do_not_import_the_app(package):
    offenders = sorted(m for m, targets in _graph().items()
                       if m.split(".")[0] == package and any(t.split(".")[0] == "app" for t in targets))
    assert not offenders, f"{package} must not import app: {offenders}"

"""No function in app/ runs over 80 lines: a person can read each on one page."""

from __future__ import annotations

import ast
from pathlib import Path

LIMIT = 80
APP = Path(__file__).resolve().parent.parent / "app"
# Left long on purpose: the evaluation report writer (a document, written section by section).
EXEMPT = {("evaluate/report.py", "write_report")}


def test_no_function_in_app_is_over_80_lines() -> None:
    long = []
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LIMIT and (rel, node.name) not in EXEMPT:
                    long.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "functions over 80 lines: " + "; ".join(long)


def test_the_window_and_the_controller_stay_under_500_lines() -> None:
    for name in ("main_window.py", "controller.py"):
        lines = len((APP / "gui" / name).read_text().splitlines())
        assert lines < 500, f"app/gui/{name} is {lines} lines"

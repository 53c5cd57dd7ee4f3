"""The package's layering: the run, the probe and the analyses sit below the server and the report.

The only import circle allowed is the documented one: :class:`Run`/:class:`Layer` methods that
import an analysis lazily (``layer.association``, ``layer.ica``, ``run.cka``...) while that
analysis reads runs. ``run.show()`` and ``run.report()`` reach the views through
:mod:`embedding_explorer.views` by name, never by import.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import embedding_explorer
from embedding_explorer.views import VIEWS, view

PACKAGE = Path(embedding_explorer.__file__).parent
NAME = "embedding_explorer"
VIEW_PACKAGES = ("embedding_explorer.server", "embedding_explorer.report")
# the documented circle: the run's convenience methods and the analyses they call
ALLOWED_CIRCLE = ("embedding_explorer.run", "embedding_explorer.analysis")


@pytest.mark.parametrize(
    "module", ["embedding_explorer.run", "embedding_explorer.probe", "embedding_explorer.analysis"]
)
def test_the_data_model_does_not_import_its_views(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"print(' '.join(m for m in sys.modules if m.startswith({VIEW_PACKAGES!r}) or m == 'fastapi'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [], f"importing {module} imported {out.stdout.strip()}"


def test_every_view_resolves_to_a_module_above_the_run() -> None:
    assert set(VIEWS) == {"show", "report"}
    for name, target in VIEWS.items():
        assert target.startswith(VIEW_PACKAGES), target
        module, _, attribute = target.partition(":")
        assert view(name) is getattr(importlib.import_module(module), attribute)
    with pytest.raises(KeyError, match="no view 'nope'; the views: show, report"):
        view("nope")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere (lazily too), except for type checks."""
    this = module_name(path)
    here = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only: no import at run time
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = here.split(".")[: len(here.split(".")) - (child.level - 1)]
                    target = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    target = child.module or ""
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in modules else target)
            elif isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != this}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def test_the_static_import_graph_has_only_the_documented_circle() -> None:
    paths = [p for p in PACKAGE.rglob("*.py") if "static" not in p.relative_to(PACKAGE).parts]
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imported(p, modules) for p in paths}
    assert "embedding_explorer.server" in graph["embedding_explorer.cli"]  # the parser sees lazy imports
    for circle in circles(graph):
        others = {m for m in circle if not m.startswith(ALLOWED_CIRCLE)}
        assert not others, f"an import circle through {sorted(circle)}"


def test_circles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert circles(graph) == [{"a", "b", "c"}]

"""The shape of the code: the core imports no adapter, classifiers imports nothing from bot, and no
module imports itself back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The pure core: domain types, rules, rendering and formatting. Data in, data out.
CORE = ["bot.triage", "bot.deadlines", "bot.workflow", "bot.callbacks", "bot.telegram_ui", "bot.pii",
        "bot.indonesian", "bot.topics", "bot.figures", "bot.surges", "bot.grouping"]
ADAPTERS = ["telegram", "httpx", "sqlite_utils", "pydantic"]


@pytest.mark.parametrize("module", CORE)
def test_the_core_loads_no_adapter(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {ADAPTERS!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "", f"{module} loads {loaded.stdout.strip()}"


def _imports(path: Path, package: str) -> set[str]:
    """The modules of `package` a module imports (at run time or deferred inside functions, not for
    types only)."""
    tree = ast.parse(path.read_text())
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                 and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(package))
    return found


@pytest.mark.parametrize("package", ["bot", "classifiers"])
def test_no_import_cycle(package: str) -> None:
    """A deferred import (inside a function) closes a cycle as surely as one at the top."""
    modules = {f"{package}.{p.stem}": p for p in (ROOT / package).glob("*.py")}
    graph = {name: {m for m in _imports(path, package) if m in modules and m != name}
             for name, path in modules.items()}

    def reachable(start: str) -> set[str]:
        seen, todo = set(), list(graph[start])
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return seen

    in_cycles = sorted(name for name in graph if name in reachable(name))
    assert not in_cycles, f"modules in an import cycle: {in_cycles}"


def _every_import(path: Path) -> set[str]:
    """Every module a file names in an import, wherever it stands (top level, inside a function,
    under TYPE_CHECKING); relative imports resolved against the file's package."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module:
                found.add(module)
            found.update(f"{module}.{a.name}" if module else a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_classifiers_import_nothing_from_bot() -> None:
    """classifiers is the lower package: bot passes down what it needs (the routing rules too)."""
    upward = {str(path.relative_to(ROOT)): sorted(m for m in _every_import(path) if m == "bot" or m.startswith("bot."))
              for path in sorted((ROOT / "classifiers").rglob("*.py"))}
    upward = {name: found for name, found in upward.items() if found}
    assert not upward, f"classifiers modules importing bot: {upward}"

"""Packages import only downwards (docs/architecture.md, "What each package may import")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dcnrank

ROOT = Path(dcnrank.__file__).parent
# bottom modules: small utilities every package may use; they import nothing of dcnrank
BOTTOM = {"limits", "atomic", "free_memory", "prefetch", "progress", "row_messages", "world"}
# package -> the packages it imports directly, as docs/architecture.md's table lists them,
# plus data -> metrics (`validate_binary_labels`) and bundle -> training (`tasks.task_predictions`)
DIRECT: dict[str, set[str]] = {
    "config": set(),
    **{module: set() for module in BOTTOM},
    "layers": set(),
    "metrics": {"config"},
    "data": {"config", "metrics"},
    "models": {"layers", "data", "config"},
    "training": {"models", "metrics", "data", "config"},
    "bundle": {"models", "data", "config", "training"},
    "explain": {"models", "bundle"},
    "export": {"bundle", "models"},
    "workflows": {"config", "data", "metrics", "layers", "models", "training", "bundle", "explain", "export"},
    "serve": {"workflows", "bundle"},
    "experiments": {"workflows", "training", "models", "data"},
}


def _below(package: str) -> set[str]:
    """Everything `package` may import: what it lists, what those list, and so on, and the
    bottom modules (except for a bottom module itself)."""
    seen: set[str] = set()
    todo = list(DIRECT[package])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(DIRECT[name])
    return seen if package in BOTTOM else seen | BOTTOM


# package -> the dcnrank packages (first path component below dcnrank) it may import besides
# itself; None: the shell over everything
ALLOWED: dict[str, set[str] | None] = {package: _below(package) for package in DIRECT} | {"cli": None}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        for name in names:
            parts = name.split(".")
            if parts[0] == "dcnrank" and len(parts) > 1:
                found.add(parts[1])
    return found


# every module inside a package, and the bottom modules (not dcnrank/__init__.py, __main__.py)
MODULES = sorted(p for p in ROOT.rglob("*.py") if p.parent != ROOT or p.stem in ALLOWED)


def test_no_relative_imports() -> None:
    relative = [
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.py")
        if any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(ast.parse(p.read_text())))
    ]
    assert not relative, f"relative imports hide what a module depends on: {relative}"


def test_every_package_has_a_place() -> None:
    packages = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.rglob("*.py")}
    assert packages - set(ALLOWED) <= {"__init__", "__main__"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_imports_only_packages_below_it(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0].removesuffix(".py")
    allowed = ALLOWED[package]
    if allowed is None:
        return
    upward = sorted(_imports(path) - allowed - {package, "__version__"})
    assert not upward, f"{path.relative_to(ROOT)} ({package}) imports {upward}, which sit above it"

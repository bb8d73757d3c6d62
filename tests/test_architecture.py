"""The package's shape, checked from its own source: dependencies flow one way between subpackages, nobody imports
another subpackage's private modules or names, no module outgrows ~400 lines, and every package says what it
exports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "budgetflow"
# lower layers never import higher ones; a subpackage imports those strictly below it
LAYERS = {
    "_registry": -1, "budget": 0, "sandbox": 0, "devtools": 0,
    "llm": 1, "tasks": 1,
    "workspace": 2,
    "verifiers": 3,
    "search": 4,
    "agents": 5,
    "swe": 6,
    "runs": 7, "integrations": 7, "gateway": 8,
    "cli": 9, "__main__": 10, "__init__": 10,
}
MAX_LINES = 420


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _unit(path: Path) -> str:
    """The subpackage (or top-level module) a file belongs to."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path):
    """(target parts inside budgetflow, imported names, line) for every import of budgetflow, at any depth."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("").parts  # ("budgetflow", "runs", "worker")
    package = rel[:-1] if path.name != "__init__.py" else rel[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "budgetflow":
                target = node.module.split(".")
            else:
                continue
            yield target[1:], [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "budgetflow":
                    yield alias.name.split(".")[1:], [], node.lineno


def test_dependencies_flow_one_way():
    wrong = []
    for path in _modules():
        here = _unit(path)
        for target, _, line in _imports(path):
            there = target[0] if target else "__init__"
            if there == here or not target:
                continue
            if there not in LAYERS:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports unknown unit {there}")
            elif LAYERS[there] >= LAYERS.get(here, 99):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {here} (layer {LAYERS.get(here)}) imports "
                             f"{there} (layer {LAYERS[there]})")
    assert not wrong, "\n".join(wrong)


def test_no_private_names_of_another_subpackage():
    wrong = []
    for path in _modules():
        here = _unit(path)
        for target, names, line in _imports(path):
            if not target or target[0] == here or target[0] == "_registry":
                continue
            private_module = any(part.startswith("_") and not part.startswith("__") for part in target[1:])
            private_names = [n for n in names if n.startswith("_") and not n.startswith("__")]
            deep = len(target) > 1  # reaching past the subpackage's __init__ into one of its modules
            if private_module or private_names or deep:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {'.'.join(target)}"
                             + (f" ({', '.join(private_names)})" if private_names else ""))
    assert not wrong, "import other subpackages through their package only:\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines: split it by concept"


def test_every_package_declares_its_exports():
    missing = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("__init__.py")
               if "__pycache__" not in p.parts and "__all__" not in p.read_text()]
    assert not missing, f"packages without __all__: {missing}"


def test_the_package_is_typed():
    assert (PACKAGE / "py.typed").exists()

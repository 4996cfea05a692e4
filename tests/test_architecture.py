"""The rules of docs/architecture.rst held against the code: layers, no private attribute across modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "airflow_provider_dingtalk"

# docs/architecture.rst "What may import what": a module imports (at module level) only from its row
# or a lower one. Inside functions anything goes: that is how heavy imports stay off the parse path.
LAYERS = [
    {"exceptions", "_json", "_redact", "_filelock", "_serve", "event_types", "assets", "get_provider_info"},
    {"retry", "token_cache", "crypto", "http", "messages", "approvals", "state", "redis"},
    {"robot_pacer", "hooks", "stream"},
    {"operators", "sensors", "notifications", "triggers", "events"},
    {"testing"},
]


def _layer(module: str) -> int:
    head = module.split(".")[1] if module.count(".") else ""
    for rank, names in enumerate(LAYERS):
        if head in names:
            return rank
    raise AssertionError(f"{module} is in no layer of docs/architecture.rst: add it there and here")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name != "airflow_provider_dingtalk":
            found.append((name, path))
    return found


def _module_level_imports(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, ast.If):  # TYPE_CHECKING blocks: typing only, never run
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [n for n in names if n.startswith("airflow_provider_dingtalk.")]


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_imports_only_from_its_layer_or_below(module: str, path: Path) -> None:
    own = _layer(module)
    upward = [name for name in _module_level_imports(ast.parse(path.read_text())) if _layer(name) > own]
    assert upward == [], f"{module} (layer {own}) imports from a higher layer: {upward}"


# Private members of Airflow's own base classes that we must call (each says why where it is used).
AIRFLOW_INTERNALS = {"_update_context"}
# A namedtuple's public methods carry a leading underscore so they cannot clash with field names.
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_no_private_attribute_of_another_module(module: str, path: Path) -> None:
    """``x._name`` only where ``_name`` is defined in the same module (``self._name`` always)."""
    tree = ast.parse(path.read_text())
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)
    foreign = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        and node.attr not in own | AIRFLOW_INTERNALS | NAMEDTUPLE_API
    ]
    assert foreign == []

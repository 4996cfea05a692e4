"""What the distribution declares matches what the package needs, and its README works on an index page."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import airflow_provider_dingtalk

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(airflow_provider_dingtalk.__file__).parent
REPO_URL = "https://github.com/airflow-provider-dingtalk/airflow-provider-dingtalk"
# Loaded only by pytest (``pytest_plugins = [...]``), so pytest is there whenever it is imported.
ONLY_UNDER_PYTEST = {"testing/pytest_plugin.py": {"pytest"}}
# A subpackage named like an extra may import what that extra installs (and says so if it is missing).


def _runtime_imports(tree: ast.Module) -> set[str]:
    """Top-level names of absolute imports, leaving out those under ``if TYPE_CHECKING:``."""
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def test_every_third_party_import_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    extras = {
        extra: {canonicalize_name(Requirement(r).name) for r in requirements}
        for extra, requirements in project["optional-dependencies"].items()
    }
    distributions = packages_distributions()
    missing: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        names = _runtime_imports(ast.parse(path.read_text()))
        names -= set(sys.stdlib_module_names) | {"airflow_provider_dingtalk"}
        names -= ONLY_UNDER_PYTEST.get(relative, set())
        for name in names:
            # `airflow` comes from apache-airflow-core, -task-sdk and the providers, which the
            # apache-airflow distribution (no files of its own) brings in.
            provided_by = ["apache-airflow"] if name == "airflow" else distributions.get(name, [name])
            allowed = declared | extras.get(relative.partition("/")[0], set())
            if not {canonicalize_name(d) for d in provided_by} & allowed:
                missing.setdefault(name, set()).add(relative)
    assert not missing, f"imported but not in [project.dependencies]: {missing}"


def test_readme_links_work_on_a_package_index_page() -> None:
    # PyPI shows the README without the repository around it: relative links would 404 there.
    readme = (ROOT / "README.md").read_text()
    references = dict(re.findall(r"^\[([^]]+)\]: (\S+)$", readme, flags=re.MULTILINE))
    used = set(re.findall(r"\]\[([^]]+)\]", readme))
    assert used <= set(references), f"undefined link references: {used - set(references)}"
    links = re.findall(r"\]\(([^)\s]+)\)", readme) + list(references.values())
    assert len(links) > 10
    for link in links:
        assert link.startswith("https://"), link
        if link.startswith(f"{REPO_URL}/blob/main/") or link.startswith(f"{REPO_URL}/tree/main/"):
            target = link.split("/main/", 1)[1]
            assert (ROOT / target).exists(), f"{link}: no {target} in the repository"

"""Sphinx configuration for the airflow-provider-dingtalk docs.

Built in CI (``scripts/test``) with ``-W``: a warning fails the build. Code shown in the pages is
included from files CI runs (example DAGs, tests), never copied.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # also works from a checkout without an install

# Importing Airflow (autodoc imports the hooks) must not touch the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / "docs" / "_build" / "airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

project = "airflow-provider-dingtalk"
author = "airflow-provider-dingtalk developers"
copyright = "the airflow-provider-dingtalk developers"
# The one place the version is stated (importable from a checkout too: ROOT is on sys.path).
from airflow_provider_dingtalk import __version__ as release  # noqa: E402

version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
]
# Intersphinx needs the network to fetch inventories; turn it on with DOCS_INTERSPHINX=1.
if os.environ.get("DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "airflow": ("https://airflow.apache.org/docs/apache-airflow/stable/", None),
    }

# Docstrings use plain reST fields (``:param x:``), so no napoleon.
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
nitpicky = False

templates_path = ["_templates"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = f"DingTalk provider for Apache Airflow {release}"
html_static_path: list[str] = []

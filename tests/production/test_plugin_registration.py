"""The event receiver's plugin is mounted on a default install, and registered once either way.

Airflow always loads the ``airflow.plugins`` entry-point group; plugins declared in provider info
load only when ``[core] lazy_discover_providers = False`` (its default is True). So the plugin must
be an entry point, and must not also be in provider info, where Airflow would load it a second time
and list "already registered" among the plugin import errors that its UI shows. Read in a fresh
process and Airflow home, through the functions behind ``/api/v2/plugins`` and
``/api/v2/plugins/importErrors``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPORT = """
import json
from airflow import plugins_manager
info = {"plugins": plugins_manager.get_plugin_info(), "errors": plugins_manager.get_import_errors()}
print(json.dumps(info, default=str))
"""


@pytest.mark.parametrize("lazy", ["True", "False"], ids=["lazy-discovery-default", "lazy-discovery-off"])
def test_plugin_loads_once_whatever_lazy_provider_discovery(lazy: str, tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS": lazy}
    done = subprocess.run(
        [sys.executable, "-c", REPORT], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["errors"] == {}
    mine = [p for p in report["plugins"] if p["name"] == "dingtalk_event_receiver"]
    assert len(mine) == 1, report["plugins"]
    assert "airflow-provider-dingtalk" in (mine[0]["source"] or "")  # the entry point
    (app,) = mine[0]["fastapi_apps"]
    assert app["url_prefix"] == "/dingtalk"

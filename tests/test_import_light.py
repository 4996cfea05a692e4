"""DAG files import our operators, notifiers and triggers at every parse: those imports must stay light.

requests, pycryptodome (``Crypto``), FastAPI and uvicorn belong to task run time. Checked in a fresh
interpreter, since this test process has long since imported all of them.
"""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys

HEAVY = ("requests", "Crypto", "fastapi", "uvicorn")
PACKAGES = (
    "airflow_provider_dingtalk.operators",
    "airflow_provider_dingtalk.sensors",
    "airflow_provider_dingtalk.notifications",
    "airflow_provider_dingtalk.triggers",
)

_PROBE = """
import json, sys
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def parse_time_modules() -> list[str]:
    """The packages and every module under them (new ones are covered without editing this test)."""
    found: list[str] = []
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations is not None, package
        found.append(package)
        found += [
            info.name
            for info in pkgutil.walk_packages(list(spec.submodule_search_locations), prefix=f"{package}.")
        ]
    return found


def heavy_after_importing(modules: list[str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), *modules],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_operator_notifier_and_trigger_modules_import_nothing_heavy() -> None:
    modules = parse_time_modules()
    assert heavy_after_importing(["airflow.sdk", *modules]) == [], (
        "import these inside the function that needs them, not at module level"
    )


def test_the_probe_sees_a_heavy_import() -> None:
    # Guards the check above against passing vacuously (e.g. a probe that never imports anything).
    assert heavy_after_importing(["airflow.sdk", "requests", "fastapi"]) == ["requests", "fastapi"]

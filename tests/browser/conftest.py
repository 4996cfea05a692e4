"""Browser tests need Chromium and a running Airflow API server: only ``scripts/browser_test`` runs them.

In the ordinary pytest legs they are reported as skipped (with the command that runs them); with
``DINGTALK_BROWSER_TESTS=1`` set, a missing browser is a failure, never a skip.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("DINGTALK_BROWSER_TESTS") == "1":
        return
    skip = pytest.mark.skip(
        reason="browser test: run scripts/browser_test (installs Chromium, starts Airflow)"
    )
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(skip)

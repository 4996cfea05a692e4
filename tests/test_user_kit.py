"""The pytest kit as a user meets it: the sample project in docs/examples/testing (its own conftest,
pytest.ini and DAG folder, shown whole in docs/emulator.rst) passes in a pytest of its own, and leaves
the user's AIRFLOW_HOME alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "testing"


def test_the_sample_user_project_passes_and_keeps_out_of_the_users_airflow_home(tmp_path: Path) -> None:
    users_home = tmp_path / "my-airflow"
    users_home.mkdir()
    # A user's shell: their own AIRFLOW_HOME, none of this suite's Airflow settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env["AIRFLOW_HOME"] = str(users_home)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SAMPLE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout
    assert list(users_home.iterdir()) == []  # no airflow.db, no airflow.cfg in the user's home

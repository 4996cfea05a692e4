"""Run every example DAG against the DingTalk emulator and print what DingTalk received.

Called by ``scripts/demo`` inside its virtualenv. Uses SQLite under ``.airflow/`` and no Airflow
services: each DAG runs with ``dag.test()``. A DAG tagged ``demo:expect-failed`` is meant to fail
(it shows failure alerts) and counts as a success when it does.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPECT_FAILED = "demo:expect-failed"


def _setup_environment() -> None:
    home = ROOT / ".airflow"
    home.mkdir(exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW_DINGTALK_STATE_DIR"] = str(home / "dingtalk-state")


def _summary(message: dict) -> str:
    msgtype = message.get("msgtype") or message.get("msgKey") or "?"
    body = message.get(msgtype) if isinstance(message.get(msgtype), dict) else message
    text = ""
    for key in ("title", "content", "text", "markdown", "msgParam"):
        if isinstance(body, dict) and body.get(key):
            text = str(body[key])
            break
    return f"[{msgtype}] " + textwrap.shorten(text.replace("\n", " ⏎ "), width=150, placeholder=" …")


def main() -> int:
    _setup_environment()
    from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

    with DingTalkEmulator() as emulator:
        os.environ.update(emulator.airflow_env())
        print(f"DingTalk emulator at {emulator.url}")

        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils.db import initdb

        initdb()
        bag = DagBag(dag_folder=str(ROOT / "example_dags"), include_examples=False)
        if bag.import_errors:
            for path, err in bag.import_errors.items():
                print(f"IMPORT ERROR {path}:\n{err}")
            return 1
        failures = 0
        for dag_id in sorted(bag.dags):
            dag = bag.dags[dag_id]
            expected = "failed" if EXPECT_FAILED in dag.tags else "success"
            seen = len(emulator.inbox())
            print(f"\n=== {dag_id}: running (expected: {expected})")
            run = dag.test()
            state = str(getattr(run.state, "value", run.state))
            ok = state == expected
            failures += not ok
            print(f"=== {dag_id}: {state} {'(as expected)' if ok else '<-- UNEXPECTED'}")
            for item in emulator.inbox()[seen:]:
                print(f"    → {item.channel} to {item.target}: {_summary(item.message)}")
        print(
            f"\n{len(bag.dags) - failures} of {len(bag.dags)} example DAGs behaved as expected; "
            f"DingTalk received {len(emulator.inbox())} messages."
        )
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

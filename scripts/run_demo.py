"""Run every example DAG against the DingTalk emulator and print what DingTalk received.

Called by ``scripts/demo`` inside its virtualenv. Uses SQLite under ``.airflow/`` and no Airflow
services: each DAG runs with ``dag.test()``. A DAG tagged ``demo:expect-failed`` is meant to fail
(it shows failure alerts) and counts as a success when it does; one tagged ``demo:needs-scheduler``
(a Deadline Alert: ``dag.test()`` checks no deadline) is listed and skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

ROOT = Path(__file__).resolve().parent.parent
EXPECT_FAILED = "demo:expect-failed"
NEEDS_SCHEDULER = "demo:needs-scheduler"


def _setup_environment() -> None:
    home = ROOT / ".airflow"
    home.mkdir(exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW_DINGTALK_STATE_DIR"] = str(home / "dingtalk-state")


def _summary(message: dict[str, Any]) -> str:
    """One line per message: its type and the first of its title / content / text."""
    msgtype = message.get("msgtype") or message.get("msgKey") or message.get("EventType") or "?"
    body = message.get(msgtype) or message.get("msgParam") or message
    if isinstance(body, str) and body.startswith("{"):
        body = json.loads(body)
    text = ""
    if isinstance(body, dict) and isinstance(body.get("body"), dict):  # oa: the title sits in its body
        body = body["body"]
    for key in ("title", "content", "text", "markdown", "processInstanceId"):
        if isinstance(body, dict) and body.get(key):
            text = str(body[key])
            break
    return f"[{msgtype}] " + textwrap.shorten(text.replace("\n", " ⏎ "), width=150, placeholder=" …")


@contextlib.contextmanager
def _output_to(log_path: Path) -> Iterator[None]:
    """Send Airflow's task logging to a file, so the terminal shows what DingTalk received."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def main() -> int:
    _setup_environment()
    from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

    with DingTalkEmulator() as emulator:
        os.environ.update(emulator.airflow_env())
        print(f"DingTalk emulator at {emulator.url}")
        from airflow_provider_dingtalk.testing.emulator.endpoints.workflow import DEMO_PROCESS_CODE

        # The data owner of the approval example (user2) agrees a second after each request.
        emulator.auto_decide(DEMO_PROCESS_CODE, result="agree", after=1.0)

        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils.db import initdb

        log_path = ROOT / ".airflow" / "demo.log"
        log_path.write_text("")
        with _output_to(log_path):
            initdb()
            bag = DagBag(dag_folder=str(ROOT / "example_dags"))
        if bag.import_errors:
            for path, err in bag.import_errors.items():
                print(f"IMPORT ERROR {path}:\n{err}")
            return 1
        failures = skipped = approvals = 0
        for dag_id in sorted(bag.dags):
            dag = bag.dags[dag_id]
            if NEEDS_SCHEDULER in dag.tags:
                print(f"\n=== {dag_id}: skipped (needs the scheduler and a triggerer; see tests/production)")
                skipped += 1
                continue
            expected = "failed" if EXPECT_FAILED in dag.tags else "success"
            seen = len(emulator.inbox())
            print(f"\n=== {dag_id}: running (expected: {expected})", flush=True)
            with _output_to(log_path):
                run = dag.test()
            state = str(getattr(run.state, "value", run.state))
            ok = state == expected
            failures += not ok
            print(f"=== {dag_id}: {state} {'(as expected)' if ok else '<-- UNEXPECTED'}")
            for item in emulator.inbox()[seen:]:
                print(f"    → {item.channel} to {item.target}: {_summary(item.message)}")
            for approval in emulator.approval_instances()[approvals:]:
                who = [
                    r["userId"] for r in approval["operationRecords"] if r["type"] == "EXECUTE_TASK_NORMAL"
                ]
                print(
                    f"    → approval {approval['businessId']}: {approval['status']} "
                    f"{approval['result']} by {who}"
                )
            approvals = len(emulator.approval_instances())
        _show_event_to_dag_run(emulator, log_path)
        _show_event_over_stream(emulator)
        print(
            f"\n{len(bag.dags) - skipped - failures} of {len(bag.dags) - skipped} example DAGs behaved as "
            f"expected ({skipped} skipped); "
            f"DingTalk received {len(emulator.inbox())} messages."
        )
        return 1 if failures else 0


def _show_event_to_dag_run(emulator: object, log_path: Path) -> None:
    """DingTalk pushes an approval event to the registered callback; show the asset event it became."""
    from airflow_provider_dingtalk.event_types import event_asset_uri

    event = {
        "EventType": "bpms_instance_change",
        "processInstanceId": "demo-approval-1",
        "type": "finish",
        "result": "agree",
        "staffId": "user1",
    }
    print("\n=== DingTalk pushes an approval event to the registered callback URL")
    with _output_to(log_path):
        acknowledged = emulator.push_event(event)  # type: ignore[attr-defined]
    uri = event_asset_uri("bpms_instance_change")
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri)
        ).all()
    print(f"    receiver acknowledged: {acknowledged}; asset events on {uri}: {len(events)}")
    print(
        "    (the scheduler now starts every DAG scheduled on that asset, e.g. example_dingtalk_on_approval)"
    )


def _show_event_over_stream(emulator: DingTalkEmulator) -> None:
    """DingTalk pushes the same kind of event down a Stream connection; show the asset event it makes.

    The Stream trigger's ``run()`` in this process, as the triggerer would run it for the example's
    ``AssetWatcher``: no public URL, the trigger connects out to the emulator's gateway.
    """
    import asyncio
    from collections.abc import AsyncGenerator

    from airflow_provider_dingtalk.triggers.stream import DingTalkStreamEventTrigger

    event = {
        "EventType": "bpms_instance_change",
        "processCode": "PROC-EXAMPLE",
        "processInstanceId": "demo-approval-2",
        "type": "finish",
        "result": "agree",
    }

    async def one_event() -> dict[str, Any]:
        run = DingTalkStreamEventTrigger(
            event_types=["bpms_instance_change"], filters={"processCode": "PROC-EXAMPLE"}
        ).run()
        assert isinstance(run, AsyncGenerator)
        first = asyncio.ensure_future(run.__anext__())
        await asyncio.to_thread(emulator.stream.wait_for_connections)
        emulator.push_event(event, via="stream")
        payload: dict[str, Any] = (await asyncio.wait_for(first, 10)).payload
        await run.aclose()
        return payload

    print("\n=== DingTalk pushes an approval event over Stream mode (the trigger connected out)")
    payload = asyncio.run(one_event())
    print(f"    trigger fired: asset event on dingtalk://events/bpms_instance_change, payload {payload}")
    print("    (in Airflow the triggerer runs it for example_dingtalk_stream_approvals' AssetWatcher)")


if __name__ == "__main__":
    sys.exit(main())

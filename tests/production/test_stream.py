"""Stream mode under real Airflow services: the triggerer holds the Stream connection of an
``AssetWatcher``, a pushed event becomes an asset event, and the scheduler starts the consumer DAG.

Nothing is triggered by hand: the DAG ``example_dingtalk_stream_approvals`` is unpaused (Airflow only
runs the watchers of assets that an unpaused DAG is scheduled on), the dag processor is asked to
parse its file again (the UI's "Reparse" button) so the watcher is registered without waiting for
the next parsing loop, and the emulator's gateway then sees the triggerer's connection.

A killed triggerer is not tested here: Airflow hands its triggers to a new triggerer only once the
old one's heartbeat is ``[triggerer] triggerer_health_check_threshold`` (30 s) old. That costs more
than a CI test should; ``benchmarks/stream.py`` measures it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_dingtalk.crypto import new_nonce
from airflow_provider_dingtalk.event_types import event_asset_uri
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.airflow_services import AirflowServices, wait_for

pytestmark = pytest.mark.production

DAG_ID = "example_dingtalk_stream_approvals"
URI = event_asset_uri("bpms_instance_change")
TIMEOUT = 150.0
STREAM_HEADERS = {"eventId", "eventType", "eventBornTime"}


def approval(**fields: Any) -> dict[str, Any]:
    """A finished approval of the template the example DAG's trigger filters on."""
    return {
        "EventType": "bpms_instance_change",
        "processCode": "PROC-EXAMPLE",
        "processInstanceId": f"stream-{new_nonce(8)}",
        "type": "finish",
        "result": "agree",
        **fields,
    }


def asset_events(services: AirflowServices) -> list[dict[str, Any]]:
    events = services.get("/api/v2/assets/events", limit=100, order_by="-timestamp")["asset_events"]
    return [e for e in events if e["uri"] == URI]


def stream_events(services: AirflowServices) -> Counter[str]:
    """How many asset events each Stream ``eventId`` made (HTTP-pushed events carry none)."""
    return Counter(
        str(e["extra"]["payload"]["eventId"])
        for e in asset_events(services)
        if isinstance((e.get("extra") or {}).get("payload"), dict) and "eventId" in e["extra"]["payload"]
    )


@pytest.fixture(scope="module")
def stream_connection(
    airflow_services: AirflowServices, production_emulator: DingTalkEmulator
) -> Iterator[dict[str, Any]]:
    """The triggerer's Stream connection at the emulator, once the watcher's DAG is unpaused."""
    airflow_services.unpause(DAG_ID)
    token = airflow_services.get(f"/api/v2/dags/{DAG_ID}/details")["file_token"]
    requests.put(f"{airflow_services.url}/api/v2/parseDagFile/{token}", timeout=30).raise_for_status()

    def connected() -> dict[str, Any] | None:
        airflow_services.check_alive()
        conns = [c for c in production_emulator.stream.snapshot()["connections"] if c["events"]]
        return conns[0] if conns else None

    yield wait_for(
        "the triggerer's Stream connection", connected, timeout=TIMEOUT, logs=airflow_services.logs
    )


def wait_for_stream_events(
    services: AirflowServices, event_ids: list[str], *, timeout: float = TIMEOUT
) -> Counter[str]:
    def arrived() -> Counter[str] | None:
        services.check_alive()
        seen = stream_events(services)
        return seen if all(seen[e] for e in event_ids) else None

    seen: Counter[str] = wait_for(
        f"asset events for {len(event_ids)} Stream event(s)", arrived, timeout=timeout, logs=services.logs
    )
    return seen


def test_the_triggerers_stream_connection_reaches_the_gateway(
    stream_connection: dict[str, Any], production_emulator: DingTalkEmulator
) -> None:
    assert stream_connection["app_key"] == production_emulator.app.app_key
    # The API server holds one too, for interactive card clicks (CALLBACK only); the trigger's takes events.
    opened = production_emulator.requests("/v1.0/gateway/connections/open")
    events = [r for r in opened if {"type": "EVENT", "topic": "*"} in r.body["subscriptions"]]
    assert events and all(r.body["subscriptions"] == [{"type": "EVENT", "topic": "*"}] for r in events)
    # The AppSecret travels in connections/open; the emulator's request log must not show it.
    assert production_emulator.app.app_secret not in json.dumps([r.body for r in opened])


def http_receiver_registered(
    services: AirflowServices, emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The organisation's callback points at the plugin on the API server (as the register DAG does)."""
    from airflow_provider_dingtalk.exceptions import DingTalkAPIError
    from airflow_provider_dingtalk.hooks.callback import DingTalkCallbackHook

    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", emulator.connection_json())
    hook = DingTalkCallbackHook()
    try:
        hook.get_callback()
    except DingTalkAPIError as exc:
        if exc.errcode != 71007:  # "the callback does not exist"
            raise
        receiver = emulator.receiver
        hook.register_callback(
            call_back_tags=["bpms_instance_change"],
            url=services.url + "/dingtalk/events",
            token=receiver.token,
            aes_key=receiver.aes_key,
        )


def test_pushed_event_starts_the_consumer_dag_with_the_http_receivers_payload(
    airflow_services: AirflowServices,
    production_emulator: DingTalkEmulator,
    stream_connection: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = approval()
    event_id = production_emulator.push_event(event, via="stream")
    wait_for_stream_events(airflow_services, [event_id])

    def consumer_run() -> dict[str, Any] | None:
        airflow_services.check_alive()
        for run in airflow_services.get(f"/api/v2/dags/{DAG_ID}/dagRuns", order_by="-run_after")["dag_runs"]:
            if run["state"] in ("success", "failed") and run["run_type"] == "asset_triggered":
                done = airflow_services.xcom(DAG_ID, run["dag_run_id"], "handle_approvals")
                if event["processInstanceId"] in done:
                    return dict(run)
        return None

    # Started by the scheduler for the asset event: nobody triggered it.
    run = wait_for("the consumer DAG's run", consumer_run, timeout=TIMEOUT, logs=airflow_services.logs)
    assert run["state"] == "success", airflow_services.explain(DAG_ID, run["dag_run_id"])

    # The same event pushed over HTTP to the receiver plugin: the asset event a DAG gets that way.
    http_receiver_registered(airflow_services, production_emulator, monkeypatch)
    assert production_emulator.push_event(event)

    def both() -> dict[str, dict[str, Any]] | None:
        made = [
            e
            for e in asset_events(airflow_services)
            if ((e.get("extra") or {}).get("payload") or {}).get("processInstanceId")
            == event["processInstanceId"]
        ]
        by_way = {
            ("stream" if "eventId" in e["extra"]["payload"] else "http"): e["extra"]["payload"] for e in made
        }
        return by_way if len(by_way) == 2 else None

    payloads = wait_for("the HTTP receiver's asset event", both, timeout=60, logs=airflow_services.logs)
    stream_payload = payloads["stream"]
    assert isinstance(stream_payload.pop("eventBornTime"), int)
    assert stream_payload == {
        **payloads["http"],
        "corpId": production_emulator.app.corp_id,
        "eventId": event_id,
        "eventType": "bpms_instance_change",
    }


def test_redeliveries_make_one_asset_event_each(
    airflow_services: AirflowServices,
    production_emulator: DingTalkEmulator,
    stream_connection: dict[str, Any],
) -> None:
    stream = production_emulator.stream
    first = production_emulator.push_event(approval(), via="stream")
    wait_for_stream_events(airflow_services, [first])
    delivered_before = stream.snapshot()["delivered"]
    # DingTalk pushes an acked event again (same eventId), and hands the connection over mid-burst:
    # the events of the old socket that were not acked yet come again down the new one.
    pushed = [production_emulator.push_event(approval(eventId=first), via="stream")]
    for n in range(6):
        pushed.append(production_emulator.push_event(approval(), via="stream"))
        if n == 2:
            stream.disconnect(grace=1.0)
        if n == 4:
            stream.drop()  # a TCP drop without a frame: whatever was not acked is pushed again
    stream.wait_until_acked(timeout=TIMEOUT)
    seen = wait_for_stream_events(airflow_services, pushed)
    time.sleep(3)  # a duplicate would reach the database with the triggerer's next sync, about 1 s
    seen = stream_events(airflow_services)
    assert {e: seen[e] for e in pushed} == dict.fromkeys(pushed, 1)
    assert stream.snapshot()["delivered"] - delivered_before >= len(pushed)

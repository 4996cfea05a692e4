"""Human-in-the-loop answered from a DingTalk card, through real Airflow services (tests/production).

``example_dingtalk_hitl`` (an ApprovalOperator) and ``example_dingtalk_hitl_branch`` send their card
with :class:`DingTalkHITLNotifier`; the emulator delivers it and sends each tap to the card callback
on the API server as DingTalk does (HTTP, signed), which writes the answer to Airflow's HITL record.
Alice (user1) and Bob (user2) are assigned; Carol (user3) is mapped but not assigned; user9 is not
mapped. Everyone in the group sees the card.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock
from urllib.parse import quote

import pytest
import requests

from airflow_provider_dingtalk.events.card_callback import (
    ALREADY,
    DEFAULT_SETTLE,
    NOT_APPROVER,
    NOT_READY,
)
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import (
    STREAM_TOPIC as CARD_TOPIC,
)
from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import Card, ClickResult
from tests.airflow_services import BIN, AirflowServices, wait_for
from tests.production.conftest import CARD_API_SECRET, CARD_ROUTE_KEY, HITL_GROUP
from tests.services import free_port

pytestmark = pytest.mark.production

APPROVAL, BRANCH = "example_dingtalk_hitl", "example_dingtalk_hitl_branch"
RUN_TIMEOUT = 150.0
CALLBACK = "/dingtalk/cards/callback"
PARKED = ("awaiting_input", "deferred")  # where a HITL task waits: Airflow 3.3, 3.2 (HITLTrigger)


@pytest.fixture(scope="module")
def hitl(
    airflow_services: AirflowServices, production_emulator: DingTalkEmulator
) -> Iterator[AirflowServices]:
    """The card callback route registered with (emulated) DingTalk, as an admin does once; DAGs unpaused."""
    from airflow_provider_dingtalk.hooks.interactive_card import DingTalkInteractiveCardHook

    with mock.patch.dict(
        os.environ, {"AIRFLOW_CONN_DINGTALK_DEFAULT": production_emulator.connection_json()}
    ):
        DingTalkInteractiveCardHook().register_card_callback(
            callback_route_key=CARD_ROUTE_KEY,
            callback_url=airflow_services.url + CALLBACK,
            api_secret=CARD_API_SECRET,
            force_update=True,
        )
    for dag_id in (APPROVAL, BRANCH):
        airflow_services.unpause(dag_id)
    # The API server listens for card clicks over Stream from its start (the branch DAG's cards).
    wait_for(
        "the API server's Stream connection for card clicks",
        lambda: card_connections(production_emulator),
        timeout=60,
        logs=airflow_services.logs,
    )
    yield airflow_services


def card_connections(emulator: DingTalkEmulator) -> list[str]:
    """The ids of the app's Stream connections that take card clicks (one per API server process)."""
    return [c["id"] for c in emulator.stream.snapshot()["connections"] if CARD_TOPIC in c["callbacks"]]


def card_of(services: AirflowServices, emulator: DingTalkEmulator, dag_id: str, run_id: str) -> Card:
    def found() -> Card | None:
        services.check_alive()
        return next(
            (
                c
                for c in emulator.cards()
                if c.data.get("dag_id") == dag_id and c.data.get("run_id") == run_id
            ),
            None,
        )

    card = wait_for(f"card of {dag_id} {run_id}", found, timeout=RUN_TIMEOUT, logs=services.logs)
    assert isinstance(card, Card)
    return card


def tap(emulator: DingTalkEmulator, track: str, user: str, action: str, **kwargs: Any) -> ClickResult:
    """A tap by an approver, tapped again while the card says Airflow is not ready for it yet (the
    task has not parked long enough: see ``test_a_tap_the_moment_the_card_arrives_is_applied_once``)."""
    deadline = time.monotonic() + 30
    while True:
        result = emulator.click(track, user, action, **kwargs)
        assert result.status == 200 and result.seconds < 2, result
        if emulator.card(track, user).get("notice") != NOT_READY or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def hitl_detail(services: AirflowServices, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/-1/hitlDetails"
    return dict(services.get(path))


def states(services: AirflowServices, dag_id: str, run_id: str) -> dict[str, str | None]:
    return {task: ti["state"] for (task, _), ti in services.task_instances(dag_id, run_id).items()}


def test_approve_from_the_card_resumes_the_task(
    hitl: AirflowServices, production_emulator: DingTalkEmulator
) -> None:
    (run_id,) = hitl.trigger(APPROVAL).values()
    card = card_of(hitl, production_emulator, APPROVAL, run_id)
    # Delivered one-to-one to the assigned users (mapped back to DingTalk) and to the group.
    assert card.spaces == [("IM_ROBOT", "user1"), ("IM_ROBOT", "user2"), ("IM_GROUP", HITL_GROUP)]
    before = production_emulator.card(card.out_track_id, "user2")
    assert before["subject"] == f"Deploy {run_id} to production?"
    assert before["body"].startswith("**Changes**: 3 tables")
    assert (before["option_0"], before["option_1"], before["option_2"]) == ("Approve", "Reject", "")
    assert before["answerable"] == "true" and before["status"] == "pending"
    assert before["airflow_url"].startswith(f"{hitl.url}/dags/{APPROVAL}/runs/")
    assert before["airflow_url"].endswith("/tasks/approve_deploy/required_actions?map_index=-1")

    # Carol (mapped, not assigned) and user9 (not mapped) tap in the group: told so, nothing changes.
    for outsider in ("user3", "user9"):
        result = production_emulator.click(card.out_track_id, outsider, "option_0")
        assert result.status == 200, result
        assert production_emulator.card(card.out_track_id, outsider)["notice"] == NOT_APPROVER
    assert production_emulator.card(card.out_track_id) == {k: v for k, v in before.items() if k != "notice"}
    assert hitl_detail(hitl, APPROVAL, run_id, "approve_deploy")["response_received"] is False

    # Bob approves: within DingTalk's 2 s every view of the card shows it, with no buttons left.
    result = tap(production_emulator, card.out_track_id, "user2", "option_0")
    for viewer in ("user1", "user2", "user3"):
        after = production_emulator.card(card.out_track_id, viewer)
        assert after["status"] == "answered" and after["answerable"] == "false"
        assert after["status_text"].startswith("Approved by Bob at ")
        assert after["option_0"] == after["option_1"] == ""
    assert production_emulator.card(card.out_track_id, "user2")["notice"] == 'You chose "Approve".'

    run = hitl.wait_for_run(APPROVAL, run_id, timeout=RUN_TIMEOUT)
    assert run["state"] == "success", hitl.explain(APPROVAL, run_id)
    assert states(hitl, APPROVAL, run_id) == {"approve_deploy": "success", "deploy": "success"}
    detail = hitl_detail(hitl, APPROVAL, run_id, "approve_deploy")
    assert detail["chosen_options"] == ["Approve"]
    assert detail["responded_by_user"] == {"id": "bob", "name": "Bob"}

    # Alice taps later: only the final state.
    production_emulator.click(card.out_track_id, "user1", "option_1")
    assert production_emulator.card(card.out_track_id, "user1")["notice"] == ALREADY
    assert production_emulator.card(card.out_track_id)["status_text"].startswith("Approved by Bob")
    assert hitl_detail(hitl, APPROVAL, run_id, "approve_deploy")["chosen_options"] == ["Approve"]


def test_reject_from_the_card_fails_the_task(
    hitl: AirflowServices, production_emulator: DingTalkEmulator
) -> None:
    (run_id,) = hitl.trigger(APPROVAL).values()
    card = card_of(hitl, production_emulator, APPROVAL, run_id)
    tap(production_emulator, card.out_track_id, "user1", "option_1")
    assert production_emulator.card(card.out_track_id)["status_text"].startswith("Rejected by Alice at ")
    run = hitl.wait_for_run(APPROVAL, run_id, timeout=RUN_TIMEOUT)
    assert run["state"] == "failed"
    assert states(hitl, APPROVAL, run_id) == {"approve_deploy": "failed", "deploy": "upstream_failed"}


def test_branch_chosen_from_the_card_over_stream(
    hitl: AirflowServices, production_emulator: DingTalkEmulator
) -> None:
    (run_id,) = hitl.trigger(BRANCH).values()
    card = card_of(hitl, production_emulator, BRANCH, run_id)
    view = production_emulator.card(card.out_track_id, "user2")
    assert (view["option_0"], view["option_1"]) == ("load_eu", "load_us")
    # The button's parameter names the option (the template's "回传请求" params).
    # Over Stream (the DAG's notifier's default): the API server acks with the card update.
    assert card.callback_type == "STREAM"
    result = tap(production_emulator, card.out_track_id, "user2", "btn", params={"option_index": "1"})
    assert result.transport == "STREAM" and result.reply is not None
    assert production_emulator.card(card.out_track_id)["status_text"].startswith('Chose "load_us" by Bob at ')
    run = hitl.wait_for_run(BRANCH, run_id, timeout=RUN_TIMEOUT)
    assert run["state"] == "success", hitl.explain(BRANCH, run_id)
    assert states(hitl, BRANCH, run_id) == {
        "choose_region": "success",
        "load_eu": "skipped",
        "load_us": "success",
    }


def test_a_click_after_the_ui_answered_shows_the_final_state(
    hitl: AirflowServices, production_emulator: DingTalkEmulator
) -> None:
    (run_id,) = hitl.trigger(APPROVAL).values()
    card = card_of(hitl, production_emulator, APPROVAL, run_id)
    # The card goes out just before the task parks; answer the parked task, as the UI shows it then.
    wait_for(
        "approve_deploy awaiting input",
        lambda: states(hitl, APPROVAL, run_id)["approve_deploy"] in PARKED,
        timeout=RUN_TIMEOUT,
        logs=hitl.logs,
    )
    # A UI answer in the seconds right after the park meets Airflow 3.3's own race (the scheduler takes
    # the parking worker's exit for the resumed try's and fails it; docs/hitl.rst): answer as a person
    # would, once the park has settled, as the card handler itself waits.
    time.sleep(DEFAULT_SETTLE)
    path = f"/api/v2/dags/{APPROVAL}/dagRuns/{quote(run_id)}/taskInstances/approve_deploy/-1/hitlDetails"
    resp = requests.patch(
        hitl.url + path, json={"chosen_options": ["Approve"], "params_input": {}}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    ui_user = resp.json()["responded_by"]["name"]
    assert production_emulator.click(card.out_track_id, "user1", "option_1").status == 200
    view = production_emulator.card(card.out_track_id, "user1")
    assert view["notice"] == ALREADY and view["answerable"] == "false"
    assert view["status_text"].startswith(f"Approved by {ui_user} at ")
    run = hitl.wait_for_run(APPROVAL, run_id, timeout=RUN_TIMEOUT)
    assert run["state"] == "success", hitl.explain(APPROVAL, run_id)
    assert hitl_detail(hitl, APPROVAL, run_id, "approve_deploy")["chosen_options"] == ["Approve"]


def _signed(stamp_ms: int, secret: str = CARD_API_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), str(stamp_ms).encode(), hashlib.sha256).digest()
    return {
        "x-ddpaas-signature-timestamp": str(stamp_ms),
        "x-ddpaas-signature": base64.b64encode(digest).decode(),
    }


def test_forged_and_replayed_callbacks_are_refused(
    hitl: AirflowServices, production_emulator: DingTalkEmulator
) -> None:
    (run_id,) = hitl.trigger(APPROVAL).values()
    card = card_of(hitl, production_emulator, APPROVAL, run_id)
    # A forged click through DingTalk's own path: wrong signature.
    forged = production_emulator.click(
        card.out_track_id, "user1", "option_0", headers={"x-ddpaas-signature": "Zm9yZ2Vk"}
    )
    assert forged.status == 401 and forged.reply is None
    # Posted straight at the API server, to a task parked long enough to take the one genuine click.
    wait_for(
        "approve_deploy awaiting input",
        lambda: states(hitl, APPROVAL, run_id)["approve_deploy"] in PARKED,
        timeout=RUN_TIMEOUT,
        logs=hitl.logs,
    )
    time.sleep(DEFAULT_SETTLE)
    body = json.dumps(
        {
            "type": "actionCallback",
            "outTrackId": card.out_track_id,
            "userId": "user1",
            "content": json.dumps({"cardPrivateData": {"actionIds": ["option_0"], "params": {}}}),
        }
    )
    url = hitl.url + CALLBACK
    now_ms = int(time.time() * 1000)
    post = lambda headers: requests.post(  # noqa: E731
        url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=30
    )
    assert post({}).status_code == 401
    assert post(_signed(now_ms, secret="not-the-secret")).status_code == 401
    assert post(_signed(now_ms - 600_000)).status_code == 401  # a stale (captured) signature
    fresh = _signed(now_ms - 1000)
    replayed = post(fresh), post(fresh)
    assert [r.status_code for r in replayed] == [200, 401]
    # The one accepted click was genuine, so it answered the task: nothing else did.
    detail = hitl_detail(hitl, APPROVAL, run_id, "approve_deploy")
    assert detail["chosen_options"] == ["Approve"] and detail["responded_by_user"]["id"] == "alice"
    assert hitl.wait_for_run(APPROVAL, run_id, timeout=RUN_TIMEOUT)["state"] == "success"
    assert CARD_API_SECRET not in json.dumps(
        [r.__dict__ for r in production_emulator.requests()], default=str
    )


def _trigger_runs(services: AirflowServices, dag_id: str, count: int) -> list[str]:
    """``count`` runs of ``dag_id`` through the REST API (the CLI costs seconds per call)."""
    run_ids = []
    for _ in range(count):
        resp = requests.post(
            f"{services.url}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None}, timeout=30
        )
        assert resp.status_code == 200, resp.text
        run_ids.append(resp.json()["dag_run_id"])
    return run_ids


def test_a_tap_the_moment_the_card_arrives_is_applied_once(
    hitl: AirflowServices, production_emulator: DingTalkEmulator
) -> None:
    """The notifier sends the card just before the task parks (awaiting_input): a tap in that window
    must neither fail the run nor strand it. Each card is tapped as soon as it exists."""
    run_ids = _trigger_runs(hitl, APPROVAL, 3)
    replies: dict[str, list[dict[str, str]]] = {r: [] for r in run_ids}
    deadline = time.monotonic() + RUN_TIMEOUT
    pending = set(run_ids)
    while pending and time.monotonic() < deadline:
        for card in production_emulator.cards():
            run_id = card.data.get("run_id", "")
            if card.data.get("dag_id") == APPROVAL and run_id in pending:
                result = production_emulator.click(card.out_track_id, "user2", "option_0")
                assert result.status == 200 and result.seconds < 2, result
                replies[run_id].append(production_emulator.card(card.out_track_id, "user2"))
                if production_emulator.card(card.out_track_id)["status"] == "answered":
                    pending.discard(run_id)
                # else: told to try again in a moment; the next pass taps again
        time.sleep(0.005)
    assert not pending, replies
    for run_id in run_ids:
        run = hitl.wait_for_run(APPROVAL, run_id, timeout=60)
        assert run["state"] == "success", hitl.explain(APPROVAL, run_id)
        detail = hitl_detail(hitl, APPROVAL, run_id, "approve_deploy")
        assert detail["chosen_options"] == ["Approve"] and detail["responded_by_user"]["id"] == "bob"
        assert replies[run_id][-1]["notice"] == 'You chose "Approve".'
        assert replies[run_id][-1]["status_text"].startswith("Approved by Bob at ")


def _start_api_server(services: AirflowServices, port: int, log_name: str) -> subprocess.Popen[bytes]:
    """Another ``airflow api-server`` on ``port``, sharing the services' database and settings."""
    return subprocess.Popen(
        [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=services.env,
        stdout=(services.home / f"{log_name}.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _branch_card(services: AirflowServices, emulator: DingTalkEmulator) -> tuple[str, Card]:
    (run_id,) = _trigger_runs(services, BRANCH, 1)
    return run_id, card_of(services, emulator, BRANCH, run_id)


def test_two_api_servers_apply_each_stream_click_once_and_a_restart_loses_none(
    hitl: AirflowServices, production_emulator: DingTalkEmulator
) -> None:
    first = card_connections(production_emulator)
    port = free_port()
    second = _start_api_server(hitl, port, "api-server-2")
    try:
        wait_for(
            "the second API server's Stream connection",
            lambda: second.poll() is None and len(card_connections(production_emulator)) > len(first),
            timeout=90,
            logs=hitl.logs,
        )
        conns = card_connections(production_emulator)
        (theirs,) = set(conns) - set(first)

        # Clicks alternate between the two servers' connections; each card also gets a second tap on
        # the other server at once. Every answer is applied once: the HITL record decides.
        runs = []
        for i in range(4):
            run_id, card = _branch_card(hitl, production_emulator)
            here, there = (conns[i % 2], conns[(i + 1) % 2])
            tap(production_emulator, card.out_track_id, "user2", "option_0", connection=here)
            late = production_emulator.click(card.out_track_id, "user1", "option_1", connection=there)
            assert late.status == 200 and late.transport == "STREAM", late
            assert production_emulator.card(card.out_track_id, "user1")["notice"] == ALREADY
            runs.append(run_id)
        for run_id in runs:
            assert hitl.wait_for_run(BRANCH, run_id, timeout=RUN_TIMEOUT)["state"] == "success"
            detail = hitl_detail(hitl, BRANCH, run_id, "choose_region")
            assert detail["chosen_options"] == ["load_eu"] and detail["responded_by_user"]["id"] == "bob"
        card_acks = [a for a in production_emulator.stream.acks() if a.connection in conns]
        assert {a.connection for a in card_acks} == set(conns)  # both servers answered clicks

        # The second server stops dead with a click in its hands (delivered, never acked), and is
        # restarted: DingTalk pushes the click again to a connection that is there, and it is applied.
        run_id, card = _branch_card(hitl, production_emulator)
        wait_for(
            "choose_region awaiting input",
            lambda: states(hitl, BRANCH, run_id)["choose_region"] in PARKED,
            timeout=RUN_TIMEOUT,
            logs=hitl.logs,
        )
        time.sleep(DEFAULT_SETTLE)
        production_emulator.stream.redelivery_timeout = 1.0
        os.killpg(second.pid, signal.SIGSTOP)
        lost = production_emulator.click(card.out_track_id, "user2", "option_1", connection=theirs)
        assert lost.status == 504 and lost.reply is None  # no answer within 2 s: the card is unchanged
        assert production_emulator.card(card.out_track_id)["status"] == "pending"
        _kill(second)
        second = _start_api_server(hitl, port, "api-server-2-restarted")
        run = hitl.wait_for_run(BRANCH, run_id, timeout=RUN_TIMEOUT)
        assert run["state"] == "success", hitl.explain(BRANCH, run_id)
        detail = hitl_detail(hitl, BRANCH, run_id, "choose_region")
        assert detail["chosen_options"] == ["load_us"] and detail["responded_by_user"]["id"] == "bob"
        # Its reply came too late for DingTalk; the next tap shows the final state.
        production_emulator.click(card.out_track_id, "user1", "option_0")
        assert production_emulator.card(card.out_track_id)["status_text"].startswith('Chose "load_us" by Bob')
        wait_for(
            "the restarted API server's Stream connection",
            lambda: len(card_connections(production_emulator)) == len(conns),
            timeout=90,
            logs=hitl.logs,
        )
    finally:
        production_emulator.stream.redelivery_timeout = 5.0
        _kill(second)

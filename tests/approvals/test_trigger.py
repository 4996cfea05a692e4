"""DingTalkApprovalTrigger and the shared poller, run in pytest's event loop against the emulator."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow_provider_dingtalk.approvals import form_component_values
from airflow_provider_dingtalk.hooks.approval import INSTANCES_PATH, DingTalkApprovalHook
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.endpoints.workflow import workflow
from airflow_provider_dingtalk.triggers.approval import DingTalkApprovalTrigger
from airflow_provider_dingtalk.triggers.approval_poller import PollBudget, poll_interval, wake_approval
from tests.approvals.conftest import DEMO, FORM


def start_many(hook: DingTalkApprovalHook, n: int) -> list[str]:
    values = form_component_values(FORM)
    return [
        hook.start_instance(
            process_code=DEMO, originator_user_id="user1", dept_id=-1, form_component_values=values
        )
        for _ in range(n)
    ]


def trigger(instance_id: str, **kwargs: Any) -> DingTalkApprovalTrigger:
    args: dict[str, Any] = {"instance_id": instance_id, "created_at": time.time(), "min_interval": 0.2}
    return DingTalkApprovalTrigger(**(args | kwargs))


async def first_event(t: DingTalkApprovalTrigger) -> dict[str, Any]:
    async for event in t.run():
        return dict(event.payload)
    raise AssertionError("no event")


def gets(emulator: DingTalkEmulator) -> int:
    return len([r for r in emulator.requests(INSTANCES_PATH) if r.method == "GET"])


def test_interval_grows_with_age_within_bounds() -> None:
    budget = PollBudget(min_interval=5, max_interval=300)
    assert [poll_interval(a, budget) for a in (0, 60, 600, 86400 * 3)] == [5, 6, 60, 300]


async def test_many_triggers_share_one_poller_within_the_budget(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    workflow(dingtalk_conn.state).qps_limit = 1000
    ids = start_many(hook, 30)
    before = gets(dingtalk_conn)
    waits = [asyncio.create_task(first_event(trigger(i, requests_per_second=20))) for i in ids]
    await asyncio.sleep(0.5)
    for instance_id in ids:
        await asyncio.to_thread(dingtalk_conn.approve, instance_id, "user2")
    started = time.monotonic()
    events = await asyncio.gather(*waits)
    assert {e["status"] for e in events} == {"final"} and {e["instance"]["outcome"] for e in events} == {
        "agree"
    }
    elapsed = time.monotonic() - started + 0.5
    sent = gets(dingtalk_conn) - before
    # one poller for all 30: its budget of 20 GET/s holds, however many triggers wait
    assert sent <= 20 * elapsed + 20, (sent, elapsed)


async def test_a_wake_up_asks_at_once(hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator) -> None:
    (instance_id,) = start_many(hook, 1)
    waiting = asyncio.create_task(first_event(trigger(instance_id, min_interval=3600, max_interval=3600)))
    await asyncio.sleep(0.3)  # the first GET: still running; the next would be in an hour
    await asyncio.to_thread(dingtalk_conn.refuse, instance_id, "user2", "no")
    assert wake_approval(instance_id)
    event = await asyncio.wait_for(waiting, timeout=5)
    assert event["instance"]["outcome"] == "refuse" and event["instance"]["remarks"] == ["no"]
    assert not wake_approval("someone-else")


async def test_throttling_backs_off_then_completes(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    ids = start_many(hook, 3)
    for instance_id in ids:
        dingtalk_conn.approve(instance_id, "user2")
    workflow(dingtalk_conn.state).qps_limit = 1
    events = await asyncio.wait_for(
        asyncio.gather(*(first_event(trigger(i, requests_per_second=50)) for i in ids)), timeout=20
    )
    assert [e["status"] for e in events] == ["final"] * 3
    statuses = [r.status for r in dingtalk_conn.requests(INSTANCES_PATH) if r.method == "GET"]
    assert 403 in statuses
    assert statuses.count(403) <= 4  # it paused after a throttle instead of hammering


async def test_timeout_and_error_events(hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator) -> None:
    (instance_id,) = start_many(hook, 1)
    assert await first_event(trigger(instance_id, end_time=time.time() + 0.3)) == {
        "status": "timeout",
        "instance_id": instance_id,
    }
    event = await first_event(trigger("no-such-instance"))
    assert event["status"] == "error" and "processInstanceNotExist" in event["message"]


async def test_on_kill_revokes_once_dingtalk_allows(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    (instance_id,) = start_many(hook, 1)
    dingtalk_conn.advance(20)
    await trigger(instance_id, created_at=time.time() - 20).on_kill()
    assert hook.get_instance(instance_id).outcome == "terminated"


async def test_a_wake_up_jumps_a_backlog(hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator) -> None:
    """At 2 GET/s, 20 open instances take 10 s a round; a woken one is asked next, not after them."""
    workflow(dingtalk_conn.state).qps_limit = 1000
    ids = start_many(hook, 20)
    waits = [
        asyncio.create_task(first_event(trigger(i, requests_per_second=2, min_interval=0.1))) for i in ids
    ]
    await asyncio.sleep(1.0)
    last = ids[-1]
    await asyncio.to_thread(dingtalk_conn.approve, last, "user2")
    assert wake_approval(last)
    event = await asyncio.wait_for(waits[-1], timeout=2.5)
    assert event["instance"]["outcome"] == "agree"
    for waiting in waits[:-1]:
        waiting.cancel()

"""Approval triggers woken by ``bpms_instance_change`` events over the emulator's Stream gateway.

Real WebSockets on loopback: the emulator pushes the events an approval causes down the app's Stream
connection, as DingTalk does for an app in Stream mode, and GET stays the source of truth.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, cast

import pytest

from airflow_provider_dingtalk.hooks.approval import INSTANCES_PATH, DingTalkApprovalHook
from airflow_provider_dingtalk.stream.client import OPEN_PATH
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.triggers.approval import DingTalkApprovalTrigger
from airflow_provider_dingtalk.triggers.approval_poller import _POLLERS
from airflow_provider_dingtalk.triggers.stream import DingTalkStreamEventTrigger
from tests.approvals.test_trigger import first_event, start_many

HOUR = 3600.0
FINISH = "bpms_instance_change"


def trigger(instance_id: str, **kwargs: Any) -> DingTalkApprovalTrigger:
    args: dict[str, Any] = {"instance_id": instance_id, "created_at": time.time(), "use_stream": True}
    return DingTalkApprovalTrigger(**(args | kwargs))


def gets_of(emulator: DingTalkEmulator, instance_id: str) -> int:
    return len(
        [
            r
            for r in emulator.requests(INSTANCES_PATH)
            if r.method == "GET" and r.query.get("processInstanceId") == instance_id
        ]
    )


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.02)


async def decide(action: Callable[..., None], *args: str) -> float:
    """Act in the emulator (off the test's loop: the emulator runs its own); when it was done."""
    await asyncio.to_thread(action, *args)
    return time.monotonic()


async def timed(
    waiting: Awaitable[dict[str, Any]], since: float, timeout: float
) -> tuple[dict[str, Any], float]:
    event = await asyncio.wait_for(waiting, timeout)
    return event, time.monotonic() - since


def finish_acks(emulator: DingTalkEmulator) -> list[Any]:
    return [a for a in emulator.stream.acks() if a.code == 200]


async def test_a_decision_pushed_over_stream_finishes_the_trigger_at_once(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    (instance_id,) = start_many(hook, 1)
    # polling alone would ask once now and then in an hour: only the Stream event can finish it in time
    waiting = asyncio.create_task(first_event(trigger(instance_id, min_interval=HOUR, max_interval=HOUR)))
    await asyncio.to_thread(dingtalk_conn.stream.wait_for_connections)
    await until(lambda: gets_of(dingtalk_conn, instance_id) == 1)
    decided = await decide(dingtalk_conn.refuse, instance_id, "user2", "not this quarter")
    event, took = await timed(waiting, decided, timeout=5)
    assert event["status"] == "final" and event["instance"]["outcome"] == "refuse"
    assert event["instance"]["remarks"] == ["not this quarter"]
    assert took < 1.0, took
    assert gets_of(dingtalk_conn, instance_id) == 2  # the first look, and the one the event asked for
    (opened,) = dingtalk_conn.requests(OPEN_PATH)
    assert opened.body["subscriptions"] == [{"type": "EVENT", "topic": "*"}]
    await asyncio.to_thread(dingtalk_conn.stream.wait_until_acked)  # looked at, so not left to come back


async def test_a_stream_trigger_and_an_approval_trigger_both_get_the_event_acked_once(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    (instance_id,) = start_many(hook, 1)
    stream_trigger = DingTalkStreamEventTrigger(event_types=[FINISH], filters={"type": "finish"})
    watcher = cast(AsyncGenerator[Any], stream_trigger.run())
    watched = asyncio.ensure_future(watcher.__anext__())
    waiting = asyncio.create_task(first_event(trigger(instance_id, min_interval=HOUR, max_interval=HOUR)))
    await asyncio.to_thread(dingtalk_conn.stream.wait_for_connections)
    await until(lambda: gets_of(dingtalk_conn, instance_id) == 1)
    decided = await decide(dingtalk_conn.approve, instance_id, "user2")

    event, took = await timed(waiting, decided, timeout=5)
    assert event["instance"]["outcome"] == "agree" and took < 1.0, took
    asset_event = await asyncio.wait_for(watched, 5)
    assert (asset_event.payload["processInstanceId"], asset_event.payload["result"]) == (instance_id, "agree")
    assert len(dingtalk_conn.stream.snapshot()["connections"]) == 1  # one client for both
    # The approval trigger is done with the event, the Stream trigger has not handed it to Airflow
    # yet (the triggerer has not asked for its next event): it must not be acked.
    await asyncio.sleep(0.3)
    assert dingtalk_conn.stream.waiting() == 1
    acked_before = len(finish_acks(dingtalk_conn))
    nxt = asyncio.ensure_future(watcher.__anext__())  # the triggerer queued it and asks for more
    await asyncio.to_thread(dingtalk_conn.stream.wait_until_acked)
    assert len(finish_acks(dingtalk_conn)) == acked_before + 1  # one ack, by the shared client
    nxt.cancel()
    await asyncio.gather(nxt, return_exceptions=True)
    await watcher.aclose()


async def test_with_the_stream_connection_down_polling_completes_the_approval(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    dingtalk_conn.inject(OPEN_PATH, status=503, times=10_000)  # DingTalk's gateway does not answer
    (instance_id,) = start_many(hook, 1)
    waiting = asyncio.create_task(first_event(trigger(instance_id, min_interval=0.2)))
    await until(lambda: gets_of(dingtalk_conn, instance_id) >= 2)
    decided = await decide(dingtalk_conn.approve, instance_id, "user2")
    event, took = await timed(waiting, decided, timeout=5)
    assert event["instance"]["outcome"] == "agree" and took < 2.0, took
    assert dingtalk_conn.requests(OPEN_PATH)  # Stream was tried …
    assert dingtalk_conn.stream.snapshot()["connections"] == []  # … and never came up


async def test_stream_lost_after_the_start_event_the_safety_net_poll_completes_it(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    budget = {"min_interval": 0.1, "stream_interval": 1.5}  # the first trigger's budget is the poller's
    (older,) = start_many(hook, 1)  # an instance waited on first opens the Stream connection
    opener = asyncio.create_task(first_event(trigger(older, **budget)))
    await asyncio.to_thread(dingtalk_conn.stream.wait_for_connections)
    (instance_id,) = start_many(hook, 1)  # its start event arrives over Stream: its events come here
    waiting = asyncio.create_task(first_event(trigger(instance_id, **budget)))
    await until(lambda: gets_of(dingtalk_conn, instance_id) == 1)
    dingtalk_conn.inject(OPEN_PATH, status=503, times=10_000)
    await asyncio.to_thread(dingtalk_conn.stream.drop)
    await until(lambda: dingtalk_conn.stream.snapshot()["connections"] == [])
    decided = await decide(dingtalk_conn.approve, instance_id, "user2")  # no connection: no event
    event, took = await timed(waiting, decided, timeout=5)
    assert event["instance"]["outcome"] == "agree" and took < 2.0, took
    assert gets_of(dingtalk_conn, instance_id) <= 3  # at the safety-net pace, not every 0.1 s
    opener.cancel()
    await asyncio.gather(opener, return_exceptions=True)


async def test_polling_slows_to_the_safety_net_only_for_instances_whose_events_arrive(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    (before,) = start_many(hook, 1)  # created before any Stream connection: its start event is missed
    unheard = asyncio.create_task(first_event(trigger(before, min_interval=0.2, stream_interval=HOUR)))
    await asyncio.to_thread(dingtalk_conn.stream.wait_for_connections)
    (after,) = start_many(hook, 1)
    (poller,) = _POLLERS[asyncio.get_running_loop()].values()
    await until(lambda: poller.stream_events >= 1)  # its start event was heard
    heard = asyncio.create_task(first_event(trigger(after, min_interval=0.2, stream_interval=HOUR)))
    await until(lambda: gets_of(dingtalk_conn, after) == 1)
    counted = gets_of(dingtalk_conn, before)
    await asyncio.sleep(1.5)
    assert gets_of(dingtalk_conn, after) == 1  # next look in an hour: its events come here
    assert gets_of(dingtalk_conn, before) - counted >= 4  # still polled every 0.2-0.3 s
    for instance_id in (before, after):
        await decide(dingtalk_conn.approve, instance_id, "user2")
    done = await asyncio.wait_for(asyncio.gather(unheard, heard), 3)
    assert [e["instance"]["outcome"] for e in done] == ["agree", "agree"]


async def test_an_event_saying_it_ended_is_checked_again_soon_while_get_disagrees(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    """DingTalk's event can be ahead of its GET: the event does not decide, but it shortens the wait."""
    (instance_id,) = start_many(hook, 1)
    waiting = asyncio.create_task(
        first_event(trigger(instance_id, min_interval=0.3, max_interval=HOUR, stream_interval=HOUR))
    )
    await asyncio.to_thread(dingtalk_conn.stream.wait_for_connections)
    await until(lambda: gets_of(dingtalk_conn, instance_id) == 1)
    ahead = {"EventType": FINISH, "processInstanceId": instance_id, "type": "finish", "result": "agree"}
    dingtalk_conn.push_event(ahead, via="stream")
    await asyncio.sleep(1.2)
    assert not waiting.done()  # GET says RUNNING: the event alone finishes nothing
    assert gets_of(dingtalk_conn, instance_id) >= 4  # woken, then every 0.3 s instead of an hour
    await decide(dingtalk_conn.approve, instance_id, "user2")
    assert (await asyncio.wait_for(waiting, 3))["instance"]["outcome"] == "agree"


async def test_use_stream_false_opens_no_stream_connection(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    (instance_id,) = start_many(hook, 1)
    waiting = asyncio.create_task(first_event(trigger(instance_id, min_interval=0.2, use_stream=False)))
    await until(lambda: gets_of(dingtalk_conn, instance_id) >= 2)
    await decide(dingtalk_conn.approve, instance_id, "user2")
    assert (await asyncio.wait_for(waiting, 5))["instance"]["outcome"] == "agree"
    assert dingtalk_conn.requests(OPEN_PATH) == []
    assert dingtalk_conn.stream.waiting() == 0  # no connection open: the emulator pushed nothing


@pytest.mark.parametrize("use_stream", [None, True, False])
def test_the_switch_is_serialised(use_stream: bool | None) -> None:
    original = trigger("pi-1", use_stream=use_stream, stream_interval=120.0)
    path, kwargs = original.serialize()
    assert (kwargs["use_stream"], kwargs["stream_interval"]) == (use_stream, 120.0)
    assert DingTalkApprovalTrigger(**kwargs).serialize() == (path, kwargs)

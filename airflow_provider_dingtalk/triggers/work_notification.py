"""Wait for work notifications to be delivered, on the triggerer (no worker slot held).

The polling steps (:func:`still_sending`, :func:`send_results`) are shared with the operator's in-worker
wait; the trigger only runs them through :func:`asyncio.to_thread` with the same sync hook, so there is
one copy of the request building.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook


def still_sending(
    hook: DingTalkWorkNotificationHook, task_ids: Sequence[int], agent_id: int | str | None
) -> list[int]:
    """The task ids whose ``getsendprogress`` status is not yet 2 (done)."""
    return [t for t in task_ids if not hook.get_send_progress(t, agent_id=agent_id).done]


def send_results(
    hook: DingTalkWorkNotificationHook, task_ids: Sequence[int], agent_id: int | str | None
) -> dict[str, dict[str, Any]]:
    """``getsendresult`` of every task, as JSON-ready dicts keyed by task id (a string, for XCom/JSON)."""
    return {str(t): hook.get_send_result(t, agent_id=agent_id).to_dict() for t in task_ids}


class DingTalkDeliveryTrigger(BaseTrigger):
    """Poll ``getsendprogress`` until every task is done, then fire with the ``getsendresult`` of each.

    Events: ``{"status": "done", "task_ids": [...], "results": {task_id: SendResult.to_dict()}}``;
    ``{"status": "timeout", "task_ids": [...], "pending": [...]}`` when ``end_time`` passes first;
    ``{"status": "error", "task_ids": [...], "message": "..."}`` when DingTalk answers with an error.

    :param task_ids: the task ids returned by the send.
    :param dingtalk_conn_id: the ``dingtalk`` connection.
    :param agent_id: the app's AgentId; defaults to the connection's.
    :param poll_interval: seconds between polls.
    :param end_time: give up at this UNIX time (absolute, so a triggerer restart does not extend it).
    """

    def __init__(
        self,
        *,
        task_ids: Sequence[int],
        dingtalk_conn_id: str = "dingtalk_default",
        agent_id: int | str | None = None,
        poll_interval: float = 5.0,
        end_time: float,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's signature is untyped
        self.task_ids = [int(t) for t in task_ids]
        self.dingtalk_conn_id = dingtalk_conn_id
        self.agent_id = agent_id
        self.poll_interval = poll_interval
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "task_ids": self.task_ids,
                "dingtalk_conn_id": self.dingtalk_conn_id,
                "agent_id": self.agent_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_dingtalk.exceptions import DingTalkError
        from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook

        hook = DingTalkWorkNotificationHook(dingtalk_conn_id=self.dingtalk_conn_id)
        pending = list(self.task_ids)
        try:
            while True:
                pending = await asyncio.to_thread(still_sending, hook, pending, self.agent_id)
                if not pending:
                    break
                if time.time() >= self.end_time:
                    yield _event({"status": "timeout", "task_ids": self.task_ids, "pending": pending})
                    return
                self.log.info("DingTalk is still sending task(s) %s", pending)
                await asyncio.sleep(self.poll_interval)
            results = await asyncio.to_thread(send_results, hook, self.task_ids, self.agent_id)
        except DingTalkError as exc:
            yield _event({"status": "error", "task_ids": self.task_ids, "message": str(exc)})
            return
        yield _event({"status": "done", "task_ids": self.task_ids, "results": results})


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]  # Airflow's signature is untyped

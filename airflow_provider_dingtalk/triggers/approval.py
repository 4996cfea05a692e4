"""Wait for an OA approval on the triggerer: many approvals of one app share one poller.

The trigger only registers its instance with the app's :class:`.ApprovalPoller` (see
:mod:`.approval_poller` for the request budget and the Stream wake-ups) and waits; serialised, it is
its kwargs (class path, instance id, when it was created, the deadline), so after a triggerer restart
the re-created triggers rebuild the poller and each instance keeps its polling pace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_dingtalk.triggers.approval_poller import PollBudget, shared_poller

if TYPE_CHECKING:
    from airflow_provider_dingtalk.approvals import ApprovalInstance
    from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook

REVOKE_GRACE = (
    15.0  # DingTalk refuses to revoke an instance in its first 15 s ("Revoke an approval instance")
)


def revoke_instance(
    hook: DingTalkApprovalHook,
    instance_id: str,
    *,
    created_at: float,
    remark: str,
    sleep: Callable[[float], None] | None = None,
) -> bool:
    """Revoke a running instance, waiting out DingTalk's first 15 s; whether it was running (and is revoked).

    An instance already decided is left as it is: revoking it is refused, and nothing is lost.
    """
    from airflow_provider_dingtalk.exceptions import DingTalkAPIError

    if hook.get_instance(instance_id).final:
        return False
    young = REVOKE_GRACE - (time.time() - created_at)
    if young > 0:
        (sleep or time.sleep)(young + 1.0)  # DingTalk's clock and ours differ by up to a second
    try:
        hook.terminate_instance(instance_id, remark=remark)
    except DingTalkAPIError as exc:
        if exc.code == "aflowProcessInstStatusException" and hook.get_instance(instance_id).final:
            return False  # decided in the meantime
        raise
    return True


class DingTalkApprovalTrigger(BaseTrigger):
    """Fire once the approval instance is final (``COMPLETED`` or ``TERMINATED``), or at ``end_time``.

    Events: ``{"status": "final", "instance": ApprovalInstance.to_dict()}``;
    ``{"status": "timeout", "instance_id": ...}``;
    ``{"status": "error", "instance_id": ..., "message": ...}``.

    :param instance_id: the approval instance.
    :param created_at: when it was created (UNIX time): older instances are asked about less often.
    :param dingtalk_conn_id: the ``dingtalk`` connection; one poller per connection per triggerer.
    :param end_time: give up at this UNIX time; ``None`` waits as long as it takes.
    :param requests_per_second: the app's poller budget (the first trigger of a connection sets it).
    :param min_interval: seconds between GETs of a young instance.
    :param max_interval: the longest gap between GETs of one instance.
    :param revoke_on_kill: when a user clears or fails the deferred task (Airflow 3.3's trigger
        ``on_kill``), revoke the instance.
    :param use_stream: take wake-ups from the app's ``bpms_instance_change`` events over DingTalk's
        Stream mode, on the connection's shared Stream client in the triggerer; ``None`` (default):
        when ``websockets`` (the ``stream`` extra) is installed there. ``False``: polling only, and no
        Stream connection is opened for this wait.
    :param stream_interval: with Stream, seconds between GETs of an instance whose events arrive
        (the safety net for an event that never comes).
    """

    def __init__(
        self,
        *,
        instance_id: str,
        created_at: float,
        dingtalk_conn_id: str = "dingtalk_default",
        end_time: float | None = None,
        requests_per_second: float = 10.0,
        min_interval: float = 5.0,
        max_interval: float = 300.0,
        revoke_on_kill: bool = True,
        use_stream: bool | None = None,
        stream_interval: float = 300.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's signature is untyped
        self.instance_id = instance_id
        self.created_at = created_at
        self.dingtalk_conn_id = dingtalk_conn_id
        self.end_time = end_time
        self.requests_per_second = requests_per_second
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.revoke_on_kill = revoke_on_kill
        self.use_stream = use_stream
        self.stream_interval = stream_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "instance_id": self.instance_id,
                "created_at": self.created_at,
                "dingtalk_conn_id": self.dingtalk_conn_id,
                "end_time": self.end_time,
                "requests_per_second": self.requests_per_second,
                "min_interval": self.min_interval,
                "max_interval": self.max_interval,
                "revoke_on_kill": self.revoke_on_kill,
                "use_stream": self.use_stream,
                "stream_interval": self.stream_interval,
            },
        )

    def _hook(self) -> DingTalkApprovalHook:
        from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook
        from airflow_provider_dingtalk.retry import RetryPolicy

        # One attempt per GET: the poller schedules the next one, backs off on throttling itself,
        # and must not hold a thread in a hook's backoff sleep.
        return DingTalkApprovalHook(
            dingtalk_conn_id=self.dingtalk_conn_id, retry_policy=RetryPolicy(attempts=1)
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_dingtalk.exceptions import DingTalkError

        def make_get() -> Callable[[str], ApprovalInstance]:
            return self._hook().get_instance

        budget = PollBudget(
            requests_per_second=self.requests_per_second,
            min_interval=self.min_interval,
            max_interval=self.max_interval,
            stream_interval=self.stream_interval,
        )
        poller = shared_poller(self.dingtalk_conn_id, budget, make_get)
        use_stream = _stream_installed() if self.use_stream is None else self.use_stream
        wait = poller.wait(self.instance_id, created_at=self.created_at, use_stream=use_stream)
        try:
            if self.end_time is None:
                instance = await wait
            else:
                instance = await asyncio.wait_for(wait, timeout=max(0.0, self.end_time - time.time()))
        except TimeoutError:
            yield _event({"status": "timeout", "instance_id": self.instance_id})
            return
        except DingTalkError as exc:
            yield _event({"status": "error", "instance_id": self.instance_id, "message": str(exc)})
            return
        yield _event({"status": "final", "instance": instance.to_dict()})

    async def on_kill(self) -> None:
        """The user cleared or failed the deferred task: revoke the instance it waits on."""
        if not self.revoke_on_kill:
            return
        revoked = await asyncio.to_thread(
            revoke_instance,
            self._hook(),
            self.instance_id,
            created_at=self.created_at,
            remark="The Airflow task waiting for this approval was stopped.",
        )
        if revoked:
            self.log.info("Revoked approval %s: its task was stopped.", self.instance_id)


def _stream_installed() -> bool:
    from airflow_provider_dingtalk.stream.client import stream_available

    return stream_available()


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]  # Airflow's signature is untyped

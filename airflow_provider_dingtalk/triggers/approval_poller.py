"""One poller per app in a triggerer process: every open approval of that app, within one request budget.

A thousand approval tasks deferred at once must not mean a thousand GETs every few seconds: DingTalk
throttles per app and API (HTTP 403 ``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi``, limits not
published). So the triggers of one connection register their instance with the same
:class:`ApprovalPoller`, which

* asks ``GET /v1.0/workflow/processInstances`` (the source of truth) for one instance at a time, at
  most ``requests_per_second`` per app, ``concurrency`` in flight;
* asks about each instance less often the longer it has been open (:func:`poll_interval`: its age
  / 10, between ``min_interval`` and ``max_interval``), so an approval open for days costs a GET every
  few minutes;
* on a 403 throttle halves its rate and pauses (1 s, doubling to 60 s), then climbs back;
* resolves every waiter of an instance when it reaches a final state;
* takes wake-ups (:meth:`ApprovalPoller.wake`, :func:`wake_approval`): an event saying an instance
  changed puts it first in the queue, still within the budget. This is the seam for the Stream
  client: a ``bpms_instance_change`` event handled in the triggerer calls ``wake_approval(id)``, and
  polling becomes the slow safety net. No HTTP receiver is involved.

Nothing here survives a triggerer restart, and nothing needs to: the re-created triggers register
again and the poller is rebuilt from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_dingtalk.approvals import ApprovalInstance

log = logging.getLogger(__name__)

MAX_PAUSE = 60.0
WOKEN_AHEAD = 1e9  # seconds: a woken instance sorts before anything scheduled


@dataclass(frozen=True, kw_only=True)
class PollBudget:
    """How hard one app's poller may ask DingTalk.

    :param requests_per_second: GETs per second for all the app's open approvals together.
    :param min_interval: seconds between two GETs of one young instance.
    :param max_interval: the longest gap between two GETs of one instance.
    :param concurrency: GETs in flight at once (each runs in a thread).
    """

    requests_per_second: float = 10.0
    min_interval: float = 5.0
    max_interval: float = 300.0
    concurrency: int = 4


def poll_interval(age: float, budget: PollBudget) -> float:
    """Seconds until the next GET of an instance open for ``age`` seconds."""
    return min(budget.max_interval, max(budget.min_interval, age / 10))


@dataclass
class _Entry:
    created_at: float
    due: float
    waiters: list[asyncio.Future[ApprovalInstance]] = field(default_factory=list)
    in_flight: bool = False
    woken_in_flight: bool = False


class ApprovalPoller:
    """Polls one app's open approvals for every trigger waiting on them in this event loop.

    :param get: ``instance_id -> ApprovalInstance``, blocking (run in a thread); raises on errors.
    :param budget: the request budget.
    :param clock: wall-clock seconds (instances' ages are measured in it).
    """

    def __init__(
        self,
        get: Callable[[str], ApprovalInstance],
        budget: PollBudget,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.budget = budget
        self.requests = 0  # GETs sent, for the benchmark and the logs
        self.throttled = 0  # 403 answers
        self._get = get
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._kick = asyncio.Event()
        self._rate = budget.requests_per_second
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._pause = 1.0
        self._slots = asyncio.Semaphore(budget.concurrency)
        self._runner: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def open_instances(self) -> int:
        return len(self._entries)

    async def wait(self, instance_id: str, *, created_at: float) -> ApprovalInstance:
        """The instance once DingTalk reports it final; a DingTalk error for it is raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ApprovalInstance] = loop.create_future()
        entry = self._entries.get(instance_id)
        if entry is None:
            entry = self._entries[instance_id] = _Entry(created_at=created_at, due=self._clock())
        entry.waiters.append(future)
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run(), name="dingtalk-approval-poller")
        self._kick.set()
        try:
            return await future
        finally:
            if future in entry.waiters:
                entry.waiters.remove(future)
            if not entry.waiters and self._entries.get(instance_id) is entry:
                del self._entries[instance_id]

    def wake(self, instance_id: str) -> bool:
        """Ask about ``instance_id`` next (something says it changed); whether anyone waits on it."""
        entry = self._entries.get(instance_id)
        if entry is None:
            return False
        # Ahead of every instance merely due (under a backlog "due now" would queue behind them all),
        # and woken ones in the order they were woken.
        entry.due = min(entry.due, self._clock() - WOKEN_AHEAD)
        entry.woken_in_flight = entry.in_flight
        self._kick.set()
        return True

    async def _run(self) -> None:
        while self._entries:
            now = self._clock()
            ready = [(e.due, i) for i, e in self._entries.items() if not e.in_flight]
            due, instance_id = min(ready, default=(math.inf, ""))
            start = max(due, self._next_slot, self._paused_until)
            if start > now:
                self._kick.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), timeout=min(start - now, 60.0))
                continue
            await self._slots.acquire()
            entry = self._entries.get(instance_id)
            if entry is None:
                self._slots.release()
                continue
            entry.in_flight = True
            self._next_slot = max(now, self._next_slot) + 1.0 / self._rate
            task = asyncio.get_running_loop().create_task(self._poll(instance_id, entry))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _poll(self, instance_id: str, entry: _Entry) -> None:
        from airflow_provider_dingtalk.exceptions import DingTalkError

        try:
            self.requests += 1
            instance = await asyncio.to_thread(self._get, instance_id)
        except DingTalkError as exc:
            self._failed(instance_id, entry, exc)
        else:
            self._answered(instance_id, entry, instance)
        finally:
            entry.in_flight = False
            self._slots.release()
            self._kick.set()

    def _answered(self, instance_id: str, entry: _Entry, instance: ApprovalInstance) -> None:
        self._pause = 1.0
        self._rate = min(self.budget.requests_per_second, self._rate * 1.1)
        if instance.final:
            for waiter in entry.waiters:
                if not waiter.done():
                    waiter.set_result(instance)
            return
        if instance.status != "RUNNING":
            log.info("Approval %s has status %r, taken as still open", instance_id, instance.status)
        now = self._clock()
        if entry.woken_in_flight:  # the answer may predate the change the wake-up announced: ask again
            entry.woken_in_flight = False
            entry.due = now
        else:
            entry.due = now + poll_interval(now - entry.created_at, self.budget)

    def _failed(self, instance_id: str, entry: _Entry, exc: Exception) -> None:
        from airflow_provider_dingtalk.retry import is_throttled, is_transient

        now = self._clock()
        if is_throttled(exc):
            self.throttled += 1
            self._rate = max(self.budget.requests_per_second / 64, self._rate / 2)
            self._paused_until = now + self._pause
            log.warning(
                "DingTalk throttled approval polling; pausing %.0f s, then %.1f GET/s",
                self._pause,
                self._rate,
            )
            self._pause = min(MAX_PAUSE, self._pause * 2)
            entry.due = now
        elif is_transient(exc):
            log.warning("Polling approval %s got no answer (%s); trying again later", instance_id, exc)
            entry.due = now + self.budget.min_interval
        else:
            for waiter in entry.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ApprovalPoller]] = (
    weakref.WeakKeyDictionary()
)


def shared_poller(
    dingtalk_conn_id: str, budget: PollBudget, make_get: Callable[[], Callable[[str], ApprovalInstance]]
) -> ApprovalPoller:
    """The poller of this event loop (the triggerer's) for the connection; the first trigger's budget wins."""
    pollers = _POLLERS.setdefault(asyncio.get_running_loop(), {})
    if dingtalk_conn_id not in pollers:
        pollers[dingtalk_conn_id] = ApprovalPoller(make_get(), budget)
    return pollers[dingtalk_conn_id]


def wake_approval(instance_id: str, *, dingtalk_conn_id: str | None = None) -> bool:
    """Wake the triggers waiting on ``instance_id`` in this event loop: call it from the triggerer when a
    ``bpms_instance_change`` event arrives (Stream). Whether any trigger waits on it."""
    pollers = _POLLERS.get(asyncio.get_running_loop(), {})
    woken = False
    for conn_id, poller in pollers.items():
        if dingtalk_conn_id in (None, conn_id):
            woken = poller.wake(instance_id) or woken
    return woken

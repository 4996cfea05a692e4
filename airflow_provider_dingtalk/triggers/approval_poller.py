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
  changed puts it first in the queue, still within the budget;
* with Stream mode (DingTalk's "Stream 模式"), listens to the connection's shared Stream client in the
  triggerer (:func:`~airflow_provider_dingtalk.triggers.stream.consume_events`, one more consumer
  beside the Stream triggers): each ``bpms_instance_change`` event wakes its instance, and an
  instance whose events are seen arriving here is asked about only every ``stream_interval`` (the
  safety net for an event that never comes). An instance no event was seen for keeps the normal
  pace, so an app that pushes over HTTP, a console filter rule, or an event DingTalk gave to another
  connection of the app never makes an approval slower than polling alone.

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
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_dingtalk.approvals import ApprovalInstance

log = logging.getLogger(__name__)

MAX_PAUSE = 60.0
WOKEN_AHEAD = 1e9  # seconds: a woken instance sorts before anything scheduled
HEARD = 10_000  # instance ids whose events arrived, kept for triggers that register after them
INSTANCE_EVENT = "bpms_instance_change"
# "type" values of bpms_instance_change that end an instance ("审批实例开始、结束" event page)
ENDED = frozenset({"finish", "terminate", "delete"})

OnEvent = Callable[[Mapping[str, Any]], None]
StreamSource = Callable[[OnEvent], Coroutine[Any, Any, None]]


@dataclass(frozen=True, kw_only=True)
class PollBudget:
    """How hard one app's poller may ask DingTalk.

    :param requests_per_second: GETs per second for all the app's open approvals together.
    :param min_interval: seconds between two GETs of one young instance.
    :param max_interval: the longest gap between two GETs of one instance.
    :param concurrency: GETs in flight at once (each runs in a thread).
    :param stream_interval: the gap between two GETs of an instance whose Stream events arrive here
        (at least the age-based interval).
    """

    requests_per_second: float = 10.0
    min_interval: float = 5.0
    max_interval: float = 300.0
    concurrency: int = 4
    stream_interval: float = 300.0


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
    stream_waiters: int = 0  # waiters that rely on Stream wake-ups
    streamed: bool = False  # a bpms_instance_change event of this instance arrived over Stream
    ended: bool = False  # an event said it ended: until GET agrees, ask at the young pace


class ApprovalPoller:
    """Polls one app's open approvals for every trigger waiting on them in this event loop.

    :param get: ``instance_id -> ApprovalInstance``, blocking (run in a thread); raises on errors.
    :param budget: the request budget.
    :param clock: wall-clock seconds (instances' ages are measured in it).
    :param stream: ``on_event -> awaitable`` that calls ``on_event(payload)`` for each Stream event of
        the app until cancelled (and raises if Stream cannot work); ``None``: polling only.
    """

    def __init__(
        self,
        get: Callable[[str], ApprovalInstance],
        budget: PollBudget,
        *,
        clock: Callable[[], float] = time.time,
        stream: StreamSource | None = None,
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
        self._stream = stream
        self._stream_task: asyncio.Task[None] | None = None
        self._stream_waiters = 0
        self._heard: OrderedDict[str, None] = OrderedDict()
        self.stream_events = 0  # bpms_instance_change events received, for the benchmark and the logs

    @property
    def open_instances(self) -> int:
        return len(self._entries)

    @property
    def stream_live(self) -> bool:
        """Whether the Stream consumer runs (its client connects, reconnects, or is connected)."""
        return self._stream_task is not None and not self._stream_task.done()

    async def wait(
        self, instance_id: str, *, created_at: float, use_stream: bool = False
    ) -> ApprovalInstance:
        """The instance once DingTalk reports it final; a DingTalk error for it is raised here.

        :param use_stream: take wake-ups from the app's Stream events (if the poller has a source).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ApprovalInstance] = loop.create_future()
        entry = self._entries.get(instance_id)
        if entry is None:
            entry = self._entries[instance_id] = _Entry(created_at=created_at, due=self._clock())
        entry.waiters.append(future)
        use_stream = use_stream and self._stream is not None
        if use_stream:
            entry.stream_waiters += 1
            entry.streamed = entry.streamed or instance_id in self._heard
            self._stream_waiters += 1
            self._start_stream()
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
            if use_stream:
                entry.stream_waiters -= 1
                self._stream_waiters -= 1
                if not self._stream_waiters:
                    self._stop_stream()

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

    # -- Stream wake-ups ---------------------------------------------------------------------------

    def on_stream_event(self, event: Mapping[str, Any]) -> None:
        """A Stream event of the app (the flat payload of :func:`.stream_event`): wake its instance.

        Only ``bpms_instance_change``: every decision that ends an instance (the last agree, a
        refuse, a revoke) causes one, so ``bpms_task_change`` would only double the GETs.
        """
        instance_id = event.get("processInstanceId")
        if event.get("EventType") != INSTANCE_EVENT or not isinstance(instance_id, str) or not instance_id:
            return
        self.stream_events += 1
        self._heard[instance_id] = None
        self._heard.move_to_end(instance_id)
        if len(self._heard) > HEARD:
            self._heard.popitem(last=False)
        entry = self._entries.get(instance_id)
        if entry is None:
            return
        entry.streamed = entry.streamed or entry.stream_waiters > 0
        if event.get("type") == "start":
            return  # it is running, which the trigger knows: no GET needed
        entry.ended = entry.ended or event.get("type") in ENDED
        self.wake(instance_id)

    def _start_stream(self) -> None:
        if self.stream_live or self._stream is None:
            return
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._stream(self.on_stream_event), name="dingtalk-approval-stream"
        )
        task.add_done_callback(self._stream_ended)
        self._stream_task = task

    def _stop_stream(self) -> None:
        if self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = None

    def _stream_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        # The client retries what can pass by itself; what ends it (refused credentials, websockets
        # missing) would end a new one too: this poller goes on without Stream.
        exc = task.exception()
        log.warning(
            "DingTalk Stream wake-ups for approvals are off (%s); polling at the normal pace",
            f"{type(exc).__name__}: {exc}" if exc else "the Stream ended",
        )
        self._stream = None
        if self._stream_task is task:
            self._stream_task = None
        for entry in self._entries.values():
            entry.streamed = False
        self._kick.set()

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
            task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._poll(instance_id, entry))
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
        elif entry.ended:  # an event said it ended and GET does not show it yet: soon again
            entry.due = now + self.budget.min_interval
        else:
            interval = poll_interval(now - entry.created_at, self.budget)
            if entry.streamed and self.stream_live:  # its events come here: polling is the safety net
                interval = max(interval, self.budget.stream_interval)
            entry.due = now + interval

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
    """The poller of this event loop (the triggerer's) for the connection; the first trigger's budget wins.

    Its Stream source is the connection's shared Stream client (:mod:`.triggers.stream`), opened once
    a trigger that uses Stream waits, closed when the last one is done.
    """
    pollers = _POLLERS.setdefault(asyncio.get_running_loop(), {})
    if dingtalk_conn_id not in pollers:

        async def stream(on_event: OnEvent) -> None:
            from airflow_provider_dingtalk.triggers.stream import consume_events

            await consume_events(dingtalk_conn_id, on_event)

        pollers[dingtalk_conn_id] = ApprovalPoller(make_get(), budget, stream=stream)
    return pollers[dingtalk_conn_id]


def wake_approval(instance_id: str, *, dingtalk_conn_id: str | None = None) -> bool:
    """Wake the triggers waiting on ``instance_id`` in this event loop: for an event that came another way
    than the poller's own Stream consumer (which wakes by itself). Whether any trigger waits on it."""
    pollers = _POLLERS.get(asyncio.get_running_loop(), {})
    woken = False
    for conn_id, poller in pollers.items():
        if dingtalk_conn_id in (None, conn_id):
            woken = poller.wake(instance_id) or woken
    return woken

"""Pace custom-robot sends so a burst waits instead of getting the robot blocked.

DingTalk accepts 20 messages a minute per robot and blocks the robot for 10 minutes on the 21st
(errcode 130101). Every process that sends through the same robot shares one sliding window of
send times in a :class:`~airflow_provider_dingtalk.state.StateBackend`: by default a small JSON
file per robot under this machine's private state folder (read and rewritten under an
inter-process lock), with Redis one sorted set per robot for the whole cluster, looked at and taken
in one Lua script. The window is named by a hash of the robot's token, so no name holds a secret.

The window is a little wider than DingTalk's minute (``margin``): the time we note a send and the
time DingTalk counts it differ by the network's delay (and, across machines, by their clocks).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_dingtalk.exceptions import DingTalkError
from airflow_provider_dingtalk.retry import jitter
from airflow_provider_dingtalk.state import StateBackend, WindowState

log = logging.getLogger(__name__)

ROBOT_SENDS_PER_MINUTE = 20
ROBOT_BLOCK_SECONDS = 600.0
"""How long DingTalk blocks a robot that sent a 21st message within a minute."""


class RobotBusyError(DingTalkError):
    """The robot has no free send slot before the caller's deadline.

    :param next_slot_at: when (epoch seconds) the robot may send again.
    """

    def __init__(self, next_slot_at: float, *, now: float):
        self.next_slot_at = next_slot_at
        super().__init__(
            f"The custom robot may send again in {max(0.0, next_slot_at - now):.0f} s (DingTalk allows "
            f"{ROBOT_SENDS_PER_MINUTE} messages a minute per robot and blocks it for 10 minutes after that), "
            "which is later than this send may wait. Send fewer messages, or spread them over more robots."
        )


@dataclass(frozen=True)
class PacerStatus:
    """What a robot may send right now.

    :param free: sends allowed now without waiting (0 while blocked).
    :param next_slot_at: epoch seconds when the next send is allowed (``<= now`` if ``free > 0``).
    :param blocked_until: epoch seconds until which DingTalk blocks the robot, if it does.
    """

    free: int
    next_slot_at: float
    blocked_until: float | None


def pacer_key(host: str, token: str) -> str:
    """The state name part for one robot: a hash, so neither the token nor a guessable id is stored."""
    return hashlib.sha256(f"robot\0{host}\0{token}".encode()).hexdigest()[:32]


@dataclass
class RobotPacer:
    """The shared send window of one custom robot.

    :param key: from :func:`pacer_key`.
    :param state: where the window is shared (:func:`~airflow_provider_dingtalk.state.backend_for`).
    :param limit: sends allowed per window.
    :param window: DingTalk's window in seconds.
    :param margin: seconds added to the window to absorb network delay and clock differences.
    :param clock: epoch seconds; tests pass a fake one.
    :param sleep: how to wait; tests pass one that moves the fake clock (and the emulator's).
    """

    key: str
    state: StateBackend
    limit: int = ROBOT_SENDS_PER_MINUTE
    window: float = 60.0
    margin: float = 2.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def status(self) -> PacerStatus:
        """How many sends are free now and when the next slot opens (for folding a backlog into one)."""
        return _status(self._window(take=False))

    def acquire(self, *, deadline: float | None = None) -> float:
        """Wait until a send slot is free and take it.

        :param deadline: epoch seconds after which not to wait; ``None`` waits as long as needed.
        :return: seconds waited.
        :raises RobotBusyError: when the next slot opens after ``deadline`` (nothing is taken).
        """
        waited = 0.0
        while True:
            now = self.clock()
            found = self._window(take=True, now=now)
            if found.taken:
                return waited
            if deadline is not None and found.next_slot_at > deadline:
                raise RobotBusyError(found.next_slot_at, now=now)
            pause = jitter(found.next_slot_at - now)
            if waited == 0.0:
                log.info("Custom robot send budget used up; waiting %.1f s for a free slot.", pause)
            self.sleep(pause)
            waited += pause

    def block(self, seconds: float = ROBOT_BLOCK_SECONDS) -> None:
        """DingTalk answered 130101: no process sends through this robot for ``seconds``."""
        now = self.clock()
        self.state.block(f"robot-{self.key}", now=now, until=now + seconds)

    def _window(self, *, take: bool, now: float | None = None) -> WindowState:
        return self.state.window(
            f"robot-{self.key}",
            now=self.clock() if now is None else now,
            limit=self.limit,
            span=self.window + self.margin,
            take=take,
        )


def _status(found: WindowState) -> PacerStatus:
    return PacerStatus(free=found.free, next_slot_at=found.next_slot_at, blocked_until=found.blocked_until)


def pacer_for(
    host: str,
    token: str,
    *,
    state: StateBackend,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RobotPacer:
    """The pacer of the robot ``token`` at ``host``, shared through ``state``."""
    return RobotPacer(key=pacer_key(host, token), state=state, clock=clock, sleep=sleep)

"""Pace custom-robot sends so a burst waits instead of getting the robot blocked.

DingTalk accepts 20 messages a minute per robot and blocks the robot for 10 minutes on the 21st
(errcode 130101). Every task process on a machine that sends through the same robot shares one
sliding window of send times: a small JSON file per robot under the private state folder, read
and rewritten under an inter-process lock (as the token cache does). The file is named by a hash
of the robot's token, so it holds no secret.

The window is a little wider than DingTalk's minute (``margin``): the time we note a send and the
time DingTalk counts it differ by the network's delay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_dingtalk._filelock import locked, thread_lock, write_private
from airflow_provider_dingtalk.exceptions import DingTalkError
from airflow_provider_dingtalk.retry import jitter

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


@dataclass
class _Window:
    sends: list[float] = field(default_factory=list)
    blocked_until: float = 0.0


# Per-process windows, used when there is no safe state folder to share them through.
_memory: dict[str, _Window] = {}


def pacer_key(host: str, token: str) -> str:
    """The file name part for one robot: a hash, so neither the token nor a guessable id is stored."""
    return hashlib.sha256(f"robot\0{host}\0{token}".encode()).hexdigest()[:32]


@dataclass
class RobotPacer:
    """The shared send window of one custom robot.

    :param key: from :func:`pacer_key`.
    :param directory: folder of the shared file (``state_dir()``), or ``None`` for this process only.
    :param limit: sends allowed per window.
    :param window: DingTalk's window in seconds.
    :param margin: seconds added to the window to absorb network delay and clock differences.
    :param clock: epoch seconds; tests pass a fake one.
    :param sleep: how to wait; tests pass one that moves the fake clock (and the emulator's).
    """

    key: str
    directory: Path | None
    limit: int = ROBOT_SENDS_PER_MINUTE
    window: float = 60.0
    margin: float = 2.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def status(self) -> PacerStatus:
        """How many sends are free now and when the next slot opens (for folding a backlog into one)."""
        with self._state(write=False) as state:
            now = self.clock()
            return self._status(state, now)

    def acquire(self, *, deadline: float | None = None) -> float:
        """Wait until a send slot is free and take it.

        :param deadline: epoch seconds after which not to wait; ``None`` waits as long as needed.
        :return: seconds waited.
        :raises RobotBusyError: when the next slot opens after ``deadline`` (nothing is taken).
        """
        waited = 0.0
        while True:
            with self._state(write=True) as state:
                now = self.clock()
                status = self._status(state, now)
                if status.free > 0:
                    state.sends.append(now)
                    return waited
            if deadline is not None and status.next_slot_at > deadline:
                raise RobotBusyError(status.next_slot_at, now=now)
            pause = jitter(status.next_slot_at - now)
            if waited == 0.0:
                log.info("Custom robot send budget used up; waiting %.1f s for a free slot.", pause)
            self.sleep(pause)
            waited += pause

    def block(self, seconds: float = ROBOT_BLOCK_SECONDS) -> None:
        """DingTalk answered 130101: no process sends through this robot for ``seconds``."""
        with self._state(write=True) as state:
            state.blocked_until = max(state.blocked_until, self.clock() + seconds)

    # -- internals -----------------------------------------------------------------------------

    def _status(self, state: _Window, now: float) -> PacerStatus:
        span = self.window + self.margin
        state.sends = sorted(t for t in state.sends if t > now - span)
        blocked = state.blocked_until if state.blocked_until > now else None
        used = len(state.sends)
        next_slot = now if used < self.limit else state.sends[used - self.limit] + span
        if blocked is not None:
            return PacerStatus(free=0, next_slot_at=max(blocked, next_slot), blocked_until=blocked)
        return PacerStatus(free=max(0, self.limit - used), next_slot_at=next_slot, blocked_until=None)

    @contextmanager
    def _state(self, *, write: bool) -> Iterator[_Window]:
        if self.directory is None:
            with thread_lock(f"robot-{self.key}"):
                yield _memory.setdefault(self.key, _Window())
            return
        path = self.directory / f"robot-{self.key}.json"
        with locked(self.directory / f"robot-{self.key}.lock"):
            state = _read(path)
            yield state
            if write:
                try:
                    write_private(
                        path, json.dumps({"sends": state.sends, "blocked_until": state.blocked_until})
                    )
                except OSError as exc:  # pacing is a courtesy; never fail a send over it
                    log.warning("Could not write the custom robot pacing file: %s", exc)


def _read(path: Path) -> _Window:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _Window(
            sends=[float(t) for t in data["sends"]], blocked_until=float(data.get("blocked_until", 0))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return _Window()  # missing or damaged: start a fresh window


def pacer_for(
    host: str,
    token: str,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RobotPacer:
    """The pacer of the robot ``token`` at ``host``, shared through the private state folder."""
    from airflow_provider_dingtalk._filelock import state_dir

    return RobotPacer(key=pacer_key(host, token), directory=state_dir(), clock=clock, sleep=sleep)

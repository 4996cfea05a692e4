"""Fake time that moves the emulator's clock along, so DingTalk's minutes pass in microseconds.

Give ``clock`` and ``sleep`` to the code under test (the custom-robot hook, its pacer, the webhook
notifier): a wait for the robot's next send slot or for DingTalk's 10-minute block then advances
both clocks at once, and the emulator counts its rate-limit windows in the same time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class _Advancing(Protocol):
    def advance(self, seconds: float) -> None: ...


class EmulatorTime:
    """``clock()`` and ``sleep()`` for the code under test; ``slept`` is the total time waited.

    Thread-safe: many senders may share one (an alert storm from several threads).

    :param emulator: a :class:`DingTalkEmulator` (anything with ``advance(seconds)``).
    """

    def __init__(self, emulator: _Advancing) -> None:
        self.now = time.time()
        self.slept = 0.0
        self._emulator = emulator
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
            self.slept += seconds
            self._emulator.advance(seconds)

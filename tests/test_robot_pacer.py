"""The custom robot's send window: shared through a file, so processes pace each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_dingtalk.robot_pacer import RobotBusyError, RobotPacer, pacer_key
from airflow_provider_dingtalk.state.files import FileBackend


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def take_now(p: RobotPacer, clock: Clock) -> bool:
    """Take a slot only if one is free right now (a deadline of now never waits)."""
    try:
        return p.acquire(deadline=clock.now) == 0.0
    except RobotBusyError:
        return False


def pacer(tmp_path: Path | None, clock: Clock) -> RobotPacer:
    return RobotPacer(
        key=pacer_key("https://oapi.dingtalk.com", "tok"),
        state=FileBackend(tmp_path),
        clock=clock,
        sleep=clock.sleep,
    )


@pytest.mark.parametrize("shared", [True, False])
def test_twenty_free_then_the_next_slot_is_a_minute_later(tmp_path: Path, shared: bool) -> None:
    clock = Clock()
    p = pacer(tmp_path if shared else None, clock)
    assert p.status().free == 20
    for _ in range(20):
        assert take_now(p, clock)
        clock.now += 1
    status = p.status()
    assert status.free == 0 and not take_now(p, clock)
    assert status.next_slot_at == 1_000_000.0 + 62  # first send + window + margin
    waited = p.acquire()
    assert waited >= 62 - 20 and clock.now >= 1_000_062


def test_two_processes_share_one_window(tmp_path: Path) -> None:
    clock = Clock()
    a, b = pacer(tmp_path, clock), pacer(tmp_path, clock)
    for _ in range(10):
        assert take_now(a, clock) and take_now(b, clock)
    assert a.status().free == 0 and b.status().free == 0
    files = list(tmp_path.glob("robot-*.json"))
    assert len(files) == 1 and "tok" not in files[0].read_text()
    assert files[0].stat().st_mode & 0o777 == 0o600


def test_block_stops_everyone_and_acquire_honours_the_deadline(tmp_path: Path) -> None:
    clock = Clock()
    a, b = pacer(tmp_path, clock), pacer(tmp_path, clock)
    a.block(600)
    status = b.status()
    assert status.free == 0 and status.blocked_until == clock.now + 600
    with pytest.raises(RobotBusyError):
        b.acquire(deadline=clock.now + 300)
    assert b.acquire(deadline=clock.now + 700) >= 600
    assert b.status().blocked_until is None and b.status().free == 19


def test_damaged_file_starts_a_fresh_window(tmp_path: Path) -> None:
    clock = Clock()
    p = pacer(tmp_path, clock)
    take_now(p, clock)
    next(tmp_path.glob("robot-*.json")).write_text("{not json")
    assert p.status().free == 20

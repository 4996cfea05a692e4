"""One suite, both backends: what the token cache, the pacer, the spool and the receiver rely on.

Processes are real processes (fork), each with its own backend object, as separate task processes
(or, with Redis, separate machines) have.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from airflow_provider_dingtalk.robot_pacer import RobotBusyError, RobotPacer, pacer_key
from airflow_provider_dingtalk.state import Claim, StateBackend
from airflow_provider_dingtalk.token_cache import TokenCache, cache_key, file_key
from tests.state.conftest import BackendFactory

ROBOT = pacer_key("https://oapi.dingtalk.com", "robot-token")
SECRET = "app-secret-value"


def pacer(state: StateBackend, **kwargs: object) -> RobotPacer:
    return RobotPacer(key=ROBOT, state=state, **kwargs)  # type: ignore[arg-type]


def take_now(p: RobotPacer) -> bool:
    try:
        return p.acquire(deadline=p.clock()) == 0.0
    except RobotBusyError:
        return False


# -- the send window --------------------------------------------------------------------------------


def test_twenty_a_minute_then_the_next_slot(new_backend: BackendFactory) -> None:
    now = [1_000_000.0]
    p = pacer(new_backend(), clock=lambda: now[0])
    assert p.status().free == 20
    for _ in range(20):
        assert take_now(p)
        now[0] += 1
    assert not take_now(p)
    status = p.status()
    assert status.free == 0 and status.next_slot_at == 1_000_000.0 + 62  # first send + 60 s + margin
    now[0] = 1_000_062.0
    assert take_now(p)


def _hammer(make: BackendFactory, span: float, until: float, out: multiprocessing.Queue[list[float]]) -> None:
    # The margin absorbs what it does in production: the time noted before the window's lock or
    # script and the time the slot is taken differ by that wait.
    p = pacer(make(), window=span, margin=0.1)
    taken = []
    while time.time() < until:
        now = time.time()
        p.clock = lambda now=now: now  # the time the slot is taken at is the time noted
        if take_now(p):
            taken.append(now)
        time.sleep(0.002)
    out.put(taken)


def test_many_processes_never_take_more_than_the_limit_in_any_window(new_backend: BackendFactory) -> None:
    # DingTalk's 20 a minute, with a 1.5 s window so the test takes seconds: the same atomicity.
    span, ctx = 1.5, multiprocessing.get_context("fork")
    out: multiprocessing.Queue[list[float]] = ctx.Queue()
    until = time.time() + 3 * span
    procs = [ctx.Process(target=_hammer, args=(new_backend, span, until, out)) for _ in range(6)]
    for proc in procs:
        proc.start()
    taken = sorted(t for _ in procs for t in out.get(timeout=60))
    for proc in procs:
        proc.join(timeout=30)
    assert len(taken) >= 40  # they did contend: three windows' worth were taken
    worst = max(sum(1 for t in taken if start <= t < start + span) for start in taken)
    assert worst <= 20


def test_a_block_set_by_one_process_stops_the_others(new_backend: BackendFactory) -> None:
    now = [1_000_000.0]
    one, other = pacer(new_backend(), clock=lambda: now[0]), pacer(new_backend(), clock=lambda: now[0])
    one.block(600)
    status = other.status()
    assert status.free == 0 and status.blocked_until == 1_000_600.0
    assert not take_now(other)
    with pytest.raises(RobotBusyError):
        other.acquire(deadline=now[0] + 599)
    one.block(10)  # a shorter block later does not shorten it
    assert other.status().blocked_until == 1_000_600.0
    now[0] = 1_000_600.5
    assert take_now(other)


# -- tokens -------------------------------------------------------------------------------------------


def _token(
    make: BackendFactory, start: float, fetches: multiprocessing.Queue[str], out: multiprocessing.Queue[str]
) -> None:
    from airflow_provider_dingtalk import token_cache

    token_cache._memory.clear()  # a new process
    cache = TokenCache(
        key=cache_key("h", "oapi", "app", SECRET), state=make(), encryption_key=file_key(SECRET)
    )
    while time.time() < start:
        time.sleep(0.001)

    def fetch() -> tuple[str, object]:
        fetches.put("fetched")
        time.sleep(0.3)  # gettoken's round trip: the others arrive meanwhile
        return "the-token", 7200

    out.put(cache.get(fetch))


def test_processes_starting_together_fetch_one_token(new_backend: BackendFactory) -> None:
    from airflow_provider_dingtalk._redact import mask_secret

    mask_secret("warm-up")  # loads Airflow's masker before forking, as a worker has it loaded
    ctx = multiprocessing.get_context("fork")
    fetches: multiprocessing.Queue[str] = ctx.Queue()
    out: multiprocessing.Queue[str] = ctx.Queue()
    start = time.time() + 0.5
    procs = [ctx.Process(target=_token, args=(new_backend, start, fetches, out)) for _ in range(8)]
    for proc in procs:
        proc.start()
    tokens = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert tokens == ["the-token"] * 8
    assert fetches.qsize() == 1


def test_the_shared_token_is_sealed_and_its_name_holds_no_secret(new_backend: BackendFactory) -> None:
    state = new_backend()
    key = cache_key("h", "oapi", "app", SECRET)
    cache = TokenCache(key=key, state=state, encryption_key=file_key(SECRET))
    cache.get(lambda: ("plain-token-value", 7200))
    sealed = state.get_blob(f"token-{key}")
    assert sealed and "plain-token-value" not in sealed and SECRET not in sealed
    other = TokenCache(key=key, state=state, encryption_key=file_key("another-secret"))
    from airflow_provider_dingtalk import token_cache

    token_cache._memory.clear()
    assert other.get(lambda: ("refetched", 7200)) == "refetched"  # not opened under another key
    other.invalidate("refetched")
    assert state.get_blob(f"token-{key}") is None


# -- the spool and the event record ------------------------------------------------------------------


def test_spool_items_come_back_in_order_until_removed(new_backend: BackendFactory) -> None:
    a, b = new_backend(), new_backend()
    a.spool_add("alerts-x", "00000000000000000002-1-b", '{"n": 2}', ttl=60)
    b.spool_add("alerts-x", "00000000000000000001-2-a", '{"n": 1}', ttl=60)
    assert [item for item, _ in a.spool_items("alerts-x")] == [
        "00000000000000000001-2-a",
        "00000000000000000002-1-b",
    ]
    assert b.spool_has("alerts-x", "00000000000000000002-1-b")
    b.spool_remove("alerts-x", "00000000000000000002-1-b")
    b.spool_remove("alerts-x", "00000000000000000002-1-b")  # twice: no error
    assert not a.spool_has("alerts-x", "00000000000000000002-1-b")
    assert a.spool_items("alerts-x") == [("00000000000000000001-2-a", '{"n": 1}')]


def test_event_claims_as_the_receiver_needs_them(new_backend: BackendFactory) -> None:
    now = [0.0]
    one = new_backend().event_store(lease=300, clock=lambda: now[0])
    two = new_backend().event_store(lease=300, clock=lambda: now[0])
    assert one.claim("k") is Claim.NEW
    assert two.claim("k") is Claim.PENDING  # the first delivery is still writing
    now[0] = 301.0  # ... or its process died: the event must not be blocked for ever
    assert two.claim("k") is Claim.NEW
    two.release("k")
    assert one.claim("k") is Claim.NEW
    assert not two.is_done("k")
    one.finish("k")
    one.release("k")  # a late release of a finished event changes nothing
    assert two.claim("k") is Claim.DONE and two.is_done("k")


def test_locks_exclude_other_processes(new_backend: BackendFactory, tmp_path: Path) -> None:
    a, b = new_backend(), new_backend()
    with a.lock("token-x", lease=30, wait=1):
        if b.kind == "redis":  # a holder elsewhere can stall: a waiter gives up after `wait`
            started = time.monotonic()
            with pytest.raises(TimeoutError), b.lock("token-x", lease=30, wait=0.3):
                pass
            assert time.monotonic() - started < 2
    with b.lock("token-x", lease=30, wait=1):
        pass  # released

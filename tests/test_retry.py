"""RetryPolicy.call: attempts, waits and the elapsed-time bound, one code path for every attempt."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkAPIError
from airflow_provider_dingtalk.retry import DingTalkTransportError, RetryPolicy


class FakeTime:
    """A monotonic clock that only the retry's sleep moves (only time is faked)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    clock = FakeTime()
    monkeypatch.setattr("time.monotonic", clock.monotonic)
    return clock


def failing(times: int, exc: BaseException) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "ok"

    return calls, fn


def test_success_at_once_calls_once_and_never_waits(fake: FakeTime) -> None:
    calls, fn = failing(0, DingTalkTransportError("reset"))
    assert RetryPolicy(sleep=fake.sleep).call(fn) == "ok"
    assert len(calls) == 1 and fake.waits == []


def test_transient_failures_are_retried_with_bounded_exponential_waits(fake: FakeTime) -> None:
    policy = RetryPolicy(attempts=5, initial_wait=0.5, max_wait=8.0, sleep=fake.sleep)
    calls, fn = failing(4, DingTalkTransportError("reset"))
    assert policy.call(fn) == "ok"
    assert len(calls) == 5
    # Full jitter: wait n is uniform in [0, min(max_wait, initial_wait * 2**n)].
    assert len(fake.waits) == 4
    for n, wait in enumerate(fake.waits):
        assert 0 <= wait <= min(8.0, 0.5 * 2**n), (n, wait)


def test_attempts_bound_raises_the_last_failure(fake: FakeTime) -> None:
    error = DingTalkAPIError(errcode=90018, errmsg="rate limited")
    calls, fn = failing(10, error)
    with pytest.raises(DingTalkAPIError) as raised:
        RetryPolicy(attempts=3, sleep=fake.sleep).call(fn)
    assert raised.value is error and len(calls) == 3 and len(fake.waits) == 2


def test_elapsed_bound_counts_from_the_first_attempt(fake: FakeTime) -> None:
    def slow_failure() -> str:
        fake.now += 25  # each attempt takes 25 s (e.g. a read timeout)
        raise DingTalkTransportError("read timeout")

    policy = RetryPolicy(attempts=10, initial_wait=0.01, max_wait=0.01, max_elapsed=60, sleep=fake.sleep)
    with pytest.raises(DingTalkTransportError):
        policy.call(slow_failure)
    # Attempts end at ~25, ~50, ~75 s after the first started: the third is past 60 s, so no fourth.
    assert len(fake.waits) == 2


def test_non_transient_error_is_raised_at_once(fake: FakeTime) -> None:
    error = DingTalkAPIError(errcode=40078, errmsg="bad parameter")
    calls, fn = failing(1, error)
    with pytest.raises(DingTalkAPIError) as raised:
        RetryPolicy(sleep=fake.sleep).call(fn)
    assert raised.value is error and len(calls) == 1 and fake.waits == []


def test_one_policy_serves_nested_and_concurrent_calls() -> None:
    policy = RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.002)
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(name: str, inner: bool) -> str:
        with lock:
            counts[name] = counts.get(name, 0) + 1
            first = counts[name] == 1
        if inner:  # a call through the same policy inside an attempt, e.g. a token refresh
            assert policy.call(lambda: flaky(name + "/inner", False)) == "ok"
        if first:
            raise DingTalkTransportError("reset")
        return "ok"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(policy.call(lambda: flaky(f"t{i}", True))))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["ok"] * 8
    # Each outer call: 2 attempts; each inner one: 2 attempts per outer attempt.
    assert all(counts[f"t{i}"] == 2 and counts[f"t{i}/inner"] == 3 for i in range(8)), counts


def test_a_copied_policy_still_retries(fake: FakeTime) -> None:
    # Airflow deep-copies operators and notifiers (and the policy they hold) after the policy was used.
    policy = RetryPolicy(attempts=2, sleep=fake.sleep)
    policy.call(lambda: "warm")
    calls, fn = failing(1, DingTalkTransportError("reset"))
    assert copy.deepcopy(policy).call(fn) == "ok"
    assert len(calls) == 2

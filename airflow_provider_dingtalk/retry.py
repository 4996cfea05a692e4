"""The provider's retry policy, in one place (the docs' retry table describes this module).

+----------------------------------+------------------------------------+----------------------------+
| failure                          | what happens                       | bound                      |
+==================================+====================================+============================+
| connection error, reset, read    | retried with exponential backoff + | ``attempts`` tries and     |
| timeout, HTTP 502/503/504,       | jitter (0.5 s doubling, at most 8  | ``max_elapsed`` seconds in |
| errcode -1 (busy), rate limits   | s a wait)                          | all, whichever first       |
| 45009, 90002, 90018, 90019       |                                    |                            |
| (incl. as 88 sub_code), the      |                                    |                            |
| gateway's per-IP block body      |                                    |                            |
| (``{"status":1111,"wait":…}``);  |                                    |                            |
| v1.0 HTTP 403 ``Forbidden.Access |                                    |                            |
| Denied.Qps/QpmLimit…`` throttling|                                    |                            |
+----------------------------------+------------------------------------+----------------------------+
| token rejected (33001, 40001,    | token dropped from every cache,    | once; a second rejection   |
| 40014, 42001; v1.0 HTTP 401 or   | call repeated with a fresh token   | raises                     |
| InvalidAuthentication)           |                                    |                            |
+----------------------------------+------------------------------------+----------------------------+
| custom robot 130101 (more than   | every sender on the machine waits  | the hook's ``max_wait``    |
| 20 messages a minute; DingTalk   | out the robot's 10-minute block    | (default 900 s; a          |
| blocks the robot 10 minutes)     | (shared window), then sends again  | notifier's ``timeout``),   |
|                                  |                                    | else ``RobotBusyError``    |
+----------------------------------+------------------------------------+----------------------------+
| answer lost after DingTalk acted | retried like any connection error; | as transient failures      |
| (read timeout, reset mid-answer) | what the repeat does depends on    |                            |
|                                  | the API: work notification: shown  |                            |
|                                  | once (143106 in getsendresult);    |                            |
|                                  | custom robot: once (``msgUuid``);  |                            |
|                                  | app robot: **shown twice**;        |                            |
|                                  | register/delete callback: done     |                            |
|                                  | once, the retry's 71006/71007 is   |                            |
|                                  | taken as success; upload: an       |                            |
|                                  | unused extra media id; failed      |                            |
|                                  | callback events: that page is gone |                            |
+----------------------------------+------------------------------------+----------------------------+
| anything else (bad credentials,  | raised at once with a hint saying  | no retry                   |
| permissions, bad parameters; an  | what to fix                        |                            |
| answer that is not a DingTalk    |                                    |                            |
| result: no errcode, a JSON 404)  |                                    |                            |
+----------------------------------+------------------------------------+----------------------------+

An errcode in an HTTP 200 answer is an error on both API families, never a success. The docs'
"What a lost answer means, per API" section explains the lost-answer row; ``tests/hardening/
test_faults.py`` checks every row against every hook method and notifier.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkError

if TYPE_CHECKING:
    import tenacity

T = TypeVar("T")

TRANSIENT_ERRCODES = frozenset({-1, 45009, 90002, 90018, 90019})
TOKEN_ERRCODES = frozenset({33001, 40001, 40014, 42001})
TRANSIENT_HTTP_STATUS = frozenset({502, 503, 504})
TOKEN_V1_CODES = frozenset({"InvalidAuthentication"})
# The code given to the gateway's per-IP block body ({"status":1111,"wait":5,...}), which has no errcode.
IP_BLOCKED = "IPBlocked"
# v1.0 throttling, HTTP 403 (DingTalk's global error-code page, "服务端API错误码"): per app and API, per API.
THROTTLE_V1_CODES = frozenset(
    {
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
        "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi",
        "Forbidden.AccessDenied.QpsLimitForApi",
    }
)


class DingTalkTransportError(DingTalkError):
    """The request did not get an answer (connection refused/reset, timeout, HTTP 5xx). Redacted text."""

    def __init__(self, message: str, *, http_status: int | None = None):
        self.http_status = http_status
        super().__init__(message)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DingTalkTransportError):
        return exc.http_status is None or exc.http_status in TRANSIENT_HTTP_STATUS
    if isinstance(exc, DingTalkAPIError):
        return (
            exc.errcode in TRANSIENT_ERRCODES
            or (exc.errcode is None and exc.code == IP_BLOCKED)
            or is_throttled(exc)
        )
    return False


def is_throttled(exc: BaseException) -> bool:
    """DingTalk's v1.0 gateway refused the call for exceeding a per-app or per-API rate."""
    return isinstance(exc, DingTalkAPIError) and exc.http_status == 403 and exc.code in THROTTLE_V1_CODES


def is_token_error(exc: BaseException) -> bool:
    if not isinstance(exc, DingTalkAPIError):
        return False
    if exc.errcode is not None:
        return exc.errcode in TOKEN_ERRCODES
    return exc.http_status == 401 or exc.code in TOKEN_V1_CODES


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter for transient failures."""

    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 8.0
    max_elapsed: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    @cached_property
    def _retrying(self) -> tenacity.Retrying:
        # Built once per policy, not per call: building it was 4 of the 11 µs tenacity added to each
        # call. One object serves every call, thread and nested call: tenacity keeps a call's state in
        # its RetryCallState and in a thread-local it resets at each step, and the policy is frozen.
        import tenacity

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_transient),
            stop=tenacity.stop_after_attempt(self.attempts) | tenacity.stop_after_delay(self.max_elapsed),
            wait=tenacity.wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait),
            sleep=self.sleep,
            reraise=True,
        )

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` until it succeeds, raises a non-transient error, or a bound is reached.

        :raises: what ``fn`` raised last.
        """
        return self._retrying(fn)


def jitter(seconds: float) -> float:
    """A little randomness so processes that wait together don't wake together."""
    return seconds + random.uniform(0, min(1.0, seconds / 10))

"""Fault injection: every hook method and notifier that talks to DingTalk, against every failure the
retry policy (``airflow_provider_dingtalk.retry``) names, over real HTTP to the emulator.

For each (operation, fault) pair the test asserts what the policy promises: the call is retried and
succeeds within a bounded time, or it fails with a clear error; and the emulator's inbox (or, for
operations that deliver nothing, DingTalk's stored state) shows the effect exactly once. Where a
lost answer makes a repeat possible the test asserts exactly what happens, as the docs' "What a lost
answer means, per API" section says.

Pairs that do not exist are not generated (never skipped): custom robots have no access token, and
``gettoken`` is what the token faults are about; errcode 130101 is the custom robot's alone.

The session's emulator (``tests/conftest.py``) serves every test, emptied before each. Time is faked
only where the robot's 10-minute block would otherwise be waited out.
"""

from __future__ import annotations

import json
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkError
from airflow_provider_dingtalk.hooks.app_robot import GROUP_SEND_PATH, OTO_SEND_PATH, DingTalkAppRobotHook
from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook
from airflow_provider_dingtalk.hooks.callback import DingTalkCallbackHook
from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
from airflow_provider_dingtalk.hooks.work_notification import (
    MEDIA_UPLOAD_PATH,
    PROGRESS_PATH,
    RECALL_PATH,
    RESULT_PATH,
    SEND_PATH,
    STATUS_BAR_PATH,
    DingTalkWorkNotificationHook,
)
from airflow_provider_dingtalk.messages import OA, Text
from airflow_provider_dingtalk.notifications import (
    DingTalkAppRobotNotifier,
    DingTalkCustomRobotNotifier,
    DingTalkNotifier,
)
from airflow_provider_dingtalk.retry import DingTalkTransportError, RetryPolicy
from airflow_provider_dingtalk.robot_pacer import RobotBusyError
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator, EmulatorTime
from airflow_provider_dingtalk.testing.emulator.endpoints.media import media
from airflow_provider_dingtalk.testing.emulator.endpoints.work_notification import work_notifications
from tests.helpers import FAST, Logs, fake_context

READ_TIMEOUT = 0.3  # for the read-timeout faults only; other tests wait up to CALM_READ_TIMEOUT
CALM_READ_TIMEOUT = 5.0  # so a busy CI machine never turns a slow answer into a lost one
SLOW_READ_TIMEOUT = 0.8  # register/update wait for the check_url handshake DingTalk makes first
REGISTER = "/call_back/register_call_back"
UPDATE = "/call_back/update_call_back"
GET_CB = "/call_back/get_call_back"
DELETE_CB = "/call_back/delete_call_back"
FAILED_CB = "/call_back/get_call_back_failed_result"
TAGS = ["bpms_instance_change"]

H = TypeVar("H", bound=DingTalkBaseHook)


@dataclass
class Env:
    """One test's world: the emulator, connections pointing at it, and what set-up made."""

    em: DingTalkEmulator
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    read_timeout: float = CALM_READ_TIMEOUT
    data: dict[str, Any] = field(default_factory=dict)
    hooks: dict[type[DingTalkBaseHook], DingTalkBaseHook] = field(default_factory=dict)

    def connect(self, url: str | None = None, *, read_timeout: float | None = None) -> None:
        """Point both default connections at ``url`` (default the emulator); hooks made after see it."""
        self.read_timeout = read_timeout or self.read_timeout
        conn = self.em.connection(connect_timeout=1, read_timeout=self.read_timeout)
        robot = self.em.add_robot()
        webhook = {
            "conn_type": "dingtalkcustomrobot",
            "host": url or self.em.url,
            "password": robot.token,
            "extra": {"secret": robot.secret, "connect_timeout": 1, "read_timeout": self.read_timeout},
        }
        if url:
            conn["host"] = url
            conn["extra"]["api_host"] = url
        self.monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_DEFAULT", json.dumps(conn))
        self.monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT", json.dumps(webhook))
        self.hooks.clear()

    def _hook(self, cls: type[H]) -> H:
        """One hook of each kind per connection set-up, as a task would hold it."""
        if cls not in self.hooks:
            self.hooks[cls] = cls(retry_policy=self.policy)
        return self.hooks[cls]  # type: ignore[return-value]

    @property
    def base(self) -> DingTalkBaseHook:
        return self._hook(DingTalkBaseHook)

    @property
    def work(self) -> DingTalkWorkNotificationHook:
        return self._hook(DingTalkWorkNotificationHook)

    @property
    def app_robot(self) -> DingTalkAppRobotHook:
        return self._hook(DingTalkAppRobotHook)

    @property
    def callbacks(self) -> DingTalkCallbackHook:
        return self._hook(DingTalkCallbackHook)

    policy: RetryPolicy = FAST

    def custom_robot(self, **kwargs: Any) -> DingTalkCustomRobotHook:
        return DingTalkCustomRobotHook(retry_policy=self.policy, **kwargs)

    def inbox(self, channel: str) -> list[Any]:
        return self.em.inbox(channel)


@pytest.fixture
def env(dingtalk_emulator: DingTalkEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    world = Env(em=dingtalk_emulator, tmp=tmp_path, monkeypatch=monkeypatch)
    world.connect()
    return world


# -- the operations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One call that talks to DingTalk.

    :param path: where faults are injected (the call's own request, never the token's unless it is one).
    :param family: ``oapi`` / ``api`` (token faults apply), ``token`` or ``robot`` (they do not).
    :param run: the call under test.
    :param check: asserts the effect happened exactly as expected; ``lost`` says whether a lost answer
        (reset after handling, or a read timeout) made DingTalk see the request twice.
    :param setup: what must exist first (a sent task, a registered callback).
    :param notifier: a notifier: it never raises, so failures are asserted from the log.
    """

    name: str
    path: str
    family: str
    run: Callable[[Env], Any]
    check: Callable[[Env, Any, bool], object]
    setup: Callable[[Env], None] = lambda env: None
    read_timeout: float = READ_TIMEOUT
    notifier: bool = False
    # The check_url handshake is stamped with DingTalk's clock and the receiver checks it against real
    # time, so moving DingTalk's clock 2 hours breaks the handshake: those ops get "token revoked" only.
    moves_clock: bool = True


def _send_setup(env: Env) -> None:
    env.data["task"] = env.work.send_work_notification(Text(content="set-up"), userid_list=["user1"])[0]


def _oa_setup(env: Env) -> None:
    message = OA(message_url="https://example.com", head_text="ETL", status_value="Running")
    env.data["task"] = env.work.send_work_notification(message, userid_list=["user1"])[0]


def _register_setup(env: Env) -> None:
    receiver = env.em.receiver
    env.data["callback"] = {"url": receiver.url, "token": receiver.token, "aes_key": receiver.aes_key}
    env.callbacks.register_callback(call_back_tags=TAGS, **env.data["callback"])


def _failed_events_setup(env: Env) -> None:
    from airflow_provider_dingtalk.testing.emulator.endpoints.callback import _callbacks

    # Events the receiver did not take, as DingTalk keeps them (pushing them for real needs a dead URL).
    items = [{"call_back_tag": "bpms_instance_change", "event_time": i, "corpid": "c"} for i in range(3)]
    _callbacks(env.em.state).failed[env.em.app.corp_id] = deque(items)


def _callback_kwargs(env: Env) -> dict[str, Any]:
    receiver = env.em.receiver
    return {"call_back_tags": TAGS, "url": receiver.url, "token": receiver.token, "aes_key": receiver.aes_key}


def _registered(env: Env) -> dict[str, Any]:
    return DingTalkCallbackHook(retry_policy=FAST).get_callback()


def _check_work_notification(env: Env, task_ids: list[int], lost: bool) -> None:
    assert [d.target for d in env.inbox("work_notification")] == ["user1"]
    tasks = work_notifications(env.em.state).tasks
    if lost:
        # DingTalk saw the send twice: one task delivered it, the repeat was filtered as the same
        # content to the same user that day (143106), and getsendresult says so.
        assert sorted(len(t.delivered) for t in tasks.values()) == [0, 1]
        repeat = next(tid for tid, t in tasks.items() if not t.delivered)
        forbidden = DingTalkWorkNotificationHook(retry_policy=FAST).get_send_result(repeat).forbidden_list
        assert [(f.userid, f.code) for f in forbidden] == [("user1", "143106")]
    else:
        assert list(tasks) == task_ids
    assert task_ids[0] in tasks


def _check_group(channel: str, per_send: int) -> Callable[[Env, Any, bool], None]:
    def check(env: Env, result: Any, lost: bool) -> None:
        # The v1.0 robot APIs have no idempotency key: a repeat after a lost answer shows twice.
        assert len(env.inbox(channel)) == per_send * (2 if lost else 1)

    return check


def _check_webhook(env: Env, result: Any, lost: bool) -> None:
    # msgUuid: DingTalk shows a repeated custom-robot message once, lost answer or not.
    assert len(env.inbox("custom_robot")) == 1


def _check_upload(env: Env, media_id: str, lost: bool) -> None:
    uploads = media(env.em.state).uploads
    assert media_id in uploads
    assert len(uploads) == (2 if lost else 1)  # a repeat leaves an unused upload, nothing visible


def _upload(env: Env) -> str:
    path = env.tmp / "chart.png"
    path.write_bytes(b"\x89PNG fake")
    return env.work.upload_media(path, "image")


def _check_failed_events(env: Env, items: list[dict[str, Any]], lost: bool) -> None:
    # DingTalk removes what it returns: an answer lost after it was sent takes its page with it.
    requests = env.em.requests(FAILED_CB)
    page_lost = any(r.status == 200 and r.response and r.response.get("failed_list") for r in requests[:-1])
    assert len(items) == (0 if page_lost else 3)


def _webhook_notifier() -> DingTalkCustomRobotNotifier:
    return DingTalkCustomRobotNotifier(retry_policy=FAST, timeout=20)


OPS: list[Op] = [
    Op(
        "get_access_token",
        "/gettoken",
        "token",
        run=lambda env: env.base.get_access_token(),
        check=lambda env, token, lost: env.em.state.app_for_token(token, families=("oapi",)) is not None,
    ),
    Op(
        "get_api_access_token",
        "/v1.0/oauth2/accessToken",
        "token",
        run=lambda env: env.base.get_api_access_token(),
        check=lambda env, token, lost: env.em.state.app_for_token(token, families=("api",)) is not None,
    ),
    Op(
        "call_oapi",
        "/topapi/v2/user/get",
        "oapi",
        run=lambda env: env.base.call_oapi("POST", "/topapi/v2/user/get", json={"userid": "user1"}),
        check=lambda env, body, lost: body["result"]["userid"] == "user1",
    ),
    Op(
        "call_api",
        GROUP_SEND_PATH,
        "api",
        run=lambda env: env.base.call_api(
            "POST",
            GROUP_SEND_PATH,
            json={
                "robotCode": env.em.app.app_key,
                "openConversationId": "cidOps",
                "msgKey": "sampleText",
                "msgParam": '{"content":"raw"}',
            },
        ),
        check=_check_group("app_robot_group", 1),
    ),
    Op(
        "send_work_notification",
        SEND_PATH,
        "oapi",
        run=lambda env: env.work.send_work_notification(Text(content="load failed"), userid_list=["user1"]),
        check=_check_work_notification,
    ),
    Op(
        "get_send_progress",
        PROGRESS_PATH,
        "oapi",
        setup=_send_setup,
        run=lambda env: env.work.get_send_progress(env.data["task"]),
        check=lambda env, progress, lost: progress.status in (1, 2),
    ),
    Op(
        "get_send_result",
        RESULT_PATH,
        "oapi",
        setup=_send_setup,
        run=lambda env: env.work.get_send_result(env.data["task"]),
        check=lambda env, result, lost: result.unread_user_id_list == ["user1"],
    ),
    Op(
        "recall",
        RECALL_PATH,
        "oapi",
        setup=_send_setup,
        run=lambda env: env.work.recall(env.data["task"]),
        check=lambda env, _, lost: work_notifications(env.em.state).tasks[env.data["task"]].recalled,
    ),
    Op(
        "update_status_bar",
        STATUS_BAR_PATH,
        "oapi",
        setup=_oa_setup,
        run=lambda env: env.work.update_status_bar(env.data["task"], "Done", "0xFF00AA00"),
        check=lambda env, _, lost: (
            work_notifications(env.em.state).tasks[env.data["task"]].status_bar
            == {"status_value": "Done", "status_bg": "0xFF00AA00"}
        ),
    ),
    Op("upload_media", MEDIA_UPLOAD_PATH, "oapi", run=_upload, check=_check_upload),
    Op(
        "send_robot_group_message",
        GROUP_SEND_PATH,
        "api",
        run=lambda env: env.app_robot.send_robot_group_message(
            Text(content="hi"), open_conversation_id="cidOps"
        ),
        check=_check_group("app_robot_group", 1),
    ),
    Op(
        "send_robot_direct_message",
        OTO_SEND_PATH,
        "api",
        run=lambda env: env.app_robot.send_robot_direct_message(
            Text(content="hi"), user_ids=["user1", "user2"]
        ),
        check=_check_group("app_robot_oto", 2),
    ),
    Op(
        "register_callback",
        REGISTER,
        "oapi",
        read_timeout=SLOW_READ_TIMEOUT,
        moves_clock=False,
        run=lambda env: env.callbacks.register_callback(**_callback_kwargs(env)),
        check=lambda env, _, lost: _registered(env)["url"] == env.em.receiver.url,
    ),
    Op(
        "update_callback",
        UPDATE,
        "oapi",
        read_timeout=SLOW_READ_TIMEOUT,
        moves_clock=False,
        setup=_register_setup,
        run=lambda env: env.callbacks.update_callback(
            **{**_callback_kwargs(env), "call_back_tags": [*TAGS, "user_add_org"]}
        ),
        check=lambda env, _, lost: _registered(env)["call_back_tag"] == [*TAGS, "user_add_org"],
    ),
    Op(
        "get_callback",
        GET_CB,
        "oapi",
        setup=_register_setup,
        run=lambda env: env.callbacks.get_callback(),
        check=lambda env, shown, lost: shown["token"] == "***" and shown["call_back_tag"] == TAGS,
    ),
    Op(
        "delete_callback",
        DELETE_CB,
        "oapi",
        setup=_register_setup,
        run=lambda env: env.callbacks.delete_callback(),
        check=lambda env, _, lost: _callback_gone(env),
    ),
    Op(
        "get_callback_failed_results",
        FAILED_CB,
        "oapi",
        setup=_failed_events_setup,
        run=lambda env: env.callbacks.get_callback_failed_results(),
        check=_check_failed_events,
    ),
    Op(
        "DingTalkCustomRobotHook.send",
        "/robot/send",
        "robot",
        run=lambda env: env.custom_robot().send(Text(content="deploy done")),
        check=_check_webhook,
    ),
    Op(
        "DingTalkNotifier",
        SEND_PATH,
        "oapi",
        notifier=True,
        run=lambda env: DingTalkNotifier(userid_list=["user1"], retry_policy=FAST, timeout=20)(
            fake_context()
        ),
        check=lambda env, _, lost: [d.target for d in env.inbox("work_notification")] == ["user1"],
    ),
    Op(
        "DingTalkAppRobotNotifier",
        GROUP_SEND_PATH,
        "api",
        notifier=True,
        run=lambda env: DingTalkAppRobotNotifier(
            open_conversation_id="cidOps", retry_policy=FAST, timeout=20
        )(fake_context()),
        check=_check_group("app_robot_group", 1),
    ),
    Op(
        "DingTalkCustomRobotNotifier",
        "/robot/send",
        "robot",
        notifier=True,
        run=lambda env: _webhook_notifier()(fake_context()),
        check=_check_webhook,
    ),
]


def _callback_gone(env: Env) -> bool:
    with pytest.raises(DingTalkAPIError) as info:
        _registered(env)
    return info.value.errcode == 71007


# -- the faults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """A failure, as emulator faults (``inject``) or as something done to the tokens first.

    :param lost: the request was handled but its answer never arrived (a repeat is possible).
    :param families: the operation families it applies to.
    """

    name: str
    inject: dict[str, Any] = field(default_factory=dict)
    lost: bool = False
    families: tuple[str, ...] = ("oapi", "api", "token", "robot")
    tokens: str | None = None  # "advance" (expired by DingTalk's clock) or "expire" (revoked)

    @property
    def slow(self) -> bool:
        return "delay" in self.inject


INVALID_AUTH = {"code": "InvalidAuthentication", "requestid": "r", "message": "不合法的access_token"}
FAULTS: list[Fault] = [
    Fault("errcode -1 (busy)", {"errcode": -1}),
    Fault("errcode 90002", {"errcode": 90002}),
    Fault("errcode 88 sub_code 90002", {"errcode": 88, "sub_code": 90002}),
    Fault("errcode 90018", {"errcode": 90018}),
    Fault("HTTP 502", {"status": 502}),
    Fault("HTTP 503", {"status": 503}),
    Fault("HTTP 504", {"status": 504}),
    Fault("reset before handling", {"drop": "before"}),
    Fault("reset after handling", {"drop": "after"}, lost=True),
    Fault("read timeout", {"delay": "slow"}, lost=True),
    Fault("token expired on DingTalk's clock", tokens="advance", families=("oapi", "api")),
    Fault("token revoked", tokens="expire", families=("oapi", "api")),
    Fault("errcode 40014 (token)", {"errcode": 40014}, families=("oapi",)),
    Fault("v1.0 InvalidAuthentication", {"status": 400, "body": INVALID_AUTH}, families=("api",)),
]


def _inject(env: Env, op: Op, fault: Fault, *, times: int = 1) -> float:
    """Apply ``fault`` to ``op``'s path; returns how long a delayed answer takes (0 if none)."""
    spec = dict(fault.inject)
    delay = 0.0
    if fault.slow:
        delay = spec["delay"] = 2 * op.read_timeout
    if fault.tokens:
        env.base.get_access_token()  # tokens are cached before DingTalk stops accepting them
        env.base.get_api_access_token()
        if fault.tokens == "advance":
            env.em.advance(7201)
        else:
            env.em.expire_tokens()
    if spec:
        env.em.inject(op.path, times=times, **spec)
    return delay


def _settle(env: Env, path: str, delay: float) -> None:
    """Wait for a delayed request the client gave up on: DingTalk still handles it, late."""
    deadline = time.monotonic() + delay + 10
    while delay and time.monotonic() < deadline:
        if all(r.status for r in env.em.requests(path)):
            return
        time.sleep(0.02)


CASES = [
    pytest.param(op, fault, id=f"{op.name}-{fault.name}")
    for op in OPS
    for fault in FAULTS
    if op.family in fault.families and (op.moves_clock or fault.tokens != "advance")
]


@pytest.mark.parametrize(("op", "fault"), CASES)
def test_a_passing_fault_is_retried_and_the_effect_happens_once(env: Env, op: Op, fault: Fault) -> None:
    env.connect(read_timeout=op.read_timeout if fault.slow else CALM_READ_TIMEOUT)
    op.setup(env)
    delay = _inject(env, op, fault)
    before = env.em.calls(op.path)
    started = time.monotonic()
    result = op.run(env)
    elapsed = time.monotonic() - started
    _settle(env, op.path, delay)
    # Two read timeouts and FAST's waits; the slack is for a loaded CI machine, not for another attempt.
    assert elapsed < 2 * env.read_timeout + 8, "retried within a bounded time"
    assert env.em.calls(op.path) - before == 2, "retried once"
    outcome = op.check(env, result, fault.lost)
    assert outcome is not False
    if fault.inject:
        assert not env.em.state.faults, "the fault was hit"
    if fault.tokens or "40014" in fault.name or "Authentication" in fault.name:
        token_path = "/gettoken" if op.family == "oapi" else "/v1.0/oauth2/accessToken"
        assert env.em.calls(token_path) == 2, "one fresh token after the rejection, no loop"


# -- faults that do not pass: a clear error within a bounded time ------------------------------------

PERSISTENT_NAMES = (
    "get_access_token",
    "send_work_notification",
    "send_robot_group_message",
    "DingTalkCustomRobotHook.send",
)
PERSISTENT_OPS = [op for op in OPS if op.name in PERSISTENT_NAMES]
# Every fault that is not about tokens (those pass by design: one fresh token is fetched).
# (HTTP 503/504 take 502's code path; the passing suite above has all three.)
PERSISTENT_FAULTS = [
    f for f in FAULTS if f.inject and len(f.families) == 4 and f.name not in ("HTTP 503", "HTTP 504")
]
THREE = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05, max_elapsed=10)


def _expected_error(fault: Fault) -> tuple[type[Exception], str]:
    if "errcode" in fault.inject:
        code = fault.inject.get("sub_code") or fault.inject["errcode"]
        return DingTalkAPIError, f"errcode {code}"
    if "status" in fault.inject:
        return DingTalkTransportError, f"answered HTTP {fault.inject['status']}"
    if fault.slow:
        return DingTalkTransportError, "ReadTimeout"
    return DingTalkTransportError, r"failed: \w+Error"


@pytest.mark.parametrize(
    ("op", "fault"),
    [pytest.param(o, f, id=f"{o.name}-{f.name}") for o in PERSISTENT_OPS for f in PERSISTENT_FAULTS],
)
def test_a_fault_that_stays_fails_clearly_after_the_policy_s_attempts(env: Env, op: Op, fault: Fault) -> None:
    env.policy = THREE
    env.connect(read_timeout=op.read_timeout if fault.slow else CALM_READ_TIMEOUT)
    delay = _inject(env, op, fault, times=99)
    started = time.monotonic()
    kind, text = _expected_error(fault)
    with pytest.raises(kind, match=text) as info:
        op.run(env)
    elapsed = time.monotonic() - started
    _settle(env, op.path, delay)
    assert op.path in str(info.value)
    assert env.em.calls(op.path) == THREE.attempts
    assert elapsed < THREE.attempts * (op.read_timeout + THREE.max_wait) + 2
    delivered = len(env.em.inbox())
    if not fault.lost:
        assert delivered == 0
    elif op.name == "send_robot_group_message":
        assert delivered == THREE.attempts  # each lost attempt was shown: no idempotency key in v1.0
    elif op.name != "get_access_token":
        assert delivered == 1  # de-duplicated by DingTalk, yet reported as failed: the answer never came


# -- connection refused ----------------------------------------------------------------------------


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in OPS])
def test_connection_refused_fails_clearly_within_bounded_time(env: Env, op: Op, logs: Logs) -> None:
    op.setup(env)
    before = len(env.em.inbox())
    env.connect(_closed_port_url())
    started = time.monotonic()
    if op.notifier:
        op.run(env)  # a notifier never raises: it logs
        assert "not delivered" in logs.text and "ConnectionError" in logs.text
    else:
        with pytest.raises(DingTalkTransportError, match="failed: ConnectionError"):
            op.run(env)
    assert time.monotonic() - started < 5
    assert len(env.em.inbox()) == before


@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in OPS if op.name in (
    "send_work_notification", "send_robot_group_message", "DingTalkCustomRobotHook.send")])  # fmt: skip
def test_a_stopped_dingtalk_that_comes_back_gets_the_message_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, op: Op
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    emulator = DingTalkEmulator(port=port).start()
    try:
        world = Env(em=emulator, tmp=tmp_path, monkeypatch=monkeypatch)
        world.connect()
        emulator.stop()
        restarts: list[float] = []

        def sleep(seconds: float) -> None:  # the retry's wait: DingTalk is back after the first one
            if not restarts:
                restarts.append(seconds)
                emulator.start()

        world.policy = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=10, sleep=sleep)
        result = op.run(world)
        assert restarts, "the first attempt was refused"
        assert op.check(world, result, False) is not False
    finally:
        emulator.stop()


# -- the custom robot's rate limit (130101) --------------------------------------------------------


def test_robot_blocked_130101_longer_than_max_wait_fails_clearly(env: Env) -> None:
    fake = EmulatorTime(env.em)
    env.em.inject("/robot/send", errcode=130101)
    with pytest.raises(RobotBusyError, match="may send again in"):
        env.custom_robot(clock=fake.clock, sleep=fake.sleep, max_wait=60).send(Text(content="x"))
    assert env.inbox("custom_robot") == [] and env.em.calls("/robot/send") == 1
    assert fake.slept == 0  # it does not wait for a slot it knows is beyond its deadline


def test_robot_notifier_blocked_130101_logs_and_the_alert_goes_out_with_the_next(
    env: Env, logs: Logs
) -> None:
    fake = EmulatorTime(env.em)
    env.em.inject("/robot/send", errcode=130101)
    notifier = DingTalkCustomRobotNotifier(retry_policy=FAST, timeout=20, clock=fake.clock, sleep=fake.sleep)
    notifier(fake_context(task_id="first_alert"))
    assert env.inbox("custom_robot") == []
    # The notifier's own line, not the hook's "blocked ... waiting to retry" warning before it.
    assert "alert not delivered: RobotBusyError: The custom robot may send again in 600 s" in logs.text
    fake.sleep(601)
    notifier(fake_context(task_id="second_alert"))
    shown = " ".join(str(d.message) for d in env.inbox("custom_robot"))
    assert "first_alert" in shown and "second_alert" in shown  # nothing lost


def test_v1_errcode_in_a_200_answer_is_an_error_not_a_success(env: Env) -> None:
    # Found by this suite: a 200 answer with errcode -1 used to "send" with an empty processQueryKey.
    env.em.inject(GROUP_SEND_PATH, errcode=60011, errmsg="no permission")
    with pytest.raises(DingTalkAPIError, match="errcode 60011"):
        env.app_robot.send_robot_group_message(Text(content="x"), open_conversation_id="cidOps")
    assert env.inbox("app_robot_group") == []


def test_errors_are_dingtalk_errors(env: Env) -> None:
    """``except DingTalkError`` in a DAG also catches a robot that stays blocked and a DingTalk not there."""
    fake = EmulatorTime(env.em)
    env.em.inject("/robot/send", errcode=130101)
    with pytest.raises(DingTalkError, match="may send again in"):
        env.custom_robot(clock=fake.clock, sleep=fake.sleep, max_wait=60).send(Text(content="x"))
    env.connect(_closed_port_url())
    with pytest.raises(DingTalkError, match="failed: ConnectionError"):
        env.base.get_access_token()

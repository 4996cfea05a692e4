"""``DingTalkCustomRobotHook``: send to a group chat through a custom robot (自定义机器人) webhook.

A custom robot needs no app: its access token (and, with the "sign" security setting, its ``SEC…``
secret) is the whole credential, kept in a ``dingtalkcustomrobot`` connection.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

from airflow.sdk import BaseHook

from airflow_provider_dingtalk._redact import Secret, mask_secret
from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError, hint_for
from airflow_provider_dingtalk.hooks.base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_READ_TIMEOUT,
    check_conn_type,
    check_host,
    connection_proxy,
    normalise_host,
)
from airflow_provider_dingtalk.http import http_send, new_session, oapi_result
from airflow_provider_dingtalk.retry import RetryPolicy

if TYPE_CHECKING:
    import requests
    from airflow.sdk import Connection

    from airflow_provider_dingtalk.messages import Mentions, Message
    from airflow_provider_dingtalk.robot_pacer import RobotPacer
    from airflow_provider_dingtalk.state import StateBackend

T = TypeVar("T")

SEND_PATH = "/robot/send"
DINGDING_CONN_TYPE = "dingding"
"""The connection type of Airflow's ``apache-airflow-providers-dingding``, whose connections work here."""
RATE_LIMITED = 130101

_SECURITY = "the robot's security settings (group settings → Bots → the robot → Security Settings)"
# What to fix for the custom robot's errors. 310000 covers every security check; its errmsg says which.
_WEBHOOK_HINTS: dict[int, str] = {
    300001: "DingTalk does not know this robot token: the robot was removed or the token is mistyped. "
    "Copy the webhook URL again (group settings → Bots → the robot) into the connection's password.",
    300005: "DingTalk does not know this robot token (seen for robots of external groups): copy the "
    "webhook URL again into the connection's password.",
    460101: "The message body is over 20,000 bytes: shorten the text or split it into several messages.",
    RATE_LIMITED: "The robot sent more than 20 messages in a minute and is blocked for 10 minutes: send "
    "fewer messages, or spread them over several robots.",
    310000: f"The message failed one of {_SECURITY}.",
}
_SECURITY_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("keyword", "关键词"),
        f"The message contains none of the robot's custom keywords: add one of them to the text, or "
        f"change the keywords in {_SECURITY}.",
    ),
    (
        ("sign", "签名"),
        f"The signature does not match: put the robot's secret (starting with SEC) from {_SECURITY} "
        "into the connection's 'secret' field, or remove it there if the robot does not use signing.",
    ),
    (
        ("timestamp",),
        "DingTalk refused the timestamp: the robot uses signing, so set its secret (SEC…) in the "
        "connection, and make sure this machine's clock is within an hour of the real time.",
    ),
    (
        ("ip", "白名单"),
        f"This machine's public IP is not in the robot's IP whitelist: add it in {_SECURITY}.",
    ),
)


def webhook_hint(errcode: int, errmsg: str) -> str | None:
    """The fix for a custom robot error; for 310000 it depends on which security check failed."""
    if errcode == 310000:
        lowered = errmsg.lower()
        for needles, hint in _SECURITY_HINTS:
            if any(n in lowered for n in needles):
                return hint
    return _WEBHOOK_HINTS.get(errcode) or hint_for(errcode)


def robot_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value for ``timestamp_ms``, already URL-encoded (once).

    :param secret: the robot's secret, ``SEC…``, exactly as DingTalk shows it.
    :param timestamp_ms: milliseconds since the epoch; DingTalk accepts ±1 hour.
    """
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


@dataclass(frozen=True, kw_only=True)
class CustomRobotConfig:
    """What the hook reads from a ``dingtalkcustomrobot`` connection. Token and secret never print."""

    conn_id: str
    host: str
    token: Secret
    secret: Secret | None
    proxy: str | None
    connect_timeout: float
    read_timeout: float
    state: StateBackend = field(repr=False)  # extras state_backend/redis_url, else [dingtalk]


class DingTalkCustomRobotHook(BaseHook):
    """Send messages to a group chat through a custom robot's webhook.

    Signs every request when the connection has the robot's secret, paces sends to DingTalk's
    20 messages a minute per robot across every task process on the machine (or the cluster, with
    the Redis state backend), waits and retries when
    DingTalk still answers "too fast" (130101), and tags each message with a ``msgUuid`` so that a
    retry after a lost answer is not shown twice.

    :param dingtalk_custom_robot_conn_id: a connection of type ``dingtalkcustomrobot``.
    :param retry_policy: override the default retry policy for transient failures.
    :param max_wait: at most this many seconds a send waits for the robot's rate limit (the pacing
        and a 10-minute block after 130101); beyond it the send fails.
    :param clock: seconds since the epoch; tests pass a fake one.
    :param sleep: how to wait for the rate limit; tests pass one that moves their fake clock.
    """

    conn_name_attr = "dingtalk_custom_robot_conn_id"
    default_conn_name = "dingtalk_custom_robot_default"
    conn_type = "dingtalkcustomrobot"
    hook_name = "DingTalk Custom Robot"

    def __init__(
        self,
        dingtalk_custom_robot_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        max_wait: float = 900.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dingtalk_custom_robot_conn_id = dingtalk_custom_robot_conn_id
        self.retry_policy = retry_policy or RetryPolicy()
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        """The connection ``conn_id``; one of Airflow's dingding provider (type ``dingding``) is read as
        this hook's type, since it keeps the same fields: the token in the password, Host optional."""
        conn = super().get_connection(conn_id)
        if conn.conn_type == DINGDING_CONN_TYPE:
            conn = copy.copy(conn)
            conn.conn_type = cls.conn_type
        return conn

    @cached_property
    def robot(self) -> CustomRobotConfig:
        conn = self.get_connection(self.dingtalk_custom_robot_conn_id)
        check_conn_type(self.dingtalk_custom_robot_conn_id, conn.conn_type, self.conn_type)
        extra = conn.extra_dejson
        token, url_host = _token_and_host(conn.password or "")
        if not token:
            raise DingTalkValidationError(
                f"connection {self.dingtalk_custom_robot_conn_id!r}",
                "password is empty or has no access_token: paste the robot's webhook URL or its access token",
            )
        secret = str(extra.get("secret") or "").strip()
        mask_secret(token)
        mask_secret(secret)
        if secret and not secret.startswith("SEC"):
            # DingTalk shows the signing secret as SEC + hex; without the prefix every signature fails.
            raise DingTalkValidationError(
                f"connection {self.dingtalk_custom_robot_conn_id!r} extra secret",
                f"must start with SEC, as DingTalk shows it in {_SECURITY}; copy it whole",
            )
        host = normalise_host(conn.host or url_host, DEFAULT_HOST, conn.port)
        check_host(self.dingtalk_custom_robot_conn_id, host)
        from airflow_provider_dingtalk.state import backend_for

        return CustomRobotConfig(
            conn_id=self.dingtalk_custom_robot_conn_id,
            host=host,
            token=Secret(token),
            secret=Secret(secret) if secret else None,
            proxy=connection_proxy(self.dingtalk_custom_robot_conn_id, extra),
            connect_timeout=float(extra.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT),
            read_timeout=float(extra.get("read_timeout") or DEFAULT_READ_TIMEOUT),
            state=backend_for(extra, owner=f"connection {self.dingtalk_custom_robot_conn_id!r}"),
        )

    @cached_property
    def session(self) -> requests.Session:
        return new_session(hosts=[self.robot.host], proxy=self.robot.proxy)

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's *Test* button: a check made here, which sends nothing, and says so.

        DingTalk documents no call that checks a robot's token or signature without posting a
        message to the group, and a test message on every press would be noise in someone's chat.
        So this reads the connection as a send would and checks the shape of what DingTalk shows:
        a 64-hex-character access token and a ``SEC`` + 64 hex signing secret.
        """
        try:
            robot = self.robot
        except DingTalkValidationError as exc:
            return False, str(exc)
        if not _HEX64.fullmatch(robot.token.reveal()):
            return False, (
                "The access token is not the 64 hexadecimal characters DingTalk shows in the webhook URL "
                "(…/robot/send?access_token=…): copy it whole. Nothing was sent."
            )
        if robot.secret is not None and not _HEX64.fullmatch(robot.secret.reveal()[3:]):
            return False, (
                f"The signing secret is not SEC followed by 64 hexadecimal characters, as {_SECURITY} "
                "shows it: copy it whole. Nothing was sent."
            )
        what = (
            "access token and signing secret look right"
            if robot.secret
            else "access token looks right (no signing secret: requests go unsigned)"
        )
        return True, (
            f"Checked here only, nothing sent: the {what}, for {robot.host}. "
            "DingTalk has no call that checks a custom robot without posting to its group, so "
            "whether DingTalk accepts them shows with the first message."
        )

    @cached_property
    def pacer(self) -> RobotPacer:
        """This robot's send window, shared with every process using the same state backend."""
        from airflow_provider_dingtalk.robot_pacer import pacer_for

        return pacer_for(
            self.robot.host,
            self.robot.token.reveal(),
            state=self.robot.state,
            clock=self.clock,
            sleep=self.sleep,
        )

    def send(
        self,
        message: Message | Mapping[str, Any],
        *,
        mentions: Mentions | None = None,
        msg_uuid: str | None = None,
    ) -> None:
        """Send ``message`` to the robot's group.

        :param message: Text, Markdown, Link, ActionCard or FeedCard, or a raw webhook body dict (read by
            :func:`~airflow_provider_dingtalk.messages.parse_custom_robot`; its ``at`` and ``msgUuid``
            count as ``mentions`` and ``msg_uuid``).
        :param mentions: who to @-mention (Text and Markdown); their ``@…`` is added to the text if missing.
        :param msg_uuid: DingTalk's idempotency key; give the same one when sending the same message again
            (e.g. after a crash), and DingTalk shows it once. A new one is made if not given.
        :raises DingTalkValidationError: the message breaks a DingTalk limit (nothing was sent).
        :raises DingTalkAPIError: DingTalk refused it; ``hint`` says what to fix.
        :raises RobotBusyError: the robot stays rate-limited for longer than ``max_wait``.
        """
        from airflow_provider_dingtalk.messages import Message, parse_custom_robot, to_custom_robot

        if not isinstance(message, Message):
            raw = parse_custom_robot(message)
            message = raw.message
            mentions = _one_of(mentions, raw.mentions, "mentions", "at")
            msg_uuid = _one_of(msg_uuid, raw.msg_uuid, "msg_uuid", "msgUuid")
        # One msgUuid for every attempt: DingTalk shows a retried message only once.
        body = to_custom_robot(message, mentions=mentions, msg_uuid=msg_uuid or uuid.uuid4().hex)
        deadline = self.clock() + self.max_wait
        while True:
            try:
                self.retry_policy.call(lambda: self._post(body, deadline))
            except DingTalkAPIError as exc:
                if exc.errcode != RATE_LIMITED:
                    raise
                # Another sender used up the robot's minute; nobody sharing the window sends until it ends.
                self.log.warning("DingTalk blocked the custom robot for sending too fast; waiting to retry.")
                self.pacer.block()
                continue
            self.log.info("Sent a %s message through custom robot %s.", body["msgtype"], self.robot.conn_id)
            return

    def _post(self, body: dict[str, Any], deadline: float) -> dict[str, Any]:
        self.pacer.acquire(deadline=deadline)
        resp = http_send(
            self.session,
            "POST",
            self._url(),
            json=body,
            timeout=(self.robot.connect_timeout, self.robot.read_timeout),
            secrets=self._secrets(),
        )
        return oapi_result(resp, api=SEND_PATH, hint=webhook_hint)

    def _url(self) -> str:
        # Built by hand: requests' params= would URL-encode the already encoded sign a second time.
        url = f"{self.robot.host}{SEND_PATH}?access_token={quote(self.robot.token.reveal(), safe='')}"
        if self.robot.secret:
            timestamp = int(self.clock() * 1000)
            url += f"&timestamp={timestamp}&sign={robot_sign(self.robot.secret.reveal(), timestamp)}"
        return url

    def _secrets(self) -> list[str]:
        return [self.robot.token.reveal(), self.robot.secret.reveal() if self.robot.secret else ""]


def _one_of(given: T | None, in_body: T | None, argument: str, key: str) -> T | None:
    if given is not None and in_body is not None:
        raise DingTalkValidationError(
            argument,
            f"is also in the raw body's {key!r}: give it in one place (for @-mentions: the body's "
            "'at', or the operator's at_mobiles / at_user_ids / at_all)",
        )
    return given if given is not None else in_body


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _token_and_host(raw: str) -> tuple[str, str | None]:
    """Split the password into ``(token, host)``: a pasted webhook URL gives both, a bare token no host."""
    raw = raw.strip()
    if "://" not in raw:
        return raw, None
    parts = urlsplit(raw)
    token = (parse_qs(parts.query).get("access_token") or [""])[0]
    return token.strip(), f"{parts.scheme}://{parts.netloc}" if parts.netloc else None

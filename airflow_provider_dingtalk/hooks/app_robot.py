"""App robot (企业机器人) messages through the v1.0 API: to group chats and to users one-to-one.

Built on :class:`~airflow_provider_dingtalk.hooks.base.DingTalkBaseHook` ``call_api``.
The app robot is the app's own robot (``robotCode`` is normally the AppKey), so it uses the
``dingtalk`` connection; it has no webhook rate limit but needs the robot enabled in the app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_dingtalk._redact import mask_secret
from airflow_provider_dingtalk.exceptions import (
    DingTalkAPIError,
    DingTalkError,
    DingTalkPartialSendError,
    DingTalkValidationError,
)
from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook
from airflow_provider_dingtalk.messages import Message, parse_app_robot, to_app_robot
from airflow_provider_dingtalk.messages import _checks as check

if TYPE_CHECKING:
    from airflow_provider_dingtalk.messages import Mentions

GROUP_SEND_PATH = "/v1.0/robot/groupMessages/send"
OTO_SEND_PATH = "/v1.0/robot/oToMessages/batchSend"
MAX_USER_IDS_PER_CALL = 20
REPLY_PATH = "/robot/sendBySession"
SESSION_EXPIRED = 300001


@dataclass(frozen=True, kw_only=True)
class RobotDirectSendResult:
    """What one ``oToMessages/batchSend`` call (at most 20 users) reported.

    :param process_query_key: DingTalk's id of the send, for read status and recall.
    :param user_ids: the users this call was for.
    :param invalid_user_ids: users DingTalk does not know (``invalidStaffIdList``).
    :param flow_controlled_user_ids: users skipped by flow control (``flowControlledStaffIdList``).
    :param filtered_user_ids: users DingTalk filtered out (``filteredStaffIdList``).
    """

    process_query_key: str
    user_ids: tuple[str, ...]
    invalid_user_ids: tuple[str, ...] = ()
    flow_controlled_user_ids: tuple[str, ...] = ()
    filtered_user_ids: tuple[str, ...] = ()


class DingTalkAppRobotHook(DingTalkBaseHook):
    """App robot (企业机器人) messages through the v1.0 API: to group chats and to users one-to-one.

    :param dingtalk_conn_id: a connection of type ``dingtalk`` (default ``dingtalk_default``).
    :param retry_policy: override the default retry policy (attempts, backoff, total time).
    """

    def send_robot_group_message(
        self,
        message: Message | Mapping[str, Any],
        *,
        open_conversation_id: str,
        robot_code: str | None = None,
        cool_app_code: str | None = None,
    ) -> str:
        """Send ``message`` to a group chat the app robot is in.

        :param message: Text, Markdown, Link, Image (``pic_url`` or ``media_id``) or ActionCard, or a
            raw ``{"msgKey": …, "msgParam": …}`` dict (read by
            :func:`~airflow_provider_dingtalk.messages.parse_app_robot`).
        :param open_conversation_id: the group's ``openConversationId`` (``cid…``).
        :param robot_code: the robot's code; defaults to the connection's AppKey.
        :param cool_app_code: the cool app's code, when sending as a cool app (酷应用).
        :return: the ``processQueryKey`` of the send.
        """
        if not str(open_conversation_id or "").strip():
            raise DingTalkValidationError(
                "open_conversation_id", "is empty; give the group's openConversationId"
            )
        msg_key, msg_param = _render(message)
        payload = {
            "robotCode": robot_code or self.app.app_key,
            "openConversationId": open_conversation_id.strip(),
            "msgKey": msg_key,
            "msgParam": msg_param,
        }
        if cool_app_code:
            payload["coolAppCode"] = cool_app_code
        key = _process_query_key(self.call_api("POST", GROUP_SEND_PATH, json=payload), GROUP_SEND_PATH)
        self.log.info("App robot sent a %s message to group %s (%s).", msg_key, open_conversation_id, key)
        return key

    def send_robot_direct_message(
        self,
        message: Message | Mapping[str, Any],
        *,
        user_ids: Sequence[str],
        robot_code: str | None = None,
    ) -> list[RobotDirectSendResult]:
        """Send ``message`` one-to-one to users, 20 per call as DingTalk requires.

        :param message: Text, Markdown, Link, Image (``pic_url`` or ``media_id``) or ActionCard, or a
            raw ``{"msgKey": …, "msgParam": …}`` dict (read by
            :func:`~airflow_provider_dingtalk.messages.parse_app_robot`).
        :param user_ids: DingTalk user ids (duplicates are sent once).
        :param robot_code: the robot's code; defaults to the connection's AppKey.
        :return: one result per call, with the users DingTalk reported invalid, flow-controlled or filtered.
        :raises DingTalkPartialSendError: a call failed after earlier ones went out (``.unsent``: the rest).
        """
        users = _user_ids(user_ids)
        msg_key, msg_param = _render(message)
        code = robot_code or self.app.app_key
        results: list[RobotDirectSendResult] = []
        for start in range(0, len(users), MAX_USER_IDS_PER_CALL):
            batch = users[start : start + MAX_USER_IDS_PER_CALL]
            payload = {"robotCode": code, "userIds": list(batch), "msgKey": msg_key, "msgParam": msg_param}
            try:
                answer = self.call_api("POST", OTO_SEND_PATH, json=payload)
            except DingTalkError as exc:
                if not results:
                    raise
                raise DingTalkPartialSendError(
                    cause=exc,
                    sent=[{"task_id": r.process_query_key, "recipients": list(r.user_ids)} for r in results],
                    unsent={"user_ids": list(users[start:])},
                ) from exc
            result = RobotDirectSendResult(
                process_query_key=_process_query_key(answer, OTO_SEND_PATH),
                user_ids=batch,
                invalid_user_ids=tuple(answer.get("invalidStaffIdList") or ()),
                flow_controlled_user_ids=tuple(answer.get("flowControlledStaffIdList") or ()),
                filtered_user_ids=tuple(answer.get("filteredStaffIdList") or ()),
            )
            results.append(result)
        skipped = [
            u
            for r in results
            for u in (*r.invalid_user_ids, *r.flow_controlled_user_ids, *r.filtered_user_ids)
        ]
        if skipped:
            self.log.warning("App robot could not reach %d user(s): %s", len(skipped), ", ".join(skipped))
        self.log.info(
            "App robot sent a %s message to %d user(s) in %d call(s).", msg_key, len(users), len(results)
        )
        return results

    def reply(
        self, message: Message, *, robot_message: Mapping[str, Any], mentions: Mentions | None = None
    ) -> None:
        """Answer a robot message in its conversation, through the message's ``sessionWebhook``.

        DingTalk's "Receive messages" page (open.dingtalk.com/document/orgapp/receive-message): each
        message carries a ``sessionWebhook`` that takes the custom robot's message body until
        ``sessionWebhookExpiredTime`` (ms; about 90 minutes on). It needs no access token, so this
        works for any ``robot_message`` the app's robot received, e.g. the payload of
        :class:`~airflow_provider_dingtalk.triggers.stream.DingTalkStreamRobotMessageTrigger`.

        :param message: Text, Markdown, Link, ActionCard or FeedCard (the custom robot's types).
        :param robot_message: the robot message as DingTalk sent it (``sessionWebhook``,
            ``sessionWebhookExpiredTime``, ``conversationId`` …).
        :param mentions: who to @-mention (Text and Markdown), e.g. ``Mentions(user_ids=[sender])``.
        :raises DingTalkValidationError: no ``sessionWebhook``, one not on the connection's DingTalk
            host, an expired one, or a message over the custom robot's limits; nothing was sent.
        :raises DingTalkAPIError: DingTalk refused it (300001: the session no longer exists).
        """
        from airflow_provider_dingtalk.http import http_send, oapi_result
        from airflow_provider_dingtalk.messages import to_custom_robot

        url, session = self._session_webhook(robot_message)
        body = to_custom_robot(message, mentions=mentions)

        def post() -> dict[str, Any]:
            resp = http_send(
                self.session,
                "POST",
                url,
                json=body,
                timeout=(self.app.connect_timeout, self.app.read_timeout),
                secrets=[session, *self._secrets()],
            )
            return oapi_result(resp, api=REPLY_PATH, hint=_reply_hint)

        self.retry_policy.call(post)
        self.log.info(
            "App robot replied with a %s message in conversation %s.",
            body["msgtype"],
            robot_message.get("conversationId") or "?",
        )

    def _session_webhook(self, robot_message: Mapping[str, Any]) -> tuple[str, str]:
        """The message's ``sessionWebhook`` and its session, checked before anything is sent."""
        url = robot_message.get("sessionWebhook")
        if not isinstance(url, str) or not url.strip():
            raise DingTalkValidationError(
                "sessionWebhook",
                "is missing: give the robot message as DingTalk sent it (the trigger's payload)",
            )
        parts = urlsplit(url.strip())
        host = urlsplit(self.app.host)
        session = (parse_qs(parts.query).get("session") or [""])[0]
        # Only DingTalk's own host: the message reaches whoever answers the URL.
        if (parts.scheme, parts.netloc) != (host.scheme, host.netloc) or not session:
            raise DingTalkValidationError(
                "sessionWebhook", f"is not a session URL of {self.app.host} (the connection's host)"
            )
        mask_secret(session)  # anyone holding it can post in the conversation until it expires
        expires = robot_message.get("sessionWebhookExpiredTime")
        if expires is not None:
            try:
                expires_ms = int(expires)
            except (TypeError, ValueError):
                raise DingTalkValidationError(
                    "sessionWebhookExpiredTime", f"must be milliseconds since the epoch, not {expires!r}"
                ) from None
            late = self.clock() - expires_ms / 1000
            if late >= 0:
                at = datetime.fromtimestamp(expires_ms / 1000, tz=UTC).isoformat(timespec="seconds")
                raise DingTalkValidationError(
                    "sessionWebhookExpiredTime",
                    f"the sessionWebhook expired at {at} ({late:.0f} s ago); a reply must come within its "
                    "lifetime (about 90 minutes): send to the group with send_robot_group_message instead",
                )
        return url.strip(), session


def _reply_hint(errcode: int, errmsg: str) -> str | None:
    """What to fix when a sessionWebhook is refused; it takes the custom robot's body, so its errors too."""
    from airflow_provider_dingtalk.hooks.custom_robot import webhook_hint

    if errcode == SESSION_EXPIRED:  # "session 不存在", where the custom robot says "token is not exist"
        return (
            "DingTalk no longer knows this sessionWebhook (it expired or is mistyped): send to the "
            "group with send_robot_group_message(open_conversation_id=...) instead."
        )
    return webhook_hint(errcode, errmsg)


def _render(message: Message | Mapping[str, Any]) -> tuple[str, str]:
    # A raw dict is read into the model, so it meets the same checks as a typed message.
    return to_app_robot(message if isinstance(message, Message) else parse_app_robot(message))


def _process_query_key(answer: Mapping[str, Any], api: str) -> str:
    """DingTalk's id of a send; an answer without one did not come from DingTalk's robot API."""
    key = answer.get("processQueryKey")
    if not isinstance(key, str) or not key:
        raise DingTalkAPIError(errmsg="not a DingTalk answer: no processQueryKey", api=api)
    return key


def _user_ids(user_ids: Sequence[str]) -> tuple[str, ...]:
    if isinstance(user_ids, str):
        raise DingTalkValidationError("user_ids", "must be a list of user ids, not a single string")
    users: list[str] = []
    for i, user in enumerate(check.id_list(user_ids, "user_ids", indexed=True)):
        if not isinstance(user, str) or not user.strip():
            raise DingTalkValidationError(f"user_ids[{i}]", "must be a non-empty user id")
        if user.strip() not in users:
            users.append(user.strip())
    if not users:
        raise DingTalkValidationError("user_ids", "is empty; give at least one user id")
    return tuple(users)

"""``DingTalkAppRobotNotifier``: an alert sent by the app's robot (企业机器人) to a group chat or to users.

Imported by DAG files at parse time: no hook or ``requests`` at module level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_dingtalk.notifications._alert import default_alert, fit_alert
from airflow_provider_dingtalk.notifications._base import (
    DEFAULT_TIMEOUT,
    DingTalkBaseNotifier,
    describe_error,
    measure,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dingtalk.messages import Message
    from airflow_provider_dingtalk.retry import RetryPolicy


class DingTalkAppRobotNotifier(DingTalkBaseNotifier):
    """Send an alert as the app's robot to one group chat, or one-to-one to users.

    Give exactly one of ``open_conversation_id`` or ``user_ids``. With no ``text`` the default alert
    goes out as an action card with a "View log" button (and "Respond in Airflow" for a
    human-in-the-loop task); the error is trimmed to DingTalk's 15,000-byte limit.

    :param open_conversation_id: the group's ``openConversationId`` (``cid…``), templated.
    :param user_ids: user ids: a list, or a comma-separated string (templated).
    :param message: your own message instead of the default alert (templated): a message object or
        an app-robot ``{"msgKey": …, "msgParam": …}`` dict. A message DingTalk would refuse is logged
        and the default alert goes out.
    :param text: markdown body, a Jinja template rendered with the task context; empty for the default.
    :param title: the message title (templated); defaults to the alert's subject.
    :param robot_code: the robot's code; defaults to the connection's AppKey.
    :param dingtalk_conn_id: a ``dingtalk`` connection (AppKey and AppSecret).
    :param timeout: at most this many seconds for the whole alert; then it is logged and dropped.
    :param retry_policy: override the default retry policy (capped by ``timeout``).
    """

    template_fields: Sequence[str] = (
        "message",
        "text",
        "title",
        "open_conversation_id",
        "user_ids",
        "robot_code",
        "dingtalk_conn_id",
    )

    def __init__(
        self,
        *,
        open_conversation_id: str | None = None,
        user_ids: Sequence[str] | str | None = None,
        message: Message | Mapping[str, Any] | None = None,
        text: str | None = None,
        title: str | None = None,
        robot_code: str | None = None,
        dingtalk_conn_id: str = "dingtalk_default",
        timeout: float = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        context: Context | None = None,
    ) -> None:
        super().__init__(
            message=message,
            text=text,
            title=title,
            timeout=timeout,
            retry_policy=retry_policy,
            context=context,
        )
        from airflow_provider_dingtalk.operators._common import check_robot_target

        check_robot_target(open_conversation_id, user_ids)
        self.open_conversation_id = open_conversation_id
        self.user_ids = user_ids
        self.robot_code = robot_code
        self.dingtalk_conn_id = dingtalk_conn_id

    def _send_alert(self, context: Context, *, deadline: float) -> None:
        from airflow_provider_dingtalk.hooks.app_robot import DingTalkAppRobotHook
        from airflow_provider_dingtalk.operators._common import as_list

        message = self._message(context)
        hook = DingTalkAppRobotHook(
            dingtalk_conn_id=self.dingtalk_conn_id, retry_policy=self._policy(deadline)
        )
        try:
            if self.open_conversation_id is not None:
                hook.send_robot_group_message(
                    message,
                    open_conversation_id=self.open_conversation_id,
                    robot_code=self.robot_code or None,
                )
            else:
                hook.send_robot_direct_message(
                    message, user_ids=as_list(self.user_ids, "user_ids"), robot_code=self.robot_code or None
                )
        except Exception as exc:
            self.log.error("DingTalk app-robot alert not delivered: %s", describe_error(exc))
            return
        self.log.info("DingTalk alert sent by the app robot.")

    def _message(self, context: Context) -> Message:
        from airflow_provider_dingtalk.messages import APP_ROBOT_MSG_PARAM_MAX_BYTES, parse_app_robot

        limit = APP_ROBOT_MSG_PARAM_MAX_BYTES
        size_of = measure(_rendered, limit)
        facts = self._facts(context)
        return self._user_message(facts, size_of, limit, parse=parse_app_robot) or fit_alert(
            facts, default_alert, size_of, limit
        )


def _rendered(message: Message) -> str:
    from airflow_provider_dingtalk.messages import to_app_robot

    return to_app_robot(message)[1]  # the limit is on msgParam, the JSON string


send_dingtalk_app_robot_notification = DingTalkAppRobotNotifier

"""``DingTalkAppRobotOperator``: the app's robot (企业机器人) sends to a group chat or to users.

DAG files import this module at every parse, so it imports no hook or ``requests`` at module level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_dingtalk.messages import Message
from airflow_provider_dingtalk.operators._common import (
    RenderMessageFields,
    as_list,
    build_message,
    check_robot_target,
    check_shorthand,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dingtalk.hooks.app_robot import DingTalkAppRobotHook


class DingTalkAppRobotOperator(RenderMessageFields, BaseOperator):
    """Send a message as the app's robot to one group chat, or one-to-one to users.

    Give exactly one of ``open_conversation_id`` or ``user_ids``. The message is ``message`` (Text,
    Markdown, Link, Image or ActionCard; its fields are templated too) or the shorthand ``text=`` or
    ``markdown=`` + ``title=``. Returns (to XCom) the ``processQueryKey`` of the send, or the list of
    them for users (one per 20 users).

    :param message: the message: a message object, or a raw ``{"msgKey": "sampleText", "msgParam": {…}}``
        dict checked as :func:`~airflow_provider_dingtalk.messages.parse_app_robot` says (its values are
        templated; a template that renders the whole dict as JSON text is read back).
    :param text: shorthand for ``message=Text(content=text)``.
    :param markdown: shorthand for ``message=Markdown(title=title, text=markdown)``.
    :param title: the title of a ``markdown`` message.
    :param open_conversation_id: the group's ``openConversationId`` (``cid…``).
    :param user_ids: user ids: a list, or a comma-separated string.
    :param robot_code: the robot's code; defaults to the connection's AppKey.
    :param cool_app_code: the cool app's code, for group messages sent as a cool app.
    :param dingtalk_conn_id: a ``dingtalk`` connection.
    """

    template_fields: Sequence[str] = (
        "message",
        "text",
        "markdown",
        "title",
        "open_conversation_id",
        "user_ids",
        "robot_code",
        "dingtalk_conn_id",
    )
    ui_color = "#3296fa"

    def __init__(
        self,
        *,
        message: Message | Mapping[str, Any] | str | None = None,
        text: str | None = None,
        markdown: str | None = None,
        title: str | None = None,
        open_conversation_id: str | None = None,
        user_ids: Sequence[str] | str | None = None,
        robot_code: str | None = None,
        cool_app_code: str | None = None,
        dingtalk_conn_id: str = "dingtalk_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_shorthand(message, text, markdown, title)
        check_robot_target(open_conversation_id, user_ids)
        self.message = message
        self.text = text
        self.markdown = markdown
        self.title = title
        self.open_conversation_id = open_conversation_id
        self.user_ids = user_ids
        self.robot_code = robot_code
        self.cool_app_code = cool_app_code
        self.dingtalk_conn_id = dingtalk_conn_id

    @cached_property
    def hook(self) -> DingTalkAppRobotHook:
        from airflow_provider_dingtalk.hooks.app_robot import DingTalkAppRobotHook

        return DingTalkAppRobotHook(dingtalk_conn_id=self.dingtalk_conn_id)

    def execute(self, context: Context) -> str | list[str]:
        message = build_message(self.message, self.text, self.markdown, self.title)
        if self.open_conversation_id is not None:
            return self.hook.send_robot_group_message(
                message,
                open_conversation_id=self.open_conversation_id,
                robot_code=self.robot_code or None,
                cool_app_code=self.cool_app_code,
            )
        results = self.hook.send_robot_direct_message(
            message, user_ids=as_list(self.user_ids, "user_ids"), robot_code=self.robot_code or None
        )
        return [r.process_query_key for r in results]

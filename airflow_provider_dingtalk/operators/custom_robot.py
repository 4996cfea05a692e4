"""``DingTalkCustomRobotOperator``: send a message to a group chat through a custom robot's webhook.

DAG files import this module at every parse, so it imports no hook or ``requests`` at module level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_dingtalk.messages import Mentions, Message
from airflow_provider_dingtalk.messages._checks import flag
from airflow_provider_dingtalk.operators._common import (
    RenderMessageFields,
    as_list,
    build_message,
    check_shorthand,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook


class DingTalkCustomRobotOperator(RenderMessageFields, BaseOperator):
    """Send a message to a group chat through a custom robot (自定义机器人).

    Give the message as ``message`` (Text, Markdown, Link, ActionCard or FeedCard from
    :mod:`airflow_provider_dingtalk.messages`; its fields are templated too) or as the shorthand
    ``text=`` or ``markdown=`` + ``title=``. Sends are paced to the robot's 20 a minute.

    :param message: the message: a message object, or a raw webhook body dict (``{"msgtype": "text",
        "text": {…}, "at": {…}}``) checked as :func:`~airflow_provider_dingtalk.messages.parse_custom_robot`
        says (its values are templated; a template that renders the whole dict as JSON text is read back).
    :param text: shorthand for ``message=Text(content=text)``.
    :param markdown: shorthand for ``message=Markdown(title=title, text=markdown)``.
    :param title: the title of a ``markdown`` message.
    :param at_mobiles: mobile numbers to @-mention: a list or a comma-separated string.
    :param at_user_ids: DingTalk user ids to @-mention: a list or a comma-separated string.
    :param at_all: @-mention everyone in the group (templated; ``"false"`` is False).
    :param dingtalk_custom_robot_conn_id: a ``dingtalkcustomrobot`` connection.
    """

    template_fields: Sequence[str] = (
        "message",
        "text",
        "markdown",
        "title",
        "at_mobiles",
        "at_user_ids",
        "at_all",
        "dingtalk_custom_robot_conn_id",
    )
    ui_color = "#3296fa"

    def __init__(
        self,
        *,
        message: Message | Mapping[str, Any] | str | None = None,
        text: str | None = None,
        markdown: str | None = None,
        title: str | None = None,
        at_mobiles: Sequence[str] | str | None = None,
        at_user_ids: Sequence[str] | str | None = None,
        at_all: bool = False,
        dingtalk_custom_robot_conn_id: str = "dingtalk_custom_robot_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_shorthand(message, text, markdown, title)
        self.message = message
        self.text = text
        self.markdown = markdown
        self.title = title
        self.at_mobiles = at_mobiles
        self.at_user_ids = at_user_ids
        self.at_all = at_all
        self.dingtalk_custom_robot_conn_id = dingtalk_custom_robot_conn_id

    @cached_property
    def hook(self) -> DingTalkCustomRobotHook:
        from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook

        return DingTalkCustomRobotHook(dingtalk_custom_robot_conn_id=self.dingtalk_custom_robot_conn_id)

    def execute(self, context: Context) -> None:
        mobiles, user_ids = as_list(self.at_mobiles, "at_mobiles"), as_list(self.at_user_ids, "at_user_ids")
        at_all = flag(self.at_all, "at_all")
        mentions = (
            Mentions(mobiles=mobiles, user_ids=user_ids, at_all=at_all)
            if mobiles or user_ids or at_all
            else None
        )
        self.hook.send(build_message(self.message, self.text, self.markdown, self.title), mentions=mentions)

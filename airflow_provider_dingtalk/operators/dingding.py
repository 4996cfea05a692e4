"""``DingdingOperator``: DAGs written for Airflow's ``apache-airflow-providers-dingding`` run unchanged
but for the import.

It takes that provider's arguments and its ``dingding`` connections (token in the password, Host
optional) and sends through :class:`~airflow_provider_dingtalk.hooks.custom_robot.DingTalkCustomRobotHook`,
so the message is checked before it is sent, signed when the connection has a ``secret``, paced and
retried. DAG files import this module at every parse: no hook or ``requests`` at module level.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.messages._checks import flag
from airflow_provider_dingtalk.operators._common import as_list

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook

_MESSAGE_TYPES = ("text", "link", "markdown", "actionCard", "feedCard")
_CAN_MENTION = ("text", "markdown")


class DingdingOperator(BaseOperator):
    """Send a message through a custom robot, with the arguments of the dingding provider's operator.

    Replace ``from airflow.providers.dingding.operators.dingding import DingdingOperator`` with
    ``from airflow_provider_dingtalk.operators.dingding import DingdingOperator``. For new DAGs,
    :class:`~airflow_provider_dingtalk.operators.custom_robot.DingTalkCustomRobotOperator` takes the
    same messages as objects or raw dicts.

    :param dingding_conn_id: a ``dingding`` connection (or one of this provider's custom robot type).
    :param message_type: ``text``, ``link``, ``markdown``, ``actionCard`` or ``feedCard``.
    :param message: the text of a ``text`` message, else the dict DingTalk documents under the
        message type's key (``{"title": …, "text": …}`` for markdown). Checked as
        :func:`~airflow_provider_dingtalk.messages.parse_custom_robot` says.
    :param at_mobiles: mobile numbers to @-mention (text and markdown only, as DingTalk allows).
    :param at_all: @-mention everyone in the group (text and markdown only).
    """

    template_fields: Sequence[str] = ("message", "dingding_conn_id", "at_mobiles", "at_all")
    ui_color = "#3296fa"

    def __init__(
        self,
        *,
        dingding_conn_id: str = "dingding_default",
        message_type: str = "text",
        message: str | dict[str, Any] | None = None,
        at_mobiles: Sequence[str] | str | None = None,
        at_all: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dingding_conn_id = dingding_conn_id
        self.message_type = message_type
        self.message = message
        self.at_mobiles = at_mobiles
        self.at_all = at_all

    @cached_property
    def hook(self) -> DingTalkCustomRobotHook:
        from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook

        return DingTalkCustomRobotHook(self.dingding_conn_id)

    def execute(self, context: Context) -> None:
        # Checked here, not when the DAG is parsed: a DAG that imported with the dingding provider
        # imports here too, and the task fails before sending, as it did there.
        kind = self.message_type
        if kind not in _MESSAGE_TYPES:
            raise DingTalkValidationError(
                "message_type", f"must be one of {', '.join(_MESSAGE_TYPES)}, not {str(kind)[:40]!r}"
            )
        if self.message is None:
            raise DingTalkValidationError("message", "is required: the text, or the message's dict")
        content = {"content": self.message} if kind == "text" else self.message
        body: dict[str, Any] = {"msgtype": kind, kind: content}
        mobiles, at_all = as_list(self.at_mobiles, "at_mobiles"), flag(self.at_all, "at_all")
        if kind in _CAN_MENTION:
            body["at"] = {"atMobiles": mobiles, "isAtAll": at_all}
        elif mobiles or at_all:
            # The dingding provider sent these without "at" too: DingTalk has no mentions on them.
            self.log.warning("DingTalk @-mentions only in text and markdown; not mentioning on %s.", kind)
        self.hook.send(body)

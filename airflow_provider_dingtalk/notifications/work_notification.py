"""``DingTalkNotifier``: an alert as a work notification (工作通知) to people and departments.

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


class DingTalkNotifier(DingTalkBaseNotifier):
    """Send an alert as a work notification from the app to users and/or departments.

    With no ``text`` the default alert goes out: an action card with the DAG, task, map index, run,
    try, state, error (trimmed to DingTalk's 2,048-byte limit), duration, host and a "View log" button.
    DingTalk silently drops a work notification whose content it already delivered to the same person
    that day, so every alert carries its task instance's identity (DAG/run/task/map index/try); your own
    ``text`` gets it appended as a last line.

    :param userid_list: DingTalk user ids: a list, or a comma-separated string (templated).
    :param dept_id_list: department ids, a list or a comma-separated string (templated).
    :param message: your own message instead of the default alert (templated): a message object or
        a raw ``msg`` dict. The alert's identity line is added to its text, as to ``text``'s (an image,
        voice or file has none: DingTalk drops the same one sent to a person twice a day). A message
        DingTalk would refuse is logged and the default alert goes out.
    :param text: markdown body, a Jinja template rendered with the task context; empty for the default.
    :param title: the notification's title (templated); defaults to the alert's subject.
    :param agent_id: the app's AgentId; defaults to the connection's ``agent_id`` extra.
    :param dingtalk_conn_id: a ``dingtalk`` connection (AppKey and AppSecret).
    :param timeout: at most this many seconds for the whole alert; then it is logged and dropped.
    :param retry_policy: override the default retry policy (capped by ``timeout``).
    """

    template_fields: Sequence[str] = (
        "message",
        "text",
        "title",
        "userid_list",
        "dept_id_list",
        "agent_id",
        "dingtalk_conn_id",
    )

    def __init__(
        self,
        *,
        userid_list: Sequence[str] | str | None = None,
        dept_id_list: Sequence[int | str] | str | None = None,
        message: Message | Mapping[str, Any] | None = None,
        text: str | None = None,
        title: str | None = None,
        agent_id: int | str | None = None,
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
        if not userid_list and not dept_id_list:
            from airflow_provider_dingtalk.exceptions import DingTalkValidationError

            raise DingTalkValidationError(
                "userid_list", "give userid_list and/or dept_id_list: who gets the alert"
            )
        self.userid_list = userid_list
        self.dept_id_list = dept_id_list
        self.agent_id = agent_id
        self.dingtalk_conn_id = dingtalk_conn_id

    def _send_alert(self, context: Context, *, deadline: float) -> None:
        from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook

        message = self._message(context)
        hook = DingTalkWorkNotificationHook(
            dingtalk_conn_id=self.dingtalk_conn_id, retry_policy=self._policy(deadline)
        )
        try:
            task_ids = hook.send_work_notification(
                message,
                userid_list=self.userid_list or None,
                dept_id_list=self.dept_id_list or None,
                agent_id=self.agent_id or None,
            )
        except Exception as exc:
            self.log.error("DingTalk work-notification alert not delivered: %s", describe_error(exc))
            return
        self.log.info("DingTalk alert sent as a work notification (task ids %s).", task_ids)

    def _message(self, context: Context) -> Message:
        from airflow_provider_dingtalk.messages import (
            WORK_NOTIFICATION_MSG_MAX_BYTES,
            parse_work_notification,
        )

        limit = WORK_NOTIFICATION_MSG_MAX_BYTES
        size_of = measure(_rendered, limit)
        facts = self._facts(context)
        own = self._user_message(
            facts, size_of, limit, suffix=f"\n\n`{facts.identity}`", parse=parse_work_notification
        )
        return own or fit_alert(facts, default_alert, size_of, limit)


def _rendered(message: Message) -> str:
    from airflow_provider_dingtalk._json import dumps
    from airflow_provider_dingtalk.messages import to_work_notification

    return dumps(to_work_notification(message))


send_dingtalk_notification = DingTalkNotifier

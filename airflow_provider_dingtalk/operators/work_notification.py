"""Operators for work notifications (工作通知): send (and optionally wait for delivery), recall, status bar.

DAG files import this module at every parse, so it imports no hook, ``requests`` or trigger at
module level.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

try:  # the task SDK's public config (what Airflow's own providers read deferrable's default from)
    from airflow.sdk.configuration import conf
except ImportError:  # older task SDKs
    from airflow.configuration import conf

from airflow_provider_dingtalk.exceptions import DingTalkError, DingTalkValidationError
from airflow_provider_dingtalk.messages import Message
from airflow_provider_dingtalk.messages._checks import flag
from airflow_provider_dingtalk.operators._common import RenderMessageFields, build_message, check_shorthand

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook

SAME_CONTENT_TODAY = "143106"
# What DingTalk's per-recipient flow-control codes mean (the table on its getsendresult page, "Gets the
# result of sending messages asynchronously" on help.dingtalk.io), for the delivery report.
FORBIDDEN_CODES = {
    "143103": "app recipients per minute exceeded",
    "143104": "organisation recipients per minute exceeded",
    "143105": "more than 500 notifications from this app to this user today",
    "143106": "the same content was already sent to this user today",
    "1430000": "no recipient",
    "1430002": "prohibited content",
    "1430003": "DingTalk system protection",
    "1430004": "executive protection",
}


class _DingTalkAppOperator(RenderMessageFields, BaseOperator):
    """What the work-notification operators share: the connection, the agent id and the hook."""

    def __init__(
        self, *, dingtalk_conn_id: str = "dingtalk_default", agent_id: int | str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.dingtalk_conn_id = dingtalk_conn_id
        self.agent_id = agent_id

    @cached_property
    def hook(self) -> DingTalkWorkNotificationHook:
        from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook

        return DingTalkWorkNotificationHook(dingtalk_conn_id=self.dingtalk_conn_id)


class DingTalkMessageOperator(_DingTalkAppOperator):
    """Send a work notification (工作通知) to users, departments or everyone; return the task ids.

    Give the message as ``message`` (a :mod:`~airflow_provider_dingtalk.messages` object or a raw ``msg``
    dict), or as the shorthand ``text=`` or ``markdown=`` + ``title=``. Image, voice and file messages
    with a local ``path`` are uploaded first.

    :param message: the message.
    :param text: shorthand for ``message=Text(content=text)``.
    :param markdown: shorthand for ``message=Markdown(title=title, text=markdown)``.
    :param title: the title of a ``markdown`` message.
    :param userid_list: user ids: a list, or a comma-separated string (what templates render to).
    :param dept_id_list: department ids: a list, or a comma-separated string.
    :param to_all_user: send to the whole organisation (DingTalk allows 3 a day); not with the lists.
        Templated; text such as ``"false"`` is read strictly (true/false, 1/0, yes/no, on/off), as it
        is for every flag of the provider's operators and notifiers.
    :param agent_id: the app's AgentId; defaults to the connection's ``agent_id`` extra.
    :param dingtalk_conn_id: a ``dingtalk`` connection.
    :param wait_for_delivery: wait until DingTalk has finished sending, then log who did not get it.
    :param fail_on_undelivered: fail the task if any recipient was invalid, filtered (forbidden) or
        failed; implies ``wait_for_delivery``.
    :param deferrable: wait on the triggerer instead of in the worker; defaults to Airflow's
        ``[operators] default_deferrable``.
    :param poll_interval: seconds between delivery polls.
    :param timeout: seconds to wait for delivery before failing.
    """

    template_fields: Sequence[str] = (
        "message",
        "text",
        "markdown",
        "title",
        "userid_list",
        "dept_id_list",
        "to_all_user",
        "agent_id",
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
        userid_list: Sequence[str] | str | None = None,
        dept_id_list: Sequence[int | str] | str | None = None,
        to_all_user: bool = False,
        agent_id: int | str | None = None,
        dingtalk_conn_id: str = "dingtalk_default",
        wait_for_delivery: bool = False,
        fail_on_undelivered: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5.0,
        timeout: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(dingtalk_conn_id=dingtalk_conn_id, agent_id=agent_id, **kwargs)
        check_shorthand(message, text, markdown, title)
        if poll_interval <= 0 or timeout <= 0:
            raise DingTalkValidationError("poll_interval", "poll_interval and timeout must be positive")
        self.message = message
        self.text = text
        self.markdown = markdown
        self.title = title
        self.userid_list = userid_list
        self.dept_id_list = dept_id_list
        self.to_all_user = to_all_user  # templated: checked by the hook once rendered
        self.fail_on_undelivered = flag(fail_on_undelivered, "fail_on_undelivered")
        self.wait_for_delivery = flag(wait_for_delivery, "wait_for_delivery") or self.fail_on_undelivered
        self.deferrable = flag(deferrable, "deferrable")
        self.poll_interval = poll_interval
        self.timeout = timeout

    def execute(self, context: Context) -> list[int]:
        message = build_message(self.message, self.text, self.markdown, self.title)
        if isinstance(message, Message):
            message = self.hook.upload_message_media(message)
        repeated: list[int] = []
        task_ids = self.hook.send_work_notification(
            message,
            userid_list=self.userid_list,
            dept_id_list=self.dept_id_list,
            to_all_user=self.to_all_user,
            agent_id=self.agent_id,
            on_repeated_send=repeated.append,
        )
        if not self.wait_for_delivery:
            return task_ids
        if self.deferrable:
            from airflow_provider_dingtalk.triggers.work_notification import DingTalkDeliveryTrigger

            self.defer(
                trigger=DingTalkDeliveryTrigger(
                    task_ids=task_ids,
                    dingtalk_conn_id=self.dingtalk_conn_id,
                    agent_id=self.agent_id,
                    poll_interval=self.poll_interval,
                    end_time=time.time() + self.timeout,
                ),
                method_name="execute_complete",
                kwargs={"repeated": repeated},
                # a backstop: the trigger reports its own timeout first, with the pending task ids
                timeout=timedelta(seconds=self.timeout + 10 * self.poll_interval),
            )
        self._report(self._wait_in_worker(task_ids), repeated)
        return task_ids

    def execute_complete(
        self, context: Context, event: dict[str, Any], repeated: Sequence[int] = ()
    ) -> list[int]:
        """Resume when :class:`.DingTalkDeliveryTrigger` saw every task finish (or time out).

        :param repeated: task ids whose send was repeated after a lost answer (see :meth:`_report`).
        """
        task_ids = [int(t) for t in event.get("task_ids", [])]
        if event.get("status") == "timeout":
            raise DingTalkError(self._timeout_text(event.get("pending", [])))
        if event.get("status") != "done":
            raise DingTalkError(f"Waiting for delivery of task(s) {task_ids} failed: {event.get('message')}")
        self._report(event["results"], repeated)
        return task_ids

    def _wait_in_worker(self, task_ids: list[int]) -> dict[str, dict[str, Any]]:
        from airflow_provider_dingtalk.triggers.work_notification import send_results, still_sending

        deadline = time.monotonic() + self.timeout
        pending = list(task_ids)
        while pending := still_sending(self.hook, pending, self.agent_id):
            if time.monotonic() >= deadline:
                raise DingTalkError(self._timeout_text(pending))
            self.log.info(
                "DingTalk is still sending task(s) %s; checking again in %ss", pending, self.poll_interval
            )
            time.sleep(self.poll_interval)
        return send_results(self.hook, task_ids, self.agent_id)

    def _timeout_text(self, pending: list[int]) -> str:
        return (
            f"DingTalk had not finished sending task(s) {pending} after {self.timeout:g}s. The messages "
            "were sent and may still arrive; raise timeout= to wait longer."
        )

    def _report(self, results: Mapping[str, Mapping[str, Any]], repeated: Sequence[int]) -> None:
        """Log who did not get the message, and fail when asked to.

        A 143106 (same content the same day) on a task whose send was repeated after a lost answer is
        the lost attempt's delivery, not a failure: DingTalk sent that one, then filtered the repeat.
        """
        repeats = {str(t) for t in repeated}
        from airflow_provider_dingtalk.hooks.work_notification import SendResult

        problems = []
        for task_id, raw in results.items():
            result = SendResult.from_dict(raw)
            self.log.info(
                "Task %s: delivered to %d user(s) (%d read).",
                task_id,
                len(result.read_user_id_list) + len(result.unread_user_id_list),
                len(result.read_user_id_list),
            )
            if result.invalid_user_id_list or result.invalid_dept_id_list:
                problems.append(
                    f"task {task_id}: invalid user ids {result.invalid_user_id_list}, "
                    f"invalid departments {result.invalid_dept_id_list}"
                )
            for item in result.forbidden_list:
                if item.code == SAME_CONTENT_TODAY and str(task_id) in repeats:
                    self.log.info(
                        "Task %s: %s got it from the first attempt, whose answer was lost "
                        "(DingTalk filtered the repeat as the same content today, %s).",
                        task_id, item.userid, SAME_CONTENT_TODAY,
                    )  # fmt: skip
                    continue
                why = FORBIDDEN_CODES.get(item.code, "filtered by DingTalk")
                problems.append(f"task {task_id}: {item.userid} not sent, code {item.code} ({why})")
            listed = {f.userid for f in result.forbidden_list}
            if extra := [u for u in result.forbidden_user_id_list if u not in listed]:
                problems.append(f"task {task_id}: forbidden (filtered) users {extra}")
            if result.failed_user_id_list:
                problems.append(f"task {task_id}: failed users {result.failed_user_id_list}")
        for problem in problems:
            self.log.warning("Not delivered: %s", problem)
        if problems and self.fail_on_undelivered:
            raise DingTalkError("Some recipients did not get the work notification: " + "; ".join(problems))


def _task_ids(value: int | str | Sequence[int | str]) -> list[int]:
    """Task ids from an int, a list, or the text a template renders (``"1,2"`` or ``"[1, 2]"``)."""
    items: list[Any]
    if isinstance(value, bool):
        items = []
    elif isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        items = [v for v in value.strip().strip("[]").split(",") if v.strip()]
    else:
        items = list(value)
    ids = [str(v).strip() for v in items]
    if not ids or not all(v.isdigit() for v in ids):
        raise DingTalkValidationError("task_ids", f"must be one or more DingTalk task ids, not {value!r}")
    return [int(v) for v in ids]


class DingTalkRecallMessageOperator(_DingTalkAppOperator):
    """Withdraw work notifications, e.g. ``task_ids="{{ ti.xcom_pull(task_ids='notify') }}"``.

    :param task_ids: a task id, a list of them, or their rendered text (``"[1, 2]"``).
    :param agent_id: the app's AgentId; defaults to the connection's.
    :param dingtalk_conn_id: a ``dingtalk`` connection.
    """

    template_fields: Sequence[str] = ("task_ids", "agent_id", "dingtalk_conn_id")

    def __init__(self, *, task_ids: int | str | Sequence[int | str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_ids = task_ids

    def execute(self, context: Context) -> list[int]:
        ids = _task_ids(self.task_ids)
        for task_id in ids:
            self.hook.recall(task_id, agent_id=self.agent_id)
            self.log.info("Recalled work notification task %s", task_id)
        return ids


class DingTalkUpdateStatusBarOperator(_DingTalkAppOperator):
    """Change the status bar of OA work notifications that were sent with one.

    :param task_ids: a task id, a list of them, or their rendered text (``"[1, 2]"``).
    :param status_value: the new status text, e.g. ``"Done"``.
    :param status_bg: the new colour, ``0x`` and 8 hex digits ARGB, e.g. ``"0xFF00AA00"``.
    :param agent_id: the app's AgentId; defaults to the connection's.
    :param dingtalk_conn_id: a ``dingtalk`` connection.
    """

    template_fields: Sequence[str] = ("task_ids", "status_value", "status_bg", "agent_id", "dingtalk_conn_id")

    def __init__(
        self,
        *,
        task_ids: int | str | Sequence[int | str],
        status_value: str,
        status_bg: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.task_ids = task_ids
        self.status_value = status_value
        self.status_bg = status_bg

    def execute(self, context: Context) -> list[int]:
        ids = _task_ids(self.task_ids)
        for task_id in ids:
            self.hook.update_status_bar(task_id, self.status_value, self.status_bg, agent_id=self.agent_id)
        self.log.info("Status bar of task(s) %s set to %r", ids, self.status_value)
        return ids

"""``DingTalkHITLNotifier``: a human-in-the-loop task's request as an interactive card, answered with one tap.

For ``HITLOperator(notifiers=[...])`` and its subclasses (``ApprovalOperator``, ``HITLBranchOperator``,
``HITLEntryOperator``). Airflow calls each notifier right after it wrote the request, with the task's
context; the card shows the subject, the body and one button per option, and links to Airflow's
"Required actions" page. A tap comes back to the API server (:mod:`~..events.card_callback`), which
writes the answer to Airflow's HITL record. Setup: docs/hitl.rst.

Imported by DAG files at parse time: no hook or ``requests`` at module level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_dingtalk.notifications._base import (
    DEFAULT_TIMEOUT,
    DingTalkBaseNotifier,
    describe_error,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dingtalk.hooks.interactive_card import CallbackType
    from airflow_provider_dingtalk.retry import RetryPolicy


class DingTalkHITLNotifier(DingTalkBaseNotifier):
    """Send a human-in-the-loop task's request as an interactive card that can be answered in DingTalk.

    Recipients: by default, the DingTalk users that the ``dingtalk`` connection's ``hitl_users`` map
    to the task's ``assigned_users`` (one-to-one, in the app robot's chat); or ``user_ids``; and/or a
    group (``open_conversation_id``). Only assigned users can answer, whoever else sees the card.

    :param card_template_id: the published card template (``….schema``); defaults to the connection's
        extra ``hitl_card_template_id``. docs/hitl.rst says how to build it.
    :param user_ids: DingTalk user ids to send to instead of the mapped assigned users (templated).
    :param open_conversation_id: also (or only) post the card in this group (``cid…``, templated).
    :param callback_type: ``STREAM`` (clicks reach the app's Stream connection; no public URL) or
        ``HTTP`` (clicks are posted to the route registered for ``callback_route_key``).
    :param callback_route_key: the HTTP route; defaults to the connection's ``card_callback_route_key``.
    :param dingtalk_conn_id: a ``dingtalk`` connection (AppKey and AppSecret).
    :param timeout: at most this many seconds for the send; then it is logged and dropped (the task
        still waits, and can be answered in Airflow).
    :param retry_policy: override the default retry policy (capped by ``timeout``).
    """

    template_fields: Sequence[str] = (
        "card_template_id",
        "user_ids",
        "open_conversation_id",
        "callback_route_key",
        "dingtalk_conn_id",
    )

    def __init__(
        self,
        *,
        card_template_id: str | None = None,
        user_ids: Sequence[str] | str | None = None,
        open_conversation_id: str | None = None,
        callback_type: CallbackType = "STREAM",
        callback_route_key: str | None = None,
        dingtalk_conn_id: str = "dingtalk_default",
        timeout: float = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        context: Context | None = None,
    ) -> None:
        super().__init__(timeout=timeout, retry_policy=retry_policy, context=context)
        if callback_type not in ("STREAM", "HTTP"):
            from airflow_provider_dingtalk.exceptions import DingTalkValidationError

            raise DingTalkValidationError("callback_type", f"must be STREAM or HTTP, not {callback_type!r}")
        self.card_template_id = card_template_id
        self.user_ids = user_ids
        self.open_conversation_id = open_conversation_id
        self.callback_type: CallbackType = callback_type
        self.callback_route_key = callback_route_key
        self.dingtalk_conn_id = dingtalk_conn_id

    def _send_alert(self, context: Context, *, deadline: float) -> None:
        from airflow_provider_dingtalk.hooks.interactive_card import DingTalkInteractiveCardHook
        from airflow_provider_dingtalk.messages.hitl_card import out_track_id, parse_user_map
        from airflow_provider_dingtalk.operators._common import as_list

        task: Any = context["task"]
        ti: Any = context["ti"]
        if not hasattr(task, "options") or not hasattr(task, "generate_link_to_ui"):
            self.log.error("DingTalkHITLNotifier is for HITLOperator tasks; %s is not one.", task.task_id)
            return
        hook = DingTalkInteractiveCardHook(
            dingtalk_conn_id=self.dingtalk_conn_id, retry_policy=self._policy(deadline)
        )
        extra = hook.get_connection(self.dingtalk_conn_id).extra_dejson
        assigned = [str(u["id"]) for u in (task.assigned_users or [])]
        if self.user_ids:
            users = as_list(self.user_ids, "user_ids")
        else:
            mapping = parse_user_map(extra.get("hitl_users"))
            users = [dingtalk for dingtalk, airflow in mapping.items() if airflow in assigned]
        group = self.open_conversation_id or None
        if not users and not group:
            self.log.error(
                "No DingTalk recipient for the request of %s: none of its assigned users %s is in the "
                "connection's hitl_users, and no user_ids or open_conversation_id is given.",
                task.task_id,
                assigned,
            )
            return
        template = self.card_template_id or extra.get("hitl_card_template_id")
        if not template:
            self.log.error(
                "No card template: set card_template_id or the connection's hitl_card_template_id."
            )
            return
        route = self.callback_route_key or extra.get("card_callback_route_key")
        try:
            hook.create_and_deliver_card(
                card_template_id=str(template),
                out_track_id=out_track_id(str(ti.id)),
                card_param_map=self._card(context, task, ti),
                user_ids=users,
                open_conversation_id=group,
                callback_type=self.callback_type,
                callback_route_key=str(route) if route else None,
                last_message=f"Airflow: {task.subject}"[:100],
            )
        except Exception as exc:
            self.log.error("DingTalk HITL card not delivered: %s", describe_error(exc))
            return
        self.log.info("DingTalk HITL card sent to %d user(s)%s.", len(users), " and a group" if group else "")

    @staticmethod
    def _card(context: Context, task: Any, ti: Any) -> dict[str, str]:
        from airflow_provider_dingtalk.messages.hitl_card import card_answerable, pending_params

        return pending_params(
            subject=str(task.subject),
            body=str(task.body) if task.body else None,
            options=[str(o) for o in task.options],
            answerable=card_answerable(multiple=bool(task.multiple), has_params=bool(task.params)),
            airflow_url=task.generate_link_to_ui(task_instance=ti),
            dag_id=str(ti.dag_id),
            run_id=str(ti.run_id),
            task_id=str(ti.task_id),
        )


send_dingtalk_hitl_notification = DingTalkHITLNotifier

"""``DingTalkCustomRobotNotifier``: an alert in a group chat through a custom robot (自定义机器人).

Imported by DAG files at parse time: no hook or ``requests`` at module level.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_dingtalk.messages._checks import flag
from airflow_provider_dingtalk.notifications._alert import default_alert, fit_alert
from airflow_provider_dingtalk.notifications._base import (
    DEFAULT_TIMEOUT,
    DingTalkBaseNotifier,
    describe_error,
    measure,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dingtalk.messages import CustomRobotBody, Mentions, Message
    from airflow_provider_dingtalk.notifications._alert import AlertFacts
    from airflow_provider_dingtalk.retry import RetryPolicy


class DingTalkCustomRobotNotifier(DingTalkBaseNotifier):
    """Send an alert to a group chat through a custom robot's webhook, with @-mentions.

    With no ``text`` the default alert goes out: an action card with a "View log" button, or, when
    someone is @-mentioned (only markdown can mention), markdown with the link in the text. The robot
    takes 20 messages a minute; when alerts come faster they are folded into one summary message
    (``fold_storms``), so the robot is never blocked and no alert is lost.

    :param message: your own message instead of the default alert (templated): a message object or
        a raw webhook body dict (its ``at`` counts as the mentions). A message DingTalk would refuse is
        logged and the default alert goes out.
    :param text: markdown body, a Jinja template rendered with the task context; empty for the default.
    :param title: the title shown in the chat list (templated); defaults to the alert's subject.
    :param at_mobiles: mobile numbers to @-mention: a list, or a comma-separated string (templated).
    :param at_user_ids: DingTalk user ids to @-mention: a list or comma-separated string (templated).
    :param at_all: @-mention everyone in the group.
    :param dingtalk_custom_robot_conn_id: a ``dingtalkcustomrobot`` connection (the robot's token and secret).
    :param fold_storms: spool alerts and fold a backlog into one message (see the docs' "Alert storms").
    :param timeout: at most this many seconds for the whole alert, waiting for the robot included;
        an alert not sent by then stays spooled and goes out with the robot's next alert.
    :param retry_policy: override the default retry policy (capped by ``timeout``).
    :param clock: seconds since the epoch; tests pass a fake one.
    :param sleep: how to wait for the robot's rate limit; tests pass one that moves their fake clock.
    """

    template_fields: Sequence[str] = (
        "message",
        "text",
        "title",
        "at_mobiles",
        "at_user_ids",
        "dingtalk_custom_robot_conn_id",
    )

    def __init__(
        self,
        *,
        message: Message | Mapping[str, Any] | None = None,
        text: str | None = None,
        title: str | None = None,
        at_mobiles: Sequence[str] | str | None = None,
        at_user_ids: Sequence[str] | str | None = None,
        at_all: bool = False,
        dingtalk_custom_robot_conn_id: str = "dingtalk_custom_robot_default",
        fold_storms: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
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
        if isinstance(message, Mapping):
            _check_raw_body(message, given_mentions=bool(at_mobiles or at_user_ids or flag(at_all, "at_all")))
        self.at_mobiles = at_mobiles
        self.at_user_ids = at_user_ids
        self.at_all = flag(at_all, "at_all")
        self.dingtalk_custom_robot_conn_id = dingtalk_custom_robot_conn_id
        self.fold_storms = flag(fold_storms, "fold_storms")
        self.clock = clock
        self.sleep = sleep

    def _send_alert(self, context: Context, *, deadline: float) -> None:
        from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
        from airflow_provider_dingtalk.notifications._storm import RobotAlertSpool

        budget = max(0.0, deadline - time.monotonic())
        hook = DingTalkCustomRobotHook(
            self.dingtalk_custom_robot_conn_id,
            retry_policy=self._policy(deadline),
            max_wait=budget,
            clock=self.clock,
            sleep=self.sleep,
        )
        mentions = self._mentions()
        facts = self._facts(context)
        message = self._message(facts, mentions)
        try:
            if self.fold_storms:
                outcome = RobotAlertSpool.for_hook(hook).deliver(
                    message, mentions, facts, deadline=self.clock() + budget
                )
            else:
                hook.send(message, mentions=mentions)
                outcome = "sent"
        except Exception as exc:
            self.log.error("DingTalk custom-robot alert not delivered: %s", describe_error(exc))
            return
        self.log.info("DingTalk custom-robot alert for %s: %s.", facts.identity, outcome)

    def _mentions(self) -> Mentions | None:
        from airflow_provider_dingtalk.messages import Mentions
        from airflow_provider_dingtalk.operators._common import as_list

        mobiles, user_ids = as_list(self.at_mobiles, "at_mobiles"), as_list(self.at_user_ids, "at_user_ids")
        if mobiles or user_ids or self.at_all:  # then the raw body has no 'at' (checked in __init__)
            return Mentions(mobiles=mobiles, user_ids=user_ids, at_all=self.at_all)
        body = self._raw_body()
        return body.mentions if body else None

    def _raw_body(self) -> CustomRobotBody | None:
        """The user's raw webhook body, read; ``None`` for a message object, text or the default alert.

        A body DingTalk would refuse is ``None`` too: the default alert then goes out, its mentions
        those of the notifier's arguments (``_user_message`` logs why).
        """
        from airflow_provider_dingtalk.exceptions import DingTalkValidationError
        from airflow_provider_dingtalk.messages import Message, parse_custom_robot

        if self.message is None or isinstance(self.message, Message) or self._template_error:
            return None
        try:
            body = parse_custom_robot(self.message)
        except DingTalkValidationError:
            return None
        return body

    def _message(self, facts: AlertFacts, mentions: Mentions | None) -> Message:
        from airflow_provider_dingtalk._json import dumps
        from airflow_provider_dingtalk.messages import (
            CUSTOM_ROBOT_MAX_BYTES,
            parse_custom_robot,
            to_custom_robot,
        )

        limit = CUSTOM_ROBOT_MAX_BYTES
        # Measure the whole body as sent: the mentions and the hook's 32-hex msgUuid count too.
        size_of = measure(lambda m: dumps(to_custom_robot(m, mentions=mentions, msg_uuid="0" * 32)), limit)
        own = self._user_message(facts, size_of, limit, parse=lambda raw: parse_custom_robot(raw).message)
        if own is not None:
            return own
        # Only markdown can @-mention, so with mentions the links go in the text instead of buttons.
        return fit_alert(facts, lambda f: default_alert(f, card=mentions is None), size_of, limit)


def _check_raw_body(message: Mapping[str, Any], *, given_mentions: bool) -> None:
    """What a raw body must not hold, checked when the DAG is parsed: an alert cannot fail later."""
    from airflow_provider_dingtalk.exceptions import DingTalkValidationError

    if "msgUuid" in message:
        raise DingTalkValidationError("msgUuid", "the notifier gives every alert its own; leave it out")
    if "at" in message and given_mentions:
        raise DingTalkValidationError(
            "at_mobiles", "the message's 'at' says who to @-mention too: give them in one place"
        )


send_dingtalk_custom_robot_notification = DingTalkCustomRobotNotifier

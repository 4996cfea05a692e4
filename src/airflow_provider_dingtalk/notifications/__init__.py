"""Airflow notifiers that alert through DingTalk: work notifications, custom robots, the app robot.

Use one anywhere Airflow takes a notifier (``on_failure_callback``, ``default_args``, the DAG,
``notifiers=`` of the human-in-the-loop operators). Light to import: DAG files import it at parse time.
"""

from __future__ import annotations

from airflow_provider_dingtalk.notifications.dingtalk import DingTalkNotifier, send_dingtalk_notification
from airflow_provider_dingtalk.notifications.robot import (
    DingTalkRobotNotifier,
    send_dingtalk_robot_notification,
)
from airflow_provider_dingtalk.notifications.webhook import (
    DingTalkWebhookNotifier,
    send_dingtalk_webhook_notification,
)

__all__ = [
    "DingTalkNotifier",
    "DingTalkRobotNotifier",
    "DingTalkWebhookNotifier",
    "send_dingtalk_notification",
    "send_dingtalk_robot_notification",
    "send_dingtalk_webhook_notification",
]

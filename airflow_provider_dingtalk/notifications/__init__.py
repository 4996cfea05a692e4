"""Airflow notifiers that alert through DingTalk: work notifications, custom robots, the app robot.

Use one anywhere Airflow takes a notifier (``on_failure_callback``, ``default_args``, the DAG,
``notifiers=`` of the human-in-the-loop operators). Light to import: DAG files import it at parse time.
"""

from __future__ import annotations

from airflow_provider_dingtalk.notifications.app_robot import (
    DingTalkAppRobotNotifier,
    send_dingtalk_app_robot_notification,
)
from airflow_provider_dingtalk.notifications.custom_robot import (
    DingTalkCustomRobotNotifier,
    send_dingtalk_custom_robot_notification,
)
from airflow_provider_dingtalk.notifications.hitl import (
    DingTalkHITLNotifier,
    send_dingtalk_hitl_notification,
)
from airflow_provider_dingtalk.notifications.work_notification import (
    DingTalkNotifier,
    send_dingtalk_notification,
)

__all__ = [
    "DingTalkAppRobotNotifier",
    "DingTalkCustomRobotNotifier",
    "DingTalkHITLNotifier",
    "DingTalkNotifier",
    "send_dingtalk_app_robot_notification",
    "send_dingtalk_custom_robot_notification",
    "send_dingtalk_hitl_notification",
    "send_dingtalk_notification",
]

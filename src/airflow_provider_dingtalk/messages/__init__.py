"""One message model, rendered into DingTalk's three JSON dialects.

Build a message once (``Text``, ``Markdown``, ``ActionCard`` …) and render it for where it goes:
``to_work_notification`` (the snake_case ``msg`` of asyncsend_v2), ``to_robot_webhook`` (the custom
robot's camelCase body) or ``to_app_robot`` (the v1.0 robot's ``msgKey``/``msgParam``). Every renderer
checks DingTalk's limits and raises ``DingTalkValidationError`` before anything is sent.
"""

from __future__ import annotations

from airflow_provider_dingtalk.messages._checks import fit_text
from airflow_provider_dingtalk.messages.app_robot import APP_ROBOT_MSG_PARAM_MAX_BYTES, to_app_robot
from airflow_provider_dingtalk.messages.model import (
    OA,
    ActionCard,
    Button,
    FeedCard,
    FeedLink,
    File,
    FormRow,
    Image,
    Link,
    Markdown,
    Mentions,
    Message,
    Rich,
    Text,
    Voice,
)
from airflow_provider_dingtalk.messages.robot_webhook import ROBOT_WEBHOOK_MAX_BYTES, to_robot_webhook
from airflow_provider_dingtalk.messages.work_notification import (
    WORK_NOTIFICATION_MSG_MAX_BYTES,
    parse_work_notification,
    to_work_notification,
)

__all__ = [
    "APP_ROBOT_MSG_PARAM_MAX_BYTES",
    "OA",
    "ROBOT_WEBHOOK_MAX_BYTES",
    "WORK_NOTIFICATION_MSG_MAX_BYTES",
    "ActionCard",
    "Button",
    "FeedCard",
    "FeedLink",
    "File",
    "FormRow",
    "Image",
    "Link",
    "Markdown",
    "Mentions",
    "Message",
    "Rich",
    "Text",
    "Voice",
    "fit_text",
    "parse_work_notification",
    "to_app_robot",
    "to_robot_webhook",
    "to_work_notification",
]

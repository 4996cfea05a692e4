"""One message model, rendered into DingTalk's three JSON dialects.

Build a message once (``Text``, ``Markdown``, ``ActionCard`` …) and render it for where it goes:
``to_work_notification`` (the snake_case ``msg`` of asyncsend_v2), ``to_custom_robot`` (the custom
robot's camelCase body) or ``to_app_robot`` (the v1.0 robot's ``msgKey``/``msgParam``). Every renderer
checks DingTalk's limits and raises ``DingTalkValidationError`` before anything is sent.

A message written as a raw DingTalk dict is read into the same model by its dialect's parser
(``parse_work_notification``, ``parse_custom_robot``, ``parse_app_robot``), so it meets the same checks;
the hooks, operators and notifiers take either.
"""

from __future__ import annotations

from airflow_provider_dingtalk.messages._checks import fit_text
from airflow_provider_dingtalk.messages.app_robot import (
    APP_ROBOT_MSG_PARAM_MAX_BYTES,
    parse_app_robot,
    to_app_robot,
)
from airflow_provider_dingtalk.messages.custom_robot import (
    CUSTOM_ROBOT_MAX_BYTES,
    CustomRobotBody,
    parse_custom_robot,
    to_custom_robot,
)
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
from airflow_provider_dingtalk.messages.work_notification import (
    WORK_NOTIFICATION_MSG_MAX_BYTES,
    parse_work_notification,
    to_work_notification,
)

__all__ = [
    "APP_ROBOT_MSG_PARAM_MAX_BYTES",
    "CUSTOM_ROBOT_MAX_BYTES",
    "OA",
    "WORK_NOTIFICATION_MSG_MAX_BYTES",
    "ActionCard",
    "Button",
    "CustomRobotBody",
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
    "parse_app_robot",
    "parse_custom_robot",
    "parse_work_notification",
    "to_app_robot",
    "to_custom_robot",
    "to_work_notification",
]

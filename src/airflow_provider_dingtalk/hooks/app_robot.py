"""App robot (企业机器人) messages through the v1.0 API: to group chats and to users one-to-one.

Part of :class:`~airflow_provider_dingtalk.hooks.dingtalk.DingTalkHook`; builds on ``call_oapi``/``call_api``.
"""

from __future__ import annotations

from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook


class AppRobotMixin(DingTalkBaseHook):
    """App robot (企业机器人) messages through the v1.0 API: to group chats and to users one-to-one."""

"""App robot (企业机器人) messages through the v1.0 API: to group chats and to users one-to-one.

Mixed into :class:`~airflow_provider_dingtalk.hooks.dingtalk.DingTalkHook`; uses its ``call_oapi``/``call_api``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_dingtalk.hooks.dingtalk import DingTalkHook as _Hook
else:
    _Hook = object


class AppRobotMixin(_Hook):
    """App robot (企业机器人) messages through the v1.0 API: to group chats and to users one-to-one."""

"""Work notifications (工作通知): send, track delivery, recall, update the OA status bar, upload media.

Part of :class:`~airflow_provider_dingtalk.hooks.dingtalk.DingTalkHook`; builds on ``call_oapi``/``call_api``.
"""

from __future__ import annotations

from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook


class WorkNotificationMixin(DingTalkBaseHook):
    """Work notifications (工作通知): send, track delivery, recall, update the OA status bar, upload media."""

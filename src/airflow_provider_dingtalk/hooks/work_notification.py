"""Work notifications (工作通知): send, track delivery, recall, update the OA status bar, upload media.

Mixed into :class:`~airflow_provider_dingtalk.hooks.dingtalk.DingTalkHook`; uses its ``call_oapi``/``call_api``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_dingtalk.hooks.dingtalk import DingTalkHook as _Hook
else:
    _Hook = object


class WorkNotificationMixin(_Hook):
    """Work notifications (工作通知): send, track delivery, recall, update the OA status bar, upload media."""

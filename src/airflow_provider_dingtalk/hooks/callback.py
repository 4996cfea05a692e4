"""Event callback registration through the old call_back API.

Part of :class:`~airflow_provider_dingtalk.hooks.dingtalk.DingTalkHook`; builds on ``call_oapi``/``call_api``.
"""

from __future__ import annotations

from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook


class CallbackMixin(DingTalkBaseHook):
    """Event callback registration through the old call_back API."""

"""``DingTalkHook``: everything a DAG does with a DingTalk app, one hook per ``dingtalk`` connection."""

from __future__ import annotations

from airflow_provider_dingtalk.hooks.app_robot import AppRobotMixin
from airflow_provider_dingtalk.hooks.base import AppConfig, DingTalkBaseHook
from airflow_provider_dingtalk.hooks.callback import CallbackMixin
from airflow_provider_dingtalk.hooks.work_notification import WorkNotificationMixin

__all__ = ["AppConfig", "DingTalkBaseHook", "DingTalkHook"]


class DingTalkHook(WorkNotificationMixin, AppRobotMixin, CallbackMixin):
    """Talk to DingTalk as an internal app (AppKey + AppSecret from a ``dingtalk`` connection).

    Obtains the app access token and shares it with every task process on the machine, renews it
    when DingTalk rejects it, and retries transient failures as :mod:`airflow_provider_dingtalk.retry`
    says. Feature methods: work notifications, app robot messages, event callback registration.

    :param dingtalk_conn_id: a connection of type ``dingtalk`` (default ``dingtalk_default``).
    :param retry_policy: override the default retry policy (attempts, backoff, total time).
    """

"""Operators that register, inspect and remove the organisation's DingTalk event callback.

``token`` and ``aes_key`` are best left out of DAG code: by default they (and the URL) come from
the ``dingtalkcallback`` connection that the receiver reads too. They never reach logs or XCom.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_dingtalk.messages._checks import flag

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dingtalk.hooks.callback import DingTalkCallbackHook

__all__ = [
    "DingTalkCallbackFailedResultOperator",
    "DingTalkDeleteCallbackOperator",
    "DingTalkGetCallbackOperator",
    "DingTalkRegisterCallbackOperator",
    "DingTalkUpdateCallbackOperator",
]

_ALREADY_REGISTERED = {71006, 400041}


class _CallbackOperator(BaseOperator):
    """Holds the hook for a ``dingtalk`` connection."""

    def __init__(self, *, dingtalk_conn_id: str = "dingtalk_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dingtalk_conn_id = dingtalk_conn_id

    @cached_property
    def hook(self) -> DingTalkCallbackHook:
        from airflow_provider_dingtalk.hooks.callback import DingTalkCallbackHook

        return DingTalkCallbackHook(self.dingtalk_conn_id)


class DingTalkRegisterCallbackOperator(_CallbackOperator):
    """Register the event callback; DingTalk checks the URL with an encrypted ``check_url`` first.

    :param call_back_tags: event types to receive, e.g. ``["bpms_instance_change"]``.
    :param url: the receiver's public URL; default the callback connection's host.
    :param token: signing token; default the callback connection's ``token`` extra.
    :param aes_key: 43-character EncodingAESKey; default the callback connection's password.
    :param update_if_exists: when a callback is already registered, replace it instead of failing,
        so the DAG can run again.
    :param dingtalk_conn_id: the app's ``dingtalk`` connection.
    :param dingtalk_callback_conn_id: the ``dingtalkcallback`` connection with token/aes_key/URL.
    :return: (XCom) ``{"url", "call_back_tag"}``; never the secrets.
    """

    template_fields: Sequence[str] = (
        "call_back_tags",
        "url",
        "token",
        "aes_key",
        "dingtalk_conn_id",
        "dingtalk_callback_conn_id",
    )
    _update = False

    def __init__(
        self,
        *,
        call_back_tags: Sequence[str],
        url: str | None = None,
        token: str | None = None,
        aes_key: str | None = None,
        update_if_exists: bool = True,
        dingtalk_callback_conn_id: str = "dingtalk_callback_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.call_back_tags = call_back_tags
        self.url = url
        self.token = token
        self.aes_key = aes_key
        self.update_if_exists = flag(update_if_exists, "update_if_exists")
        self.dingtalk_callback_conn_id = dingtalk_callback_conn_id

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        # Airflow stores the rendered fields (shown in the UI) right after this; "token" is a name it
        # masks, "aes_key" is not: register both values so that neither is stored in clear.
        from airflow_provider_dingtalk._redact import mask_secret

        for value in (self.token, self.aes_key):
            if isinstance(value, str):
                mask_secret(value)

    def _settings(self) -> tuple[str, str, str]:
        """URL, token and aes_key: the arguments, else the callback connection."""
        url, token, aes_key = self.url, self.token, self.aes_key
        if not (url and token and aes_key):
            from airflow_provider_dingtalk.hooks.event_callback import DingTalkEventCallbackHook

            config = DingTalkEventCallbackHook(self.dingtalk_callback_conn_id).get_config()
            url = url or config.url or ""
            token = token or config.token.reveal()
            aes_key = aes_key or config.aes_key.reveal()
        from airflow_provider_dingtalk._redact import mask_secret

        mask_secret(token)
        mask_secret(aes_key)
        return url, token, aes_key

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_dingtalk.exceptions import DingTalkAPIError

        url, token, aes_key = self._settings()
        kwargs: dict[str, Any] = {
            "call_back_tags": list(self.call_back_tags),
            "url": url,
            "token": token,
            "aes_key": aes_key,
        }
        if self._update:
            self.hook.update_callback(**kwargs)
        else:
            try:
                self.hook.register_callback(**kwargs)
            except DingTalkAPIError as exc:
                if not (self.update_if_exists and exc.errcode in _ALREADY_REGISTERED):
                    raise
                self.log.info("A callback is already registered; updating it instead.")
                self.hook.update_callback(**kwargs)
        return {"url": url, "call_back_tag": list(self.call_back_tags)}


class DingTalkUpdateCallbackOperator(DingTalkRegisterCallbackOperator):
    """Replace the registered callback (tags, URL, keys); same arguments as the register operator."""

    _update = True


class DingTalkGetCallbackOperator(_CallbackOperator):
    """Push the registered callback to XCom: ``call_back_tag``, ``url``, and ``token``/``aes_key`` as ``***``.

    :param dingtalk_conn_id: the app's ``dingtalk`` connection.
    """

    template_fields: Sequence[str] = ("dingtalk_conn_id",)

    def execute(self, context: Context) -> dict[str, Any]:
        return self.hook.get_callback()


class DingTalkDeleteCallbackOperator(_CallbackOperator):
    """Delete the registered callback; DingTalk stops pushing events.

    :param dingtalk_conn_id: the app's ``dingtalk`` connection.
    """

    template_fields: Sequence[str] = ("dingtalk_conn_id",)

    def execute(self, context: Context) -> None:
        self.hook.delete_callback()


class DingTalkCallbackFailedResultOperator(_CallbackOperator):
    """Fetch every event DingTalk failed to deliver (all pages); pushes the list to XCom.

    :param dingtalk_conn_id: the app's ``dingtalk`` connection.
    """

    template_fields: Sequence[str] = ("dingtalk_conn_id",)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        failed = self.hook.get_callback_failed_results()
        self.log.info("DingTalk holds %d undelivered callback events", len(failed))
        return failed

"""The ``dingtalkcallback`` connection: one place for a callback's token, aes_key, receiver id and URL.

Both sides read it: the registration operators (what to tell DingTalk) and the receiver (how to
check what DingTalk sends), so the two can never disagree.

========================  =====================================================================
connection field          meaning
========================  =====================================================================
login                     receiver id: the corpId for ``register_call_back``, the AppKey for an
                          event subscription configured in the developer console
password                  aes_key: the 43-character EncodingAESKey
extra ``token``           the signing token (sensitive)
host                      the receiver's public URL, e.g. ``https://airflow.example.com/dingtalk/events``
extra ``max_skew``        seconds a request's timestamp may be off (default 300)
========================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from airflow.sdk import BaseHook

from airflow_provider_dingtalk._redact import Secret
from airflow_provider_dingtalk.crypto import validate_aes_key
from airflow_provider_dingtalk.exceptions import DingTalkValidationError

__all__ = ["CallbackConfig", "DingTalkEventCallbackHook"]

DEFAULT_MAX_SKEW = 300.0


class _ConnectionLike(Protocol):
    conn_id: str
    host: str | None
    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class CallbackConfig:
    """A callback's settings; ``token`` and ``aes_key`` never print."""

    receiver_id: str
    token: Secret
    aes_key: Secret
    url: str | None
    max_skew: float = DEFAULT_MAX_SKEW

    @classmethod
    def from_connection(cls, conn: _ConnectionLike) -> CallbackConfig:
        """Read and check a ``dingtalkcallback`` connection (SDK or core ``Connection``).

        :raises DingTalkValidationError: naming the connection field that is missing or malformed.
        """
        where = f"connection {conn.conn_id!r}"
        extra = conn.extra_dejson
        token = str(extra.get("token") or "")
        if not conn.login:
            raise DingTalkValidationError(f"{where} login", "set the receiver id (corpId or AppKey)")
        if not token:
            raise DingTalkValidationError(f"{where} extra token", "set the callback token")
        validate_aes_key(conn.password or "", field=f"{where} password (aes_key)")
        host = (conn.host or "").strip() or None
        return cls(
            receiver_id=conn.login,
            token=Secret(token),
            aes_key=Secret(conn.password or ""),
            url=host,
            max_skew=float(DEFAULT_MAX_SKEW if extra.get("max_skew") in (None, "") else extra["max_skew"]),
        )

    def crypto(self, **kwargs: Any) -> Any:
        """A :class:`~airflow_provider_dingtalk.crypto.DingTalkCrypto` for these settings."""
        from airflow_provider_dingtalk.crypto import DingTalkCrypto

        return DingTalkCrypto(
            token=self.token.reveal(),
            aes_key=self.aes_key.reveal(),
            receiver_id=self.receiver_id,
            max_skew=self.max_skew,
            **kwargs,
        )


class DingTalkEventCallbackHook(BaseHook):
    """Reads a ``dingtalkcallback`` connection: the secrets a callback is registered and verified with.

    :param dingtalk_callback_conn_id: the connection id (default ``dingtalk_callback_default``).
    """

    conn_name_attr = "dingtalk_callback_conn_id"
    default_conn_name = "dingtalk_callback_default"
    conn_type = "dingtalkcallback"
    hook_name = "DingTalk Event Callback"

    def __init__(self, dingtalk_callback_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dingtalk_callback_conn_id = dingtalk_callback_conn_id

    def get_config(self) -> CallbackConfig:
        """The connection's settings, checked; token and aes_key are registered with the secrets masker."""
        from airflow.sdk.log import mask_secret

        from airflow_provider_dingtalk.hooks.base import check_conn_type

        conn = self.get_connection(self.dingtalk_callback_conn_id)
        check_conn_type(self.dingtalk_callback_conn_id, conn.conn_type, self.conn_type)
        config = CallbackConfig.from_connection(conn)
        mask_secret(config.token.reveal())
        mask_secret(config.aes_key.reveal())
        return config

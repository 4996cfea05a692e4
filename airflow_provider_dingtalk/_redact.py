"""Keep DingTalk credentials out of logs and error messages.

Tokens travel in query strings (``?access_token=``, ``?appsecret=``, robot ``sign``, a robot
message's ``sessionWebhook`` ``?session=``, a Stream connection's ``?ticket=``), so any URL that
reaches a log line or an exception goes through :func:`redact` first.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
_SECRET_PARAMS = re.compile(
    r"(?i)\b(access_token|appsecret|corpsecret|app_secret|appSecret|sign|aes_key|token|secret|session|ticket)=([^&\s'\"#]+)"
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Mask secret query parameters and every known secret value in ``text``."""
    text = _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}={MASK}", text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks secret query parameters in records of loggers we don't own (urllib3 logs request lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_redacting_filter(logger_name: str) -> None:
    """Mask secret query parameters in a library's log lines, once per process: urllib3 logs
    ``GET /gettoken?appkey=…&appsecret=…`` at DEBUG, websockets ``GET /connect?ticket=…``."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())


class Secret:
    """A string that does not print: ``repr``/``str`` show ``***``; :meth:`reveal` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


def mask_secret(value: str | None) -> None:
    """Register ``value`` with Airflow's secrets masker, so task logs never show it."""
    if value:
        from airflow.sdk.log import mask_secret as register

        register(value)

"""Event callback registration through the old ``call_back`` API (DingTalk's "Register a callback API"
page: ``register_call_back``, ``update_call_back``, ``get_call_back``, ``delete_call_back``).

Built on :class:`~airflow_provider_dingtalk.hooks.base.DingTalkBaseHook`. Everything is checked before
it is sent, and the callback ``token`` and ``aes_key`` never come back out: :meth:`get_callback`
masks them, and both are registered with Airflow's secrets masker.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from airflow_provider_dingtalk._redact import mask_secret
from airflow_provider_dingtalk.crypto import validate_aes_key
from airflow_provider_dingtalk.event_types import is_known_tag
from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError
from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook

__all__ = ["DingTalkCallbackHook", "mask_callback", "validate_callback"]

MASK = "***"
MAX_TAGS = 20  # TOP doc: call_back_tag list length ≤ 20
_EXISTS = frozenset({71006, 400041})  # a callback is already registered
_MISSING = frozenset({71007, 400040})  # no callback is registered
_GET_PATH = "/call_back/get_call_back"
_DELETE_PATH = "/call_back/delete_call_back"
_REGISTER_PATH = "/call_back/register_call_back"


def validate_callback(*, call_back_tags: Iterable[str], url: str, token: str, aes_key: str) -> list[str]:
    """Check a callback registration the way DingTalk would, before anything is sent.

    :param call_back_tags: event types to subscribe to; each must be in
        :data:`~airflow_provider_dingtalk.event_types.CALL_BACK_TAGS`
        (``edu_*`` tags are accepted too).
    :param url: the receiver's public ``http(s)://`` URL.
    :param token: the signing token (any non-empty string).
    :param aes_key: the 43-character EncodingAESKey.
    :return: the tags as a list, order kept, duplicates removed.
    :raises DingTalkValidationError: naming the field, and for tags every unknown one.
    """
    if isinstance(call_back_tags, str):
        raise DingTalkValidationError("call_back_tags", "must be a list of event types, not one string")
    tags = list(dict.fromkeys(str(t) for t in call_back_tags))
    if not tags:
        raise DingTalkValidationError("call_back_tags", "must name at least one event type")
    unknown = [t for t in tags if not is_known_tag(t)]
    if unknown:
        raise DingTalkValidationError(
            "call_back_tags",
            f"unknown event types {unknown}; DingTalk accepts only its documented tags, "
            "e.g. bpms_instance_change, user_add_org",
        )
    if len(tags) > MAX_TAGS:
        raise DingTalkValidationError(
            "call_back_tags", "too many event types", size=len(tags), limit=MAX_TAGS
        )
    if not isinstance(url, str) or not _is_http_url(url):
        raise DingTalkValidationError("url", "must be an http:// or https:// URL that DingTalk can reach")
    if not isinstance(token, str) or not token:
        raise DingTalkValidationError("token", "must be a non-empty string")
    validate_aes_key(aes_key)
    return tags


def _is_http_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def mask_callback(body: dict[str, Any]) -> dict[str, Any]:
    """The registered callback without secrets: ``token`` and ``aes_key`` become ``***`` when set."""
    shown = {k: v for k, v in body.items() if k not in ("errcode", "errmsg", "request_id")}
    for key in ("token", "aes_key"):
        if key in shown:
            shown[key] = MASK if shown[key] else shown[key]
    return shown


class DingTalkCallbackHook(DingTalkBaseHook):
    """Event callback registration through the old call_back API."""

    def register_callback(self, *, call_back_tags: Iterable[str], url: str, token: str, aes_key: str) -> None:
        """Register the organisation's callback URL. DingTalk checks the URL first (``check_url``).

        :param call_back_tags: event types to receive, e.g. ``["bpms_instance_change"]``.
        :param url: the receiver's public URL.
        :param token: signing token, as configured at the receiver.
        :param aes_key: 43-character EncodingAESKey, as configured at the receiver.
        :raises DingTalkValidationError: bad input, before anything is sent.
        :raises DingTalkAPIError: e.g. 71009 when the URL did not answer the handshake with ``success``.
        """
        self._post_callback(_REGISTER_PATH, call_back_tags, url, token, aes_key)

    def update_callback(self, *, call_back_tags: Iterable[str], url: str, token: str, aes_key: str) -> None:
        """Replace the registered callback (tags, URL and keys). DingTalk checks the URL again.

        :param call_back_tags: event types to receive.
        :param url: the receiver's public URL.
        :param token: signing token.
        :param aes_key: 43-character EncodingAESKey.
        """
        self._post_callback("/call_back/update_call_back", call_back_tags, url, token, aes_key)

    def get_callback(self) -> dict[str, Any]:
        """The registered callback: ``call_back_tag``, ``url``, and ``token``/``aes_key`` masked."""
        return mask_callback(self.call_oapi("GET", _GET_PATH))

    def delete_callback(self) -> None:
        """Remove the registered callback; DingTalk stops pushing events."""
        lost: list[bool] = []
        try:
            self.call_oapi("GET", _DELETE_PATH, on_no_answer=partial(lost.append, True))
        except DingTalkAPIError as exc:
            # A retry after a lost answer finds nothing to delete: the lost attempt did it.
            if not (lost and exc.errcode in _MISSING):
                raise
            self.log.info("The callback is deleted (by an earlier attempt whose answer was lost).")

    def get_callback_failed_results(self, *, max_pages: int = 1000) -> list[dict[str, Any]]:
        """Every event DingTalk failed to deliver (kept about a week), following ``has_more``.

        The API takes no cursor: each call returns the next items, so it is called until ``has_more``
        is false.

        :param max_pages: stop after this many calls even if DingTalk keeps saying ``has_more``.
        :return: the ``failed_list`` items of every page, in order.
        """
        items: list[dict[str, Any]] = []
        for _ in range(max_pages):
            lost: list[bool] = []
            body = self.call_oapi(
                "GET", "/call_back/get_call_back_failed_result", on_no_answer=partial(lost.append, True)
            )
            if lost:
                # DingTalk removes what it returns: a page whose answer was lost cannot be fetched again.
                self.log.warning(
                    "An answer of get_call_back_failed_result was lost; DingTalk may have dropped up to "
                    "one page (200) of failed events with it."
                )
            page = body.get("failed_list") or []
            items.extend(item for item in page if isinstance(item, dict))
            if not body.get("has_more") or not page:
                break
        else:
            self.log.warning("Stopped after %d pages of failed callback events; more remain.", max_pages)
        return items

    def _post_callback(self, path: str, tags: Iterable[str], url: str, token: str, aes_key: str) -> None:
        checked = validate_callback(call_back_tags=tags, url=url, token=token, aes_key=aes_key)
        mask_secret(token)
        mask_secret(aes_key)
        body = {"call_back_tag": checked, "token": token, "aes_key": aes_key, "url": url}
        lost: list[bool] = []
        try:
            self.call_oapi("POST", path, json=body, on_no_answer=partial(lost.append, True))
        except DingTalkAPIError as exc:
            # A retry after a lost answer is told "already registered": fine if it is exactly ours.
            if not (path == _REGISTER_PATH and lost and exc.errcode in _EXISTS and self._registered_as(body)):
                raise
        self.log.info("DingTalk accepted the callback %s for %s", url, ", ".join(checked))

    def _registered_as(self, body: dict[str, Any]) -> bool:
        """Whether the registered callback is exactly ``body`` (tags, URL, token and aes_key)."""
        current = self.call_oapi("GET", _GET_PATH)
        return all(current.get(key) == body[key] for key in ("call_back_tag", "url", "token", "aes_key"))

"""HTTP for every DingTalk hook: one keep-alive session, redacted transport errors, and the two
answer styles (the old API's ``errcode`` JSON and the v1.0 API's HTTP status + ``code``).

The hooks own connections and tokens; this module owns what happens on the wire, so the custom robot
hook (a webhook with no app token) and the app hooks read DingTalk's answers the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_dingtalk._json import dumps
from airflow_provider_dingtalk._redact import install_redacting_filter, redact
from airflow_provider_dingtalk.exceptions import DingTalkAPIError, hint_for
from airflow_provider_dingtalk.retry import IP_BLOCKED, DingTalkTransportError

if TYPE_CHECKING:
    import requests

__all__ = ["api_result", "http_send", "json_body", "new_session", "oapi_result"]


def new_session(*, hosts: Iterable[str], proxy: str | None = None) -> requests.Session:
    """A keep-alive session for ``hosts``, whose urllib3 debug lines never show tokens.

    The proxy is settled here, once: ``proxy`` for every host, or else what the standard
    ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` and ``NO_PROXY`` variables say for each host.
    requests would read the environment again on every request (``trust_env``), and that lookup
    was measured as a cost on hot paths; so the session does not trust the environment, and the
    CA bundle the environment names (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, which proxies
    that inspect TLS need) is read here too.

    :param hosts: the ``scheme://host[:port]`` the session will call.
    :param proxy: the connection's proxy URL, e.g. ``http://proxy.example.com:3128``.
    """
    import os

    import requests
    from requests.utils import get_environ_proxies, select_proxy

    install_redacting_filter("urllib3.connectionpool")
    session = requests.Session()
    session.headers["User-Agent"] = "airflow-provider-dingtalk"
    session.trust_env = False
    for host in hosts:
        chosen = proxy or select_proxy(host, get_environ_proxies(host))
        if chosen:
            # A "scheme://hostname" key applies to that host only (see requests' select_proxy).
            parts = urlsplit(host)
            session.proxies[f"{parts.scheme}://{parts.hostname}"] = chosen
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session


def http_send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: tuple[float, float],
    secrets: list[str],
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    files: Mapping[str, tuple[str, bytes, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """One HTTP request; failures to get an answer become a redacted :class:`DingTalkTransportError`.

    :param secrets: values to mask in error messages (the URL may carry tokens).
    """
    import requests

    send_headers = dict(headers or {})
    data: bytes | None = None
    if json is not None:
        data = dumps(json).encode("utf-8")
        send_headers["Content-Type"] = "application/json;charset=utf-8"
    try:
        resp = session.request(
            method, url, params=params, data=data, files=files, headers=send_headers, timeout=timeout
        )
    except requests.RequestException as exc:
        # requests puts the full URL (with the token) in its messages: redact, and drop the chain.
        raise DingTalkTransportError(
            f"{method} {_path(url)} failed: {type(exc).__name__}: {redact(str(exc), secrets)}"
        ) from None
    if resp.status_code in (502, 503, 504) or (resp.status_code >= 500 and json_body(resp) is None):
        raise DingTalkTransportError(
            f"{method} {_path(url)} answered HTTP {resp.status_code}", http_status=resp.status_code
        )
    return resp


def oapi_result(
    resp: requests.Response, *, api: str, hint: Callable[[int, str], str | None] | None = None
) -> dict[str, Any]:
    """The JSON of an old-API answer; an errcode other than 0 raises :class:`DingTalkAPIError`.

    :param api: the path, named in the error.
    :param hint: ``(errcode, errmsg) -> fix`` where the fix depends on the errmsg; default :func:`hint_for`.
    """
    body = json_body(resp)
    if body is None:
        raise DingTalkAPIError(
            errmsg=f"HTTP {resp.status_code} without a JSON body", http_status=resp.status_code, api=api
        )
    if "errcode" not in body:
        raise _foreign(resp, body, api=api)
    errcode = _as_int(body["errcode"])
    sub_code = body.get("sub_code")
    if errcode == 88 and sub_code is not None and str(sub_code).lstrip("-").isdigit():
        errcode = int(sub_code)  # topapi wraps the real error as 88 + sub_code
    if errcode != 0:
        errmsg = str(body.get("sub_msg") or body.get("errmsg") or "")
        raise DingTalkAPIError(
            errcode=errcode,
            errmsg=errmsg,
            sub_code=None if sub_code is None else str(sub_code),
            request_id=body.get("request_id"),
            http_status=resp.status_code,
            api=api,
            hint=hint(errcode, errmsg) if hint else hint_for(errcode),
        )
    if not resp.ok:  # errcode 0 on an error status is a proxy's page, not DingTalk's success
        raise DingTalkAPIError(
            errmsg=f"HTTP {resp.status_code} is not a DingTalk answer", http_status=resp.status_code, api=api
        )
    return body


def _foreign(resp: requests.Response, body: dict[str, Any], *, api: str) -> DingTalkAPIError:
    """The error for JSON that is not a DingTalk result: the gateway's IP block, a proxy's error page."""
    if "wait" in body and "punish" in body:
        # DingTalk's gateway blocks an egress IP that makes over 10,000 calls in 20 s, with this body
        # instead of an errcode (DingTalk docs, "调用频率限制"); it lifts, so the retry policy retries it.
        return DingTalkAPIError(
            code=IP_BLOCKED,
            errmsg="DingTalk's gateway blocked this machine's IP for calling too often",
            http_status=resp.status_code,
            api=api,
            hint="Make fewer calls from this machine: every app and robot on it counts towards the limit.",
        )
    return DingTalkAPIError(
        errmsg=f"HTTP {resp.status_code} is not a DingTalk answer (no errcode); keys: {sorted(body)[:8]}",
        http_status=resp.status_code,
        api=api,
    )


def json_body(resp: requests.Response) -> dict[str, Any] | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def api_result(resp: requests.Response, *, api: str) -> dict[str, Any]:
    """The JSON of a v1.0 answer; an HTTP error raises :class:`DingTalkAPIError` with DingTalk's ``code``.

    A 200 answer that carries an old-style nonzero ``errcode`` (the gateway does this) is an error too.
    """
    body = json_body(resp)
    if resp.ok:
        if body and body.get("errcode", 0) not in (0, "0"):
            oapi_result(resp, api=api)  # raises: an old-style errcode is an error, never success
        if body and "errcode" not in body and "wait" in body and "punish" in body:
            raise _foreign(resp, body, api=api)
        return body or {}
    body = body or {}
    code = str(body.get("code") or f"HTTP{resp.status_code}")
    raise DingTalkAPIError(
        code=code,
        errmsg=str(body.get("message") or resp.reason or ""),
        request_id=body.get("requestid") or body.get("requestId"),
        http_status=resp.status_code,
        api=api,
        hint=hint_for(code),
    )


def _as_int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return -2  # an errcode we can't read is an error, never success


def _path(url: str) -> str:
    return redact(url.split("?", 1)[0])

"""The core of the DingTalk app hook: connection, access tokens, and calls to both API families.

Feature modules (work notifications, app robot, callbacks) subclass :class:`DingTalkBaseHook`;
:class:`~airflow_provider_dingtalk.hooks.dingtalk.DingTalkHook` combines them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_dingtalk._json import dumps
from airflow_provider_dingtalk._redact import Secret, install_urllib3_filter, redact
from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError, hint_for
from airflow_provider_dingtalk.retry import DingTalkTransportError, RetryPolicy, is_token_error

if TYPE_CHECKING:
    import requests

    from airflow_provider_dingtalk.token_cache import TokenCache

T = TypeVar("T")
Family = Literal["oapi", "api"]

DEFAULT_HOST = "https://oapi.dingtalk.com"
DEFAULT_API_HOST = "https://api.dingtalk.com"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """What the hook reads from a ``dingtalk`` connection. The secret never prints."""

    conn_id: str
    app_key: str
    app_secret: Secret
    host: str
    api_host: str
    agent_id: str | None
    connect_timeout: float
    read_timeout: float
    share_token: bool


def normalise_host(raw: str | None, default: str, port: int | None = None) -> str:
    """``oapi.dingtalk.com`` → ``https://oapi.dingtalk.com``; keeps an explicit scheme and port."""
    host = (raw or "").strip().rstrip("/") or default
    if "://" not in host:
        host = f"https://{host}"
        if port:
            host = f"{host}:{port}"
    return host


class DingTalkBaseHook(BaseHook):
    """Talk to DingTalk as an internal app (AppKey + AppSecret): the part every feature needs.

    Obtains the app access token, caches it for every task process on the machine, renews it when
    DingTalk rejects it, and retries transient failures as :mod:`airflow_provider_dingtalk.retry` says.

    :param dingtalk_conn_id: a connection of type ``dingtalk``.
    :param retry_policy: override the default retry policy (attempts, backoff, total time).
    """

    conn_name_attr = "dingtalk_conn_id"
    default_conn_name = "dingtalk_default"
    conn_type = "dingtalk"
    hook_name = "DingTalk App"

    def __init__(
        self,
        dingtalk_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dingtalk_conn_id = dingtalk_conn_id
        self.retry_policy = retry_policy or RetryPolicy()
        self._clock = clock
        self._token_caches: dict[Family, TokenCache] = {}

    # -- configuration -------------------------------------------------------------------------

    @cached_property
    def app(self) -> AppConfig:
        conn = self.get_connection(self.dingtalk_conn_id)
        extra = conn.extra_dejson
        if not conn.login or not conn.password:
            missing = "login (AppKey)" if not conn.login else "password (AppSecret)"
            raise DingTalkValidationError(
                f"connection {self.dingtalk_conn_id!r}",
                f"{missing} is empty; set it from the developer console",
            )
        self._mask(conn.password)
        agent_id = extra.get("agent_id")
        return AppConfig(
            conn_id=self.dingtalk_conn_id,
            app_key=conn.login,
            app_secret=Secret(conn.password),
            host=normalise_host(conn.host, DEFAULT_HOST, conn.port),
            api_host=normalise_host(extra.get("api_host"), DEFAULT_API_HOST),
            agent_id=str(agent_id) if agent_id not in (None, "") else None,
            connect_timeout=float(extra.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT),
            read_timeout=float(extra.get("read_timeout") or DEFAULT_READ_TIMEOUT),
            share_token=str(extra.get("shared_cache", True)).lower() not in ("false", "0", "no", "off"),
        )

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session per hook."""
        return new_session()

    # -- tokens --------------------------------------------------------------------------------

    def get_access_token(self) -> str:
        """The app access token for the old (oapi) API, from the cache or ``gettoken``."""
        return self._token_cache("oapi").get(self._fetch_oapi_token)

    def get_api_access_token(self) -> str:
        """The app access token for the v1.0 API (also accepted by the old API)."""
        return self._token_cache("api").get(self._fetch_api_token)

    def _token_cache(self, family: Family) -> TokenCache:
        # Built once per hook: checking the state folder takes syscalls that every call would repeat.
        if family in self._token_caches:
            return self._token_caches[family]
        from airflow_provider_dingtalk._filelock import state_dir
        from airflow_provider_dingtalk.token_cache import TokenCache, cache_key

        host = self.app.host if family == "oapi" else self.app.api_host
        directory = state_dir() if self.app.share_token else None
        key = cache_key(host, family, self.app.app_key)
        cache = self._token_caches[family] = TokenCache(key=key, directory=directory, clock=self._clock)
        return cache

    def _fetch_oapi_token(self) -> tuple[str, object]:
        params = {"appkey": self.app.app_key, "appsecret": self.app.app_secret.reveal()}
        body = self.retry_policy.call(lambda: self._oapi_request("GET", "/gettoken", params=params))
        token = str(body.get("access_token") or "")
        if not token:
            raise DingTalkAPIError(errmsg="gettoken answered without access_token", api="/gettoken")
        self._mask(token)
        self.log.info("Fetched a new DingTalk access token for app %s", self.app.app_key)
        return token, body.get("expires_in")

    def _fetch_api_token(self) -> tuple[str, object]:
        payload = {"appKey": self.app.app_key, "appSecret": self.app.app_secret.reveal()}
        path = "/v1.0/oauth2/accessToken"
        body = self.retry_policy.call(lambda: self._api_request("POST", path, json=payload, token=None))
        token = str(body.get("accessToken") or "")
        if not token:
            raise DingTalkAPIError(errmsg="accessToken missing from the answer", api=path)
        self._mask(token)
        self.log.info("Fetched a new DingTalk v1.0 access token for app %s", self.app.app_key)
        return token, body.get("expireIn")

    def _with_token(self, family: Family, call: Callable[[str], T]) -> T:
        """Run ``call(token)`` with retries; if DingTalk rejects the token, renew it and try once more."""
        cache = self._token_cache(family)
        fetch = self._fetch_oapi_token if family == "oapi" else self._fetch_api_token
        token = cache.get(fetch)
        try:
            return self.retry_policy.call(lambda: call(token))
        except DingTalkAPIError as exc:
            if not is_token_error(exc):
                raise
            self.log.warning(
                "DingTalk rejected the cached access token (%s); fetching a new one and retrying once.",
                exc.errcode if exc.errcode is not None else exc.code,
            )
            cache.invalidate(token)
            fresh = cache.get(fetch)
            return self.retry_policy.call(lambda: call(fresh))

    # -- calls ---------------------------------------------------------------------------------

    def call_oapi(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        """Call the old API (``oapi.dingtalk.com``); the token goes in the query string.

        :param files: multipart uploads as ``{field: (filename, content, content_type)}``.
        :return: the JSON answer; an errcode other than 0 raises :class:`DingTalkAPIError`.
        """
        return self._with_token(
            "oapi",
            lambda token: self._oapi_request(
                method, path, params={**(params or {}), "access_token": token}, json=json, files=files
            ),
        )

    def call_api(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call the v1.0 API (``api.dingtalk.com``); the token goes in ``x-acs-dingtalk-access-token``.

        :return: the JSON answer; an HTTP error raises :class:`DingTalkAPIError` with DingTalk's ``code``.
        """
        return self._with_token(
            "api", lambda token: self._api_request(method, path, json=json, params=params, token=token)
        )

    def test_connection(self) -> tuple[bool, str]:
        """Fetch a token with the connection's credentials (one cheap real call, cache bypassed)."""
        try:
            self._fetch_oapi_token()
        except Exception as exc:
            return False, str(exc)
        return True, f"Connection works: DingTalk issued an access token for app {self.app.app_key}."

    # -- HTTP ----------------------------------------------------------------------------------

    def _oapi_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any],
        json: Any = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        resp = self._send(method, self.app.host + path, params=params, json=json, files=files)
        return oapi_result(resp, api=path)

    def _api_request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        token: str | None,
    ) -> dict[str, Any]:
        headers = {"x-acs-dingtalk-access-token": token} if token else {}
        resp = self._send(method, self.app.api_host + path, params=params, json=json, headers=headers)
        body = _json_body(resp)
        if resp.ok:
            if body and body.get("errcode", 0) not in (0, "0"):
                oapi_result(resp, api=path)  # raises: an old-style errcode is an error, never success
            return body or {}
        body = body or {}
        code = str(body.get("code") or f"HTTP{resp.status_code}")
        raise DingTalkAPIError(
            code=code,
            errmsg=str(body.get("message") or resp.reason or ""),
            request_id=body.get("requestid") or body.get("requestId"),
            http_status=resp.status_code,
            api=path,
            hint=hint_for(code),
        )

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return http_send(
            self.session,
            method,
            url,
            params=params,
            json=json,
            files=files,
            headers=headers,
            timeout=(self.app.connect_timeout, self.app.read_timeout),
            secrets=self._secrets(),
        )

    def _secrets(self) -> list[str]:
        return [self.app.app_secret.reveal()]

    @staticmethod
    def _mask(secret: str) -> None:
        """Register with Airflow's secrets masker so task logs never show it."""
        from airflow.sdk.log import mask_secret

        mask_secret(secret)


def new_session() -> requests.Session:
    """A keep-alive session whose urllib3 debug lines never show tokens."""
    import requests

    install_urllib3_filter()
    session = requests.Session()
    session.headers["User-Agent"] = "airflow-provider-dingtalk"
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
    if resp.status_code in (502, 503, 504) or (resp.status_code >= 500 and _json_body(resp) is None):
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
    body = _json_body(resp)
    if body is None:
        raise DingTalkAPIError(
            errmsg=f"HTTP {resp.status_code} without a JSON body", http_status=resp.status_code, api=api
        )
    errcode = _as_int(body.get("errcode", 0))
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
    return body


def _json_body(resp: requests.Response) -> dict[str, Any] | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _as_int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return -2  # an errcode we can't read is an error, never success


def _path(url: str) -> str:
    return redact(url.split("?", 1)[0])

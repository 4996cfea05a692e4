"""The base of every DingTalk app hook: the ``dingtalk`` connection, access tokens, calls to both APIs.

One hook per DingTalk API area builds on :class:`DingTalkBaseHook` (work notifications, the app
robot, callback registration), as Airflow's Amazon provider builds its service hooks on
``AwsBaseHook``. The base is usable on its own for any API the feature hooks do not wrap::

    DingTalkBaseHook().call_api("GET", "/v1.0/contact/users/me")

What happens on the wire (sessions, redaction, reading answers) is in :mod:`airflow_provider_dingtalk.http`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_dingtalk._redact import Secret, mask_secret
from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError
from airflow_provider_dingtalk.http import api_result, http_send, new_session, oapi_result
from airflow_provider_dingtalk.messages._checks import flag
from airflow_provider_dingtalk.retry import DingTalkTransportError, RetryPolicy, is_token_error

if TYPE_CHECKING:
    import requests

    from airflow_provider_dingtalk.state import StateBackend
    from airflow_provider_dingtalk.token_cache import TokenCache

T = TypeVar("T")
Family = Literal["oapi", "api"]
OnNoAnswer = Callable[[], None]

DEFAULT_HOST = "https://oapi.dingtalk.com"
DEFAULT_API_HOST = "https://api.dingtalk.com"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0
BAD_CREDENTIALS, BAD_CREDENTIALS_V1 = 40089, "invalidClientIdOrSecret"


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """What the hook reads from a ``dingtalk`` connection. The secret never prints."""

    conn_id: str
    app_key: str
    app_secret: Secret
    host: str
    api_host: str | None  # None: a custom host without api_host, so no v1.0 calls (see v1_host)
    agent_id: str | None
    proxy: str | None
    connect_timeout: float
    read_timeout: float
    share_token: bool
    state: StateBackend = field(repr=False)  # extras state_backend/redis_url, else [dingtalk]

    def v1_host(self) -> str:
        """Where v1.0 calls go; refused when the connection's custom host has no api_host beside it."""
        if self.api_host is None:
            raise DingTalkValidationError(
                f"connection {self.conn_id!r}",
                f"has a custom host ({self.host}) but no api_host extra, so v1.0 calls would go to "
                f"the real {DEFAULT_API_HOST} with the AppSecret: set api_host to your proxy's v1.0 "
                f"address, or to {DEFAULT_API_HOST} to call DingTalk directly",
            )
        return self.api_host


def check_conn_type(conn_id: str, found: str | None, wanted: str) -> None:
    """A connection of another type has other fields: say so rather than "login is empty"."""
    if found and found != wanted:
        raise DingTalkValidationError(
            f"connection {conn_id!r}",
            f"is a {found!r} connection; this needs a {wanted!r} connection ({_CONN_TYPES.get(wanted, '')})",
        )


_CONN_TYPES = {
    "dingtalk": "DingTalk App: AppKey and AppSecret",
    "dingtalkcustomrobot": "DingTalk Custom Robot: the webhook URL or token, and its SEC secret",
    "dingtalkcallback": "DingTalk Event Callback: token and aes_key",
}


def check_host(conn_id: str, host: str, *, field: str = "host") -> None:
    """A host is scheme, name and port (and maybe a proxy's path prefix), never a query string.

    A webhook URL pasted into Host would put the robot's token in every URL built from it; the
    value is not echoed, since it may be that token.
    """
    if "?" in host or "access_token" in host or "#" in host:
        raise DingTalkValidationError(
            f"connection {conn_id!r}",
            f"{field} must be a host such as https://oapi.dingtalk.com, without a query string; a "
            "webhook URL goes into the password field of a custom robot connection",
        )


_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def connection_proxy(conn_id: str, extra: Mapping[str, Any]) -> str | None:
    """The ``proxy`` extra: an outbound proxy URL for every call to DingTalk, or ``None``.

    A password in it (``http://user:pass@proxy:3128``) is masked in Airflow's logs.
    """
    from urllib.parse import urlsplit

    raw = str(extra.get("proxy") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in _PROXY_SCHEMES or not parts.hostname:
        raise DingTalkValidationError(
            f"connection {conn_id!r} extra proxy",
            f"must be a URL such as http://proxy.example.com:3128 (scheme {', '.join(_PROXY_SCHEMES)})",
        )
    if parts.password:
        mask_secret(parts.password)
    return raw


def normalise_host(raw: str | None, default: str, port: int | None = None) -> str:
    """``oapi.dingtalk.com`` → ``https://oapi.dingtalk.com``; keeps an explicit scheme and port."""
    host = (raw or "").strip().rstrip("/") or default
    if "://" not in host:
        host = f"https://{host}"
        if port:
            host = f"{host}:{port}"
    return host


def app_config(conn_id: str, conn: Any) -> AppConfig:
    """The app settings of a ``dingtalk`` connection; also for triggers, which look it up with
    ``await BaseHook.aget_connection(conn_id)``.

    :raises DingTalkValidationError: a connection of another type, an empty AppKey or AppSecret, or
        a host that is not a plain URL.
    """
    check_conn_type(conn_id, conn.conn_type, DingTalkBaseHook.conn_type)
    extra = conn.extra_dejson
    if not conn.login or not conn.password:
        missing = "login (AppKey)" if not conn.login else "password (AppSecret)"
        raise DingTalkValidationError(
            f"connection {conn_id!r}", f"{missing} is empty; set it from the developer console"
        )
    mask_secret(conn.password)
    agent_id = _agent_id(conn_id, conn.schema, extra.get("agent_id"))
    host = normalise_host(conn.host, DEFAULT_HOST, conn.port)
    check_host(conn_id, host)
    api_host = normalise_host(extra.get("api_host"), DEFAULT_API_HOST)
    check_host(conn_id, api_host, field="api_host")
    from airflow_provider_dingtalk.state import backend_for

    return AppConfig(
        conn_id=conn_id,
        app_key=conn.login,
        app_secret=Secret(conn.password),
        host=host,
        # A proxy or test server for the old API but none for v1.0 would send v1.0 calls, and the
        # AppSecret with them, to the real DingTalk: refuse v1.0 calls until api_host says where.
        api_host=api_host if extra.get("api_host") or host == DEFAULT_HOST else None,
        agent_id=agent_id,
        proxy=connection_proxy(conn_id, extra),
        connect_timeout=float(extra.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT),
        read_timeout=float(extra.get("read_timeout") or DEFAULT_READ_TIMEOUT),
        share_token=flag(extra.get("shared_cache", True), f"connection {conn_id!r} extra shared_cache"),
        state=backend_for(extra, owner=f"connection {conn_id!r}"),
    )


def _agent_id(conn_id: str, schema: str | None, extra: object) -> str | None:
    """The form's Agent ID field is the connection's ``schema``; connections written as JSON or made
    before it may carry the ``agent_id`` extra instead. Two different values are a mistake."""
    from_form = (schema or "").strip()
    from_extra = "" if extra is None else str(extra).strip()
    if from_form and from_extra and from_form != from_extra:
        raise DingTalkValidationError(
            f"connection {conn_id!r}",
            f"has Agent ID {from_form} (schema) and agent_id {from_extra} (extra): keep one",
        )
    return from_form or from_extra or None


class DingTalkBaseHook(BaseHook):
    """Talk to DingTalk as an internal app (AppKey + AppSecret): the part every feature needs.

    Obtains the app access token, caches it for every task process on the machine (or the cluster,
    with the Redis state backend), renews it when
    DingTalk rejects it, and retries transient failures as :mod:`airflow_provider_dingtalk.retry` says.
    Feature hooks add DingTalk's verbs on top of :meth:`call_oapi` and :meth:`call_api`.

    :param dingtalk_conn_id: a connection of type ``dingtalk``.
    :param retry_policy: override the default retry policy (attempts, backoff, total time).
    :param clock: seconds since the epoch; tests pass a fake one.
    :param sleep: how to wait where DingTalk's rate limits ask for it (tests pass one that moves
        their fake clock, e.g. :class:`~airflow_provider_dingtalk.testing.emulator.EmulatorTime`).
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
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dingtalk_conn_id = dingtalk_conn_id
        self.retry_policy = retry_policy or RetryPolicy()
        self.clock = clock
        self.sleep = sleep
        self._token_caches: dict[Family, TokenCache] = {}

    # -- configuration -------------------------------------------------------------------------

    @cached_property
    def app(self) -> AppConfig:
        return app_config(self.dingtalk_conn_id, self.get_connection(self.dingtalk_conn_id))

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session per hook, for both API hosts."""
        hosts = [self.app.host] + ([self.app.api_host] if self.app.api_host else [])
        return new_session(hosts=hosts, proxy=self.app.proxy)

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
        from airflow_provider_dingtalk.state.files import FileBackend
        from airflow_provider_dingtalk.token_cache import TokenCache, cache_key, file_key

        host = self.app.host if family == "oapi" else self.app.v1_host()
        secret = self.app.app_secret.reveal()
        # The secret is part of the key: a wrong or rotated AppSecret must not find the right one's token.
        cache = self._token_caches[family] = TokenCache(
            key=cache_key(host, family, self.app.app_key, secret),
            state=self.app.state if self.app.share_token else FileBackend(None),
            encryption_key=file_key(secret),
            clock=self.clock,
        )
        return cache

    def _fetch_oapi_token(self) -> tuple[str, object]:
        params = {"appkey": self.app.app_key, "appsecret": self.app.app_secret.reveal()}
        with self._naming_connection():
            body = self.retry_policy.call(lambda: self._oapi_request("GET", "/gettoken", params=params))
        token = str(body.get("access_token") or "")
        if not token:
            raise DingTalkAPIError(errmsg="gettoken answered without access_token", api="/gettoken")
        mask_secret(token)
        self.log.info("Fetched a new DingTalk access token for app %s", self.app.app_key)
        return token, body.get("expires_in")

    def _fetch_api_token(self) -> tuple[str, object]:
        payload = {"appKey": self.app.app_key, "appSecret": self.app.app_secret.reveal()}
        path = "/v1.0/oauth2/accessToken"
        with self._naming_connection():
            body = self.retry_policy.call(lambda: self._api_request("POST", path, json=payload, token=None))
        token = str(body.get("accessToken") or "")
        if not token:
            raise DingTalkAPIError(errmsg="accessToken missing from the answer", api=path)
        mask_secret(token)
        self.log.info("Fetched a new DingTalk v1.0 access token for app %s", self.app.app_key)
        return token, body.get("expireIn")

    @contextmanager
    def _naming_connection(self) -> Iterator[None]:
        """Bad credentials: say which connection holds them (a deployment has several)."""
        try:
            yield
        except DingTalkAPIError as exc:
            if exc.errcode != BAD_CREDENTIALS and exc.code != BAD_CREDENTIALS_V1:
                raise
            raise DingTalkAPIError(
                errmsg=exc.errmsg,
                errcode=exc.errcode,
                code=exc.code,
                sub_code=exc.sub_code,
                request_id=exc.request_id,
                http_status=exc.http_status,
                api=exc.api,
                hint=f"The AppKey (login) or AppSecret (password) of connection {self.dingtalk_conn_id!r} "
                "is wrong: copy both from the developer console (app → Credentials & basic info).",
            ) from None

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
        on_no_answer: OnNoAnswer | None = None,
    ) -> dict[str, Any]:
        """Call the old API (``oapi.dingtalk.com``); the token goes in the query string.

        :param files: multipart uploads as ``{field: (filename, content, content_type)}``.
        :param on_no_answer: called each time an attempt got no answer (connection lost, timeout,
            5xx): DingTalk may have acted on it, so a caller whose call is not idempotent can tell
            a retry's "already done" from a real error.
        :return: the JSON answer; an errcode other than 0 raises :class:`DingTalkAPIError`.
        """

        def attempt(token: str) -> dict[str, Any]:
            query = {**(params or {}), "access_token": token}
            return _noting(
                on_no_answer, lambda: self._oapi_request(method, path, params=query, json=json, files=files)
            )

        return self._with_token("oapi", attempt)

    def call_api(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        on_no_answer: OnNoAnswer | None = None,
    ) -> dict[str, Any]:
        """Call the v1.0 API (``api.dingtalk.com``); the token goes in ``x-acs-dingtalk-access-token``.

        :param on_no_answer: as for :meth:`call_oapi`.
        :return: the JSON answer; an HTTP error raises :class:`DingTalkAPIError` with DingTalk's ``code``.
        """

        def attempt(token: str) -> dict[str, Any]:
            return _noting(
                on_no_answer, lambda: self._api_request(method, path, json=json, params=params, token=token)
            )

        return self._with_token("api", attempt)

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
        resp = self._send(method, self.app.v1_host() + path, params=params, json=json, headers=headers)
        return api_result(resp, api=path)

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


def _noting(on_no_answer: OnNoAnswer | None, call: Callable[[], T]) -> T:
    """``call()``, telling ``on_no_answer`` when it got no answer (then re-raising for the retry)."""
    if on_no_answer is None:
        return call()
    try:
        return call()
    except DingTalkTransportError:
        on_no_answer()
        raise

"""Errors raised by the provider.

Every error carries what a user needs to act on it (DingTalk's errcode, request id, the field and
the limit that was broken) and never a secret: messages are built from redacted values only.
"""

from __future__ import annotations

from typing import Any


class DingTalkError(Exception):
    """Base class of every error this provider raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Our constructors take keyword arguments; Airflow pickles exceptions (task results, triggers),
        # so rebuild from the instance state rather than by calling __init__ again.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


def _rebuild(cls: type[DingTalkError], args: tuple[Any, ...], state: dict[str, Any]) -> DingTalkError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class DingTalkValidationError(DingTalkError, ValueError):
    """Bad input, found before anything was sent to DingTalk.

    :param field: the argument or message field at fault, e.g. ``"msg.action_card.single_title"``.
    :param problem: what is wrong, in words a DAG author understands.
    :param size: the size found (characters, bytes or items), when a limit was broken.
    :param limit: the limit that applies, when a limit was broken.
    """

    def __init__(self, field: str, problem: str, *, size: int | None = None, limit: int | None = None):
        self.field = field
        self.problem = problem
        self.size = size
        self.limit = limit
        text = f"{field}: {problem}"
        if size is not None and limit is not None:
            text += f" (got {size}, limit {limit})"
        super().__init__(text)


class DingTalkAPIError(DingTalkError):
    """DingTalk answered with an error.

    ``errcode`` is the old API's numeric errcode (code 88 unwrapped to its ``sub_code``) or ``None``
    for the v1.0 API, whose string ``code`` is in ``code``. ``hint`` says what to fix when the error is
    one a user can fix.
    """

    def __init__(
        self,
        *,
        errmsg: str,
        errcode: int | None = None,
        code: str | None = None,
        sub_code: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        api: str | None = None,
        hint: str | None = None,
    ):
        self.errcode = errcode
        self.code = code
        self.errmsg = errmsg
        self.sub_code = sub_code
        self.request_id = request_id
        self.http_status = http_status
        self.api = api
        self.hint = hint
        super().__init__(self._text())

    def _text(self) -> str:
        ident = f"errcode {self.errcode}" if self.errcode is not None else f"code {self.code}"
        parts = [f"DingTalk {self.api or 'API'} failed with {ident}: {self.errmsg}"]
        if self.hint:
            parts.append(self.hint)
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)


class DingTalkPartialSendError(DingTalkError):
    """A send split into several calls failed part-way: some recipients got it, some did not.

    ``sent`` lists ``(task_id, recipients)`` for every call that succeeded; ``unsent`` lists the
    recipients that were not sent, so that a retry can resend exactly those.
    """

    def __init__(self, *, cause: Exception, sent: list[dict[str, Any]], unsent: dict[str, list[str]]):
        self.cause = cause
        self.sent = sent
        self.unsent = unsent
        done = ", ".join(str(s["task_id"]) for s in sent) or "none"
        left = "; ".join(f"{k}: {len(v)}" for k, v in unsent.items() if v)
        super().__init__(
            f"Sending stopped part-way: {cause}. Already sent as task ids [{done}]; "
            f"not sent: {left}. Retry with only the unsent recipients (see .unsent)."
        )


class DingTalkCryptoError(DingTalkError):
    """Callback crypto failed; ``code`` is DingTalk's 9000xx crypto error code."""

    def __init__(self, code: int, message: str):
        self.code = code
        super().__init__(f"DingTalk callback crypto error {code}: {message}")


# What a user should do about an error they can fix. One table for every API the provider calls.
_HINTS: dict[int | str, str] = {
    40089: "The AppKey (login) or AppSecret (password) of the connection is wrong: copy both from the "
    "developer console (app → Credentials & basic info).",
    "invalidClientIdOrSecret": "The AppKey (login) or AppSecret (password) of the connection is wrong: copy "
    "both from the developer console (app → Credentials & basic info).",
    60011: "The app lacks the permission for this API: grant it in the developer console (app → Permissions) "
    "and publish a new version of the app.",
    60020: "The calling machine's IP is not in the app's server IP whitelist (developer console → app → "
    "Security settings).",
    43003: "DingTalk requires HTTPS: use https:// in the connection host.",
    41001: "The access token is missing from the request.",
    40056: "The agent_id is not this app's AgentId: copy it from the developer console (app → basic "
    "information) into the agent_id argument or the connection's agent_id extra.",
    90020: "Your organisation's monthly API quota is used up; calls fail until next month or a plan upgrade.",
    40014: "DingTalk rejected a freshly fetched access token as well; check that the AppKey belongs to this "
    "organisation and app.",
    # Event callback registration (call_back API): what to fix at the receiver or in the request.
    71006: "A callback is already registered for this organisation: use update "
    "(DingTalkUpdateCallbackOperator) or delete it first.",
    71007: "No callback is registered for this organisation: register one first.",
    71008: "call_back_tags contains an event type DingTalk does not know.",
    71009: "Your URL did not answer the check_url handshake with an encrypted success: check that the "
    "receiver uses the same token and aes_key as the registration, and the corpId as receiver id.",
    71010: "The registration body is missing fields or has a bad format "
    "(call_back_tag, token, aes_key, url).",
    71011: "The callback URL is not a valid http(s) URL.",
    71012: "DingTalk could not reach your URL for the check_url handshake: it must be publicly reachable, "
    "answer within about 1.5 s, and the receiver must be running.",
    71013: "DingTalk does not allow callbacks to this domain or IP: use a public domain name.",
    400040: "No callback is registered: register one first.",
    400041: "A callback is already registered: update it or delete it first.",
    400050: "The callback URL is not valid: use a public http(s) URL.",
    400051: "DingTalk could not reach your URL for the check_url handshake: it must be publicly reachable "
    "and the receiver must be running.",
    400052: "Your URL did not answer the check_url handshake with an encrypted success: check the receiver's "
    "token, aes_key and receiver id.",
    400053: "The callback URL's domain or IP is blacklisted by DingTalk.",
    400054: "Your URL did not answer the check_url handshake in time (about 1.5 s): make the receiver answer "
    "faster or check the network path.",
}


def hint_for(code: int | str | None) -> str | None:
    """The fix for a DingTalk error code, if there is one a user can apply."""
    return _HINTS.get(code) if code is not None else None

"""Errors raised by the provider.

Every error carries what a user needs to act on it (DingTalk's errcode, request id, the field and
the limit that was broken) and never a secret: messages are built from redacted values only.
"""

from __future__ import annotations

from typing import Any


class DingTalkError(Exception):
    """Base class of every error this provider raises."""


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

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor: teach pickle (used by Airflow for XCom/exceptions) how to rebuild us.
        return (_rebuild_api_error, (self.__dict__.copy(),))


def _rebuild_api_error(state: dict[str, Any]) -> DingTalkAPIError:
    err = DingTalkAPIError.__new__(DingTalkAPIError)
    err.__dict__.update(state)
    Exception.__init__(err, err._text())
    return err


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

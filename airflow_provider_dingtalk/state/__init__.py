"""Shared state behind one small interface, so that many workers can act as one towards DingTalk.

DingTalk's limits are per app and per robot, not per machine. Four pieces of state must therefore be
shared by every process that talks to the same app or robot:

* the access-token cache (:mod:`~airflow_provider_dingtalk.token_cache`): an encrypted blob per app
  and a lock, so that one process fetches a token and the others use it;
* the custom robot's send window and 10-minute block (:mod:`~airflow_provider_dingtalk.robot_pacer`);
* the alert-storm spool (:mod:`~airflow_provider_dingtalk.notifications._storm`): alerts waiting to
  be sent or folded into a summary, and the lock of whoever drains them;
* the receiver's record of handled events (:mod:`~airflow_provider_dingtalk.events.dedup`).

:class:`StateBackend` has the few primitives they need. :class:`~.files.FileBackend` (the default)
keeps them in the private state folder of one machine; ``airflow_provider_dingtalk.redis.RedisBackend``
(extra ``redis``) keeps them in Redis for a cluster. :func:`backend_for` picks one from a connection's
extras or the ``[dingtalk]`` configuration section. Names given to a backend are hashes or fixed words:
they never carry a secret, and what a backend stores is either encrypted (tokens) or no secret.
"""

from __future__ import annotations

import abc
import enum
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_dingtalk._redact import MASK, mask_secret
from airflow_provider_dingtalk.exceptions import DingTalkError, DingTalkValidationError

if TYPE_CHECKING:
    from airflow_provider_dingtalk.state.files import FileBackend

__all__ = [
    "BACKENDS",
    "Claim",
    "EventStore",
    "StateBackend",
    "StateUnavailable",
    "WindowState",
    "backend_for",
    "redact_url",
    "window_state",
]

BACKENDS = ("file", "redis")


class StateUnavailable(DingTalkError):
    """The shared state could not be reached, where falling back to this machine's state would be wrong."""


class Claim(enum.Enum):
    """What :meth:`EventStore.claim` found."""

    NEW = "new"
    """The caller owns the key: write the event, then :meth:`~EventStore.finish` or ``release``."""
    DONE = "done"
    """The event was recorded before: acknowledge it."""
    PENDING = "pending"
    """Another delivery is writing it right now: wait, or have DingTalk retry later."""


class EventStore(Protocol):
    """The receiver's record of handled events (see :mod:`airflow_provider_dingtalk.events.dedup`)."""

    def claim(self, key: str) -> Claim: ...

    def finish(self, key: str) -> None: ...

    def is_done(self, key: str) -> bool: ...

    def release(self, key: str) -> None: ...


@dataclass(frozen=True)
class WindowState:
    """A robot's send window as one atomic look (and maybe take) found it.

    :param free: sends allowed now (0 while blocked), counted before this call's own send.
    :param next_slot_at: epoch seconds when the next send is allowed (``<= now`` if ``free > 0``).
    :param blocked_until: epoch seconds until which DingTalk blocks the robot, if it does.
    :param taken: whether this call took a slot.
    """

    free: int
    next_slot_at: float
    blocked_until: float | None
    taken: bool = False


def window_state(
    sends: list[float], blocked_until: float, *, now: float, limit: int, span: float
) -> WindowState:
    """The window of ``sends`` (already limited to the last ``span`` seconds, sorted) at ``now``."""
    used = len(sends)
    next_slot = now if used < limit else sends[used - limit] + span
    if blocked_until > now:
        return WindowState(free=0, next_slot_at=max(blocked_until, next_slot), blocked_until=blocked_until)
    return WindowState(free=max(0, limit - used), next_slot_at=next_slot, blocked_until=None)


class StateBackend(abc.ABC):
    """Where the shared state lives. Every method is atomic for every process using the same backend.

    ``name`` arguments are hashes or fixed words chosen by the callers, never secrets.
    """

    kind: str
    """``"file"`` or ``"redis"``, for messages."""

    @property
    @abc.abstractmethod
    def shared(self) -> bool:
        """Whether other processes see this state (``False``: this process's memory only)."""

    # -- locks and blobs (the token cache) ----------------------------------------------------

    @abc.abstractmethod
    def lock(self, name: str, *, lease: float, wait: float) -> AbstractContextManager[None]:
        """Hold an exclusive lock across processes.

        :param lease: seconds after which a holder that died is presumed gone (where the store
            cannot tell by itself, as Redis cannot).
        :param wait: seconds to wait for the lock at most (where a holder elsewhere can stall).
        :raises TimeoutError: not acquired within ``wait``.
        """

    @abc.abstractmethod
    def get_blob(self, name: str) -> str | None:
        """The value stored under ``name``, or ``None``."""

    @abc.abstractmethod
    def put_blob(self, name: str, value: str, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds (a backend may keep it longer: callers check expiry).

        :raises OSError: the file backend could not write it.
        """

    @abc.abstractmethod
    def delete_blob(self, name: str, *, if_value: str) -> None:
        """Delete ``name`` if it still holds ``if_value`` (a newer value written meanwhile stays)."""

    # -- the custom robot's send window ---------------------------------------------------------

    @abc.abstractmethod
    def window(self, name: str, *, now: float, limit: int, span: float, take: bool) -> WindowState:
        """Forget sends older than ``span`` seconds, and take a slot if ``take`` and one is free: atomically.

        :param now: the caller's clock (epoch seconds): the window reads no other time.
        """

    @abc.abstractmethod
    def block(self, name: str, *, now: float, until: float) -> None:
        """No slot is free before ``until`` (DingTalk blocked the robot); an earlier ``until`` is ignored."""

    # -- the alert spool ---------------------------------------------------------------------------

    @abc.abstractmethod
    def spool_add(self, name: str, item: str, value: str, *, ttl: float) -> None:
        """Add ``value`` as ``item`` (items sort by name) to the spool ``name``, for ``ttl`` s at least."""

    @abc.abstractmethod
    def spool_items(self, name: str) -> list[tuple[str, str]]:
        """The spool's ``(item, value)`` pairs in item order."""

    @abc.abstractmethod
    def spool_has(self, name: str, item: str) -> bool:
        """Whether ``item`` is still in the spool."""

    @abc.abstractmethod
    def spool_remove(self, name: str, item: str) -> None:
        """Remove ``item`` from the spool (no error if it is gone)."""

    # -- the receiver's handled events --------------------------------------------------------------

    @abc.abstractmethod
    def event_store(self, *, lease: float, clock: Callable[[], float]) -> EventStore:
        """The record of handled events (see :class:`~airflow_provider_dingtalk.events.dedup.DedupStore`)."""


def redact_url(url: str) -> str:
    """``redis://user:pw@host:6379/0`` → ``redis://user:***@host:6379/0``, for logs and errors."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK  # not parseable: show nothing of it
    netloc = f"{host}:{port}" if port else host
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + MASK if parts.password else ''}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _conf(key: str) -> str:
    try:  # the task SDK's public config; the API server (the receiver plugin) has core's
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - older task SDKs
        from airflow.configuration import conf
    return str(conf.get("dingtalk", key, fallback="") or "")


_redis_backends: dict[tuple[str, str], StateBackend] = {}
_redis_guard = threading.Lock()


def backend_for(extra: Mapping[str, Any] | None = None, *, owner: str = "[dingtalk]") -> StateBackend:
    """The backend named by a connection's extras ``state_backend``/``redis_url``, else by ``[dingtalk]``.

    One Redis client (and connection pool) per URL and process, shared by every hook.

    :param extra: the connection's extras; empty ones defer to the configuration.
    :param owner: what to name in errors, e.g. ``connection 'dingtalk_custom_robot_default'``.
    :raises DingTalkValidationError: an unknown backend, or ``redis`` without a URL.
    """
    from airflow_provider_dingtalk._filelock import state_dir
    from airflow_provider_dingtalk.state.files import FileBackend

    extra = extra or {}
    from_conn = bool(extra.get("state_backend") or extra.get("redis_url"))
    where = f"{owner} extra" if from_conn else "[dingtalk]"
    kind = (
        str((extra.get("state_backend") if from_conn else _conf("state_backend")) or "file").strip().lower()
    )
    url = str((extra.get("redis_url") if from_conn else _conf("redis_url")) or "").strip()
    if kind not in BACKENDS:
        raise DingTalkValidationError(f"{where} state_backend", f"must be one of {', '.join(BACKENDS)}")
    local = FileBackend(state_dir())
    if kind == "file":
        return local
    if not url:
        raise DingTalkValidationError(f"{where} redis_url", "is needed with state_backend redis")
    _mask_url(url)
    with _redis_guard:
        key = (url, str(local.directory))
        if key not in _redis_backends:
            _redis_backends[key] = _redis_backend(url, local, where)
        return _redis_backends[key]


def _redis_backend(url: str, local: FileBackend, where: str) -> StateBackend:
    try:
        from airflow_provider_dingtalk.redis import RedisBackend
    except ImportError as exc:
        raise DingTalkValidationError(
            f"{where} state_backend",
            f"redis needs redis-py: pip install 'airflow-provider-dingtalk[redis]' ({exc})",
        ) from None
    return RedisBackend(url, local=local)


def _mask_url(url: str) -> None:
    # A password in the URL (redis://:pw@host) is a secret like any other: Airflow's masker hides it,
    # and the whole URL too, should some library print it.
    mask_secret(url)
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        mask_secret(password)

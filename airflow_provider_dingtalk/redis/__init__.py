"""The Redis state backend: one token, one send window, one alert spool and one event record per cluster.

Install with ``pip install 'airflow-provider-dingtalk[redis]'`` and set ``[dingtalk] state_backend =
redis`` and ``[dingtalk] redis_url`` (or the extras of the same names on a connection). Celery
deployments already run a Redis; a separate database number (``redis://host:6379/3``) keeps the
provider's keys apart from Celery's.

What is stored (every key under ``dingtalk:``, named by a hash or a fixed word, never a secret, and
every key expires on its own):

==========================  ====================================  =====================================
key                         what                                  expires
==========================  ====================================  =====================================
``dingtalk:blob:token-<h>``   the access token, AES-256-GCM sealed  with the token (less a safety margin)
                            under a key derived from the AppSecret
``dingtalk:lock:<name>``      who holds a lock (a random value)     after the lock's lease
``dingtalk:window:robot-<h>`` the robot's send times (sorted set)   a minute after the last send
``dingtalk:block:robot-<h>``  until when DingTalk blocks the robot  when the block ends
``dingtalk:spool:alerts-<h>`` alerts waiting to be sent (hash)      a day after the last alert
``dingtalk:event:<h>``        a handled event: claimed or done      3 days (DingTalk retries for hours)
==========================  ====================================  =====================================

Atomic across machines: the window's look-and-take and the block are one Lua script each, a lock is
``SET NX PX`` and is released by a script only by its holder, an event claim is one script.

When Redis cannot be reached (every call has a socket timeout, :data:`TIMEOUT`, so no task hangs):

* tokens, pacing and the spool fall back to this machine's state (the file backend) and log a
  warning naming the Redis server (password masked) — once a minute while it lasts, and once when
  Redis answers again. Pacing is then per machine: a storm on N machines may get the robot blocked
  (130101), which the hook then waits out;
* the receiver's event record does not: a claim raises
  :class:`~airflow_provider_dingtalk.state.StateUnavailable` and the receiver answers 503, so
  DingTalk retries until Redis is back (two receivers writing the same event would create two asset
  events).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from airflow_provider_dingtalk.state import (
    Claim,
    EventStore,
    StateBackend,
    StateUnavailable,
    WindowState,
    redact_url,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from airflow_provider_dingtalk.state.files import FileBackend

__all__ = ["EVENT_TTL", "TIMEOUT", "RedisBackend", "RedisEventStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")

TIMEOUT = 2.0
"""Seconds for connecting to Redis and for each answer: a loopback or LAN Redis answers in a millisecond."""
EVENT_TTL = 3 * 86400
"""Seconds a handled event is remembered: DingTalk retries a push for hours, not days."""
_WARN_EVERY = 60.0
_LOCK_POLL = 0.02
PREFIX = "dingtalk:"

# KEYS: window, block. ARGV: now, limit, span, take (0/1), member. Returns free, the score of the send
# whose expiry frees the next slot ('' if one is free), the block's end ('' if none), taken (0/1).
# Times go back as Redis stored them: Lua's tostring() keeps 14 digits, a tenth of a millisecond of
# an epoch time, and a slot computed from it could open before `now`.
_WINDOW = """
local now, limit, span = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
local used = redis.call('ZCARD', KEYS[1])
local oldest = ''
if used >= limit then
  oldest = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')[2]
end
local blocked = redis.call('GET', KEYS[2])
if blocked and tonumber(blocked) > now then
  return {0, oldest, blocked, 0}
end
local free = math.max(0, limit - used)
if ARGV[4] == '1' and free > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], math.ceil(span * 1000) + 1000)
  return {free, oldest, '', 1}
end
return {free, oldest, '', 0}
"""
# KEYS: block. ARGV: until, ttl in ms.
_BLOCK = """
if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
"""
# KEYS: key. ARGV: expected value. Releases a lock only by its holder; deletes a blob only if unchanged.
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: event. ARGV: now, lease, ttl. Values: the claim time while pending, 'done' once recorded.
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if v == 'done' then return 'done' end
if v and tonumber(ARGV[1]) - tonumber(v) <= tonumber(ARGV[2]) then return 'pending' end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 'new'
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= 'done' then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBackend(StateBackend):
    """Shared state in Redis, falling back to ``local`` (this machine) while Redis is unreachable.

    :param url: ``redis://[[user]:password@]host[:port][/db]`` (or ``rediss://`` for TLS); logged only
        with the password masked.
    :param local: where tokens, pacing and the spool go while Redis is down.
    :param timeout: seconds for connecting and for each answer.
    """

    kind = "redis"

    def __init__(self, url: str, *, local: FileBackend, timeout: float = TIMEOUT) -> None:
        self.shown = redact_url(url)
        self.local = local
        # One quick retry rides over a connection that a Redis restart closed; redis-py's default
        # (10 with exponential backoff) would hold a task for many seconds while Redis is down.
        self.client: Any = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )
        self._scripts = {
            name: self.client.register_script(text)
            for name, text in (
                ("window", _WINDOW),
                ("block", _BLOCK),
                ("delete_if", _DELETE_IF),
                ("claim", _CLAIM),
                ("release", _RELEASE),
            )
        }
        self._down_since: float | None = None
        self._warned_at = 0.0
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisBackend({self.shown!r})"

    @property
    def shared(self) -> bool:
        return True

    # -- falling back -----------------------------------------------------------------------------

    def _or_local(self, piece: str, call: Callable[[], T], fallback: Callable[[], T]) -> T:
        try:
            result = call()
        except redis.RedisError as exc:
            self._down(piece, exc)
            return fallback()
        self._up()
        return result

    def _down(self, piece: str, exc: Exception) -> None:
        now = time.monotonic()
        with self._guard:
            first = self._down_since is None
            if first:
                self._down_since = now
            if not first and now - self._warned_at < _WARN_EVERY:
                return
            self._warned_at = now
        consequence = {
            "pacing": "the custom robot is paced per machine, so a storm on several machines may get "
            "it blocked for 10 minutes (130101)",
            "tokens": "access tokens are cached per machine (more gettoken calls)",
            "spool": "alerts are spooled and folded per machine",
            "locks": "locks are held per machine",
        }[piece]
        log.warning(
            "DingTalk state backend: Redis at %s is unreachable (%s: %s); until it answers, %s.",
            self.shown,
            type(exc).__name__,
            exc,
            consequence,
        )

    def _up(self) -> None:
        if self._down_since is None:
            return
        with self._guard:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.warning(
                "DingTalk state backend: Redis at %s answers again after %.0f s; state is shared again.",
                self.shown,
                time.monotonic() - since,
            )

    def _key(self, kind: str, name: str) -> str:
        return f"{PREFIX}{kind}:{name}"

    # -- locks and blobs --------------------------------------------------------------------------

    def lock(self, name: str, *, lease: float, wait: float) -> AbstractContextManager[None]:
        return self._lock(name, lease=lease, wait=wait)

    @contextlib.contextmanager
    def _lock(self, name: str, *, lease: float, wait: float) -> Iterator[None]:
        key, me = self._key("lock", name), uuid.uuid4().hex
        deadline = time.monotonic() + wait
        try:
            while not self.client.set(key, me, nx=True, px=max(1, int(lease * 1000))):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"DingTalk state lock {name} is held elsewhere")
                time.sleep(_LOCK_POLL)
        except redis.RedisError as exc:
            self._down("locks", exc)
            with self.local.lock(name, lease=lease, wait=wait):
                yield
            return
        self._up()
        try:
            yield
        finally:
            with contextlib.suppress(redis.RedisError):  # down now: the lease ends the lock
                self._scripts["delete_if"](keys=[key], args=[me])

    def get_blob(self, name: str) -> str | None:
        def remote() -> str | None:
            value = self.client.get(self._key("blob", name))
            return str(value) if value is not None else None

        return self._or_local("tokens", remote, lambda: self.local.get_blob(name))

    def put_blob(self, name: str, value: str, *, ttl: float) -> None:
        self._or_local(
            "tokens",
            lambda: self.client.set(self._key("blob", name), value, px=max(1, int(ttl * 1000))),
            lambda: self.local.put_blob(name, value, ttl=ttl),
        )

    def delete_blob(self, name: str, *, if_value: str) -> None:
        self._or_local(
            "tokens",
            lambda: self._scripts["delete_if"](keys=[self._key("blob", name)], args=[if_value]),
            lambda: self.local.delete_blob(name, if_value=if_value),
        )

    # -- the send window --------------------------------------------------------------------------

    def window(self, name: str, *, now: float, limit: int, span: float, take: bool) -> WindowState:
        def remote() -> WindowState:
            member = f"{now!r}:{uuid.uuid4().hex[:8]}"  # two sends in one clock tick are two sends
            free, oldest, blocked, taken = self._scripts["window"](
                keys=[self._key("window", name), self._key("block", name)],
                args=[repr(now), limit, repr(span), "1" if take else "0", member],
            )
            next_slot = float(oldest) + span if oldest else now
            return WindowState(
                free=int(free),
                next_slot_at=max(float(blocked), next_slot) if blocked else next_slot,
                blocked_until=float(blocked) if blocked else None,
                taken=bool(int(taken)),
            )

        return self._or_local(
            "pacing", remote, lambda: self.local.window(name, now=now, limit=limit, span=span, take=take)
        )

    def block(self, name: str, *, now: float, until: float) -> None:
        self._or_local(
            "pacing",
            lambda: self._scripts["block"](
                keys=[self._key("block", name)], args=[repr(until), max(1, int((until - now) * 1000))]
            ),
            lambda: self.local.block(name, now=now, until=until),
        )

    # -- the alert spool ----------------------------------------------------------------------------

    def spool_add(self, name: str, item: str, value: str, *, ttl: float) -> None:
        def remote() -> None:
            key = self._key("spool", name)
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(key, item, value)
                pipe.expire(key, max(1, int(ttl)))
                pipe.execute()

        self._or_local("spool", remote, lambda: self.local.spool_add(name, item, value, ttl=ttl))

    # Alerts spooled locally while Redis was down are listed and removed with the shared ones, so
    # they go out with the next drain after Redis is back.

    def _local_items(self, name: str) -> list[tuple[str, str]]:
        return self.local.spool_items(name) if self.local.shared else []

    def spool_items(self, name: str) -> list[tuple[str, str]]:
        return self._or_local(
            "spool",
            lambda: sorted(
                [*self.client.hgetall(self._key("spool", name)).items(), *self._local_items(name)]
            ),
            lambda: self._local_items(name),
        )

    def spool_has(self, name: str, item: str) -> bool:
        local = self.local.shared and self.local.spool_has(name, item)
        return local or self._or_local(
            "spool", lambda: bool(self.client.hexists(self._key("spool", name), item)), lambda: False
        )

    def spool_remove(self, name: str, item: str) -> None:
        if self.local.shared:
            self.local.spool_remove(name, item)
        self._or_local("spool", lambda: self.client.hdel(self._key("spool", name), item), lambda: None)

    def event_store(self, *, lease: float, clock: Callable[[], float]) -> EventStore:
        return RedisEventStore(self, lease=lease, clock=clock)


class RedisEventStore:
    """The receiver's record of handled events in Redis, with :class:`~.events.dedup.DedupStore`'s semantics.

    Unlike the other pieces it does not fall back to this machine: an unreachable Redis raises
    :class:`~airflow_provider_dingtalk.state.StateUnavailable` (the receiver answers 503).
    """

    def __init__(self, backend: RedisBackend, *, lease: float, clock: Callable[[], float]) -> None:
        self._backend, self.lease, self._clock = backend, lease, clock

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except redis.RedisError as exc:
            raise StateUnavailable(
                f"the record of handled DingTalk events in Redis at {self._backend.shown} is unreachable "
                f"({type(exc).__name__}: {exc})"
            ) from None

    def _key(self, key: str) -> str:
        return f"{PREFIX}event:{key}"

    def claim(self, key: str) -> Claim:
        found = self._call(
            lambda: self._backend._scripts["claim"](
                keys=[self._key(key)], args=[repr(self._clock()), repr(self.lease), EVENT_TTL]
            )
        )
        return Claim(found)

    def finish(self, key: str) -> None:
        self._call(lambda: self._backend.client.set(self._key(key), "done", ex=EVENT_TTL))

    def is_done(self, key: str) -> bool:
        return bool(self._call(lambda: self._backend.client.get(self._key(key))) == "done")

    def release(self, key: str) -> None:
        self._call(lambda: self._backend._scripts["release"](keys=[self._key(key)], args=[]))

"""Remember which events were already turned into asset events, so DingTalk's retries start nothing.

DingTalk pushes an event again when it did not get ``success`` in time, so the same event can arrive
twice (or more), even while the first delivery is still being written. The key is a hash of the
decrypted event, kept in a small SQLite file (shared by API-server workers and surviving restarts),
bounded to the most recent ``max_entries`` keys. Receivers on several machines share the keys
through the Redis state backend instead (``airflow_provider_dingtalk.redis.RedisEventStore``, same
semantics), chosen by ``[dingtalk] state_backend``.

A key is first *pending* (one delivery is writing the event) and then *done* (the event is
recorded). A retry of a pending event must not be acknowledged: if the first write then fails, the
retry's ``success`` would have told DingTalk to stop, and the event would be lost. A pending claim
older than ``lease`` seconds is taken over, so a process that died mid-write does not block the
event for ever.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from airflow_provider_dingtalk.state import Claim

__all__ = ["DEFAULT_LEASE", "Claim", "DedupStore", "event_key"]

DEFAULT_LEASE = 300.0
"""Seconds a delivery may take to write its event before a retry takes it over.

Well above the longest write (the standalone receiver's REST calls time out after 10 s each), and
well below the hours over which DingTalk keeps retrying."""


def event_key(event: dict[str, Any]) -> str:
    """A stable key for an event: SHA-256 of its canonical JSON (key order does not matter)."""
    canonical = json.dumps(event, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


_PENDING, _DONE = 0, 1


class DedupStore:
    """A bounded set of event keys; :meth:`claim` is atomic across threads and processes.

    :param path: SQLite file; ``None`` keeps the keys in memory (lost on restart).
    :param max_entries: how many recent keys to keep. DingTalk retries within minutes to hours, so
        this only needs to cover the events of that window.
    :param lease: seconds after which a pending claim is presumed abandoned (see :data:`DEFAULT_LEASE`).
    :param clock: for the time each key was claimed.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        max_entries: int = 10_000,
        lease: float = DEFAULT_LEASE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path, self.max_entries, self.lease, self._clock = path, max_entries, lease, clock
        self._memory: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()
        if path is not None:
            with self._db() as db:
                # "events", not the first draft's "seen" table (no state column): an old file is ignored.
                db.execute(
                    "CREATE TABLE IF NOT EXISTS events"
                    " (key TEXT PRIMARY KEY, at REAL NOT NULL, done INTEGER NOT NULL)"
                )

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        assert self.path is not None
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def claim(self, key: str) -> Claim:
        """Claim ``key`` to write its event, unless it is recorded or being written (see :class:`Claim`)."""
        now = self._clock()
        if self.path is None:
            with self._lock:
                found = self._memory.get(key)
                if found is not None and (found[0] == _DONE or now - found[1] <= self.lease):
                    return Claim.DONE if found[0] == _DONE else Claim.PENDING
                self._memory[key] = (_PENDING, now)
                self._memory.move_to_end(key)
                while len(self._memory) > self.max_entries:
                    self._memory.popitem(last=False)
                return Claim.NEW
        # One write transaction (``with db`` commits, or rolls back on an error): the read and the
        # claim cannot interleave with another process's.
        with self._db() as db, db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT done, at FROM events WHERE key = ?", (key,)).fetchone()
            if row is not None and (row[0] == _DONE or now - row[1] <= self.lease):
                return Claim.DONE if row[0] == _DONE else Claim.PENDING
            db.execute("INSERT OR REPLACE INTO events VALUES (?, ?, ?)", (key, now, _PENDING))
            db.execute(
                "DELETE FROM events WHERE key NOT IN (SELECT key FROM events ORDER BY at DESC LIMIT ?)",
                (self.max_entries,),
            )
            return Claim.NEW

    def finish(self, key: str) -> None:
        """The event of ``key`` is recorded: its retries are acknowledged from now on."""
        now = self._clock()
        if self.path is None:
            with self._lock:
                self._memory[key] = (_DONE, now)
            return
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO events VALUES (?, ?, ?)", (key, now, _DONE))

    def is_done(self, key: str) -> bool:
        """Whether ``key`` was finished (a sink's record of the parts of an event it wrote)."""
        if self.path is None:
            with self._lock:
                found = self._memory.get(key)
            return found is not None and found[0] == _DONE
        with self._db() as db:
            row = db.execute("SELECT done FROM events WHERE key = ?", (key,)).fetchone()
        return row is not None and row[0] == _DONE

    def release(self, key: str) -> None:
        """Forget a pending ``key``: writing failed, so DingTalk's retry must write it again."""
        if self.path is None:
            with self._lock:
                if self._memory.get(key, (_DONE, 0.0))[0] == _PENDING:
                    del self._memory[key]
            return
        with self._db() as db:
            db.execute("DELETE FROM events WHERE key = ? AND done = ?", (key, _PENDING))

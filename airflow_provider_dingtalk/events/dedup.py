"""Remember which events were already turned into asset events, so DingTalk's retries start nothing.

DingTalk pushes an event again when it did not get ``success`` in time, so the same event can arrive
twice (or more) even though the first one was handled. The key is a hash of the decrypted event,
kept in a small SQLite file (shared by API-server workers and surviving restarts), bounded to the
most recent ``max_entries`` keys.
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

__all__ = ["DedupStore", "event_key"]


def event_key(event: dict[str, Any]) -> str:
    """A stable key for an event: SHA-256 of its canonical JSON (key order does not matter)."""
    canonical = json.dumps(event, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class DedupStore:
    """A bounded set of event keys; :meth:`claim` is atomic across threads and processes.

    :param path: SQLite file; ``None`` keeps the keys in memory (lost on restart).
    :param max_entries: how many recent keys to keep. DingTalk retries within minutes to hours, so
        this only needs to cover the events of that window.
    :param clock: for the time each key was claimed.
    """

    def __init__(
        self, path: Path | None, *, max_entries: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.path, self.max_entries, self._clock = path, max_entries, clock
        self._memory: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        if path is not None:
            with self._db() as db:
                db.execute("CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, at REAL NOT NULL)")

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        assert self.path is not None
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def claim(self, key: str) -> bool:
        """Record ``key``; ``True`` if it was new (handle the event), ``False`` if seen before."""
        if self.path is None:
            with self._lock:
                if key in self._memory:
                    return False
                self._memory[key] = self._clock()
                while len(self._memory) > self.max_entries:
                    self._memory.popitem(last=False)
                return True
        with self._db() as db:
            added = db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (key, self._clock())).rowcount
            if added:
                db.execute(
                    "DELETE FROM seen WHERE key NOT IN (SELECT key FROM seen ORDER BY at DESC LIMIT ?)",
                    (self.max_entries,),
                )
            return bool(added)

    def release(self, key: str) -> None:
        """Forget ``key``: handling failed, so DingTalk's retry must be handled again."""
        if self.path is None:
            with self._lock:
                self._memory.pop(key, None)
            return
        with self._db() as db:
            db.execute("DELETE FROM seen WHERE key = ?", (key,))

"""Access-token cache shared by every task process on a machine.

Two levels: a per-process memory cache (no I/O on the hot path) and a file per app under the
private state folder, written atomically with mode 0600. Fetching happens under an inter-process
lock, and the file is re-read after the lock is taken, so N processes that start together make
one ``gettoken`` call between them instead of N.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_dingtalk._filelock import locked, thread_lock, write_private

log = logging.getLogger(__name__)

DEFAULT_EXPIRES_IN = 7200
SAFETY_MARGIN = 300

# key -> (token, expires_at): shared by every hook instance of this process.
_memory: dict[str, tuple[str, float]] = {}
_memory_guard = threading.Lock()


def cache_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def usable_for(expires_in: object) -> float:
    """Seconds a fresh token may be used: ``expires_in`` less a margin (7200 s if DingTalk gave none)."""
    seconds = expires_in if isinstance(expires_in, int | float) and expires_in > 0 else DEFAULT_EXPIRES_IN
    return float(seconds) - min(SAFETY_MARGIN, float(seconds) / 2)


@dataclass
class TokenCache:
    """Cache of one app's token for one API family.

    :param key: from :func:`cache_key`; names the cache file, so it holds no secret.
    :param directory: folder for the shared file, or ``None`` for a per-process cache only.
    :param clock: seconds since the epoch; tests replace it.
    """

    key: str
    directory: Path | None
    clock: Callable[[], float] = time.time

    def get(self, fetch: Callable[[], tuple[str, object]]) -> str:
        """Return a valid token, calling ``fetch() -> (token, expires_in)`` only when none is cached."""
        token = self._from_memory()
        if token:
            return token
        if self.directory is None:
            with thread_lock(self.key):  # one fetch per process even when threads race
                return self._from_memory() or self._store(*fetch())
        with locked(self._lock_path):
            token = self._from_memory() or self._from_file()
            if token:
                return token
            return self._store(*fetch())

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (a fresh token from another process survives)."""
        with _memory_guard:
            if _memory.get(self.key, ("",))[0] == token:
                del _memory[self.key]
        if self.directory is None:
            return
        with locked(self._lock_path):
            entry = self._read_file()
            if entry and entry[0] == token:
                self._file_path.unlink(missing_ok=True)

    @property
    def _file_path(self) -> Path:
        assert self.directory is not None
        return self.directory / f"token-{self.key}.json"

    @property
    def _lock_path(self) -> Path:
        assert self.directory is not None
        return self.directory / f"token-{self.key}.lock"

    def _from_memory(self) -> str | None:
        entry = _memory.get(self.key)
        return entry[0] if entry and entry[1] > self.clock() else None

    def _from_file(self) -> str | None:
        entry = self._read_file()
        if entry and entry[1] > self.clock():
            with _memory_guard:
                _memory[self.key] = entry
            return entry[0]
        return None

    def _read_file(self) -> tuple[str, float] | None:
        try:
            data = json.loads(self._file_path.read_text(encoding="utf-8"))
            return str(data["token"]), float(data["expires_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged: fetch anew and overwrite

    def _store(self, token: str, expires_in: object) -> str:
        entry = (token, self.clock() + usable_for(expires_in))
        with _memory_guard:
            _memory[self.key] = entry
        if self.directory is not None:
            try:
                write_private(self._file_path, json.dumps({"token": entry[0], "expires_at": entry[1]}))
            except OSError as exc:  # sharing is an optimisation; never fail a task over it
                log.warning("Could not write the DingTalk token cache file: %s", exc)
        return token

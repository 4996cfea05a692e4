"""Access-token cache shared by every task process on a machine, or in a cluster.

Two levels: a per-process memory cache (no I/O on the hot path) and a shared copy in a
:class:`~airflow_provider_dingtalk.state.StateBackend`: by default a file per app under the private
state folder, written atomically with mode 0600; with Redis a key that expires with the token.
Fetching happens under the backend's lock, and the shared copy is re-read after the lock is taken,
so N processes that start together make one ``gettoken`` call between them instead of N.

A token belongs to the credentials that fetched it: the key hashes the AppSecret in with the host
and AppKey, so a wrong or rotated secret never finds another secret's token. The file is encrypted
(AES-256-GCM) with a key derived from the AppSecret, so the file (or the Redis value) alone gives
away neither the token nor the secret, and one that was changed or written under another key is
refetched, not trusted.
Both derivations are SHA-256 over a fixed prefix (:data:`KEY_DOMAIN`, :data:`FILE_KEY_DOMAIN`) and
the parts joined by NUL bytes; the prefixes keep the two apart from each other and from any other
hash of the same secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_dingtalk._filelock import thread_lock
from airflow_provider_dingtalk._redact import mask_secret
from airflow_provider_dingtalk.state import StateBackend

log = logging.getLogger(__name__)

DEFAULT_EXPIRES_IN = 7200
SAFETY_MARGIN = 300
FETCH_LEASE = 120.0
"""Seconds another process waits for a fetch in progress before it fetches too (the holder may have died)."""

# key -> (token, expires_at): shared by every hook instance of this process.
_memory: dict[str, tuple[str, float]] = {}
_memory_guard = threading.Lock()


KEY_DOMAIN = "airflow-provider-dingtalk token cache name v2"
FILE_KEY_DOMAIN = "airflow-provider-dingtalk token cache file key v2"
_FILE_VERSION = 2


def forget_memory() -> None:
    """Drop every token this process holds in memory (the test kit does, when the emulator resets)."""
    with _memory_guard:
        _memory.clear()


def cache_key(*parts: str) -> str:
    """The cache's name for ``parts`` (host, API family, AppKey, AppSecret): 128 bits of a SHA-256."""
    return _derive(KEY_DOMAIN, parts).hex()[:32]


def file_key(app_secret: str) -> bytes:
    """The AES-256 key the cache file is encrypted with, derived from the AppSecret."""
    return _derive(FILE_KEY_DOMAIN, (app_secret,))


def _derive(domain: str, parts: tuple[str, ...]) -> bytes:
    return hashlib.sha256("\0".join((domain, *parts)).encode()).digest()


def usable_for(expires_in: object) -> float:
    """Seconds a fresh token may be used: ``expires_in`` less a margin (7200 s if DingTalk gave none)."""
    seconds = expires_in if isinstance(expires_in, int | float) and expires_in > 0 else DEFAULT_EXPIRES_IN
    return float(seconds) - min(SAFETY_MARGIN, float(seconds) / 2)


@dataclass
class TokenCache:
    """Cache of one app's token for one API family.

    :param key: from :func:`cache_key`; names the shared copy, so it holds no secret.
    :param state: where the shared copy lives; ``FileBackend(None)`` for a per-process cache only.
    :param encryption_key: from :func:`file_key`; encrypts the shared copy (needed when it is shared).
    :param clock: seconds since the epoch; tests replace it.
    """

    key: str
    state: StateBackend
    encryption_key: bytes = field(default=b"", repr=False)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.state.shared and len(self.encryption_key) != 32:
            raise ValueError("a shared token cache needs a 32-byte encryption_key (file_key())")

    def get(self, fetch: Callable[[], tuple[str, object]]) -> str:
        """Return a valid token, calling ``fetch() -> (token, expires_in)`` only when none is cached."""
        token = self._from_memory()
        if token:
            return token
        if not self.state.shared:
            with thread_lock(self.key):  # one fetch per process even when threads race
                return self._from_memory() or self._store(*fetch())
        try:
            with self.state.lock(self._name, lease=FETCH_LEASE, wait=FETCH_LEASE):
                return self._from_memory() or self._from_shared() or self._store(*fetch())
        except TimeoutError:
            # Another process has been fetching for longer than any fetch takes: it is gone or stuck.
            log.warning("Another process holds the DingTalk token fetch lock for too long; fetching here.")
            return self._from_shared() or self._store(*fetch())

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (a fresh token from another process survives)."""
        with _memory_guard:
            if _memory.get(self.key, ("",))[0] == token:
                del _memory[self.key]
        if not self.state.shared:
            return
        with self.state.lock(self._name, lease=FETCH_LEASE, wait=FETCH_LEASE):
            sealed = self.state.get_blob(self._name)
            entry = self._open(sealed) if sealed else None
            if sealed and entry and entry[0] == token:
                self.state.delete_blob(self._name, if_value=sealed)

    @property
    def _name(self) -> str:
        return f"token-{self.key}"

    def _from_memory(self) -> str | None:
        entry = _memory.get(self.key)
        return entry[0] if entry and entry[1] > self.clock() else None

    def _from_shared(self) -> str | None:
        sealed = self.state.get_blob(self._name)
        entry = self._open(sealed) if sealed else None
        if entry and entry[1] > self.clock():
            # Another process fetched it and masked it in its own logs; this process must too.
            mask_secret(entry[0])
            with _memory_guard:
                _memory[self.key] = entry
            return entry[0]
        return None

    def _open(self, sealed: str) -> tuple[str, float] | None:
        from Crypto.Cipher import AES

        try:
            data = json.loads(sealed)
            if data["v"] != _FILE_VERSION:
                return None
            nonce, ciphertext, tag = (base64.b64decode(data[k]) for k in ("nonce", "ct", "tag"))
            cipher = AES.new(self.encryption_key, AES.MODE_GCM, nonce=nonce)
            cipher.update(self.key.encode())  # a copy stored under another app's name does not open
            plain = json.loads(cipher.decrypt_and_verify(ciphertext, tag))
            return str(plain["token"]), float(plain["expires_at"])
        except (ValueError, KeyError, TypeError):
            return None  # damaged or not ours (GCM's check fails): fetch anew and overwrite

    def _seal(self, entry: tuple[str, float]) -> str:
        from Crypto.Cipher import AES

        cipher = AES.new(self.encryption_key, AES.MODE_GCM)
        cipher.update(self.key.encode())
        plain = json.dumps({"token": entry[0], "expires_at": entry[1]}).encode()
        ciphertext, tag = cipher.encrypt_and_digest(plain)
        parts = {"nonce": cipher.nonce, "ct": ciphertext, "tag": tag}
        return json.dumps({"v": _FILE_VERSION, **{k: base64.b64encode(v).decode() for k, v in parts.items()}})

    def _store(self, token: str, expires_in: object) -> str:
        now = self.clock()
        entry = (token, now + usable_for(expires_in))
        with _memory_guard:
            _memory[self.key] = entry
        if self.state.shared:
            try:
                self.state.put_blob(self._name, self._seal(entry), ttl=entry[1] - now)
            except OSError as exc:  # sharing is an optimisation; never fail a task over it
                log.warning("Could not write the DingTalk token cache file: %s", exc)
        return token

"""Everything the emulator remembers: apps, tokens, its clock, the request log, the inbox, faults.

Endpoint modules keep their own data in :meth:`EmulatorState.store`, so adding an endpoint never
means editing this file.
"""

from __future__ import annotations

import itertools
import secrets
import string
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

S = TypeVar("S")

TOKEN_TTL = 7200


@dataclass(frozen=True, kw_only=True)
class EmulatedApp:
    """An internal DingTalk app the emulator knows."""

    app_key: str
    app_secret: str
    agent_id: int
    corp_id: str = "dingemulatorcorp"

    @classmethod
    def parse(cls, spec: str) -> EmulatedApp:
        """``KEY:SECRET:AGENT_ID`` as given to ``--app``."""
        key, secret, agent = spec.split(":", 2)
        return cls(app_key=key, app_secret=secret, agent_id=int(agent))


DEMO_APP = EmulatedApp(app_key="dingdemoappkey", app_secret="demo-app-secret-0123456789", agent_id=100001)


@dataclass
class Clock:
    """Emulator time: real time plus an offset that tests move forward (token expiry, robot windows)."""

    offset: float = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass(kw_only=True)
class IssuedToken:
    app_key: str
    family: str  # "oapi" (gettoken) or "api" (v1.0; also accepted by the old API)
    expires_at: float


@dataclass(kw_only=True)
class Fault:
    """What the next ``times`` calls to ``path`` get instead of a normal answer.

    ``errcode`` (+ ``sub_code`` → wrapped as 88): HTTP 200 with that errcode, the old API's style.
    ``status``: that HTTP status with ``body`` (default a gateway error page).
    ``delay``: wait that long first (a read timeout for a client with a shorter timeout), then answer.
    ``drop``: ``"before"`` closes the connection without handling the request; ``"after"`` handles it and
    then breaks the connection mid-response (the write happened, the client never hears of it).
    ``skip``: let that many matching calls through first (fail the 3rd chunk of a batched send).
    """

    path: str
    times: int = 1
    skip: int = 0
    errcode: int | None = None
    errmsg: str | None = None
    sub_code: int | None = None
    status: int | None = None
    body: Any = None
    delay: float = 0.0
    drop: str | None = None


@dataclass(kw_only=True)
class RequestRecord:
    """One request as received, with every secret already masked."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    time: float
    status: int = 0
    response: Any = None


@dataclass(kw_only=True)
class Delivery:
    """A message that reached a (pretend) person or chat."""

    channel: str  # "work_notification", "custom_robot", "app_robot_group", "app_robot_oto", ...
    target: str  # user id, chat id, or robot name
    message: dict[str, Any]
    time: float
    meta: dict[str, Any] = field(default_factory=dict)


class EmulatorState:
    def __init__(self, apps: list[EmulatedApp] | None = None, *, seed: int | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.apps: dict[str, EmulatedApp] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.requests: list[RequestRecord] = []
        self.inbox: list[Delivery] = []
        self.faults: list[Fault] = []
        self.calls: Counter[str] = Counter()
        self._secrets: set[str] = set()
        self._stores: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._random = secrets.SystemRandom() if seed is None else __import__("random").Random(seed)
        for app in apps or [DEMO_APP]:
            self.add_app(app)

    def reset(self) -> None:
        """Everything but the apps and the secrets to mask, as new (see ``DingTalkEmulator.reset``)."""
        with self.lock:
            self.requests.clear()
            self.inbox.clear()
            self.faults.clear()
            self.calls.clear()
            self.tokens.clear()
            self._stores.clear()
            self.clock.offset = 0.0

    # -- apps and tokens -----------------------------------------------------------------------

    def add_app(self, app: EmulatedApp) -> None:
        with self.lock:
            self.apps[app.app_key] = app
            self.add_secret(app.app_secret)

    def issue_token(self, app: EmulatedApp, family: str) -> tuple[str, int]:
        """DingTalk's rule: within validity the same token comes back and its life is extended."""
        with self.lock:
            now = self.clock.now()
            for token, info in self.tokens.items():
                if info.app_key == app.app_key and info.family == family and info.expires_at > now:
                    info.expires_at = now + TOKEN_TTL
                    return token, TOKEN_TTL
            token = self.random_hex(32)
            self.tokens[token] = IssuedToken(app_key=app.app_key, family=family, expires_at=now + TOKEN_TTL)
            self.add_secret(token)
            return token, TOKEN_TTL

    def app_for_token(self, token: str | None, *, families: tuple[str, ...]) -> EmulatedApp | None:
        """The app a valid token belongs to, or ``None`` (unknown, expired, or the wrong family)."""
        with self.lock:
            info = self.tokens.get(token or "")
            if info is None or info.family not in families or info.expires_at <= self.clock.now():
                return None
            return self.apps.get(info.app_key)

    def expire_tokens(self) -> None:
        """Make every issued token invalid now (DingTalk may revoke tokens at any time)."""
        with self.lock:
            for info in self.tokens.values():
                info.expires_at = 0

    # -- secrets, ids, per-endpoint data ---------------------------------------------------------

    def add_secret(self, value: str | None) -> None:
        if value:
            with self.lock:
                self._secrets.add(value)

    def known_secrets(self) -> list[str]:
        with self.lock:
            return list(self._secrets)

    def next_id(self) -> int:
        return next(self._ids)

    def random_hex(self, length: int) -> str:
        return "".join(self._random.choice("0123456789abcdef") for _ in range(length))

    def random_alnum(self, length: int) -> str:
        return "".join(self._random.choice(string.ascii_letters + string.digits) for _ in range(length))

    def request_id(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128)))

    def store(self, name: str, factory: Callable[[], S]) -> S:
        """Per-endpoint data, created on first use."""
        with self.lock:
            if name not in self._stores:
                self._stores[name] = factory()
            return self._stores[name]  # type: ignore[no-any-return]

    # -- faults, log, inbox ----------------------------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path == path and fault.times > 0:
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
            return None

    def deliver(self, channel: str, target: str, message: dict[str, Any], **meta: Any) -> Delivery:
        item = Delivery(channel=channel, target=target, message=message, time=self.clock.now(), meta=meta)
        with self.lock:
            self.inbox.append(item)
        return item

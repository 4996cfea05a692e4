"""Fuzz the DingTalk event receiver and DingTalkCrypto with generated hostile requests.

Every request is generated from a seed (so a failure is reproducible with ``--seed``) by one of the
case kinds below, most of them starting from a VALID encrypted event and breaking one thing:

==================  ==========================================================================
legit               a fresh event sealed with the real token, aes_key and receiver id, as DingTalk
                    sends it (both query spellings, unknown extra parameters): must be accepted
check_url / replay  the handshake, and a legit request sent again (re-delivery): answered 200
random              random query and body: bytes, JSON values, deep nesting, random ``encrypt``
ciphertext          a valid event's ``encrypt`` bit-flipped, truncated, extended, blocks dropped or
                    swapped, base64 altered; keeping the original signature or re-signed with the
                    real token (what a holder of the token but not the aes_key could send)
plaintext           forged with the real key and token: huge and short length fields, bad padding,
                    other receiver ids, non-UTF-8 / non-JSON / deeply nested messages, bad EventType
secrets             sealed with a wrong key, token or receiver id, or a stale/future timestamp
query               odd query strings: both spellings, duplicates, missing or empty values,
                    non-ASCII and invalid UTF-8 bytes, huge values, odd timestamps and separators
content_type        a valid event with other content types, form bodies
size                bodies just under, at and over the limit; chunked without Content-Length;
                    lying and malformed Content-Length headers
method              other methods and paths
==================  ==========================================================================

Most requests drive the ASGI app in-process (raw ASGI calls: the query string and headers arrive
byte for byte as generated); a share (``--http-share``) goes to the same receiver served by uvicorn
on loopback, over raw keep-alive sockets. The counts that must be 0:

* **5xx**: any answer ≥ 500 (the sink never fails here, so even 503 is a bug);
* **unhandled exceptions**: an exception out of the app, or the app's own catch-all logging one;
* **forged events accepted**: an event reached the sink that was not produced with the real secrets
  (tracked: every legitimately sealed payload is recorded before it is sent; for requests crafted
  with the real key and token an independent reference decryption says what, if anything, may pass);
* **legit events refused**: a legit request not answered 200 with an encrypted ``success`` or whose
  event did not reach the sink;

and for diagnosis: answers outside the statuses a case allows, secrets in a response body.

Then DingTalkCrypto is fuzzed directly (``--crypto-calls``): mutated ciphertexts through
``decrypt`` must give the reference's answer or a DingTalkCryptoError, ``verify``/``open`` with
random arguments only DingTalkCryptoError, random text must round-trip.

Run: ``python benchmarks/fuzz_receiver.py [--requests 100000] [--http-share 0.05] [--seed N] [--check]``.
Target: all counts 0.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http.client
import json
import logging
import random
import socket
import string
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from Crypto.Cipher import AES

from airflow_provider_dingtalk._redact import Secret
from airflow_provider_dingtalk._serve import ThreadedServer
from airflow_provider_dingtalk.crypto import DingTalkCrypto
from airflow_provider_dingtalk.event_types import event_asset_uri
from airflow_provider_dingtalk.events.app import DEFAULT_MAX_BODY_BYTES, create_receiver_app
from airflow_provider_dingtalk.events.dedup import DedupStore, event_key
from airflow_provider_dingtalk.exceptions import DingTalkCryptoError
from airflow_provider_dingtalk.hooks.event_callback import CallbackConfig

PATH = "/dingtalk/events"
MAX_BODY = DEFAULT_MAX_BODY_BYTES
ALNUM = string.ascii_letters + string.digits
EVENT_TYPES = ("bpms_instance_change", "bpms_task_change", "user_add_org", "chat_add_member", "check_in")
# (kind, weight): the share of generated requests per case kind.
KINDS = (
    ("legit", 18),
    ("check_url", 2),
    ("replay", 3),
    ("random", 12),
    ("ciphertext", 16),
    ("plaintext", 16),
    ("secrets", 6),
    ("query", 14),
    ("content_type", 5),
    ("size", 6),
    ("method", 2),
)
REFUSED = frozenset({400, 403})
ODD_JSON: list[Any] = [
    None,
    1,
    1.5,
    "s",
    [],
    [1],
    {"encrypt": None},
    {"encrypt": 5},
    {"encrypt": ["a"]},
    {"encrypt": {"a": 1}},
    {"encrypt": ""},
]
ODD_BODIES = [
    b"1e999999",
    b"NaN",
    b"-Infinity",
    b'{"encrypt": "\\ud800"}',
    b"\xef\xbb\xbf{}",
    '{"encrypt": "x"}'.encode("utf-16"),
    b'{"encrypt": "A' + b"A" * 50 + b'"',
]
NOT_UTF8 = [b"\xc3\x28", b"\xed\xa0\x80", "é".encode("latin-1")]
ODD_MESSAGES = [
    b"",
    b"not json",
    b"[]",
    b"null",
    b"1",
    b"{}",
    b'{"EventType": 1}',
    b'{"EventType": ""}',
    b'{"EventType": "../x"}',
    b'{"EventType": "a b"}',
    b'{"EventType": "a/b"}',
    '{"EventType": "审批"}'.encode(),
    b'{"EventType": "x\\u0000"}',
    b'{"EventType": null}',
    b'{"EventType": "check_url", "EventType": "user_add_org", "fuzz": 1}',
]
QUERY_JUNK = [b"\xff", b"\xc3\xa9", "审批".encode(), b"%FF", b"%ZZ", b"%", b"%00", b"%C3%28"]
CONTENT_TYPES = [
    b"text/plain",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
    b"application/json; charset=utf-16",
    b"application/xml",
    b"\xff\xfe",
    b"",
]
BAD_CONTENT_LENGTHS = [b"\xb2", "١٢".encode(), b"9" * 5000, b"-1", b"1e3", b" 12", b"", b"+5"]
OTHER_PATHS = [PATH + "/", PATH + "x", "/dingtalk", "/", PATH + "/../events", PATH.upper()]
RECEIVER_LOGGER = "airflow_provider_dingtalk.events.app"


@dataclass
class Case:
    """One generated request and what it may get."""

    kind: str
    query: bytes
    body: bytes
    allowed: frozenset[int]
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_length: bytes | None = None  # None: the real length (or chunked, see below)
    chunked: bool = False
    method: str = "POST"
    path: str = PATH
    legit: dict[str, Any] | None = None  # the event, when it was produced with the real secrets
    must_accept: bool = False
    in_process_only: bool = False  # bytes a real HTTP stack would refuse before our app


@dataclass
class Tally:
    requests: int = 0
    over_http: int = 0
    server_errors: int = 0
    unhandled_exceptions: int = 0
    forged_accepted: int = 0
    legit_refused: int = 0
    unexpected_status: int = 0
    secrets_in_responses: int = 0
    dropped_connections: int = 0
    legit_sent: int = 0
    events_accepted: int = 0
    token_holder_events_accepted: int = 0
    crypto_calls: int = 0
    crypto_failures: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def problem(self, counter: str, case: Case, detail: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)
        if len(self.examples) < 20:
            self.examples.append(
                f"{counter}: kind={case.kind} {case.method} {case.path}?{case.query[:120]!r} "
                f"body={case.body[:120]!r} headers={case.headers[:4]!r}: {detail}"
            )

    @property
    def failures(self) -> int:
        return (
            self.server_errors
            + self.unhandled_exceptions
            + self.forged_accepted
            + self.legit_refused
            + self.unexpected_status
            + self.secrets_in_responses
            + self.crypto_failures
        )


class RecordingSink:
    """Collects what reaches Airflow's side; computes the asset URI as the real sinks do."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.count = 0

    def emit(self, event_type: str, event: dict[str, Any]) -> int:
        event_asset_uri(event_type)
        self.events.append(event)
        self.count += 1
        return 1

    def take(self) -> list[dict[str, Any]]:
        """The events since the last call; not kept, so a long run's memory (and GC time) stays flat."""
        events, self.events = self.events, []
        return events


class _CountErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


# -- the reference: an independent reading of DingTalk's scheme (加解密方案说明) ----------------


def reference_event(key: bytes, receiver_id: bytes, encrypt: Any) -> dict[str, Any] | None:
    """The event the receiver must accept for this ``encrypt`` (signature assumed valid), else None."""
    if not isinstance(encrypt, str) or not encrypt:
        return None
    try:
        raw = base64.b64decode(encrypt.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    if not raw or len(raw) % 16:
        return None
    plain = AES.new(key, AES.MODE_CBC, iv=key[:16]).decrypt(raw)
    pad = plain[-1]
    if pad < 1 or pad > 32 or pad > len(plain) or any(b != pad for b in plain[-pad:]):
        return None
    plain = plain[:-pad]
    if len(plain) < 20:
        return None
    length = int.from_bytes(plain[16:20], "big")
    if 20 + length > len(plain) or plain[20 + length :] != receiver_id:
        return None
    try:
        event = json.loads(plain[20 : 20 + length].decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict):
        return None
    etype = event.get("EventType")
    if not isinstance(etype, str) or not etype or not etype.replace("_", "").isalnum():
        return None
    return event


# -- generating cases ---------------------------------------------------------------------------


class Generator:
    """Seeded case generator holding the real secrets and the legit payloads produced so far."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.token = "".join(rng.choice(ALNUM) for _ in range(rng.randint(8, 40)))
        self.aes_key = "".join(rng.choice(ALNUM) for _ in range(43))
        self.receiver_id = "ding" + "".join(rng.choice("0123456789abcdef") for _ in range(16))
        self.key = base64.b64decode(self.aes_key + "=")
        self.box = DingTalkCrypto(token=self.token, aes_key=self.aes_key, receiver_id=self.receiver_id)
        other_key = "".join(rng.choice(ALNUM) for _ in range(43))
        self.wrong = {
            "key": DingTalkCrypto(token=self.token, aes_key=other_key, receiver_id=self.receiver_id),
            "token": DingTalkCrypto(
                token=self.token + "x", aes_key=self.aes_key, receiver_id=self.receiver_id
            ),
            "receiver": DingTalkCrypto(token=self.token, aes_key=self.aes_key, receiver_id="dingothercorp"),
            "receiver_prefix": DingTalkCrypto(
                token=self.token, aes_key=self.aes_key, receiver_id=self.receiver_id[:-1]
            ),
        }
        self.config = CallbackConfig(
            receiver_id=self.receiver_id, token=Secret(self.token), aes_key=Secret(self.aes_key), url=None
        )
        self.allowed_keys: set[str] = set()  # event_key of every payload that may reach the sink
        self.delivered: set[str] = set()  # event_key of every payload that reached it (dedup skips them)
        self.sent_legit: list[Case] = []
        self._n = 0
        self._weights = [w for _, w in KINDS]
        self._makers: list[Callable[[], Case]] = [getattr(self, f"_{k}") for k, _ in KINDS]

    @property
    def secrets(self) -> list[bytes]:
        return [s.encode() for s in (self.token, self.aes_key)] + [self.key]

    def next_case(self) -> Case:
        return self.rng.choices(self._makers, self._weights)[0]()

    # -- building blocks

    def _text(self, max_len: int = 24) -> str:
        pools = (ALNUM, ALNUM + " _-./:", "审批通过同意拒绝钉钉", "😀🚀✓", "\\\"'\n\t\x00<>&%")
        pool = "".join(self.rng.sample(pools, self.rng.randint(1, len(pools))))
        return "".join(self.rng.choice(pool) for _ in range(self.rng.randint(0, max_len)))

    def event(self, event_type: str | None = None) -> dict[str, Any]:
        self._n += 1
        rng = self.rng
        event: dict[str, Any] = {"EventType": event_type or rng.choice(EVENT_TYPES), "fuzzId": self._n}
        for _ in range(rng.randint(0, 5)):
            value: Any = rng.choice(
                [self._text(), rng.randint(-(2**63), 2**63), rng.random(), None, True, [self._text()]]
            )
            event[self._text(12) or "k"] = value
        return event

    def seal(self, event: dict[str, Any], box: DingTalkCrypto | None = None, **kw: Any) -> dict[str, str]:
        text = json.dumps(event, ensure_ascii=self.rng.random() < 0.5)
        return (box or self.box).encrypt(text, **kw)

    def query(
        self, sealed: dict[str, str], *, old: bool | None = None, extra: bool = True
    ) -> list[tuple[str, str]]:
        old = self.rng.random() < 0.3 if old is None else old
        names = ("signature", "timestamp", "nonce") if old else ("msg_signature", "timeStamp", "nonce")
        pairs = list(zip(names, (sealed["msg_signature"], sealed["timeStamp"], sealed["nonce"]), strict=True))
        if extra and self.rng.random() < 0.3:
            pairs.append((self._text(8) or "x", self._text(16)))
        self.rng.shuffle(pairs)
        return pairs

    @staticmethod
    def qs(pairs: list[tuple[str, str]]) -> bytes:
        return urlencode(pairs).encode("ascii")

    def body(self, encrypt: Any) -> bytes:
        doc: dict[str, Any] = {"encrypt": encrypt}
        if self.rng.random() < 0.1:
            doc["extra"] = self._text()
        return json.dumps(doc).encode()

    def legit_case(self, kind: str = "legit", event: dict[str, Any] | None = None, **kw: Any) -> Case:
        event = event or self.event()
        sealed = self.seal(event, **kw)
        self.allowed_keys.add(event_key(event))
        case = Case(
            kind,
            self.qs(self.query(sealed)),
            self.body(sealed["encrypt"]),
            frozenset({200}),
            legit=event,
            must_accept=True,
        )
        return case

    def resigned(self, kind: str, encrypt: str) -> Case:
        """Signed with the real token: the reference says whether (and what) the receiver may accept."""
        stamp, nonce = str(int(time.time() * 1000)), self._text(16) or "n"
        signature = self.box.signature(stamp, nonce, encrypt)
        pairs = [("msg_signature", signature), ("timeStamp", stamp), ("nonce", nonce)]
        event = reference_event(self.key, self.receiver_id.encode(), encrypt)
        if event is None:
            return Case(kind, self.qs(pairs), self.body(encrypt), REFUSED)
        if event["EventType"] != "check_url":
            self.allowed_keys.add(event_key(event))
        return Case(kind, self.qs(pairs), self.body(encrypt), frozenset({200}), legit=event, must_accept=True)

    def raw_encrypt(self, plain: bytes, *, pad: bytes | None = None) -> str:
        if pad is None:
            n = 32 - len(plain) % 32
            pad = bytes([n]) * n
        data = plain + pad
        data += b"\x00" * (-len(data) % 16)  # AES needs whole blocks; odd pads stay odd
        return base64.b64encode(AES.new(self.key, AES.MODE_CBC, iv=self.key[:16]).encrypt(data)).decode()

    # -- case kinds

    def _legit(self) -> Case:
        self.sent_legit.append(case := self.legit_case())
        if len(self.sent_legit) > 200:
            del self.sent_legit[0]
        return case

    def _check_url(self) -> Case:
        sealed = self.seal({"EventType": "check_url"})
        return Case(
            "check_url",
            self.qs(self.query(sealed)),
            self.body(sealed["encrypt"]),
            frozenset({200}),
            must_accept=True,
        )

    def _replay(self) -> Case:
        if not self.sent_legit:
            return self._legit()
        old = self.rng.choice(self.sent_legit)
        return Case("replay", old.query, old.body, frozenset({200}), legit=old.legit, must_accept=True)

    def _random(self) -> Case:
        rng = self.rng
        names = ["msg_signature", "signature", "timeStamp", "timestamp", "nonce", self._text(6) or "z"]
        pairs = [(rng.choice(names), self._text(40)) for _ in range(rng.randint(0, 6))]
        choice = rng.randrange(8)
        if choice == 0:
            body = rng.randbytes(rng.randint(0, 600))
        elif choice == 1:
            body = json.dumps({"encrypt": self._text(200)}).encode()
        elif choice == 2:
            body = json.dumps(
                {"encrypt": base64.b64encode(rng.randbytes(16 * rng.randint(0, 40))).decode()}
            ).encode()
        elif choice == 3:
            body = json.dumps(rng.choice(ODD_JSON)).encode()
        elif choice == 4:  # deep nesting: a recursion bomb for naive parsers
            depth = rng.choice([100, 1000, 5000, 20000, MAX_BODY // 2 - 20])
            inner = rng.choice(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth])
            body = ('{"encrypt": "AAAA", "x": ' + inner + "}").encode()[:MAX_BODY]
        elif choice == 5:
            body = rng.choice(ODD_BODIES)
        elif choice == 6:
            body = b'{"encrypt": "' + str(10 ** rng.randint(1, 4000)).encode() + b'"}'
        else:
            body = b""
        # Random bodies may carry a fresh real signature: only a random encrypt can then be refused.
        if rng.random() < 0.2:
            sealed = self.seal(self.event())
            pairs = self.query(sealed, extra=False)
        return Case("random", self.qs(pairs), body, frozenset({400, 403}))

    def _ciphertext(self) -> Case:
        rng = self.rng
        event = self.event()
        sealed = self.seal(event)
        raw = bytearray(base64.b64decode(sealed["encrypt"]))
        op = rng.randrange(9)
        if op == 0:  # flip 1-3 bits anywhere (block 0 flips reach the length field and the message)
            for _ in range(rng.randint(1, 3)):
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            encrypt = base64.b64encode(raw).decode()
        elif op == 1:  # truncate to any length, whole blocks or not
            encrypt = base64.b64encode(raw[: rng.randrange(len(raw))]).decode()
        elif op == 2:  # append random blocks or bytes
            encrypt = base64.b64encode(raw + rng.randbytes(rng.choice([1, 15, 16, 32, 48]))).decode()
        elif op == 3:  # drop a block
            i = rng.randrange(len(raw) // 16)
            encrypt = base64.b64encode(raw[: 16 * i] + raw[16 * i + 16 :]).decode()
        elif op == 4:  # swap two blocks
            i, j = rng.randrange(len(raw) // 16), rng.randrange(len(raw) // 16)
            blocks = [raw[k : k + 16] for k in range(0, len(raw), 16)]
            blocks[i], blocks[j] = blocks[j], blocks[i]
            encrypt = base64.b64encode(b"".join(blocks)).decode()
        elif op == 5:  # alter the base64 text itself
            text = list(sealed["encrypt"])
            i = rng.randrange(len(text))
            text[i] = rng.choice("+/=-_ \n.é\x00" + ALNUM)
            encrypt = "".join(text)
        elif op == 6:  # padding removed, url-safe alphabet, line breaks
            e = sealed["encrypt"]
            encrypt = rng.choice(
                [
                    e.rstrip("="),
                    e.replace("+", "-").replace("/", "_"),
                    base64.encodebytes(bytes(raw)).decode(),
                    " " + e,
                    e + "==",
                ]
            )
        elif op == 7:  # the last byte (the pad) bit-flipped through the previous block
            raw[-17] ^= 1 << rng.randrange(8)
            encrypt = base64.b64encode(raw).decode()
        else:  # another event's ciphertext prefix with this one's tail (cut and splice)
            other = base64.b64decode(self.seal(self.event())["encrypt"])
            cut = 16 * rng.randint(1, min(len(raw), len(other)) // 16)
            encrypt = base64.b64encode(other[:cut] + raw[cut:]).decode()
        if encrypt == sealed["encrypt"]:
            encrypt += "A"
        if rng.random() < 0.5:  # the original signature no longer matches: nothing may pass
            return Case("ciphertext", self.qs(self.query(sealed)), self.body(encrypt), REFUSED)
        return self.resigned("ciphertext", encrypt)

    def _plaintext(self) -> Case:
        rng = self.rng
        event = self.event()
        msg = json.dumps(event).encode()
        receiver = self.receiver_id.encode()
        random16 = "".join(rng.choice(ALNUM) for _ in range(16)).encode()
        length = len(msg)
        pad: bytes | None = None
        op = rng.randrange(12)
        if op == 0:
            length = rng.choice([0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 2**24, len(msg) + len(receiver) + 1])
        elif op == 1:
            length = len(msg) + rng.randint(1, len(receiver))
        elif op == 2:
            length = rng.randint(0, max(0, len(msg) - 1))
        elif op == 3:
            receiver = rng.choice(
                [
                    b"",
                    b"dingothercorp",
                    receiver[:-1],
                    receiver + b"x",
                    receiver.upper(),
                    b"\xff\xfe",
                    receiver + b"\x00",
                ]
            )
        elif op == 4:
            n = rng.choice([0, 33, 64, 255, 17])
            pad = bytes([n]) * max(n, 1)
        elif op == 5:  # inconsistent pad bytes
            n = rng.randint(2, 32)
            pad = bytes([n]) * (n - 1) + bytes([n - 1])
        elif op == 6:  # a pad longer than the whole message
            return self.resigned("plaintext", self.raw_encrypt(b"", pad=bytes([32]) * 16))
        elif op == 7:  # content shorter than the 20-byte header
            return self.resigned("plaintext", self.raw_encrypt(random16[: rng.randint(0, 15)]))
        elif op == 8:
            msg = rng.choice([rng.randbytes(rng.randint(1, 80)), *NOT_UTF8])
            length = len(msg)
        elif op == 9:
            msg = rng.choice(ODD_MESSAGES)
            length = len(msg)
        elif op == 10:  # a deeply nested but otherwise valid event
            depth = rng.choice([50, 900, 5000, 20000])
            msg = ('{"EventType": "user_add_org", "n": ' + "[" * depth + "]" * depth + "}").encode()
            length = len(msg)
        else:  # PKCS#7 with block 16 (pad 1..16) instead of DingTalk's 32: tolerated (pad is 1..32)
            plain = random16 + struct.pack(">I", length) + msg + receiver
            n = 16 - len(plain) % 16
            return self.resigned("plaintext", self.raw_encrypt(plain, pad=bytes([n]) * n))
        plain = random16 + struct.pack(">I", length) + msg + receiver
        return self.resigned("plaintext", self.raw_encrypt(plain, pad=pad))

    def _secrets(self) -> Case:
        rng = self.rng
        event = self.event()
        now = time.time()
        op = rng.randrange(4)
        if op < 2:
            sealed = self.seal(event, rng.choice(list(self.wrong.values())))
            return Case(
                "secrets", self.qs(self.query(sealed)), self.body(sealed["encrypt"]), frozenset({403})
            )
        if op == 2:  # stale or from the future: replays and wrong clocks
            offset = rng.choice([-1, 1]) * rng.uniform(301, 10**8)
            stamp = rng.choice([str(int((now + offset) * 1000)).zfill(13), str(int(now + offset)).zfill(10)])
            if len(stamp) not in (10, 13):
                stamp = "0" * 13
            sealed = self.seal(event, timestamp=stamp)
            return Case(
                "secrets", self.qs(self.query(sealed)), self.body(sealed["encrypt"]), frozenset({403})
            )
        # fresh, in seconds (the official demo's replies): accepted
        return self.legit_case("secrets", event, timestamp=str(int(now + rng.uniform(-200, 200))))

    def _query(self) -> Case:
        rng = self.rng
        event = self.event()
        sealed = self.seal(event)
        pairs = self.query(sealed, extra=False)
        names = [n for n, _ in pairs]
        op = rng.randrange(9)
        if op == 0:  # both spellings at once, consistent
            other = {
                "msg_signature": "signature",
                "signature": "msg_signature",
                "timeStamp": "timestamp",
                "timestamp": "timeStamp",
                "nonce": "nonce",
            }
            pairs += [(other[n], v) for n, v in pairs if n != "nonce"]
            return self._may_pass(event, self.qs(pairs), sealed)
        if op == 1:  # duplicates: junk first or junk last
            name = rng.choice(names)
            junk = (name, self._text(20))
            pairs = [junk, *pairs] if rng.random() < 0.5 else [*pairs, junk]
            return self._may_pass(event, self.qs(pairs), sealed)
        if op == 2:  # a parameter missing, or all
            drop = set(rng.sample(names, rng.randint(1, 3)))
            return Case(
                "query",
                self.qs([p for p in pairs if p[0] not in drop]),
                self.body(sealed["encrypt"]),
                frozenset({400}),
            )
        if op == 3:  # empty values
            name = rng.choice(names)
            q = self.qs([(n, "" if n == name else v) for n, v in pairs])
            q = q.replace(f"{name}=".encode(), rng.choice([f"{name}=", name]).encode())
            return Case("query", q, self.body(sealed["encrypt"]), frozenset({400}))
        if op == 4:  # raw non-ASCII / invalid UTF-8 / bad percent escapes in a value
            name = rng.choice(names)
            q = self.qs(pairs)
            odd = rng.choice(QUERY_JUNK)
            q = q.replace(f"{name}=".encode(), f"{name}=".encode() + odd)
            return Case("query", q, self.body(sealed["encrypt"]), REFUSED, in_process_only=odd[0] >= 0x80)
        if op == 5:  # huge values
            name = rng.choice(names)
            size = rng.choice([1_000, 10_000, 100_000, 1_000_000])
            q = self.qs([(n, v + "9" * size if n == name else v) for n, v in pairs])
            return Case("query", q, self.body(sealed["encrypt"]), REFUSED | {413, 414, 431})
        if op == 6:  # timestamps of other shapes
            stamp = sealed["timeStamp"]
            odd_stamp = rng.choice(
                [
                    " " + stamp,
                    stamp + " ",
                    "+" + stamp,
                    "-" + stamp,
                    stamp + ".0",
                    stamp[:-1],
                    stamp + "0",
                    "１" * 13,
                    f"{float(stamp):e}",
                    "NaN",
                    "0x" + stamp,
                    "٣" * 13,
                    stamp + "\n",
                    "9" * 4400,
                ]
            )
            q = self.qs([(n, odd_stamp if n in ("timeStamp", "timestamp") else v) for n, v in pairs])
            return Case("query", q, self.body(sealed["encrypt"]), REFUSED)
        if op == 7:  # odd separators and escapes
            q = self.qs(pairs)
            q = rng.choice(
                [
                    q.replace(b"&", b";"),
                    q.replace(b"&", b"&&"),
                    b"&" + q + b"&",
                    q + b"#frag",
                    q.replace(b"=", b"%3D", 1),
                    q + b"&=&==&",
                ]
            )
            return Case("query", q, self.body(sealed["encrypt"]), REFUSED | {200}, legit=self._allow(event))
        # unknown extra parameters, odd ones included: still DingTalk's request
        pairs.append((self._text(10) or "x", self._text(30)))
        return (
            self.legit_case("query", event)
            if rng.random() < 0.3
            else self._may_pass(event, self.qs(pairs), sealed)
        )

    def _allow(self, event: dict[str, Any]) -> dict[str, Any]:
        self.allowed_keys.add(event_key(event))
        return event

    def _may_pass(self, event: dict[str, Any], query: bytes, sealed: dict[str, str]) -> Case:
        """Real secrets with an odd query: may be refused, but if accepted only this event may pass."""
        return Case("query", query, self.body(sealed["encrypt"]), REFUSED | {200}, legit=self._allow(event))

    def _content_type(self) -> Case:
        rng = self.rng
        case = self.legit_case("content_type")
        case.must_accept, case.allowed = False, frozenset({200, 400, 415})
        ctype = rng.choice(CONTENT_TYPES)
        if ctype:
            case.headers.append((b"content-type", ctype))
        case.in_process_only = ctype.startswith(b"\xff")
        if rng.random() < 0.3:  # a form body instead of JSON
            case.body = b"encrypt=" + quote(json.loads(case.body)["encrypt"]).encode()
            case.allowed = frozenset({400, 415})
        return case

    def _size(self) -> Case:
        rng = self.rng
        case = self.legit_case("size")
        op = rng.randrange(7)
        if op == 0:  # padded with JSON whitespace to exactly the limit: still accepted
            case.body = case.body[:-1] + b" " * (MAX_BODY - len(case.body)) + b"}"
        elif op == 1:  # one byte over, with Content-Length: refused before reading
            case.body = case.body[:-1] + b" " * (MAX_BODY + 1 - len(case.body)) + b"}"
            case.allowed, case.must_accept = frozenset({413}), False
        elif op == 2:  # far over, chunked without Content-Length: refused while reading
            case.body = case.body[:-1] + b" " * rng.choice([MAX_BODY, 4 * MAX_BODY, 40 * MAX_BODY]) + b"}"
            case.chunked, case.allowed, case.must_accept = True, frozenset({413}), False
        elif op == 3:  # under the limit, chunked: accepted
            case.chunked = True
        elif op == 4:  # Content-Length that lies (small) over a big body: only in-process, HTTP would desync
            case.body = case.body[:-1] + b" " * (2 * MAX_BODY) + b"}"
            case.content_length, case.in_process_only = b"10", True
            case.allowed, case.must_accept = frozenset({413}), False
        elif op == 5:  # malformed Content-Length headers over a normal body
            case.content_length = rng.choice(BAD_CONTENT_LENGTHS)
            case.in_process_only = True
            case.allowed, case.must_accept = frozenset({200, 400, 413}), False
        else:  # a huge declared length over a small body
            case.content_length = str(rng.choice([MAX_BODY + 1, 2**31, 2**64, 10**30])).encode()
            case.in_process_only = True
            case.allowed, case.must_accept = frozenset({413}), False
        return case

    def _method(self) -> Case:
        rng = self.rng
        case = self.legit_case("method")
        case.must_accept = False
        if rng.random() < 0.5:
            case.method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
            case.allowed = frozenset({405})
        else:
            case.path = rng.choice(OTHER_PATHS)
            case.allowed = frozenset({307, 404, 405})
        return case


# -- sending ---------------------------------------------------------------------------------


def _chunks(body: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(body):
        n = rng.choice([1, 7, 100, 4096, 65536])
        out.append(body[i : i + n])
        i += n
    return out or [b""]


async def call_asgi(app: Any, case: Case, rng: random.Random) -> tuple[int, bytes]:
    """One request straight into the ASGI app, bytes exactly as generated."""
    headers = [(b"host", b"testserver"), *case.headers]
    if case.content_length is not None:
        headers.append((b"content-length", case.content_length))
    elif case.chunked:
        headers.append((b"transfer-encoding", b"chunked"))
    else:
        headers.append((b"content-length", str(len(case.body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": case.method,
        "scheme": "http",
        "path": case.path,
        "raw_path": case.path.encode(),
        "root_path": "",
        "query_string": case.query,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    pending = _chunks(case.body, rng) if case.chunked else [case.body]
    status, out = 0, bytearray()

    async def receive() -> dict[str, Any]:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            out.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(out)


class HttpClient:
    """Raw HTTP/1.1 over a keep-alive socket, so odd bytes reach the server unchanged."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=10)
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def send(self, case: Case, rng: random.Random) -> tuple[int, bytes] | None:
        """The status and body, or None when the server closed the connection without an answer."""
        target = case.path.encode() + (b"?" + case.query if case.query else b"")
        lines = [case.method.encode() + b" " + target + b" HTTP/1.1", b"host: " + self.host.encode()]
        lines += [k + b": " + v for k, v in case.headers]
        if case.chunked:
            lines.append(b"transfer-encoding: chunked")
            payload = (
                b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in _chunks(case.body, rng) if c) + b"0\r\n\r\n"
            )
        else:
            lines.append(b"content-length: " + str(len(case.body)).encode())
            payload = case.body
        data = b"\r\n".join(lines) + b"\r\n\r\n" + payload
        for attempt in range(2):  # a kept-alive socket the server closed meanwhile: reconnect once
            sock = self._connect()
            try:
                # The server may answer early (413) and close: read that answer if it came.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(data)
                resp = http.client.HTTPResponse(sock)
                resp.begin()
                body = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, body
            except (http.client.HTTPException, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    return None
        return None


# -- running ---------------------------------------------------------------------------------


def run(
    requests: int,
    *,
    http_share: float = 0.05,
    seed: int = 0,
    crypto_calls: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Tally:
    """Generate and send ``requests`` requests (``http_share`` of them over loopback HTTP); fuzz crypto."""
    gen = Generator(seed)
    send_rng = random.Random(seed + 1)
    sink = RecordingSink()
    dedup = DedupStore(None, max_entries=10 * requests + 100)

    def make() -> Any:  # one app in-process, one behind uvicorn; sink and dedup store shared
        return create_receiver_app(config=gen.config, sink=sink, dedup=dedup)

    app = make()
    errors = _CountErrors()
    logger = logging.getLogger(RECEIVER_LOGGER)
    logger.addHandler(errors)
    propagate, logger.propagate = logger.propagate, False  # one info line per event would swamp the output
    tally = Tally()
    started = time.perf_counter()
    loop = asyncio.new_event_loop()
    try:
        with ThreadedServer(make(), name="fuzz-receiver") as server:
            # uvicorn logs an exception escaping the app at ERROR (counted); its WARNING for bytes it
            # refuses itself ("Invalid HTTP request received.", answered 400) is expected here.
            server_log = logging.getLogger("uvicorn.error")
            server_log.addHandler(errors)
            server_log.setLevel(logging.ERROR)
            host, port = server.url.removeprefix("http://").rsplit(":", 1)
            client = HttpClient(host, int(port))
            for i in range(requests):
                case = gen.next_case()
                over_http = not case.in_process_only and send_rng.random() < http_share
                logged = errors.count
                try:
                    if over_http:
                        answer = client.send(case, send_rng)
                    else:
                        answer = loop.run_until_complete(call_asgi(app, case, send_rng))
                except Exception as exc:  # an exception out of the app is a finding
                    tally.problem("unhandled_exceptions", case, repr(exc)[:300])
                    answer = (0, b"")
                tally.requests += 1
                tally.over_http += over_http
                tally.kinds[case.kind] += 1
                _check(tally, gen, case, answer, sink.take(), errors.count - logged, over_http)
                if progress and (i + 1) % 10_000 == 0:
                    rate = (i + 1) / (time.perf_counter() - started)
                    progress(f"{i + 1} requests, {rate:.0f}/s, failures so far {tally.failures}")
            client.close()
            server_log.removeHandler(errors)
    finally:
        loop.close()
        logger.removeHandler(errors)
        logger.propagate = propagate
    tally.events_accepted = sink.count
    fuzz_crypto(gen, crypto_calls, tally)
    return tally


def _check(
    tally: Tally,
    gen: Generator,
    case: Case,
    answer: tuple[int, bytes] | None,
    arrived: list[dict[str, Any]],
    errors_logged: int,
    over_http: bool,
) -> None:
    if answer is None:
        tally.dropped_connections += 1
        if case.allowed & {200} and case.must_accept:
            tally.problem("legit_refused", case, "connection closed without an answer")
        return
    status, body = answer
    tally.statuses[status] += 1
    if case.legit is not None and case.must_accept and case.kind != "replay":
        tally.legit_sent += 1
    if errors_logged:
        tally.problem(
            "unhandled_exceptions", case, f"the receiver logged {errors_logged} error(s); answer {status}"
        )
    if status >= 500:
        tally.problem("server_errors", case, f"HTTP {status} {body[:200]!r}")
    elif status not in case.allowed and not (over_http and status in (400, 413, 414, 431)):
        # Over HTTP the server itself may refuse odd bytes with 400/413/414/431 before our app sees them.
        tally.problem(
            "unexpected_status", case, f"HTTP {status}, allowed {sorted(case.allowed)}: {body[:200]!r}"
        )
    if any(s in body for s in gen.secrets):
        tally.problem("secrets_in_responses", case, "a secret in the response body")
    for event in arrived:
        gen.delivered.add(event_key(event))
        if event_key(event) not in gen.allowed_keys:
            tally.problem("forged_accepted", case, f"event reached the sink: {json.dumps(event)[:200]}")
        elif case.kind in ("ciphertext", "plaintext"):
            tally.token_holder_events_accepted += 1
    if case.must_accept:
        reply_ok = False
        if status == 200:
            try:
                reply = json.loads(body)
                opened = gen.box.open(
                    signature=reply["msg_signature"],
                    timestamp=reply["timeStamp"],
                    nonce=reply["nonce"],
                    encrypt=reply["encrypt"],
                )
                reply_ok = opened == "success"
            except (ValueError, KeyError, TypeError, DingTalkCryptoError):
                reply_ok = False
        # Re-deliveries of an event already handled are acknowledged without reaching the sink again.
        reached = (
            case.legit is None
            or case.legit.get("EventType") == "check_url"
            or any(e == case.legit for e in arrived)
            or (case.kind in ("replay", "plaintext", "ciphertext") and event_key(case.legit) in gen.delivered)
        )
        if not (reply_ok and reached):
            tally.problem(
                "legit_refused", case, f"HTTP {status}, encrypted success {reply_ok}, reached sink {reached}"
            )


def fuzz_crypto(gen: Generator, calls: int, tally: Tally) -> None:
    """DingTalkCrypto alone: decrypt of mutated ciphertexts, verify/open of random input, round trips."""
    rng = gen.rng
    box, receiver = gen.box, gen.receiver_id.encode()
    for _ in range(calls):
        tally.crypto_calls += 1
        op = rng.randrange(3)
        try:
            if op == 0:
                case = rng.choice([gen._ciphertext, gen._plaintext])()
                encrypt = json.loads(case.body)["encrypt"]
                expected = reference_event(gen.key, receiver, encrypt)
                try:
                    got: Any = json.loads(box.decrypt(encrypt))
                except DingTalkCryptoError as exc:
                    got = None
                    if any(s.decode() in str(exc) for s in gen.secrets[:2]):
                        raise AssertionError("a secret in a DingTalkCryptoError") from None
                except (ValueError, RecursionError):
                    got = None  # decrypted, but not JSON: the receiver's job, not the crypto's
                if expected is not None and got != expected:
                    raise AssertionError(f"decrypt gave {got!r}, the reference {expected!r}")
            elif op == 1:
                args = [
                    rng.choice([gen._text(30), str(int(time.time() * 1000)), "", "\udcff", "9" * 13])
                    for _ in range(4)
                ]
                try:
                    box.open(signature=args[0], timestamp=args[1], nonce=args[2], encrypt=args[3])
                    raise AssertionError("random arguments opened")
                except DingTalkCryptoError:
                    pass
            else:
                text = gen._text(rng.choice([0, 10, 300]))
                if box.decrypt(box.encrypt(text)["encrypt"]) != text:
                    raise AssertionError(f"round trip changed {text!r}")
        except Exception as exc:  # any other exception is a finding
            tally.crypto_failures += 1
            if len(tally.examples) < 20:
                tally.examples.append(f"crypto op {op}: {exc!r}"[:400])


def report(tally: Tally, seconds: float) -> str:
    rate = tally.requests / seconds if seconds else 0.0
    lines = [
        f"{tally.requests} requests in {seconds:.1f} s ({rate:.0f} requests/s), "
        f"{tally.over_http} of them over loopback HTTP; {tally.crypto_calls} direct crypto calls",
        f"by kind: {dict(sorted(tally.kinds.items()))}",
        f"by status: {dict(sorted(tally.statuses.items()))}",
        f"legit events sent {tally.legit_sent}, events accepted {tally.events_accepted} "
        f"(of which crafted with the real token and key {tally.token_holder_events_accepted}), "
        f"dropped connections {tally.dropped_connections}",
        f"5xx {tally.server_errors} | unhandled exceptions {tally.unhandled_exceptions} | "
        f"forged events accepted {tally.forged_accepted} | legit events refused {tally.legit_refused} | "
        f"unexpected statuses {tally.unexpected_status} | "
        f"secrets in responses {tally.secrets_in_responses} | crypto failures {tally.crypto_failures}",
    ]
    lines += [f"  e.g. {e}" for e in tally.examples]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--http-share", type=float, default=0.05, help="share sent over loopback HTTP")
    parser.add_argument("--crypto-calls", type=int, default=None, help="default: requests / 2")
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument("--check", action="store_true", help="exit 1 when any count is not 0")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    crypto_calls = args.crypto_calls if args.crypto_calls is not None else args.requests // 2
    print(f"python: {sys.executable}; seed {seed}", flush=True)
    started = time.perf_counter()
    tally = run(
        args.requests,
        http_share=args.http_share,
        seed=seed,
        crypto_calls=crypto_calls,
        progress=lambda s: print(s, flush=True),
    )
    print(report(tally, time.perf_counter() - started))
    ok = tally.failures == 0
    print(f"\n{'PASS' if ok else 'FAIL'}: {tally.failures} failures in {tally.requests} requests (target 0)")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())

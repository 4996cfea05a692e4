"""The receiver over real HTTP: handshake answers, refusals (never a 500), de-duplication."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_dingtalk._redact import Secret
from airflow_provider_dingtalk._serve import ThreadedServer
from airflow_provider_dingtalk.crypto import DingTalkCrypto
from airflow_provider_dingtalk.events.app import create_receiver_app
from airflow_provider_dingtalk.events.dedup import Claim, DedupStore
from airflow_provider_dingtalk.events.sinks import SinkUnavailable
from airflow_provider_dingtalk.hooks.event_callback import CallbackConfig

TOKEN, AES_KEY, CORP = "tok123", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "dingcorp1"
CONFIG = CallbackConfig(receiver_id=CORP, token=Secret(TOKEN), aes_key=Secret(AES_KEY), url=None)
EVENT = {"EventType": "bpms_instance_change", "processInstanceId": "p-1", "type": "finish", "result": "agree"}


class RecordingSink:
    """Stands in for Airflow's DB (tests with the DB are in test_callback_events.py)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fail = False

    def emit(self, event_type: str, event: dict[str, Any]) -> int:
        if self.fail:
            raise SinkUnavailable("db down")
        self.events.append((event_type, event))
        return 1


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def receiver(sink: RecordingSink, tmp_path: Path) -> Iterator[str]:
    app = create_receiver_app(
        config=CONFIG, sink=sink, dedup=DedupStore(tmp_path / "seen.db"), max_body_bytes=4096
    )
    with ThreadedServer(app, name="receiver") as server:
        yield server.url + "/dingtalk/events"


def sealed(
    event: dict[str, Any],
    *,
    key: str = AES_KEY,
    token: str = TOKEN,
    receiver_id: str = CORP,
    timestamp: str | None = None,
    new_spelling: bool = True,
) -> tuple[dict[str, str], dict[str, str]]:
    box = DingTalkCrypto(token=token, aes_key=key, receiver_id=receiver_id)
    s = box.encrypt(json.dumps(event), timestamp=timestamp)
    if new_spelling:
        query = {"msg_signature": s["msg_signature"], "timeStamp": s["timeStamp"], "nonce": s["nonce"]}
    else:
        query = {"signature": s["msg_signature"], "timestamp": s["timeStamp"], "nonce": s["nonce"]}
    return query, {"encrypt": s["encrypt"]}


def post(url: str, query: dict[str, str], body: Any) -> requests.Response:
    return requests.post(url, params=query, json=body, timeout=5)


@pytest.mark.parametrize("new_spelling", [True, False])
def test_check_url_is_answered_with_encrypted_success(
    receiver: str, sink: RecordingSink, new_spelling: bool
) -> None:
    resp = post(receiver, *sealed({"EventType": "check_url"}, new_spelling=new_spelling))
    assert resp.status_code == 200
    reply = resp.json()
    box = DingTalkCrypto(token=TOKEN, aes_key=AES_KEY, receiver_id=CORP)
    assert (
        box.open(
            signature=reply["msg_signature"],
            timestamp=reply["timeStamp"],
            nonce=reply["nonce"],
            encrypt=reply["encrypt"],
        )
        == "success"
    )
    assert sink.events == []  # the handshake is not an event


def test_event_reaches_the_sink_once_even_when_redelivered(receiver: str, sink: RecordingSink) -> None:
    for _ in range(3):  # DingTalk re-encrypts each retry: different nonce and ciphertext, same event
        assert post(receiver, *sealed(EVENT)).status_code == 200
    assert sink.events == [("bpms_instance_change", EVENT)]


def test_handled_events_survive_a_restart(sink: RecordingSink, tmp_path: Path) -> None:
    for _ in range(2):  # two receiver lifetimes sharing one store file
        app = create_receiver_app(config=CONFIG, sink=sink, dedup=DedupStore(tmp_path / "seen.db"))
        with ThreadedServer(app) as server:
            assert post(server.url + "/dingtalk/events", *sealed(EVENT)).status_code == 200
    assert len(sink.events) == 1


def test_dedup_store_is_bounded(tmp_path: Path) -> None:
    store = DedupStore(tmp_path / "seen.db", max_entries=3, clock=iter(range(100)).__next__)
    for k in "abcd":
        assert store.claim(k) is Claim.NEW
        store.finish(k)
    assert store.claim("a") is Claim.NEW  # oldest evicted
    assert store.claim("d") is Claim.DONE


@pytest.mark.parametrize("in_file", [True, False], ids=["sqlite", "memory"])
def test_a_pending_claim_is_taken_over_after_its_lease(tmp_path: Path, in_file: bool) -> None:
    now = [0.0]
    store = DedupStore(tmp_path / "seen.db" if in_file else None, lease=300, clock=lambda: now[0])
    assert store.claim("k") is Claim.NEW
    assert store.claim("k") is Claim.PENDING  # the first delivery is still writing
    now[0] = 301.0  # ... or its process died: the event must not be blocked for ever
    assert store.claim("k") is Claim.NEW
    store.release("k")
    assert store.claim("k") is Claim.NEW
    store.finish("k")
    store.release("k")  # a late release of a finished event changes nothing
    assert store.claim("k") is Claim.DONE


def test_sink_failure_is_503_and_the_retry_goes_through(receiver: str, sink: RecordingSink) -> None:
    sink.fail = True
    assert post(receiver, *sealed(EVENT)).status_code == 503
    sink.fail = False
    assert post(receiver, *sealed(EVENT)).status_code == 200
    assert len(sink.events) == 1


def tamper(value: str) -> str:
    return value[:-5] + ("A" if value[-5] != "A" else "B") + value[-4:]


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("tampered_ciphertext", 403),
        ("tampered_signature", 403),
        ("stale", 403),
        ("wrong_key", 403),
        ("wrong_token", 403),
        ("wrong_receiver", 403),
        ("missing_query", 400),
        ("not_json", 400),
        ("no_encrypt", 400),
    ],
)
def test_bad_requests_are_refused_with_4xx(
    receiver: str, sink: RecordingSink, case: str, status: int
) -> None:
    query, body = sealed(EVENT)
    if case == "tampered_ciphertext":
        body["encrypt"] = tamper(body["encrypt"])
    elif case == "tampered_signature":
        query["msg_signature"] = tamper(query["msg_signature"])
    elif case == "stale":
        query, body = sealed(EVENT, timestamp=str(int((time.time() - 600) * 1000)))
    elif case == "wrong_key":
        query, body = sealed(EVENT, key="Z" * 43)
    elif case == "wrong_token":
        query, body = sealed(EVENT, token="other")
    elif case == "wrong_receiver":
        query, body = sealed(EVENT, receiver_id="dingothercorp")
    elif case == "missing_query":
        del query["nonce"]
    if case == "not_json":
        resp = requests.post(receiver, params=query, data=b"encrypt=abc", timeout=5)
    elif case == "no_encrypt":
        resp = post(receiver, query, {"data": body["encrypt"]})
    else:
        resp = post(receiver, query, body)
    assert resp.status_code == status
    assert sink.events == []


def test_oversized_body_is_413(receiver: str, sink: RecordingSink) -> None:
    query, body = sealed(EVENT)
    assert post(receiver, query, {"encrypt": body["encrypt"], "pad": "x" * 5000}).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        yield b'{"encrypt": "'
        for _ in range(10):
            yield b"A" * 1000
        yield b'"}'

    assert requests.post(receiver, params=query, data=chunks(), timeout=5).status_code == 413
    assert sink.events == []


def test_unconfigured_receiver_answers_503(sink: RecordingSink) -> None:
    def missing() -> CallbackConfig:
        raise LookupError("no connection")

    with ThreadedServer(create_receiver_app(config=missing, sink=sink)) as server:
        assert post(server.url + "/dingtalk/events", *sealed(EVENT)).status_code == 503


@pytest.mark.parametrize(
    "extra",
    [
        [("msg_signature", "0" * 40)],  # a second signature, last wins
        [("nonce", "other")],
        [("timeStamp", "1")],
        [("signature", "0" * 40)],  # the other spelling, with another value
    ],
)
def test_a_query_parameter_given_twice_is_refused_with_400(
    receiver: str, sink: RecordingSink, extra: list[tuple[str, str]]
) -> None:
    query, body = sealed(EVENT)
    name = extra[0][0]
    # The real value last: a receiver taking the last value would accept the event.
    pairs = [*extra, *query.items()]
    resp = requests.post(receiver, params=pairs, json=body, timeout=5)
    assert resp.status_code == 400
    assert name in resp.json()["error"] or name.lower() in resp.json()["error"].lower()
    assert sink.events == []


def test_both_spellings_with_the_same_values_are_accepted(receiver: str, sink: RecordingSink) -> None:
    query, body = sealed(EVENT)
    pairs = [*query.items(), ("signature", query["msg_signature"]), ("timestamp", query["timeStamp"])]
    assert requests.post(receiver, params=pairs, json=body, timeout=5).status_code == 200
    assert len(sink.events) == 1


def test_a_body_that_arrives_too_slowly_is_answered_408(sink: RecordingSink) -> None:
    import socket
    from urllib.parse import urlencode, urlsplit

    app = create_receiver_app(config=CONFIG, sink=sink, body_timeout=0.5)
    query, body = sealed(EVENT)
    payload = json.dumps(body).encode()
    with ThreadedServer(app) as server:
        where = urlsplit(server.url)
        with socket.create_connection((where.hostname, where.port), timeout=5) as conn:
            conn.sendall(
                f"POST /dingtalk/events?{urlencode(query)} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                + payload[:10]  # and then nothing: a slow (or malicious) client
            )
            started = time.monotonic()
            answer = conn.recv(4096)
            waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert 0.4 < waited < 3
    assert sink.events == []


def test_max_skew_zero_in_the_connection_is_kept() -> None:
    from airflow.models.connection import Connection

    conn = Connection(
        conn_id="cb", conn_type="dingtalkcallback", login=CORP, password=AES_KEY,
        extra=json.dumps({"token": TOKEN, "max_skew": 0}),
    )  # fmt: skip
    assert CallbackConfig.from_connection(conn).max_skew == 0


class RotatingConfig:
    """The connection as a secrets backend holds it: rotated by an admin, each read counted."""

    def __init__(self, key: str, token: str) -> None:
        self.key, self.token, self.reads = key, token, 0

    def __call__(self) -> CallbackConfig:
        self.reads += 1
        return CallbackConfig(receiver_id=CORP, token=Secret(self.token), aes_key=Secret(self.key), url=None)


NEW_KEY, NEW_TOKEN = "Z" * 43, "rotated-token"


def test_a_rotated_token_and_aes_key_are_picked_up_without_a_restart(sink: RecordingSink) -> None:
    config = RotatingConfig(AES_KEY, TOKEN)
    with ThreadedServer(create_receiver_app(config=config, sink=sink)) as server:
        url = server.url + "/dingtalk/events"
        assert post(url, *sealed(EVENT)).status_code == 200
        config.key, config.token = NEW_KEY, NEW_TOKEN  # rotated, and DingTalk now signs with the new ones
        time.sleep(1.1)
        assert post(url, *sealed({**EVENT, "n": 2}, key=NEW_KEY, token=NEW_TOKEN)).status_code == 200
    assert len(sink.events) == 2


def test_refused_requests_do_not_re_read_the_connection_each_time(sink: RecordingSink) -> None:
    config = RotatingConfig(AES_KEY, TOKEN)
    with ThreadedServer(create_receiver_app(config=config, sink=sink)) as server:
        url = server.url + "/dingtalk/events"
        for _ in range(30):  # forged: another token
            assert post(url, *sealed(EVENT, token="forged")).status_code == 403
    assert config.reads <= 2


def test_the_connection_is_re_read_after_its_ttl(sink: RecordingSink) -> None:
    now = [1000.0]
    config = RotatingConfig(AES_KEY, TOKEN)
    app = create_receiver_app(config=config, sink=sink, config_ttl=60, monotonic=lambda: now[0])
    with ThreadedServer(app) as server:
        url = server.url + "/dingtalk/events"
        for _ in range(5):
            assert post(url, *sealed(EVENT)).status_code == 200
        assert config.reads == 1
        now[0] += 61
        assert post(url, *sealed(EVENT)).status_code == 200
        assert config.reads == 2


def test_a_failed_re_read_keeps_the_last_good_settings(sink: RecordingSink) -> None:
    now = [1000.0]
    config = RotatingConfig(AES_KEY, TOKEN)
    app = create_receiver_app(config=config, sink=sink, config_ttl=60, monotonic=lambda: now[0])
    with ThreadedServer(app) as server:
        url = server.url + "/dingtalk/events"
        assert post(url, *sealed(EVENT)).status_code == 200
        config.key = "short"  # an admin's typo: the connection no longer validates
        now[0] += 61
        assert post(url, *sealed({**EVENT, "n": 2})).status_code == 200
    assert len(sink.events) == 2

"""Fuzzing the event receiver and DingTalkCrypto in CI: a short run of ``benchmarks/fuzz_receiver.py``
(the long run is ≥100,000 requests; raw ASGI calls and real HTTP, checked against a reference) plus
hypothesis properties of the crypto on hostile input. The round trip is in ``tests/test_crypto.py``.

Set ``DINGTALK_FUZZ_SEED`` to replay a failing run; the seed is in every failure message.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import random
import struct
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_dingtalk.exceptions import DingTalkCryptoError


def _load_fuzzer() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_receiver.py"
    spec = importlib.util.spec_from_file_location("fuzz_receiver", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_receiver", module)  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzzer()
SEED = int(os.environ.get("DINGTALK_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
REQUESTS = 3_000
GEN = fuzz.Generator(12345)  # the real secrets for the property tests
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_short_fuzz_run_finds_no_5xx_exception_forgery_or_refused_legit_event() -> None:
    started = time.perf_counter()
    tally = fuzz.run(REQUESTS, http_share=0.05, seed=SEED, crypto_calls=1_000)
    seconds = time.perf_counter() - started
    summary = f"seed {SEED}:\n" + fuzz.report(tally, seconds)
    assert tally.requests == REQUESTS, summary
    assert tally.server_errors == 0, summary
    assert tally.unhandled_exceptions == 0, summary
    assert tally.forged_accepted == 0, summary
    assert tally.legit_refused == 0, summary
    assert tally.unexpected_status == 0, summary
    assert tally.secrets_in_responses == 0, summary
    assert tally.crypto_failures == 0, summary
    # The run really exercised what it claims: every case kind, both transports, every outcome.
    assert set(tally.kinds) == {kind for kind, _ in fuzz.KINDS}, summary
    assert tally.over_http > 50, summary
    assert {200, 400, 403, 413} <= set(tally.statuses), summary
    assert tally.legit_sent > REQUESTS // 10 and tally.events_accepted >= tally.legit_sent, summary
    assert seconds < 30, summary


# -- DingTalkCrypto on hostile input -------------------------------------------------------------------


@SETTINGS
@given(
    data=st.data(),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_mutated_ciphertext_decrypts_as_the_reference_says_or_raises_crypto_error(
    data: st.DataObject, flips: list[tuple[int, int]], cut: int | None
) -> None:
    event = {"EventType": "user_add_org", "UserId": data.draw(st.lists(st.text(max_size=10), max_size=4))}
    raw = bytearray(base64.b64decode(GEN.seal(event)["encrypt"]))
    for position, bit in flips:
        raw[position % len(raw)] ^= 1 << bit
    if cut is not None:
        raw = raw[: cut % (len(raw) + 1)]
    encrypt = base64.b64encode(raw).decode()
    expected = fuzz.reference_event(GEN.key, GEN.receiver_id.encode(), encrypt)
    try:
        got = json.loads(GEN.box.decrypt(encrypt))
    except DingTalkCryptoError as exc:
        assert expected is None
        assert GEN.token not in str(exc) and GEN.aes_key not in str(exc)
        return
    except ValueError:
        got = None  # decrypted to text that is not JSON: refused later by the receiver
    assert expected is None or got == expected


@SETTINGS
@given(
    length=st.integers(0, 2**32 - 1),
    message=st.binary(max_size=200),
    receiver=st.binary(max_size=40),
)
def test_forged_length_fields_and_receiver_ids_are_refused_unless_exact(
    length: int, message: bytes, receiver: bytes
) -> None:
    plain = b"R" * 16 + struct.pack(">I", length) + message + receiver
    encrypt = GEN.raw_encrypt(plain)
    exact = length == len(message) and receiver == GEN.receiver_id.encode()
    try:
        got = GEN.box.decrypt(encrypt)
    except DingTalkCryptoError as exc:
        assert exc.code in (900008, 900009, 900010)
        assert not exact or exc.code == 900008  # exact but not UTF-8
        return
    assert exact and got == message.decode("utf-8")


@SETTINGS
@given(args=st.lists(st.text(max_size=60), min_size=4, max_size=4))
def test_verify_of_arbitrary_text_raises_only_crypto_errors(args: list[str]) -> None:
    signature, timestamp, nonce, encrypt = args
    with pytest.raises(DingTalkCryptoError):
        GEN.box.open(signature=signature, timestamp=timestamp, nonce=nonce, encrypt=encrypt)

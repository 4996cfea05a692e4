"""DingTalk callback crypto: published vectors, tampering, hostile input and secret hygiene."""

from __future__ import annotations

import base64
import string
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from Crypto.Cipher import AES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_dingtalk.crypto import DingTalkCrypto, new_nonce, validate_aes_key
from airflow_provider_dingtalk.exceptions import DingTalkCryptoError, DingTalkValidationError

# C1 / C2: DingTalk's official callback-crypto demos (github.com/open-dingtalk/DingTalk-Callback-Crypto),
# C1 the Python demo's check_url event, C2 the Go / C# demos' encrypted "success" reply.
C1 = {
    "token": "mryue",
    "aes_key": "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
    "receiver_id": "ding6ccabc44d2c8d38b",
    "timestamp": "1608001896814",
    "nonce": "WL4PK6yA",
    "encrypt": "0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYxxOK"
    "+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3",
    "msg_signature": "03044561471240d4a14bb09372dfcfd4fd0e40cb",
    "plaintext": '{"EventType":"check_url"}',
    "random16": "l7Y3EcX2CU5w8av3",
}
C2 = {
    "token": "tokenxxxx",
    "aes_key": "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus",
    "receiver_id": "dingxxxxxx",
    "timestamp": "1605695694141",
    "nonce": "WelUQl6bCqcBa2fM",
    "encrypt": "X1VSe9cTJUMZu60d3kyLYTrBq5578ZRJtteU94wG0Q4Uk6E/wQYeJRIC0/UFW5Wkya1Ihz9oXAdLlyC9TRaqsQ==",
    "msg_signature": "f36f4ba5337d426c7d4bca0dbcb06b3ddc1388fc",
    "plaintext": "success",
    "random16": "WelUQl6bCqcBa2fM",
}
VECTORS = pytest.mark.parametrize("v", [C1, C2], ids=["C1", "C2"])

# Distinctive secrets for the leak tests: any occurrence in a message is a real leak, not a coincidence.
SECRET_TOKEN = "tok3nS3cretZ9qv"
SECRET_KEY = "Qw8ZrT5yUi0pAs2dFg4hJk6lZx1cVb3nMq7wEr9tYu5"


def at(ts_ms: str, offset: float = 0.0) -> Callable[[], float]:
    """A clock frozen ``offset`` seconds after a millisecond timestamp."""
    return lambda: int(ts_ms) / 1000 + offset


def crypto_for(v: dict[str, str], **overrides: object) -> DingTalkCrypto:
    kwargs: dict[str, object] = {
        "token": v["token"],
        "aes_key": v["aes_key"],
        "receiver_id": v["receiver_id"],
        "clock": at(v["timestamp"]),
    }
    kwargs.update(overrides)
    return DingTalkCrypto(**kwargs)  # type: ignore[arg-type]


# An independent sealer/opener written straight from the spec, used to forge plaintexts the module would
# never produce. test_oracle_matches_vectors proves it agrees with DingTalk.
def _aes(aes_key: str) -> Any:
    key = base64.b64decode(aes_key + "=")
    return AES.new(key, AES.MODE_CBC, iv=key[:16])


def seal(aes_key: str, raw: bytes, *, block: int | None = 32) -> str:
    if block is not None:
        n = block - len(raw) % block
        raw += bytes([n]) * n
    return base64.b64encode(_aes(aes_key).encrypt(raw)).decode()


def unseal(aes_key: str, encrypt: str) -> bytes:
    return bytes(_aes(aes_key).decrypt(base64.b64decode(encrypt)))


def raw_plaintext(
    msg: bytes, receiver: str, *, random16: bytes = b"A" * 16, length: int | None = None
) -> bytes:
    return random16 + struct.pack(">I", len(msg) if length is None else length) + msg + receiver.encode()


def flip(encrypt: str, index: int, mask: int) -> str:
    data = bytearray(base64.b64decode(encrypt))
    data[index] ^= mask
    return base64.b64encode(bytes(data)).decode()


def code_of(call: Callable[..., object], *args: object, **kwargs: object) -> int:
    """The DingTalk code of the DingTalkCryptoError that ``call(*args, **kwargs)`` must raise."""
    with pytest.raises(DingTalkCryptoError) as info:
        call(*args, **kwargs)
    return info.value.code


# --- known answers -------------------------------------------------------------------------------


@VECTORS
def test_vector_decrypts_to_published_plaintext(v: dict[str, str]) -> None:
    assert crypto_for(v).decrypt(v["encrypt"]) == v["plaintext"]


@VECTORS
def test_vector_open_verifies_signature_and_decrypts(v: dict[str, str]) -> None:
    c = crypto_for(v)
    got = c.open(
        signature=v["msg_signature"], timestamp=v["timestamp"], nonce=v["nonce"], encrypt=v["encrypt"]
    )
    assert got == v["plaintext"]
    assert c.signature(v["timestamp"], v["nonce"], v["encrypt"]) == v["msg_signature"]


@VECTORS
def test_vector_reencrypts_byte_for_byte(v: dict[str, str]) -> None:
    out = crypto_for(v).encrypt(
        v["plaintext"], timestamp=v["timestamp"], nonce=v["nonce"], random16=v["random16"]
    )
    assert out == {
        "msg_signature": v["msg_signature"],
        "timeStamp": v["timestamp"],
        "nonce": v["nonce"],
        "encrypt": v["encrypt"],
    }


def test_oracle_matches_vectors() -> None:
    raw = raw_plaintext(C1["plaintext"].encode(), C1["receiver_id"], random16=C1["random16"].encode())
    assert seal(C1["aes_key"], raw) == C1["encrypt"]
    assert unseal(C1["aes_key"], C1["encrypt"])[-1] == 31  # the vector's documented pad byte


# --- round trips and output shape -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "success", "钉钉回调：审批通过 ✅", "x" * 1000, '{"EventType":"check_url"}']
)
def test_round_trip(text: str) -> None:
    c = crypto_for(C1)
    out = c.encrypt(text)
    assert (
        c.open(
            signature=out["msg_signature"],
            timestamp=out["timeStamp"],
            nonce=out["nonce"],
            encrypt=out["encrypt"],
        )
        == text
    )
    # Length field counts UTF-8 bytes and padding is to 32, exactly as DingTalk does it.
    raw = unseal(C1["aes_key"], out["encrypt"])
    assert struct.unpack(">I", raw[16:20])[0] == len(text.encode())
    assert len(raw) % 32 == 0
    assert "\n" not in out["encrypt"]


def test_encrypt_defaults_are_fresh_random_and_use_millisecond_clock() -> None:
    c = crypto_for(C1, clock=lambda: 1700000000.5)
    a, b = c.encrypt("success"), c.encrypt("success")
    assert a["timeStamp"] == "1700000000500"
    assert a["nonce"] != b["nonce"] and a["encrypt"] != b["encrypt"]
    for out in (a, b):
        assert len(out["nonce"]) == 16 and set(out["nonce"]) <= set(string.ascii_letters + string.digits)
        random16 = unseal(C1["aes_key"], out["encrypt"])[:16].decode()
        assert set(random16) <= set(string.ascii_letters + string.digits)
    assert unseal(C1["aes_key"], a["encrypt"])[:16] != unseal(C1["aes_key"], b["encrypt"])[:16]


def test_decrypt_accepts_16_byte_padding_from_other_senders() -> None:
    # Some public ports pad to 16; DingTalk reads only the last byte, so must we.
    raw = raw_plaintext(b"hello", C1["receiver_id"])  # 45 bytes: pad 3 at block 16, 19 at block 32
    assert crypto_for(C1).decrypt(seal(C1["aes_key"], raw, block=16)) == "hello"


def test_new_nonce() -> None:
    assert len(new_nonce()) == 16 and len(new_nonce(8)) == 8
    assert new_nonce().isalnum() and new_nonce().isascii()
    with pytest.raises(DingTalkValidationError):
        new_nonce(0)


# --- tampering ----------------------------------------------------------------------------------
# C1's plaintext is random[0:16] len[16:20] msg[20:45] receiver[45:65] pad[65:96] (pad byte 31).
# In CBC, flipping ciphertext byte i flips plaintext byte i+16 exactly and garbles block i // 16.


def test_open_rejects_any_changed_byte_of_encrypt() -> None:
    c = crypto_for(C1)
    for index in range(96):
        code = code_of(
            c.open,
            signature=C1["msg_signature"],
            timestamp=C1["timestamp"],
            nonce=C1["nonce"],
            encrypt=flip(C1["encrypt"], index, 0x01),
        )
        assert code == 900005, index


@pytest.mark.parametrize("field", ["timestamp", "nonce"])
def test_open_rejects_changed_timestamp_or_nonce(field: str) -> None:
    args = {
        "signature": C1["msg_signature"],
        "timestamp": C1["timestamp"],
        "nonce": C1["nonce"],
        "encrypt": C1["encrypt"],
    }
    args[field] = args[field][:-1] + ("1" if args[field][-1] != "1" else "2")
    assert code_of(lambda: crypto_for(C1, max_skew=10**9).open(**args)) == 900005


@pytest.mark.parametrize(
    "sig", [C1["msg_signature"].upper(), C1["msg_signature"][:-1], "", "é" * 40, "\ud800"]
)
def test_verify_wrong_signature_shapes_are_mismatches(sig: str) -> None:
    assert code_of(lambda: crypto_for(C1).verify(sig, C1["timestamp"], C1["nonce"], C1["encrypt"])) == 900005


def test_tampered_random_prefix_still_decrypts_but_open_refuses() -> None:
    # random16 is not authenticated by the cipher: only the signature protects it.
    raw = raw_plaintext(C1["plaintext"].encode(), C1["receiver_id"], random16=b"Z" * 16)
    forged = seal(C1["aes_key"], raw)
    c = crypto_for(C1)
    assert c.decrypt(forged) == C1["plaintext"]
    assert (
        code_of(
            lambda: c.open(
                signature=C1["msg_signature"], timestamp=C1["timestamp"], nonce=C1["nonce"], encrypt=forged
            )
        )
        == 900005
    )


@pytest.mark.parametrize(
    ("index", "mask", "code"),
    [
        (0, 0x80, 900009),  # length field's high byte: length ~2**31
        (3, 0x40, 900009),  # length 25 -> 89, past the end of the buffer
        (3, 0x01, 900010),  # length 25 -> 24: one msg byte counted as receiver id
        (4, 0x80, 900008),  # msg byte 0 '{' -> 0xFB: not UTF-8
        (32, 0x01, 900010),  # receiver id byte 3
        (47, 0x20, 900010),  # receiver id's last bytes / garbled msg tail
        (79, 0x01, 900008),  # padding: last byte 31 -> 30
        (79, 0x40, 900008),  # padding: last byte 31 -> 95 (> 32)
        (64, 0x01, 900008),  # padding: one pad byte differs
    ],
)
def test_decrypt_tampered_regions(index: int, mask: int, code: int) -> None:
    assert code_of(lambda: crypto_for(C1).decrypt(flip(C1["encrypt"], index, mask))) == code


def test_decrypt_bitflip_inside_msg_is_malleable_so_open_is_required() -> None:
    tampered = flip(C1["encrypt"], 6, 0x01)  # msg byte 2: 'E' -> 'D'
    c = crypto_for(C1)
    assert c.decrypt(tampered) == '{"DventType":"check_url"}'
    assert (
        code_of(
            lambda: c.open(
                signature=C1["msg_signature"], timestamp=C1["timestamp"], nonce=C1["nonce"], encrypt=tampered
            )
        )
        == 900005
    )


@pytest.mark.parametrize(
    ("pad_tail", "why"),
    [
        (b"\x00", "pad byte 0"),
        (bytes([33]) * 33, "pad byte 33 > block size 32"),
        (bytes([4, 4, 3, 4]), "pad bytes differ"),
    ],
)
def test_decrypt_rejects_bad_padding(pad_tail: bytes, why: str) -> None:
    raw = raw_plaintext(b"hi", C1["receiver_id"])  # 38 bytes
    raw += b"\x00" * (-(len(raw) + len(pad_tail)) % 16) + pad_tail
    assert code_of(lambda: crypto_for(C1).decrypt(seal(C1["aes_key"], raw, block=None))) == 900008, why


def test_decrypt_pad_longer_than_buffer() -> None:
    assert (
        code_of(lambda: crypto_for(C1).decrypt(seal(C1["aes_key"], bytes([32]) * 16, block=None))) == 900008
    )


def test_decrypt_rejects_invalid_utf8_message() -> None:
    raw = raw_plaintext(b"\xff\xfe ok", C1["receiver_id"])
    assert code_of(lambda: crypto_for(C1).decrypt(seal(C1["aes_key"], raw))) == 900008


def test_decrypt_buffer_shorter_than_header() -> None:
    assert code_of(lambda: crypto_for(C1).decrypt(seal(C1["aes_key"], b"short"))) == 900008


@pytest.mark.parametrize(
    ("delta", "code"),
    [(0, None), (-1, 900010), (20, 900010), (21, 900009), (10**6, 900009)],
)
def test_length_field_against_buffer(delta: int, code: int | None) -> None:
    msg = b"payload"
    raw = raw_plaintext(msg, C1["receiver_id"], length=len(msg) + delta)
    c = crypto_for(C1)
    if code is None:
        assert c.decrypt(seal(C1["aes_key"], raw)) == "payload"
    else:
        assert code_of(lambda: c.decrypt(seal(C1["aes_key"], raw))) == code


def test_huge_length_field_fails_cleanly_without_allocating() -> None:
    raw = raw_plaintext(b'{"EventType":"check_url"}', C1["receiver_id"], length=0xFFFFFFFF)
    forged = seal(C1["aes_key"], raw)
    tracemalloc.start()
    try:
        with pytest.raises(DingTalkCryptoError) as info:
            crypto_for(C1).decrypt(forged)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == 900009
    assert "4294967295" in str(info.value)
    assert peak < 1_000_000


def test_truncated_ciphertexts() -> None:
    c = crypto_for(C1)
    data = base64.b64decode(C1["encrypt"])
    for n in range(len(data)):
        truncated = base64.b64encode(data[:n]).decode()
        assert code_of(c.decrypt, truncated) == 900008, n
    for n in range(len(C1["encrypt"])):
        assert code_of(c.decrypt, C1["encrypt"][:n]) == 900008, n


@pytest.mark.parametrize("bad", ["not base64!", "AAAA AAAA", "AAA", "é" * 24, C1["encrypt"] + "\n", "\ud800"])
def test_decrypt_rejects_non_base64(bad: str) -> None:
    assert code_of(lambda: crypto_for(C1).decrypt(bad)) == 900008


def test_wrong_key_fails_with_a_crypto_error() -> None:
    codes = set()
    for i in range(20):
        key = (string.ascii_letters + string.digits)[i : i + 43].ljust(43, "k")
        c = DingTalkCrypto(token="t", aes_key=key, receiver_id=C1["receiver_id"])
        with pytest.raises(DingTalkCryptoError) as info:
            c.decrypt(C1["encrypt"])
        codes.add(info.value.code)
    assert codes <= {900008, 900009, 900010}
    assert 900008 in codes  # almost every wrong key breaks the padding first


def test_wrong_receiver_names_the_receiver_found() -> None:
    with pytest.raises(DingTalkCryptoError) as info:
        crypto_for(C1, receiver_id="dingOTHERAPPKEY").decrypt(C1["encrypt"])
    assert info.value.code == 900010
    assert C1["receiver_id"] in str(info.value)
    for near in (C1["receiver_id"][:-1], C1["receiver_id"] + "x", C1["receiver_id"].upper()):
        assert code_of(crypto_for(C1, receiver_id=near).decrypt, C1["encrypt"]) == 900010


# --- timestamps and nonces ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "ok"), [(0, True), (299, True), (-299, True), (301, False), (-301, False)]
)
def test_stale_timestamp_with_injected_clock(offset: float, ok: bool) -> None:
    c = crypto_for(C1, clock=at(C1["timestamp"], offset))
    args = {
        "signature": C1["msg_signature"],
        "timestamp": C1["timestamp"],
        "nonce": C1["nonce"],
        "encrypt": C1["encrypt"],
    }
    if ok:
        assert c.open(**args) == C1["plaintext"]
    else:
        assert code_of(lambda: c.open(**args)) == 900002
        c.verify(args["signature"], args["timestamp"], args["nonce"], args["encrypt"], check_time=False)


def test_max_skew_is_configurable() -> None:
    c = crypto_for(C1, clock=at(C1["timestamp"], 60), max_skew=30)
    assert (
        code_of(lambda: c.verify(C1["msg_signature"], C1["timestamp"], C1["nonce"], C1["encrypt"])) == 900002
    )


@pytest.mark.parametrize(
    ("timestamp", "now"), [("1700000000", 1700000000.0), ("1700000000123", 1700000000.0)]
)
def test_seconds_and_millisecond_timestamps(timestamp: str, now: float) -> None:
    out = crypto_for(C1).encrypt("success", timestamp=timestamp, nonce="abc")
    assert out["timeStamp"] == timestamp
    fresh = crypto_for(C1, clock=lambda: now + 100)
    assert (
        fresh.open(signature=out["msg_signature"], timestamp=timestamp, nonce="abc", encrypt=out["encrypt"])
        == "success"
    )
    # A 10-digit value read as milliseconds (or the reverse) would be decades off: check units are right.
    stale = crypto_for(C1, clock=lambda: now + 400)
    assert code_of(lambda: stale.verify(out["msg_signature"], timestamp, "abc", out["encrypt"])) == 900002


@pytest.mark.parametrize(
    "timestamp",
    ["", "abc", "16080018968", "160800189681", "16080018968140", "1608001896814\n", "１６０８００１８９６"],
)
def test_malformed_timestamps(timestamp: str) -> None:
    c = crypto_for(C1)
    assert code_of(lambda: c.verify(C1["msg_signature"], timestamp, C1["nonce"], C1["encrypt"])) == 900002
    assert code_of(lambda: c.encrypt("x", timestamp=timestamp)) == 900002


def test_bad_nonce_and_random16() -> None:
    c = crypto_for(C1)
    assert code_of(lambda: c.verify(C1["msg_signature"], C1["timestamp"], "", C1["encrypt"])) == 900003
    assert code_of(lambda: c.encrypt("x", nonce="")) == 900003
    for random16 in ("short", "A" * 17, "AAAAAAAAAAAAAAA!", "é" * 16):
        assert code_of(c.encrypt, "x", random16=random16) == 900003


def test_encrypt_rejects_unencodable_text() -> None:
    assert code_of(lambda: crypto_for(C1).encrypt("lone \ud800 surrogate")) == 900001


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "size"),
    [(SECRET_KEY[:42], 42), (SECRET_KEY + "=", 44), (SECRET_KEY + "A", 44), ("", 0)],
)
def test_validate_aes_key_length(key: str, size: int) -> None:
    with pytest.raises(DingTalkValidationError) as info:
        validate_aes_key(key, field="extra.aes_key")
    assert info.value.field == "extra.aes_key"
    assert info.value.size == size and info.value.limit == 43
    assert SECRET_KEY[:20] not in str(info.value)


@pytest.mark.parametrize("bad_char", ["+", "/", "=", "-", "é", " "])
def test_validate_aes_key_alphabet(bad_char: str) -> None:
    key = SECRET_KEY[:10] + bad_char + SECRET_KEY[11:]
    with pytest.raises(DingTalkValidationError) as info:
        validate_aes_key(key)
    assert info.value.field == "aes_key"
    assert "position 10" in str(info.value)
    assert SECRET_KEY[:10] not in str(info.value)


def test_validate_aes_key_accepts_nonzero_trailing_bits() -> None:
    validate_aes_key(C1["aes_key"])  # ends in '7': non-zero trailing bits, as most real keys do
    assert crypto_for(C1).decrypt(C1["encrypt"]) == C1["plaintext"]


def test_constructor_rejects_bad_aes_key_with_900004() -> None:
    with pytest.raises(DingTalkCryptoError) as info:
        DingTalkCrypto(token=SECRET_TOKEN, aes_key=SECRET_KEY[:42], receiver_id="ding1")
    assert info.value.code == 900004
    assert SECRET_KEY[:42] not in str(info.value) and SECRET_TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"token": ""}, "token"),
        ({"receiver_id": ""}, "receiver_id"),
        ({"max_skew": -1}, "max_skew"),
        ({"max_skew": float("nan")}, "max_skew"),
    ],
)
def test_constructor_rejects_unusable_settings(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(DingTalkValidationError) as info:
        crypto_for(C1, **kwargs)
    assert info.value.field == field


def test_importing_the_module_does_not_import_pycryptodome() -> None:
    code = "import sys, airflow_provider_dingtalk.crypto; sys.exit('Crypto' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- secret hygiene -----------------------------------------------------------------------------


def test_no_secret_in_repr_or_any_error() -> None:
    c = DingTalkCrypto(token=SECRET_TOKEN, aes_key=SECRET_KEY, receiver_id="dingAPPKEY", clock=lambda: 1.0e9)
    good = c.encrypt("success", timestamp="1000000000000", nonce="n0nce")
    failures: list[Callable[[], object]] = [
        lambda: DingTalkCrypto(token=SECRET_TOKEN, aes_key=SECRET_KEY + "x", receiver_id="r"),
        lambda: DingTalkCrypto(token=SECRET_TOKEN, aes_key=SECRET_KEY[:-1] + "+", receiver_id="r"),
        lambda: c.decrypt("!!!"),
        lambda: c.decrypt(C1["encrypt"]),
        lambda: c.decrypt(flip(good["encrypt"], 0, 0x80)),
        lambda: DingTalkCrypto(token=SECRET_TOKEN, aes_key=SECRET_KEY, receiver_id="other").decrypt(
            good["encrypt"]
        ),
        lambda: c.verify("0" * 40, good["timeStamp"], good["nonce"], good["encrypt"]),
        lambda: c.verify(good["msg_signature"], "1", good["nonce"], good["encrypt"]),
        lambda: c.verify(good["msg_signature"], good["timeStamp"], "", good["encrypt"]),
        lambda: DingTalkCrypto(token=SECRET_TOKEN, aes_key=SECRET_KEY, receiver_id="dingAPPKEY").open(
            signature=good["msg_signature"],
            timestamp=good["timeStamp"],
            nonce=good["nonce"],
            encrypt=good["encrypt"],
        ),
        lambda: c.encrypt("x", random16="bad"),
        lambda: c.encrypt("\ud800"),
        lambda: validate_aes_key(SECRET_KEY[:-1]),
    ]
    texts = [repr(c), str(c)]
    for fail in failures:
        with pytest.raises((DingTalkCryptoError, DingTalkValidationError)) as info:
            fail()
        texts += [str(info.value), repr(info.value)]
    assert len(texts) == 2 + 2 * len(failures)
    for text in texts:
        assert SECRET_TOKEN not in text, text
        assert SECRET_KEY not in text and SECRET_KEY[:12] not in text, text
    assert repr(c) == "DingTalkCrypto(receiver_id='dingAPPKEY', max_skew=300.0)"


# --- properties ---------------------------------------------------------------------------------
# Hostile ciphertexts and forged plaintexts are properties in tests/hardening/test_fuzz_receiver.py,
# checked there against an independent reference decryption.

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_c1 = crypto_for(C1)


@FAST
@given(text=st.text(), nonce=st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=32))
def test_property_round_trip(text: str, nonce: str) -> None:
    out = _c1.encrypt(text, nonce=nonce, timestamp=C1["timestamp"])
    assert (
        _c1.open(
            signature=out["msg_signature"],
            timestamp=out["timeStamp"],
            nonce=out["nonce"],
            encrypt=out["encrypt"],
        )
        == text
    )

"""DingTalk event-callback crypto: the exact documented scheme, hardened against hostile input.

The scheme (DingTalk's "加解密方案说明", the callback encryption page, and its official demos at
github.com/open-dingtalk/DingTalk-Callback-Crypto): ``key = Base64Decode(aes_key + "=")``, AES-256-CBC with
IV = ``key[:16]``, manual PKCS#7 padding with block size 32, plaintext
``random16 ‖ len(msg) as 4-byte big-endian ‖ msg ‖ receiver_id``, and
``signature = sha1hex("".join(sorted([token, timestamp, nonce, encrypt])))``.

Nothing in the ciphertext is authenticated except by that signature, so a receiver must call
:meth:`DingTalkCrypto.open` (verify, then decrypt) on what arrives, never :meth:`DingTalkCrypto.decrypt`
alone: decrypting unverified input would hand an attacker a padding oracle.

pycryptodome is imported only when a cipher is needed, because light modules import this one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
import string
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_provider_dingtalk.exceptions import DingTalkCryptoError, DingTalkValidationError

if TYPE_CHECKING:
    from Crypto.Cipher._mode_cbc import CbcMode

__all__ = ["DingTalkCrypto", "new_nonce", "validate_aes_key"]

# DingTalk's crypto error codes (as in its DingTalk-Callback-Crypto demos and its global error-code
# page, 错误码), named so that the code reads as what went wrong.
ERR_PLAINTEXT = 900001
ERR_TIMESTAMP = 900002
ERR_NONCE = 900003
ERR_AES_KEY = 900004
ERR_SIGNATURE = 900005
ERR_SIGNING = 900006
ERR_DECRYPT = 900008
ERR_LENGTH = 900009
ERR_RECEIVER = 900010

_ALNUM = string.ascii_letters + string.digits
_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_RANDOM16_RE = re.compile(r"[A-Za-z0-9]{16}")
# DingTalk sends milliseconds; the official Python demo replies in seconds. Accept exactly those two shapes.
_TIMESTAMP_RE = re.compile(r"[0-9]{13}|[0-9]{10}")
_PAD_BLOCK = 32  # PKCS#7 block size DingTalk uses (not AES's 16): see the vectors' pad bytes 22/31/27
_HEADER = 20  # random16 + 4-byte length
_KEY_HINT = "check that aes_key is the one configured for this callback in DingTalk"


def validate_aes_key(aes_key: str, *, field: str = "aes_key") -> None:
    """Check that ``aes_key`` has the shape DingTalk requires: exactly 43 characters of ``[A-Za-z0-9]``.

    The message never contains the key or any character of it.

    :param aes_key: the callback EncodingAESKey as shown in the DingTalk console (no trailing ``=``).
    :param field: the name to report in the error, e.g. a connection extra's name.
    :raises DingTalkValidationError: naming ``field`` when the key has the wrong shape.
    """
    if not isinstance(aes_key, str):
        raise DingTalkValidationError(field, f"must be a string, not {type(aes_key).__name__}")
    if len(aes_key) != 43:
        raise DingTalkValidationError(
            field,
            "must be exactly 43 characters from [A-Za-z0-9] (the key DingTalk shows, without a trailing '=')",
            size=len(aes_key),
            limit=43,
        )
    if not _AES_KEY_RE.fullmatch(aes_key):
        position = next(i for i, ch in enumerate(aes_key) if ch not in _ALNUM)
        raise DingTalkValidationError(
            field, f"may contain only letters A-Z, a-z and digits 0-9; position {position} does not"
        )


def new_nonce(length: int = 16) -> str:
    """A random string of ``[A-Za-z0-9]`` from :mod:`secrets`, for nonces and the 16-byte random prefix.

    :param length: number of characters, at least 1.
    """
    if length < 1:
        raise DingTalkValidationError("length", "must be at least 1", size=length, limit=1)
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


class DingTalkCrypto:
    """Encrypt, decrypt, sign and verify DingTalk event-callback messages.

    :param token: the callback token (any string; it only feeds the signature). Secret.
    :param aes_key: the 43-character EncodingAESKey. Secret.
    :param receiver_id: the id DingTalk appends inside every plaintext: the appKey for a console event
        subscription, the corpId for ``register_call_back``, the suiteKey for ISV apps.
    :param max_skew: how many seconds a request's timestamp may differ from ``clock()``.
    :param clock: returns the current Unix time in seconds; injectable for tests.
    :raises DingTalkCryptoError: code 900004 when ``aes_key`` is malformed.
    :raises DingTalkValidationError: when ``token``, ``receiver_id`` or ``max_skew`` is unusable.
    """

    __slots__ = ("_clock", "_key", "_max_skew", "_receiver", "_receiver_id", "_token")

    def __init__(
        self,
        *,
        token: str,
        aes_key: str,
        receiver_id: str,
        max_skew: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            validate_aes_key(aes_key)
        except DingTalkValidationError as exc:
            raise DingTalkCryptoError(ERR_AES_KEY, str(exc)) from None
        # validate=False: most 43-char keys have non-zero trailing bits, which DingTalk's decoders ignore.
        key = base64.b64decode(aes_key + "=", validate=False)
        if len(key) != 32:  # cannot happen after validation; kept because AES-256 depends on it
            raise DingTalkCryptoError(ERR_AES_KEY, f"aes_key decodes to {len(key)} bytes, expected 32")
        if not isinstance(token, str) or not token:
            raise DingTalkValidationError("token", "must be a non-empty string")
        if not isinstance(receiver_id, str) or not receiver_id:
            # An empty receiver id would make the receiver check accept every message.
            raise DingTalkValidationError(
                "receiver_id", "must be a non-empty string (appKey, corpId or suiteKey)"
            )
        if not (isinstance(max_skew, int | float) and math.isfinite(max_skew) and max_skew >= 0):
            raise DingTalkValidationError("max_skew", "must be a finite number of seconds >= 0")
        self._token = token
        self._key = key
        self._receiver_id = receiver_id
        self._receiver = receiver_id.encode("utf-8", "surrogatepass")
        self._max_skew = float(max_skew)
        self._clock = clock

    def __repr__(self) -> str:
        return f"DingTalkCrypto(receiver_id={self._receiver_id!r}, max_skew={self._max_skew})"

    def _cipher(self) -> CbcMode:
        """A new AES-256-CBC cipher with IV = the key's first 16 bytes, for one message.

        A CBC cipher object carries its chaining state from one call to the next, so it is never
        shared between messages (nor threads).
        """
        from Crypto.Cipher import AES

        return AES.new(self._key, AES.MODE_CBC, iv=self._key[:16])

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """The ``msg_signature``: lowercase SHA-1 hex of token and the three parts, sorted and concatenated.

        :param timestamp: the ``timeStamp`` query parameter as sent.
        :param nonce: the ``nonce`` query parameter as sent.
        :param encrypt: the base64 ciphertext as sent.
        """
        parts = [self._token, timestamp, nonce, encrypt]
        if not all(isinstance(p, str) for p in parts):
            raise DingTalkCryptoError(ERR_SIGNING, "timestamp, nonce and encrypt must be strings")
        joined = "".join(sorted(parts))
        # surrogatepass: hostile query strings must give a mismatch, not a UnicodeEncodeError.
        return hashlib.sha1(joined.encode("utf-8", "surrogatepass")).hexdigest()

    def verify(
        self, signature: str, timestamp: str, nonce: str, encrypt: str, *, check_time: bool = True
    ) -> None:
        """Check a request's signature and, with ``check_time``, that its timestamp is fresh.

        :param signature: ``msg_signature`` (or the older ``signature``) query parameter.
        :param timestamp: ``timeStamp`` (or ``timestamp``): 13 digits of milliseconds or 10 of seconds.
        :param nonce: ``nonce`` query parameter.
        :param encrypt: the ``encrypt`` field of the JSON body.
        :param check_time: refuse timestamps more than ``max_skew`` seconds from ``clock()``.
        :raises DingTalkCryptoError: 900002 bad or stale timestamp, 900003 bad nonce, 900005 mismatch.
        """
        seconds = _timestamp_seconds(timestamp)
        _check_nonce(nonce)
        if not isinstance(signature, str) or not isinstance(encrypt, str):
            raise DingTalkCryptoError(ERR_SIGNATURE, "signature and encrypt must be strings")
        expected = self.signature(timestamp, nonce, encrypt).encode("ascii")
        if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass")):
            raise DingTalkCryptoError(
                ERR_SIGNATURE, "signature does not match; check that token is the one configured in DingTalk"
            )
        if check_time:
            skew = seconds - self._clock()
            if abs(skew) > self._max_skew:
                raise DingTalkCryptoError(
                    ERR_TIMESTAMP,
                    f"timestamp {timestamp} is {skew:+.0f} s from now, outside the allowed "
                    f"±{self._max_skew:g} s (replayed request or wrong clock)",
                )

    def open(self, *, signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Verify a callback request, then decrypt it: the one safe way to read what DingTalk sent.

        :param signature: ``msg_signature`` (or ``signature``) query parameter.
        :param timestamp: ``timeStamp`` (or ``timestamp``) query parameter.
        :param nonce: ``nonce`` query parameter.
        :param encrypt: the ``encrypt`` field of the JSON body.
        :return: the decrypted message, usually JSON such as ``{"EventType":"check_url"}``.
        """
        self.verify(signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def decrypt(self, encrypt: str) -> str:
        """Decrypt an ``encrypt`` value. Does not check the signature: see :meth:`open`.

        :param encrypt: standard base64 (with ``=`` padding, no whitespace) of the ciphertext.
        :return: the UTF-8 message.
        :raises DingTalkCryptoError: 900008 bad base64, padding or UTF-8; 900009 length field does not fit;
            900010 receiver id mismatch.
        """
        if not isinstance(encrypt, str) or not encrypt:
            raise DingTalkCryptoError(ERR_DECRYPT, "encrypt must be a non-empty base64 string")
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
            raise DingTalkCryptoError(ERR_DECRYPT, "encrypt is not valid base64") from None
        if not data or len(data) % 16:
            raise DingTalkCryptoError(
                ERR_DECRYPT, f"ciphertext is {len(data)} bytes, not a positive multiple of 16 (truncated?)"
            )
        buf = self._cipher().decrypt(data)

        # PKCS#7 by hand, not Crypto.Util.Padding.unpad(buf, 32): that also demands a multiple of 32
        # bytes, but DingTalk's own decoders read only the last byte, so a sender padding to 16 works.
        pad = buf[-1]
        if not 1 <= pad <= _PAD_BLOCK or pad > len(buf) or buf[-pad:] != bytes([pad]) * pad:
            raise DingTalkCryptoError(ERR_DECRYPT, f"invalid padding after decryption; {_KEY_HINT}")
        content = buf[:-pad]
        if len(content) < _HEADER:
            raise DingTalkCryptoError(
                ERR_DECRYPT, f"decrypted message is too short ({len(content)} bytes); {_KEY_HINT}"
            )
        (msg_len,) = struct.unpack(">I", content[16:_HEADER])
        # Compare before slicing: the length comes from the sender and is never used to allocate.
        if msg_len > len(content) - _HEADER:
            raise DingTalkCryptoError(
                ERR_LENGTH,
                f"length field says {msg_len} bytes but only {len(content) - _HEADER} follow the header",
            )
        msg = content[_HEADER : _HEADER + msg_len]
        found = content[_HEADER + msg_len :]
        if not hmac.compare_digest(found, self._receiver):
            raise DingTalkCryptoError(ERR_RECEIVER, _receiver_mismatch(self._receiver_id, found))
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError:
            raise DingTalkCryptoError(ERR_DECRYPT, "decrypted message is not valid UTF-8") from None

    def encrypt(
        self,
        plaintext: str,
        *,
        timestamp: str | None = None,
        nonce: str | None = None,
        random16: str | None = None,
    ) -> dict[str, str]:
        """Encrypt and sign a message, e.g. the ``"success"`` reply to a callback.

        :param plaintext: the message; any text encodable as UTF-8.
        :param timestamp: ``timeStamp`` to sign with; default now in milliseconds.
        :param nonce: nonce to sign with; default 16 random ``[A-Za-z0-9]`` characters.
        :param random16: the 16-character random prefix; default from :mod:`secrets`. Pass only to
            reproduce a known ciphertext.
        :return: ``{"msg_signature", "timeStamp", "nonce", "encrypt"}``: the callback reply body.
        """
        if timestamp is None:
            timestamp = str(int(self._clock() * 1000))
        else:
            _timestamp_seconds(timestamp)
        if nonce is None:
            nonce = new_nonce()
        else:
            _check_nonce(nonce)
        if random16 is None:
            random16 = new_nonce(16)
        elif not isinstance(random16, str) or not _RANDOM16_RE.fullmatch(random16):
            raise DingTalkCryptoError(ERR_NONCE, "random16 must be 16 characters from [A-Za-z0-9]")
        if not isinstance(plaintext, str):
            raise DingTalkCryptoError(
                ERR_PLAINTEXT, f"plaintext must be a string, not {type(plaintext).__name__}"
            )
        try:
            msg = plaintext.encode("utf-8")
        except UnicodeEncodeError:
            raise DingTalkCryptoError(ERR_PLAINTEXT, "plaintext is not encodable as UTF-8") from None
        if len(msg) > 0xFFFFFFFF:
            raise DingTalkCryptoError(
                ERR_PLAINTEXT, "plaintext is longer than the 4-byte length field allows"
            )

        raw = random16.encode("ascii") + struct.pack(">I", len(msg)) + msg + self._receiver
        pad = _PAD_BLOCK - len(raw) % _PAD_BLOCK
        ciphertext = self._cipher().encrypt(raw + bytes([pad]) * pad)
        # b64encode, not encodebytes: DingTalk's base64 has no line breaks.
        encrypted = base64.b64encode(ciphertext).decode("ascii")
        return {
            "msg_signature": self.signature(timestamp, nonce, encrypted),
            "timeStamp": timestamp,
            "nonce": nonce,
            "encrypt": encrypted,
        }


def _timestamp_seconds(timestamp: str) -> float:
    """Seconds since the epoch from a 13-digit millisecond or 10-digit second timestamp."""
    if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
        raise DingTalkCryptoError(
            ERR_TIMESTAMP, "timestamp must be 13 digits (milliseconds) or 10 digits (seconds)"
        )
    value = int(timestamp)
    return value / 1000 if len(timestamp) == 13 else float(value)


def _check_nonce(nonce: str) -> None:
    if not isinstance(nonce, str) or not nonce:
        raise DingTalkCryptoError(ERR_NONCE, "nonce must be a non-empty string")


def _receiver_mismatch(expected: str, found: bytes) -> str:
    """Say which receiver id arrived when it is readable: mixing up appKey and corpId is the usual cause."""
    text = f"message is addressed to a different receiver id than {expected!r}"
    if 0 < len(found) <= 64 and found.isascii() and found.decode("ascii").isprintable():
        text += f" (it carries {found.decode('ascii')!r})"
    return text + "; use the appKey for console event subscriptions, the corpId for register_call_back"

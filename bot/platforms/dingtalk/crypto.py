"""DingTalk (钉钉) callback authentication: the event-subscription envelope and the robot sign.

Two schemes, both checked before anything else is read from a callback:

- **Event envelope** (HTTP 事件订阅, and oabot's HTTP card-callback route): the query carries
  `signature`, `timestamp`, `nonce`; the body is `{"encrypt": "<base64>"}`. The signature is
  `sha1("".join(sorted([token, timestamp, nonce, encrypt])))`. The ciphertext is AES-256-CBC
  with key = base64(aes_key + "="), IV = key[:16], PKCS#7 padded to 32-byte blocks, over
  `random(16) || len(msg) (4 bytes, big endian) || msg || owner_key`; the owner key is the
  internal app's AppKey. The answer is the word `success` sealed the same way.
- **Robot sign** (HTTP robot messages): headers `timestamp` (ms) and
  `sign = base64(HMAC-SHA256(key=AppSecret, msg=f"{timestamp}\\n{AppSecret}"))`.

Both refuse timestamps more than an hour away from now. This module only verifies and
(de)crypts; it reads no request and decides nothing about what a callback means.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MAX_SKEW_MS = 60 * 60 * 1000  # DingTalk's own rule for robot signs; applied to events too
_BLOCK = 32  # DingTalk pads to 32 bytes, not AES's 16


class CallbackRejected(Exception):
    """A callback failed verification. `reason` is one of: signature, stale, malformed, owner."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _timestamp_ms(value: str) -> int:
    """DingTalk timestamps are milliseconds; a 10-digit value is taken as seconds."""
    if not value or not value.isdigit() or len(value) > 16:
        raise CallbackRejected("malformed", "timestamp is not a number")
    number = int(value)
    return number * 1000 if len(value) <= 10 else number


def check_fresh(timestamp: str, now_ms: int, max_skew_ms: int = MAX_SKEW_MS) -> None:
    """Refuse a timestamp more than `max_skew_ms` from now (replays of old captures)."""
    if abs(now_ms - _timestamp_ms(timestamp)) > max_skew_ms:
        raise CallbackRejected("stale", f"timestamp {timestamp} is more than an hour from now")


@dataclass(frozen=True)
class SealedReply:
    """The JSON body DingTalk expects back from an event callback."""

    msg_signature: str
    timestamp: str
    nonce: str
    encrypt: str

    def as_json(self) -> dict[str, str]:
        return {
            "msg_signature": self.msg_signature,
            "timeStamp": self.timestamp,
            "nonce": self.nonce,
            "encrypt": self.encrypt,
        }


class EventCrypto:
    """Verify, open and seal DingTalk event envelopes for one app (token, aes_key, AppKey)."""

    def __init__(self, token: str, aes_key: str, owner_key: str) -> None:
        try:
            key = base64.b64decode(aes_key + "=", validate=True)
        except binascii.Error as exc:
            raise ValueError("aes_key is not 43 characters of base64") from exc
        if len(key) != 32:
            raise ValueError("aes_key must decode to 32 bytes (43 base64 characters)")
        self._token = token
        self._key = key
        self._owner = owner_key.encode()

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        parts = sorted([self._token, timestamp, nonce, encrypt])
        return hashlib.sha1("".join(parts).encode()).hexdigest()

    def verify(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.signature(timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise CallbackRejected("signature", "event signature does not match")

    def open(self, signature: str, timestamp: str, nonce: str, encrypt: str, *, now_ms: int) -> str:
        """Verify the signature and the timestamp, then decrypt: the plaintext message."""
        if not (signature and timestamp and nonce and encrypt):
            raise CallbackRejected("malformed", "signature, timestamp, nonce and encrypt are all required")
        self.verify(signature, timestamp, nonce, encrypt)
        check_fresh(timestamp, now_ms)
        return self.decrypt(encrypt)

    def decrypt(self, encrypt: str) -> str:
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CallbackRejected("malformed", "encrypt is not base64") from exc
        if not raw or len(raw) % 16:
            raise CallbackRejected("malformed", "ciphertext length is not a multiple of the block size")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).decryptor()
        padded = decryptor.update(raw) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= _BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise CallbackRejected("malformed", "bad padding")
        body = padded[16:-pad]
        if len(body) < 4:
            raise CallbackRejected("malformed", "plaintext too short")
        (length,) = struct.unpack(">I", body[:4])
        if length > len(body) - 4:
            raise CallbackRejected("malformed", "length field exceeds the plaintext")
        message, owner = body[4 : 4 + length], body[4 + length :]
        if not hmac.compare_digest(owner, self._owner):
            raise CallbackRejected("owner", "sealed for another app")
        try:
            return message.decode()
        except UnicodeDecodeError as exc:
            raise CallbackRejected("malformed", "plaintext is not UTF-8") from exc

    def encrypt(self, message: str, *, random16: bytes | None = None) -> str:
        data = message.encode()
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(data)) + data + self._owner
        pad = _BLOCK - len(plain) % _BLOCK
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def seal(self, message: str, timestamp: str, nonce: str) -> SealedReply:
        encrypt = self.encrypt(message)
        return SealedReply(self.signature(timestamp, nonce, encrypt), timestamp, nonce, encrypt)

    def success_reply(self, timestamp: str, nonce: str) -> SealedReply:
        """What every event callback must answer, check_url included (plain "success" fails: 71009)."""
        return self.seal("success", timestamp, nonce)


def robot_sign(timestamp: str, app_secret: str) -> str:
    digest = hmac.new(app_secret.encode(), f"{timestamp}\n{app_secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_robot_sign(timestamp: str | None, sign: str | None, app_secret: str, *, now_ms: int) -> None:
    """Check an HTTP robot message's `timestamp` + `sign` headers; raise CallbackRejected."""
    if not timestamp or not sign:
        raise CallbackRejected("malformed", "timestamp and sign headers are required")
    if not timestamp.isdigit():
        raise CallbackRejected("malformed", "timestamp is not a number")
    if not hmac.compare_digest(robot_sign(timestamp, app_secret).encode(), sign.encode()):
        raise CallbackRejected("signature", "robot sign does not match")
    check_fresh(timestamp, now_ms)

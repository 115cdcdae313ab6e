"""DingTalk (钉钉) callback authentication: the event-subscription envelope and the robot sign.

Two schemes, both checked before anything else is read from a callback:

- **Event envelope** (HTTP 事件订阅, and oabot's HTTP card-callback route): the query carries
  `signature`, `timestamp`, `nonce`; the body is `{"encrypt": "<base64>"}`. Signature and AES
  envelope are `bot.platforms.message_crypto`'s (the same as WeCom's); the receive ("owner")
  key is the internal app's AppKey. The answer is the word `success` sealed the same way, as
  JSON.
- **Robot sign** (HTTP robot messages): headers `timestamp` (ms) and
  `sign = base64(HMAC-SHA256(key=AppSecret, msg=f"{timestamp}\\n{AppSecret}"))`.

Both refuse timestamps more than an hour old (DingTalk's documented limit); a robot sign stamped
more than five minutes ahead of now is refused too (clock skew is all that explains one). That
a robot header pair is used only once, and by whom, is `robot_guard`'s. This module only verifies and
(de)crypts; it reads no request and decides nothing about what a callback means.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from bot.platforms.message_crypto import MessageCrypto, MessageCryptoError

MAX_SKEW_MS = 60 * 60 * 1000  # DingTalk's own rule for robot signs; applied to events too
ROBOT_MAX_FUTURE_MS = 5 * 60 * 1000  # a robot sign from the future: clock skew only
# What a refusal of the shared envelope means here; everything else is "malformed".
_REASONS = {"bad_signature": "signature", "wrong_receiver": "owner"}


class CallbackRejected(Exception):
    """A callback failed verification. `reason` is one of: signature, stale, malformed, owner."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _rejected(exc: MessageCryptoError) -> CallbackRejected:
    return CallbackRejected(_REASONS.get(exc.code, "malformed"), str(exc))


def _timestamp_ms(value: str) -> int:
    """DingTalk timestamps are milliseconds; a 10-digit value is taken as seconds."""
    if not value or not (value.isascii() and value.isdigit()) or len(value) > 16:
        raise CallbackRejected("malformed", "timestamp is not a number")
    number = int(value)
    return number * 1000 if len(value) <= 10 else number


def check_fresh(
    timestamp: str, now_ms: int, max_skew_ms: int = MAX_SKEW_MS, *, max_future_ms: int | None = None
) -> None:
    """Refuse a timestamp more than `max_skew_ms` before now, or more than `max_future_ms`
    (default: the same) after it (replays of old captures)."""
    at = _timestamp_ms(timestamp)
    ahead = max_skew_ms if max_future_ms is None else max_future_ms
    if now_ms - at > max_skew_ms or at - now_ms > ahead:
        raise CallbackRejected("stale", f"timestamp {timestamp} is outside the accepted window")


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
    """Verify, open and seal DingTalk event envelopes for one app (token, aes_key, AppKey).

    The envelope is `message_crypto`'s with the AppKey (or suite key) as receive id; what is
    DingTalk's own is the freshness check, the JSON reply and the `CallbackRejected` reasons.
    A bad `aes_key` raises `message_crypto.InvalidAESKey`, a `ValueError`.
    """

    def __init__(self, token: str, aes_key: str, owner_key: str) -> None:
        self._crypto = MessageCrypto(token, aes_key, receive_id=owner_key)

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return self._crypto.signature(timestamp, nonce, encrypt)

    def open(self, signature: str, timestamp: str, nonce: str, encrypt: str, *, now_ms: int) -> str:
        """Verify the signature and the timestamp, then decrypt: the plaintext message."""
        if not (signature and timestamp and nonce and encrypt):
            raise CallbackRejected("malformed", "signature, timestamp, nonce and encrypt are all required")
        try:
            self._crypto.verify(signature, timestamp, nonce, encrypt)
        except MessageCryptoError as exc:
            raise _rejected(exc) from exc
        check_fresh(timestamp, now_ms)
        return self.decrypt(encrypt)

    def decrypt(self, encrypt: str) -> str:
        try:
            return self._crypto.decrypt(encrypt)
        except MessageCryptoError as exc:
            raise _rejected(exc) from exc

    def seal(self, message: str, timestamp: str, nonce: str) -> SealedReply:
        encrypt, signature = self._crypto.seal(message, timestamp, nonce)
        return SealedReply(signature, timestamp, nonce, encrypt)

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
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise CallbackRejected("malformed", "timestamp is not a number")
    if not hmac.compare_digest(robot_sign(timestamp, app_secret).encode(), sign.encode("utf-8", "replace")):
        raise CallbackRejected("signature", "robot sign does not match")
    check_fresh(timestamp, now_ms, max_future_ms=ROBOT_MAX_FUTURE_MS)

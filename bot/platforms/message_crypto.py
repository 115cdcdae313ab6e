"""The business-message crypto WeCom 企业微信 and DingTalk 钉钉 share: signature check and AES envelope.

Both platforms seal a callback the same way. `encrypt` = base64(AES-256-CBC(random16 ‖ len(msg)
as 4 bytes big-endian ‖ msg ‖ receive_id)) with the key from the app's 43-character
EncodingAESKey, IV = key[:16] and PKCS#7 padding to 32-byte blocks (not AES's 16). The signature
is the hex SHA-1 over the sorted [token, timestamp, nonce, encrypt]. Only the receive id differs:
WeCom's CorpID, DingTalk's AppKey (or suite key).

This module only turns bytes into plaintext and back. It does no I/O, reads no request, knows
nothing about XML or JSON envelopes or timestamps' freshness, and raises one of the
`MessageCryptoError` subclasses for anything that does not check out; each platform module
names its receive id and translates these errors into its own answers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from typing import NamedTuple

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK_BITS = 256  # both platforms pad to 32 bytes, whatever AES's own block size is
_RANDOM_LEN = 16
_HEAD = _RANDOM_LEN + 4  # the random prefix and the message length


class MessageCryptoError(Exception):
    """A message that cannot be trusted. `code` names the reason for logs and the 4xx answer."""

    code = "crypto_error"


class InvalidAESKey(MessageCryptoError, ValueError):
    """The configured EncodingAESKey is not 43 characters of base64."""

    code = "invalid_aes_key"


class SignatureInvalid(MessageCryptoError):
    code = "bad_signature"


class DecryptError(MessageCryptoError):
    """Not base64, not whole blocks, bad padding, a length that does not fit, or not UTF-8."""

    code = "bad_ciphertext"


class ReceiverMismatch(MessageCryptoError):
    """Decrypted fine but was sealed for another receiver (corp, app or suite): not for us."""

    code = "wrong_receiver"


class Sealed(NamedTuple):
    """A message sealed for sending back: the ciphertext and its signature."""

    encrypted: str
    signature: str


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """The msg_signature: hex SHA-1 of the four strings sorted and joined."""
    joined = "".join(sorted([token, timestamp, nonce, encrypted]))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def aes_key_from(encoding_aes_key: str) -> bytes:
    """The 32-byte key behind a 43-character EncodingAESKey (base64 without its '=')."""
    if len(encoding_aes_key) != 43:
        raise InvalidAESKey("EncodingAESKey must be 43 characters")
    try:
        return base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidAESKey("EncodingAESKey is not base64") from exc


def pad(data: bytes) -> bytes:
    """PKCS#7 to a multiple of 32 bytes; a full block of 32 when already aligned."""
    padder = padding.PKCS7(BLOCK_BITS).padder()
    return padder.update(data) + padder.finalize()


def unpad(data: bytes) -> bytes:
    """Strict inverse of `pad`: whole 32-byte blocks whose padding bytes all say the same count."""
    unpadder = padding.PKCS7(BLOCK_BITS).unpadder()
    try:
        return unpadder.update(data) + unpadder.finalize()
    except ValueError as exc:
        raise DecryptError("bad padding") from exc


class MessageCrypto:
    """Checks, opens and seals messages for one app: its token, EncodingAESKey and receive id."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self._token = token
        self._key = aes_key_from(encoding_aes_key)
        self._receive_id = receive_id.encode("utf-8")

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return signature(self._token, timestamp, nonce, encrypted)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        """Raise SignatureInvalid unless `msg_signature` matches (compared in constant time)."""
        expected = self.signature(timestamp, nonce, encrypted)
        if not hmac.compare_digest(
            expected.encode("ascii"), msg_signature.lower().encode("utf-8", "replace")
        ):
            raise SignatureInvalid("msg_signature does not match")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def decrypt(self, encrypted: str) -> str:
        """The message inside `encrypted`; the receive id must be ours."""
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptError("ciphertext is not base64") from exc
        if not raw or len(raw) % 16:
            raise DecryptError("ciphertext is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        content = unpad(decryptor.update(raw) + decryptor.finalize())
        if len(content) < _HEAD:
            raise DecryptError("plaintext too short")
        (length,) = struct.unpack(">I", content[_RANDOM_LEN:_HEAD])
        if _HEAD + length > len(content):
            raise DecryptError("message length runs past the plaintext")
        message, receive_id = content[_HEAD : _HEAD + length], content[_HEAD + length :]
        if not hmac.compare_digest(receive_id, self._receive_id):
            raise ReceiverMismatch("sealed for another receiver")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptError("message is not UTF-8") from exc

    def encrypt(self, message: str, *, random16: bytes | None = None) -> str:
        """base64 ciphertext of `message` for this receive id (replies, tests)."""
        prefix = random16 if random16 is not None else os.urandom(_RANDOM_LEN)
        if len(prefix) != _RANDOM_LEN:
            raise ValueError("random16 must be 16 bytes")
        body = message.encode("utf-8")
        plain = pad(prefix + struct.pack(">I", len(body)) + body + self._receive_id)
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
        """Verify, then decrypt: the plaintext of a signed message."""
        self.verify(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def seal(self, message: str, timestamp: str, nonce: str) -> Sealed:
        """`message` encrypted and signed for a reply."""
        encrypted = self.encrypt(message)
        return Sealed(encrypted, self.signature(timestamp, nonce, encrypted))

"""WeCom 企业微信 callback crypto: the msg_signature check and the AES-256-CBC envelope.

What WeCom sends is `Encrypt` = base64(AES-256-CBC(random16 ‖ len(msg) as 4 bytes big-endian ‖
msg ‖ receive_id)), with the key from the app's 43-character EncodingAESKey, IV = key[:16] and
PKCS#7 padding to 32-byte blocks (not AES's 16). `msg_signature` = SHA-1 over the sorted
[token, timestamp, nonce, Encrypt]. The receive id is the CorpID for a self-built app.

This module only turns bytes into plaintext and back. It does no I/O, knows nothing about HTTP
or XML, and raises one of the `WeComCryptoError` subclasses for anything that does not check out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes, whatever AES's own block size is
_RANDOM_LEN = 16
_LENGTH_LEN = 4


class WeComCryptoError(Exception):
    """A callback that cannot be trusted. `code` names the reason for logs and the 4xx answer."""

    code = "crypto_error"


class InvalidAESKey(WeComCryptoError):
    code = "invalid_aes_key"


class SignatureInvalid(WeComCryptoError):
    code = "bad_signature"


class DecryptError(WeComCryptoError):
    """Not base64, not whole AES blocks, bad padding or a length that does not fit."""

    code = "bad_ciphertext"


class ReceiverMismatch(WeComCryptoError):
    """Decrypted fine but was meant for another corp (or suite): not for us."""

    code = "wrong_receiver"


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """WeCom's msg_signature: hex SHA-1 of the four strings sorted and joined."""
    joined = "".join(sorted([token, timestamp, nonce, encrypted]))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def aes_key_from(encoding_aes_key: str) -> bytes:
    """The 32-byte key behind a 43-character EncodingAESKey (base64 without its '=')."""
    if len(encoding_aes_key) != 43:
        raise InvalidAESKey("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidAESKey("EncodingAESKey is not base64") from exc
    if len(key) != 32:  # pragma: no cover - 43 base64 characters always give 32 bytes
        raise InvalidAESKey("EncodingAESKey does not decode to 32 bytes")
    return key


def pad(data: bytes) -> bytes:
    """PKCS#7 to a multiple of 32 bytes; a full block of 32 when already aligned."""
    n = BLOCK - len(data) % BLOCK
    return data + bytes([n]) * n


def unpad(data: bytes) -> bytes:
    """Strict inverse of `pad`: the count must be 1..32 and every padding byte must say so."""
    if not data:
        raise DecryptError("empty plaintext")
    n = data[-1]
    if not 1 <= n <= BLOCK or n > len(data) or data[-n:] != bytes([n]) * n:
        raise DecryptError("bad padding")
    return data[:-n]


class WeComCrypto:
    """Checks and opens WeCom callbacks for one app (token, EncodingAESKey, receive id)."""

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
            raise DecryptError("Encrypt is not base64") from exc
        if not raw or len(raw) % 16:
            raise DecryptError("Encrypt is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        content = unpad(decryptor.update(raw) + decryptor.finalize())
        head = _RANDOM_LEN + _LENGTH_LEN
        if len(content) < head:
            raise DecryptError("plaintext too short")
        (length,) = struct.unpack(">I", content[_RANDOM_LEN:head])
        if head + length > len(content):
            raise DecryptError("message length runs past the plaintext")
        message, receive_id = content[head : head + length], content[head + length :]
        if not hmac.compare_digest(receive_id, self._receive_id):
            raise ReceiverMismatch("receive id is not this corp")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptError("message is not UTF-8") from exc

    def encrypt(self, message: str, *, random16: bytes | None = None) -> str:
        """base64 ciphertext of `message` for this receive id (passive replies, tests)."""
        prefix = random16 if random16 is not None else os.urandom(_RANDOM_LEN)
        if len(prefix) != _RANDOM_LEN:
            raise ValueError("random16 must be 16 bytes")
        body = message.encode("utf-8")
        plain = pad(prefix + struct.pack(">I", len(body)) + body + self._receive_id)
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
        """Verify, then decrypt: the plaintext of a callback (or of a GET's echostr)."""
        self.verify(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def seal(self, message: str, timestamp: str, nonce: str) -> tuple[str, str]:
        """(Encrypt, MsgSignature) for a passive reply carrying `message`."""
        encrypted = self.encrypt(message)
        return encrypted, self.signature(timestamp, nonce, encrypted)

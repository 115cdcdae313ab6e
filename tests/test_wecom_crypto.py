"""WeCom callback crypto against Tencent's published vector and wechatpy, an independent
implementation: what one side seals, the other opens; anything tampered with is refused."""

from __future__ import annotations

import base64
import hashlib
import os
import struct

import pytest
import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.platforms.message_crypto import (
    DecryptError,
    InvalidAESKey,
    ReceiverMismatch,
    SignatureInvalid,
    pad,
    signature,
    unpad,
)
from bot.platforms.wecom.crypto import WeComCrypto

# Tencent's sample (weworkapi callback sample; NOTES.md §1.2)
OFFICIAL = {
    "token": "QDG6eK",
    "aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "corp_id": "wx5823bf96d3bd56c7",
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
TOKEN, AES_KEY, CORP_ID = "testtoken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "ww0123456789abcdef"


def ours() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


def theirs(corp_id: str = CORP_ID) -> WeChatCrypto:
    return WeChatCrypto(TOKEN, AES_KEY, corp_id)


def sealed_by_wechatpy(message: str, corp_id: str = CORP_ID) -> tuple[str, str, str, str]:
    nonce, ts = "123456", "1700000000"
    reply = xmltodict.parse(theirs(corp_id).encrypt_message(message, nonce, ts))["xml"]
    return reply["MsgSignature"], ts, nonce, reply["Encrypt"]


def raw_ciphertext(plain: bytes) -> str:
    key = base64.b64decode(AES_KEY + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def test_official_vector_verifies_and_decrypts_the_echostr() -> None:
    crypto = WeComCrypto(OFFICIAL["token"], OFFICIAL["aes_key"], OFFICIAL["corp_id"])

    plain = crypto.open(
        OFFICIAL["msg_signature"], OFFICIAL["timestamp"], OFFICIAL["nonce"], OFFICIAL["echostr"]
    )

    assert plain == "1616140317555161061"


def test_signature_is_sha1_over_the_sorted_four_strings() -> None:
    expected = hashlib.sha1("".join(sorted(["t", "2", "n", "enc"])).encode()).hexdigest()
    assert signature("t", "2", "n", "enc") == expected


def test_a_callback_sealed_by_wechatpy_opens_here() -> None:
    inner = "<xml><Content><![CDATA[待办 ✓]]></Content></xml>"

    assert ours().open(*sealed_by_wechatpy(inner)) == inner


def test_a_message_sealed_here_opens_in_wechatpy() -> None:
    encrypted, sig = ours().seal("<xml><Content>同意</Content></xml>", "1700000000", "42")
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"

    assert theirs().decrypt_message(body, sig, "1700000000", "42") == "<xml><Content>同意</Content></xml>"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_any_text_round_trips_through_both_implementations(text: str) -> None:
    assert ours().open(*sealed_by_wechatpy(text)) == text
    encrypted, sig = ours().seal(text, "1", "2")
    assert theirs().decrypt_message(f"<xml><Encrypt>{encrypted}</Encrypt></xml>", sig, "1", "2") == text


@pytest.mark.parametrize("length", [0, 1, 31, 32, 33, 64])
def test_padding_is_pkcs7_to_32_byte_blocks(length: int) -> None:
    data = os.urandom(length)
    padded = pad(data)
    assert len(padded) % 32 == 0 and len(padded) > length
    assert 1 <= padded[-1] <= 32
    assert unpad(padded) == data


def test_a_wrong_signature_is_refused() -> None:
    sig, ts, nonce, encrypted = sealed_by_wechatpy("<xml/>")
    with pytest.raises(SignatureInvalid):
        ours().open("0" * 40, ts, nonce, encrypted)
    with pytest.raises(SignatureInvalid):
        ours().open(sig, str(int(ts) + 1), nonce, encrypted)  # replayed with a new timestamp


def test_a_message_for_another_corp_is_refused() -> None:
    with pytest.raises(ReceiverMismatch):
        ours().open(*sealed_by_wechatpy("<xml/>", corp_id="wwSomeoneElse"))


@pytest.mark.parametrize("pad_byte", [0, 33, 255])
def test_bad_padding_is_refused(pad_byte: int) -> None:
    body = b"<xml/>"
    plain = os.urandom(16) + struct.pack(">I", len(body)) + body + CORP_ID.encode()
    plain += bytes([pad_byte]) * (32 - len(plain) % 32)
    with pytest.raises(DecryptError):
        ours().decrypt(raw_ciphertext(plain))


def test_inconsistent_padding_bytes_are_refused() -> None:
    body = b"<xml/>"
    plain = os.urandom(16) + struct.pack(">I", len(body)) + body + CORP_ID.encode()
    n = 32 - len(plain) % 32
    plain += bytes([n + 1 if n < 32 else 1]) + bytes([n]) * (n - 1)
    with pytest.raises(DecryptError):
        ours().decrypt(raw_ciphertext(plain))


def test_a_length_running_past_the_plaintext_is_refused() -> None:
    plain = pad(os.urandom(16) + struct.pack(">I", 10_000) + b"<xml/>" + CORP_ID.encode())
    with pytest.raises(DecryptError):
        ours().decrypt(raw_ciphertext(plain))


@pytest.mark.parametrize(
    "encrypted",
    ["", "not base64!", base64.b64encode(b"short").decode(), base64.b64encode(os.urandom(17)).decode()],
)
def test_garbage_ciphertext_is_refused(encrypted: str) -> None:
    with pytest.raises(DecryptError):
        ours().decrypt(encrypted)


def test_a_bad_encoding_aes_key_is_refused() -> None:
    with pytest.raises(InvalidAESKey):
        WeComCrypto(TOKEN, "short", CORP_ID)
    with pytest.raises(InvalidAESKey):
        WeComCrypto(TOKEN, "!" * 43, CORP_ID)

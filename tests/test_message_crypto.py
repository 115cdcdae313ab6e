"""The shared business-message crypto against two independent peers: a message sealed by
wechatpy (WeCom) and one sealed by dingtalk-sdk (DingTalk) both open through
`bot.platforms.message_crypto`, and a single changed byte is refused."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
import xmltodict
from dingtalk.crypto import DingTalkCrypto
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.platforms.message_crypto import (
    DecryptError,
    MessageCrypto,
    ReceiverMismatch,
    SignatureInvalid,
)

TOKEN = "shared-token"
AES_KEY = base64.b64encode(bytes(range(100, 132))).decode().rstrip("=")
CORP_ID, APP_KEY = "ww0123456789abcdef", "dingappkey123"
TS, NONCE = "1795000000", "n0nce"
MESSAGE = '{"EventType": "check_url", "说明": "同意 ✓"}'

# (signature, timestamp, nonce, encrypted) as each platform would send them
Sealer = Callable[[str], tuple[str, str, str, str]]


def by_wechatpy(message: str) -> tuple[str, str, str, str]:
    xml = WeChatCrypto(TOKEN, AES_KEY, CORP_ID).encrypt_message(message, NONCE, TS)
    reply = xmltodict.parse(xml)["xml"]
    return reply["MsgSignature"], reply["TimeStamp"], reply["Nonce"], reply["Encrypt"]


def by_dingtalk_sdk(message: str) -> tuple[str, str, str, str]:
    sealed = DingTalkCrypto(TOKEN, AES_KEY, APP_KEY).encrypt_message(message, nonce=NONCE, timestamp=TS)
    return sealed["msg_signature"], sealed["timeStamp"], sealed["nonce"], sealed["encrypt"]


PEERS = [
    pytest.param(by_wechatpy, CORP_ID, id="wechatpy"),
    pytest.param(by_dingtalk_sdk, APP_KEY, id="dingtalk-sdk"),
]


def with_byte_flipped(encrypted: str, index: int) -> str:
    raw = bytearray(base64.b64decode(encrypted))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(("seal", "receive_id"), PEERS)
def test_a_message_sealed_by_either_peer_opens_through_the_shared_module(
    seal: Sealer, receive_id: str
) -> None:
    assert MessageCrypto(TOKEN, AES_KEY, receive_id).open(*seal(MESSAGE)) == MESSAGE


@pytest.mark.parametrize(("seal", "receive_id"), PEERS)
def test_a_reply_sealed_here_opens_in_either_peer(seal: Sealer, receive_id: str) -> None:
    encrypted, signature = MessageCrypto(TOKEN, AES_KEY, receive_id).seal(MESSAGE, TS, NONCE)
    if receive_id == CORP_ID:
        body = f"<xml><Encrypt>{encrypted}</Encrypt></xml>"
        opened = WeChatCrypto(TOKEN, AES_KEY, CORP_ID).decrypt_message(body, signature, TS, NONCE)
    else:
        opened = DingTalkCrypto(TOKEN, AES_KEY, APP_KEY).decrypt_message(
            {"encrypt": encrypted}, signature, TS, NONCE
        )
    assert opened == MESSAGE


@pytest.mark.parametrize("index", [0, 5, 16, 40, -33, -1])
@pytest.mark.parametrize(("seal", "receive_id"), PEERS)
def test_one_changed_ciphertext_byte_breaks_the_signature(seal: Sealer, receive_id: str, index: int) -> None:
    signature, ts, nonce, encrypted = seal(MESSAGE)

    with pytest.raises(SignatureInvalid):
        MessageCrypto(TOKEN, AES_KEY, receive_id).open(
            signature, ts, nonce, with_byte_flipped(encrypted, index)
        )


@pytest.mark.parametrize(("seal", "receive_id"), PEERS)
def test_one_changed_signature_character_is_refused(seal: Sealer, receive_id: str) -> None:
    signature, ts, nonce, encrypted = seal(MESSAGE)
    changed = ("0" if signature[7] != "0" else "1").join((signature[:7], signature[8:]))

    with pytest.raises(SignatureInvalid):
        MessageCrypto(TOKEN, AES_KEY, receive_id).open(changed, ts, nonce, encrypted)


@pytest.mark.parametrize("index", [-33, -20, -17, -16, -5, -1])
@pytest.mark.parametrize(("seal", "receive_id"), PEERS)
def test_a_changed_tail_is_refused_even_when_signed_again(seal: Sealer, receive_id: str, index: int) -> None:
    """Someone holding the token can sign anything; the padding and the receive id at the end of
    the plaintext still have to check out, so a changed byte in the last two blocks is refused."""
    crypto = MessageCrypto(TOKEN, AES_KEY, receive_id)
    _, ts, nonce, encrypted = seal(MESSAGE)
    tampered = with_byte_flipped(encrypted, index)

    with pytest.raises((DecryptError, ReceiverMismatch)):
        crypto.open(crypto.signature(ts, nonce, tampered), ts, nonce, tampered)


@pytest.mark.parametrize(("seal", "receive_id"), PEERS)
def test_a_message_for_the_other_platforms_receiver_is_refused(seal: Sealer, receive_id: str) -> None:
    other = APP_KEY if receive_id == CORP_ID else CORP_ID

    with pytest.raises(ReceiverMismatch):
        MessageCrypto(TOKEN, AES_KEY, other).open(*seal(MESSAGE))

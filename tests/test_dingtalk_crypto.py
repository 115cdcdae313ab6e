"""oabot's DingTalk callback crypto against independent implementations: dingtalk-sdk's
DingTalkCrypto, wechatpy's PrpCrypto (the same AES layout) and the robot-sign formula."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

import pytest
from dingtalk.crypto import DingTalkCrypto
from wechatpy.crypto import PrpCrypto

from bot.platforms.dingtalk.crypto import CallbackRejected, EventCrypto, robot_sign, verify_robot_sign

TOKEN = "evt-token"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")
APP_KEY = "dingappkey123"
NOW_MS = 1_795_000_000_000
TS = str(NOW_MS)


def ours() -> EventCrypto:
    return EventCrypto(TOKEN, AES_KEY, APP_KEY)


def theirs(owner: str = APP_KEY, token: str = TOKEN) -> DingTalkCrypto:
    return DingTalkCrypto(token, AES_KEY, owner)


def test_opens_an_event_sealed_by_dingtalk_sdk() -> None:
    message = json.dumps({"EventType": "check_url", "说明": "中文"}, ensure_ascii=False)
    sealed = theirs().encrypt_message(message, nonce="n0nce", timestamp=TS)

    plain = ours().open(
        sealed["msg_signature"], sealed["timeStamp"], sealed["nonce"], sealed["encrypt"], now_ms=NOW_MS
    )

    assert json.loads(plain) == {"EventType": "check_url", "说明": "中文"}


def test_opens_a_message_sealed_by_wechatpy_with_the_app_key_as_owner() -> None:
    key = base64.b64decode(AES_KEY + "=")
    encrypt = PrpCrypto(key).encrypt('{"outTrackId": "oabot_x_v1"}', APP_KEY)
    encrypt = encrypt.decode() if isinstance(encrypt, bytes) else encrypt

    assert ours().decrypt(encrypt) == '{"outTrackId": "oabot_x_v1"}'


def test_success_reply_is_what_dingtalk_sdk_produces_and_accepts() -> None:
    reply = ours().success_reply(TS, "abc123").as_json()

    assert set(reply) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert reply["timeStamp"] == TS and reply["nonce"] == "abc123"
    assert theirs().decrypt_message(reply, reply["msg_signature"], TS, "abc123") == "success"
    assert PrpCrypto(base64.b64decode(AES_KEY + "=")).decrypt(reply["encrypt"], APP_KEY) in (
        "success",
        b"success",
    )


def test_signature_is_sha1_of_the_sorted_parts() -> None:
    expected = hashlib.sha1("".join(sorted([TOKEN, TS, "n", "enc"])).encode()).hexdigest()
    assert ours().signature(TS, "n", "enc") == expected


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"signature": "0" * 40}, "signature"),
        ({"token": "other-token"}, "signature"),
        ({"owner": "dingotherapp"}, "owner"),
        ({"timestamp": str(NOW_MS - 3_600_001)}, "stale"),
        ({"timestamp": str(NOW_MS + 3_600_001)}, "stale"),
        ({"timestamp": "yesterday"}, "malformed"),
        ({"nonce": ""}, "malformed"),
    ],
)
def test_refuses_what_it_cannot_trust(tamper: dict[str, str], reason: str) -> None:
    ts = tamper.get("timestamp", TS)
    sealed = theirs(owner=tamper.get("owner", APP_KEY), token=tamper.get("token", TOKEN)).encrypt_message(
        "{}", nonce="n1", timestamp=ts
    )
    signature = tamper.get("signature", sealed["msg_signature"])
    nonce = tamper.get("nonce", sealed["nonce"])
    if "nonce" in tamper or "timestamp" in tamper:
        signature = ours().signature(ts, nonce, sealed["encrypt"])  # validly signed, bad otherwise

    with pytest.raises(CallbackRejected) as refused:
        ours().open(signature, ts, nonce, sealed["encrypt"], now_ms=NOW_MS)

    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "encrypt", ["!!!", base64.b64encode(b"short").decode(), base64.b64encode(os.urandom(48)).decode()]
)
def test_garbage_ciphertext_is_malformed_or_foreign_never_a_crash(encrypt: str) -> None:
    crypto = ours()
    with pytest.raises(CallbackRejected) as refused:
        crypto.open(crypto.signature(TS, "n", encrypt), TS, "n", encrypt, now_ms=NOW_MS)
    assert refused.value.reason in ("malformed", "owner")


def test_a_seconds_timestamp_is_accepted_as_seconds() -> None:
    sealed = theirs().encrypt_message("{}", nonce="n", timestamp=str(NOW_MS // 1000))
    assert (
        ours().open(sealed["msg_signature"], sealed["timeStamp"], "n", sealed["encrypt"], now_ms=NOW_MS)
        == "{}"
    )


def test_aes_key_must_be_43_characters_of_base64() -> None:
    with pytest.raises(ValueError):
        EventCrypto(TOKEN, "short", APP_KEY)


def independent_robot_sign(timestamp: str, secret: str) -> str:
    return base64.b64encode(
        hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()


def test_robot_sign_follows_the_published_formula() -> None:
    assert robot_sign(TS, "SECret") == independent_robot_sign(TS, "SECret")
    verify_robot_sign(TS, independent_robot_sign(TS, "SECret"), "SECret", now_ms=NOW_MS)


@pytest.mark.parametrize(
    ("timestamp", "sign", "reason"),
    [
        (TS, "bm90IGl0", "signature"),
        (str(NOW_MS - 3_600_001), None, "stale"),
        (None, "x", "malformed"),
        (TS, None, None),
    ],
)
def test_robot_sign_refusals(timestamp: str | None, sign: str | None, reason: str | None) -> None:
    if sign is None and timestamp is not None:
        sign = independent_robot_sign(timestamp, "SECret")
    if reason is None:
        verify_robot_sign(timestamp, sign, "SECret", now_ms=NOW_MS)
        return
    with pytest.raises(CallbackRejected) as refused:
        verify_robot_sign(timestamp, sign, "SECret", now_ms=NOW_MS)
    assert refused.value.reason == reason

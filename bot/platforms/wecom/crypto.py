"""WeCom 企业微信 callback crypto: the shared business-message envelope with the CorpID as receive id.

WeCom signs a callback with `msg_signature`, `timestamp` and `nonce` in the query; a POST carries
the ciphertext in the XML body's `Encrypt` element, the URL check (GET) in `echostr`, and a
passive reply would carry `Encrypt` + `MsgSignature`. The signature and the AES envelope are
`bot.platforms.message_crypto`'s; for a self-built app the receive id is the CorpID.

Reading the XML is `inbound.parse_xml`'s job and answering is `callbacks`' job: this module only
names the receive id. Refusals are `message_crypto.MessageCryptoError` subclasses.
"""

from __future__ import annotations

from bot.platforms.message_crypto import MessageCrypto


class WeComCrypto(MessageCrypto):
    """Checks, opens and seals one self-built app's callbacks (token, EncodingAESKey, CorpID)."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        super().__init__(token, encoding_aes_key, receive_id=corp_id)

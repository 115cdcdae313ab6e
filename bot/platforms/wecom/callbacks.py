"""The WeCom callback URL: `GET /callbacks/wecom` (URL verification) and `POST /callbacks/wecom`
(messages and events), as configured under the app's 接收消息 → 设置API接收.

A POST is verified before anything else (size, msg_signature, decryption, receive id, XML), then
stored in the durable inbox (which dedupes retries) and answered with 200 and an empty body, which
WeCom takes as "received, no passive reply". Nothing here calls WeCom or the approval engine:
WeCom gives a callback 5 seconds, and a slow API or database job must never make it retry.
Anything that does not check out gets a 4xx JSON error, a log line, and changes nothing.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.keys import CLOCK, DB, INBOX, KV
from bot.platforms.message_crypto import MessageCryptoError
from bot.platforms.wecom import card_refs
from bot.platforms.wecom.crypto import WeComCrypto
from bot.platforms.wecom.inbound import MalformedMessage, parse_xml, to_inbound
from bot.web.middleware import error_response

logger = logging.getLogger(__name__)

PATH = "/callbacks/wecom"
MAX_BODY_BYTES = 64 * 1024
_CHUNK = 16 * 1024
# Not signed by WeCom, or not for this corp: forbidden. Undecryptable or malformed: bad request.
_CRYPTO_STATUS = {"bad_signature": 403, "wrong_receiver": 403}


class BodyTooLarge(Exception):
    pass


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, refusing (BodyTooLarge) as soon as it is known to exceed `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(request: web.Request, status: int, code: str, message: str) -> web.Response:
    logger.warning(
        "wecom callback refused: %s",
        message,
        extra={"reason": code, "method": request.method, "remote": request.remote},
    )
    return error_response(request, status, code, message)


def _signed_params(request: web.Request, *extra: str) -> dict[str, str] | None:
    names = ("msg_signature", "timestamp", "nonce", *extra)
    values = {n: request.query.get(n, "") for n in names}
    return values if all(values.values()) else None


class WeComCallbacks:
    def __init__(self, crypto: WeComCrypto) -> None:
        self._crypto = crypto

    async def verify_url(self, request: web.Request) -> web.Response:
        """WeCom checks the URL by sending an encrypted echostr; we answer its plaintext."""
        q = _signed_params(request, "echostr")
        if q is None:
            return _refuse(
                request, 400, "missing_parameters", "msg_signature, timestamp, nonce and echostr are required"
            )
        try:
            plain = self._crypto.open(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
        except MessageCryptoError as exc:
            return _refuse(request, _CRYPTO_STATUS.get(exc.code, 400), exc.code, str(exc))
        logger.info("wecom callback URL verified")
        return web.Response(text=plain, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        q = _signed_params(request)
        if q is None:
            return _refuse(
                request, 400, "missing_parameters", "msg_signature, timestamp and nonce are required"
            )
        try:
            body = await read_limited(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return _refuse(
                request, 413, "payload_too_large", f"callback bodies are at most {MAX_BODY_BYTES} bytes"
            )
        try:
            encrypted = parse_xml(body).get("Encrypt", "")
        except MalformedMessage as exc:
            return _refuse(request, 400, "malformed_xml", str(exc))
        if not encrypted:
            return _refuse(request, 400, "malformed_xml", "Encrypt is missing")
        try:
            plain = self._crypto.open(q["msg_signature"], q["timestamp"], q["nonce"], encrypted)
        except MessageCryptoError as exc:
            return _refuse(request, _CRYPTO_STATUS.get(exc.code, 400), exc.code, str(exc))
        try:
            fields = parse_xml(plain)
            inbound = to_inbound(fields)
        except MalformedMessage as exc:
            return _refuse(request, 400, "malformed_message", str(exc))
        if inbound is None:
            logger.info(
                "wecom callback ignored (not a kind oabot handles)",
                extra={
                    "msg_type": fields.get("MsgType"),
                    "wecom_event": fields.get("Event"),
                    "account": fields.get("FromUserName"),
                },
            )
            return web.Response(status=200)
        event = inbound.event
        ids = {
            "platform": "wecom",
            "event_id": event.event_id,
            "account": event.sender.account,
            "event": type(event).__name__,
        }
        if inbound.click is not None:
            # Before the inbox sees the tap, so the card update that follows it uses this fresh code.
            async with request.app[DB].transaction() as s:
                changed = await card_refs.record_click(
                    s,
                    card_id=inbound.click.card_id,
                    account=inbound.click.account,
                    response_code=inbound.click.response_code,
                    now=request.app[CLOCK].now(),
                )
            if not changed:  # the card may not be recorded yet: keep the code for when it is
                await card_refs.remember_click(
                    request.app[KV],
                    card_id=inbound.click.card_id,
                    account=inbound.click.account,
                    response_code=inbound.click.response_code,
                )
        accepted = await request.app[INBOX].accept(event)
        logger.info(
            "wecom callback accepted" if accepted else "wecom callback repeated; already accepted", extra=ids
        )
        return web.Response(status=200)

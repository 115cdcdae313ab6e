"""The WeCom callback URL: `GET /callbacks/wecom` (URL verification) and `POST /callbacks/wecom`
(messages and events), as configured under the app's 接收消息 → 设置API接收.

A POST is verified before anything else (size, msg_signature, decryption, receive id, XML), then
stored in the durable inbox (which dedupes retries) and answered with 200 and an empty body, which
WeCom takes as "received, no passive reply". Nothing here calls WeCom or the approval engine:
WeCom gives a callback 5 seconds, and a slow API or database job must never make it retry.
A contact change (`change_contact`) only schedules a re-read of that person or department
(`services.org_sync`), which the timer scan does later.
Anything that does not check out gets a 4xx JSON error, a log line, and changes nothing.

Freshness: the signed `timestamp` must be within `message_max_age_s` of now (default 5 min)
for messages, `event_max_age_s` (default 15 min) for events, so a captured callback cannot be
replayed later (a correctly signed message from 2017 is refused, 403 `stale`); inside the
window the inbox's dedupe still makes a replay a repeat.

A callback that is signed and fresh but whose content oabot cannot use (XML that does not parse
after decryption, a field that does not hold what it must, a NUL in a text) is acknowledged
with the usual empty 200 (WeCom would otherwise retry it) and refused through
`Inbox.refuse`: a log line, the `callback_refusals` metric and a recorded `refused` row.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.keys import CLOCK, INBOX, ORG_SYNC
from bot.platforms.inbox import printable, unstorable
from bot.platforms.message_crypto import MessageCryptoError
from bot.platforms.wecom import card_refs
from bot.platforms.wecom.crypto import WeComCrypto
from bot.platforms.wecom.inbound import (
    ContactChange,
    MalformedMessage,
    contact_changes,
    parse_xml,
    to_inbound,
)
from bot.web.middleware import error_response
from bot.web.rate_limits import mark_signed

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
    request.app[INBOX].count_refusal("wecom", code)
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


def _age_s(timestamp: str, now: float) -> float | None:
    """How far the signed timestamp (Unix seconds) is from now; None when it is not a time."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return None
    return abs(now - int(timestamp))


async def _contact_changed(request: web.Request, changes: list[ContactChange]) -> web.Response:
    """A directory change: schedule a re-read of each person or department it names (the
    event body is never applied as it is); acknowledged at once like every callback."""
    sync = request.app.get(ORG_SYNC)
    for change in changes:
        if sync is None:
            logger.info(
                "wecom contact change ignored: directory sync is not set up", extra={"event": change.event}
            )
            break
        await sync.schedule_refresh(
            "wecom", change.scope, change.ident, event=change.event, event_key=change.key
        )
    return web.Response(status=200)


class WeComCallbacks:
    def __init__(
        self, crypto: WeComCrypto, *, message_max_age_s: int = 300, event_max_age_s: int = 900
    ) -> None:
        self._crypto = crypto
        self._max_age_s = {"message": message_max_age_s, "event": event_max_age_s}

    async def _refuse_content(
        self, request: web.Request, fields: dict[str, str], reason: str, detail: str, reference: str
    ) -> web.Response:
        """A signed, fresh callback whose content is unusable: acknowledged, refused, recorded."""
        await request.app[INBOX].refuse(
            "wecom",
            reason,
            reference=reference,
            detail=detail,
            summary={k: fields[k] for k in list(fields)[:12]},
        )
        return web.Response(status=200)

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
        mark_signed(request)
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
        reference = f"{q['timestamp']}:{q['nonce']}:{q['msg_signature']}"
        try:
            fields = parse_xml(plain)
        except MalformedMessage as exc:
            fields = {}
            problem: str | None = str(exc)
        else:
            problem = None
        kind = "event" if fields.get("MsgType") == "event" else "message"
        age = _age_s(q["timestamp"], request.app[CLOCK].now().timestamp())
        if age is None or age > self._max_age_s[kind]:
            return _refuse(
                request,
                403,
                "stale",
                f"timestamp {printable(q['timestamp'], 20)} is more than {self._max_age_s[kind]} s from now",
            )
        mark_signed(request)
        if problem is not None:
            return await self._refuse_content(request, fields, "malformed_message", problem, reference)
        try:
            changes = contact_changes(fields)
            if changes is not None:
                return await _contact_changed(request, changes)
            inbound = to_inbound(fields)
        except MalformedMessage as exc:
            return await self._refuse_content(request, fields, "malformed_message", str(exc), reference)
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
        problem = unstorable(event)
        if problem is not None:
            return await self._refuse_content(request, fields, "unstorable", problem, reference)
        ids = {
            "platform": "wecom",
            "event_id": event.event_id,
            "account": event.sender.account,
            "event": type(event).__name__,
        }
        also = []
        if inbound.click is not None:
            # In the transaction that stores the tap, so the card update that follows it uses
            # this fresh code. The decision itself is the inbox worker's, after the ack.
            also.append(
                card_refs.click_update(
                    card_id=inbound.click.card_id,
                    account=inbound.click.account,
                    response_code=inbound.click.response_code,
                    now=request.app[CLOCK].now(),
                )
            )
        accepted = await request.app[INBOX].accept(event, also=also)
        logger.info(
            "wecom callback accepted" if accepted else "wecom callback not stored (a repeat)", extra=ids
        )
        return web.Response(status=200)

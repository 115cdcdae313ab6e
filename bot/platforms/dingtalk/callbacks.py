"""HTTP-mode DingTalk callbacks: verify, store in the inbox, answer. Nothing else.

- `POST /callbacks/dingtalk` — event subscription (事件订阅). Signature + AES envelope
  (`crypto.EventCrypto`); answers the encrypted `success` (check_url included). Contact events
  (`user_*_org`, `org_dept_*`) schedule a re-read of each person or department they name
  (`services.org_sync`); the event body itself is never applied. Others are logged and acknowledged.
- `POST /callbacks/dingtalk/card` — interactive-card callbacks, the URL registered for the
  callbackRouteKey `oabot_card`. Verified exactly like events (same token, aes_key and AppKey,
  same encrypted `success` answer); the decrypted JSON is the card callback data.
- `POST /callbacks/dingtalk/robot` — robot messages: `timestamp` + `sign` headers
  (HMAC-SHA256 with the AppSecret), refused when more than an hour old or five minutes ahead,
  when the header pair was used before (403 `replayed`), and when the sender is not the person
  the conversation belongs to (acknowledged, refused and recorded): see `robot_guard`.

A callback that fails verification gets 403 (400 when it cannot even be read) and changes
nothing; it is logged and counted (`callback_refusals`). A verified one whose content oabot
cannot use (decrypted text that is not a JSON object, a NUL in a field) is acknowledged, so
DingTalk does not retry it, and refused through `Inbox.refuse` (log, metric, a `refused` row). A verified one is turned into a neutral event and handed to `Inbox.accept` (a key-value
dedupe and one INSERT); the approval work happens later in the inbox worker, so the answer does
not wait for the database's heavier work or for any DingTalk API.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from bot.keys import CLOCK, DINGTALK, INBOX, KV, ORG_SYNC, WORKFLOW
from bot.platforms.dingtalk import inbound
from bot.platforms.dingtalk.cards import MalformedCardCallback
from bot.platforms.dingtalk.crypto import CallbackRejected, EventCrypto, verify_robot_sign
from bot.platforms.dingtalk.robot_guard import RobotGuard
from bot.platforms.inbox import unstorable
from bot.web.rate_limits import mark_signed
from org.model import Org

logger = logging.getLogger(__name__)

EVENT_PATH = "/callbacks/dingtalk"
CARD_PATH = "/callbacks/dingtalk/card"
ROBOT_PATH = "/callbacks/dingtalk/robot"
MAX_BODY = 256 * 1024


def _now_ms(request: web.Request) -> int:
    return int(request.app[CLOCK].now().timestamp() * 1000)


def _rejected(request: web.Request, exc: CallbackRejected) -> web.Response:
    request.app[INBOX].count_refusal("dingtalk", exc.reason)
    logger.warning(
        "dingtalk callback refused: %s",
        exc,
        extra={"path": request.path, "reason": exc.reason, "remote": request.remote},
    )
    status = 400 if exc.reason == "malformed" else 403
    return web.json_response({"error": exc.reason}, status=status)


class ContentRefused(Exception):
    """A verified callback whose decrypted content oabot cannot use."""


async def _refuse_content(
    request: web.Request, reason: str, detail: str, *, reference: str, summary: dict[str, Any]
) -> None:
    await request.app[INBOX].refuse("dingtalk", reason, reference=reference, detail=detail, summary=summary)


async def _body_json(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise CallbackRejected("malformed", "body too large")
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise CallbackRejected("malformed", "body too large")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise CallbackRejected("malformed", "body is not JSON") from exc
    if not isinstance(data, dict):
        raise CallbackRejected("malformed", "body is not a JSON object")
    return data


async def _open_envelope(request: web.Request, crypto: EventCrypto) -> tuple[dict[str, Any], str, str]:
    """Verify and decrypt an event-style callback: (decrypted JSON object, timestamp, nonce)."""
    q = request.query
    signature = q.get("signature") or q.get("msg_signature") or ""
    timestamp = q.get("timestamp") or q.get("timeStamp") or ""
    nonce = q.get("nonce") or ""
    body = await _body_json(request)
    encrypt = body.get("encrypt")
    if not isinstance(encrypt, str):
        raise CallbackRejected("malformed", "body has no encrypt field")
    plain = crypto.open(signature, timestamp, nonce, encrypt, now_ms=_now_ms(request))
    mark_signed(request)
    try:
        data = json.loads(plain)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        # Signed by DingTalk, so answered (no retry), but refused and recorded.
        await _refuse_content(
            request,
            "malformed_message",
            "decrypted message is not a JSON object",
            reference=f"{timestamp}:{nonce}:{signature}",
            summary={"path": request.path, "start": plain[:120]},
        )
        raise ContentRefused
    return data, timestamp, nonce


def _crypto(request: web.Request) -> EventCrypto:
    crypto = request.app[DINGTALK].crypto
    if crypto is None:  # settings refuse http mode without token + aes_key; defensive only
        raise web.HTTPNotFound()
    return crypto


def _signed_pair(request: web.Request) -> tuple[str, str]:
    q = request.query
    return q.get("timestamp") or q.get("timeStamp") or "", q.get("nonce") or ""


async def on_event(request: web.Request) -> web.Response:
    crypto = _crypto(request)
    try:
        data, timestamp, nonce = await _open_envelope(request, crypto)
    except CallbackRejected as exc:
        return _rejected(request, exc)
    except ContentRefused:
        return web.json_response(crypto.success_reply(*_signed_pair(request)).as_json())
    event_type = str(data.get("EventType") or "")
    rereads = inbound.contact_rereads(data, delivery_id=f"{timestamp}.{nonce}")
    sync = request.app.get(ORG_SYNC)
    for scope, ident, event, key in rereads or ():
        if sync is None:
            break
        await sync.schedule_refresh("dingtalk", scope, ident, event=event, event_key=key)
    logger.info("dingtalk event acknowledged", extra={"event_type": event_type})
    return web.json_response(crypto.success_reply(timestamp, nonce).as_json())


async def on_card(request: web.Request) -> web.Response:
    crypto = _crypto(request)
    try:
        data, timestamp, nonce = await _open_envelope(request, crypto)
    except CallbackRejected as exc:
        return _rejected(request, exc)
    except ContentRefused:
        return web.json_response(crypto.success_reply(*_signed_pair(request)).as_json())
    try:
        event = inbound.card_action(data, delivery_id=f"{timestamp}.{nonce}", at=request.app[CLOCK].now())
    except MalformedCardCallback as exc:
        # Authentic but not a tap on one of our cards: acknowledge so it is not retried.
        logger.warning(
            "dingtalk card callback ignored: %s", exc, extra={"out_track_id": data.get("outTrackId")}
        )
        return web.json_response(crypto.success_reply(timestamp, nonce).as_json())
    fresh = await request.app[INBOX].accept(event)
    logger.info(
        "dingtalk card tap accepted" if fresh else "dingtalk card tap not stored (a repeat)",
        extra={
            "event_id": event.event_id,
            "task_id": event.task_id,
            "staff_id": event.sender.account,
            "action": event.action,
        },
    )
    return web.json_response(crypto.success_reply(timestamp, nonce).as_json())


async def _org(request: web.Request) -> Org | None:
    try:
        return await request.app[WORKFLOW].org()
    except LookupError:  # no org imported yet: nobody is a member
        return None


async def on_robot(request: web.Request) -> web.Response:
    secret = request.app[DINGTALK].settings.app_secret
    timestamp, sign = request.headers.get("timestamp") or "", request.headers.get("sign") or ""
    guard = RobotGuard(request.app[KV])
    try:
        verify_robot_sign(timestamp, sign, secret, now_ms=_now_ms(request))
        if not await guard.claim(timestamp, sign):
            raise CallbackRejected("replayed", "this timestamp and sign were already used")
    except CallbackRejected as exc:
        return _rejected(request, exc)
    mark_signed(request)
    try:
        return await _robot_message(request, guard)
    except BaseException:
        await guard.release(timestamp, sign)  # not stored: DingTalk's re-delivery must get in
        raise


async def _robot_message(request: web.Request, guard: RobotGuard) -> web.Response:
    reference = f"{request.headers.get('timestamp')}:{request.headers.get('sign')}"
    try:
        data = await _body_json(request)
    except CallbackRejected as exc:
        # The headers were DingTalk's, the body is unreadable: acknowledged, refused, recorded.
        await _refuse_content(request, "malformed_message", str(exc), reference=reference, summary={})
        return web.json_response({})
    event = inbound.robot_text(data, at=request.app[CLOCK].now())
    if event is None:
        logger.info(
            "dingtalk robot message ignored",
            extra={"msgtype": str(data.get("msgtype"))[:40], "msg_id": str(data.get("msgId"))[:80]},
        )
        return web.json_response({})
    summary = {k: data.get(k) for k in ("msgId", "conversationType", "conversationId", "senderStaffId")}
    problem = unstorable(event)
    refused = ("unstorable", problem) if problem is not None else await _sender_refused(request, guard, data)
    if refused is not None:
        await _refuse_content(request, refused[0], refused[1], reference=reference, summary=summary)
        return web.json_response({})
    fresh = await request.app[INBOX].accept(event)
    logger.info(
        "dingtalk robot message accepted" if fresh else "dingtalk robot message not stored (a repeat)",
        extra={"event_id": event.event_id, "staff_id": event.sender.account},
    )
    return web.json_response({})


async def _sender_refused(
    request: web.Request, guard: RobotGuard, data: dict[str, Any]
) -> tuple[str, str] | None:
    problem = await guard.check_sender(data, await _org(request))
    return None if problem is None else (problem.reason, problem.detail)


def add_routes(app: web.Application) -> None:
    app.router.add_post(EVENT_PATH, on_event, name="dingtalk_events")
    app.router.add_post(CARD_PATH, on_card, name="dingtalk_cards")
    app.router.add_post(ROBOT_PATH, on_robot, name="dingtalk_robot")

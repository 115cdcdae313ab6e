"""A fake DingTalk on 127.0.0.1 (api.dingtalk.com and oapi.dingtalk.com in one server), built on
`tests.e2e_harness.FakeApi`, and the callbacks a real DingTalk would send to oabot.

The fake behaves like the platform where oabot depends on it: tokens that expire (HTTP 401),
outTrackId as the card's idempotency key (a second createAndDeliver with the same id makes no
second card), card data that must be all strings, updates only of existing cards. Tests make it
fail (`fail_next`) or slow (`delay`) per path, and read what it recorded.

Web sign-in 免登: `auth_code(staff)` hands out a code that `/topapi/v2/user/getuserinfo` exchanges
once within `CODE_TTL_S` (`expire_codes()` ages them all; else errcode 40078), and `/dingtalk.open.js`
is a stand-in for the JSAPI script whose `dd.runtime.permission.requestAuthCode({corpId, clientId})`
answers with a fresh code for `signed_in_staff` (refusing another corpId or clientId), records
`dd.config` calls in `window.__dd.configs` and answers `dd.device.geolocation.get` with `location`;
`/get_jsapi_ticket` hands out a fresh ticket per call (`jsapi_tickets`).

Contacts: with `directory` set (a `tests.directory_fakes.Company`), the topapi v2 department
get/listsub and user list (paged)/get answer from it, for `oabot org sync --from dingtalk`.

The callbacks are built with dingtalk-sdk's `DingTalkCrypto` (an implementation independent of
oabot's) and with the robot sign computed here from the published formula.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import urlencode

from aiohttp import web
from dingtalk.crypto import DingTalkCrypto

from tests.directory_fakes import DINGTALK_CONTACT_APIS, Company
from tests.e2e_harness import FakeApi, Recorded, Responder

APP_KEY = "dingoabotfake"
APP_SECRET = "fake-app-secret-0123456789"
EVENT_TOKEN = "fake-event-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

CREATE = "/v1.0/card/instances/createAndDeliver"
UPDATE = "/v1.0/card/instances"
BATCH_SEND = "/v1.0/robot/oToMessages/batchSend"
TOKEN = "/v1.0/oauth2/accessToken"
OAPI_TOKEN = "/gettoken"
GETUSERINFO = "/topapi/v2/user/getuserinfo"
JSAPI = "/dingtalk.open.js"
JSAPI_TICKET = "/get_jsapi_ticket"
# The robot message templates the fake takes, with the msgParam keys each needs.
MSG_PARAMS = {
    "sampleText": {"content"},
    "sampleActionCard6": {"title", "text", "buttonTitle1", "buttonUrl1", "buttonTitle2", "buttonUrl2"},
}
CORP_ID = "dingcorpfake"
CODE_TTL_S = 300.0
BAD_CODE = 40078  # 不存在的临时授权码


@dataclass
class CardInstance:
    out_track_id: str
    staff_id: str
    params: dict[str, str]
    created_order: int
    updates: list[dict[str, str]] = field(default_factory=list)


@dataclass
class FakeDingTalk:
    api: FakeApi = field(default_factory=lambda: FakeApi("dingtalk"))
    cards: dict[str, CardInstance] = field(default_factory=dict)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (staffId, content)
    action_cards: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (staffId, msgParam)
    tokens: set[str] = field(default_factory=set)
    token_fetches: int = 0
    create_outcomes: list[tuple[str, str]] = field(default_factory=list)  # (outTrackId, created | repeated)
    _failures: dict[str, list[int]] = field(default_factory=dict)
    _delays: dict[str, float] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    signed_in_staff: str | None = None  # who the fake JSAPI says the page's visitor is
    # where the fake JSAPI's dd.device.geolocation.get says the device is: (lat, lng, accuracy), GCJ-02
    location: tuple[float, float, float] | None = None
    jsapi_tickets: list[str] = field(default_factory=list)  # get_jsapi_ticket answers, oldest first
    _auth_codes: dict[str, tuple[str, float]] = field(default_factory=dict)  # code -> (staff, issued)
    # The contact directory (通讯录) the topapi contact APIs answer from; None: not served.
    directory: Company | None = None

    async def start(self) -> FakeDingTalk:
        self.api.route("POST", TOKEN, self._token)
        self.api.route("GET", OAPI_TOKEN, self._oapi_token)
        self.api.route("POST", CREATE, self._create)
        self.api.route("PUT", UPDATE, self._update)
        self.api.route("POST", BATCH_SEND, self._batch_send)
        self.api.route("POST", GETUSERINFO, self._getuserinfo)
        self.api.route("GET", JSAPI, self._jsapi)
        self.api.route("GET", JSAPI_TICKET, self._jsapi_ticket)
        for path, answer in DINGTALK_CONTACT_APIS.items():
            self.api.route("POST", path, self._contacts(answer))
        await self.api.start()
        return self

    async def stop(self) -> None:
        await self.api.stop()

    @property
    def base_url(self) -> str:
        return self.api.base_url

    # -- test controls -----------------------------------------------------------------------
    def fail_next(self, path: str, *statuses: int) -> None:
        """The next calls to `path` answer these HTTP statuses, in order, without doing anything."""
        self._failures.setdefault(path, []).extend(statuses)

    def delay(self, path: str, seconds: float) -> None:
        self._delays[path] = seconds

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def cards_for(self, staff_id: str) -> list[CardInstance]:
        return sorted(
            (c for c in self.cards.values() if c.staff_id == staff_id), key=lambda c: c.created_order
        )

    def texts_for(self, staff_id: str) -> list[str]:
        return [text for staff, text in self.texts if staff == staff_id]

    def created(self) -> list[str]:
        """outTrackIds of cards made, in order (a repeated createAndDeliver makes none)."""
        return [track for track, outcome in self.create_outcomes if outcome == "created"]

    def auth_code(self, staff_id: str) -> str:
        """A one-time 免登 code for `staff_id`, as requestAuthCode would give the page."""
        code = f"ac{next(self._counter)}{uuid.uuid4().hex[:8]}"
        self._auth_codes[code] = (staff_id, time.monotonic())
        return code

    def expire_codes(self) -> None:
        self._auth_codes = {
            code: (staff, issued - CODE_TTL_S - 1) for code, (staff, issued) in self._auth_codes.items()
        }

    # -- behaviour ---------------------------------------------------------------------------
    async def _gate(self, path: str) -> web.Response | None:
        if self._delays.get(path):
            await asyncio.sleep(self._delays[path])
        pending = self._failures.get(path)
        if pending:
            status = pending.pop(0)
            code = "Throttling.Api" if status == 429 else "ServiceUnavailable"
            return web.json_response({"code": code, "message": "fake failure"}, status=status)
        return None

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("x-acs-dingtalk-access-token", "") in self.tokens

    def _new_token(self) -> str:
        self.token_fetches += 1
        token = f"dt-{self.token_fetches}-{uuid.uuid4().hex[:6]}"
        self.tokens.add(token)
        return token

    async def _token(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        failed = await self._gate(TOKEN)
        if failed:
            return failed
        body = rec.json()
        if body.get("appKey") != APP_KEY or body.get("appSecret") != APP_SECRET:
            return web.json_response({"code": "invalidClientIdOrSecret", "message": "bad app"}, status=400)
        return web.json_response({"accessToken": self._new_token(), "expireIn": 7200})

    async def _oapi_token(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if rec.query.get("appkey") != APP_KEY or rec.query.get("appsecret") != APP_SECRET:
            return web.json_response({"errcode": 40089, "errmsg": "invalid appkey or appsecret"})
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": self._new_token(), "expires_in": 7200}
        )

    @staticmethod
    def _strings_only(params: Any) -> TypeGuard[dict[str, str]]:
        return isinstance(params, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in params.items()
        )

    async def _create(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        failed = await self._gate(CREATE)
        if failed:
            return failed
        if not self._authorised(request):
            return web.json_response(
                {"code": "InvalidAuthentication", "message": "token invalid"}, status=401
            )
        body = rec.json()
        params = (body.get("cardData") or {}).get("cardParamMap")
        space = str(body.get("openSpaceId", ""))
        if not self._strings_only(params) or not space.startswith("dtv1.card//IM_ROBOT."):
            return web.json_response(
                {"code": "param.invalid", "message": "cardParamMap values must be strings"}, status=400
            )
        if (
            not body.get("cardTemplateId")
            or body.get("imRobotOpenDeliverModel", {}).get("spaceType") != "IM_ROBOT"
        ):
            return web.json_response(
                {"code": "param.invalid", "message": "template and IM_ROBOT deliver model required"},
                status=400,
            )
        track = str(body["outTrackId"])
        staff = space.removeprefix("dtv1.card//IM_ROBOT.")
        outcome = "repeated"
        if track not in self.cards:  # outTrackId is the idempotency key: no second card
            self.cards[track] = CardInstance(track, staff, dict(params), next(self._counter))
            outcome = "created"
        self.create_outcomes.append((track, outcome))
        return web.json_response(
            {
                "success": True,
                "result": {
                    "outTrackId": track,
                    "deliverResults": [{"spaceType": "IM_ROBOT", "spaceId": staff, "success": True}],
                },
            }
        )

    async def _update(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        failed = await self._gate(UPDATE)
        if failed:
            return failed
        if not self._authorised(request):
            return web.json_response(
                {"code": "InvalidAuthentication", "message": "token invalid"}, status=401
            )
        body = rec.json()
        card = self.cards.get(str(body.get("outTrackId")))
        params = (body.get("cardData") or {}).get("cardParamMap")
        if card is None:
            return web.json_response({"code": "param.cardNotExist", "message": "no such card"}, status=400)
        if not self._strings_only(params):
            return web.json_response(
                {"code": "param.invalid", "message": "cardParamMap values must be strings"}, status=400
            )
        card.params.update(params)
        card.updates.append(dict(params))
        return web.json_response({"success": True, "result": True})

    async def _batch_send(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        failed = await self._gate(BATCH_SEND)
        if failed:
            return failed
        if not self._authorised(request):
            return web.json_response(
                {"code": "InvalidAuthentication", "message": "token invalid"}, status=401
            )
        body = rec.json()
        msg_key = body.get("msgKey")
        if body.get("robotCode") != APP_KEY or msg_key not in MSG_PARAMS:
            return web.json_response({"code": "param.invalid", "message": "robotCode / msgKey"}, status=400)
        params = json.loads(body["msgParam"])
        if not self._strings_only(params) or set(params) != MSG_PARAMS[msg_key]:
            return web.json_response({"code": "param.invalid", "message": "msgParam"}, status=400)
        for staff in body.get("userIds") or []:
            if msg_key == "sampleText":
                self.texts.append((str(staff), params["content"]))
            else:
                self.action_cards.append((str(staff), params))
        return web.json_response(
            {
                "processQueryKey": f"q-{next(self._counter)}",
                "invalidStaffIdList": [],
                "flowControlledStaffIdList": [],
            }
        )

    def _contacts(self, answer: Callable[[Company, dict[str, Any]], dict[str, Any]]) -> Responder:
        async def respond(request: web.Request, rec: Recorded) -> web.StreamResponse:
            if self.directory is None:
                return web.json_response({"errcode": 60011, "errmsg": "fake: no directory"})
            if rec.query.get("access_token", "") not in self.tokens:
                return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
            return web.json_response(answer(self.directory, rec.json()))

        return respond

    async def _getuserinfo(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if rec.query.get("access_token", "") not in self.tokens:
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        found = self._auth_codes.pop(str(rec.json().get("code", "")), None)
        if found is None or time.monotonic() - found[1] > CODE_TTL_S:
            return web.json_response({"errcode": BAD_CODE, "errmsg": "不存在的临时授权码"})
        staff = found[0]
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "result": {"userid": staff, "name": staff, "sys": False}}
        )

    async def _jsapi(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        code = self.auth_code(self.signed_in_staff) if self.signed_in_staff else ""
        script = (
            "window.dd={ready:function(f){setTimeout(f,0)},error:function(){},runtime:{permission:{"
            "requestAuthCode:function(a){"
            f"if(a.corpId!=={json.dumps(CORP_ID)}||a.clientId!=={json.dumps(APP_KEY)}){{a.onFail({{}});return}}"
            f"var code={json.dumps(code)};if(code){{a.onSuccess({{code:code}})}}else{{a.onFail({{}})}}"
            "}}},"
            "config:function(c){(window.__dd=window.__dd||{configs:[]}).configs.push(c)},"
            "device:{geolocation:{get:function(o){"
            + (
                f"setTimeout(function(){{o.onSuccess({{latitude:{self.location[0]},longitude:{self.location[1]},"
                f"accuracy:{self.location[2]}}})}},10)"
                if self.location
                else "o.onFail({})"
            )
            + "}}}};"
        )
        return web.Response(text=script, content_type="application/javascript")

    async def _jsapi_ticket(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        """oapi GET /get_jsapi_ticket: the app's ticket for dd.config, valid 7200 s."""
        if rec.query.get("access_token", "") not in self.tokens:
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token"})
        ticket = f"ddticket-{next(self._counter)}"
        self.jsapi_tickets.append(ticket)
        return web.json_response({"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": 7200})


# -- what DingTalk sends to oabot ----------------------------------------------------------------
def event_crypto(token: str = EVENT_TOKEN, aes_key: str = AES_KEY, owner: str = APP_KEY) -> DingTalkCrypto:
    return DingTalkCrypto(token, aes_key, owner)


@dataclass(frozen=True)
class SignedCallback:
    query: str
    body: bytes
    timestamp: str
    nonce: str


def sealed_callback(
    message: dict[str, Any],
    *,
    crypto: DingTalkCrypto | None = None,
    timestamp_ms: int | None = None,
    nonce: str | None = None,
    signature: str | None = None,
) -> SignedCallback:
    """An event-style callback (query + body) sealed by dingtalk-sdk, as DingTalk would post it."""
    sealed = (crypto or event_crypto()).encrypt_message(
        json.dumps(message, ensure_ascii=False),
        nonce=nonce or uuid.uuid4().hex[:10],
        timestamp=str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)),
    )
    query = urlencode(
        {
            "signature": signature or sealed["msg_signature"],
            "timestamp": sealed["timeStamp"],
            "nonce": sealed["nonce"],
        }
    )
    return SignedCallback(
        query, json.dumps({"encrypt": sealed["encrypt"]}).encode(), sealed["timeStamp"], sealed["nonce"]
    )


def card_tap(out_track_id: str, staff_id: str, action: str, **params: str) -> dict[str, Any]:
    """The card callback data DingTalk sends when a "回传请求" button is pressed."""
    return {
        "type": "actionCallback",
        "outTrackId": out_track_id,
        "corpId": "dingcorpfake",
        "userId": staff_id,
        "userIdType": 1,
        "spaceType": "IM_ROBOT",
        "spaceId": staff_id,
        "content": json.dumps(
            {"cardPrivateData": {"actionIds": [action], "params": {"action": action, **params}}}
        ),
        "extension": "{}",
    }


def robot_sign(timestamp: str, secret: str = APP_SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def robot_message(staff_id: str, text: str, *, msg_id: str | None = None) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "msgtype": "text",
        "text": {"content": text},
        "msgId": msg_id or f"msg{uuid.uuid4().hex[:12]}",
        "createAt": now,
        "conversationType": "1",
        "conversationId": f"cid{staff_id}",
        "senderId": f"$:LWCP_v1:${staff_id}",
        "senderNick": staff_id,
        "senderCorpId": "dingcorpfake",
        "senderStaffId": staff_id,
        "chatbotUserId": "$:LWCP_v1:$robot",
        "robotCode": APP_KEY,
        "isAdmin": False,
        "sessionWebhook": "http://127.0.0.1:9/robot/sendBySession",
        "sessionWebhookExpiredTime": now + 5_400_000,
    }


def robot_headers(timestamp_ms: int | None = None, *, sign: str | None = None) -> dict[str, str]:
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    return {"timestamp": ts, "sign": sign or robot_sign(ts), "Content-Type": "application/json"}


def dingtalk_env(fake: FakeDingTalk, mode: str = "http") -> dict[str, str]:
    return {
        "OABOT_DINGTALK_APP_KEY": APP_KEY,
        "OABOT_DINGTALK_APP_SECRET": APP_SECRET,
        "OABOT_DINGTALK_TOKEN": EVENT_TOKEN,
        "OABOT_DINGTALK_AES_KEY": AES_KEY,
        "OABOT_DINGTALK_MODE": mode,
        "OABOT_DINGTALK_CARD_TEMPLATE_ID": "oabot-test.schema",
        "OABOT_DINGTALK_API_BASE": fake.base_url,
        "OABOT_DINGTALK_OAPI_BASE": fake.base_url,
    }

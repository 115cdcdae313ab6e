"""A fake WeCom server API on 127.0.0.1 for end-to-end tests, built on `FakeApi`.

It answers gettoken, message/send, message/update_template_card and user/get the way WeCom does
(errcode 0 with HTTP 200; 40014 for an unknown token, 42001 for an expired one; a template card
task_id used twice is refused; a response code works once), records what it delivered, and can
be made slow or failing: `fail_next(...)` queues answers, `send_delay_s` sleeps in message/send,
`expire_token()` makes the current token answer 42001 once; `sending` counts the message/send
calls in progress.

Like WeCom it honours `enable_duplicate_check`: a body equal to one delivered within its
`duplicate_check_interval` (default 1800 s) is answered ok and not delivered again
(`duplicates_dropped`). And like WeCom it delivers at most `per_minute_limit` (30) messages to
one member in any 60 s, answering ok for the rest and dropping them silently
(`dropped_over_limit`); `delivered_at` keeps each delivery's time (time.monotonic()).

It also hands out click response codes (`click_code()`), which is what WeCom puts in a
template_card_event; the tests then build and encrypt the event with wechatpy.

Web sign-in: `/connect/oauth2/authorize` (the OAuth page, with `OABOT_WECOM_OAUTH_BASE` pointed
here) sends the browser straight back to the redirect URL with a one-time code for
`signed_in_account` (None: a visitor who is not a member), and `/cgi-bin/auth/getuserinfo`
exchanges it: once, within `CODE_TTL_S` (`expire_codes()` ages them all), else errcode 40029.

JS-SDK: `/cgi-bin/get_jsapi_ticket` hands out a fresh ticket per call (`jsapi_tickets` lists
them), so a test can check that the page's wx.config is signed with the one ticket fetched.

Contacts: with `directory` set (a `tests.directory_fakes.Company`), department/list,
department/get, user/list_id (paged) and user/get answer from it, for `oabot org sync`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import xmltodict
from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto

from tests.directory_fakes import (
    Company,
    wecom_department_get,
    wecom_department_list,
    wecom_list_id,
    wecom_user_get,
)
from tests.e2e_harness import FakeApi, Recorded

# WeCom's codes the fake uses. Invalid/expired tokens and busy are WeCom's documented codes; the
# code for a reused task_id or response code is the fake's own (oabot only needs "not 0").
INVALID_TOKEN = 40014
EXPIRED_TOKEN = 42001
BUSY = -1
FAKE_DUPLICATE_TASK_ID = 40099
FAKE_BAD_RESPONSE_CODE = 40098
INVALID_CODE = 40029
CODE_TTL_S = 300.0


@dataclass
class FakeWeCom:
    corp_id: str
    secret: str
    agent_id: int
    api: FakeApi = field(default_factory=lambda: FakeApi("wecom"))
    send_delay_s: float = 0.0
    tokens_issued: list[str] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)  # message/send bodies that succeeded
    updates: list[dict[str, Any]] = field(default_factory=list)  # update_template_card bodies that succeeded
    delivered_at: list[float] = field(default_factory=list)  # monotonic time of each delivered body
    per_minute_limit: int | None = 30
    sending: int = 0  # message/send calls in progress (a test can kill oabot in the middle of one)
    duplicates_dropped: list[dict[str, Any]] = field(default_factory=list)
    dropped_over_limit: list[dict[str, Any]] = field(default_factory=list)
    _recent: dict[str, float] = field(default_factory=dict)  # duplicate-checked body -> delivered at
    _expired: set[str] = field(default_factory=set)
    _failures: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    _task_ids: set[str] = field(default_factory=set)
    _codes: dict[str, bool] = field(default_factory=dict)  # response code -> used
    card_of_code: dict[str, str] = field(default_factory=dict)  # response code -> card task_id
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    signed_in_account: str | None = None  # who the OAuth page says the visitor is
    jsapi_tickets: list[str] = field(default_factory=list)  # get_jsapi_ticket answers, oldest first
    # The contact directory (通讯录) the contact APIs answer from; None: only user/get's echo.
    directory: Company | None = None
    _oauth_codes: dict[str, tuple[str | None, float]] = field(
        default_factory=dict
    )  # code -> (account, issued)

    async def start(self) -> FakeWeCom:
        self.api.route("GET", "/cgi-bin/gettoken", self._gettoken)
        self.api.route("POST", "/cgi-bin/message/send", self._send)
        self.api.route("POST", "/cgi-bin/message/update_template_card", self._update)
        self.api.route("GET", "/cgi-bin/user/get", self._user)
        self.api.route("GET", "/connect/oauth2/authorize", self._authorize)
        self.api.route("GET", "/cgi-bin/auth/getuserinfo", self._getuserinfo)
        self.api.route("GET", "/cgi-bin/get_jsapi_ticket", self._jsapi_ticket)
        self.api.route("GET", "/cgi-bin/department/list", self._department_list)
        self.api.route("GET", "/cgi-bin/department/get", self._department_get)
        self.api.route("POST", "/cgi-bin/user/list_id", self._user_list_id)
        await self.api.start()
        return self

    async def stop(self) -> None:
        await self.api.stop()

    @property
    def base_url(self) -> str:
        return self.api.base_url

    # -- test controls -----------------------------------------------------------------------
    def fail_next(self, path: str, times: int = 1, *, status: int = 200, errcode: int | None = None) -> None:
        """The next `times` calls to `path` fail: HTTP `status` or, with status 200, `errcode`."""
        body = (
            {"errcode": errcode if errcode is not None else -1, "errmsg": "fake failure"}
            if status == 200
            else {"error": "fake"}
        )
        self._failures.setdefault(path, []).extend([(status, body)] * times)

    def expire_token(self) -> None:
        """The newest token answers 42001 (expired) from now on."""
        self._expired.add(self.tokens_issued[-1])

    def click_code(self, card_id: str = "") -> str:
        """A fresh response code, as WeCom puts in a template_card_event (on the card `card_id`)."""
        code = f"rc-click-{next(self._seq)}"
        self._codes[code] = False
        self.card_of_code[code] = card_id
        return code

    def sign_in_code(self, account: str | None) -> str:
        """A one-time OAuth code for `account`, as the authorize page would hand out."""
        code = f"oauth-{next(self._seq)}-{int(time.time() * 1000) % 100000}"
        self._oauth_codes[code] = (account, time.monotonic())
        return code

    def expire_codes(self) -> None:
        """Every code handed out so far is past its five minutes."""
        self._oauth_codes = {
            code: (account, issued - CODE_TTL_S - 1) for code, (account, issued) in self._oauth_codes.items()
        }

    # -- what happened -----------------------------------------------------------------------
    def cards_to(self, account: str) -> list[dict[str, Any]]:
        return [b for b in self.delivered if b["msgtype"] == "template_card" and b["touser"] == account]

    def texts_to(self, account: str) -> list[str]:
        return [
            b["text"]["content"] for b in self.delivered if b["msgtype"] == "text" and b["touser"] == account
        ]

    def calls(self, path: str) -> list[Recorded]:
        return self.api.calls(path)

    # -- the API -----------------------------------------------------------------------------
    def _failure(self, path: str) -> web.Response | None:
        queue = self._failures.get(path)
        if not queue:
            return None
        status, body = queue.pop(0)
        return web.json_response(body, status=status)

    def _token_error(self, rec: Recorded) -> web.Response | None:
        token = rec.query.get("access_token", "")
        if token not in self.tokens_issued:
            return web.json_response({"errcode": INVALID_TOKEN, "errmsg": "invalid access_token"})
        if token in self._expired:
            return web.json_response({"errcode": EXPIRED_TOKEN, "errmsg": "access_token expired"})
        return None

    async def _gettoken(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if failed := self._failure(request.path):
            return failed
        if rec.query.get("corpid") != self.corp_id or rec.query.get("corpsecret") != self.secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = f"tok-{next(self._seq)}"
        self.tokens_issued.append(token)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def _send(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        self.sending += 1
        try:
            return await self._send_now(request, rec)
        finally:
            self.sending -= 1

    async def _send_now(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if self.send_delay_s:
            await asyncio.sleep(self.send_delay_s)
        if failed := self._failure(request.path):
            return failed
        if bad := self._token_error(rec):
            return bad
        body = rec.json()
        if body.get("agentid") != self.agent_id:
            return web.json_response({"errcode": 40056, "errmsg": "invalid agentid"})
        answer: dict[str, Any] = {
            "errcode": 0,
            "errmsg": "ok",
            "invaliduser": "",
            "msgid": f"msg-{next(self._seq)}",
        }
        if body.get("msgtype") == "template_card":
            task_id = body["template_card"]["task_id"]
            if task_id in self._task_ids:
                return web.json_response({"errcode": FAKE_DUPLICATE_TASK_ID, "errmsg": "task_id exists"})
            self._task_ids.add(task_id)
            code = f"rc-send-{next(self._seq)}"
            self._codes[code] = False
            self.card_of_code[code] = task_id
            answer["response_code"] = code
        if self._is_duplicate(body):
            self.duplicates_dropped.append(body)
            return web.json_response(answer)
        if self._over_limit(str(body.get("touser", ""))):
            self.dropped_over_limit.append(body)
            return web.json_response(answer)
        self.delivered.append(body)
        self.delivered_at.append(time.monotonic())
        return web.json_response(answer)

    def _is_duplicate(self, body: dict[str, Any]) -> bool:
        if body.get("enable_duplicate_check") != 1:
            return False
        key = json.dumps(body, sort_keys=True, ensure_ascii=False)
        now = time.monotonic()
        last = self._recent.get(key)
        if last is not None and now - last < float(body.get("duplicate_check_interval") or 1800):
            return True
        self._recent[key] = now
        return False

    def _over_limit(self, account: str) -> bool:
        if self.per_minute_limit is None:
            return False
        now = time.monotonic()
        recent = sum(
            1
            for b, at in zip(self.delivered, self.delivered_at, strict=True)
            if b.get("touser") == account and now - at < 60.0
        )
        return recent >= self.per_minute_limit

    async def _update(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if failed := self._failure(request.path):
            return failed
        if bad := self._token_error(rec):
            return bad
        body = rec.json()
        code = body.get("response_code", "")
        if self._codes.get(code, True):
            return web.json_response({"errcode": FAKE_BAD_RESPONSE_CODE, "errmsg": "invalid response_code"})
        self._codes[code] = True
        self.updates.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": []})

    async def _user(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if bad := self._token_error(rec):
            return bad
        userid = rec.query.get("userid", "")
        if self.directory is not None:
            return web.json_response(wecom_user_get(self.directory, userid))
        return web.json_response({"errcode": 0, "errmsg": "ok", "userid": userid, "name": userid})

    def _contacts(self, rec: Recorded) -> Company:
        if self.directory is None:
            raise web.HTTPNotFound(text="fake wecom: no directory")
        return self.directory

    async def _department_list(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        return self._token_error(rec) or web.json_response(wecom_department_list(self._contacts(rec)))

    async def _department_get(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        company = self._contacts(rec)
        return self._token_error(rec) or web.json_response(
            wecom_department_get(company, rec.query.get("id", ""))
        )

    async def _user_list_id(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        company = self._contacts(rec)
        return self._token_error(rec) or web.json_response(wecom_list_id(company, rec.json() or {}))

    async def _authorize(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        q = rec.query
        if (
            q.get("appid") != self.corp_id
            or q.get("scope") != "snsapi_base"
            or q.get("response_type") != "code"
        ):
            return web.Response(status=400, text="fake wecom: bad authorize request")
        code = self.sign_in_code(self.signed_in_account)
        back = urlencode({"code": code, "state": q.get("state", "")})
        raise web.HTTPFound(location=f"{q['redirect_uri']}?{back}")

    async def _getuserinfo(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if bad := self._token_error(rec):
            return bad
        found = self._oauth_codes.pop(rec.query.get("code", ""), None)
        if found is None or time.monotonic() - found[1] > CODE_TTL_S:
            return web.json_response({"errcode": INVALID_CODE, "errmsg": "invalid code"})
        account = found[0]
        if account is None:
            return web.json_response(
                {"errcode": 0, "errmsg": "ok", "openid": "o-visitor", "external_userid": ""}
            )
        return web.json_response({"errcode": 0, "errmsg": "ok", "userid": account, "user_ticket": "t"})

    async def _jsapi_ticket(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        """GET /cgi-bin/get_jsapi_ticket: the enterprise's ticket for wx.config, valid 7200 s."""
        if failed := self._failure(request.path):
            return failed
        if bad := self._token_error(rec):
            return bad
        ticket = f"jsticket-{next(self._seq)}"
        self.jsapi_tickets.append(ticket)
        return web.json_response({"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": 7200})


class WeComCallbacks:
    """Builds the encrypted callbacks WeCom POSTs to the service, with wechatpy's WeChatCrypto:
    an implementation independent of oabot's own crypto."""

    def __init__(
        self, token: str, aes_key: str, corp_id: str, agent_id: int, *, now: Callable[[], float] = time.time
    ) -> None:
        self.token, self.corp_id, self.agent_id = token, corp_id, agent_id
        self.now = now  # the signed timestamp's clock: the service's own in process tests
        self._crypto = WeChatCrypto(token, aes_key, corp_id)
        self._nonce = itertools.count(100000)
        self._time = itertools.count(1_795_000_000)  # CreateTime values, one per callback

    def seal(self, inner_xml: str, *, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
        """(query, body) of a POST carrying `inner_xml`, as WeCom sends it (signed now, or at
        `timestamp`)."""
        nonce = str(next(self._nonce))
        ts = str(timestamp if timestamp is not None else int(self.now()))
        reply = xmltodict.parse(self._crypto.encrypt_message(inner_xml, nonce, ts))["xml"]
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><AgentID><![CDATA[{self.agent_id}]]></AgentID>"
            f"<Encrypt><![CDATA[{reply['Encrypt']}]]></Encrypt></xml>"
        )
        return {"msg_signature": reply["MsgSignature"], "timestamp": ts, "nonce": nonce}, body.encode()

    def echostr(self, plaintext: str) -> dict[str, str]:
        """The GET query WeCom sends to verify the callback URL."""
        nonce, ts = str(next(self._nonce)), str(int(self.now()))
        reply = xmltodict.parse(self._crypto.encrypt_message(plaintext, nonce, ts))["xml"]
        return {
            "msg_signature": reply["MsgSignature"],
            "timestamp": ts,
            "nonce": nonce,
            "echostr": reply["Encrypt"],
        }

    def _head(self, account: str, msg_type: str) -> str:
        return (
            f"<ToUserName><![CDATA[{self.corp_id}]]></ToUserName><FromUserName><![CDATA[{account}]]></FromUserName>"
            f"<CreateTime>{next(self._time)}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
        )

    def card_click_xml(self, account: str, task_id: str, key: str, response_code: str) -> str:
        return (
            f"<xml>{self._head(account, 'event')}<Event><![CDATA[template_card_event]]></Event>"
            f"<EventKey><![CDATA[{key}]]></EventKey><TaskId><![CDATA[{task_id}]]></TaskId>"
            f"<CardType><![CDATA[button_interaction]]></CardType><ResponseCode><![CDATA[{response_code}]]></ResponseCode>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    def text_xml(self, account: str, content: str, msg_id: int) -> str:
        return (
            f"<xml>{self._head(account, 'text')}<Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id}</MsgId><AgentID>{self.agent_id}</AgentID></xml>"
        )

    def location_xml(self, account: str, lat: float, lng: float, label: str, msg_id: int) -> str:
        return (
            f"<xml>{self._head(account, 'location')}<Location_X>{lat}</Location_X><Location_Y>{lng}</Location_Y>"
            f"<Scale>15</Scale><Label><![CDATA[{label}]]></Label><MsgId>{msg_id}</MsgId>"
            f"<AgentID>{self.agent_id}</AgentID><AppType><![CDATA[wxwork]]></AppType></xml>"
        )

    def contact_change_xml(self, change: str, *, user: str = "", party: str = "") -> str:
        """A 通讯录变更 event (Event=change_contact) as WeCom sends it from the system."""
        who = f"<UserID><![CDATA[{user}]]></UserID>" if user else f"<Id>{party}</Id>"
        return (
            f"<xml>{self._head('sys', 'event')}<Event><![CDATA[change_contact]]></Event>"
            f"<ChangeType><![CDATA[{change}]]></ChangeType>{who}<Position><![CDATA[随便写的]]></Position></xml>"
        )

    def location_event_xml(self, account: str, lat: float, lng: float, precision: float) -> str:
        return (
            f"<xml>{self._head(account, 'event')}<Event><![CDATA[LOCATION]]></Event><Latitude>{lat}</Latitude>"
            f"<Longitude>{lng}</Longitude><Precision>{precision}</Precision><AgentID>{self.agent_id}</AgentID>"
            f"<AppType><![CDATA[wxwork]]></AppType></xml>"
        )

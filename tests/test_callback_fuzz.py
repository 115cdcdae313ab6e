"""A bounded, seeded fuzz of every HTTP callback (SQLite and PostgreSQL), with real crypto:
WeCom's XML callback sealed by wechatpy, DingTalk's event and card callbacks sealed by
dingtalk-sdk, DingTalk's robot signed with the published formula.

Four families per route: forged (random signatures, random ciphertext), truncated (a sealed body
cut short), oversized, and correctly signed random content (random fields, NUL characters, lone
surrogates, huge numbers, wrong types, nesting). What must hold: no answer is a 5xx; nothing that
is not signed changes anything (inbox, approvals, outbox, check-ins counted before and after);
every signed one is answered 200 or refused with a 4xx; and the inbox worker then processes what
was accepted without a single failure (no row retried, none dead).

The counts are printed (run with -s to see them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from approvals.clock import ManualClock
from bot.app import create_app
from bot.keys import INBOX
from bot.platforms.dingtalk.cards import out_track_id
from bot.platforms.wecom.cards import card_task_id
from storage.approval_models import OutboxRow
from storage.checkin_models import CheckinRow
from storage.db import Database
from storage.platform_models import InboxRow
from tests.conftest import settings_for
from tests.fake_dingtalk import APP_SECRET, card_tap, event_crypto, robot_message
from tests.fake_wecom import WeComCallbacks
from tests.test_dingtalk_callbacks import dingtalk_settings
from tests.test_wecom_callbacks import HEADERS, SEAL, WECOM

SEED = 20261130
PER_FAMILY = 40  # per route and family: 4 routes x 4 families x 40 = 640 requests per database
WECOM_ACCOUNTS = ["wangfang", "sunli", "wuhao", "lina", "nobody", ""]
DINGTALK_STAFF = ["010008", "010001", "010003", "099999", ""]
_PIECES = [
    "待办", "帮助", "同意", "代理", "打卡", "\x00", "\ud800", "\udfff", "<", "&", "]]>", "'", '"', "\\",
    "💥", "a" * 300, "9" * 25, "-1", "1e309", "NaN", " ", "\n", "ａ", "²",
]  # fmt: skip


def text(rng: random.Random, *, xml_safe: bool = False) -> str:
    out = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 4)))
    if xml_safe:  # what an XML sealer can carry at all (no lone surrogates)
        out = out.encode("utf-8", "ignore").decode("utf-8")
    return out


def value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 9 if depth < 3 else 5)
    if kind <= 3:
        return text(rng)
    if kind == 4:
        return rng.choice([0, -1, 10**30, 1.5, True, None])
    if kind == 5:
        return rng.choice(DINGTALK_STAFF)
    if kind <= 7:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {text(rng)[:20]: value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def mutate(rng: random.Random, base: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    if rng.random() < 0.3:
        return out  # as the platform would send it
    for _ in range(rng.randint(1, 4)):
        key = rng.choice([*out.keys(), text(rng)[:10]])
        out[key] = value(rng)
    if rng.random() < 0.2:
        out.pop(rng.choice(list(out)), None)
    return out


class Fuzz:
    def __init__(self, client: Any, clock: ManualClock, task: tuple[str, int]) -> None:
        self.client, self.clock, self.task = client, clock, task
        self.rng = random.Random(SEED)
        self.wecom = WeComCallbacks(
            WECOM.token, WECOM.aes_key, WECOM.corp_id, WECOM.agent_id, now=lambda: clock.now().timestamp()
        )
        self.statuses: Counter[tuple[str, str, int]] = Counter()
        self.robot_ms = int(clock.now().timestamp() * 1000)

    async def post(self, route: str, family: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        resp = await self.client.post(path, data=body, headers=headers)
        await resp.read()
        self.statuses[(route, family, resp.status)] += 1

    # -- WeCom -------------------------------------------------------------------------------------
    def wecom_inner(self) -> str:
        rng = self.rng
        if rng.random() < 0.15:
            return text(rng, xml_safe=True)  # not XML at all
        task_id, version = self.task
        fields = {
            "ToUserName": WECOM.corp_id,
            "FromUserName": rng.choice(WECOM_ACCOUNTS),
            "CreateTime": rng.choice([str(int(self.clock.now().timestamp())), "9" * 20, "²", "", "-5"]),
            "MsgType": rng.choice(["text", "location", "event", "image", "", "x"]),
            "Event": rng.choice(["LOCATION", "template_card_event", "enter_agent", "", "other"]),
            "Content": text(rng, xml_safe=True),
            "MsgId": rng.choice(["1", "9" * 30, text(rng, xml_safe=True)]),
            "Location_X": rng.choice(["31.2", "91", "nan", "1e309", text(rng, xml_safe=True)]),
            "Location_Y": rng.choice(["121.5", "-181", "inf"]),
            "Latitude": rng.choice(["31.2", "x"]),
            "Longitude": rng.choice(["121.5", "1e400"]),
            "Precision": rng.choice(["20", "-1", ""]),
            "TaskId": rng.choice([card_task_id(task_id, version, "u_sun"), text(rng, xml_safe=True)]),
            "EventKey": rng.choice(["approve", "reject", text(rng, xml_safe=True)]),
            "ResponseCode": rng.choice(["rc", "r" * 300, ""]),
        }
        if rng.random() < 0.4:  # a well-formed text or location message from a member
            fields["CreateTime"] = str(int(self.clock.now().timestamp()))
            fields["MsgType"] = rng.choice(["text", "location"])
            fields["FromUserName"] = rng.choice(WECOM_ACCOUNTS[:4])
            fields["MsgId"] = str(rng.randrange(10**12))
            fields["Location_X"], fields["Location_Y"] = "31.2215", "121.5440"
        keep = [k for k in fields if rng.random() < 0.9]
        body = "".join(f"<{k}><![CDATA[{fields[k].replace(']]>', '')}]]></{k}>" for k in keep)
        return f"<xml>{body}</xml>"

    async def wecom_round(self, family: str) -> None:
        rng = self.rng
        query, body = self.wecom.seal(self.wecom_inner())
        if family == "forged":
            if rng.random() < 0.5:
                query = {**query, "msg_signature": hashlib.sha1(rng.randbytes(8)).hexdigest()}
            else:
                junk = base64.b64encode(rng.randbytes(rng.randint(0, 200))).decode()
                body = f"<xml><Encrypt><![CDATA[{junk}]]></Encrypt></xml>".encode()
        elif family == "truncated":
            body = body[: rng.randint(0, len(body) - 1)]
        elif family == "oversized":
            body = b"<xml><Encrypt>" + b"A" * (64 * 1024 + rng.randint(1, 5000)) + b"</Encrypt></xml>"
        await self.post("wecom", family, f"/callbacks/wecom?{urlencode(query)}", body, {})

    # -- DingTalk event and card callbacks ----------------------------------------------------------
    def dingtalk_payload(self, path: str) -> str:
        rng = self.rng
        if rng.random() < 0.15:
            return text(rng)  # not JSON
        if path.endswith("/card"):
            task_id, version = self.task
            track = rng.choice([out_track_id(task_id, version), text(rng)])
            base = card_tap(track, rng.choice(DINGTALK_STAFF), rng.choice(["approve", "reject", "x"]))
            if rng.random() < 0.5:
                base["content"] = json.dumps(value(rng))
        else:
            base = {"EventType": rng.choice(["check_url", "user_add_org", text(rng)])}
        return json.dumps(mutate(rng, base))

    async def dingtalk_round(self, path: str, family: str) -> None:
        rng = self.rng
        ts, nonce = str(int(self.clock.now().timestamp() * 1000)), f"n{rng.randrange(10**9)}"
        plain = self.dingtalk_payload(path).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        sealed = event_crypto().encrypt_message(plain, nonce=nonce, timestamp=ts)
        signature, encrypt = sealed["msg_signature"], sealed["encrypt"]
        body = json.dumps({"encrypt": encrypt}).encode()
        if family == "forged":
            if rng.random() < 0.5:
                signature = hashlib.sha1(rng.randbytes(8)).hexdigest()
            else:
                body = json.dumps({"encrypt": base64.b64encode(rng.randbytes(64)).decode()}).encode()
        elif family == "truncated":
            body = body[: rng.randint(0, len(body) - 1)]
        elif family == "oversized":
            body = json.dumps({"encrypt": "A" * (256 * 1024 + rng.randint(1, 5000))}).encode()
        query = urlencode({"signature": signature, "timestamp": ts, "nonce": nonce})
        headers = {"Content-Type": "application/json"}
        await self.post(path.rsplit("/", 1)[-1], family, f"{path}?{query}", body, headers)

    # -- DingTalk robot -----------------------------------------------------------------------------
    async def robot_round(self, family: str) -> None:
        rng = self.rng
        self.robot_ms -= 1  # every genuine delivery has its own header pair
        ts = str(self.robot_ms)
        sign = base64.b64encode(
            hmac.new(APP_SECRET.encode(), f"{ts}\n{APP_SECRET}".encode(), hashlib.sha256).digest()
        ).decode()
        message = mutate(rng, robot_message(rng.choice(DINGTALK_STAFF), text(rng)))
        body = json.dumps(message).encode()
        if family == "forged":
            sign = base64.b64encode(rng.randbytes(32)).decode()
        elif family == "truncated":  # genuine headers, a body cut short: signed, unreadable
            body = body[: rng.randint(0, len(body) - 1)]
        elif family == "oversized":
            sign = base64.b64encode(rng.randbytes(32)).decode()
            body = b'{"x":"' + b"A" * (256 * 1024 + 10) + b'"}'
        headers = {"timestamp": ts, "sign": sign, "Content-Type": "application/json"}
        await self.post("robot", family, "/callbacks/dingtalk/robot", body, headers)

    async def run(self, family: str) -> None:
        rounds: list[Callable[[], Any]] = [
            lambda: self.wecom_round(family),
            lambda: self.dingtalk_round("/callbacks/dingtalk", family),
            lambda: self.dingtalk_round("/callbacks/dingtalk/card", family),
            lambda: self.robot_round(family),
        ]
        for _ in range(PER_FAMILY):
            for one in rounds:
                await one()


async def state(db: Database) -> dict[str, int]:
    async with db.session() as s:
        counts = {}
        for name, model in (("inbox", InboxRow), ("outbox", OutboxRow), ("checkins", CheckinRow)):
            counts[name] = int((await s.execute(select(func.count()).select_from(model))).scalar_one())
    return counts


@pytest.fixture
async def fuzz(org_db: Database, aiohttp_client: Any, clock: ManualClock) -> Fuzz:
    app = create_app(settings_for(org_db, wecom=WECOM, dingtalk=dingtalk_settings()), clock=clock)
    client = await aiohttp_client(app)
    resp = await client.post(
        "/api/v1/requests", json={"template": "seal_use", "initiator": "u_wu", "form": SEAL}, headers=HEADERS
    )
    assert resp.status == 201
    tasks = await (await client.get("/api/v1/tasks?assignee=u_sun", headers=HEADERS)).json()
    [task] = tasks["items"]
    return Fuzz(client, clock, (task["task_id"], task["version"]))


async def request_state(fuzz: Fuzz) -> Any:
    resp = await fuzz.client.get("/api/v1/tasks?assignee=u_sun", headers=HEADERS)
    return await resp.json()


async def test_fuzzed_callbacks_never_get_a_5xx_and_unsigned_ones_change_nothing(
    fuzz: Fuzz, org_db: Database
) -> None:
    before, tasks_before = await state(org_db), await request_state(fuzz)
    for family in ("forged", "truncated", "oversized"):
        await fuzz.run(family)
    after_unsigned, tasks_after = await state(org_db), await request_state(fuzz)
    await fuzz.run("signed")
    processed = await fuzz.client.app[INBOX].drain()
    async with org_db.session() as s:
        rows = (await s.execute(select(InboxRow.status, InboxRow.attempts))).all()  # type: ignore[call-overload]

    by_family: Counter[str] = Counter()
    for (_, family, status), n in fuzz.statuses.items():
        by_family[f"{family} {status // 100}xx"] += n
    server_errors = sum(n for (_, _, status), n in fuzz.statuses.items() if status >= 500)
    print(  # noqa: T201 - the counts this test reports (pytest -s)
        f"\ncallback fuzz (seed {SEED}): {sum(fuzz.statuses.values())} requests, {server_errors} server errors;",
        dict(sorted(by_family.items())),
        f"unsigned state change: {before} -> {after_unsigned};",
        f"inbox after signed: {dict(Counter(status for status, _ in rows))}, processed {processed}",
    )
    assert server_errors == 0, {k: v for k, v in fuzz.statuses.items() if k[2] >= 500}
    # The truncated robot family carries genuine headers: it is signed, so it may be recorded.
    unsigned_inbox = after_unsigned["inbox"] - before["inbox"]
    assert {**after_unsigned, "inbox": before["inbox"]} == before and tasks_after == tasks_before
    assert unsigned_inbox == fuzz.statuses[("robot", "truncated", 200)]
    assert all(status in ("done", "refused") and attempts == 0 for status, attempts in rows), rows

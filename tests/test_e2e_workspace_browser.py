"""Issue 11's phone workspace end to end, in a real headless Chromium at 390x844 against the real
`oabot serve` process, a fake WeCom (cards, OAuth page, getuserinfo) and a fake DingTalk (JSAPI
stand-in, getuserinfo).

吴昊 submits a 用章申请 through the REST API. 孙丽 opens the 更多操作 link of the card WeCom showed
her (a personal link) and approves on the request page; 王芳 opens the request inside WeCom and is
signed in silently through WeCom's OAuth page, then returns it to 直属领导审批 with an opinion;
孙丽 returns it to 吴昊, who edits the form and resubmits from the same page; 王芳 transfers her
step to 赵敏 with the person picker; 赵敏 opens it inside DingTalk (免登) and adds 钱磊 before
herself. Finally 孙丽 batch-approves three expense claims in 待我处理, one of which she approved on
the API meanwhile: 2 done + 1 already handled. Every page is checked for Chinese words instead of
codes and for no sideways scrolling at 390 px; screenshots land in the test's output directory.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import fake_dingtalk
from tests.browser import CHROMIUM, Browser
from tests.e2e_harness import ServerProcess, base_env, wait_until
from tests.fake_dingtalk import FakeDingTalk
from tests.fake_wecom import FakeWeCom

# Skipped on a developer machine without Chromium; in CI (CI=true) a missing browser fails instead.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)

CORP_ID = "ww0workspace01234567"
AGENT_ID = 1000002
SECRET = "fake-app-secret"
AUTH = {"Authorization": "Bearer e2e-token-0123456789"}
PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
WIDTH = 390
CODES = re.compile(
    r"\b(step_started|step_approved|task_assigned|signer_added|transferred|returned|resubmitted"
    r"|running|approved|pending|seal_use|expense|initiator|None)\b"
)
SEAL = {
    "seal": "公章",
    "reason": "签署与浦东项目总包单位的施工合同",
    "needed_at": "2026-12-02T10:00:00+08:00",
    "files": ["施工合同.pdf", "授权委托书.pdf"],
    "copies": 2,
    "take_out": False,
}


class Phone:
    """The browser on a phone, with the checks every page gets and its screenshots."""

    def __init__(self, browser: Browser, base: str, shots: Path) -> None:
        self.browser, self.base, self.shots = browser, base, shots

    async def open(self, url: str, condition: str) -> None:
        """Open `url` and wait until `condition` holds on a new page (it may redirect on its way)."""
        await self.browser.evaluate("window.__before = true")
        await self.browser.send("Page.navigate", url=url)
        await self.browser.wait_for(
            f"!window.__before && document.readyState === 'complete' && ({condition})"
        )

    async def text(self) -> str:
        return str(await self.browser.evaluate("document.body.innerText"))

    async def check(self, name: str, scroll_to: str | None = None) -> str:
        """The page fits 390 px and reads in words; a screenshot `name`.png; the page's text."""
        if scroll_to:
            await self.browser.evaluate(
                f"document.querySelector({json.dumps(scroll_to)}).scrollIntoView();window.scrollBy(0, -56)"
            )
        width = await self.browser.evaluate("document.documentElement.scrollWidth")
        assert width <= WIDTH, f"{name} scrolls sideways: {width}px"
        text = await self.text()
        assert not CODES.search(text), f"{name} shows a code: {CODES.search(text)}"
        await self.browser.screenshot(str(self.shots / f"{name}.png"))
        return text

    async def act(self, kind: str, fields: dict[str, str], *, task: int = 0) -> str:
        """Fill the `kind` form of the viewer's `task`-th task (or the request's own form) and send
        it; the one-time message the request page shows afterwards."""
        script = f"""(function(){{
          var boxes=document.querySelectorAll('#actions input[name=action][value={kind}]');
          var form=boxes[Math.min({task}, boxes.length-1)].form;
          form.closest('details').open=true;
          var values={json.dumps(fields, ensure_ascii=False)};
          for(var name in values){{
            var el=form.querySelector('[name='+name+']');
            el.value=values[name];
            el.dispatchEvent(new Event('input',{{bubbles:true}}));
            el.dispatchEvent(new Event('change',{{bubbles:true}}));
          }}
          window.__sent=true;
          form.querySelector('button[type=submit]').click();
          return true}})()"""
        await self.browser.evaluate(script)
        await self.browser.wait_for("!window.__sent && document.readyState === 'complete'")
        return str(await self.browser.evaluate("(document.querySelector('.ws-flash')||{}).innerText||''"))

    async def sign_out_of_everything(self, platform_ua: str) -> None:
        await self.browser.send("Network.clearBrowserCookies")
        await self.browser.send("Emulation.setUserAgentOverride", userAgent=f"{PHONE_UA} {platform_ua}")


async def rest(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.request(method, f"{server.base_url}/api/v1{path}", json=body, headers=AUTH)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


async def approve_as(server: ServerProcess, user: str, request_id: str, **extra: str) -> None:
    """`user` decides their pending task on `request_id` through the REST API (a card would do the same)."""
    tasks = (await rest(server, "GET", f"/tasks?assignee={user}"))["items"]
    [task] = [t for t in tasks if t["request_id"] == request_id]
    body = {"action": "approve", "actor": user, "task_id": task["task_id"], "version": task["version"]}
    await rest(server, "POST", f"/requests/{request_id}/actions", {**body, **extra})


async def card_link(wecom: FakeWeCom, account: str, request_id: str, index: int = 0) -> str:
    """The 更多操作 link of the `index`-th card `account` got for `request_id`."""

    def cards() -> list[dict[str, Any]]:
        return [
            c["template_card"]
            for c in wecom.cards_to(account)
            if c["template_card"]["task_id"].startswith(f"oa_{request_id}-")
        ]

    found = await wait_until(lambda: len(cards()) > index and cards())
    more = found[index]["button_list"][-1]
    assert more["text"] == "更多操作" and more["type"] == 1
    return str(more["url"])


def trail(text: str) -> str:
    return text[text.index("处理记录") :]


async def test_a_request_travels_through_the_phone_workspace(tmp_path: Path) -> None:
    wecom = await FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID).start()
    dingtalk = await FakeDingTalk().start()
    env = base_env(
        f"sqlite+aiosqlite:///{tmp_path}/workspace.db",
        OABOT_WECOM_CORP_ID=CORP_ID,
        OABOT_WECOM_AGENT_ID=str(AGENT_ID),
        OABOT_WECOM_SECRET=SECRET,
        OABOT_WECOM_TOKEN="workspaceCallbackToken",
        OABOT_WECOM_AES_KEY="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        OABOT_WECOM_API_BASE=wecom.base_url,
        OABOT_WECOM_OAUTH_BASE=wecom.base_url,
        OABOT_DINGTALK_CORP_ID=fake_dingtalk.CORP_ID,
        OABOT_DINGTALK_JSAPI_URL=f"{dingtalk.base_url}{fake_dingtalk.JSAPI}",
        **fake_dingtalk.dingtalk_env(dingtalk),
    )
    try:
        async with ServerProcess(env, tmp_path) as server, Browser() as browser:
            await browser.emulate_phone(WIDTH, 844)
            phone = Phone(browser, server.base_url, tmp_path)
            req = await rest(
                server, "POST", "/requests", {"template": "seal_use", "initiator": "u_wu", "form": SEAL}
            )
            scene = Scene(phone, server, wecom, dingtalk, req["id"])
            await read_and_return(scene)
            await resubmit(scene)
            await transfer_and_add_signer(scene)
            await stranger(scene)
            await batch(phone, server, wecom)
    finally:
        await dingtalk.stop()
        await wecom.stop()


@dataclass
class Scene:
    """The one 用章申请 `rid` and everything its people use."""

    phone: Phone
    server: ServerProcess
    wecom: FakeWeCom
    dingtalk: FakeDingTalk
    rid: str

    @property
    def page(self) -> str:
        """The browser shows this request's page."""
        return f"location.pathname === '/m/r/{self.rid}'"

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/m/r/{self.rid}"


async def read_and_return(scene: Scene) -> None:
    """孙丽 approves from her card's link; 王芳, signed in through WeCom's OAuth, returns it to step 1."""
    phone, wecom, rid, page = scene.phone, scene.wecom, scene.rid, scene.page
    # 孙丽 taps 更多操作 on her WeCom card: the personal link signs her in and opens the request.
    await phone.sign_out_of_everything("wxwork/4.1.0")
    link = await card_link(wecom, "sunli", rid)
    assert link.startswith(f"{scene.server.base_url}/m/l/")
    await phone.open(link, page)
    text = await phone.check("01-card-link-request")
    assert "用章申请" in text and "施工合同.pdf" in text and "印章管理部门负责人审批" in text
    assert "「直属领导审批」等待您处理" in text
    assert await phone.act("approve", {"comment": "同意用印"}) == "已提交：同意"

    # 王芳 opens it inside WeCom: signed in silently through WeCom's OAuth page, she reads it ...
    await phone.sign_out_of_everything("wxwork/4.1.0")
    wecom.signed_in_account = "wangfang"
    await phone.open(scene.url, page)
    assert len(wecom.calls("/connect/oauth2/authorize")) == 1
    assert len(wecom.calls("/cgi-bin/auth/getuserinfo")) == 1
    text = await phone.check("02-oauth-sign-in-request")
    assert "当前等待" in text and "王芳 处理「印章管理部门负责人审批」" in text
    assert "同意用印" in trail(text)
    # ... and returns it to the first step with her opinion.
    flash = await phone.act("return", {"target": "0", "comment": "用印份数与合同份数不一致，请再核对"})
    assert flash.startswith("已退回"), flash
    text = await phone.check("03-returned-to-an-earlier-step", scroll_to=".ws-trail")
    assert "王芳 退回到「直属领导审批」" in trail(text) and "用印份数与合同份数不一致" in trail(text)


async def resubmit(scene: Scene) -> None:
    """孙丽 returns it to 吴昊, who edits the form and resubmits on the same page."""
    phone, server, rid = scene.phone, scene.server, scene.rid
    # 孙丽 sends it back to 吴昊 (on the API, as a card would); he edits and resubmits on the page.
    tasks = (await rest(server, "GET", "/tasks?assignee=u_sun"))["items"]
    [task] = [t for t in tasks if t["request_id"] == rid]
    await rest(
        server,
        "POST",
        f"/requests/{rid}/actions",
        {
            "action": "return",
            "actor": "u_sun",
            "task_id": task["task_id"],
            "version": task["version"],
            "target": "initiator",
            "comment": "请补充合同编号",
        },
    )
    await phone.sign_out_of_everything("wxwork/4.1.0")
    scene.wecom.signed_in_account = "wuhao"
    await phone.open(scene.url, scene.page)
    text = await phone.check("04-initiator-edits", scroll_to="#actions")
    assert "修改后重新提交" in text and "请补充合同编号" in text
    flash = await phone.act(
        "resubmit",
        {
            "reason": "签署与浦东项目总包单位的施工合同（合同编号 HT-2026-118）",
            "copies": "3",
            "comment": "已补充合同编号",
        },
    )
    assert flash, "no message after resubmitting"
    text = await phone.check("05-resubmitted")
    assert "HT-2026-118" in text and "审批中" in text and "孙丽 处理「直属领导审批」" in text
    assert "已补充合同编号" in trail(text) and "孙丽（经集成 bootstrap） 退回到发起人" in trail(text)
    assert trail(text).count("请补充合同编号") == 1  # the return, not again as the request's 已退回


async def transfer_and_add_signer(scene: Scene) -> None:
    """王芳 transfers her step to 赵敏, who signs in through DingTalk and adds 钱磊 before herself."""
    phone, rid, page = scene.phone, scene.rid, scene.page
    # 孙丽 approves again; 王芳 opens her new card and transfers her step to 赵敏 with the picker.
    await approve_as(scene.server, "u_sun", rid)
    link = await card_link(scene.wecom, "wangfang", rid, index=1)
    await phone.open(link, page)
    await phone.browser.evaluate(
        "(function(){var f=document.querySelector('#actions input[name=action][value=transfer]').form;"
        "f.closest('details').open=true;var s=f.querySelector('.ws-pick-search');s.value='赵';"
        "s.dispatchEvent(new Event('input'));f.closest('details').scrollIntoView();window.scrollBy(0,-56);"
        "return true})()"
    )
    assert (
        await phone.browser.evaluate(
            "document.querySelector('#actions input[name=action][value=transfer]').form.querySelector('select').value"
        )
        == "u_zhao"
    )
    await phone.check("06-transfer-picker")
    assert await phone.act("transfer", {"target": "u_zhao", "comment": "这份合同由赵敏跟进"}) == "已转交"
    text = await phone.check("07-transferred", scroll_to=".ws-trail")
    assert "转交：赵敏" in trail(text) and "赵敏 处理「印章管理部门负责人审批」" in text

    # 赵敏 opens it inside DingTalk: 免登 signs her in; she adds 钱磊 before herself.
    await phone.sign_out_of_everything("DingTalk/7.5.0")
    scene.dingtalk.signed_in_staff = "010006"
    await phone.open(scene.url, page)
    assert len(scene.dingtalk.api.calls(fake_dingtalk.GETUSERINFO)) == 1
    text = await phone.check("08-dingtalk-sign-in-request")
    assert "「印章管理部门负责人审批」等待您处理" in text
    flash = await phone.act(
        "add_signer", {"position": "before", "target": "u_qian", "comment": "请财务先核对合同金额"}
    )
    assert flash.startswith("已加签"), flash
    text = await phone.check("09-signer-added", scroll_to=".ws-trail")
    assert "前加签：钱磊" in trail(text) and "请财务先核对合同金额" in trail(text)
    assert "钱磊 处理「印章管理部门负责人审批」" in text


async def stranger(scene: Scene) -> None:
    """Someone with no reason to see the request gets a 403 page that says so."""
    await scene.phone.sign_out_of_everything("wxwork/4.1.0")
    scene.wecom.signed_in_account = "zhoujie"
    await scene.phone.open(scene.url, "!!document.body")
    text = await scene.phone.check("10-not-yours")
    assert "您无权查看" in text


async def batch(phone: Phone, server: ServerProcess, wecom: FakeWeCom) -> None:
    """孙丽 batch-approves three claims; one was approved on the API after the list was shown."""
    claims = [
        ("差旅费", 860, "上海出差往返高铁"),
        ("招待费", 2400, "客户晚宴"),
        ("交通费", 95.5, "打车去客户现场"),
    ]
    ids = []
    for category, amount, reason in claims:
        form = {"category": category, "amount": amount, "reason": reason, "invoice_count": 2}
        created = await rest(
            server, "POST", "/requests", {"template": "expense", "initiator": "u_wu", "form": form}
        )
        ids.append(created["id"])
    await phone.sign_out_of_everything("wxwork/4.1.0")
    await phone.open(await card_link(wecom, "sunli", ids[0]), f"location.pathname === '/m/r/{ids[0]}'")
    await phone.open(f"{server.base_url}/m/todo", "!!document.querySelector('button[data-batch]')")
    text = await phone.check("11-todo")
    assert "待我处理" in text and "批量同意" in text and "招待费" in text
    assert await phone.browser.evaluate("document.querySelectorAll('input[name=t]').length") == 3

    await approve_as(server, "u_sun", ids[1], comment="在卡片上同意")
    await phone.browser.evaluate(
        "(function(){var boxes=document.querySelectorAll('input[name=t]');"
        "for(var i=0;i<boxes.length;i++){boxes[i].checked=true}"
        "document.querySelector('textarea[name=opinion]').value='同意，按标准报销';"
        "document.querySelector('button[data-batch]').click();return true})()"
    )
    await phone.browser.wait_for("location.pathname === '/m/batch' && document.readyState === 'complete'")
    text = await phone.check("12-batch-result")
    summary = await phone.browser.evaluate("document.querySelector('.bt-sum').innerText")
    assert "2 条已同意" in summary and "1 条已处理" in summary, summary
    outcomes = await phone.browser.evaluate(
        "Array.prototype.map.call(document.querySelectorAll('[data-outcome]'),"
        "function(e){return e.getAttribute('data-outcome')}).sort().join(',')"
    )
    assert outcomes == "already_handled,approved,approved"
    for rid in ids:
        view = await rest(server, "GET", f"/requests/{rid}")
        decided = [e for e in view["trail"] if e["kind"] == "approved" and e["actor"] == "u_sun"]
        assert len(decided) == 1, (rid, view["trail"])

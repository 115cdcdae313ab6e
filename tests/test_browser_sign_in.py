"""In a real headless Chromium at 390x844: signing in to the real `oabot serve` process through a
fake DingTalk (its JSAPI script stands in for dingtalk.open.js) and a fake WeCom (its OAuth page
sends the browser straight back), then the demo's person picker. Screenshots of every page land
in the test's output directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests import fake_dingtalk
from tests.browser import CHROMIUM, Browser
from tests.e2e_harness import ServerProcess, base_env
from tests.fake_dingtalk import FakeDingTalk
from tests.fake_wecom import FakeWeCom

# Skipped on a developer machine without Chromium; in CI (CI=true) a missing browser fails instead.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)

CORP_ID = "ww0browser0123456789"
AGENT_ID = 1000002
SECRET = "fake-app-secret"
PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


async def open_until(browser: Browser, url: str, condition: str) -> None:
    """Open `url` and wait until `condition` holds (the page may redirect on its way)."""
    await browser.send("Page.navigate", url=url)
    await browser.wait_for(f"document.readyState === 'complete' && ({condition})")


async def test_dingtalk_and_wecom_sign_in_in_chromium(tmp_path: Path) -> None:
    dingtalk = await FakeDingTalk().start()
    wecom = await FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID).start()
    env = base_env(
        f"sqlite+aiosqlite:///{tmp_path}/sign-in.db",
        OABOT_CONSOLE="1",
        OABOT_DINGTALK_CORP_ID=fake_dingtalk.CORP_ID,
        OABOT_DINGTALK_JSAPI_URL=f"{dingtalk.base_url}{fake_dingtalk.JSAPI}",
        OABOT_WECOM_CORP_ID=CORP_ID,
        OABOT_WECOM_AGENT_ID=str(AGENT_ID),
        OABOT_WECOM_SECRET=SECRET,
        OABOT_WECOM_TOKEN="browserCallbackToken",
        OABOT_WECOM_AES_KEY="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        OABOT_WECOM_API_BASE=wecom.base_url,
        OABOT_WECOM_OAUTH_BASE=wecom.base_url,
        **fake_dingtalk.dingtalk_env(dingtalk),
    )
    try:
        async with ServerProcess(env, tmp_path) as server, Browser() as browser:
            base = server.base_url
            assert "requires an org admin" in server.logs()
            await browser.emulate_phone()
            console = json.dumps(f"{base}/console")

            # Inside DingTalk, but DingTalk gives no code: the page says what to do.
            await browser.send("Emulation.setUserAgentOverride", userAgent=f"{PHONE_UA} DingTalk/7.5.0")
            await open_until(
                browser,
                f"{base}/m/sign-in?next=/console",
                "document.getElementById('sign-in-status').getAttribute('data-phase') === 'failed'",
            )
            assert "登录码" in await browser.evaluate("document.getElementById('sign-in-status').textContent")
            assert await browser.evaluate(NO_SIDEWAYS_SCROLL)
            await browser.screenshot(str(tmp_path / "sign_in_dingtalk_no_code.png"))

            # 赵敏 (hr_manager, an org admin) in DingTalk: signed in silently, the console opens.
            dingtalk.signed_in_staff = "010006"
            await open_until(browser, f"{base}/m/sign-in?next=/console", f"location.href === {console}")
            assert "选择" in await browser.evaluate("document.body.innerText")
            await browser.screenshot(str(tmp_path / "console_after_dingtalk.png"))
            exchanged = dingtalk.api.calls(fake_dingtalk.GETUSERINFO)
            assert len(exchanged) == 1 and exchanged[0].json()["code"].startswith("ac")

            # In WeCom as 孙丽, not an admin: the console refuses her, in Chinese.
            await browser.send("Network.clearBrowserCookies")
            await browser.send("Emulation.setUserAgentOverride", userAgent=f"{PHONE_UA} wxwork/4.1.0")
            wecom.signed_in_account = "sunli"
            # (a browser keeps WeCom's #wechat_redirect across the redirects back: compare without it)
            await open_until(browser, f"{base}/console", f"location.origin + location.pathname === {console}")
            assert "只对管理员开放" in await browser.evaluate("document.body.innerText")
            assert await browser.evaluate(NO_SIDEWAYS_SCROLL)
            await browser.screenshot(str(tmp_path / "console_refused_in_wecom.png"))
            assert len(wecom.api.calls("/connect/oauth2/authorize")) == 1

            # Someone WeCom knows but the org file does not.
            await browser.send("Network.clearBrowserCookies")
            wecom.signed_in_account = "stranger"
            await open_until(
                browser, f"{base}/m/sign-in?next=/console", "!!document.getElementById('problem')"
            )
            assert "通讯录" in await browser.evaluate("document.getElementById('problem').textContent")
            await browser.screenshot(str(tmp_path / "sign_in_not_in_directory.png"))
    finally:
        await wecom.stop()
        await dingtalk.stop()


async def test_demo_person_picker_in_chromium(tmp_path: Path) -> None:
    env = base_env(f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    async with ServerProcess(env, tmp_path, args=("--demo",)) as server, Browser() as browser:
        base = server.base_url
        await browser.emulate_phone()
        await open_until(
            browser, f"{base}/m/sign-in?next=/console", "!!document.querySelector('.sign-in-people')"
        )
        assert await browser.evaluate(NO_SIDEWAYS_SCROLL)
        await browser.screenshot(str(tmp_path / "sign_in_demo_picker.png"))
        await browser.evaluate("document.querySelector('.sign-in-people button[value=u_sun]').click()")
        await browser.wait_for(f"location.href === {json.dumps(base + '/console')}")
        await open_until(browser, f"{base}/", f"location.href === {json.dumps(base + '/console')}")

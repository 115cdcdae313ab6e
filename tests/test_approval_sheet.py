"""The printable approval sheet 审批单: the PDF of an approved seal request shows its Chinese text
in an embedded CJK font and is not blank, its QR code carries the verification URL, the
verification page says 一致 until the trail grows, and only people who may open the request
(and the office, from the desk) get its sheet. The rendered page is left as sheet.png in the
test's output directory."""

from __future__ import annotations

import asyncio
import io
import os
import re
from pathlib import Path
from typing import Any

import pdfplumber
import pypdfium2 as pdfium
import pytest
from aiohttp import ClientSession, web

from approvals.engine import Action
from approvals.model import ActionKind, RequestStatus, TaskStatus
from bot.app import create_app
from bot.cli import main
from bot.keys import SESSIONS, WORKFLOW
from reports.sheet import (
    PAGE_WIDTH,
    CjkFontMissing,
    Sheet,
    SheetRow,
    SheetStep,
    find_cjk_font,
    qr_matrix,
    render_sheet,
    sheet_digest,
    verify_path,
    verify_url,
)
from services.approval_views import RequestView
from tests.browser import CHROMIUM, Browser
from tests.conftest import settings_for
from tests.test_workspace_request import SEAL

PUBLIC = "https://oa.example.cn"
OFFICE = "u_zhao"  # hr_manager: the demo org's office role
OUTSIDER = "u_zheng"  # field staff with no part in a seal request
OPINION = "同意用印，注意登记"
PT_PER_MM = 72 / 25.4


async def _app(org_db: Any, aiohttp_client: Any, clock: Any) -> tuple[web.Application, Any]:
    app = create_app(settings_for(org_db, public_url=PUBLIC), clock=clock)
    return app, await aiohttp_client(app)


async def _cookie(app: web.Application, user: str) -> dict[str, str]:
    session = await app[SESSIONS].start(user, via="test")
    return {"Cookie": f"oabot_session={session.id}"}


async def _approved_seal(app: web.Application) -> RequestView:
    """A seal request every approver has approved (the first with an opinion)."""
    wf = app[WORKFLOW]
    req = await wf.submit(template_key="seal_use", initiator="u_wu", form=SEAL)
    for _ in range(10):
        view = await wf.get(req.id)
        if view.status != RequestStatus.RUNNING:
            break
        task = next(t for s in view.steps for t in s.tasks if t.status == TaskStatus.PENDING)
        comment = OPINION if task.assignee == "u_sun" else None
        await wf.act(
            request_id=req.id,
            action=Action(
                ActionKind.APPROVE,
                actor=task.assignee,
                task_id=task.id,
                version=task.version,
                comment=comment,
            ),
        )
    view = await wf.get(req.id)
    assert view.status == RequestStatus.APPROVED
    return view


def _approver_names(view: RequestView) -> list[str]:
    return [t.assignee_name for s in view.steps for t in s.tasks if t.status == TaskStatus.APPROVED]


def _text(pdf: bytes) -> str:
    doc = pdfium.PdfDocument(pdf)
    return "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))


def _digest_in(text: str) -> str:
    found = re.search(r"核验码：([0-9a-f]{32})", text)
    assert found, text
    return found.group(1)


async def _sheet(client: Any, app: web.Application, request_id: str, user: str) -> bytes:
    resp = await client.get(f"/m/r/{request_id}/sheet.pdf", headers=await _cookie(app, user))
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/pdf"
    return await resp.read()


# -- the PDF ----------------------------------------------------------------------------------
async def test_sheet_of_an_approved_seal_request_shows_its_chinese_text(
    org_db: Any, aiohttp_client: Any, clock: Any, tmp_path: Path
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    view = await _approved_seal(app)
    pdf = await _sheet(client, app, view.id, "u_wu")

    text = _text(pdf)
    names = _approver_names(view)
    assert len(names) == 5
    for words in (
        "用章申请审批单",
        "印章名称",
        "公章",
        "用印文件",
        "框架合同.pdf、补充协议.pdf",
        OPINION,
        "已交付",
    ):
        assert words in text, words
    for name in (*names, view.initiator_name):
        assert name in text, name
    assert "文号" not in text  # a seal request has no document number: no empty row
    assert b"+NotoSansCJKSC" in pdf  # the Simplified Chinese face, embedded (subset)

    page = pdfium.PdfDocument(pdf)[0].render(scale=2).to_pil().convert("L")
    page.save(tmp_path / "sheet.png")
    dark = sum(page.histogram()[:128])
    assert dark > 0.01 * page.width * page.height, "the rendered page is (almost) blank"


async def test_the_qr_code_encodes_the_verification_url(org_db: Any, aiohttp_client: Any, clock: Any) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    view = await _approved_seal(app)
    pdf = await _sheet(client, app, view.id, "u_wu")
    digest = _digest_in(_text(pdf))
    url = verify_url(PUBLIC, view.id, digest)
    assert url == f"https://oa.example.cn/verify/{view.id}/{digest}"
    assert url in _text(pdf).replace("\r\n", "")

    expected = qr_matrix(url)
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        modules = [r for r in doc.pages[0].rects if r["x0"] > PAGE_WIDTH * PT_PER_MM / 2 and r["width"] < 10]
    side = min(r["width"] for r in modules)
    left, top = min(r["x0"] for r in modules), min(r["top"] for r in modules)
    drawn = {(round((r["top"] - top) / side), round((r["x0"] - left) / side)) for r in modules}
    dark = [(y, x) for y, row in enumerate(expected) for x, on in enumerate(row) if on]
    y0, x0 = min(y for y, _ in dark), min(x for _, x in dark)
    assert drawn == {(y - y0, x - x0) for y, x in dark}


def _pure_sheet(**changes: Any) -> Sheet:
    facts: dict[str, Any] = {
        "request_id": "r_1",
        "title": "发文 · 关于做好冬季安全生产的通知",
        "template_name": "发文审批",
        "status": "已通过",
        "initiator": "吴敏",
        "created_at": "2026-11-23 10:00",
        "finished_at": "2026-11-24 16:30",
        "doc_number": "应急〔2026〕12号",
        "fields": (SheetRow("文件标题", "关于做好冬季安全生产的通知"),),
        "steps": (SheetStep("领导签发", "张伟", "签发", "", "2026-11-24 16:00"),),
        "trail_head": "9:abc",
    }
    return Sheet(**{**facts, **changes})


def test_the_document_number_is_printed_when_there_is_one() -> None:
    sheet = _pure_sheet()
    pdf = render_sheet(sheet, font=find_cjk_font(), verify=verify_url(PUBLIC, "r_1", "x"), printed_at="now")
    assert "文号" in _text(pdf) and "应急〔2026〕12号" in _text(pdf)
    assert sheet_digest(sheet) != sheet_digest(_pure_sheet(trail_head="10:def"))
    assert sheet_digest(sheet) != sheet_digest(_pure_sheet(doc_number="应急〔2026〕13号"))
    assert verify_path("r_1", "ab") == "/verify/r_1/ab"


def test_no_cjk_font_says_what_to_install(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    with pytest.raises(CjkFontMissing, match="fonts-noto-cjk"):
        find_cjk_font(candidates=[str(tmp_path / "none.ttc")])
    with pytest.raises(CjkFontMissing, match="fonts-noto-cjk"):
        find_cjk_font(str(tmp_path / "missing.otf"))


# -- verification -----------------------------------------------------------------------------
async def test_verification_says_matches_until_the_trail_grows(
    org_db: Any, aiohttp_client: Any, clock: Any
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    view = await _approved_seal(app)
    digest = _digest_in(_text(await _sheet(client, app, view.id, "u_wu")))
    path = f"/verify/{view.id}/{digest}"

    page = await (await client.get(path)).text()  # anonymous: the answer, title and date only
    assert "与当前记录一致" in page and "不一致" not in page
    assert "公章 用章" in page and "2026-11-23" in page
    assert "框架合同.pdf" not in page and OPINION not in page
    page = await (await client.get(path, headers=await _cookie(app, "u_wu"))).text()
    assert "与当前记录一致" in page and "框架合同.pdf" in page and OPINION in page
    page = await (await client.get(path, headers=await _cookie(app, OUTSIDER))).text()
    assert "与当前记录一致" in page and "框架合同.pdf" not in page

    await app[WORKFLOW].act(
        request_id=view.id, action=Action(ActionKind.COMMENT, actor="u_wu", comment="印章已归还")
    )
    page = await (await client.get(path)).text()
    assert "与当前记录不一致" in page and "公章 用章" not in page  # strangers learn nothing more
    page = await (await client.get(path, headers=await _cookie(app, "u_wu"))).text()
    assert "与当前记录不一致" in page and "公章 用章" in page and "印章已归还" in page
    reprinted = _text(await _sheet(client, app, view.id, "u_wu"))
    assert "评论" in reprinted and "印章已归还" in reprinted
    fresh = _digest_in(reprinted)
    assert fresh != digest
    assert "与当前记录一致" in await (await client.get(f"/verify/{view.id}/{fresh}")).text()
    for wrong in ("0" * 32, "核验码", "%00", "x" * 2000):  # wrong, mangled or absurd: 不一致, never 500
        resp = await client.get(f"/verify/{view.id}/{wrong}")
        assert resp.status == 200 and "与当前记录不一致" in await resp.text(), wrong
    resp = await client.get(f"/verify/r_nope/{fresh}")
    assert resp.status == 404 and "没有找到" in await resp.text()


# -- who gets it ------------------------------------------------------------------------------
async def test_only_people_who_may_open_the_request_get_its_sheet(
    org_db: Any, aiohttp_client: Any, clock: Any
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    view = await _approved_seal(app)
    for user in ("u_wu", "u_chen", OFFICE):  # initiator, an approver, the office (admin role)
        assert (await _sheet(client, app, view.id, user)).startswith(b"%PDF")
    resp = await client.get(f"/m/r/{view.id}/sheet.pdf", headers=await _cookie(app, OUTSIDER))
    assert resp.status == 403 and "无权查看" in await resp.text()
    resp = await client.get(f"/m/r/{view.id}/sheet.pdf", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/m/sign-in")
    resp = await client.get("/m/r/r_nope/sheet.pdf", headers=await _cookie(app, "u_wu"))
    assert resp.status == 404

    resp = await client.get(f"/admin/requests/{view.id}/sheet.pdf", headers=await _cookie(app, OFFICE))
    assert resp.status == 200 and (await resp.read()).startswith(b"%PDF")
    resp = await client.get(f"/admin/requests/{view.id}/sheet.pdf", headers=await _cookie(app, "u_wu"))
    assert resp.status == 403

    page = await (await client.get(f"/m/r/{view.id}", headers=await _cookie(app, "u_wu"))).text()
    assert f'href="/m/r/{view.id}/sheet.pdf">打印审批单' in page


async def test_a_running_request_has_no_sheet_yet(org_db: Any, aiohttp_client: Any, clock: Any) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await app[WORKFLOW].submit(template_key="seal_use", initiator="u_wu", form=SEAL)
    resp = await client.get(f"/m/r/{req.id}/sheet.pdf", headers=await _cookie(app, "u_wu"))
    assert resp.status == 409
    assert "申请尚未结束（审批中），结束后才能打印审批单" in await resp.text()
    page = await (await client.get(f"/m/r/{req.id}", headers=await _cookie(app, "u_wu"))).text()
    assert "打印审批单" not in page
    resp = await client.get(f"/verify/{req.id}/{'0' * 32}")
    assert resp.status == 404


# -- the command line -------------------------------------------------------------------------
async def test_the_cli_writes_the_same_sheet(
    org_db: Any, aiohttp_client: Any, clock: Any, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    view = await _approved_seal(app)
    web_digest = _digest_in(_text(await _sheet(client, app, view.id, "u_wu")))
    settings = settings_for(org_db, public_url=PUBLIC)
    monkeypatch.setenv("OABOT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("OABOT_PUBLIC_URL", PUBLIC)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "sheet.pdf"
    assert await _in_thread(main, ["sheet", view.id, "--out", str(out)]) == 0
    assert _digest_in(_text(out.read_bytes())) == web_digest
    assert await _in_thread(main, ["sheet", view.id, "--out", str(out), "--font", "/no/such.ttc"]) == 2
    assert "fonts-noto-cjk" in capsys.readouterr().err


async def _in_thread(fn: Any, *args: Any) -> Any:
    # the CLI runs its own event loop (asyncio.run), which cannot nest in the test's
    return await asyncio.to_thread(fn, *args)


# -- on a phone -------------------------------------------------------------------------------
@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium is not installed")
async def test_the_verification_page_on_a_phone(
    org_db: Any, aiohttp_server: Any, clock: Any, tmp_path: Path
) -> None:
    app = create_app(settings_for(org_db, public_url=PUBLIC), clock=clock)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    view = await _approved_seal(app)
    async with ClientSession() as http:
        async with http.get(f"{base}/m/r/{view.id}/sheet.pdf", headers=await _cookie(app, "u_wu")) as resp:
            digest = _digest_in(_text(await resp.read()))
    wu = await app[SESSIONS].start("u_wu", via="test")
    async with Browser() as browser:
        await browser.emulate_phone(390, 844)
        await browser.navigate(f"{base}/verify/{view.id}/{digest}")
        text = await browser.evaluate("document.body.innerText")
        assert "与当前记录一致" in text and "框架合同.pdf" not in text
        assert await browser.evaluate("document.documentElement.scrollWidth") <= 390
        await browser.screenshot(str(tmp_path / "verify-anonymous.png"))
        await browser.send("Network.setCookie", name="oabot_session", value=wu.id, url=base)
        await browser.navigate(f"{base}/verify/{view.id}/{digest}")
        text = await browser.evaluate("document.body.innerText")
        assert "与当前记录一致" in text and "框架合同.pdf" in text and OPINION in text
        assert await browser.evaluate("document.documentElement.scrollWidth") <= 390
        await browser.screenshot(str(tmp_path / "verify-initiator.png"))
        await browser.navigate(f"{base}/m/r/{view.id}")
        assert "打印审批单" in await browser.evaluate("document.body.innerText")
        await browser.screenshot(str(tmp_path / "request-finished.png"))
        await app[WORKFLOW].act(
            request_id=view.id, action=Action(ActionKind.COMMENT, actor="u_wu", comment="印章已归还")
        )
        await browser.navigate(f"{base}/verify/{view.id}/{digest}")
        assert "与当前记录不一致" in await browser.evaluate("document.body.innerText")
        await browser.screenshot(str(tmp_path / "verify-changed.png"))

"""The office's org chart, templates and calendar on the desk:

- `/admin/org`: the department tree with leaders, deputies, levels and roles, who is inactive,
  search by name or id; `POST /admin/org/import` previews an uploaded org file (every change and
  every problem, nothing written); `POST /admin/org/import/apply` imports the previewed text.
- `/admin/templates`: every template with its route drawn as SVG, built-in or not, and the
  problems `oabot templates validate` finds.
- `/admin/calendar?year=`: the year's working days, holidays and 调休 days as month grids;
  `POST /admin/calendar/overrides` sets an override, `.../remove` removes one (each re-plans
  pending deadlines through `services.calendar.CalendarService`).

HTTP only: every rule lives in the services called.
"""

from __future__ import annotations

import calendar as month_calendar
from datetime import date
from typing import Any

from aiohttp import web
from markupsafe import Markup

from bot.keys import CLOCK, DB, DEADLINES, SETTINGS, WORKFLOW
from bot.web.admin.gate import office, refused, render
from bot.web.identity import CSRF_FIELD, check_csrf, csrf_token
from org.model import Org, User
from reports.charts import route_diagram
from services.calendar import CalendarService, OverrideKind, OverrideNotFound
from services.desk_admin import MAX_ORG_FILE, OrgFileError, OrgImports, template_overview
from services.stats import OrgNotImported

KIND_WORDS = {OverrideKind.HOLIDAY: "调休放假（额外休息日）", OverrideKind.WORKDAY: "调休上班（额外工作日）"}
WEEKDAYS = "一二三四五六日"
FIELD_WORDS = {
    "name": "姓名",
    "title": "职务",
    "department": "部门",
    "manager": "上级",
    "roles": "角色",
    "level": "级别",
    "accounts": "平台账号",
}


async def _form_context(request: web.Request, me: User, title: str) -> dict[str, Any]:
    return {
        "title": title,
        "me": me,
        "csrf": await csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "field_words": FIELD_WORDS,
    }


# -- org --------------------------------------------------------------------------------------------
def _matches(user: User, needle: str) -> bool:
    return needle in user.name or needle.lower() in user.id.lower()


def org_tree(org: Org) -> list[dict[str, Any]]:
    """Departments in tree order (depth first), each with its members, heads first."""
    children: dict[str | None, list[str]] = {}
    for d in sorted(org.departments.values(), key=lambda d: d.id):
        parent = d.parent if d.parent in org.departments else None
        children.setdefault(parent, []).append(d.id)
    members: dict[str, list[User]] = {}
    for u in sorted(org.users.values(), key=lambda u: (not u.active, u.id)):
        members.setdefault(u.department, []).append(u)
    out: list[dict[str, Any]] = []

    def walk(dept_id: str, depth: int) -> None:
        d = org.departments[dept_id]
        out.append({"dept": d, "depth": depth, "members": members.get(dept_id, [])})
        for child in children.get(dept_id, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return out


async def org_page(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    try:
        org = await request.app[WORKFLOW].org(fresh=True)
    except OrgNotImported:
        return render(
            request, "admin/org.html", {**await _form_context(request, me, "组织架构"), "org": None}
        )
    needle = request.query.get("q", "").strip()[:50]
    found = (
        sorted((u for u in org.users.values() if _matches(u, needle)), key=lambda u: u.id) if needle else []
    )
    context = {
        **await _form_context(request, me, "组织架构"),
        "org": org,
        "tree": org_tree(org),
        "q": needle,
        "found": found,
        "inactive": sorted((u for u in org.users.values() if not u.active), key=lambda u: u.id),
        "imported": request.query.get("imported") == "1",
    }
    return render(request, "admin/org.html", context)


def _imports(app: web.Application) -> OrgImports:
    return OrgImports(app[DB], app[CLOCK].now)


async def _uploaded_text(request: web.Request) -> str | None:
    form = await request.post()
    await check_csrf(request, str(form.get(CSRF_FIELD) or ""))
    raw = form.get("file") if "file" in form else form.get("yaml")
    data = raw.file.read(MAX_ORG_FILE + 1) if isinstance(raw, web.FileField) else raw
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes) or not data.strip() or len(data) > MAX_ORG_FILE:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


async def org_import_preview(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    text = await _uploaded_text(request)
    context = await _form_context(request, me, "导入组织架构：预览")
    if text is None:
        return refused(request, "请上传 UTF-8 编码的组织架构 YAML 文件（不超过 2 MB）。", status=422, me=me)
    try:
        preview = await _imports(request.app).preview(text)
    except OrgFileError as exc:
        context |= {"problems": exc.problems, "preview": None, "text": text}
        return render(request, "admin/org_import.html", context, status=422)
    context |= {"problems": [], "preview": preview, "diff": preview.diff, "text": text}
    return render(request, "admin/org_import.html", context)


async def org_import_apply(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    text = await _uploaded_text(request)
    if text is None:
        return refused(request, "没有可导入的内容，请重新上传文件。", status=422, me=me)
    try:
        await _imports(request.app).apply(text)
    except OrgFileError as exc:
        context = await _form_context(request, me, "导入组织架构：预览")
        context |= {"problems": exc.problems, "preview": None, "text": text}
        return render(request, "admin/org_import.html", context, status=422)
    await request.app[WORKFLOW].org(fresh=True)
    raise web.HTTPSeeOther(location="/admin/org?imported=1")


# -- templates --------------------------------------------------------------------------------------
async def templates_page(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    workflow = request.app[WORKFLOW]
    try:
        org: Org | None = await workflow.org()
    except OrgNotImported:
        org = None
    views, problems = template_overview(
        workflow.templates(), templates_dir=request.app[SETTINGS].templates_dir or None, org=org
    )
    diagrams = {v.key: Markup(route_diagram(f"{v.name} 审批路线", v.steps)) for v in views}
    context = {"title": "审批模板", "me": me, "views": views, "problems": problems, "diagrams": diagrams}
    return render(request, "admin/templates.html", context)


# -- calendar ---------------------------------------------------------------------------------------
def _service(app: web.Application) -> CalendarService:
    return CalendarService(app[DB], app[DEADLINES].calendar, app[CLOCK].now)


def _day_kind(working: bool, d: date) -> str:
    weekend = d.weekday() >= 5
    if working:
        return "workday" if weekend else "normal"
    return "weekend" if weekend else "holiday"


def month_grids(year: int, is_working: Any, overrides: dict[date, Any]) -> list[dict[str, Any]]:
    months = []
    for month in range(1, 13):
        weeks = []
        for week in month_calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
            cells: list[dict[str, Any] | None] = []
            for d in week:
                if d.month != month:
                    cells.append(None)
                    continue
                cells.append({"day": d, "kind": _day_kind(is_working(d), d), "override": overrides.get(d)})
            weeks.append(cells)
        months.append({"month": month, "weeks": weeks})
    return months


def _year(request: web.Request) -> int | None:
    raw = request.query.get("year", "")
    if not raw:
        return int(request.app[CLOCK].now().astimezone(request.app[SETTINGS].tz).year)
    return int(raw) if raw.isdigit() and 1990 <= int(raw) <= 2100 else None


async def calendar_page(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    year = _year(request)
    if year is None:
        return refused(request, "年份应为 1990 至 2100 之间的数字。", status=422, me=me)
    service = _service(request.app)
    found = await service.overrides(start=date(year, 1, 1), end=date(year, 12, 31))
    overrides = {o.date: o for o in found}
    context = {
        **await _form_context(request, me, f"{year} 年工作日历"),
        "year": year,
        "months": month_grids(year, request.app[DEADLINES].calendar.is_working_day, overrides),
        "overrides": found,
        "kind_words": KIND_WORDS,
        "weekdays": WEEKDAYS,
    }
    return render(request, "admin/calendar.html", context)


async def calendar_set(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    form = await request.post()
    await check_csrf(request, str(form.get(CSRF_FIELD) or ""))
    day = _date(form.get("date"))
    kind = form.get("kind")
    reason = str(form.get("reason") or "").strip()
    if day is None or kind not in {k.value for k in OverrideKind} or len(reason) > 200:
        return refused(
            request,
            "请填写有效的日期、类型（额外休息日或额外工作日）和不超过 200 字的原因。",
            status=422,
            me=me,
        )
    await _service(request.app).set(day=day, kind=OverrideKind(str(kind)), reason=reason, created_by=me.id)
    raise web.HTTPSeeOther(location=f"/admin/calendar?year={day.year}")


async def calendar_remove(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    form = await request.post()
    await check_csrf(request, str(form.get(CSRF_FIELD) or ""))
    day = _date(form.get("date"))
    if day is None:
        return refused(request, "请填写有效的日期（YYYY-MM-DD）。", status=422, me=me)
    try:
        await _service(request.app).remove(day)
    except OverrideNotFound:
        return refused(request, f"{day.isoformat()} 没有调整记录。", status=404, me=me)
    raise web.HTTPSeeOther(location=f"/admin/calendar?year={day.year}")


def _date(raw: Any) -> date | None:
    if not isinstance(raw, str) or len(raw) != 10:
        return None
    try:
        d = date.fromisoformat(raw)
    except ValueError:
        return None
    return d if 1990 <= d.year <= 2100 else None


def setup_reference_pages(app: web.Application) -> None:
    app.router.add_get("/admin/org", org_page)
    app.router.add_post("/admin/org/import", org_import_preview)
    app.router.add_post("/admin/org/import/apply", org_import_apply)
    app.router.add_get("/admin/templates", templates_page)
    app.router.add_get("/admin/calendar", calendar_page)
    app.router.add_post("/admin/calendar/overrides", calendar_set)
    app.router.add_post("/admin/calendar/overrides/remove", calendar_remove)

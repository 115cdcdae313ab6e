"""The appraisal statistics on the desk 统计: `/admin/stats` (a period's numbers per department
and per person, the weekly trend and the slowest steps, with charts drawn on the server as SVG,
each above its table), its CSV and XLSX exports, and publication (`POST /admin/stats/publish`,
`/admin/stats/publications`, `/admin/stats/publications/{id}`).

The numbers come from `services.stats.StatsService.appraisal`, the service behind `GET
/api/v1/stats` and `oabot stats`; a frozen publication is drawn from its stored numbers by the
same code as the live page. HTTP only: every number and word of a summary is decided below.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from markupsafe import Markup

from bot.keys import CLOCK, DB, SERVICES, SETTINGS, WORKFLOW
from bot.web.admin.gate import PAGE_HEADERS, office, refused, render
from bot.web.api_stats import stats_service
from bot.web.identity import CSRF_FIELD, check_csrf, csrf_token
from reports.charts import bar_chart, line_chart, stacked_bar_chart
from reports.stats import Period, PeriodInvalid
from reports.stats_export import rows_of, stats_csv, stats_xlsx
from services.stats import OrgNotImported
from services.stats_publications import Publication, StatsPublications

PUBLICATIONS = "stats_publications"  # its key in app[SERVICES]
PROBLEM_WORDS = {
    "from": "开始日期",
    "to": "结束日期",
}


def publications(app: web.Application) -> StatsPublications:
    found = app[SERVICES].get(PUBLICATIONS)
    if not isinstance(found, StatsPublications):
        settings = app[SETTINGS]
        found = StatsPublications(
            db=app[DB], stats=stats_service(app), office_role=settings.office_role, now=app[CLOCK].now
        )
        app[SERVICES][PUBLICATIONS] = found
    return found


def _templates(app: web.Application) -> dict[str, Any]:
    return {t.key: t for t in app[WORKFLOW].templates()}


def _period(request: web.Request) -> Period:
    """The period of the query (from/to), last month when neither is given; raises PeriodInvalid."""
    service = stats_service(request.app)
    first, last = request.query.get("from"), request.query.get("to")
    if not first and not last:
        return service.default_period(request.app[CLOCK].now())
    return service.period(first, last)


def _bad_period(request: web.Request, exc: PeriodInvalid, me: Any) -> web.Response:
    words = "；".join(
        f"{PROBLEM_WORDS.get(k, k)}：请填写 YYYY-MM-DD 格式的有效日期" for k in sorted(exc.problems)
    )
    if "to" in exc.problems and "ends before" in exc.problems["to"]:
        words = "结束日期早于开始日期。"
    return refused(request, f"统计期间有误：{words}", status=422, me=me)


def _h(value: Any) -> str:
    return "—" if value is None else f"{value:g}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def view(numbers: dict[str, Any], departments_names: dict[str, str] | None = None) -> dict[str, Any]:
    """What the template draws from a period's numbers (live or frozen): tables and SVG charts."""
    departments = rows_of(numbers, "department")
    people = rows_of(numbers, "person")
    counted = numbers.get("counted", {})
    names = departments_names or {d["id"]: d["name"] for d in departments}
    weeks = numbers.get("weeks", [])
    steps = numbers.get("slowest_steps", [])
    dept_labels = [d["name"] for d in departments]
    late = [d["overdue"] for d in departments]
    on_time = [max(counted.get(f"department:{d['id']}", d["handled"]) - d["overdue"], 0) for d in departments]
    charts = {
        "departments": Markup(
            bar_chart(
                "各部门用时中位（工作小时）",
                dept_labels,
                [d["median_working_hours"] for d in departments],
                unit=" h",
            )
        ),
        "overdue": Markup(
            stacked_bar_chart("各部门按时与超时件数", dept_labels, [("按时", on_time), ("超时", late)])
        ),
        "weeks": Markup(
            line_chart(
                "每周趋势",
                [w["from"][5:] for w in weeks],
                [
                    ("处理件数", [w["handled"] for w in weeks]),
                    ("超时件数", [w["overdue"] for w in weeks]),
                    ("发起件数", [w["initiated"] for w in weeks]),
                ],
            )
        ),
        "steps": Markup(
            bar_chart(
                "最慢的步骤（用时中位，工作小时）",
                [s["name"] for s in steps],
                [s["median_working_hours"] for s in steps],
                unit=" h",
            )
        ),
    }
    return {
        "departments": departments,
        "people": people,
        "dept_names": names,
        "weeks": weeks,
        "steps": steps,
        "charts": charts,
        "h": _h,
        "pct": _pct,
        "first": numbers["report"]["from"],
        "last": numbers["report"]["to"],
    }


async def stats_page(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    try:
        period = _period(request)
    except PeriodInvalid as exc:
        return _bad_period(request, exc, me)
    app = request.app
    try:
        _, numbers = await stats_service(app).appraisal(
            app[DB], period, now=app[CLOCK].now(), templates=_templates(app)
        )
    except OrgNotImported:
        return refused(request, "尚未导入组织架构，暂无统计。", status=409, me=me)
    context = {
        "title": "审批统计",
        "me": me,
        "csrf": await csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "query": f"from={period.first.isoformat()}&to={period.last.isoformat()}",
        "frozen": None,
        **view(numbers),
    }
    return render(request, "admin/stats.html", context)


async def _numbers_for_export(request: web.Request) -> dict[str, Any] | web.Response:
    me = await office(request)
    try:
        period = _period(request)
    except PeriodInvalid as exc:
        return _bad_period(request, exc, me)
    app = request.app
    try:
        _, numbers = await stats_service(app).appraisal(
            app[DB], period, now=app[CLOCK].now(), templates=_templates(app)
        )
    except OrgNotImported:
        return refused(request, "尚未导入组织架构，暂无统计。", status=409, me=me)
    return numbers


def _download(body: bytes, numbers: dict[str, Any], ext: str, content_type: str) -> web.Response:
    name = f"stats_{numbers['report']['from']}_{numbers['report']['to']}.{ext}"
    return web.Response(
        body=body,
        content_type=content_type,
        headers={**PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


async def stats_csv_export(request: web.Request) -> web.StreamResponse:
    found = await _numbers_for_export(request)
    if isinstance(found, web.Response):
        return found
    return _download(stats_csv(found), found, "csv", "text/csv")


async def stats_xlsx_export(request: web.Request) -> web.StreamResponse:
    found = await _numbers_for_export(request)
    if isinstance(found, web.Response):
        return found
    return _download(
        stats_xlsx(found), found, "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )


async def publish(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    form = await request.post()
    await check_csrf(request, str(form.get(CSRF_FIELD) or ""))
    service = stats_service(request.app)
    first, last = form.get("from"), form.get("to")
    try:
        period = service.period(
            first if isinstance(first, str) else None, last if isinstance(last, str) else None
        )
    except PeriodInvalid as exc:
        return _bad_period(request, exc, me)
    try:
        done = await publications(request.app).publish(period, by=me.id, templates=_templates(request.app))
    except OrgNotImported:
        return refused(request, "尚未导入组织架构，不能发布。", status=409, me=me)
    raise web.HTTPSeeOther(location=f"/admin/stats/publications/{done.id}")


async def publication_list(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    found = await publications(request.app).list()
    org = await request.app[WORKFLOW].org()
    return render(
        request,
        "admin/stats_publications.html",
        {"title": "统计发布记录", "me": me, "publications": found, "who": org.display_name},
    )


async def publication_page(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    raw = request.match_info["id"]
    found: Publication | None = None
    if raw.isdigit() and len(raw) < 12:
        found = await publications(request.app).get(int(raw))
    if found is None:
        return refused(request, "没有这条统计发布记录。", status=404, me=me)
    org = await request.app[WORKFLOW].org()
    context = {
        "title": f"统计发布 {found.first.isoformat()} 至 {found.last.isoformat()}（第 {found.version} 版）",
        "me": me,
        "frozen": found,
        "publisher": org.display_name(found.published_by),
        "query": f"from={found.first.isoformat()}&to={found.last.isoformat()}",
        **view(found.numbers),
    }
    return render(request, "admin/stats.html", context)


def setup_stats_pages(app: web.Application) -> None:
    app.router.add_get("/admin/stats", stats_page)
    app.router.add_get("/admin/stats.csv", stats_csv_export)
    app.router.add_get("/admin/stats.xlsx", stats_xlsx_export)
    app.router.add_post("/admin/stats/publish", publish)
    app.router.add_get("/admin/stats/publications", publication_list)
    app.router.add_get("/admin/stats/publications/{id}", publication_page)

"""The workspace's lists and batch approval: `/m/` (home = 待我处理), `/m/todo`, `/m/done`,
`/m/mine`, `/m/cc`, and `POST /m/batch` (批量同意).

Each list page reads its filters from the query string (`q`, `template`, `status`, `from`, `to`,
`page`), asks `WorkspaceLists` for one page and renders `m/lists.html`; every item links to its
request page `/m/r/{id}`. The batch form posts the checked tasks as `task_id:version` with one
optional opinion and the session's CSRF token; the answer lists each task's outcome. Pages call
the service only: what may be approved is the engine's decision, each task version-checked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date

import aiohttp_jinja2
from aiohttp import web

from approvals.model import Channel, RequestStatus
from bot.keys import NOTICES, SETTINGS, WORKSPACE_LISTS
from bot.web.forms import whole_number
from bot.web.identity import CSRF_FIELD, check_csrf, csrf_token, current, viewer
from bot.web.routes import EARLIEST, LATEST
from notifications.wording import REQUEST_STATUS_LABEL
from services.workspace_lists import BATCH_LIMIT, LIST_LABEL, BatchOutcome, ListKind, ListQuery

logger = logging.getLogger(__name__)

LIST_PATH = {
    ListKind.TODO: "/m/todo",
    ListKind.DONE: "/m/done",
    ListKind.MINE: "/m/mine",
    ListKind.CC: "/m/cc",
}
OPINION_MAX = 500
# How a session's sign-in maps to the channel its actions are recorded with in the trail.
_VIA_CHANNEL = {"wecom": Channel.WECOM, "dingtalk": Channel.DINGTALK, "console": Channel.CONSOLE}


def _date(text: str | None) -> date | None:
    try:
        day = date.fromisoformat(text) if text else None
    except ValueError:
        return None
    # far from the ends of the calendar, where turning a day into a UTC instant overflows
    return day if day is not None and EARLIEST.year <= day.year <= LATEST.year else None


def _page_number(text: str | None) -> int:
    number = whole_number(text, most=99_999)
    return number if number else 1


def list_query(params: Mapping[str, str]) -> ListQuery:
    """The filters of a list page's query string; anything unreadable is ignored."""
    status = params.get("status") or ""
    return ListQuery(
        text=(params.get("q") or "").strip()[:100],
        template=(params.get("template") or "")[:64],
        status=status if status in {s.value for s in RequestStatus} else "",
        date_from=_date(params.get("from")),
        date_to=_date(params.get("to")),
        page=_page_number(params.get("page")),
        archived=params.get("archived") == "1",
    )


def _filter_params(query: ListQuery) -> dict[str, str]:
    """The query string that keeps the filters (for the pager's links)."""
    values = {
        "q": query.text,
        "template": query.template,
        "status": query.status,
        "from": query.date_from.isoformat() if query.date_from else "",
        "to": query.date_to.isoformat() if query.date_to else "",
        "archived": "1" if query.archived else "",
    }
    return {k: v for k, v in values.items() if v}


async def _list(request: web.Request, kind: ListKind) -> web.Response:
    user = await viewer(request)
    lists = request.app[WORKSPACE_LISTS]
    query = list_query(request.query)
    found = await lists.page(user, kind, query)
    context = {
        "title": LIST_LABEL[kind],
        "back": None,
        "kind": kind.value,
        "tabs": [(k.value, LIST_LABEL[k], LIST_PATH[k], getattr(found.counts, k.value)) for k in ListKind],
        "page": found,
        "path": LIST_PATH[kind],
        "filters": _filter_params(query),
        "filtered": bool(_filter_params(query)),
        "templates": lists.template_choices(),
        "statuses": [(s.value, label) for s, label in REQUEST_STATUS_LABEL.items()],
        "tz": request.app[SETTINGS].tz,
        "csrf": await csrf_token(request),
        "csrf_field": CSRF_FIELD,
        # the header's 通知 link shows how many notices still wait for the person's 已收到
        "notices_waiting": len(await request.app[NOTICES].list_for(person=user.id, unanswered_only=True)),
    }
    return aiohttp_jinja2.render_template("m/lists.html", request, context)


async def todo(request: web.Request) -> web.Response:
    return await _list(request, ListKind.TODO)


async def done(request: web.Request) -> web.Response:
    return await _list(request, ListKind.DONE)


async def mine(request: web.Request) -> web.Response:
    return await _list(request, ListKind.MINE)


async def cc(request: web.Request) -> web.Response:
    return await _list(request, ListKind.CC)


def _picked(values: list[str]) -> list[tuple[str, int]]:
    """`task_id:version` pairs from the checked boxes; malformed ones are dropped."""
    out: list[tuple[str, int]] = []
    for value in values[:BATCH_LIMIT]:
        task_id, _, version = value.rpartition(":")
        number = whole_number(version)
        if task_id and number is not None:
            out.append((task_id, number))
    return out


async def batch(request: web.Request) -> web.Response:
    """批量同意: approve each checked task with one optional opinion; answer per task."""
    user = await viewer(request)
    form = await request.post()
    await check_csrf(request, str(form.get(CSRF_FIELD) or ""))
    picked = _picked([str(v) for v in form.getall("t", [])])
    opinion = str(form.get("opinion") or "").strip()[:OPINION_MAX]
    found = await current(request)
    channel = _VIA_CHANNEL.get(found[0].via, Channel.API) if found else Channel.API
    report = await request.app[WORKSPACE_LISTS].batch_approve(user, picked, opinion or None, channel=channel)
    context = {
        "title": "批量同意结果",
        "back": LIST_PATH[ListKind.TODO],
        "report": report,
        "approved": report.count(BatchOutcome.APPROVED),
        "already": report.count(BatchOutcome.ALREADY_HANDLED),
        "refused": report.count(BatchOutcome.REFUSED),
        "opinion": opinion,
    }
    return aiohttp_jinja2.render_template("m/batch_result.html", request, context)


def setup_lists(app: web.Application) -> None:
    r = app.router
    r.add_get("/m/", todo)
    r.add_get("/m/todo", todo)
    r.add_get("/m/done", done)
    r.add_get("/m/mine", mine)
    r.add_get("/m/cc", cc)
    r.add_post("/m/batch", batch)

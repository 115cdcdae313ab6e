"""Console pages: pick a user, see their chat, tap cards, type commands, share a location,
start a request from any template with a form generated from its schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from html import escape
from typing import Any

from aiohttp import web
from sqlalchemy import select

from approvals.definitions import FieldSpec, FieldType, Template
from approvals.errors import ApprovalError
from approvals.form_errors import FormInvalid
from approvals.model import URGENCY_LABEL, Urgency
from bot.keys import CHAT, CLOCK, DB, SETTINGS, WORKFLOW
from bot.web.console.static import CSS, JS
from handlers.events import CardAction, LocationShared, Sender, TextMessage
from org.model import Org, User
from storage.console_models import ConsoleMessageRow

H = escape


def page(title: str, body: str, *, back: str | None = None) -> web.Response:
    nav = f'<a href="{H(back)}">‹ 返回</a>' if back else ""
    html = (
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{H(title)} · oabot</title><style>{CSS}</style></head>"
        f"<body><header>{nav}<h1>{H(title)}</h1></header>{body}<script>{JS}</script></body></html>"
    )
    return web.Response(text=html, content_type="text/html")


def _enabled(request: web.Request) -> None:
    if not request.app[SETTINGS].console:
        raise web.HTTPNotFound(text="the console is off: set OABOT_CONSOLE=1 or run `oabot serve --demo`")


async def _user(request: web.Request) -> tuple[Org, User]:
    _enabled(request)
    org = await request.app[WORKFLOW].org()
    user = org.user(request.match_info["uid"])
    if user is None or not user.active:
        raise web.HTTPNotFound(text="no such active user")
    return org, user


def _dept_name(org: Org, dept_id: str) -> str:
    d = org.department(dept_id)
    return d.name if d else dept_id


async def index(request: web.Request) -> web.StreamResponse:
    _enabled(request)
    org = await request.app[WORKFLOW].org()
    items = "".join(
        f'<a href="/console/u/{H(u.id)}"><b>{H(u.name)}</b> <small>{H(u.title)} · '
        f"{H(_dept_name(org, u.department))}</small></a>"
        for u in org.users.values()
        if u.active
    )
    return page(
        f"{org.name} · 选择用户",
        f"<main class=users><p>选择一位同事，模拟他/她的手机聊天：</p>{items}</main>",
    )


# -- chat ----------------------------------------------------------------------------------------
def _card_html(m: ConsoleMessageRow, uid: str) -> str:
    p = m.payload
    card = p.get("card", {})
    urgency = card.get("urgency", "")
    urgency_class = {"紧急": "urgent", "重要": "important"}.get(urgency, "")
    rows = "".join(f"<dt>{H(f['label'])}</dt><dd>{H(f['value'])}</dd>" for f in card.get("fields", []))
    meta = []
    if card.get("acting_for_label"):
        meta.append(f"<b>{H(card['acting_for_label'])}</b>")
    meta.append(f"当前步骤：{H(card.get('step', ''))}")
    if card.get("waiting"):
        meta.append(H(card["waiting"]))
    if card.get("deadline"):
        meta.append(f"截止：{H(card['deadline'])}")
    meta.append(f'<a href="/console/requests/{H(str(p.get("request_id")))}?as={H(uid)}">查看详情</a>')
    if m.closed:
        bottom = f"<div class=outcome>{H(m.outcome or '已处理')}</div>"
    else:
        forms = "".join(
            f'<form method=post action="/console/u/{H(uid)}/tap">'
            f'<input type=hidden name=task_id value="{H(str(p.get("task_id")))}">'
            f'<input type=hidden name=version value="{H(str(p.get("version")))}">'
            f'<input type=hidden name=action value="{H(b["action"])}">'
            f'<input type=hidden name=event_id value="c{m.id}-{H(b["action"])}">'
            f'<button class="{H(b.get("style", ""))}" data-action="{H(b["action"])}">{H(b["label"])}</button></form>'
            for b in card.get("buttons", [])
        )
        bottom = f"<div class=buttons>{forms}</div>"
    return (
        f'<div class="msg out"><div class=card data-task="{H(str(p.get("task_id")))}" data-closed="{int(m.closed)}">'
        f'<div class=top><b>{H(card.get("title", ""))}</b><span class="tag {urgency_class}">{H(urgency)}</span>'
        f"<div>{H(card.get('subtitle', ''))} —— {H(card.get('initiator', ''))}</div></div>"
        f"<dl>{rows}</dl><div class=meta>{' · '.join(meta)}</div>{bottom}</div></div>"
    )


async def _feed(request: web.Request, uid: str) -> str:
    async with request.app[DB].session() as s:
        rows = (
            (
                await s.execute(
                    select(ConsoleMessageRow)
                    .where(ConsoleMessageRow.user_id == uid)  # type: ignore[arg-type]
                    .where(ConsoleMessageRow.kind != "card_closed")  # type: ignore[arg-type]
                    .order_by(ConsoleMessageRow.id)  # type: ignore[arg-type]
                )
            )
            .scalars()
            .all()
        )
    tz = request.app[SETTINGS].tz
    out = []
    for m in rows[-200:]:
        if m.kind == "task_card":
            out.append(_card_html(m, uid))
            continue
        if m.kind == "checkin_card":
            from bot.web.checkin_pages import checkin_card_html

            out.append(checkin_card_html(m.payload, uid))
            continue
        when = m.created_at.astimezone(tz).strftime("%m-%d %H:%M")
        out.append(
            f'<div class="msg {H(m.direction)}" data-kind="{H(m.kind)}"><div class=bubble title="{when}">{H(m.text)}</div></div>'
        )
    return (
        "".join(out) or "<p style='color:#888;text-align:center'>还没有消息。试试输入「待办」或「帮助」。</p>"
    )


async def chat(request: web.Request) -> web.StreamResponse:
    org, user = await _user(request)
    uid = user.id
    feed = await _feed(request, uid)
    body = (
        f'<main><div style="text-align:right"><a class=btn href="/console/u/{H(uid)}/new">发起申请</a> '
        f'<a class=btn href="/console/u/{H(uid)}/checkins">团队签到</a></div>'
        f'<div id=feed data-src="/console/u/{H(uid)}/feed">{feed}</div></main>'
        f'<form class=compose method=post action="/console/u/{H(uid)}/say">'
        f'<input name=text placeholder="输入消息，如：待办" autocomplete=off required><button class=send>发送</button></form>'
        f'<form id=locform class=loc method=post action="/console/u/{H(uid)}/location">'
        f"<input name=lat placeholder=纬度 required><input name=lng placeholder=经度 required>"
        f"<input type=hidden name=accuracy><input type=hidden name=coord_system value=gcj02>"
        f"<button class=btn>发送位置</button><button class=btn id=geo type=button>定位</button></form>"
    )
    return page(f"{user.name} 的聊天", body, back="/console")


async def feed(request: web.Request) -> web.StreamResponse:
    _, user = await _user(request)
    return web.Response(text=await _feed(request, user.id), content_type="text/html")


async def tap(request: web.Request) -> web.StreamResponse:
    _, user = await _user(request)
    data = await request.post()
    try:
        version = int(str(data.get("version", "")))
    except ValueError:
        raise web.HTTPBadRequest(text="bad card") from None
    event = CardAction(
        sender=Sender("console", user.id),
        event_id=str(data.get("event_id") or uuid.uuid4().hex),
        task_id=str(data.get("task_id", "")),
        version=version,
        action=str(data.get("action", "")),
    )
    await request.app[CHAT].handle(event)
    raise web.HTTPSeeOther(f"/console/u/{user.id}")


async def _say_in(request: web.Request, user: User, text: str, kind: str = "text") -> None:
    async with request.app[DB].transaction() as s:
        s.add(
            ConsoleMessageRow(
                user_id=user.id,
                direction="in",
                kind=kind,
                text=text,
                payload={},
                created_at=request.app[CLOCK].now(),
            )
        )


async def say(request: web.Request) -> web.StreamResponse:
    _, user = await _user(request)
    text = str((await request.post()).get("text", "")).strip()[:500]
    if text:
        await _say_in(request, user, text)
        await request.app[CHAT].handle(
            TextMessage(sender=Sender("console", user.id), event_id=uuid.uuid4().hex, text=text)
        )
    raise web.HTTPSeeOther(f"/console/u/{user.id}")


async def location(request: web.Request) -> web.StreamResponse:
    _, user = await _user(request)
    data = await request.post()
    try:
        lat, lng = float(str(data.get("lat"))), float(str(data.get("lng")))
        acc_raw = str(data.get("accuracy") or "")
        accuracy = float(acc_raw) if acc_raw else None
    except ValueError:
        await request.app[WORKFLOW].tell(user.id, "位置格式不对：纬度、经度应为数字，例如 31.2304 121.4737")
        raise web.HTTPSeeOther(f"/console/u/{user.id}") from None
    import math

    if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180) or (
        accuracy is not None and (not math.isfinite(accuracy) or accuracy < 0)
    ):
        await request.app[WORKFLOW].tell(
            user.id, "位置无效：纬度应在 -90~90，经度在 -180~180，精度不能为负。"
        )
        raise web.HTTPSeeOther(f"/console/u/{user.id}")
    system = "wgs84" if str(data.get("coord_system")) == "wgs84" else "gcj02"
    await _say_in(request, user, f"[位置] {lat:.5f}, {lng:.5f}", kind="location")
    await request.app[CHAT].handle(
        LocationShared(
            sender=Sender("console", user.id),
            event_id=uuid.uuid4().hex,
            lat=lat,
            lng=lng,
            accuracy_m=accuracy,
            coord_system=system,
        )
    )
    raise web.HTTPSeeOther(f"/console/u/{user.id}")


# -- starting a request ----------------------------------------------------------------------
async def templates(request: web.Request) -> web.StreamResponse:
    _, user = await _user(request)
    wf = request.app[WORKFLOW]
    items = "".join(
        f'<a href="/console/u/{H(user.id)}/new/{H(t.key)}"><b>{H(t.name)}</b> <small>{H(t.category)} · {H(t.description)}</small></a>'
        for t in sorted(wf.d.templates.values(), key=lambda t: (t.category, t.key))
    )
    return page("发起申请", f"<main class=templates>{items}</main>", back=f"/console/u/{user.id}")


def _field_html(f: FieldSpec, org: Org, value: Any, error: str | None) -> str:
    name = H(f.key)
    req = " required" if f.required else ""
    label = f"<label for={name}>{H(f.label)}{' *' if f.required else ''}</label>"
    v = "" if value is None else value
    t = f.type
    if t in (FieldType.TEXT,):
        ctl = f"<input id={name} name={name} value='{H(str(v))}'{req}>"
    elif t == FieldType.TEXTAREA:
        ctl = f"<textarea id={name} name={name} rows=3{req}>{H(str(v))}</textarea>"
    elif t in (FieldType.NUMBER, FieldType.MONEY):
        ctl = f"<input id={name} name={name} type=number step=any value='{H(str(v))}'{req}>"
    elif t == FieldType.DATE:
        ctl = f"<input id={name} name={name} type=date value='{H(str(v))}'{req}>"
    elif t == FieldType.DATETIME:
        ctl = f"<input id={name} name={name} type=datetime-local value='{H(str(v)[:16])}'{req}>"
    elif t == FieldType.DATERANGE:
        start = v.get("start", "") if isinstance(v, dict) else ""
        end = v.get("end", "") if isinstance(v, dict) else ""
        ctl = f"<input name={name}.start type=date value='{H(start)}'{req}> 至 <input name={name}.end type=date value='{H(end)}'{req}>"
    elif t == FieldType.SELECT:
        opts = "".join(f"<option{' selected' if o == v else ''}>{H(o)}</option>" for o in f.options)
        ctl = f"<select id={name} name={name}{req}><option value=''>请选择</option>{opts}</select>"
    elif t == FieldType.MULTISELECT:
        chosen = v if isinstance(v, list) else []
        ctl = (
            "<div class=checks>"
            + "".join(
                f"<label><input type=checkbox name={name} value='{H(o)}'{' checked' if o in chosen else ''}> {H(o)}</label>"
                for o in f.options
            )
            + "</div>"
        )
    elif t == FieldType.BOOL:
        sel = "true" if v is True or v == "true" else ("false" if v is False or v == "false" else "")
        ctl = (
            f"<select id={name} name={name}{req}><option value=''>请选择</option>"
            f"<option value=true{' selected' if sel == 'true' else ''}>是</option>"
            f"<option value=false{' selected' if sel == 'false' else ''}>否</option></select>"
        )
    elif t in (FieldType.USER, FieldType.USERS):
        people = [u for u in org.users.values() if u.active]
        if t == FieldType.USER:
            opts = "".join(
                f"<option value='{H(u.id)}'{' selected' if u.id == v else ''}>{H(u.name)}</option>"
                for u in people
            )
            ctl = f"<select id={name} name={name}{req}><option value=''>请选择</option>{opts}</select>"
        else:
            chosen = v if isinstance(v, list) else []
            ctl = (
                "<div class=checks>"
                + "".join(
                    f"<label><input type=checkbox name={name} value='{H(u.id)}'{' checked' if u.id in chosen else ''}> {H(u.name)}</label>"
                    for u in people
                )
                + "</div>"
            )
    elif t == FieldType.DEPARTMENT:
        opts = "".join(
            f"<option value='{H(d.id)}'{' selected' if d.id == v else ''}>{H(d.name)}</option>"
            for d in org.departments.values()
        )
        ctl = f"<select id={name} name={name}><option value=''>（默认）</option>{opts}</select>"
    elif t == FieldType.LIST:
        text = "\n".join(v) if isinstance(v, list) else str(v)
        ctl = f"<textarea id={name} name={name} rows=3 placeholder='每行一项'>{H(text)}</textarea>"
    elif t in (FieldType.SITE, FieldType.LOCATION):
        site = v.get("site") if isinstance(v, dict) else v
        opts = "".join(
            f"<option value='{H(s.id)}'{' selected' if s.id == site else ''}>{H(s.name)}</option>"
            for s in org.sites.values()
        )
        ctl = f"<select id={name} name={name}><option value=''>请选择地点</option>{opts}</select>"
        if t == FieldType.LOCATION:
            ctl += (
                f"<input name={name}.address placeholder='或填写地址'>"
                f"<input name={name}.lat placeholder='纬度'><input name={name}.lng placeholder='经度'>"
            )
    else:  # pragma: no cover - every type is handled above
        ctl = f"<input id={name} name={name}>"
    hint = f"<div style='color:#999;font-size:13px'>{H(f.help)}</div>" if f.help else ""
    err = f"<div class=err>{H(error)}</div>" if error else ""
    return label + ctl + hint + err


def form_from_post(template: Template, data: Any, tz: Any) -> dict[str, Any]:
    """Browser form fields → the JSON form the engine validates (types checked there)."""
    form: dict[str, Any] = {}
    for f in template.fields:
        k, t = f.key, f.type
        if t in (FieldType.MULTISELECT, FieldType.USERS):
            values = [str(x) for x in data.getall(k, []) if str(x)]
            if values:
                form[k] = values
            continue
        if t == FieldType.DATERANGE:
            start, end = str(data.get(f"{k}.start", "")), str(data.get(f"{k}.end", ""))
            if start or end:
                form[k] = {"start": start, "end": end}
            continue
        if t == FieldType.LOCATION:
            site = str(data.get(k, ""))
            address = str(data.get(f"{k}.address", "")).strip()
            if site:
                form[k] = {"site": site}
            elif address:
                form[k] = {
                    "address": address,
                    "lat": _num(data.get(f"{k}.lat")),
                    "lng": _num(data.get(f"{k}.lng")),
                }
            continue
        raw = str(data.get(k, "")).strip()
        if raw == "":
            continue
        if t in (FieldType.NUMBER, FieldType.MONEY):
            form[k] = _num(raw)
        elif t == FieldType.BOOL:
            form[k] = raw == "true" if raw in ("true", "false") else raw
        elif t == FieldType.LIST:
            form[k] = [line.strip() for line in raw.splitlines() if line.strip()]
        elif t == FieldType.DATETIME:
            form[k] = raw if len(raw) > 16 else raw + ":00"
        else:
            form[k] = raw
    return form


def _num(raw: Any) -> Any:
    try:
        text = str(raw)
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except (TypeError, ValueError):
        return raw


async def new_request(request: web.Request) -> web.StreamResponse:
    org, user = await _user(request)
    wf = request.app[WORKFLOW]
    try:
        template = wf.template(request.match_info["key"])
    except ApprovalError:
        raise web.HTTPNotFound(text="no such template") from None
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    top_error = ""
    if request.method == "POST":
        data = await request.post()
        values = form_from_post(template, data, request.app[SETTINGS].tz)
        urgency = str(data.get("urgency", "normal"))
        try:
            created = await wf.submit(
                template_key=template.key,
                initiator=user.id,
                form=values,
                urgency=Urgency(urgency) if urgency in {u.value for u in Urgency} else Urgency.NORMAL,
                idempotency_key=str(data.get("form_token") or "") or None,
                channel="console",
            )
            await wf.tell(
                user.id,
                f"已提交「{template.name}」：{created.title}（编号 {created.id}）",
                request_id=created.id,
            )
            raise web.HTTPSeeOther(f"/console/u/{user.id}")
        except FormInvalid as exc:
            errors = {p.key: p.message for p in exc.fields}
            top_error = "表单有误，请修改标红的项目。"
        except ApprovalError as exc:
            top_error = exc.message
    fields = "".join(
        _field_html(
            f,
            org,
            values.get(f.key, f.default if not str(f.default or "").startswith("$") else None),
            errors.get(f.key),
        )
        for f in template.fields
    )
    unknown = "".join(
        f"<div class=err>{H(k)}：{H(v)}</div>" for k, v in errors.items() if template.field(k) is None
    )
    urg = "".join(f"<option value={u.value}>{URGENCY_LABEL[u]}</option>" for u in Urgency)
    body = (
        f"<main>{f'<div class=errors>{H(top_error)}</div>' if top_error else ''}{unknown}"
        f'<form class=request method=post><input type=hidden name=form_token value="{uuid.uuid4().hex}">'
        f"{fields}<label>紧急程度</label><select name=urgency>{urg}</select>"
        f"<p><button class=btn>提交</button></p></form></main>"
    )
    return page(template.name, body, back=f"/console/u/{user.id}/new")


async def request_detail(request: web.Request) -> web.StreamResponse:
    _enabled(request)
    wf = request.app[WORKFLOW]
    try:
        view = (await wf.get(request.match_info["id"])).model_dump(mode="json")
    except ApprovalError:
        raise web.HTTPNotFound(text="no such request") from None
    tz = request.app[SETTINGS].tz

    def t(iso: str | None) -> str:
        return datetime.fromisoformat(iso).astimezone(tz).strftime("%m-%d %H:%M") if iso else ""

    steps = "".join(
        f"<tr><td>{H(s['name'])}</td><td>{H(s['status'])}</td><td>"
        + "、".join(f"{H(x['assignee_name'])}（{H(x['status'])}）" for x in s["tasks"])
        + "</td></tr>"
        for s in view["steps"]
    )
    trail = "".join(
        f"<tr><td>{t(e['at'])}</td><td>{H(e['actor_name'] or '')}</td><td>{H(e['kind'])}</td><td>{H(e['comment'] or '')}</td></tr>"
        for e in view["trail"]
    )
    back = f"/console/u/{request.query['as']}" if request.query.get("as") else "/console"
    body = (
        f"<main><p><b>{H(view['title'])}</b><br>发起人：{H(view['initiator_name'])} · 状态：{H(view['status'])}</p>"
        f"<h3>流程</h3><table class=trail>{steps}</table><h3>留痕</h3><table class=trail>{trail}</table></main>"
    )
    return page("申请详情", body, back=back)


def setup_console(app: web.Application) -> None:
    r = app.router
    r.add_get("/console", index)
    r.add_get("/console/u/{uid}", chat)
    r.add_get("/console/u/{uid}/feed", feed)
    r.add_post("/console/u/{uid}/tap", tap)
    r.add_post("/console/u/{uid}/say", say)
    r.add_post("/console/u/{uid}/location", location)
    r.add_get("/console/u/{uid}/new", templates)
    r.add_get("/console/u/{uid}/new/{key}", new_request)
    r.add_post("/console/u/{uid}/new/{key}", new_request)
    r.add_get("/console/requests/{id}", request_detail)

"""The check-in pages: the signed mobile page a trip card's 到达打卡 / 离开打卡 button opens, and
the managers' page of their team's check-ins.

- `GET /checkin/{token}`: a small page for phones (works in the WeCom and DingTalk in-app
  browsers and in the console) that asks the browser for its position, with accuracy, when the
  person taps the button, and `POST`s it back to the same address as JSON. The token is the
  signed link (`checkins.links`): it names the person, the trip and arrival or departure, and
  expires. Nothing else identifies the person, so the page never accepts a different one
  (`?as=` may only narrow it: the console passes the simulated user and a link of someone
  else's is refused).
- `GET /checkins/team/{token}?date=`: a manager's signed view (sent with their daily summary
  and off-site notices): who checked in where and when, on site or not, the trust score and its
  reasons, a map link, and who is missing. `GET /console/u/{uid}/checkins` shows the same page
  in the console.

Edges only: every decision is the check-in service's (and its core's).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from html import escape
from typing import Any

from aiohttp import web

from bot.keys import CHECKINS, SETTINGS
from bot.web.api_errors import ValidationFailed
from bot.web.middleware import status_for
from checkins.core import KIND_LABEL, CheckinKind, make_fix
from checkins.errors import CheckinError, NotYourTrip
from checkins.geo import WGS84, format_distance
from checkins.trust import Source
from services.checkins import CheckinService, team_of

H = escape

PAGE_CSS = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 -apple-system,'PingFang SC','Microsoft YaHei',sans-serif;background:#f2f3f5;color:#222}
header{background:#2f6fed;color:#fff;padding:12px 16px}header h1{font-size:18px;margin:0}
main{max-width:760px;margin:0 auto;padding:12px}
.box{background:#fff;border-radius:10px;padding:14px;margin:10px 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 12px;margin:0}dt{color:#888}dd{margin:0}
button.go{width:100%;padding:14px;font-size:18px;border:0;border-radius:10px;background:#2f6fed;color:#fff}
button.go[disabled]{background:#9bb6f5}
#result{margin-top:12px;white-space:pre-wrap}#result.on_site{color:#1a7f37}#result.off_site{color:#c4320a}#result.error{color:#c4320a}
.error{color:#c4320a}small{color:#888}
table{width:100%;border-collapse:collapse;background:#fff;font-size:14px}th,td{border-bottom:1px solid #eee;padding:6px;text-align:left;vertical-align:top}
.flag{display:inline-block;background:#fff1e6;color:#b45309;border-radius:4px;padding:0 5px;margin:1px;font-size:12px}
.ok{color:#1a7f37}.bad{color:#c4320a}
"""

# Plain ES5 and XMLHttpRequest: the in-app browsers of WeCom and DingTalk are not always recent.
PAGE_JS = """
(function(){
  var btn=document.getElementById('go'), out=document.getElementById('result');
  if(!btn) return;
  function show(state,text){out.className=state;out.setAttribute('data-state',state);out.textContent=text}
  function nonce(){var s='';for(var i=0;i<4;i++){s+=Math.floor(Math.random()*4294967296).toString(16)}return s}
  function post(pos){
    var body={lat:pos.coords.latitude,lng:pos.coords.longitude,accuracy_m:pos.coords.accuracy,
      coord_system:'wgs84',device_at:new Date().toISOString(),nonce:nonce()};
    var x=new XMLHttpRequest();x.open('POST',location.pathname+location.search,true);
    x.setRequestHeader('Content-Type','application/json');
    x.onload=function(){
      var r={};try{r=JSON.parse(x.responseText)}catch(e){}
      if(x.status>=200&&x.status<300){show(r.verdict||'done',r.message||'已打卡');out.setAttribute('data-state','done');out.setAttribute('data-verdict',r.verdict||'')}
      else{show('error',r.message||('打卡失败（'+x.status+'）'));btn.disabled=false}
    };
    x.onerror=function(){show('error','网络错误，请稍后重试');btn.disabled=false};
    x.send(JSON.stringify(body));
  }
  btn.addEventListener('click',function(){
    if(!navigator.geolocation){show('error','此浏览器不能定位，请在聊天中发送位置打卡。');return}
    btn.disabled=true;show('locating','正在定位……');
    navigator.geolocation.getCurrentPosition(post,function(e){
      var why=e.code===1?'没有定位权限，请允许本页面使用位置信息，或在聊天中发送位置。':'定位失败：'+e.message;
      show('error',why);btn.disabled=false;
    },{enableHighAccuracy:true,timeout:20000,maximumAge:0});
  });
})();
"""


def html_page(title: str, body: str, *, status: int = 200, script: str = "") -> web.Response:
    html = (
        "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        # the address holds the link's token: never send it on to a map site as a Referer
        "<meta name=referrer content=no-referrer>"
        f"<title>{H(title)}</title><style>{PAGE_CSS}</style></head>"
        f"<body><header><h1>{H(title)}</h1></header><main>{body}</main>"
        + (f"<script>{script}</script>" if script else "")
        + "</body></html>"
    )
    return web.Response(
        text=html, content_type="text/html", status=status, headers={"Cache-Control": "no-store"}
    )


def _error_page(exc: CheckinError) -> web.Response:
    status = status_for(exc)
    return html_page(
        "外勤打卡",
        f"<div class=box><p class=error id=problem data-code={H(exc.code)}>{H(exc.message)}</p></div>",
        status=status,
    )


def _local(moment: datetime, tz: Any) -> str:
    return moment.astimezone(tz).strftime("%m-%d %H:%M")


# -- the check-in page ---------------------------------------------------------------------------
async def checkin_page(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    token = request.match_info["token"]
    try:
        claims, trip = await service.trip_for_link(token)
        viewer = request.query.get("as")
        if viewer and viewer != claims.user:
            raise NotYourTrip("这是别人的打卡链接，您不能用它打卡", trip_id=trip.id)
    except CheckinError as exc:
        return _error_page(exc)
    org = await service.org()
    label = KIND_LABEL[CheckinKind(claims.kind)]
    body = (
        f"<div class=box><dl><dt>出行人</dt><dd>{H(org.display_name(trip.traveller))}</dd>"
        f"<dt>行程</dt><dd>{H(trip.title or '外出')}</dd>"
        f"<dt>目的地</dt><dd>{H(trip.destination.name or '—')}</dd>"
        f"<dt>时间</dt><dd>{_local(trip.starts_at, service.tz)} 至 {_local(trip.ends_at, service.tz)}</dd></dl>"
        f"<p><small>链接有效至 {_local(claims.expires_at, service.tz)}。点按钮后浏览器会请求您的位置。</small></p>"
        f'<button class=go id=go data-kind="{H(claims.kind)}">{H(label)}打卡</button><div id=result></div></div>'
    )
    return html_page(f"外勤打卡 · {label}", body, script=PAGE_JS)


def _device_time(raw: Any) -> datetime | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise ValidationFailed(
            "device_at 应为 ISO 8601 时间", details={"device_at": "expected an ISO 8601 date-time"}
        )
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed(
            "device_at 应为 ISO 8601 时间", details={"device_at": "expected an ISO 8601 date-time"}
        ) from None
    if moment.tzinfo is None:
        raise ValidationFailed("device_at 需要带时区", details={"device_at": "needs a UTC offset"})
    return moment


async def post_checkin(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    try:
        data = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationFailed("请求格式不对：应为 JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed("请求格式不对：应为 JSON 对象")
    nonce = data.get("nonce")
    fix = make_fix(
        data.get("lat"),
        data.get("lng"),
        accuracy_m=data.get("accuracy_m"),
        coord_system=data.get("coord_system") or WGS84,
        source=Source.BROWSER,
        received_at=service.now(),
        device_at=_device_time(data.get("device_at")),
        channel="page",
    )
    recorded = await service.record_via_link(
        request.match_info["token"],
        fix,
        nonce=str(nonce)[:64] if isinstance(nonce, str) and nonce else None,
        viewer=request.query.get("as") or None,
    )
    c = recorded.checkin
    return web.json_response(
        {
            "id": recorded.id,
            "message": recorded.reply,
            "kind": c.kind.value,
            "verdict": c.verdict.value,
            "distance_m": round(c.distance_m, 1) if c.distance_m is not None else None,
            "created": recorded.created,
        },
        status=201 if recorded.created else 200,
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )


# -- the managers' page ------------------------------------------------------------------------------
def _day(request: web.Request, service: CheckinService) -> date:
    raw = request.query.get("date")
    if raw:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    return service.now().astimezone(service.tz).date()


def team_table(view: dict[str, Any], tz: Any) -> str:
    rows = []
    for c in view["items"]:
        at = datetime.fromisoformat(c["at"]).astimezone(tz).strftime("%H:%M")
        distance = "—" if c["distance_m"] is None else format_distance(c["distance_m"])
        state_class = {"on_site": "ok", "off_site": "bad"}.get(c["verdict"], "")
        flags = "".join(
            f'<span class=flag title="{H(r["message"])}" data-flag="{H(r["code"])}">{H(r["message"])}</span>'
            for r in c["trust"]["reasons"]
        )
        made_up = f"（补卡 {H(c['fix_request_id'])}）" if c["made_up"] else ""
        accuracy = (
            "" if c["accuracy_m"] is None else f"<br><small>±{H(format_distance(c['accuracy_m']))}</small>"
        )
        rows.append(
            f'<tr class=checkin data-user="{H(c["user"])}" data-verdict="{H(c["verdict"])}">'
            f"<td>{at}</td><td>{H(c['user_name'])}</td><td>{H(c['kind_label'])}{made_up}</td>"
            f"<td>{H(c['target_name'] or c['label'] or '—')}</td><td>{distance}{accuracy}</td>"
            f"<td class={state_class}>{H(c['verdict_label'])}</td>"
            f"<td><b>{c['trust']['score']}</b> {H(c['trust']['level_label'])}<br>{flags}</td>"
            f'<td>{H(c["source_label"])}</td><td><a href="{H(c["map_url"])}" target=_blank rel="noopener noreferrer">地图</a></td></tr>'
        )
    table = (
        "<table><tr><th>时间</th><th>姓名</th><th>类型</th><th>地点</th><th>距离</th><th>结果</th><th>可信度</th><th>来源</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p><small>这一天没有打卡记录。</small></p>"
    )
    missing = "".join(
        f'<li class=missing data-user="{H(m["user"])}">{H(m["user_name"])}：{H(m["detail"])}</li>'
        for m in view["missing"]
    )
    missing_box = f"<div class=box><b>未打卡</b><ul>{missing}</ul></div>" if missing else ""
    return f"<div class=box>{table}</div>{missing_box}"


async def _team_page(request: web.Request, manager: str, base: str) -> web.Response:
    service = request.app[CHECKINS]
    org = await service.org()
    day = _day(request, service)
    view = await service.day_view(day=day, users=team_of(org, manager))
    picker = (
        f'<form class=box method=get action="{H(base)}">日期 <input type=date name=date value="{day.isoformat()}"> '
        "<button>查看</button></form>"
    )
    return html_page(
        f"{org.display_name(manager)} 的团队外勤签到 · {day:%m-%d}", picker + team_table(view, service.tz)
    )


async def team_page(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    try:
        claims = await service.read_link(request.match_info["token"])
    except CheckinError as exc:
        return _error_page(exc)
    if claims.kind != "team":
        return html_page(
            "外勤签到", "<div class=box><p class=error>这个链接不是团队签到链接。</p></div>", status=403
        )
    return await _team_page(request, claims.user, request.path)


async def console_team_page(request: web.Request) -> web.StreamResponse:
    if not request.app[SETTINGS].console:
        raise web.HTTPNotFound(text="the console is off: set OABOT_CONSOLE=1 or run `oabot serve --demo`")
    org = await request.app[CHECKINS].org()
    uid = request.match_info["uid"]
    if not org.is_active(uid):
        raise web.HTTPNotFound(text="no such active user")
    return await _team_page(request, uid, request.path)


# -- the console's rendering of a trip card ----------------------------------------------------
def checkin_card_html(payload: dict[str, Any], uid: str) -> str:
    """A trip card in the console chat: its text fields and the link buttons (opened as `uid`)."""
    card = payload.get("card") or {}
    fields = "".join(
        f"<dt>{H(str(f.get('label', '')))}</dt><dd>{H(str(f.get('value', '')))}</dd>"
        for f in card.get("fields", [])
    )
    buttons = "".join(
        f'<a class="btn {H(str(b.get("style", "")))}" style="margin:6px" data-checkin-link href="{H(str(b.get("url", "")))}?as={H(uid)}">'
        f"{H(str(b.get('label', '')))}</a>"
        for b in card.get("buttons", [])
    )
    heading = str(payload.get("text", "")).split("\n")[0]
    return (
        f'<div class="msg out" data-kind=checkin_card><div class=card><div class=top><b>{H(str(card.get("title", "外勤打卡")))}</b>'
        f"<div>{H(heading)}</div></div><dl>{fields}</dl><div style='text-align:center'>{buttons}</div></div></div>"
    )


def setup_checkin_pages(app: web.Application) -> None:
    r = app.router
    r.add_get("/checkin/{token}", checkin_page)
    r.add_post("/checkin/{token}", post_checkin)
    r.add_get("/checkins/team/{token}", team_page)
    r.add_get("/console/u/{uid}/checkins", console_team_page)

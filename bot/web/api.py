"""The REST API (`/api/v1`): JSON in, one workflow call, JSON out.

Validates the shape of each body (unknown keys refused, every problem listed), translates
approval-core errors into API errors with the right status, and decides nothing itself.
Authentication (bearer OABOT_API_TOKEN) is done by `bot.web.middleware` for every /api/ path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeAlias

from aiohttp import web

from approvals import errors as core
from approvals.definitions import Template
from approvals.engine import Action
from approvals.form_errors import FormInvalid
from approvals.model import ActionKind, Channel, SignerPosition, Urgency
from bot.keys import WORKFLOW
from bot.web.api_errors import ApiError, Conflict, Forbidden, NotFound, ValidationFailed, read_json
from services.approvals import Busy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS: dict[type[core.ApprovalError], int] = {
    core.TemplateNotFound: 404,
    core.RequestNotFound: 404,
    core.TaskNotFound: 404,
    core.DelegationNotFound: 404,
    core.UnknownUser: 422,
    core.NotAssignee: 403,
    core.ActionNotAllowed: 403,
    core.TaskAlreadyDecided: 409,
    core.StaleTask: 409,
    core.RequestFinished: 409,
    core.BadTarget: 422,
    core.NoApprover: 422,
    core.RateLimited: 429,
    core.DelegationInvalid: 422,
    Busy: 503,
}


def translate(exc: core.ApprovalError | FormInvalid) -> ApiError:
    if isinstance(exc, FormInvalid):
        return ValidationFailed(
            "表单有误：" + "；".join(f"{p.label or p.key}：{p.message}" for p in exc.fields),
            details={"fields": [{"key": p.key, "label": p.label, "message": p.message} for p in exc.fields]},
            code="form_invalid",
        )
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
    details = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in exc.context.items()}
    return ApiError(exc.message, details=details or None, status=status, code=exc.code)


def api_handler(func: Handler) -> Handler:
    @wraps(func)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await func(request)
        except (core.ApprovalError, FormInvalid) as exc:
            raise translate(exc) from exc

    return wrapper


# -- body checking ---------------------------------------------------------------------------
# Builtin names, because Body's accessors are named after the types they return.
_Str: TypeAlias = str
_Int: TypeAlias = int
_Bool: TypeAlias = bool
_DateTime: TypeAlias = datetime


class Body:
    """Typed access to a JSON object body that collects every problem before refusing it."""

    def __init__(self, data: Any, allowed: set[_Str]) -> None:
        self.problems: dict[_Str, _Str] = {}
        if not isinstance(data, dict):
            raise ValidationFailed("请求体应为 JSON 对象", details={"body": "expected a JSON object"})
        self.data = data
        for key in data:
            if key not in allowed:
                self.problems[key] = f"unknown field; allowed: {', '.join(sorted(allowed))}"

    def str(self, key: _Str, *, required: _Bool = False) -> _Str | None:
        v = self.data.get(key)
        if v is None:
            if required:
                self.problems[key] = "required"
            return None
        if not isinstance(v, str) or not v.strip():
            self.problems[key] = "expected a non-empty string"
            return None
        return v.strip()

    def int(self, key: _Str, *, required: _Bool = False) -> _Int | None:
        v = self.data.get(key)
        if v is None:
            if required:
                self.problems[key] = "required"
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            self.problems[key] = "expected an integer"
            return None
        return v

    def bool(self, key: _Str, default: _Bool = False) -> _Bool:
        v = self.data.get(key, default)
        if not isinstance(v, bool):
            self.problems[key] = "expected true or false"
            return default
        return v

    def obj(self, key: _Str, *, required: _Bool = False) -> dict[_Str, Any] | None:
        v = self.data.get(key)
        if v is None:
            if required:
                self.problems[key] = "required"
            return None
        if not isinstance(v, dict):
            self.problems[key] = "expected a JSON object"
            return None
        return v

    def str_list(self, key: _Str) -> list[_Str]:
        v = self.data.get(key)
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.problems[key] = "expected a list of strings"
            return []
        return v

    def datetime(self, key: _Str, *, required: _Bool = False) -> _DateTime | None:
        raw = self.str(key, required=required)
        if raw is None:
            return None
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            self.problems[key] = "expected an ISO 8601 date-time with offset, e.g. 2026-11-23T09:00:00+08:00"
            return None
        if dt.tzinfo is None:
            self.problems[key] = "needs a UTC offset, e.g. +08:00"
            return None
        return dt

    def enum(self, key: _Str, enum: Any, *, required: _Bool = False) -> Any:
        raw = self.str(key, required=required)
        if raw is None:
            return None
        try:
            return enum(raw)
        except ValueError:
            self.problems[key] = f"expected one of: {', '.join(e.value for e in enum)}"
            return None

    def check(self) -> None:
        if self.problems:
            raise ValidationFailed(
                "请求参数有误：" + "；".join(f"{k}: {v}" for k, v in self.problems.items()),
                details=self.problems,
            )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, default=str)


# -- requests ----------------------------------------------------------------------------------
@api_handler
async def create_request(request: web.Request) -> web.StreamResponse:
    body = Body(await read_json(request), {"template", "initiator", "form", "urgency", "idempotency_key"})
    template = body.str("template", required=True)
    initiator = body.str("initiator", required=True)
    form = body.obj("form", required=True)
    urgency = body.enum("urgency", Urgency) or Urgency.NORMAL
    idem = body.str("idempotency_key")
    body.check()
    assert template and initiator and form is not None
    view = await request.app[WORKFLOW].submit(
        template_key=template, initiator=initiator, form=form, urgency=urgency, idempotency_key=idem
    )
    return _json(view, status=201)


@api_handler
async def get_request(request: web.Request) -> web.StreamResponse:
    return _json(await request.app[WORKFLOW].get(request.match_info["id"]))


@api_handler
async def list_requests(request: web.Request) -> web.StreamResponse:
    q = request.query
    unknown = set(q) - {"initiator", "status", "template", "limit", "offset"}
    problems = {k: "unknown query parameter" for k in unknown}
    limit, offset = 100, 0
    for name in ("limit", "offset"):
        if name in q:
            if not q[name].isdigit():
                problems[name] = "expected a non-negative integer"
            elif name == "limit":
                limit = min(int(q[name]), 500)
            else:
                offset = int(q[name])
    if "status" in q and q["status"] not in {s.value for s in core_status()}:
        problems["status"] = "expected one of: " + ", ".join(s.value for s in core_status())
    if problems:
        raise ValidationFailed("查询参数有误", details=problems)
    items = await request.app[WORKFLOW].list_requests(
        initiator=q.get("initiator"),
        status=q.get("status"),
        template=q.get("template"),
        limit=limit,
        offset=offset,
    )
    return _json({"items": items, "limit": limit, "offset": offset})


def core_status() -> list[Any]:
    from approvals.model import RequestStatus

    return list(RequestStatus)


@api_handler
async def act_on_request(request: web.Request) -> web.StreamResponse:
    body = Body(
        await read_json(request),
        {
            "action",
            "actor",
            "task_id",
            "version",
            "comment",
            "target",
            "position",
            "form",
            "idempotency_key",
            "as_admin",
        },
    )
    kind = body.enum("action", ActionKind, required=True)
    actor = body.str("actor", required=True)
    task_id = body.str("task_id")
    version = body.int("version")
    comment = body.data.get("comment")
    if comment is not None and not isinstance(comment, str):
        body.problems["comment"] = "expected a string"
    target = body.data.get("target")
    if target is not None and not isinstance(target, str | int):
        body.problems["target"] = "expected a user id or a step index"
    position = body.enum("position", SignerPosition)
    form = body.obj("form")
    idem = body.str("idempotency_key")
    as_admin = body.bool("as_admin")
    if kind in {
        ActionKind.APPROVE,
        ActionKind.REJECT,
        ActionKind.RETURN,
        ActionKind.TRANSFER,
        ActionKind.ADD_SIGNER,
        ActionKind.ACKNOWLEDGE,
    }:
        if task_id is None and "task_id" not in body.problems:
            body.problems["task_id"] = "required for this action"
        if version is None and "version" not in body.problems:
            body.problems["version"] = "required for this action (the task version you were shown)"
    if kind in {ActionKind.TRANSFER, ActionKind.ADD_SIGNER} and target is None:
        body.problems["target"] = "required for this action (a user id)"
    body.check()
    assert kind is not None and actor is not None
    action = Action(
        kind=kind,
        actor=actor,
        task_id=task_id,
        version=version,
        comment=comment,
        target=str(target) if target is not None else None,
        position=position,
        form=form,
        channel=Channel.API,
        is_admin=as_admin,
    )
    view = await request.app[WORKFLOW].act(
        request_id=request.match_info["id"], action=action, idempotency_key=idem
    )
    return _json(view)


@api_handler
async def list_tasks(request: web.Request) -> web.StreamResponse:
    assignee = request.query.get("assignee")
    if not assignee:
        raise ValidationFailed("需要 assignee 参数", details={"assignee": "required"})
    return _json({"items": await request.app[WORKFLOW].pending_tasks(assignee)})


@api_handler
async def preview_route(request: web.Request) -> web.StreamResponse:
    body = Body(await read_json(request), {"template", "initiator", "form"})
    template = body.str("template", required=True)
    initiator = body.str("initiator", required=True)
    form = body.obj("form", required=True)
    body.check()
    assert template and initiator and form is not None
    return _json(await request.app[WORKFLOW].preview(template_key=template, initiator=initiator, form=form))


# -- templates -------------------------------------------------------------------------------
def template_schema(t: Template) -> dict[str, Any]:
    return {
        "key": t.key,
        "name": t.name,
        "description": t.description,
        "category": t.category,
        "version": t.version,
        "fields": [
            {
                "key": f.key,
                "label": f.label,
                "type": f.type.value,
                "required": f.required,
                "min": f.min,
                "max": f.max,
                "integer": f.integer,
                "options": list(f.options),
                "default": f.default,
                "help": f.help,
            }
            for f in t.fields
        ],
        "steps": [
            {
                "key": s.key,
                "name": s.name,
                "mode": s.mode.value,
                "kind": s.kind.value,
                "permission": s.permission.value,
                "time_limit_hours": s.time_limit_hours,
            }
            for s in t.steps
        ],
    }


@api_handler
async def list_templates(request: web.Request) -> web.StreamResponse:
    templates = request.app[WORKFLOW].d.templates
    return _json(
        {
            "items": [
                {"key": t.key, "name": t.name, "category": t.category, "description": t.description}
                for t in sorted(templates.values(), key=lambda t: t.key)
            ]
        }
    )


@api_handler
async def get_template(request: web.Request) -> web.StreamResponse:
    return _json(template_schema(request.app[WORKFLOW].template(request.match_info["key"])))


# -- delegations -----------------------------------------------------------------------------
def delegation_view(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "delegator": d.delegator,
        "delegate": d.delegate,
        "starts_at": d.starts_at.isoformat(),
        "ends_at": d.ends_at.isoformat(),
        "templates": list(d.templates),
        "move_pending": d.move_pending,
        "reason": d.reason,
        "cancelled_at": d.cancelled_at.isoformat() if d.cancelled_at else None,
        "source_request": d.source_request,
    }


@api_handler
async def create_delegation(request: web.Request) -> web.StreamResponse:
    body = Body(
        await read_json(request),
        {"delegator", "delegate", "starts_at", "ends_at", "templates", "move_pending", "reason"},
    )
    delegator = body.str("delegator", required=True)
    delegate = body.str("delegate", required=True)
    starts = body.datetime("starts_at")
    ends = body.datetime("ends_at", required=True)
    templates = body.str_list("templates")
    move = body.bool("move_pending")
    reason = body.str("reason") or ""
    body.check()
    assert delegator and delegate and ends
    wf = request.app[WORKFLOW]
    d = await wf.create_delegation(
        delegator=delegator,
        delegate=delegate,
        starts_at=starts or wf.d.now(),
        ends_at=ends,
        templates=tuple(templates),
        move_pending=move,
        reason=reason,
    )
    return _json(delegation_view(d), status=201)


@api_handler
async def list_delegations(request: web.Request) -> web.StreamResponse:
    include_past = request.query.get("include_past", "false").lower() in ("1", "true", "yes")
    items = await request.app[WORKFLOW].list_delegations(
        user=request.query.get("user"), include_past=include_past
    )
    return _json({"items": [delegation_view(d) for d in items]})


@api_handler
async def cancel_delegation(request: web.Request) -> web.StreamResponse:
    d = await request.app[WORKFLOW].cancel_delegation(request.match_info["id"])
    return _json(delegation_view(d))


async def openapi(request: web.Request) -> web.StreamResponse:
    from bot.web.openapi import document

    return _json(document(request.app))


def setup_api(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/requests", create_request)
    r.add_get("/api/v1/requests", list_requests)
    r.add_get("/api/v1/requests/{id}", get_request)
    r.add_post("/api/v1/requests/{id}/actions", act_on_request)
    r.add_get("/api/v1/tasks", list_tasks)
    r.add_post("/api/v1/preview", preview_route)
    r.add_get("/api/v1/templates", list_templates)
    r.add_get("/api/v1/templates/{key}", get_template)
    r.add_post("/api/v1/delegations", create_delegation)
    r.add_get("/api/v1/delegations", list_delegations)
    r.add_delete("/api/v1/delegations/{id}", cancel_delegation)
    r.add_get("/api/v1/openapi.json", openapi)


__all__ = ["setup_api", "translate", "Forbidden", "NotFound", "Conflict"]

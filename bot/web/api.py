"""The approvals REST API (`/api/v1`): a pydantic model in, one workflow call, a model out.

Each route is declared in `ROUTES` with its body, query and response models (the OpenAPI
document is generated from them by `bot.web.openapi`); unknown body keys are refused and every
problem is listed in one 422. Refusals of the approval core pass through to the error
middleware, the only place they become statuses. Authentication (a bearer API token) is done
by `bot.web.middleware` for every /api/ path; each route's scope is declared here and checked by
the route table. A body's person (`initiator`, `actor`, `delegator`) is resolved by the token's
rules (`bot.web.routes.acting`): a personal token acts as its person only; acting for someone else
takes an admin integration token and `on_behalf_of` (or, for existing clients, the named person).
Decides nothing itself.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, StrictBool

from approvals import engine
from approvals.definitions import Template
from approvals.engine import NOTIFY_OTHERS_MAX
from approvals.forms import max_length
from approvals.model import ActionKind, Channel, RequestStatus, SignerPosition, Urgency
from bot.keys import API_TOKENS, CLOCK, SETTINGS, WORKFLOW
from bot.web.api_notices import setup_notices_api
from bot.web.routes import (
    FORM_KEYS_MAX,
    LIST_MAX,
    OFFSET_MAX,
    AwareTime,
    Body,
    Comment,
    Id,
    IdempotencyKey,
    Query,
    QueryId,
    Reason,
    Reply,
    RouteTable,
    Whole,
    acting,
    principal_of,
    read_body,
    read_query,
    reading,
    refuse,
    reply,
)
from services.api_tokens import Scope, TokenForbidden
from services.approval_views import DelegationView, IsoTime, PendingTaskView, RequestSummary, RequestView
from services.workspace import Workspace

ROUTES = RouteTable()
MAX_LIMIT = 500
# Actions on one task: the caller names the task and the version it was shown.
TASK_ACTIONS = {
    ActionKind.APPROVE,
    ActionKind.REJECT,
    ActionKind.RETURN,
    ActionKind.TRANSFER,
    ActionKind.ADD_SIGNER,
    ActionKind.ACKNOWLEDGE,
}


# -- models ------------------------------------------------------------------------------------
ON_BEHALF_OF = "the person an admin integration token acts for (recorded on the trail)"


FORM_TEXT = "field key -> value, see GET /templates/{key} (each field's max_length)"


class NewRequest(Body):
    template: Id = Field(description="template key, e.g. seal_use")
    initiator: Id | None = Field(
        None, description="user id from the org directory; default: a personal token's person"
    )
    on_behalf_of: Id | None = Field(None, description=ON_BEHALF_OF)
    form: dict[str, Any] = Field(description=FORM_TEXT, max_length=FORM_KEYS_MAX)
    urgency: Urgency = Urgency.NORMAL
    idempotency_key: IdempotencyKey | None = None


class Action(Body):
    """An action on a request or one of its tasks."""

    action: ActionKind
    actor: Id | None = Field(None, description="user id; default: a personal token's person")
    on_behalf_of: Id | None = Field(None, description=ON_BEHALF_OF)
    task_id: Id | None = Field(None, description="required for task actions")
    version: Whole | None = Field(None, description="the task version the actor was shown")
    comment: Comment | None = None
    target: Id | Whole | None = Field(
        None, description="user (transfer, add_signer) or 'initiator'/step index (return)"
    )
    targets: list[Id] = Field(
        default_factory=list,
        description="users to notify (notify_others 知会他人): each gets an FYI message and may read the request",
        max_length=NOTIFY_OTHERS_MAX,
    )
    position: SignerPosition | None = None
    form: dict[str, Any] | None = Field(
        None, description="corrected form (resubmit)", max_length=FORM_KEYS_MAX
    )
    idempotency_key: IdempotencyKey | None = None
    as_admin: StrictBool = Field(
        False,
        description="terminate, archive or notify_others as the administrator (the actor must hold the admin role)",
    )

    def problems(self) -> dict[str, str]:
        """What this action still needs besides well-formed fields."""
        problems: dict[str, str] = {}
        if self.action in TASK_ACTIONS:
            if self.task_id is None:
                problems["task_id"] = "required for this action"
            if self.version is None:
                problems["version"] = "required for this action (the task version you were shown)"
        if self.action in {ActionKind.TRANSFER, ActionKind.ADD_SIGNER} and self.target is None:
            problems["target"] = "required for this action (a user id)"
        if self.action == ActionKind.NOTIFY_OTHERS and not self.targets:
            problems["targets"] = "required for this action (user ids)"
        return problems


class PreviewIn(Body):
    template: Id
    initiator: Id | None = Field(None, description="user id; default: a personal token's person")
    form: dict[str, Any] = Field(description=FORM_TEXT, max_length=FORM_KEYS_MAX)
    urgency: Urgency = Urgency.NORMAL


class PreviewStep(BaseModel):
    key: str
    name: str
    mode: str
    kind: str
    assignees: list[str]
    assignee_names: list[str]
    skipped: bool
    auto_approved: list[str]
    notes: list[str]


class Preview(BaseModel):
    template: str
    initiator: str
    form: dict[str, Any]
    urgency: Urgency
    deadline: IsoTime = Field(description="when the whole sign-off is due if submitted now")
    steps: list[PreviewStep]


class NewDelegation(Body):
    delegator: Id | None = Field(
        None, description="user id; default: a personal token's person; someone else: admin scope"
    )
    delegate: Id
    starts_at: AwareTime | None = Field(None, description="default: now")
    ends_at: AwareTime
    templates: list[Id] = Field(
        default_factory=list, description="empty: every template", max_length=LIST_MAX
    )
    move_pending: StrictBool = Field(False, description="move the delegator's pending tasks now")
    reason: Reason = ""


class RequestQuery(Query):
    initiator: QueryId | None = Field(None, description="user id")
    status: RequestStatus | None = None
    template: QueryId | None = Field(None, description="template key")
    limit: int = Field(100, ge=0, le=OFFSET_MAX, description=f"at most {MAX_LIMIT} are returned")
    offset: int = Field(0, ge=0, le=OFFSET_MAX, description="skip")


class TaskQuery(BaseModel):
    assignee: Id = Field(description="user id")


class DelegationQuery(BaseModel):
    user: QueryId | None = Field(None, description="delegator or delegate")
    include_past: str = Field("false", description="true to include ended/cancelled")


class RequestList(BaseModel):
    items: list[RequestSummary]
    limit: int
    offset: int


class PendingTaskList(BaseModel):
    items: list[PendingTaskView]


class DelegationList(BaseModel):
    items: list[DelegationView]


class TemplateSummary(BaseModel):
    key: str
    name: str
    category: str
    description: str


class TemplateList(BaseModel):
    items: list[TemplateSummary]


class TemplateField(BaseModel):
    key: str
    label: str
    type: str
    required: bool
    min: int | float | None
    max: int | float | None
    integer: bool
    options: list[str]
    default: Any
    help: str
    max_length: int | None = Field(
        description="the longest text (text, textarea; list: each item; location: the address)"
    )


class TemplateStep(BaseModel):
    key: str
    name: str
    mode: str
    kind: str
    permission: str
    time_limit_hours: int | float


class TemplateView(BaseModel):
    """A template's form schema and steps (component name `Template`)."""

    key: str
    name: str
    description: str
    category: str
    version: int
    fields: list[TemplateField]
    steps: list[TemplateStep]

    @classmethod
    def of(cls, t: Template) -> TemplateView:
        return cls(
            key=t.key,
            name=t.name,
            description=t.description,
            category=t.category,
            version=t.version,
            fields=[
                TemplateField(
                    key=f.key,
                    label=f.label,
                    type=f.type.value,
                    required=f.required,
                    min=f.min,
                    max=f.max,
                    integer=f.integer,
                    options=list(f.options),
                    default=f.default,
                    help=f.help,
                    max_length=max_length(f),
                )
                for f in t.fields
            ],
            steps=[
                TemplateStep(
                    key=s.key,
                    name=s.name,
                    mode=s.mode.value,
                    kind=s.kind.value,
                    permission=s.permission.value,
                    time_limit_hours=s.time_limit_hours,
                )
                for s in t.steps
            ],
        )


# -- requests ----------------------------------------------------------------------------------
@ROUTES.route(
    "POST",
    "/api/v1/requests",
    summary="Submit a request",
    body=NewRequest,
    ok=[Reply(201, RequestView, "created")],
    errors=(404, 422),
)
async def create_request(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, NewRequest)
    who = acting(request, body.initiator, on_behalf_of=body.on_behalf_of, field="initiator")
    view = await request.app[WORKFLOW].submit(
        template_key=body.template,
        initiator=who.user,
        form=body.form,
        urgency=body.urgency,
        idempotency_key=body.idempotency_key,
        via=who.via,
    )
    return reply(view, status=201)


@ROUTES.route(
    "GET", "/api/v1/requests", summary="List requests", query=RequestQuery, ok=RequestList, errors=(422,)
)
async def list_requests(request: web.Request) -> web.StreamResponse:
    q = read_query(request, RequestQuery)
    limit = min(q.limit, MAX_LIMIT)
    items = await request.app[WORKFLOW].list_requests(
        initiator=reading(request, q.initiator, field="initiator"),
        status=q.status.value if q.status else None,
        template=q.template,
        limit=limit,
        offset=q.offset,
    )
    return reply(RequestList(items=items, limit=limit, offset=q.offset))


@ROUTES.route(
    "GET",
    "/api/v1/requests/{id}",
    summary="A request with its steps, tasks and trail",
    ok=RequestView,
    errors=(404,),
)
async def get_request(request: web.Request) -> web.StreamResponse:
    person = principal_of(request).user
    if person is None:
        return reply(await request.app[WORKFLOW].get(request.match_info["id"]))
    # a personal token sees what its person could open on the phone: the same rule
    user = (await request.app[WORKFLOW].org()).user(person)
    assert user is not None  # the token's person is active (checked with the token)
    workspace = Workspace(request.app[WORKFLOW], admin_roles=request.app[SETTINGS].admin_roles)
    return reply(await workspace.visible(request.match_info["id"], user))


@ROUTES.route(
    "POST",
    "/api/v1/requests/{id}/actions",
    summary="Act on a request or one of its tasks",
    body=Action,
    ok=RequestView,
    errors=(403, 404, 409, 422, 429, 503),
)
async def act_on_request(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, Action)
    if problems := body.problems():
        raise refuse("请求参数有误", problems)
    who = acting(request, body.actor, on_behalf_of=body.on_behalf_of)
    if body.as_admin:
        await request.app[API_TOKENS].check_org_admin(who.user)
    action = engine.Action(
        kind=body.action,
        actor=who.user,
        task_id=body.task_id,
        version=body.version,
        comment=body.comment,
        target=str(body.target) if body.target is not None else None,
        targets=tuple(body.targets),
        position=body.position,
        form=body.form,
        channel=Channel.API,
        is_admin=body.as_admin,
        via=who.via,
    )
    view = await request.app[WORKFLOW].act(
        request_id=request.match_info["id"], action=action, idempotency_key=body.idempotency_key
    )
    return reply(view)


@ROUTES.route(
    "GET",
    "/api/v1/tasks",
    summary="Pending tasks of a person, oldest first",
    query=TaskQuery,
    ok=PendingTaskList,
    errors=(422,),
)
async def list_tasks(request: web.Request) -> web.StreamResponse:
    q = read_query(request, TaskQuery)
    assignee = reading(request, q.assignee, field="assignee") or q.assignee
    return reply(PendingTaskList(items=await request.app[WORKFLOW].pending_tasks(assignee)))


@ROUTES.route(
    "POST",
    "/api/v1/preview",
    summary="The route a submission would take",
    body=PreviewIn,
    ok=Preview,
    errors=(404, 422),
    scope=Scope.READ,
)
async def preview_route(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, PreviewIn)
    initiator = body.initiator or principal_of(request).user
    if initiator is None:
        raise refuse("请求参数有误", {"initiator": "required"})
    route = await request.app[WORKFLOW].preview(
        template_key=body.template, initiator=initiator, form=body.form, urgency=body.urgency
    )
    return reply(Preview.model_validate(route))


# -- templates -------------------------------------------------------------------------------
@ROUTES.route("GET", "/api/v1/templates", summary="Templates", ok=TemplateList)
async def list_templates(request: web.Request) -> web.StreamResponse:
    items = [
        TemplateSummary(key=t.key, name=t.name, category=t.category, description=t.description)
        for t in request.app[WORKFLOW].startable_templates()
    ]
    return reply(TemplateList(items=items))


@ROUTES.route(
    "GET",
    "/api/v1/templates/{key}",
    summary="A template's form schema and steps",
    ok=TemplateView,
    errors=(404,),
)
async def get_template(request: web.Request) -> web.StreamResponse:
    return reply(TemplateView.of(request.app[WORKFLOW].template(request.match_info["key"])))


# -- delegations -----------------------------------------------------------------------------
@ROUTES.route(
    "POST",
    "/api/v1/delegations",
    summary="Set a delegate 代理",
    body=NewDelegation,
    ok=[Reply(201, DelegationView, "created")],
    errors=(404, 422),
)
async def create_delegation(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, NewDelegation)
    view = await request.app[WORKFLOW].create_delegation(
        delegator=acting(request, body.delegator, field="delegator").user,
        delegate=body.delegate,
        starts_at=body.starts_at or request.app[CLOCK].now(),
        ends_at=body.ends_at,
        templates=tuple(body.templates),
        move_pending=body.move_pending,
        reason=body.reason.strip(),
    )
    return reply(view, status=201)


@ROUTES.route("GET", "/api/v1/delegations", summary="Delegations", query=DelegationQuery, ok=DelegationList)
async def list_delegations(request: web.Request) -> web.StreamResponse:
    q = read_query(request, DelegationQuery)
    items = await request.app[WORKFLOW].list_delegations(
        user=reading(request, q.user, field="user"),
        include_past=q.include_past.lower() in ("1", "true", "yes"),
    )
    return reply(DelegationList(items=items))


@ROUTES.route(
    "DELETE", "/api/v1/delegations/{id}", summary="Cancel a delegation", ok=DelegationView, errors=(404,)
)
async def cancel_delegation(request: web.Request) -> web.StreamResponse:
    delegation_id = request.match_info["id"]
    principal = principal_of(request)
    if principal.user is None:
        principal.require(Scope.ADMIN)  # an integration cancels other people's delegations
    else:
        own = await request.app[WORKFLOW].list_delegations(user=principal.user, include_past=True)
        if not any(d.id == delegation_id and d.delegator == principal.user for d in own):
            raise TokenForbidden(
                "token.own_delegations_only",
                shown={"user": principal.user},
                missing="an admin integration token",
                token=principal.name,
            )
    return reply(await request.app[WORKFLOW].cancel_delegation(delegation_id))


def setup_api(app: web.Application) -> None:
    ROUTES.add_to(app.router)
    setup_notices_api(app)

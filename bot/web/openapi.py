"""The OpenAPI 3.1 document of /api/v1, generated from the route tables and their pydantic models.

Components are the models' JSON schemas (`model_json_schema` through `models_json_schema`), named
after the model less a `View` suffix (`RequestView` -> `Request`); paths come from each route's
declaration, including the token scope it needs (the operation's `security` role list and
`x-scope`). Nothing is written by hand here. A test walks the app's routes and checks every
/api/v1 route is documented (and nothing undocumented exists), and validates real responses
against these schemas. `setup_openapi` serves the document at /api/v1/openapi.json.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue, models_json_schema

from bot import __version__
from bot.web import api, api_calendar, api_checkins, api_notices, api_stats
from bot.web.middleware import readable_json
from bot.web.routes import Error, Route, RouteTable

REF = "#/components/schemas/{model}"
BEARER_TEXT = (
    "A named API token (`oabot tokens create --name N --scope read,act [--user u_x]`) or the bootstrap "
    "OABOT_API_TOKEN. Scopes: `read` GET routes and previews; `act` submit, act, check in, one's own "
    "delegations; `admin` calendar writes, other people's delegations and acting for others "
    "(`on_behalf_of`). A personal token (`--user`) acts only as its person."
)
ROUTES = RouteTable()


class _ComponentNames(GenerateJsonSchema):
    def normalize_name(self, name: str) -> str:
        return super().normalize_name(name).removesuffix("View")


def _tables() -> list[RouteTable]:
    return [
        api.ROUTES,
        api_calendar.ROUTES,
        api_checkins.ROUTES,
        api_stats.ROUTES,
        api_notices.ROUTES,
        ROUTES,
    ]


def _json(model: type[BaseModel] | None, refs: dict[Any, JsonSchemaValue]) -> dict[str, Any]:
    schema = refs[(model, "validation")] if model is not None else {"type": "object"}
    return {"application/json": {"schema": schema}}


def _parameters(route: Route, schemas: dict[str, Any], refs: dict[Any, JsonSchemaValue]) -> list[Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.path_params
    ]
    if route.query is not None:
        ref = refs[(route.query, "validation")]["$ref"].rsplit("/", 1)[-1]
        properties = schemas[ref]["properties"]
        for name, f in route.query.model_fields.items():
            key = f.alias or name
            schema = dict(properties[key])
            description = schema.pop("description", None)
            schema.pop("title", None)
            params.append(
                {"name": key, "in": "query", "required": f.is_required(), "schema": schema}
                | ({"description": description} if description else {})
            )
    return params


def _operation(route: Route, schemas: dict[str, Any], refs: dict[Any, JsonSchemaValue]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(r.status): {"description": r.description, "content": _json(r.model, refs)} for r in route.replies
    }
    for status, text in route.errors.items():
        responses[str(status)] = {"description": text, "content": _json(Error, refs)}
    op: dict[str, Any] = {"summary": route.summary}
    op["description"] = (route.description + "\n\n" if route.description else "") + (
        f"Needs a token with the `{route.scope.value}` scope."
    )
    op["security"] = [{"bearer": [route.scope.value]}]
    op["x-scope"] = route.scope.value
    if params := _parameters(route, schemas, refs):
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": _json(route.body, refs)}
    op["responses"] = responses
    return op


@cache
def document() -> dict[str, Any]:
    routes = [r for table in _tables() for r in table.routes]
    models: set[type[BaseModel]] = {Error}
    for r in routes:
        models |= {m for m in (r.body, r.query, *(x.model for x in r.replies)) if m is not None}
    mode: JsonSchemaMode = "validation"
    refs, top = models_json_schema(
        [(m, mode) for m in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF,
        schema_generator=_ComponentNames,
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        paths.setdefault(r.path, {})[r.method.lower()] = _operation(r, schemas, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "oabot API",
            "version": __version__,
            "description": "Approvals in WeCom/DingTalk: requests, actions, templates, delegations; notices.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": BEARER_TEXT}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


@ROUTES.route("GET", "/api/v1/openapi.json", summary="This document", ok=None)
async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(document(), dumps=readable_json)


def setup_openapi(app: web.Application) -> None:
    ROUTES.add_to(app.router)

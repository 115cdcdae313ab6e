"""The OpenAPI 3 document of /api/v1, kept beside the handlers it describes.

A test walks the app's routes and checks every /api/v1 route is documented (and nothing
undocumented exists), and validates real responses against these schemas.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from approvals.model import ActionKind, RequestStatus, SignerPosition, Urgency
from bot import __version__
from bot.web.api_checkins import CHECKIN_PATHS, CHECKIN_SCHEMAS
from bot.web.api_stats import STATS_PATHS, STATS_SCHEMAS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(t: str) -> dict[str, Any]:
    return {"type": [t, "null"]}


ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "details": {}},
}

TASK = {
    "type": "object",
    "required": ["id", "assignee", "status", "version", "permission"],
    "properties": {
        "id": {"type": "string"},
        "step_index": {"type": "integer"},
        "assignee": {"type": "string"},
        "assignee_name": {"type": "string"},
        "acting_for": _nullable("string"),
        "permission": {"enum": ["approve", "collaborate", "notify"]},
        "status": {
            "enum": [
                "queued",
                "pending",
                "approved",
                "rejected",
                "returned",
                "transferred",
                "acknowledged",
                "closed",
            ]
        },
        "version": {"type": "integer"},
        "origin": {"type": "string"},
        "activated_at": _nullable("string"),
        "decided_at": _nullable("string"),
        "decided_by": _nullable("string"),
        "comment": _nullable("string"),
        "close_reason": _nullable("string"),
        "due_at": _nullable("string"),
    },
}

STEP = {
    "type": "object",
    "required": ["index", "key", "name", "mode", "status", "tasks"],
    "properties": {
        "index": {"type": "integer"},
        "key": {"type": "string"},
        "name": {"type": "string"},
        "mode": {"enum": ["sequential", "all", "any"]},
        "kind": {"enum": ["approve", "handle", "read", "notify"]},
        "status": {"enum": ["waiting", "active", "approved", "rejected", "skipped", "cancelled"]},
        "round": {"type": "integer"},
        "action_label": {"type": "string"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "tasks": {"type": "array", "items": _ref("Task")},
    },
}

TRAIL_EVENT = {
    "type": "object",
    "required": ["seq", "kind", "at", "hash"],
    "properties": {
        "seq": {"type": "integer"},
        "kind": {"type": "string"},
        "at": {"type": "string"},
        "actor": _nullable("string"),
        "actor_name": _nullable("string"),
        "acting_for": _nullable("string"),
        "channel": {"type": "string"},
        "task_id": _nullable("string"),
        "step_index": _nullable("integer"),
        "before": _nullable("string"),
        "after": _nullable("string"),
        "comment": _nullable("string"),
        "data": {"type": "object"},
        "hash": {"type": "string"},
    },
}

REQUEST = {
    "type": "object",
    "required": ["id", "template", "status", "urgency", "initiator", "form", "steps"],
    "properties": {
        "id": {"type": "string"},
        "template": {"type": "string"},
        "title": {"type": "string"},
        "status": {"enum": [s.value for s in RequestStatus]},
        "urgency": {"enum": [u.value for u in Urgency]},
        "initiator": {"type": "string"},
        "initiator_name": {"type": "string"},
        "form": {"type": "object"},
        "round": {"type": "integer"},
        "version": {"type": "integer"},
        "created_at": {"type": "string"},
        "finished_at": _nullable("string"),
        "deadline": {"type": "string"},
        "steps": {"type": "array", "items": _ref("Step")},
        "trail": {"type": "array", "items": _ref("TrailEvent")},
        "acted_task": _ref("Task"),
        "info": {"type": "object"},
    },
}

NEW_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["template", "initiator", "form"],
    "properties": {
        "template": {"type": "string", "description": "template key, e.g. seal_use"},
        "initiator": {"type": "string", "description": "user id from the org directory"},
        "form": {"type": "object", "description": "field key -> value, see GET /templates/{key}"},
        "urgency": {"enum": [u.value for u in Urgency], "default": "normal"},
        "idempotency_key": {"type": "string"},
    },
}

ACTION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["action", "actor"],
    "properties": {
        "action": {"enum": [a.value for a in ActionKind]},
        "actor": {"type": "string"},
        "task_id": {"type": "string", "description": "required for task actions"},
        "version": {"type": "integer", "description": "the task version the actor was shown"},
        "comment": {"type": "string"},
        "target": {
            "type": ["string", "integer"],
            "description": "user (transfer, add_signer) or 'initiator'/step index (return)",
        },
        "position": {"enum": [p.value for p in SignerPosition]},
        "form": {"type": "object", "description": "corrected form (resubmit)"},
        "idempotency_key": {"type": "string"},
        "as_admin": {"type": "boolean", "description": "terminate as the administrator"},
    },
}

PREVIEW_IN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["template", "initiator", "form"],
    "properties": {
        "template": {"type": "string"},
        "initiator": {"type": "string"},
        "form": {"type": "object"},
    },
}

PREVIEW_OUT = {
    "type": "object",
    "required": ["template", "steps"],
    "properties": {
        "template": {"type": "string"},
        "initiator": {"type": "string"},
        "form": {"type": "object"},
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "name", "assignees", "skipped", "auto_approved", "notes"],
                "properties": {
                    "key": {"type": "string"},
                    "name": {"type": "string"},
                    "mode": {"type": "string"},
                    "kind": {"type": "string"},
                    "assignees": {"type": "array", "items": {"type": "string"}},
                    "assignee_names": {"type": "array", "items": {"type": "string"}},
                    "skipped": {"type": "boolean"},
                    "auto_approved": {"type": "array", "items": {"type": "string"}},
                    "notes": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}

TEMPLATE = {
    "type": "object",
    "required": ["key", "name", "fields", "steps"],
    "properties": {
        "key": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "category": {"type": "string"},
        "version": {"type": "integer"},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "label", "type", "required"],
                "properties": {
                    "key": {"type": "string"},
                    "label": {"type": "string"},
                    "type": {"type": "string"},
                    "required": {"type": "boolean"},
                    "min": {"type": ["number", "null"]},
                    "max": {"type": ["number", "null"]},
                    "integer": {"type": "boolean"},
                    "options": {"type": "array", "items": {"type": "string"}},
                    "default": {},
                    "help": {"type": "string"},
                },
            },
        },
        "steps": {"type": "array", "items": {"type": "object"}},
    },
}

DELEGATION = {
    "type": "object",
    "required": ["id", "delegator", "delegate", "starts_at", "ends_at"],
    "properties": {
        "id": {"type": "string"},
        "delegator": {"type": "string"},
        "delegate": {"type": "string"},
        "starts_at": {"type": "string"},
        "ends_at": {"type": "string"},
        "templates": {"type": "array", "items": {"type": "string"}},
        "move_pending": {"type": "boolean"},
        "reason": {"type": "string"},
        "cancelled_at": _nullable("string"),
        "source_request": _nullable("string"),
    },
}

NEW_DELEGATION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["delegator", "delegate", "ends_at"],
    "properties": {
        "delegator": {"type": "string"},
        "delegate": {"type": "string"},
        "starts_at": {"type": "string", "format": "date-time", "description": "default: now"},
        "ends_at": {"type": "string", "format": "date-time"},
        "templates": {"type": "array", "items": {"type": "string"}, "description": "empty: every template"},
        "move_pending": {"type": "boolean", "description": "move the delegator's pending tasks now"},
        "reason": {"type": "string"},
    },
}

PENDING_TASK = {
    "type": "object",
    "required": ["task_id", "version", "request_id", "template", "title"],
    "properties": {
        "task_id": {"type": "string"},
        "version": {"type": "integer"},
        "request_id": {"type": "string"},
        "template": {"type": "string"},
        "template_name": {"type": "string"},
        "title": {"type": "string"},
        "initiator": {"type": "string"},
        "initiator_name": {"type": "string"},
        "urgency": {"type": "string"},
        "assignee": {"type": "string"},
        "acting_for": _nullable("string"),
        "activated_at": _nullable("string"),
        "due_at": _nullable("string"),
        "permission": {"type": "string"},
    },
}


def _items(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": schema}},
    }


def _ok(schema: dict[str, Any], status: str = "200", description: str = "OK") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


def _errors(*codes: str) -> dict[str, Any]:
    text = {
        "401": "missing or wrong bearer token",
        "403": "the actor may not do this",
        "404": "not found",
        "409": "stale card, already decided, or request finished",
        "422": "invalid body or form (every problem listed)",
        "429": "rate limited (urge)",
        "503": "busy; retry",
    }
    return {
        c: {"description": text[c], "content": {"application/json": {"schema": _ref("Error")}}} for c in codes
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _q(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/requests": {
        "post": {
            "summary": "Submit a request",
            "requestBody": _body(_ref("NewRequest")),
            "responses": {**_ok(_ref("Request"), "201", "created"), **_errors("401", "404", "422")},
        },
        "get": {
            "summary": "List requests",
            "parameters": [
                _q("initiator", "user id"),
                _q("status", "request status"),
                _q("template", "template key"),
                _q("limit", "max 500"),
                _q("offset", "skip"),
            ],
            "responses": {**_ok(_items({"type": "object"})), **_errors("401", "422")},
        },
    },
    "/api/v1/requests/{id}": {
        "get": {
            "summary": "A request with its steps, tasks and trail",
            "parameters": [_p("id")],
            "responses": {**_ok(_ref("Request")), **_errors("401", "404")},
        },
    },
    "/api/v1/requests/{id}/actions": {
        "post": {
            "summary": "Act on a request or one of its tasks",
            "parameters": [_p("id")],
            "requestBody": _body(_ref("Action")),
            "responses": {**_ok(_ref("Request")), **_errors("401", "403", "404", "409", "422", "429", "503")},
        },
    },
    "/api/v1/tasks": {
        "get": {
            "summary": "Pending tasks of a person, oldest first",
            "parameters": [_q("assignee", "user id", True)],
            "responses": {**_ok(_items(_ref("PendingTask"))), **_errors("401", "422")},
        },
    },
    "/api/v1/preview": {
        "post": {
            "summary": "The route a submission would take",
            "requestBody": _body(_ref("PreviewIn")),
            "responses": {**_ok(_ref("Preview")), **_errors("401", "404", "422")},
        },
    },
    "/api/v1/templates": {
        "get": {"summary": "Templates", "responses": {**_ok(_items({"type": "object"})), **_errors("401")}}
    },
    "/api/v1/templates/{key}": {
        "get": {
            "summary": "A template's form schema and steps",
            "parameters": [_p("key")],
            "responses": {**_ok(_ref("Template")), **_errors("401", "404")},
        }
    },
    "/api/v1/delegations": {
        "post": {
            "summary": "Set a delegate 代理",
            "requestBody": _body(_ref("NewDelegation")),
            "responses": {**_ok(_ref("Delegation"), "201", "created"), **_errors("401", "404", "422")},
        },
        "get": {
            "summary": "Delegations",
            "parameters": [
                _q("user", "delegator or delegate"),
                _q("include_past", "true to include ended/cancelled"),
            ],
            "responses": {**_ok(_items(_ref("Delegation"))), **_errors("401")},
        },
    },
    "/api/v1/delegations/{id}": {
        "delete": {
            "summary": "Cancel a delegation",
            "parameters": [_p("id")],
            "responses": {**_ok(_ref("Delegation")), **_errors("401", "404")},
        }
    },
    "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": _ok({"type": "object"})}},
    **STATS_PATHS,
    **CHECKIN_PATHS,
}

SCHEMAS: dict[str, Any] = {
    "Error": ERROR,
    "Task": TASK,
    "Step": STEP,
    "TrailEvent": TRAIL_EVENT,
    "Request": REQUEST,
    "NewRequest": NEW_REQUEST,
    "Action": ACTION,
    "PreviewIn": PREVIEW_IN,
    "Preview": PREVIEW_OUT,
    "Template": TEMPLATE,
    "Delegation": DELEGATION,
    "NewDelegation": NEW_DELEGATION,
    "PendingTask": PENDING_TASK,
    **STATS_SCHEMAS,
    **CHECKIN_SCHEMAS,
}


def _merge_module_paths() -> None:
    """Routes documented beside their own module (bot.web.api_calendar) join the document here."""
    from bot.web.api_calendar import OPENAPI_PATHS, OPENAPI_SCHEMAS

    PATHS.update(OPENAPI_PATHS)
    SCHEMAS.update(OPENAPI_SCHEMAS)


_merge_module_paths()


def document(app: web.Application | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "oabot API",
            "version": __version__,
            "description": "Approvals in WeCom/DingTalk: requests, actions, templates, delegations.",
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "OABOT_API_TOKEN"}
            },
        },
        "security": [{"bearer": []}],
        "paths": PATHS,
    }

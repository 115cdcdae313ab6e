"""The OpenAPI document describes exactly the API the server has, and real answers fit it."""

from __future__ import annotations

import re

import jsonschema
from jsonschema import Draft202012Validator

from bot.web.openapi import document

SEAL_FORM = {
    "seal": "公章",
    "reason": "签署合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合同.pdf"],
    "copies": 2,
    "take_out": False,
}


def _validator(name: str) -> Draft202012Validator:
    doc = document()
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return Draft202012Validator(schema)


def _check(name: str, instance: object) -> None:
    errors = sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_every_api_route_is_documented_and_nothing_else(api):
    doc_paths = {(p, m.upper()) for p, ops in document()["paths"].items() for m in ops}
    served = set()
    for resource in api.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if not path or not path.startswith("/api/v1"):
            continue
        for route in resource:
            if route.method != "HEAD":
                served.add((re.sub(r"\{(\w+)\}", r"{\1}", path), route.method))
    assert served == doc_paths


async def test_openapi_document_is_served_and_valid(api):
    _, body = await api.call("GET", "/openapi.json", expect=200)
    assert body["openapi"].startswith("3.")
    Draft202012Validator.check_schema(
        {"components": body["components"], **body["components"]["schemas"]["Request"]}
    )


async def test_real_responses_match_the_schemas(api):
    created = await api.submit("seal_use", "u_wu", SEAL_FORM)
    _check("Request", created)
    acted = await api.decide("u_sun", comment="同意")
    _check("Request", acted)
    _, full = await api.call("GET", f"/requests/{created['id']}", expect=200)
    _check("Request", full)
    assert full["trail"]
    _, tasks = await api.call("GET", "/tasks?assignee=u_wang", expect=200)
    for t in tasks["items"]:
        _check("PendingTask", t)
    _, preview = await api.call(
        "POST",
        "/preview",
        {
            "template": "vehicle_dispatch",
            "initiator": "u_wu",
            "form": {
                "destination": "浦东机场",
                "depart_at": "2026-11-24T09:00:00+08:00",
                "return_at": "2026-11-24T18:00:00+08:00",
                "self_drive": False,
                "passengers": 2,
                "reason": "接客户",
            },
        },
        expect=200,
    )
    _check("Preview", preview)
    _, tpl = await api.call("GET", "/templates/seal_use", expect=200)
    _check("Template", tpl)
    _, d = await api.call(
        "POST",
        "/delegations",
        {"delegator": "u_sun", "delegate": "u_zhou", "ends_at": "2026-11-30T18:00:00+08:00"},
        expect=201,
    )
    _check("Delegation", d)
    status, err = await api.call("POST", "/requests", {"template": "seal_use"})
    assert status == 422
    _check("Error", err)


def test_request_bodies_in_the_document_refuse_unknown_keys():
    doc = document()
    for name in ("NewRequest", "Action", "PreviewIn", "NewDelegation"):
        schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        try:
            jsonschema.validate({"surprise": 1}, schema)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"{name} accepts unknown keys")

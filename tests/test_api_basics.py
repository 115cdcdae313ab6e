"""REST API basics: auth, bad bodies, errors with the right status and nothing changed."""

from __future__ import annotations

SEAL_FORM = {
    "seal": "公章",
    "reason": "签署合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合同.pdf"],
    "copies": 2,
    "take_out": False,
}


async def test_api_needs_the_bearer_token(api):
    resp = await api.client.get("/api/v1/templates")
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"


async def test_templates_are_listed_with_their_form_schema(api):
    _, body = await api.call("GET", "/templates", expect=200)
    keys = {t["key"] for t in body["items"]}
    assert {"seal_use", "vehicle_dispatch", "leave", "doc_issue", "doc_receive"} <= keys
    _, seal = await api.call("GET", "/templates/seal_use", expect=200)
    assert {f["key"] for f in seal["fields"]} >= {
        "department",
        "seal",
        "files",
        "copies",
        "take_out",
        "companions",
    }
    status, body = await api.call("GET", "/templates/nope")
    assert status == 404 and body["error"] == "template_not_found"


async def test_bad_form_lists_every_field_problem_and_creates_nothing(api):
    form = {**SEAL_FORM, "copies": 0, "files": [], "companions": ["u_nobody"], "colour": "red"}
    status, body = await api.call(
        "POST", "/requests", {"template": "seal_use", "initiator": "u_wu", "form": form}
    )
    assert status == 422 and body["error"] == "form_invalid"
    keys = {f["key"] for f in body["details"]["fields"]}
    assert {"copies", "files", "companions", "colour"} <= keys
    _, listed = await api.call("GET", "/requests", expect=200)
    assert listed["items"] == []


async def test_unknown_body_keys_and_bad_types_are_refused(api):
    status, body = await api.call(
        "POST", "/requests", {"template": "seal_use", "initiator": 5, "form": [], "x": 1}
    )
    assert status == 422
    assert set(body["details"]) == {"initiator", "form", "x"}
    resp = await api.client.post("/api/v1/requests", data="{not json", headers=api.headers)
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_json"


async def test_submit_is_idempotent_with_a_key(api):
    a = await api.submit("seal_use", "u_wu", SEAL_FORM, idempotency_key="k1")
    b = await api.submit("seal_use", "u_wu", SEAL_FORM, idempotency_key="k1")
    assert a["id"] == b["id"]
    _, listed = await api.call("GET", "/requests", expect=200)
    assert len(listed["items"]) == 1


async def test_action_errors_map_to_statuses_and_change_nothing(api):
    req = await api.submit("seal_use", "u_wu", SEAL_FORM)
    task = (await api.pending("u_sun"))[0]
    path = f"/requests/{req['id']}/actions"
    status, body = await api.call(
        "POST",
        path,
        {"action": "approve", "actor": "u_li", "task_id": task["task_id"], "version": task["version"]},
    )
    assert status == 403 and body["error"] == "not_assignee"
    status, body = await api.call(
        "POST",
        path,
        {"action": "approve", "actor": "u_sun", "task_id": task["task_id"], "version": task["version"] + 5},
    )
    assert status == 409 and body["error"] == "stale_task"
    status, body = await api.call("POST", path, {"action": "approve", "actor": "u_sun"})
    assert status == 422 and set(body["details"]) == {"task_id", "version"}
    status, body = await api.call("POST", path, {"action": "fly", "actor": "u_sun"})
    assert status == 422 and "action" in body["details"]
    _, now = await api.call("GET", f"/requests/{req['id']}", expect=200)
    assert now["version"] == req["version"]
    ok = await api.decide("u_sun")
    assert ok["steps"][0]["status"] == "approved"
    status, body = await api.call(
        "POST",
        path,
        {"action": "approve", "actor": "u_sun", "task_id": task["task_id"], "version": task["version"]},
    )
    assert status == 409 and body["error"] == "task_decided"
    status, body = await api.call("POST", "/requests/nope/actions", {"action": "withdraw", "actor": "u_wu"})
    assert status == 404


async def test_urge_rate_limit_says_when(api, clock):
    req = await api.submit("seal_use", "u_wu", SEAL_FORM)
    path = f"/requests/{req['id']}/actions"
    await api.call("POST", path, {"action": "urge", "actor": "u_wu"}, expect=200)
    status, body = await api.call("POST", path, {"action": "urge", "actor": "u_wu"})
    assert status == 429 and body["error"] == "rate_limited"
    assert "retry_at" in body["details"]

"""Every trail event kind the engine can write has Chinese words on the request page and the console.

The kinds are read from the engine's source (the first argument of each `flow.event(...)` /
`_append_event(...)`, the `SystemNote` values, and the two f-string families `auto_{decision}` and
`request_{status}`), so a kind added later without a label fails here instead of showing 其他.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from approvals import engine
from approvals.model import RequestStatus
from bot.web.console.labels import OTHER, TRAIL_KIND_LABEL, Labels

ENGINE = Path(engine.__file__)
HAN = re.compile(r"[\u4e00-\u9fff]")


def _kind_argument(call: ast.Call) -> ast.expr | None:
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name == "event" and call.args:
        return call.args[0]
    if name == "_append_event" and len(call.args) > 2:
        return call.args[2]
    return None


def engine_trail_kinds() -> set[str]:
    tree = ast.parse(ENGINE.read_text(encoding="utf-8"))
    constants = {
        t.id: n.value.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    auto_decisions = {
        a.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "_auto_decided"
        for a in n.args
        if isinstance(a, ast.Constant) and isinstance(a.value, str)
    }
    kinds: set[str] = {str(note) for note in engine.SystemNote}
    unknown: list[str] = []
    for node in ast.walk(tree):
        arg = _kind_argument(node) if isinstance(node, ast.Call) else None
        if arg is None:
            continue
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            kinds.add(arg.value)
        elif isinstance(arg, ast.Name) and arg.id in constants:
            kinds.add(constants[arg.id])
        elif isinstance(arg, ast.JoinedStr) and ast.unparse(arg) == "f'auto_{after}'":
            kinds |= {f"auto_{d}" for d in auto_decisions}
        elif isinstance(arg, ast.JoinedStr) and ast.unparse(arg) == "f'request_{status.value}'":
            kinds |= {f"request_{s.value}" for s in RequestStatus}
        elif ast.unparse(arg) not in ("kind", "note.value"):  # the helpers' own parameters
            unknown.append(ast.unparse(arg))
    assert not unknown, f"trail kinds this test cannot read: {unknown}"
    return kinds


def test_the_scan_finds_the_kinds_we_know() -> None:
    kinds = engine_trail_kinds()
    # a scan that found nothing would make the next test pass for nothing
    assert {"submitted", "step_started", "taken_over", "supervised", "handed_over"} <= kinds
    assert {"auto_approved", "auto_rejected", "request_approved", "deadline_replanned"} <= kinds
    assert len(kinds) >= 30


def test_every_trail_kind_has_chinese_words() -> None:
    missing = sorted(k for k in engine_trail_kinds() if Labels.trail_kind(k) == OTHER)
    assert not missing, f"trail kinds shown as {OTHER} on the request page and console: {missing}"
    for kind, label in TRAIL_KIND_LABEL.items():
        assert HAN.search(label) and not re.search(r"[a-z_]{3,}", label), (kind, label)

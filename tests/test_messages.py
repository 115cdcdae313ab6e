"""The refusal catalogue: every reason the cores and services raise has words, and no words show
an internal code."""

from __future__ import annotations

import ast
import importlib
import re
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest

from approvals.definitions import Permission
from approvals.errors import ActionNotAllowed, BadTarget, RateLimited, RequestFinished
from approvals.form_errors import FieldProblem, FormInvalid
from approvals.model import ActionKind, RequestStatus, TaskStatus
from checkins.errors import FixInvalid, FixProblem, LinkExpired
from notifications.messages import MESSAGES, message_for
from org.errors import DomainError

ROOT = Path(__file__).resolve().parent.parent
RAISING = [
    "approvals",
    "checkins",
    "notices",
    "org",
    "services",
    "notifications",
    "deadlines",
    "reports",
    "storage",
]
RAISING += ["handlers", "bot"]


def _modules() -> list[str]:
    """Every module of the source packages (not the migration scripts or `__main__`, which run on
    import)."""
    names = []
    for folder in RAISING:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts and path.name != "__main__.py":
                names.append(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"))
    return names


def _error_classes() -> dict[str, type[DomainError]]:
    for module in _modules():  # so that every error class, wherever defined, is known
        importlib.import_module(module)
    found: dict[str, type[DomainError]] = {}
    todo: list[type[DomainError]] = [DomainError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def _raised_reasons() -> dict[str, str]:
    """Every reason a domain error is built with in the source, with where."""
    classes = _error_classes()
    reasons: dict[str, str] = {}
    for folder in RAISING:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                    continue
                cls = classes.get(node.func.id)
                if cls is None or cls is DomainError:
                    continue
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Attribute) and first.attr == "reason":
                    continue  # passes on another error's reason
                named = isinstance(first, ast.Constant) and isinstance(first.value, str)
                reason = first.value if named else cls.code  # type: ignore[union-attr]
                reasons[reason] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return reasons


def test_every_reason_raised_has_words() -> None:
    raised = _raised_reasons()
    assert len(raised) > 40
    missing = {reason: where for reason, where in raised.items() if reason not in MESSAGES}
    assert not missing


def test_every_entry_is_raised_somewhere() -> None:
    assert set(MESSAGES) - set(_raised_reasons()) == set()


CODES = {str(v) for enum in (RequestStatus, TaskStatus, ActionKind, Permission) for v in enum}
LABELLED = {"status", "permission", "action", "verb"}  # parameters that hold a code


@pytest.mark.parametrize("reason", sorted(MESSAGES))
def test_no_message_shows_an_internal_code(reason: str) -> None:
    text = MESSAGES[reason]
    assert not set(re.findall(r"[a-z_]+", re.sub(r"\{[^}]*\}", "", text))) & CODES
    if reason == "illegal_transition":
        return  # a bug in the caller, in the developer's words
    for _, name, spec, _ in string.Formatter().parse(text):
        if name in LABELLED:
            assert spec, f"{reason}: {{{name}}} would show a code"


def test_messages_read_as_they_did() -> None:
    at = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    said = [
        message_for(RequestFinished(request_id="r-1", status="approved")),
        message_for(ActionNotAllowed("action_not_allowed.permission", permission="notify", action="reject")),
        message_for(BadTarget("bad_target.self", shown={"verb": "add_signer"}, target="u_1")),
        message_for(RateLimited(retry_at=at, shown={"retry_local": at})),
        message_for(FixInvalid(shown={"problems": (FixProblem.LATITUDE, FixProblem.ACCURACY)})),
        message_for(LinkExpired(shown={"expired_local": at}, expired_at=at)),
        message_for(FormInvalid([FieldProblem("a", "金额", "必填"), FieldProblem("x", None, "未知字段")])),
    ]
    assert said == [
        "申请已结束（已通过），无需再处理",
        "该待办的权限（知会）不允许「驳回」",
        "不能加签给自己",
        "每条待办 30 分钟内只能催办一次，10:30 后可再次催办",
        "位置无效：纬度应为 -90 到 90 之间的数字；定位精度应为不小于 0 的米数",
        "链接已于 11-23 10:30 过期，没有记录任何内容。请在聊天中发送「打卡」获取新链接，或直接发送位置。",
        "表单有误：金额：必填；x：未知字段",
    ]


def test_an_error_holds_no_words() -> None:
    error = RequestFinished(request_id="r-1", status="running")
    assert str(error) == "request_finished" and error.context == {"request_id": "r-1", "status": "running"}

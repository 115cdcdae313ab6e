"""Chinese labels for the codes a request view carries (statuses, trail event kinds), so the
console's request page shows words, never internal codes. Wording only: no rule lives here."""

from __future__ import annotations

from typing import Any

from approvals.model import RequestStatus, StepStatus, TaskStatus
from notifications.wording import REQUEST_STATUS_LABEL

STEP_STATUS_LABEL = {
    StepStatus.WAITING: "未开始",
    StepStatus.ACTIVE: "进行中",
    StepStatus.APPROVED: "已完成",
    StepStatus.REJECTED: "已驳回",
    StepStatus.SKIPPED: "已跳过",
    StepStatus.CANCELLED: "已取消",
}

TASK_STATUS_LABEL = {
    TaskStatus.QUEUED: "排队中",
    TaskStatus.PENDING: "待处理",
    TaskStatus.APPROVED: "已处理",
    TaskStatus.REJECTED: "已驳回",
    TaskStatus.RETURNED: "已退回",
    TaskStatus.TRANSFERRED: "已转交",
    TaskStatus.ACKNOWLEDGED: "已知悉",
    TaskStatus.CLOSED: "已关闭",
}

TRAIL_KIND_LABEL = {
    "submitted": "提交",
    "resubmitted": "重新提交",
    "step_started": "进入步骤",
    "step_approved": "步骤完成",
    "step_skipped": "跳过步骤",
    "task_assigned": "分配待办",
    "approved": "同意",
    "rejected": "驳回",
    "returned": "退回",
    "transferred": "转交",
    "signer_added": "加签",
    "acknowledged": "知悉",
    "commented": "评论",
    "urged": "催办",
    "delegated": "代理",
    "handed_over": "离职交接",
    "auto_approved": "自动同意",
    "auto_rejected": "自动驳回",
    "auto_transferred": "自动转交",
    "reminded": "提醒",
    "supervised": "督办",
    "escalated": "上报",
    "taken_over": "代为处理",
    "deadline_replanned": "期限重算",
    "digest_sent": "汇总提醒",
    "delegation_created": "设置代理",
    "delegation_cancelled": "取消代理",
    "delegation_not_created": "未能设置代理",
    "doc_number_assigned": "登记文号",
    "doc_number_voided": "文号作废",
    "cc_sent": "抄送",
    "others_notified": "知会他人",
    "archived": "归档",
    "acknowledged_by_default": "默认已读（逾期未确认）",
    **{f"request_{status.value}": label for status, label in REQUEST_STATUS_LABEL.items()},
}
OTHER = "其他"  # a code this page does not know yet: still no raw code on screen
SYSTEM_ACTOR = "system"


class Labels:
    """Passed to the request template as `labels`."""

    @staticmethod
    def request_status(code: str) -> str:
        return _lookup(REQUEST_STATUS_LABEL, RequestStatus, code)

    @staticmethod
    def step_status(code: str) -> str:
        return _lookup(STEP_STATUS_LABEL, StepStatus, code)

    @staticmethod
    def task_status(code: str) -> str:
        return _lookup(TASK_STATUS_LABEL, TaskStatus, code)

    @staticmethod
    def trail_kind(code: str) -> str:
        return TRAIL_KIND_LABEL.get(code, OTHER)

    @staticmethod
    def actor(event: dict[str, Any]) -> str:
        if event.get("actor") == SYSTEM_ACTOR:
            return "系统"
        return str(event.get("actor_name") or "")


def _lookup(table: dict[Any, str], codes: Any, code: str) -> str:
    try:
        return table[codes(code)]
    except (KeyError, ValueError):
        return OTHER

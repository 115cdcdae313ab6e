"""Template definitions: the typed shape a template YAML file is loaded into.

`approvals.template_loader` builds these from YAML (reporting problems with file and line);
the engine reads them. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FieldType(StrEnum):
    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    DATETIME = "datetime"
    DATERANGE = "daterange"
    SELECT = "select"
    MULTISELECT = "multiselect"
    BOOL = "bool"
    USER = "user"
    USERS = "users"
    DEPARTMENT = "department"
    LIST = "list"  # list of text, e.g. file names
    SITE = "site"  # a site id from the org file
    LOCATION = "location"  # {"site": id} or {"address": str, "lat": float, "lng": float}


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    type: FieldType
    required: bool = False
    # number/money: value bounds; text/textarea: length; list/users/multiselect: item count
    min: float | None = None
    max: float | None = None
    integer: bool = False  # number: whole numbers only
    options: tuple[str, ...] = ()  # select / multiselect
    default: Any = None  # "$initiator.department" / "$initiator" are filled from the initiator
    help: str = ""
    line: int | None = None
    # date/datetime: must not be earlier than this other field of the same type (return after depart)
    not_before: str | None = None
    # required whenever this condition holds on the form (a seal taken out needs its return time)
    required_if: Condition | None = None
    # user/users: the initiator cannot be picked (nobody stands in for themselves)
    not_initiator: bool = False
    # number: the working days of this daterange field on the organisation's calendar; filled in
    # when left empty, and a typed value that does not match is refused
    working_days_of: str | None = None
    # text, textarea, list (each item), location (the address): the longest text, in characters;
    # None: the kind's default (approvals.forms.MAX_LENGTH)
    max_length: int | None = None


class ApproverKind(StrEnum):
    USER = "user"  # a named user id
    ROLE = "role"  # one holder of a role (the first active one by id)
    ROLE_ALL = "role_all"  # every active holder of a role
    MANAGER = "manager"  # the initiator's manager N levels up (1 = direct manager)
    DEPT_HEAD = "dept_head"  # head of: "initiator" | "<dept id>" | "field:<form key>"
    DEPT_HEAD_OTHER = "dept_head_other"  # 发文 核稿: another head of the initiator's dept, else self
    FORM_USER = "form_user"  # user(s) picked in a form field (自选)
    INITIATOR = "initiator"  # the initiator themself (receipts, confirmations)


@dataclass(frozen=True)
class ApproverSpec:
    kind: ApproverKind
    value: str | int | None = None
    fallback: ApproverSpec | None = None  # tried when this resolves to nobody
    line: int | None = None


class StepMode(StrEnum):
    SEQUENTIAL = "sequential"  # 依次: one person after another
    ALL = "all"  # 会签: everyone must approve
    ANY = "any"  # 或签: the first approval decides


class Permission(StrEnum):
    APPROVE = "approve"  # 审批
    COLLABORATE = "collaborate"  # 协同
    NOTIFY = "notify"  # 知会: read and acknowledge only


class StepKind(StrEnum):
    APPROVE = "approve"  # decision: 同意 / 驳回
    HANDLE = "handle"  # a handling step: 已交付 / 已完成 / 已登记
    READ = "read"  # reading: 已阅
    NOTIFY = "notify"  # FYI: 知会, does not hold the flow


DEFAULT_ACTION_LABEL = {
    StepKind.APPROVE: "同意",
    StepKind.HANDLE: "已完成",
    StepKind.READ: "已阅",
    StepKind.NOTIFY: "已收到",
}


# -- conditions: a small safe expression format (never eval) ----------------------------
class CompareOp(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    EMPTY = "empty"  # value true/false


@dataclass(frozen=True)
class Compare:
    """Compare a form field (`field`) or an initiator attribute (`initiator`) with a value.

    Initiator attributes: `is_department_head`, `is_sole_department_head`, `department`,
    `level`, `roles`.
    """

    op: CompareOp
    value: Any
    field: str | None = None
    initiator: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Compare | AllOf | AnyOf | Not


class NoApproverPolicy(StrEnum):
    SKIP = "skip"
    ADMIN = "admin"  # send to the holders of `admin_role`
    REFUSE = "refuse"  # refuse to submit


class InitiatorPolicy(StrEnum):
    AUTO_APPROVE = "auto_approve"
    KEEP = "keep"


class ConsecutivePolicy(StrEnum):
    MERGE = "merge"  # approve once for both
    KEEP = "keep"


class Progress(StrEnum):
    """What the initiator is told while a request runs (the final result is always told)."""

    OFF = "off"
    EACH_STEP = "each_step"  # a short message when each step completes, as DingTalk does
    FINAL_ONLY = "final_only"  # the same as off today: only the result


class WithdrawPolicy(StrEnum):
    ANY_TIME = "any_time"  # while running
    BEFORE_FIRST_DECISION = "before_first_decision"
    AFTER_APPROVAL = "after_approval"  # also revoke an approved request (e.g. 销假: cancel an approved leave)
    NEVER = "never"
    # 收回 (documents): at any step while running, as long as nobody it went to has opened it
    UNTIL_OPENED = "until_opened"


class CcMoment(StrEnum):
    """When the template's CC 抄送 people are told (template `cc_on`)."""

    SUBMIT = "submit"  # when the request is submitted
    FINISH = "finish"  # when it ends (approved, rejected, withdrawn, terminated)


@dataclass(frozen=True)
class Policies:
    no_approver: NoApproverPolicy = NoApproverPolicy.SKIP
    admin_role: str | None = None
    initiator_is_approver: InitiatorPolicy = InitiatorPolicy.AUTO_APPROVE
    consecutive_same_approver: ConsecutivePolicy = ConsecutivePolicy.MERGE
    withdraw: WithdrawPolicy = WithdrawPolicy.ANY_TIME
    manager_may_act: bool = False  # the holder's manager may take a late task over 代为处理


@dataclass(frozen=True)
class StepSpec:
    key: str
    name: str
    approvers: tuple[ApproverSpec, ...]
    mode: StepMode = StepMode.SEQUENTIAL
    permission: Permission = Permission.APPROVE
    kind: StepKind = StepKind.APPROVE
    action_label: str | None = None  # default from DEFAULT_ACTION_LABEL
    can_reject: bool | None = None  # default: True for approve steps only
    time_limit_hours: float = 4.0
    when: Condition | None = None
    # per-step policy overrides (None = the template's)
    no_approver: NoApproverPolicy | None = None
    initiator_is_approver: InitiatorPolicy | None = None
    deadlines: dict[str, Any] = field(default_factory=dict)  # ladder overrides (deadlines issue)
    opinion_required: bool = False  # approving needs a written opinion (e.g. 发文核稿)
    line: int | None = None

    @property
    def positive_label(self) -> str:
        return self.action_label or DEFAULT_ACTION_LABEL[self.kind]

    @property
    def rejectable(self) -> bool:
        return self.can_reject if self.can_reject is not None else self.kind == StepKind.APPROVE


@dataclass(frozen=True)
class Numbering:
    """How a template's documents get their number 文号 (`numbering:`; `approvals.doc_numbers`)."""

    step: str  # the step whose approval assigns the number (登记编号)
    prefix: str = ""  # used when `prefix_field` is absent or left empty
    prefix_field: str | None = None  # a form field holding the prefix (e.g. a select of 办发/人发)
    pattern: str | None = None  # None: the organisation's (OABOT_DOC_NUMBER_PATTERN)


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    fields: tuple[FieldSpec, ...]
    steps: tuple[StepSpec, ...]
    description: str = ""
    category: str = ""
    version: int = 1
    policies: Policies = field(default_factory=Policies)
    # CC 抄送: people, roles and/or a form field of people; told at the moments of `cc_on`, may
    # read the request (抄送我的) and never act on it
    cc: tuple[ApproverSpec, ...] = ()
    cc_on: tuple[CcMoment, ...] = (CcMoment.SUBMIT, CcMoment.FINISH)
    on_approved: tuple[ApproverSpec, ...] = ()  # told only when approved (e.g. fleet dispatcher)
    summary_fields: tuple[str, ...] = ()  # shown on cards, in order
    title: str | None = None  # e.g. "{seal} 用章 · {reason}"; default the template name
    deadlines: dict[str, Any] = field(default_factory=dict)  # ladder overrides (deadlines issue)
    progress: Progress = Progress.EACH_STEP  # messages to the initiator as steps complete
    numbering: Numbering | None = None  # documents 发文: their number 文号, given at a step
    confidentiality_field: str | None = None  # the 密级 field (`approvals.confidentiality`)
    source: str | None = None  # file it came from

    def step(self, key: str) -> StepSpec | None:
        return next((s for s in self.steps if s.key == key), None)

    def field(self, key: str) -> FieldSpec | None:
        for f in self.fields:
            if f.key == key:
                return f
        return None

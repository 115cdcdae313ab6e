"""What a refusal says: every domain error's `reason` and parameters, in Chinese.

The cores (`approvals`, `checkins`, `org`) and the services raise a `DomainError` that carries a
stable `code`, a `reason` and its parameters, never words. This module holds the one catalogue
of what each reason says and `message_for`, which every edge that shows a refusal calls (the
REST error middleware, the chat handlers, the console and check-in pages). Codes a person should
not see (`running`, `add_signer`) are shown through the label tables here. Pure: no I/O; it
decides nothing.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from approvals.definitions import Permission
from approvals.model import ActionKind, RequestStatus
from checkins.core import CheckinKind
from checkins.errors import FixProblem
from notices.model import Confidentiality
from notifications.checkin_wording import KIND_LABEL
from notifications.notice_wording import CONFIDENTIALITY_LABEL
from notifications.wording import REQUEST_STATUS_LABEL
from org.errors import DomainError
from org.model import COORD_SYSTEMS

ACTION_LABEL = {
    ActionKind.APPROVE: "同意",
    ActionKind.REJECT: "驳回",
    ActionKind.RETURN: "退回",
    ActionKind.TRANSFER: "转交",
    ActionKind.ADD_SIGNER: "加签",
    ActionKind.WITHDRAW: "撤销",
    ActionKind.TERMINATE: "终止",
    ActionKind.URGE: "催办",
    ActionKind.COMMENT: "评论",
    ActionKind.ACKNOWLEDGE: "确认收到",
    ActionKind.RESUBMIT: "重新提交",
    ActionKind.ARCHIVE: "归档",
    ActionKind.NOTIFY_OTHERS: "知会他人",
}
PERMISSION_LABEL = {Permission.APPROVE: "审批", Permission.COLLABORATE: "协同", Permission.NOTIFY: "知会"}
FIX_PROBLEM_TEXT = {
    FixProblem.LATITUDE: "纬度应为 -90 到 90 之间的数字",
    FixProblem.LONGITUDE: "经度应为 -180 到 180 之间的数字",
    FixProblem.ACCURACY: "定位精度应为不小于 0 的米数",
    FixProblem.COORD_SYSTEM: f"坐标系应为 {' 或 '.join(COORD_SYSTEMS)}",
    FixProblem.DEVICE_TIME: "设备时间需要带时区",
}

# reason -> what it says. `{name:table}` shows a code through one of `_TABLES`; `{at:%H:%M}`
# formats a local time the core handed over.
MESSAGES: Mapping[str, str] = {
    # services.api_tokens
    "token.missing_scope": "令牌 {token} 没有 {scope} 权限（scope），不能调用这个接口",
    "token.personal_only": "这个令牌只能以 {user} 的身份操作，不能代 {given} 操作",
    "token.on_behalf_of_mismatch": "{field} 与 on_behalf_of 不一致",
    "token.on_behalf_of_missing": "集成令牌须用 on_behalf_of 指明代谁操作（{field}）",
    "token.admin_needed": "代 {person} 操作需要具有 admin 权限的集成令牌，令牌 {token} 没有",
    "token.unknown_scope": "未知的权限：{unknown}；可选 read, act, admin",
    "token.no_scope": "至少给一个权限（read, act, admin）",
    "token.bad_name": "令牌名 {name} 不可用：字母、数字、. _ -，最长 64 个字符，且不能是 {bootstrap}",
    "token.unknown_user": "{user} 不是本单位在职人员",
    "token_name_taken": "已有名为 {name} 的令牌",
    "token_not_found": "没有名为 {name} 的令牌",
    "token.own_delegations_only": "这个令牌只能取消 {user} 自己设的代理",
    "opinion_required": "「{step_name}」需要填写意见，请填写后再提交",
    "comment_too_long": "意见最多 {most} 个字，现在有 {length} 个字，请删减后再提交",
    "comment_too_long.unstorable": "意见中含有无法保存的字符，请删除后再提交",
    # services.sign_in
    "sign_in_state_invalid": "登录请求无效，请重新打开页面。",
    "sign_in_state_expired": "登录请求已过期（10 分钟内有效），请重新打开页面。",
    "sign_in_state_used": "这个登录请求已经用过了，请重新打开页面。",
    "sign_in_code_used": "这个登录码已经用过了，请重新打开页面。",
    "sign_in_unavailable": "暂时无法登录（会话存储无响应），请稍后重试。",
    "sessions_unavailable": "暂时无法登录（会话存储无响应），请稍后重试。",
    "sign_in_refused.other_browser": "这个登录请求不是在本浏览器中发起的，请重新打开页面。",
    # services.workspace
    "request_hidden": "您无权查看这条申请",
    # org.signed_links
    "personal_link_invalid": "链接无效：它可能被改动过或不完整。请从消息卡片重新打开。",
    "personal_link_expired": "链接已过期，请从最新的消息卡片重新打开，或在应用中登录后查看。",
    "token.not_org_admin": "as_admin 只接受本单位在职管理员（角色 {role}），{user} 不是",
    # approvals.errors
    "template_not_found": "没有模板 {template}",
    "request_not_found": "申请 {request_id} 不存在",
    "task_not_found": "待办 {task_id} 不存在",
    "task_not_found.unnamed": "没有指明要处理的待办",
    "task_not_found.unnamed_note": "没有指明要提醒的待办",
    "unknown_user": "{user} 不是本单位在职人员",
    "unknown_user.initiator": "发起人 {user} 不是本单位在职人员",
    "not_assignee": "这条待办属于{assignee_name}，您不能处理",
    "not_assignee.withdraw": "只有发起人或当前协同、审批人可以撤销申请",
    "not_assignee.reader": "您是这条申请的抄送人（或被知会人），只能查看，不能办理",
    "not_assignee.urge": "只有发起人可以催办",
    "not_supervisor": "只有{assignee_name}的上级领导或管理员可以督办这条待办，您的操作没有产生任何变更",
    "not_assignee.comment": "只有发起人和审批参与人可以评论",
    "not_assignee.resubmit": "只有发起人可以重新提交",
    "action_not_allowed.permission": "该待办的权限（{permission:permission}）不允许「{action:action}」",
    "action_not_allowed.handling_step": "「{step}」是办理步骤，不能驳回",
    "action_not_allowed.withdraw_never": "该模板不允许撤销",
    "action_not_allowed.withdraw_decided": "已有审批人处理，该模板只允许在首次审批前撤销",
    "action_not_allowed.recall_opened": "文件已被打开，不能收回：{openers:openers}",
    # approvals.doc_numbers
    "doc_prefix_invalid.empty": "文号前缀为空，无法编号，请先填写文号前缀",
    "doc_prefix_invalid.too_long": "文号前缀「{prefix}」超过 {most} 个字，无法编号",
    "doc_prefix_invalid.bad_character": "文号前缀「{prefix}」含有不能用于文号的字符（括号或换行）",
    "action_not_allowed.terminate": "只有管理员或当前审批人可以终止申请",
    "action_not_allowed.system_template": "「{template}」由系统在发布通知时提交，不能手工发起；请在「通知」中发布通知",
    "action_not_allowed.not_admin": "只有本单位在职管理员（角色 {role}）可以以管理员身份操作",
    "action_not_allowed.resubmit": "只有被退回的申请可以重新提交",
    "action_not_allowed.system": "系统不能自动执行「{action:action}」",
    "action_not_allowed.manager_may_act": "该模板不允许上级代为处理，请催办或转交",
    "task_decided": "这条待办已处理，无需重复操作",
    "task_decided.note": "这条待办已处理，无需再提醒",
    "stale_task": "卡片已过期：这条待办已有变化，请刷新后再操作",
    "request_finished": "申请已结束（{status:request_status}），无需再处理",
    "request_finished.note": "申请已结束（{status:request_status}），无需再提醒",
    "request_finished.withdraw": "申请已结束，不能撤销",
    "request_finished.terminate": "申请已结束，不能终止",
    "request_finished.urge": "申请不在审批中，无需催办",
    "action_not_allowed.archive_running": "申请尚未结束（{status:request_status}），结束后才能归档",
    "request_archived": "申请已归档，只能查看，不能再操作",
    "action_not_allowed.archive": "只有参与审批的人或管理员可以归档",
    "action_not_allowed.notify_others": "只有参与审批的人或管理员可以知会他人",
    "bad_target.already_told": "所选的人都已收到过抄送或知会，无需重复知会",
    "bad_target.too_many": "一次最多知会 {most} 人，现在选了 {count} 人",
    "sheet_not_ready": "申请尚未结束（{status:request_status}），结束后才能打印审批单",
    "bad_target.return_target": "退回目标应为 initiator 或之前某一步的序号",
    "bad_target.return_step": "只能退回到本轮中已经完成的之前步骤",
    "bad_target.missing": "{verb:action}需要指定人员",
    "bad_target.inactive": "{target} 不是本单位在职人员，不能{verb:action}",
    "bad_target.self": "不能{verb:action}给自己",
    "bad_target.in_step": "{target_name} 已在本步骤中",
    "bad_target.not_in_team": "{target_name} 不在您管理的团队中，只能转交给您团队中的人",
    "bad_target.empty_comment": "评论内容不能为空",
    "no_approver": "「{step_name}」找不到审批人，无法提交",
    "no_approver.no_admin": "「{step_name}」找不到审批人，也没有管理员（角色 {admin_role:or_unset}）可以接手",
    "rate_limited": "每条待办 30 分钟内只能催办一次，{retry_local:%H:%M} 后可再次催办",
    "delegation_invalid.delegate": "代理人 {delegate} 不是本单位在职人员",
    "delegation_invalid.self": "不能设置自己为代理人",
    "delegation_invalid.period": "代理结束时间必须晚于开始时间",
    "delegation_not_found": "代理 {delegation_id} 不存在",
    "illegal_transition": "cannot {move} from {status}",  # a bug in the caller, never a person's doing
    # approvals.form_errors
    "form_invalid": "表单有误：{fields:fields}",
    # checkins.errors
    "fix_invalid": "位置无效：{problems:fix_problems}",
    "fix_invalid.trip_kind": "行程打卡只能是到达或离开",
    "trip_not_found": "行程 {trip_id} 不存在",
    "trip_not_found.link": "找不到这个行程",
    "trip_not_found.request": "申请 {request_id} 不存在",
    "trip_not_found.not_trip": "申请 {request_id} 不是外出或派车申请",
    "trip_not_approved": "申请 {request_id} 尚未审批通过（当前：{status:request_status}），不能打卡",
    "trip_not_approved.cancelled": "该行程已取消，不能打卡",
    "not_your_trip": "这是别人的行程，您不能为其打卡",
    "not_your_trip.link": "这是别人的打卡链接，您不能用它打卡",
    "not_your_trip.signed_in": "您当前登录的是{viewer_name}，这条打卡链接属于{traveller_name}，不能用它打卡。请让{traveller_name}本人打开",
    "not_your_trip.not_signed_in": "请先登录：在企业微信或钉钉中重新打开这条打卡链接",
    "not_your_trip.link_traveller": "这个链接不属于该行程的出行人，不能用它打卡",
    "not_your_trip.not_checkin_link": "这个链接不是打卡链接",
    "not_your_trip.inactive": "该账号已停用，不能打卡",
    "not_your_trip.request": "{user} 不是申请 {request_id} 的出行人",
    "not_your_trip.other": "行程 {trip_id} 属于其他人",
    "link_invalid": "链接无效：它可能被改动过或不完整。请从行程卡片重新打开，或在聊天中发送「打卡」获取新链接。",
    "link_expired": (
        "链接已于 {expired_local:%m-%d %H:%M} 过期，没有记录任何内容。请在聊天中发送「打卡」获取新链接，或直接发送位置。"
    ),
    "already_checked_in": "本行程的{kind:checkin_kind}打卡已于 {at_local:%m-%d %H:%M} 记录，这次没有再记录。",
    "free_checkin_not_allowed": (
        "您今天没有已批准的外出或派车行程，这次位置没有记为外勤签到。外出前请先提交「外出申请」，"
        "批准后在行程卡片上打卡。"
    ),
    "fix_quota_exceeded": (
        "{year}年{mon}月的补卡已用 {used} 次，达到每月 {quota} 次的上限，不能再提交补卡申请。"
        "如确有需要，请联系您的直属领导或办公室。"
    ),
    # notices.polls, notices.meetings, services.notice_responses
    "poll_refused.unknown_question": "这份调查没有这道题，请刷新后重新作答",
    "poll_refused.unknown_option": "「{question}」没有这个选项，请刷新后重新选择",
    "poll_refused.repeated_option": "「{question}」的同一选项只能选一次",
    "poll_refused.single_choice": "「{question}」是单选题，只能选一项",
    "poll_refused.no_free_text": "「{question}」不需要填写文字意见",
    "poll_refused.text_too_long": "「{question}」的文字意见最多 {limit} 个字",
    "poll_refused.unanswered": "请回答「{question}」",
    "poll_refused.not_poll": "这条通知不是调查，不能投票",
    "poll_closed": "这份调查已截止，不能再作答或修改",
    "poll_anonymous": "这是匿名调查，不显示谁选了什么",
    "poll_results_hidden": "投票后即可查看结果",
    "rsvp_refused.not_meeting": "这条通知不是会议通知，不需要回执",
    "rsvp_refused.not_invited": "这个会议没有通知您，不能回执",
    "rsvp_refused.started": "会议已经开始，不能再回执",
    "rsvp_refused.reason_required": "选择“不参加”请填写原因",
    "rsvp_refused.reason_too_long": "原因最多 {limit} 个字",
    "rsvp_refused.delegate_missing": "请选择委派参加会议的人员",
    "rsvp_refused.delegate_self": "不能委派给自己",
    "rsvp_refused.delegate_not_staff": "委派的人必须是本单位在职人员",
    "rsvp_refused.delegate_loop": "对方已（直接或经他人）把这个会议委派给您，不能再委派回去",
    "rsvp_refused.unknown_answer": "请选择参加、不参加、请假或委派他人参加",
    "password_required.answer": "这项内容设有访问密码，请输入密码后查看和作答",
    "attendance_hidden": "只有会议组织人和通知发布人可以查看参会名单",
    # notices.rules, services.notices
    "notice_not_found": "通知 {notice_id} 不存在",
    "notice_not_found.card": "这个按钮已失效，请在通知列表中重新打开",
    "notice_invalid.author": "发布人 {user} 不是本单位在职人员",
    "notice_invalid.title": "请填写标题",
    "notice_invalid.title_long": "标题最多 {most} 个字，现在有 {length} 个字，请删减后再提交",
    "notice_invalid.body_long": "正文最多 {most} 个字，现在有 {length} 个字，请删减后再提交",
    "notice_invalid.unstorable": "标题或正文中含有无法保存的字符，请删除后再提交",
    "notice_invalid.deadline_past": "确认截止时间须晚于现在",
    "notice_invalid.pinned_past": "公告置顶截止时间须晚于现在",
    "notice_invalid.meeting_missing": "会议通知须填写会议时间和地点",
    "notice_invalid.poll_missing": "调查须至少有一个问题",
    "notice_invalid.meeting_past": "会议开始时间须晚于现在",
    "notice_invalid.meeting_ends": "会议结束时间须晚于开始时间",
    "notice_invalid.poll_question_twice": "调查中有两个问题的编号都是 {question_id}，请改用不同的编号",
    "notice_invalid.poll_options": "「{question}」须至少有两个选项，或允许填写意见",
    "notice_invalid.password": "访问密码须为 {least} 到 {most} 个字符",
    "audience_invalid.empty": "请选择发送范围：全体人员、部门、职级、角色或指定人员",
    "audience_invalid.department": "没有部门 {department}",
    "audience_invalid.person": "{person} 不是本单位人员",
    "audience_invalid.nobody": "所选范围内没有在职人员，没有发送",
    "confidentiality_refused": (
        "密级为「{level:confidentiality}」的内容不通过本系统发送（{threshold:confidentiality}及以上须按保密规定线下传递）"
    ),
    "restricted_audience": "密级为「{level:confidentiality}」的内容只能发给指定人员，不能发给全体人员、部门、职级或角色",
    "restricted_audience.named_only": "标为「仅限指定人员」的内容只能发给指定人员，不能发给全体人员、部门、职级或角色",
    "not_recipient": "您不在这条通知的发送范围内，无权查看",
    "not_recipient.card": "这张卡片不是发给您的，您的点击没有产生任何变更",
    "not_author.recall": "只有发布人或管理员可以收回通知",
    "not_author.receipts": "只有发布人或管理员可以查看确认情况",
    "not_author.urge": "只有发布人或管理员可以催办",
    "notice_not_published": "这条通知{status_label}，不能进行此操作",
    "receipt_move": "这条通知的确认状态已变化，您的操作没有产生任何变更",
    "receipt_move.acknowledged": "您已确认收到，无需重复操作",
    "receipt_move.defaulted": "已过确认期限，系统已记为默认收到，无需再操作",
    "recall_refused": "已有 {count} 人打开过这条通知，不能收回：{openers_text}",
    "wrong_password": "访问密码不正确，还可以再试 {tries_left} 次",
    "notice_locked": "访问密码连续输错次数过多，已暂时锁定，请于 {until_local:%H:%M} 后再试",
    "notice_urge_too_soon": "每条通知 30 分钟内只能催办一次，{retry_local:%H:%M} 后可再次催办",
    "notice_urge_nobody": "所有人都已确认收到，无需催办",
    # services
    "busy": "系统繁忙，请稍后重试",
    "override_not_found": "{date} 没有日历调整",
}
FALLBACK = "操作未能完成"  # a reason with no entry (the catalogue test keeps this from happening)


def _fields(fields: list[dict[str, Any]]) -> str:
    return "；".join(f"{f['label'] or f['key']}：{f['message']}" for f in fields)


def _fix_problems(problems: tuple[FixProblem, ...]) -> str:
    return "；".join(FIX_PROBLEM_TEXT[p] for p in problems)


_TABLES: Mapping[str, Callable[[Any], str]] = {
    "action": lambda v: ACTION_LABEL[ActionKind(v)],
    "permission": lambda v: PERMISSION_LABEL[Permission(v)],
    "request_status": lambda v: REQUEST_STATUS_LABEL[RequestStatus(v)],
    "or_unset": lambda v: str(v or "未配置"),
    "fields": _fields,
    "fix_problems": _fix_problems,
    "checkin_kind": lambda v: KIND_LABEL[CheckinKind(v)],
    "openers": lambda v: "、".join(f"{name}（{at:%m-%d %H:%M} 已打开）" for name, at in v),
    "confidentiality": lambda v: CONFIDENTIALITY_LABEL[Confidentiality(v)],
}


class _Wording(string.Formatter):
    """`str.format` that also shows a code through a label table named as its format spec."""

    def format_field(self, value: Any, format_spec: str) -> str:
        show = _TABLES.get(format_spec)
        if show is not None:
            return show(value)
        return str(super().format_field(value, format_spec))


_WORDING = _Wording()


def message_for(error: DomainError) -> str:
    """What a refusal says to the person who asked, in Chinese."""
    text = MESSAGES.get(error.reason)
    if text is None:
        return FALLBACK
    return str(_WORDING.format(text, **error.params))

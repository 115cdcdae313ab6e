"""Typed keys for everything the aiohttp application shares. The only place they are declared."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from approvals.clock import Clock
from bot.metrics import Metrics
from bot.settings import Settings
from storage.db import Database
from storage.kv import KeyValueStore

if TYPE_CHECKING:
    from bot.web.health import Readiness

# A readiness check: given the app, answer (name, ok, detail). Register with app[READINESS].add().
ReadinessCheck = Callable[[web.Application], Awaitable[tuple[str, bool, str]]]

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
DB = web.AppKey("db", Database)
KV = web.AppKey("kv", KeyValueStore)
HTTP = web.AppKey("http", httpx.AsyncClient)
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
METRICS = web.AppKey("metrics", Metrics)
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
# Per request: the id set by the request middleware (echoed as X-Request-Id, in every log line).
REQUEST_ID = web.RequestKey("request_id", str)
# The service objects (engine facade, dispatcher) are added by their modules.
SERVICES = web.AppKey("services", dict[str, Any])

# The approval workflow service and the outbox dispatcher (set by bot.wiring).
if TYPE_CHECKING:
    from notifications.dispatcher import OutboxDispatcher
    from services.approvals import Workflow
WORKFLOW: web.AppKey[Workflow] = web.AppKey("workflow")
DISPATCHER: web.AppKey[OutboxDispatcher] = web.AppKey("dispatcher")
if TYPE_CHECKING:
    from handlers.chat import ChatService
CHAT: web.AppKey[ChatService] = web.AppKey("chat")
if TYPE_CHECKING:
    from bot.platforms.inbox import Inbox
INBOX: web.AppKey[Inbox] = web.AppKey("inbox")
if TYPE_CHECKING:
    from bot.platforms.dingtalk import DingTalk
DINGTALK: web.AppKey[DingTalk] = web.AppKey("dingtalk")
# The deadline service: timers, reminder ladder, digests, calendar overrides (set by bot.wiring).
if TYPE_CHECKING:
    from services.deadlines import DeadlineService
DEADLINES: web.AppKey[DeadlineService] = web.AppKey("deadlines")
# The timer kind registry (filled while the services are built) and its one scan (set by bot.wiring).
if TYPE_CHECKING:
    from deadlines.timer_kinds import TimerKinds, TimerScanner
TIMER_KINDS: web.AppKey[TimerKinds] = web.AppKey("timer_kinds")
TIMERS: web.AppKey[TimerScanner] = web.AppKey("timers")
if TYPE_CHECKING:
    from services.checkins import CheckinService
CHECKINS: web.AppKey[CheckinService] = web.AppKey("checkins")
# Meeting RSVPs, poll votes and meeting reminders (set by bot.wiring).
if TYPE_CHECKING:
    from services.notice_responses import NoticeResponses
NOTICE_RESPONSES: web.AppKey[NoticeResponses] = web.AppKey("notice_responses")
# The console's chat history, read and written by the console pages (set by bot.wiring).
if TYPE_CHECKING:
    from services.console import ConsoleService
CONSOLE: web.AppKey[ConsoleService] = web.AppKey("console")
# Browser sessions after sign-in (set by bot.wiring).
if TYPE_CHECKING:
    from services.identity import Sessions
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions")
# Signed personal links for cards and messages (set by bot.wiring).
if TYPE_CHECKING:
    from services.links import PersonalLinks
LINKS: web.AppKey[PersonalLinks] = web.AppKey("links")
# The workspace's lists and batch approval (set by bot.wiring).
if TYPE_CHECKING:
    from services.workspace_lists import WorkspaceLists
WORKSPACE_LISTS: web.AppKey[WorkspaceLists] = web.AppKey("workspace_lists")
# Named REST API tokens (set by bot.wiring), and per /api/ request the caller behind its bearer
# token (set by the auth middleware).
if TYPE_CHECKING:
    from services.api_tokens import ApiTokens, Principal
API_TOKENS: web.AppKey[ApiTokens] = web.AppKey("api_tokens")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
# Platform sign-in: the state and code guards and the platforms' clients (set by the sign-in pages).
if TYPE_CHECKING:
    from bot.web.workspace.sign_in import SignIn
SIGN_IN: web.AppKey[SignIn] = web.AppKey("sign_in")
# A manager's 督办 actions on a late task (card taps and the /m/s/ page; set by bot.wiring).
if TYPE_CHECKING:
    from services.supervision import Supervision
SUPERVISION: web.AppKey[Supervision] = web.AppKey("supervision")
# Directory sync from WeCom / DingTalk (set by bot.wiring when a platform is configured): the
# nightly sync and the re-reads contact events schedule.
if TYPE_CHECKING:
    from services.org_sync import OrgSync
ORG_SYNC: web.AppKey[OrgSync] = web.AppKey("org_sync")
# Notices 通知/公告/会议通知/调查: publish, receipts, recall, 催办 (set by bot.wiring; REST, pages, CLI).
if TYPE_CHECKING:
    from services.notices import Notices
NOTICES: web.AppKey[Notices] = web.AppKey("notices")

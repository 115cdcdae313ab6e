"""Builds the directory sync service (`services.org_sync.OrgSync`) with the platform directory
readers for whichever of WeCom and DingTalk is configured. Used by the app (nightly sync,
contact events) and by `oabot org sync`, so both read the platforms the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx

from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.directory import SYNC_RETRY as DINGTALK_SYNC_RETRY
from bot.platforms.dingtalk.directory import DingTalkDirectory
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.directory import SYNC_RETRY as WECOM_SYNC_RETRY
from bot.platforms.wecom.directory import WeComDirectory
from bot.settings import Settings
from deadlines.timer_kinds import TimerKinds
from services.approvals import Workflow
from services.directory import Directory
from services.identity import Sessions
from services.org_sync import DirectorySource, OrgSync, SyncConfig
from storage.db import Database
from storage.kv import KeyValueStore


def directory_sources(
    settings: Settings, http: httpx.AsyncClient, kv: KeyValueStore
) -> dict[str, DirectorySource]:
    sources: dict[str, DirectorySource] = {}
    if settings.wecom is not None:
        sources["wecom"] = WeComDirectory(WeComClient(http, settings.wecom, kv, retry=WECOM_SYNC_RETRY))
    if settings.dingtalk is not None:
        sources["dingtalk"] = DingTalkDirectory(
            DingTalkClient(http, kv, settings.dingtalk, retry=DINGTALK_SYNC_RETRY)
        )
    return sources


def sync_config(settings: Settings, *, overlay: str | None = None) -> SyncConfig:
    return SyncConfig(
        timezone=settings.timezone,
        overlay=overlay or settings.org_overlay,
        handover_to=settings.org_handover_to,
        scheduled=settings.org_sync or None,
        at=settings.org_sync_at,
    )


def build_org_sync(
    settings: Settings,
    *,
    db: Database,
    http: httpx.AsyncClient,
    kv: KeyValueStore,
    workflow: Workflow,
    now: Callable[[], datetime],
    sessions: Sessions | None = None,
    directory: Directory | None = None,
    kinds: TimerKinds | None = None,
    overlay: str | None = None,
) -> OrgSync:
    return OrgSync(
        db=db,
        workflow=workflow,
        sources=directory_sources(settings, http, kv),
        config=sync_config(settings, overlay=overlay),
        now=now,
        sessions=sessions,
        directory=directory,
        kinds=kinds,
    )

"""Typed keys for everything the aiohttp application shares. The only place they are declared."""

from __future__ import annotations

from typing import Any

import httpx
from aiohttp import web

from bot.settings import Settings
from storage.db import Database
from storage.kv import KeyValueStore

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
KV = web.AppKey("kv", KeyValueStore)
HTTP = web.AppKey("http", httpx.AsyncClient)
# The service objects (engine facade, metrics, dispatcher, scheduler) are added by their modules.
SERVICES = web.AppKey("services", dict[str, Any])

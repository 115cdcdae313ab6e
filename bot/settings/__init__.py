"""oabot's settings: typed pydantic models read from OABOT_* variables (and `.env`).

`models` holds what the settings are, `parse` how each variable's text becomes a value and what it
says when it cannot, `environment` how they are read and how problems reach the operator (one line
each, naming the variable; every command exits 2 on them, see `bot.cli.config`).
"""

from bot.settings.environment import ConfigError, load_settings, read_environment
from bot.settings.models import (
    DEFAULT_DATABASE_URL,
    DEMO_DATABASE_URL,
    CheckinSettings,
    DingTalkSettings,
    EdgeSettings,
    Settings,
    WeComSettings,
    every_variable,
)
from bot.settings.parse import (
    RateLimit,
    WorkingPeriod,
    parse_backup_times,
    parse_digest_times,
    parse_working_hours,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEMO_DATABASE_URL",
    "CheckinSettings",
    "ConfigError",
    "DingTalkSettings",
    "EdgeSettings",
    "Settings",
    "WeComSettings",
    "RateLimit",
    "WorkingPeriod",
    "every_variable",
    "load_settings",
    "parse_backup_times",
    "parse_digest_times",
    "parse_working_hours",
    "read_environment",
]

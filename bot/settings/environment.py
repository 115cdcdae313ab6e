"""Reading the settings from the environment, and telling the operator what is wrong with them.

pydantic-settings reads the OABOT_* variables from the process environment and a `.env` file
(the environment wins); the models in `bot.settings.models` validate them. A ValidationError is
translated here, in one place, into `ConfigError` with one line per problem naming the variable.
Nothing else in oabot reads the environment for settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError, create_model
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.settings.models import DEMO_DATABASE_URL, GROUPS, PROBLEM, Settings, every_variable
from bot.settings.parse import EXPECTED


class ConfigError(Exception):
    """Configuration is unusable; `problems` has one line per problem, each naming the variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Variables(BaseSettings):
    """The variables' text as set, exactly as named; unset ones are None. Built with the path of
    the `.env` file to read besides the environment (None: none)."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", env_file_encoding="utf-8")

    def __init__(self, dotenv_path: str | Path | None) -> None:
        super().__init__(_env_file=dotenv_path)


# One optional text field per variable, so pydantic-settings reads exactly those.
_FIELDS: dict[str, Any] = {name: (str | None, None) for name in every_variable()}
_Environment = create_model("_Environment", __base__=_Variables, **_FIELDS)


def read_environment(dotenv_path: str | Path | None = ".env") -> dict[str, str]:
    """The OABOT_* variables that are set, from the environment and `dotenv_path` if it exists."""
    found = _Environment(dotenv_path)
    return {name: value for name, value in found.model_dump().items() if value is not None}


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    dotenv_path: str | Path | None = ".env",
    demo: bool = False,
) -> Settings:
    """Settings from `env` (default: the environment and `.env`), or ConfigError listing every problem.

    Values are stripped; variables the settings do not read are ignored. The demo (`oabot serve
    --demo`) uses its own SQLite file and the in-process store whatever is configured, and shows
    the console unless OABOT_CONSOLE says otherwise.
    """
    given = read_environment(dotenv_path) if env is None else env
    variables: dict[str, object] = {name: given[name].strip() for name in every_variable() if name in given}
    if demo:
        variables |= {"demo": True, "OABOT_DATABASE_URL": DEMO_DATABASE_URL, "OABOT_REDIS_URL": ""}
        variables["OABOT_CONSOLE"] = variables.get("OABOT_CONSOLE") or "1"
    try:
        return Settings.model_validate(variables)
    except ValidationError as exc:
        raise ConfigError([problem(error) for error in exc.errors()]) from None


def problem(error: ErrorDetails) -> str:
    """One line for one validation error: the variable, the value as shown, what is expected."""
    variable = str(error["loc"][-1]) if error["loc"] else ""
    if error["type"] == EXPECTED:
        shown = (error.get("ctx") or {}).get("shown") or error["input"]
        return f"{variable}={shown!r}: {error['msg']}"
    if error["type"] == "missing":
        return f"{variable} is not set: {GROUPS[str(error['loc'][0])].requires}"
    if error["type"] == PROBLEM:
        return error["msg"]
    return f"{variable}: {error['msg']}"

"""The settings: one frozen pydantic model, with a nested model per group of variables.

Every field that an OABOT_* variable sets names that variable as its validation alias, so the
models validate the flat environment as given (`Settings.model_validate({"OABOT_PORT": "8080"})`)
and code builds them by field name (`Settings(port=8080)`), never reading the environment itself.
Each field's parser (`bot.settings.parse`) carries that variable's wording; the groups' model
validators carry the rules between variables (WeCom's five go together, DingTalk's mode). Every
variable is documented in config.example.env.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Annotated, Any, ClassVar, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from bot.settings import parse
from bot.settings.parse import RateLimit, WorkingPeriod

DEMO_DATABASE_URL = "sqlite+aiosqlite:///./var/demo.db"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/oabot.db"

PROBLEM = "config_problem"
WECOM_JSSDK_URL = "https://res.wx.qq.com/open/js/jweixin-1.2.0.js"
ROLES = ("web", "worker", "all")
DINGTALK_JSAPI_URL = "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js"

_CONFIG = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True, extra="forbid")


class Group(BaseModel):
    """Settings read from a group of variables that sit flat in the environment beside the rest."""

    model_config = _CONFIG

    # What a missing required variable of the group is needed for (the end of its problem line).
    requires: ClassVar[str] = ""

    @classmethod
    def configured(cls, given: Mapping[str, str]) -> bool:
        """Whether these of the group's variables call for the group at all."""
        return bool(given)


class CheckinSettings(Group):
    """Field check-ins 外勤签到 (see docs/checkins.md)."""

    # Signs check-in links; None: one is generated once per database.
    link_secret: Annotated[
        str | None,
        parse.secret(
            min_length=16,
            what="at least 16 characters (or unset: one is generated and kept in the database)",
        ),
    ] = Field(default=None, validation_alias="OABOT_LINK_SECRET")
    # Links work until this long after the trip's end.
    link_ttl_min: Annotated[
        int, parse.whole_number(5, 7 * 24 * 60, "minutes a check-in link works after the trip's end")
    ] = Field(default=120, validation_alias="OABOT_CHECKIN_LINK_TTL_MIN")
    # A missing arrival/departure: reminder after one grace, the manager after two.
    grace_min: Annotated[
        int, parse.whole_number(1, 24 * 60, "minutes of grace before a missing check-in is chased")
    ] = Field(default=30, validation_alias="OABOT_CHECKIN_GRACE_MIN")
    # 补卡 per person per month.
    fix_quota: Annotated[int, parse.whole_number(0, 100, "补卡 requests allowed per person per month")] = (
        Field(default=3, validation_alias="OABOT_CHECKIN_FIX_QUOTA")
    )
    # May check in without a trip; "*" = everyone.
    free_roles: Annotated[tuple[str, ...], parse.free_roles] = Field(
        default=("field_staff",), validation_alias="OABOT_CHECKIN_FREE_ROLES"
    )
    # The managers' daily summary (org timezone); None: off.
    summary_at: Annotated[time | None, parse.summary_at] = Field(
        default=time(18, 30), validation_alias="OABOT_CHECKIN_SUMMARY_AT"
    )


class EdgeSettings(Group):
    """The HTTP edge's defences (see README, "Headers and rate limits"). Each limit is COUNT/SECONDS
    or `off`; the defaults are far above what an office does, and shared by every replica through
    the key-value store (Redis when configured)."""

    # Requests to the sign-in routes (/m/sign-in..., /m/l/<token>) from one address.
    sign_in_per_ip: Annotated[RateLimit | None, parse.rate_limit] = Field(
        default=RateLimit(600, 60), validation_alias="OABOT_RATE_LIMIT_SIGN_IN_PER_IP"
    )
    # Sessions started for one person (any platform, personal links).
    sign_in_per_account: Annotated[RateLimit | None, parse.rate_limit] = Field(
        default=RateLimit(120, 600), validation_alias="OABOT_RATE_LIMIT_SIGN_IN_PER_ACCOUNT"
    )
    # /api/ requests per bearer token.
    api_per_token: Annotated[RateLimit | None, parse.rate_limit] = Field(
        default=RateLimit(6000, 60), validation_alias="OABOT_RATE_LIMIT_API_PER_TOKEN"
    )
    # Platform callbacks (/callbacks/...) from one address.
    callbacks_per_ip: Annotated[RateLimit | None, parse.rate_limit] = Field(
        default=RateLimit(3000, 60), validation_alias="OABOT_RATE_LIMIT_CALLBACKS_PER_IP"
    )
    # Reverse proxies whose X-Forwarded-For names the client (else every visitor is the proxy).
    trusted_proxies: Annotated[tuple[str, ...], parse.networks] = Field(
        default=(), validation_alias="OABOT_TRUSTED_PROXIES"
    )
    # Sites allowed to show the pages in a frame; none: no framing at all.
    frame_ancestors: Annotated[tuple[str, ...], parse.origins] = Field(
        default=(), validation_alias="OABOT_FRAME_ANCESTORS"
    )


class PlatformGroup(Group):
    """A chat platform's app: connected when any of its credentials is set, then it needs all of
    them. An empty variable counts as unset."""

    credentials: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def configured(cls, given: Mapping[str, str]) -> bool:
        return any(given.get(name) for name in cls.credentials)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value != ""}
        return data


class WeComSettings(PlatformGroup):
    """企业微信 self-built app."""

    credentials = (
        "OABOT_WECOM_CORP_ID",
        "OABOT_WECOM_AGENT_ID",
        "OABOT_WECOM_SECRET",
        "OABOT_WECOM_TOKEN",
        "OABOT_WECOM_AES_KEY",
    )
    requires = f"WeCom needs all of {', '.join(credentials)}"

    corp_id: str = Field(validation_alias="OABOT_WECOM_CORP_ID")
    agent_id: Annotated[int, parse.agent_id] = Field(validation_alias="OABOT_WECOM_AGENT_ID")
    secret: str = Field(validation_alias="OABOT_WECOM_SECRET")
    token: str = Field(validation_alias="OABOT_WECOM_TOKEN")
    aes_key: Annotated[
        str, parse.aes_key("the 43-character EncodingAESKey from the app's callback settings")
    ] = Field(validation_alias="OABOT_WECOM_AES_KEY")
    api_base: Annotated[str, parse.base_url] = Field(
        default="https://qyapi.weixin.qq.com", validation_alias="OABOT_WECOM_API_BASE"
    )
    # Where web sign-in (OAuth2, snsapi_base) sends the browser to be identified.
    oauth_base: Annotated[str, parse.base_url] = Field(
        default="https://open.weixin.qq.com", validation_alias="OABOT_WECOM_OAUTH_BASE"
    )
    # How far a callback's signed `timestamp` may be from now (seconds, either way). WeCom answers
    # a message within seconds and re-sends only for about 20 s (5 s timeout, three retries); events
    # (card taps, location reports) get a longer allowance for delayed re-deliveries. A replay
    # inside the window is still a repeat to the inbox's dedupe.
    message_max_age_s: Annotated[
        int, parse.whole_number(30, 24 * 3600, "seconds a WeCom message callback stays acceptable")
    ] = Field(default=300, validation_alias="OABOT_WECOM_MESSAGE_MAX_AGE_S")
    event_max_age_s: Annotated[
        int, parse.whole_number(30, 24 * 3600, "seconds a WeCom event callback stays acceptable")
    ] = Field(default=900, validation_alias="OABOT_WECOM_EVENT_MAX_AGE_S")
    # The JS-SDK the check-in page loads inside WeCom (wx.getLocation); empty: none (browser only).
    jssdk_url: str = Field(default=WECOM_JSSDK_URL, validation_alias="OABOT_WECOM_JSSDK_URL")
    # Messages to one person per minute: WeCom delivers at most 30 and drops the rest silently.
    # Task cards over it are coalesced into one "您有 N 条新待办" message; the rest wait.
    send_per_minute: Annotated[
        int, parse.whole_number(1, 30, "messages per minute to one person on WeCom (at most 30)")
    ] = Field(default=30, validation_alias="OABOT_WECOM_SEND_PER_MINUTE")


class DingTalkSettings(PlatformGroup):
    """钉钉 internal app (robot + interactive cards). Stream mode needs no public URL; HTTP mode
    receives events at the public URL and needs the event subscription's token and aes_key."""

    credentials = ("OABOT_DINGTALK_APP_KEY", "OABOT_DINGTALK_APP_SECRET")
    requires = "DingTalk needs the app's AppKey and AppSecret"

    app_key: str = Field(validation_alias="OABOT_DINGTALK_APP_KEY")
    app_secret: str = Field(validation_alias="OABOT_DINGTALK_APP_SECRET")
    agent_id: str | None = Field(default=None, validation_alias="OABOT_DINGTALK_AGENT_ID")
    mode: Annotated[
        Literal["stream", "http"],
        parse.one_of("stream", "http", what="stream (no public URL needed) or http"),
    ] = Field(default="stream", validation_alias="OABOT_DINGTALK_MODE")
    token: str | None = Field(default=None, validation_alias="OABOT_DINGTALK_TOKEN")
    aes_key: Annotated[
        str | None, parse.aes_key("the 43-character aes_key from the event subscription settings")
    ] = Field(default=None, validation_alias="OABOT_DINGTALK_AES_KEY")
    card_template_id: str = Field(
        default="oabot.approval.schema", validation_alias="OABOT_DINGTALK_CARD_TEMPLATE_ID"
    )
    api_base: Annotated[str, parse.base_url] = Field(
        default="https://api.dingtalk.com", validation_alias="OABOT_DINGTALK_API_BASE"
    )
    oapi_base: Annotated[str, parse.base_url] = Field(
        default="https://oapi.dingtalk.com", validation_alias="OABOT_DINGTALK_OAPI_BASE"
    )
    # Web sign-in 免登 needs the organisation's CorpId; the page loads the JSAPI from this URL.
    corp_id: str | None = Field(default=None, validation_alias="OABOT_DINGTALK_CORP_ID")
    jsapi_url: Annotated[str, parse.base_url] = Field(
        default=DINGTALK_JSAPI_URL, validation_alias="OABOT_DINGTALK_JSAPI_URL"
    )
    # Messages to one person per minute: DingTalk documents 20 a minute for its robots.
    send_per_minute: Annotated[
        int, parse.whole_number(1, 600, "messages per minute to one person on DingTalk")
    ] = Field(default=20, validation_alias="OABOT_DINGTALK_SEND_PER_MINUTE")

    @model_validator(mode="after")
    def _http_mode_subscribes_to_events(self) -> Self:
        if self.mode == "http" and not (self.token and self.aes_key):
            raise PydanticCustomError(
                PROBLEM,
                "OABOT_DINGTALK_MODE=http needs OABOT_DINGTALK_TOKEN and OABOT_DINGTALK_AES_KEY "
                "(event subscription)",
            )
        return self


# The nested groups by their field in Settings.
GROUPS: dict[str, type[Group]] = {
    "checkins": CheckinSettings,
    "edge": EdgeSettings,
    "wecom": WeComSettings,
    "dingtalk": DingTalkSettings,
}


class Settings(BaseModel):
    """Everything oabot is configured with, built once at the entry point and passed in."""

    model_config = _CONFIG

    host: Annotated[str, parse.host] = Field(default="127.0.0.1", validation_alias="OABOT_HOST")
    port: Annotated[int, parse.port] = Field(default=8080, validation_alias="OABOT_PORT")
    public_url: Annotated[str, parse.public_url] = Field(
        default="http://127.0.0.1:8080", validation_alias="OABOT_PUBLIC_URL"
    )
    database_url: Annotated[str, parse.database_url] = Field(
        default=DEFAULT_DATABASE_URL, validation_alias="OABOT_DATABASE_URL"
    )
    redis_url: Annotated[str | None, parse.redis_url] = Field(
        default=None, validation_alias="OABOT_REDIS_URL"
    )
    redis_prefix: Annotated[str, parse.any_text] = Field(
        default="oabot:", validation_alias="OABOT_REDIS_PREFIX"
    )
    timezone: Annotated[str, parse.time_zone] = Field(
        default="Asia/Shanghai", validation_alias="OABOT_TIMEZONE"
    )
    working_hours: Annotated[tuple[WorkingPeriod, ...], parse.working_hours] = Field(
        default=(WorkingPeriod(time(9, 0), time(12, 0)), WorkingPeriod(time(13, 30), time(18, 0))),
        validation_alias="OABOT_WORKING_HOURS",
    )
    api_token: Annotated[str | None, parse.secret(min_length=16, what="at least 16 characters")] = Field(
        default=None, validation_alias="OABOT_API_TOKEN"
    )
    # The trail key (approvals.trail): seals every trail event; kept outside the database. Unset:
    # read from trail_key_file, which is generated (mode 0600) on first use.
    trail_key: Annotated[
        str | None,
        parse.secret(min_length=32, what="at least 32 characters (or unset: OABOT_TRAIL_KEY_FILE is used)"),
    ] = Field(default=None, validation_alias="OABOT_TRAIL_KEY")
    trail_key_file: Annotated[str, parse.any_text] = Field(
        default="./var/trail.key", validation_alias="OABOT_TRAIL_KEY_FILE"
    )
    # Retired trail keys, still accepted for what they sealed (after a rotation).
    trail_old_keys: Annotated[
        tuple[str, ...], parse.secrets(min_length=32, what="comma-separated keys of at least 32 characters")
    ] = Field(default=(), validation_alias="OABOT_TRAIL_OLD_KEYS")
    org_file: Annotated[str | None, parse.org_file] = Field(default=None, validation_alias="OABOT_ORG_FILE")
    templates_dir: Annotated[str | None, parse.templates_dir] = Field(
        default=None, validation_alias="OABOT_TEMPLATES_DIR"
    )
    log_format: Annotated[Literal["text", "json"], parse.one_of("text", "json", what="text or json")] = Field(
        default="text", validation_alias="OABOT_LOG_FORMAT"
    )
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        parse.one_of("DEBUG", "INFO", "WARNING", "ERROR", what="DEBUG, INFO, WARNING or ERROR"),
    ] = Field(default="INFO", validation_alias="OABOT_LOG_LEVEL")
    auto_migrate: Annotated[bool, parse.switch] = Field(default=False, validation_alias="OABOT_AUTO_MIGRATE")
    # The browser chat simulator at /console: on in demo mode, off otherwise unless OABOT_CONSOLE=1.
    console: Annotated[bool, parse.switch] = Field(default=False, validation_alias="OABOT_CONSOLE")
    # Statistics and backups (reports/): who gets the office's weekly summary, when SQLite is
    # backed up (org timezone), where to, and how many backups are kept.
    office_role: Annotated[str, parse.office_role] = Field(
        default="hr_manager", validation_alias="OABOT_OFFICE_ROLE"
    )
    # 督办 past the top of the manager chain goes to this person, or (empty) the office role's holders.
    escalate_to: Annotated[str, parse.person_id] = Field(default="", validation_alias="OABOT_ESCALATE_TO")
    # Org admins 管理员 (the console outside demo mode): active holders of this role or of the
    # office role. See `admin_roles`.
    admin_role: Annotated[str, parse.office_role] = Field(
        default="admin", validation_alias="OABOT_ADMIN_ROLE"
    )
    # Notices 通知 (services.notices): levels at or above OABOT_NOTICE_REFUSE_FROM do not go through
    # the system (secret 秘密 | confidential 机密 | top_secret 绝密); an unanswered notice counts as
    # received at the end of the Nth working day after it went out; a notice to one's own
    # department or to named people goes out without the office's approval unless switched off;
    # OABOT_NOTICE_APPROVAL_ALWAYS sends every notice to the office first.
    notice_refuse_from: Annotated[
        str,
        parse.one_of("secret", "confidential", "top_secret", what="secret, confidential or top_secret"),
    ] = Field(default="confidential", validation_alias="OABOT_NOTICE_REFUSE_FROM")
    notice_ack_working_days: Annotated[
        int,
        parse.whole_number(
            0, 10, "working days after publishing until an unanswered notice counts as received"
        ),
    ] = Field(default=1, validation_alias="OABOT_NOTICE_ACK_WORKING_DAYS")
    notice_direct_own_department: Annotated[bool, parse.switch] = Field(
        default=True, validation_alias="OABOT_NOTICE_DIRECT_OWN_DEPARTMENT"
    )
    notice_direct_named: Annotated[bool, parse.switch] = Field(
        default=True, validation_alias="OABOT_NOTICE_DIRECT_NAMED"
    )
    notice_approval_always: Annotated[bool, parse.switch] = Field(
        default=False, validation_alias="OABOT_NOTICE_APPROVAL_ALWAYS"
    )
    backup_times: Annotated[tuple[time, ...], parse.backup_times] = Field(
        default=(time(7, 0), time(12, 0), time(19, 0)), validation_alias="OABOT_BACKUP_TIMES"
    )
    backup_dir: Annotated[str, parse.backup_dir] = Field(
        default="./var/backups", validation_alias="OABOT_BACKUP_DIR"
    )
    backup_keep: Annotated[int, parse.whole_number(1, 10000, "how many backups to keep")] = Field(
        default=21, validation_alias="OABOT_BACKUP_KEEP"
    )
    # Directory sync (`oabot org sync`): the platform synced nightly at OABOT_ORG_SYNC_AT and on
    # contact events (empty: off), the overlay YAML it merges, and who takes leavers' tasks
    # before their manager.
    org_sync: Annotated[
        Literal["", "wecom", "dingtalk"],
        parse.one_of("", "wecom", "dingtalk", what="wecom, dingtalk or empty (off)"),
    ] = Field(default="", validation_alias="OABOT_ORG_SYNC")
    org_sync_at: Annotated[time | None, parse.sync_at] = Field(
        default=time(2, 30), validation_alias="OABOT_ORG_SYNC_AT"
    )
    org_overlay: Annotated[str | None, parse.org_file] = Field(
        default=None, validation_alias="OABOT_ORG_OVERLAY"
    )
    org_handover_to: Annotated[str | None, parse.any_text] = Field(
        default=None, validation_alias="OABOT_ORG_HANDOVER_TO"
    )
    checkins: CheckinSettings = CheckinSettings()
    edge: EdgeSettings = EdgeSettings()
    # Deadlines: digest times (local, working days) and how often the timer scan runs.
    digest_times: Annotated[tuple[time, ...], parse.digest_times] = Field(
        default=(time(10, 0), time(15, 30)), validation_alias="OABOT_DIGEST_TIMES"
    )
    timer_scan_interval_s: Annotated[float, parse.scan_interval] = Field(
        default=1.0, validation_alias="OABOT_TIMER_SCAN_INTERVAL_S"
    )
    # How long a dispatcher may take over one outbox message before another may hand it over
    # again (a dispatcher killed mid-send holds its messages this long).
    outbox_lease_s: Annotated[
        int, parse.whole_number(5, 3600, "seconds a dispatcher holds an outbox message it is sending")
    ] = Field(default=60, validation_alias="OABOT_OUTBOX_LEASE_S")
    # Process role (`oabot serve --role`): web (verify, store, acknowledge callbacks; pages, API),
    # worker (inbox worker, outbox dispatcher, timers) or all (both in one process).
    role: Annotated[str, parse.one_of(*ROLES, what="web, worker or all")] = Field(
        default="all", validation_alias="OABOT_ROLE"
    )
    # Group commit of incoming callbacks: at most this many rows per INSERT, and how long the
    # writer waits after the first callback for others to join it (0: only what is queued).
    inbox_batch_rows: Annotated[int, parse.whole_number(1, 1000, "callbacks per inbox commit")] = Field(
        default=200, validation_alias="OABOT_INBOX_BATCH_ROWS"
    )
    inbox_batch_wait_ms: Annotated[int, parse.whole_number(0, 1000, "milliseconds an inbox commit waits")] = (
        Field(default=2, validation_alias="OABOT_INBOX_BATCH_WAIT_MS")
    )
    wecom: WeComSettings | None = None
    dingtalk: DingTalkSettings | None = None
    # Not variables: `oabot serve --demo`, and the background loops (outbox dispatcher, timers)
    # that tests switch off to drive them by hand.
    demo: bool = False
    run_background: bool = True
    dispatch_interval_s: float = 1.0

    @model_validator(mode="before")
    @classmethod
    def _nest_groups(cls, data: Any) -> Any:
        """The environment is flat: hand each group its own variables, when they call for it."""
        if not isinstance(data, Mapping):
            return data
        flat = dict(data)
        for name, group in GROUPS.items():
            given = {key: flat.pop(key) for key in variables(group) if key in flat}
            if name not in flat and group.configured(given):
                flat[name] = given
        return flat

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def admin_roles(self) -> frozenset[str]:
        """The one rule for org admins: an active person holding any of these roles."""
        return frozenset({self.admin_role, self.office_role})

    @property
    def runs_web(self) -> bool:
        """Whether this process takes platform callbacks (roles web and all)."""
        return self.role in ("web", "all")

    @property
    def runs_worker(self) -> bool:
        """Whether this process runs the inbox worker, outbox dispatcher and timers."""
        return self.run_background and self.role in ("worker", "all")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with `changes` applied as they are (for values already checked)."""
        return self.model_copy(update=changes)


def variables(model: type[BaseModel]) -> list[str]:
    """The variables `model`'s own fields are read from, in field order."""
    return [f.validation_alias for f in model.model_fields.values() if isinstance(f.validation_alias, str)]


def every_variable() -> list[str]:
    """Every OABOT_* variable the settings read."""
    return variables(Settings) + [name for group in GROUPS.values() for name in variables(group)]

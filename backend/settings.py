"""Settings: config/default.toml, overridden by EHALL_* environment variables.

Secrets are fields of type SecretStr and have no value in the TOML file; in development they
are generated once under var/ so the two-command quick start works, in production a missing
secret stops the process before it serves anything.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from ipaddress import IPv4Network, IPv6Network

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "WechatSettings", "load_settings", "mask_url_password", "PROJECT_ROOT"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOML = PROJECT_ROOT / "config" / "default.toml"


class AuthSettings(BaseModel):
    access_ttl_seconds: int = 900
    refresh_ttl_days: int = 30
    refresh_reuse_grace_seconds: int = 10
    issuer: str = "ehall"
    audience: str = "ehall-api"


class OtpSettings(BaseModel):
    length: int = 6
    ttl_seconds: int = 300
    max_attempts: int = 5
    per_phone_per_minute: int = 1
    per_phone_per_hour: int = 5
    per_phone_per_day: int = 10
    per_ip_per_hour: int = 30
    login_per_ip_per_minute: int = 30


class StaffSettings(BaseModel):
    # every attempt counts, before its password is checked: at most this many passwords are ever
    # compared for one username in 15 minutes, however many guesses arrive in parallel
    login_attempts_per_15_minutes: int = 10
    login_attempts_per_ip_per_15_minutes: int = 50
    # argon2 verifications running at once per process, and waiting for a turn; beyond both: 503
    password_checks_running: int = 2
    password_checks_waiting: int = 16
    # unmasked personal-data reads per staff member
    pii_reads_per_hour: int = 30
    pii_reads_per_day: int = 120
    # a staff-side lookup of a citizen in a hall lets staff of that hall read the citizen's data this long
    pii_relation_hours: int = 12


class AliyunSmsSettings(BaseModel):
    """Alibaba Cloud SMS (dysmsapi 2017-05-25) through its official SDK."""
    access_key_id: str = ""
    access_key_secret: SecretStr = SecretStr("")
    endpoint: str = "dysmsapi.aliyuncs.com"     # host[:port]; tests point it at their fake
    protocol: Literal["https", "http"] = "https"
    timeout_seconds: float = Field(5, gt=0, le=60)


class TencentSmsSettings(BaseModel):
    """Tencent Cloud SMS (2021-01-11) through its official SDK."""
    secret_id: str = ""
    secret_key: SecretStr = SecretStr("")
    sdk_app_id: str = ""
    region: str = "ap-guangzhou"
    endpoint: str = "sms.tencentcloudapi.com"
    protocol: Literal["https", "http"] = "https"
    timeout_seconds: float = Field(5, gt=0, le=60)


class SmsSettings(BaseModel):
    backend: Literal["console", "aliyun", "tencent"] = "console"
    sign_name: str = "乌兰察布政务服务"
    aliyun: AliyunSmsSettings = AliyunSmsSettings()
    tencent: TencentSmsSettings = TencentSmsSettings()


class WechatSettings(BaseModel):
    appid: str = "wx0000000000000000"
    secret: SecretStr = SecretStr("")
    api_base_url: str = "https://api.weixin.qq.com/"
    token_refresh_margin_seconds: int = 300
    token_lock_timeout_seconds: float = 10
    timeout_seconds: float = 5


class OfficialAccountSettings(BaseModel):
    """The centre's official account (公众号): its callback (POST /wechat/oa/callback) and its
    customer-service messages. The secrets come from the environment only; with no `token` every
    callback is refused."""
    appid: str = ""
    secret: SecretStr = SecretStr("")               # EHALL_OFFICIAL_ACCOUNT__SECRET
    token: SecretStr = SecretStr("")                # EHALL_OFFICIAL_ACCOUNT__TOKEN: signs every callback
    encoding_aes_key: SecretStr = SecretStr("")     # EHALL_OFFICIAL_ACCOUNT__ENCODING_AES_KEY: safe mode
    # how long WeChat lets customer-service messages follow a follower's last message
    reply_window_hours: float = Field(48, gt=0, le=48)
    # where a follower's questions go: the hall, and its department ("" = the hall's comprehensive desk)
    hall: str = "150900"
    department: str = ""


class ConsultSettings(BaseModel):
    # open and pending conversations one staff member is given automatically; more wait in the queue
    max_open_per_staff: int = Field(8, ge=1, le=1000)
    # a held socket counts as online this long past its last heartbeat (a process that died)
    presence_ttl_seconds: float = Field(60, gt=0, le=3600)
    presence_heartbeat_seconds: float = Field(20, gt=0, le=3600)
    # messages a conversation socket's snapshot carries (older ones: GET .../messages)
    snapshot_messages: int = Field(50, ge=1, le=500)
    # WeChat content security (msg_sec_check v2) scene for a citizen's question: 4 = social
    security_scene: int = Field(4, ge=1, le=4)


class CatalogSettings(BaseModel):
    max_age_seconds: int = 300
    cache_seconds: float = 30
    revision_check_seconds: float = Field(1, ge=0, le=60)


class SlotShape(BaseModel):
    """How one queue category's day is cut into appointment slots."""
    slot_minutes: int = Field(30, ge=5, le=240)
    capacity: int = Field(4, ge=1, le=1000)


class AppointmentSettings(BaseModel):
    # every category's slots, unless `categories` names it ("150900/B" for one hall, "B" for every hall)
    slot_minutes: int = Field(30, ge=5, le=240)
    capacity: int = Field(4, ge=1, le=1000)
    categories: dict[str, SlotShape] = Field(default_factory=dict)
    # bookable days: from `first_day_offset` days after today up to `horizon_working_days` working days ahead
    first_day_offset: int = Field(1, ge=0, le=30)
    horizon_working_days: int = Field(5, ge=1, le=60)
    # bookings for a day close at this local time (Asia/Shanghai) on the day before
    cutoff_time: str = Field("16:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    # a booking can be cancelled or rescheduled until this long before its slot starts
    cancel_before_minutes: int = Field(120, ge=0, le=10080)
    # the kiosk accepts a check-in code from this long before the slot starts until this long after it
    # ends; a booking not checked in by then is a no-show
    # the day-before reminder goes out from this local time on (an evening SMS reaches herders at home)
    reminder_time: str = Field("17:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    check_in_before_minutes: int = Field(30, ge=0, le=720)
    check_in_after_minutes: int = Field(0, ge=0, le=720)
    # `no_show_limit` no-shows within `no_show_window_days` suspend booking for `suspension_days`
    no_show_limit: int = Field(2, ge=1, le=100)
    no_show_window_days: int = Field(30, ge=1, le=365)
    suspension_days: int = Field(30, ge=0, le=365)

    def slot_shape(self, hall: str, prefix: str) -> SlotShape:
        return (self.categories.get(f"{hall}/{prefix}") or self.categories.get(prefix)
                or SlotShape(slot_minutes=self.slot_minutes, capacity=self.capacity))


class QueueSettings(BaseModel):
    # "your turn is near" (ticket.turn_near) once a ticket has at most this many people ahead after a call;
    # `turn_near_by_hall` sets it per hall ("150900" = 5)
    turn_near_people_ahead: int = Field(3, ge=0, le=100)
    turn_near_by_hall: dict[str, int] = Field(default_factory=dict)
    # a missed (过号) ticket can be put back in its queue once, within this many minutes of being missed
    requeue_within_minutes: int = Field(30, ge=0, le=1440)
    # the estimated wait uses the mean service time of this many recently finished tickets of the
    # category (the catalogue's mean_service_minutes until there are any)
    recent_service_sample: int = Field(20, ge=1, le=1000)
    # ... kept this long per process (a finish in the same process drops it at once); 0: read every time
    estimate_cache_seconds: float = Field(10, ge=0, le=300)
    # a socket without an Authorization header must send {"type": "auth", "token": ...} within this time
    socket_auth_seconds: float = Field(5, gt=0, le=60)
    # calls shown on a hall's display board when it connects
    display_recent_calls: int = Field(6, ge=1, le=50)

    def turn_near_for(self, hall: str) -> int:
        return self.turn_near_by_hall.get(hall, self.turn_near_people_ahead)


class MetricsSettings(BaseModel):
    # client addresses (after proxies_count) that may read /metrics without a token
    allow: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [IPv4Network("127.0.0.1/32"), IPv6Network("::1/128")])
    # "Authorization: Bearer <token>" also opens /metrics; empty: no token is accepted
    token: SecretStr = SecretStr("")


class NotifySettings(BaseModel):
    # outbox events expanded into deliveries, and deliveries claimed, per round of one dispatcher
    batch_size: int = Field(100, ge=1, le=5000)
    # sends in flight at once per dispatcher
    concurrency: int = Field(16, ge=1, le=512)
    # an idle dispatcher looks for new work this often
    poll_seconds: float = Field(1, gt=0, le=60)
    # a delivery being sent is another dispatcher's to take over this long after it was claimed
    lease_seconds: float = Field(60, gt=0, le=3600)
    # tries of one delivery before it is dead (visible to admins, who can retry it)
    max_attempts: int = Field(6, ge=1, le=50)
    # backoff: base x 2^(attempt-1), jittered by +-jitter, at most cap
    retry_base_seconds: float = Field(30, gt=0)
    retry_cap_seconds: float = Field(3600, gt=0)
    retry_jitter: float = Field(0.25, ge=0, lt=1)
    # SMS that is not urgent waits for the end of quiet hours (local time in the halls' zone)
    quiet_hours: str = Field("21:00-08:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$")
    # notification SMS per phone (the carriers and providers throttle marketing-like traffic)
    sms_per_phone_per_hour: int = Field(10, ge=1)
    sms_per_phone_per_day: int = Field(30, ge=1)
    # the same template to the same phone (Tencent Cloud: same content at most once per 30 s)
    sms_per_phone_template_per_30_seconds: int = Field(1, ge=1)
    # WeChat's lang for the "open the mini-program" link, by the recipient's language
    wechat_lang: dict[str, str] = Field(default_factory=lambda: {"zh": "zh_CN", "mn": "zh_CN", "en": "en_US"})
    # developer | trial | formal: which version of the mini-program a message opens
    miniprogram_state: Literal["developer", "trial", "formal"] = "formal"
    # the secret the SMS providers' receipt pushes carry (?token= in the URL configured with them);
    # unset: every receipt is refused. EHALL_NOTIFY__RECEIPT_TOKEN
    receipt_token: SecretStr = SecretStr("")

    def quiet_window(self) -> tuple[str, str]:
        start, _, end = self.quiet_hours.partition("-")
        return start, end


class CaseSettings(BaseModel):
    # 受理编号: the hall's administrative code, the business date and the day's sequence, then one ISO 7064
    # MOD 11-2 check character (0-9 or X), so a mistyped digit or two swapped digits are caught before
    # any lookup. Fields: {hall}, {date} (a date: strftime codes), {seq} (an int). Digits only.
    receipt_format: str = "{hall}{date:%y%m%d}{seq:05d}"
    # a 黄牌 warning this many working days before the deadline; the 红牌 when the deadline passes
    yellow_working_days: int = Field(1, ge=0, le=30)
    # the deadline runs out at this local time of its last working day (the halls close at 17:30)
    deadline_time: str = Field("17:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    # applications a citizen may declare in a day (an attacker with a script fills no department's queue)
    declarations_per_citizen_per_day: int = Field(20, ge=1, le=1000)
    # materials (files) one case may hold, and one citizen's uploads per day
    materials_per_case: int = Field(40, ge=1, le=500)
    uploads_per_citizen_per_day: int = Field(100, ge=1, le=10000)
    # the lookup without an account (receipt + the last 4 characters of the ID number or phone): tries
    # per client address and per receipt number, counted before the lookup, right or wrong
    lookups_per_ip_per_hour: int = Field(60, ge=1)
    lookups_per_receipt_per_hour: int = Field(10, ge=1)
    # answers to "CX <receipt>" text messages per phone (each answer is an SMS the centre pays for)
    sms_replies_per_phone_per_hour: int = Field(5, ge=1)
    sms_replies_per_phone_per_day: int = Field(20, ge=1)


class WorkerSettings(BaseModel):
    # how often each runner looks at each job: a due job starts at most this late
    tick_seconds: float = Field(default=5, gt=0)
    # a runner holds a job this long past its last tick or heartbeat; a crashed runner's jobs wait
    # at most this long before another runner takes them over
    lease_seconds: float = Field(default=60, gt=0)
    # whether `ehall serve` runs the jobs itself: "auto" on SQLite only (one process, nothing else
    # to run them); on PostgreSQL the deployment runs `ehall worker`
    in_serve: Literal["auto", "always", "never"] = "auto"
    # on SIGTERM a run in progress gets this long to finish before it is cancelled
    stop_grace_seconds: float = Field(default=30, ge=0)


UploadType = Literal["application/pdf", "image/jpeg", "image/png"]   # the types kit.filetypes can tell apart


class FileSettings(BaseModel):
    """Uploaded files (application materials, photos of documents)."""
    # where LocalFileStore keeps them; None: <var_dir>/files. Never inside a folder served over HTTP:
    # files are read only through the API, which checks who may see them
    root: Path | None = None
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    allowed_types: list[UploadType] = Field(
        default_factory=lambda: ["application/pdf", "image/jpeg", "image/png"], min_length=1)


# multipart framing around one file (boundaries, part headers, a few text fields) fits in this
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EHALL_",
        env_nested_delimiter="__",
        toml_file=DEFAULT_TOML,
        extra="ignore",
    )

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite://var/ehall.sqlite3"
    redis_url: str = ""
    redis_prefix: str = "ehall:"
    redis_max_connections: int = Field(default=100, ge=1)
    redis_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    var_dir: Path = Path("var")
    config_dir: Path = PROJECT_ROOT / "config"
    max_body_bytes: int = 65536
    languages: list[str] = Field(default_factory=lambda: ["zh", "mn", "en"])
    business_timezone: str = "Asia/Shanghai"
    access_log: bool = True
    proxies_count: int = 0
    # origins of the citizen H5 pages allowed to call the API from a browser; empty: no CORS headers
    cors_origins: list[str] = Field(default_factory=list)

    # Secrets: environment only.
    jwt_secret: SecretStr = SecretStr("")
    # "k1:<base64 32 bytes>,k2:<...>"; the first key encrypts, all of them decrypt (rotation).
    pii_keys: SecretStr = SecretStr("")
    pii_index_key: SecretStr = SecretStr("")

    auth: AuthSettings = AuthSettings()
    otp: OtpSettings = OtpSettings()
    staff: StaffSettings = StaffSettings()
    sms: SmsSettings = SmsSettings()
    wechat: WechatSettings = WechatSettings()
    catalog: CatalogSettings = CatalogSettings()
    metrics: MetricsSettings = MetricsSettings()
    appointments: AppointmentSettings = AppointmentSettings()
    queueing: QueueSettings = QueueSettings()
    worker: WorkerSettings = WorkerSettings()
    notify: NotifySettings = NotifySettings()
    consult: ConsultSettings = ConsultSettings()
    official_account: OfficialAccountSettings = OfficialAccountSettings()
    files: FileSettings = FileSettings()
    cases: CaseSettings = CaseSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def jobs_run_in_serve(self) -> bool:
        if self.worker.in_serve == "auto":
            return self.is_sqlite
        return self.worker.in_serve == "always"

    def resolved_file_root(self) -> Path:
        return Path(self.files.root) if self.files.root is not None else Path(self.var_dir) / "files"

    @property
    def max_upload_request_bytes(self) -> int:
        """The largest request body an upload route accepts: one file of max_upload_bytes, in multipart."""
        return self.files.max_upload_bytes + MULTIPART_OVERHEAD_BYTES

    def resolved_config_dir(self) -> Path:
        path = Path(self.config_dir)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @cached_property
    def pii_keyring(self) -> dict[str, bytes]:
        keyring: dict[str, bytes] = {}
        for entry in self.pii_keys.get_secret_value().split(","):
            if entry.strip():
                key_id, _, encoded = entry.strip().partition(":")
                keyring[key_id] = base64.b64decode(encoded)
        return keyring

    @property
    def pii_active_key_id(self) -> str:
        return self.pii_keys.get_secret_value().split(",")[0].partition(":")[0].strip()

    def masked(self) -> dict:
        """The effective settings with every secret replaced by a mask (for `ehall config`)."""
        data = json.loads(self.model_dump_json())
        data["database_url"] = mask_url_password(self.database_url)
        data["redis_url"] = mask_url_password(self.redis_url)
        for path in _SECRET_PATHS:
            node = data
            *parents, leaf = path
            for part in parents:
                node = node[part]
            node[leaf] = MASK if node.get(leaf) else "(unset)"
        return data


MASK = "********"
# query parameters that carry a credential in a connection URL: ?password= (asyncpg, redis-py),
# sslpassword, ?token=, ?secret=, ?api_key=...
_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|key|auth|credential", re.IGNORECASE)


def mask_url_password(url: str) -> str:
    """postgres://ehall:secret@db/ehall?sslpassword=x -> postgres://ehall:********@db/ehall?sslpassword=********
    (for printing): the password in the userinfo and every secret-looking query parameter."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    query = "&".join(_mask_query_parameter(parameter) for parameter in parts.query.split("&")) \
        if parts.query else parts.query
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _mask_query_parameter(parameter: str) -> str:
    name, equals, value = parameter.partition("=")
    if equals and value and _SECRET_QUERY_KEY.search(unquote_plus(name)):
        return f"{name}={MASK}"
    return parameter


_SECRET_PATHS = [("jwt_secret",), ("pii_keys",), ("pii_index_key",), ("wechat", "secret"), ("metrics", "token"),
                 ("sms", "aliyun", "access_key_secret"), ("sms", "tencent", "secret_key"),
                 ("notify", "receipt_token"), ("official_account", "secret"), ("official_account", "token"),
                 ("official_account", "encoding_aes_key")]


def _development_secrets(var_dir: Path) -> dict[str, str]:
    """Throw-away secrets for a development machine, created once and kept in var/ (git-ignored)."""
    path = var_dir / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    var_dir.mkdir(parents=True, exist_ok=True)
    generated = {
        "jwt_secret": secrets.token_urlsafe(48),
        "pii_keys": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "pii_index_key": secrets.token_urlsafe(48),
    }
    path.write_text(json.dumps(generated))
    os.chmod(path, 0o600)
    return generated


class MissingSecret(RuntimeError):
    pass


def load_settings(**overrides) -> Settings:
    settings = Settings(**overrides)
    missing = [name for name in ("jwt_secret", "pii_keys", "pii_index_key")
               if not getattr(settings, name).get_secret_value()]
    if missing:
        if settings.environment == "production":
            raise MissingSecret(
                "missing secrets: " + ", ".join("EHALL_" + name.upper() for name in missing))
        generated = _development_secrets(Path(settings.var_dir))
        settings = Settings(**{name: generated[name] for name in missing}, **overrides)
    return settings

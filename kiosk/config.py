"""The one validated configuration schema and its layered loader.

Layers, later wins: ``config/default.toml`` (safe values only) < a profile
(``config/development.toml`` for ``--simulate``, the demo and the tests) < site
file < remotely pushed overrides (fleet bundles) < environment
(``KIOSK__SECTION__KEY=value``) < CLI. Every key remembers which layer set it, so
an error names the key, the file and what was expected.

The profile is chosen explicitly: ``load_config_layers(profile="development")``,
or ``KIOSK_PROFILE=development`` in the environment (what tests/conftest.py,
``kiosk run --simulate`` and ``kiosk demo`` set). Without one, nothing from the
development profile is loaded, so a real kiosk never runs on development values
by accident.
"""
from __future__ import annotations

import base64
import copy
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("KIOSK_CONFIG_DIR", PROJECT_ROOT / "config"))
DEFAULT_FILE = CONFIG_DIR / "default.toml"
SITE_FILE_ENV = "KIOSK_CONFIG"
PROFILE_ENV = "KIOSK_PROFILE"
DEVELOPMENT_PROFILE = "development"
#: The published development credential: trusted by a plain `kiosk platform-sim` and the
#: embedded simulator; refused by the production check (kiosk.infra.production).
DEV_CREDENTIALS_FILE = CONFIG_DIR / "dev-credentials.toml"
ADMIN_KEY_PREFIX = "ed25519:"


def admin_key_bytes(key: str) -> bytes | None:
    """The raw 32 public-key bytes of an ``ed25519:<base64>`` admin key, or None when it is not one."""
    k = key.strip()
    if not k.lower().startswith(ADMIN_KEY_PREFIX):
        return None
    try:
        raw = base64.b64decode("".join(k[len(ADMIN_KEY_PREFIX):].split()), validate=True)
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


def distinct_admin_keys(keys: Sequence[str]) -> int:
    """How many different administrators `keys` name: counted by raw key bytes, not by spelling."""
    return len({admin_key_bytes(k) or k.strip() for k in keys})


ENV_PREFIX = "KIOSK__"
#: The remote command actions (kiosk.fleet.commands.ACTIONS): the keys [fleet.command_thresholds] takes.
COMMAND_ACTIONS = ("screenshot", "diagnostics", "test-page", "drain", "restart", "reboot")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KioskSection(_Section):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    group: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    region_code: str = Field(pattern=r"^\d{6}$")
    station_name: str = Field(min_length=1)
    brand: str = "齐好办"
    helper_phone: str = ""
    service_phone: str = "12345"
    #: the item's page on the provincial platform, printed as a QR on the 一次性告知单 ({code}, {region})
    item_page_url: str = Field(default="https://zwfw.sd.gov.cn/item?region={region}&code={code}",
                               pattern=r"^https://")


class UISection(_Section):
    # upper bounds: these are pushable (kiosk.fleet.pushable), and a session that never times out
    # leaves one citizen's data on the screen for the next
    idle_timeout_s: float = Field(gt=0, le=900)
    idle_warning_s: float = Field(ge=0)
    elderly_idle_timeout_s: float = Field(gt=0, le=1800, default=240)
    elderly_mode: bool = False
    voice: bool = True
    voice_backend: Literal["espeak-ng", "clips", "none"] = "espeak-ng"
    voice_volume: int = Field(default=100, ge=0, le=200)  # espeak-ng amplitude; 100 is its own default
    voice_rate_wpm: int = Field(default=140, ge=80, le=450)  # words per minute; slower helps the elderly
    technician_pin: str = Field(default="", pattern=r"^[0-9]{0,12}$")  # development only; production refuses it
    technician_pin_hash: str = ""  # `kiosk-admin pin-hash` output (kiosk.infra.pin_hash)
    technician_lockout_attempts: int = Field(default=5, ge=1)
    technician_lockout_s: float = Field(default=600, gt=0)
    production: bool = False
    fullscreen: bool = False
    width: int = Field(default=1280, ge=320)
    height: int = Field(default=800, ge=240)
    items_per_page: int = Field(default=6, ge=1, le=24)  # three rows of two under a headline at 1280x800
    elderly_items_per_page: int = Field(default=3, ge=1, le=12)  # three big tiles fit 1280x800 without scrolling

    @model_validator(mode="after")
    def _warning_shorter_than_timeout(self) -> UISection:
        if self.idle_warning_s >= self.idle_timeout_s:
            raise ValueError("idle_warning_s must be shorter than idle_timeout_s")
        return self


class OpeningPeriod(_Section):
    days: str = Field(pattern=r"^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$")
    open: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    close: str = Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")


class HoursSection(_Section):
    self_service_24h: bool = True
    staffed: list[OpeningPeriod] = Field(default_factory=list)


class Announcement(_Section):
    text: str = Field(min_length=1, max_length=500)
    starts: str | None = None
    ends: str | None = None


class CatalogSection(_Section):
    path: str | None = None  # None: the bundled config/catalog
    disabled: list[str] = Field(default_factory=list)
    most_used: list[str] = Field(default_factory=list)


class PlatformSection(_Section):
    base_url: str = Field(pattern=r"^https?://")
    credentials_file: str
    embedded_simulator: bool = False
    connect_timeout_s: float = Field(default=3.05, gt=0, le=60)
    read_timeout_s: float = Field(default=15, gt=0, le=300)
    verify_tls: bool = True
    ca_bundle: str | None = None
    signature_alg: Literal["hmac-sm3", "hmac-sha256"] = "hmac-sm3"


class StorageSection(_Section):
    data_dir: str = "var"
    key_file: str = "var/kiosk.key"
    retention_days: int = Field(default=30, ge=0)


class LoggingSection(_Section):
    dir: str = "var/log"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_bytes: int = Field(default=5_000_000, gt=0)
    backups: int = Field(default=5, ge=0)


class CalendarSection(_Section):
    """Working-day calendar for promised completion dates."""

    holidays: list[str] = Field(default_factory=list)  # ISO dates off work
    workdays: list[str] = Field(default_factory=list)  # make-up working weekend days


# ------------------------------------------------------------- device parameters
# The parameters each (kind, driver) reads, declared here because this layer cannot import
# devices/: a typo (`buadrate`) is refused by the loader with its key and file instead of being
# ignored by the driver. tests/core/test_config.py checks this table against the driver table
# (kiosk.bootstrap.drivers.DRIVERS).
_COMMON = frozenset({"driver", "enabled", "poll_interval_s", "reconnect_initial_s", "reconnect_max_s"})
_GA467 = frozenset({"timeout_s", "read_timeout_s"})
_QR = frozenset({"dedupe_window_s", "url_allow_list", "max_payload_chars"})
_CAMERA_PIPELINE = frozenset({
    "detect_size", "target_dpi", "jpeg_max_kb", "mode", "deskew", "text_zoom",
    "quality_blur_min", "quality_glare_max_frac", "quality_dark_min_mean", "quality_dark_frame_p99",
    "quality_min_area_frac", "quality_edge_margin_frac",
    "face_work_width", "face_min_neighbors", "face_min_face_frac", "face_max_offset_frac", "face_blur_min",
    "face_dark_min_mean", "face_scale_factor", "face_crop_margin", "face_cascade",
})
_PRINTER = frozenset({"paper_mm", "poll_status", "status_timeout_s"})
DEVICE_PARAMETERS: dict[tuple[str, str], frozenset[str]] = {
    ("idcard", "ga467-serial"): _GA467 | {"port", "baudrate", "check_on_open", "checksum_retries",
                                          "timeouts_until_lost"},
    ("idcard", "simulated"): _GA467 | {"card_present"},
    ("sscard", "pcsc"): frozenset({"reader"}),
    ("sscard", "simulated"): frozenset({"reader", "psam_required"}),
    ("qr", "camera"): _QR | {"decoder", "loop", "max_side", "source"},
    ("qr", "serial"): _QR | {"port", "baudrate", "max_line"},
    ("qr", "evdev"): _QR | {"device", "grab", "max_line"},
    ("qr", "simulated"): _QR,
    ("camera", "opencv"): _CAMERA_PIPELINE | {"backend", "device", "flush_frames", "fourcc", "width", "height",
                                              "preview_width", "loop"},
    ("camera", "simulated"): _CAMERA_PIPELINE | {"face", "images", "variant", "width", "height", "preview_width"},
    ("printer", "escpos-network"): _PRINTER | {"host", "port", "timeout_s"},
    ("printer", "escpos-serial"): _PRINTER | {"devfile", "baudrate", "timeout_s", "dsrdtr"},
    ("printer", "escpos-usb"): _PRINTER | {"id_vendor", "id_product", "timeout_ms", "in_ep", "out_ep"},
    ("printer", "escpos-file"): _PRINTER | {"devfile"},
    ("printer", "simulated"): _PRINTER | {"emulator_port", "out_dir", "status", "host", "port"},
}


#: The device parameters that only tune a driver, with the values they take. These are the
#: ones a fleet bundle may push (kiosk.fleet.pushable), so each is checked here whichever layer
#: sets it: a pushed ``paper_mm = 57`` or ``timeout_s = "soon"`` is refused before it takes
#: effect instead of breaking a device after the restart. "number": an int or float (not a
#: bool), finite, at least 0; "bool": true or false; a tuple: exactly one of those values.
DEVICE_TUNING_TYPES: dict[str, str | tuple[Any, ...]] = {
    **dict.fromkeys((
        "timeout_s", "timeout_ms", "read_timeout_s", "status_timeout_s", "poll_interval_s",
        "reconnect_initial_s", "reconnect_max_s", "timeouts_until_lost", "checksum_retries",
        "dedupe_window_s", "max_line", "max_payload_chars", "flush_frames",
        "width", "height", "preview_width", "max_side", "jpeg_max_kb", "target_dpi", "detect_size", "text_zoom",
        "quality_blur_min", "quality_glare_max_frac", "quality_dark_min_mean", "quality_dark_frame_p99",
        "quality_min_area_frac", "quality_edge_margin_frac",
        "face_work_width", "face_min_neighbors", "face_min_face_frac", "face_max_offset_frac", "face_blur_min",
        "face_dark_min_mean", "face_scale_factor", "face_crop_margin"), "number"),
    **dict.fromkeys(("check_on_open", "poll_status", "deskew"), "bool"),
    "paper_mm": (58, 80),
}


def _tuning_value_problem(name: str, value: Any) -> str | None:
    kind = DEVICE_TUNING_TYPES.get(name)
    if kind is None:
        return None
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, not {value!r}"
    if isinstance(kind, tuple):
        ok = not isinstance(value, bool) and value in kind
        return None if ok else f"must be one of {', '.join(map(str, kind))}, not {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return f"must be a number of at least 0, not {value!r}"
    return None


def _device_parameter_problems(merged: Mapping[str, Any], sources: dict[str, str]) -> list[tuple[str, str, str]]:
    """Unknown drivers, parameters a driver does not read and tuning values of the wrong kind,
    as (key, source, message)."""
    devices = merged.get("devices")
    if not isinstance(devices, Mapping):
        return []
    problems = []
    for kind, settings in devices.items():
        if not isinstance(settings, Mapping) or not isinstance(settings.get("driver"), str) or not settings["driver"]:
            continue  # the schema names a missing or empty driver
        driver = settings["driver"]
        allowed = DEVICE_PARAMETERS.get((kind, driver))
        if allowed is None:
            known = sorted(d for k, d in DEVICE_PARAMETERS if k == kind)
            if known:
                key = f"devices.{kind}.driver"
                problems.append((key, _source_for(("devices", kind, "driver"), sources),
                                 f"unknown driver {driver!r} (known: {', '.join(known)})"))
            continue
        for name in settings:
            if name not in allowed and name not in _COMMON:
                problems.append((f"devices.{kind}.{name}", _source_for(("devices", kind, name), sources),
                                 f"unknown key (driver {driver} reads: {', '.join(sorted(allowed)) or 'none'})"))
                continue
            wrong = _tuning_value_problem(name, settings[name])
            if wrong:
                problems.append((f"devices.{kind}.{name}", _source_for(("devices", kind, name), sources), wrong))
    return problems


class DeviceSettings(BaseModel):
    """`driver` picks the adapter; the remaining keys are that driver's parameters (checked by the loader)."""

    model_config = ConfigDict(extra="allow")
    driver: str = Field(min_length=1)
    enabled: bool = True


class FleetSection(_Section):
    enabled: bool = False
    broker_url: str = "mqtt://127.0.0.1:1883"
    admin_keys: list[str] = Field(default_factory=list)
    threshold: int = Field(default=1, ge=1)  # k of n: at most the number of distinct admin keys
    min_version: int = Field(default=0, ge=0)  # rollback floor pinned by the site file
    state_dir: str = "var/fleet"
    health_interval_s: float = Field(default=60, gt=0)
    username: str | None = None  # per-kiosk broker credentials; None = anonymous
    password_file: str | None = None
    tls_ca: str | None = None  # CA bundle; set (or use mqtts://) to require TLS
    tls_cert: str | None = None  # client certificate for mutual TLS
    tls_key: str | None = None
    max_bundle_bytes: int = Field(default=262144, gt=0)
    reconnect_max_s: float = Field(default=120, gt=0)

    # signatures each remote command action needs (kiosk.fleet.commands); a bundle may not change them
    command_thresholds: dict[str, int] = Field(default_factory=lambda: {
        "screenshot": 1, "diagnostics": 1, "test-page": 1, "drain": 1, "restart": 2, "reboot": 2})

    @field_validator("admin_keys")
    @classmethod
    def _admin_keys_are_keys(cls, v: list[str]) -> list[str]:
        bad = [i for i, k in enumerate(v) if admin_key_bytes(k) is None]
        if bad:
            raise ValueError(f"entr{'y' if len(bad) == 1 else 'ies'} {', '.join(map(str, bad))} "
                             "not an ed25519:<base64 of 32 bytes> public key")
        return v

    @field_validator("threshold")
    @classmethod
    def _threshold_within_distinct_keys(cls, v: int, info: ValidationInfo) -> int:
        keys = info.data.get("admin_keys")  # absent: the keys themselves were refused, the problem to name
        distinct = distinct_admin_keys(keys) if keys else 0
        if keys and v > distinct:  # no keys at all: the production check refuses an enabled fleet without them
            raise ValueError(f"threshold {v} is above the {distinct} distinct admin key(s) "
                             "(counted by raw key bytes): no bundle could ever be accepted")
        return v

    @field_validator("command_thresholds")
    @classmethod
    def _known_command_actions(cls, v: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(v) - set(COMMAND_ACTIONS))
        if unknown:
            raise ValueError(f"unknown command action(s) {', '.join(unknown)} (known: {', '.join(COMMAND_ACTIONS)})")
        low = sorted(k for k, n in v.items() if n < 1)
        if low:
            raise ValueError(f"{', '.join(low)}: a command needs at least 1 signature")
        return v


# ------------------------------------------------------------- 好差评 (evaluation)
class EvaluationReason(_Section):
    """One reason choice offered for a bad rating: the indicator's wording, a plain hint for the elderly."""
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    text: str = Field(min_length=1, max_length=40)  # the standard's wording
    hint: str = Field(default="", max_length=60)  # our plain words under it


EVALUATION_LEVELS = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")


def _gbt39734_reasons() -> list[EvaluationReason]:
    return [EvaluationReason(code="service_efficiency", text="服务效率", hint="办得慢、等得久、跑了好几趟"),
            EvaluationReason(code="service_level", text="服务水平", hint="说不清楚、告知不全、操作指引看不懂"),
            EvaluationReason(code="service_attitude", text="服务态度", hint="帮办人员态度不好、不耐心")]


class EvaluationSection(_Section):
    """The 好差评 indicator set of this channel, versioned and pushable by bundle ([evaluation]).

    The default follows GB/T 39734-2020《政务服务“一次一评”“一事一评”工作规范》 for the self-service
    terminal. What it relies on (found with the search tool; the standard's full text was not at hand):
    - the standard's contents (7.3 评价等级及选项设置; normative 附录A 差评评价内容) and scope, from its
      front matter (github5.com/doc/18124) and its summary (m.bzxz.net/en/002b9a0853eca5e61.html);
    - the national 好差评 评价内容标准 that the standard carries (jiakaoti.com/page95?article_id=100):
      five levels 非常满意(☆☆☆☆☆), 满意, 基本满意, 不满意, 非常不满意(☆); the self-service terminal
      (自助办理终端) is an offline (线下) channel, whose first-level indicator is 整体满意度 and whose
      second-level indicators are 服务效率, 服务水平, 服务态度, shown by level; the content is version
      managed ("评价内容将进行版本管理"); each case may be rated once ("均可对该事项及其办件进行一次评价");
    - the seed's scoring tables name the same five levels (附件6-8).
    Not found: the option wording of 附录A under each second-level indicator. So the default's reason
    choices for 不满意 / 非常不满意 are the three second-level indicators in the standard's words (the
    ``hint`` lines are ours), with an optional note; a province pushes its 附录A list as a new ``version``.
    """
    version: str = Field(default="gbt39734-2020.self-service.1", min_length=1, max_length=64)
    standard: str = "GB/T 39734-2020"
    channel: Literal["self_service_terminal"] = "self_service_terminal"
    overall_indicator: str = Field(default="整体满意度", min_length=1)
    levels: list[str] = Field(default_factory=lambda: list(EVALUATION_LEVELS))
    reasons_for: list[str] = Field(default_factory=lambda: ["不满意", "非常不满意"])  # levels that ask why
    reason_required: bool = True  # at least one choice for those levels
    reasons: list[EvaluationReason] = Field(default_factory=_gbt39734_reasons)
    note_max_chars: int = Field(default=200, ge=0, le=500)  # the optional note (0: no note)

    @model_validator(mode="after")
    def _consistent(self) -> EvaluationSection:
        if len(self.levels) != 5 or len(set(self.levels)) != 5:
            raise ValueError("levels must be five distinct levels (GB/T 39734: 非常满意 … 非常不满意)")
        if not set(self.reasons_for) <= set(self.levels):
            raise ValueError("reasons_for must name levels of `levels`")
        codes = [r.code for r in self.reasons]
        if len(set(codes)) != len(codes):
            raise ValueError("reason codes must be unique")
        if self.reasons_for and self.reason_required and not self.reasons:
            raise ValueError("reason_required needs at least one reason choice")
        return self


class KioskConfig(_Section):
    kiosk: KioskSection
    ui: UISection
    hours: HoursSection = Field(default_factory=HoursSection)
    announcements: list[Announcement] = Field(default_factory=list)
    catalog: CatalogSection = Field(default_factory=CatalogSection)
    platform: PlatformSection
    storage: StorageSection = Field(default_factory=StorageSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    calendar: CalendarSection = Field(default_factory=CalendarSection)
    devices: dict[str, DeviceSettings] = Field(default_factory=dict)
    fleet: FleetSection = Field(default_factory=FleetSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)

    @field_validator("devices")
    @classmethod
    def _known_kinds(cls, v: dict[str, DeviceSettings]) -> dict[str, DeviceSettings]:
        unknown = set(v) - {"idcard", "qr", "camera", "printer", "sscard"}
        if unknown:
            raise ValueError(f"unknown device kind(s): {', '.join(sorted(unknown))}")
        return v

    def resolve_path(self, p: str | os.PathLike[str]) -> Path:
        """Relative paths in config are relative to the project root."""
        path = Path(p)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @property
    def data_dir(self) -> Path:
        return self.resolve_path(self.storage.data_dir)


class ConfigError(Exception):
    """A configuration problem, phrased for the technician who has to fix the file."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = problems  # (key, source, message)
        lines = [f"{key}: {msg} (in {src})" for key, src, msg in problems]
        super().__init__("invalid configuration:\n  " + "\n  ".join(lines))


# --------------------------------------------------------------------- loading
def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError([("(file)", str(path), "file not found")]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([("(syntax)", str(path), f"not valid TOML: {e}")]) from None


def _merge(base: dict[str, Any], layer: Mapping[str, Any], source: str, sources: dict[str, str],
           prefix: str = "") -> None:
    for k, v in layer.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v, source, sources, key + ".")
        else:
            base[k] = copy.deepcopy(dict(v)) if isinstance(v, Mapping) else copy.deepcopy(v)
            sources[key] = source


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """KIOSK__UI__IDLE_TIMEOUT_S=60 -> {"ui": {"idle_timeout_s": 60}}; values parse as TOML."""
    out: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not parts:
            continue
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def _source_for(loc: tuple[int | str, ...], sources: dict[str, str]) -> str:
    parts = [str(p) for p in loc]
    while parts:
        key = ".".join(parts)
        if key in sources:
            return sources[key]
        parts.pop()
    return "defaults"


class LoadedConfig:
    """A validated config plus where each key came from (for `kiosk diagnose`, the production check)."""

    def __init__(self, config: KioskConfig, raw: dict[str, Any], sources: dict[str, str], files: list[str],
                 *, profile: str | None = None, site_file: str | None = None):
        self.config = config
        self.raw = raw
        self.sources = sources  # dotted key -> the layer that set it (a file path, "environment", ...)
        self.files = files
        self.profile = profile  # the profile loaded over the defaults, or None
        self.site_file = site_file  # the site file as given, or None


def profile_file(name: str) -> Path:
    """The TOML file of profile `name` (``config/<name>.toml``)."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name) or name == "default":
        raise ConfigError([("(profile)", PROFILE_ENV, f"not a profile name: {name!r}")])
    return CONFIG_DIR / f"{name}.toml"


def resolve_profile(profile: str | None, env: Mapping[str, str]) -> str | None:
    """The explicit profile, else KIOSK_PROFILE from `env`, else from the process environment."""
    if profile is None:
        profile = env.get(PROFILE_ENV) or os.environ.get(PROFILE_ENV) or None
    return profile or None


def load_config_layers(
    site_file: str | os.PathLike[str] | None = None,
    overrides: Sequence[tuple[str, Mapping[str, Any]]] | None = None,
    env: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
    defaults_file: str | os.PathLike[str] | None = None,
    profile: str | None = None,
) -> LoadedConfig:
    """Merge all layers and validate once; raise ConfigError naming key, file and expectation.

    `profile`: None takes KIOSK_PROFILE (from `env`, then the process environment); "" loads none.
    """
    env = os.environ if env is None else env
    sources: dict[str, str] = {}
    merged: dict[str, Any] = {}
    files: list[str] = []
    dfile = Path(defaults_file or DEFAULT_FILE)
    _merge(merged, _read_toml(dfile), str(dfile), sources)
    files.append(str(dfile))
    prof = resolve_profile(profile, env)
    if prof:
        pfile = profile_file(prof)
        _merge(merged, _read_toml(pfile), str(pfile), sources)
        files.append(str(pfile))
    site = site_file or env.get(SITE_FILE_ENV)
    if site:
        _merge(merged, _read_toml(Path(site)), str(site), sources)
        files.append(str(site))
    for name, layer in overrides or []:
        _merge(merged, layer, name, sources)
        files.append(name)
    env_layer = _env_layer(env)
    if env_layer:
        _merge(merged, env_layer, "environment", sources)
    if cli:
        _merge(merged, cli, "command line", sources)
    problems = _device_parameter_problems(merged, sources)
    try:
        cfg = KioskConfig.model_validate(merged)
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc)
            msg = err["msg"]
            if err["type"] == "missing":
                msg = "required key is missing"
            elif err["type"] == "extra_forbidden":
                msg = "unknown key"
            problems.append((key, _source_for(loc, sources), msg))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return LoadedConfig(cfg, merged, sources, files, profile=prof, site_file=str(site) if site else None)


def load_config(site_file: str | os.PathLike[str] | None = None, **kw: Any) -> KioskConfig:
    return load_config_layers(site_file, **kw).config

"""Typed configuration: code defaults, overlaid by one TOML file, then a few environment vars.

Every value is checked once at start-up; a bad value stops the kiosk with a message that names the
key, shows the value and says what is allowed.  Nothing falls back silently to a default.

``checkpoint-kiosk config defaults`` prints the commented default file built from the field docs
below, so the documentation and the code cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.domain.model import DIRECTIONS
from kiosk.errors import ConfigError
from offline_queue.serverurl import check_server_url

DEFAULT_PATH = Path("/etc/checkpoint-kiosk/kiosk.toml")

# Environment variables that override one key each: what a technician or a unit file sets most.
ENV_OVERRIDES: dict[str, str] = {
    "CHECKPOINT_KIOSK_CAMERA": "camera.spec",
    "CHECKPOINT_KIOSK_SCANNER": "scanner.spec",
    "CHECKPOINT_KIOSK_DB": "store.path",
    "CHECKPOINT_KIOSK_SERVER_URL": "sync.server_url",
    "CHECKPOINT_KIOSK_LANGUAGE": "ui.language",
    "CHECKPOINT_KIOSK_LOG_LEVEL": "log.level",
}


def _doc(text: str, **kw: Any) -> Any:
    """A dataclass field whose help text goes into the generated default file."""
    choices = kw.pop("choices", None)
    low, high = kw.pop("low", None), kw.pop("high", None)
    meta = {"doc": text, "choices": choices, "low": low, "high": high}
    return field(metadata=meta, **kw)


@dataclass(frozen=True)
class DeviceConfig:
    id: str = _doc("Device id given by the central platform at enrolment.", default="")
    checkpoint_id: str = _doc("Checkpoint this device stands at (set by provisioning).", default="")
    checkpoint_name: str = _doc("Human name of the checkpoint, shown on screen.", default="")
    direction: str = _doc(
        "Direction recorded at start-up; officers switch it on screen or with a button.",
        default="in",
        choices=DIRECTIONS,
    )


@dataclass(frozen=True)
class CameraConfig:
    spec: str = _doc(
        "Camera: 'picamera2', 'v4l2:/dev/video0' (USB webcam) or 'replay:PATH[,fps=N][,loop]'.",
        default="picamera2",
    )
    width: int = _doc("Analysis frame width in pixels (picamera2 lores stream).", default=640,
                      low=64, high=4096)
    height: int = _doc("Analysis frame height in pixels.", default=480, low=64, high=4096)
    crop: float = _doc(
        "Pi camera: fraction of the sensor's field kept, centred (ScalerCrop). 0.5 doubles "
        "the pixels per QR module; needed for small CCCD codes at 20-30 cm.",
        default=1.0, low=0.2, high=1.0)
    autofocus: bool = _doc("Pi camera: continuous autofocus where the module has it (Module 3).",
                           default=True)
    exposure: str = _doc(
        "Pi camera: libcamera's automatic-exposure profile (AeExposureMode). 'short' keeps the "
        "shutter shorter and raises the gain first: less motion blur, more noise "
        "(docs/decoding.md, 'Camera set-up: exposure profile').",
        default="normal", choices=("normal", "short"))
    focus_range: str = _doc(
        "Pi camera with autofocus: where the lens may focus (libcamera's AfRange). 'near' "
        "(macro: 7-33 cm on a Module 3) waits at the distance codes are shown and reaches them "
        "sooner; 'full' for a camera mounted farther than 33 cm from where people hold codes "
        "(docs/decoding.md, 'Camera set-up: focus').",
        default="near", choices=("near", "full"))
    retry_max_seconds: float = _doc(
        "Longest wait between attempts to reopen a lost camera (backoff doubles up to this).",
        default=30.0, low=0.1, high=3600,
    )


@dataclass(frozen=True)
class DecoderConfig:
    backend: str = _doc("QR decoder: 'auto' (measured best), 'zxing' or 'pyzbar'.",
                        default="auto", choices=("auto", "zxing", "pyzbar"))
    dedupe_seconds: float = _doc(
        "The same code seen again within this many seconds of its last sighting is one scan.",
        default=3.0, low=0.0, high=600,
    )


@dataclass(frozen=True)
class ScannerConfig:
    spec: str = _doc(
        "Dedicated 2D scanner beside the camera: '' (none), 'serial:/dev/ttyACM0[,baud=N]' "
        "(USB COM/CDC mode: every character, Vietnamese names too) or "
        "'hid:/dev/input/by-id/...-event-kbd' (keyboard mode: ASCII codes only; "
        "docs/scanner.md).", default="")
    retry_max_seconds: float = _doc(
        "Longest wait between attempts to reopen an unplugged scanner (so a replug is "
        "picked up within this long).", default=5.0, low=0.1, high=3600)


@dataclass(frozen=True)
class SignalsConfig:
    enabled: bool = _doc("Drive GPIO lights and buzzer (off: screen only).", default=True)
    pin_factory: str = _doc(
        "gpiozero pin factory: '' lets gpiozero choose on a Pi (lgpio) and simulates the pins "
        "with a warning where there is no GPIO; 'mock' simulates pins.",
        default="", choices=("", "mock", "lgpio", "rpigpio", "pigpio", "native"),
    )
    red: int = _doc("BCM pin of the red light.", default=17, low=0, high=27)
    amber: int = _doc("BCM pin of the amber light.", default=27, low=0, high=27)
    green: int = _doc("BCM pin of the green light.", default=22, low=0, high=27)
    buzzer: int | None = _doc("BCM pin of the buzzer; omit for none.", default=23, low=0, high=27)
    gate: int | None = _doc("BCM pin of the gate relay, pulsed on pass; omit for none.",
                            default=None, low=0, high=27)
    gate_pulse_seconds: float = _doc("How long the gate relay is energised on pass.",
                                     default=1.0, low=0.05, high=30)
    lamp: int | None = _doc(
        "BCM pin of the reading lamp: a white LED panel above the camera, through a transistor "
        "or relay, lit while the kiosk runs, so a card or a sheet is read in a dim entrance "
        "(docs/decoding.md); omit for none.", default=None, low=0, high=27)
    confirm_button: int | None = _doc(
        "BCM pin of the officer's confirm button: lets the last 'check' person pass.",
        default=None, low=0, high=27)
    direction_button: int | None = _doc("BCM pin of the in/out toggle button.",
                                        default=None, low=0, high=27)
    officer_button: int | None = _doc("BCM pin of the officer key switch (opens the panel).",
                                      default=None, low=0, high=27)


# The [signals] keys that name a BCM pin.
PIN_KEYS = ("red", "amber", "green", "buzzer", "gate", "lamp", "confirm_button",
            "direction_button", "officer_button")


@dataclass(frozen=True)
class StoreConfig:
    path: str = _doc("SQLite database of check-ins.",
                     default="/var/lib/checkpoint-kiosk/checkins.db")
    retention_days: int = _doc(
        "Delivered check-ins are deleted after this many days; undelivered ones never are.",
        default=30, low=1, high=3650)
    disk_warn_mb: int = _doc("Warn on screen and in status below this much free disk (MiB).",
                             default=200, low=1, high=1_000_000)


@dataclass(frozen=True)
class SyncConfig:
    server_url: str = _doc("Central platform base URL; empty disables sync.", default="")
    token_file: str = _doc("File holding the device token (mode 0600, written by provisioning).",
                           default="/etc/checkpoint-kiosk/device-token")
    ca_bundle: str = _doc("CA bundle (PEM) the server's TLS certificate is checked against, "
                          "instead of the public CAs (certifi); empty = the public CAs.",
                          default="")
    timeout_seconds: float = _doc("Timeout of every request to the server.", default=10.0,
                                  low=0.5, high=300)
    central_key: str = _doc(
        "The central's document-signing key pinned at enrolment ('ed25519:' + base64, written "
        "by provisioning); empty = pinned on first use (docs/trust.md).", default="")


LANGUAGES = ("vi", "en")  # the screen's languages; kiosk/locale has a catalogue for each but
# English, the source language


@dataclass(frozen=True)
class UiSettings:
    """The ``[ui]`` table: what the screen shows and how; the one class the screen reads."""

    fullscreen: bool = _doc("Fullscreen on the appliance; the demo runs in a window.", default=True)
    width: int = _doc("Window width; 0 = the display's size.", default=0, low=0, high=7680)
    height: int = _doc("Window height; 0 = the display's size.", default=0, low=0, high=4320)
    portrait: bool = _doc("Draw portrait on a landscape panel (a hospital stand turned upright).",
                          default=False)
    language: str = _doc("Screen language.", default="vi", choices=LANGUAGES)
    result_seconds: float = _doc("How long a decision stays on screen (or until the next code).",
                                 default=4.0, low=0.5, high=120)
    idle_seconds: float = _doc("Inactivity before the attract screen.", default=60.0,
                               low=5, high=86_400)
    officer_pin: str = _doc(
        "PIN for the officer panel: 4-8 digits or a hash from kiosk.domain.officers.hash_pin "
        "(better: a leaked config file then does not give the PIN away); empty = GPIO key only.",
        default="", repr=False)
    voice: bool = _doc("Play spoken prompts when a speaker is present.", default=False)
    sound: bool = _doc("Play the decision tones (off: a silent ward; the lights still show).",
                       default=True)
    fps: int = _doc("Screen frames per second (lower on a Pi 3 to leave the CPU to decoding).",
                    default=30, low=5, high=120)
    venue_qr: str = _doc(
        "The venue QR code the province issued for this checkpoint (the link PC-Covid / "
        "VNeID scans to check in, e.g. https://tokhaiyte.vn/?page=venue&id=...), drawn on the "
        "idle screen; empty = none.", default="")

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the window, or None for the display's own size."""
        return (self.width, self.height) if self.width and self.height else None

    @classmethod
    def checked(cls, **keys: Any) -> UiSettings:
        """A ``[ui]`` table with ``keys`` set, checked as the file's keys are (the PIN too)."""
        settings = Config().replace(ui=keys).ui
        if settings.officer_pin:
            from kiosk.domain.officers import check_pin

            check_pin(settings.officer_pin)
        if settings.venue_qr:
            check_venue_qr(settings.venue_qr)
        return settings


MAX_VENUE_QR = 512  # a venue link is under 100 characters; a QR this long is still readable


def check_venue_qr(value: str) -> None:
    """Raise ConfigError unless ``value`` is a health-declaration venue link the kiosk would
    itself recognise as a venue poster (an https link on a Vietnamese declaration site)."""
    from kiosk.domain.credentials.venue import DECLARATION_HOSTS, is_venue_poster, parse

    shown = value if len(value) <= 80 else value[:77] + "..."
    if len(value) > MAX_VENUE_QR or any(not c.isprintable() or c.isspace() for c in value):
        raise ConfigError(f"ui.venue_qr {shown!r} is not a link: at most {MAX_VENUE_QR} "
                          "printable characters without spaces")
    credential = parse(value)
    if (not value.lower().startswith("https://") or not is_venue_poster(credential)
            or credential.fields.get("type") != "health_declaration"):
        raise ConfigError(f"ui.venue_qr {shown!r} is not the venue code of a declaration site; "
                          f"expected an https:// link on {', '.join(DECLARATION_HOSTS)}, as the "
                          "province issued it for this checkpoint")


@dataclass(frozen=True)
class LogConfig:
    level: str = _doc("Log level. Personal data only ever appears (masked) at DEBUG.",
                      default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    scanner: ScannerConfig = field(default_factory=ScannerConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    ui: UiSettings = field(default_factory=UiSettings)
    log: LogConfig = field(default_factory=LogConfig)
    # The checkpoint policy is validated by kiosk.domain.policy, which owns its keys; here it is
    # kept as the raw table ({"profile": "border", ...overrides}).
    policy: Mapping[str, Any] = field(default_factory=lambda: {"profile": "border"})

    def replace(self, **sections: Any) -> Config:
        """A copy with some keys changed: ``cfg.replace(camera={"spec": "replay:x"})``."""
        return _overlay(self, {k: v for k, v in sections.items()}, source="override")


SECTIONS = tuple(f.name for f in dataclasses.fields(Config) if f.name != "policy")


class ConfigProblems(ConfigError):
    """Every problem found in one configuration; the message is the first and a count."""

    def __init__(self, problems: list[ConfigError]) -> None:
        self.problems = tuple(problems)
        more = len(problems) - 1
        text = str(problems[0])
        if more:
            text += (f" (and {more} more problem{'s' if more > 1 else ''}: "
                     "'checkpoint-kiosk config check' lists them all)")
        super().__init__(text)


def load(path: str | os.PathLike[str] | None = None, *,
         environ: Mapping[str, str] | None = None, whole: bool = True) -> Config:
    """Read the config file (``None`` = the default path, if it exists) and the environment.

    Raises :class:`ConfigProblems` (a ``ConfigError``) naming the first problem and how many
    more :func:`check` finds.  ``whole=False`` skips :func:`check_values` (for ``status`` and
    ``support-bundle``, which must still report on a kiosk whose configuration stops it).
    """
    cfg, problems = check(path, environ=environ, whole=whole)
    if problems:
        raise ConfigProblems(problems)
    return cfg


def check(path: str | os.PathLike[str] | None = None, *,
          environ: Mapping[str, str] | None = None,
          whole: bool = True) -> tuple[Config, list[ConfigError]]:
    """Every problem of the configuration, not only the first, and the configuration built
    from the keys that are valid (a refused key keeps its default).

    ``config check`` shows them all; start-up (:func:`load`) stops on any of them.
    """
    explicit = path is not None
    file = Path(path) if path is not None else DEFAULT_PATH
    problems: list[ConfigError] = []
    refused: set[str] = set()  # dotted keys already reported: later checks skip them
    data: dict[str, Any] = {}
    if file.exists() or explicit:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems.append(ConfigError(
                f"config file {str(file)!r} does not exist; create it with "
                f"'checkpoint-kiosk config defaults > {file}'"))
        except (OSError, UnicodeDecodeError) as e:
            problems.append(ConfigError(f"config file {str(file)!r} cannot be read: {e}"))
        except tomllib.TOMLDecodeError as e:
            problems.append(ConfigError(f"config file {str(file)!r} is not valid TOML: {e}"))
    cfg = _overlay(Config(), data, source=str(file), problems=problems, refused=refused)
    env = os.environ if environ is None else environ
    for var, dotted in ENV_OVERRIDES.items():
        if var in env:
            section, key = dotted.split(".")
            cfg = _overlay(cfg, {section: {key: env[var]}}, source=f"environment {var}",
                           from_text=True, problems=problems, refused=refused)

    def origin(dotted: str) -> str:
        var = next((v for v, d in ENV_OVERRIDES.items() if d == dotted and v in env), None)
        return f"environment {var}" if var else str(file)

    if whole:
        problems += value_problems(cfg, origin, refused=refused)
    return cfg, problems


def check_values(cfg: Config, origin: Callable[[str], str] = lambda _key: "config") -> None:
    """Raise :class:`ConfigProblems` if :func:`value_problems` finds any."""
    problems = value_problems(cfg, origin)
    if problems:
        raise ConfigProblems(problems)


def _sync_problems(cfg: Config, origin: Callable[[str], str]) -> list[ConfigError]:
    """The central's address and pinned key (``[sync]``)."""
    problems: list[ConfigError] = []
    url = cfg.sync.server_url
    if url:
        try:
            check_server_url(url, "sync.server_url =")
        except ValueError as e:
            problems.append(ConfigError(f"{origin('sync.server_url')}: {e}, e.g. "
                                        "'https://kiosk.example.vn'"))
    if cfg.sync.central_key:
        from offline_queue.signing import parse_key

        try:
            parse_key(cfg.sync.central_key, "sync.central_key")
        except ValueError as e:
            problems.append(ConfigError(f"{origin('sync.central_key')}: {e}; provision the "
                                        "kiosk again, or empty it to pin on first use"))
    return problems


def value_problems(cfg: Config, origin: Callable[[str], str] = lambda _key: "config", *,
                   refused: Collection[str] = ()) -> list[ConfigError]:
    """The checks one key's type and range cannot express, so start-up cannot fail later.

    ``config check`` and provisioning (which validates before spending the one-time token)
    go through :func:`load`, so a camera typo, an unknown policy profile, a short PIN or two
    devices on one pin are reported there, not by a kiosk that then restarts in a loop.
    ``origin(key)`` names where a key's value came from (file or environment variable);
    keys in ``refused`` were already reported and hold their defaults: they are not checked.
    """
    from hardware.camera import CameraSpec
    from kiosk.domain.officers import check_pin
    from kiosk.domain.policy import Policy
    from kiosk.errors import CameraError, KioskError

    problems = _sync_problems(cfg, origin)
    try:
        CameraSpec.parse(cfg.camera.spec)
    except CameraError as e:
        problems.append(ConfigError(f"{origin('camera.spec')}: camera.spec: {e}"))
    problems += _scanner_problems(cfg, origin)
    table = dict(cfg.policy)
    try:
        Policy.load(str(table.pop("profile", "border")), table)
    except KioskError as e:
        problems.append(ConfigError(f"{origin('policy')}: {e}"))
    try:
        # 4-8 digits or a hash_pin() string; the value never shows.
        if cfg.ui.officer_pin:
            check_pin(cfg.ui.officer_pin)
    except ConfigError as e:
        problems.append(ConfigError(f"{origin('ui.officer_pin')}: {e}"))
    if cfg.ui.venue_qr:
        try:
            check_venue_qr(cfg.ui.venue_qr)
        except ConfigError as e:
            problems.append(ConfigError(f"{origin('ui.venue_qr')}: {e}"))
    if cfg.signals.enabled and "signals.enabled" not in refused:
        problems += _shared_pins(cfg, origin, refused)
    return problems


def _scanner_problems(cfg: Config, origin: Callable[[str], str]) -> list[ConfigError]:
    """A typo in the scanner spec stops start-up; a scanner not plugged in is retried."""
    from hardware.scanner import ScannerSpec
    from kiosk.errors import HardwareError

    if not cfg.scanner.spec:
        return []
    try:
        ScannerSpec.parse(cfg.scanner.spec)
    except HardwareError as e:
        return [ConfigError(f"{origin('scanner.spec')}: scanner.spec: {e}")]
    return []


def _shared_pins(cfg: Config, origin: Callable[[str], str],
                 refused: Collection[str]) -> list[ConfigError]:
    """Two devices wired to one BCM pin: each one after the first is a problem."""
    problems = []
    seen: dict[int, str] = {}
    for name in PIN_KEYS:
        pin = getattr(cfg.signals, name)
        if pin is None or f"signals.{name}" in refused:
            continue  # not wired, or its own value was refused (a default stands in)
        if pin in seen:
            problems.append(ConfigError(
                f"{origin('signals.' + name)}: signals.{name} = {pin!r} is the same "
                f"BCM pin as signals.{seen[pin]}; each light, buzzer, relay and button "
                "needs its own pin"))
            continue
        seen[pin] = name
    return problems


def _key_name(section: str, key: str) -> str:
    """``section.key``, the key quoted when it is not a plain name (a stick's file may hold
    control characters in a quoted TOML key)."""
    return f"{section}.{key}" if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f"{section}.{key!r}"


def _overlay(cfg: Config, data: Mapping[str, Any], *, source: str, from_text: bool = False,
             problems: list[ConfigError] | None = None,
             refused: set[str] | None = None) -> Config:
    """``cfg`` with ``data`` laid over it.  With a ``problems`` list every bad section or key
    is added there (its dotted name to ``refused``) and skipped; without one the first
    raises."""
    def problem(error: ConfigError, dotted: str) -> None:
        if problems is None:
            raise error
        problems.append(error)
        if refused is not None:
            refused.add(dotted)

    changes: dict[str, Any] = {}
    for name, table in data.items():
        if name not in SECTIONS and name != "policy":
            problem(ConfigError(
                f"{source}: unknown section {name!r}; valid sections: "
                f"{', '.join(SECTIONS + ('policy',))}"), name)
            continue
        if not isinstance(table, Mapping):
            problem(ConfigError(f"{source}: [{name}] must be a table, got {table!r}"), name)
            continue
        if name == "policy":
            changes["policy"] = {**cfg.policy, **table}
            continue
        section = getattr(cfg, name)
        changes[name] = _overlay_section(section, name, table, problem, source=source,
                                         from_text=from_text)
    return dataclasses.replace(cfg, **changes)


def _overlay_section(section: Any, name: str, table: Mapping[str, Any],
                     problem: Callable[[ConfigError, str], None], *, source: str,
                     from_text: bool) -> Any:
    """The settings dataclass ``section`` ([``name``]) with the valid keys of ``table``."""
    fields = {f.name: f for f in dataclasses.fields(section)}
    hints = typing.get_type_hints(type(section))
    values: dict[str, Any] = {}
    for key, raw in table.items():
        dotted = _key_name(name, key)
        if key not in fields:
            problem(ConfigError(
                f"{source}: unknown key {dotted} = {raw!r}; valid keys in [{name}]: "
                f"{', '.join(fields)}"), dotted)
            continue
        try:
            values[key] = _check(dotted, raw, hints[key], fields[key].metadata, source,
                                 from_text)
        except ConfigError as e:
            problem(e, dotted)
    return dataclasses.replace(section, **values)


def _check(name: str, value: Any, hint: Any, meta: Mapping[str, Any], source: str,
           from_text: bool) -> Any:
    optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if from_text:
        value = _from_text(name, value, base, optional, source)
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise ConfigError(f"{source}: {name} must be set")
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[base]
    if not ok:
        raise ConfigError(f"{source}: {name} = {value!r} must be {_type_name(base, optional)}")
    if base is float:
        value = float(value)
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(
            f"{source}: {name} = {value!r} is not one of {', '.join(repr(c) for c in choices)}"
        )
    low, high = meta.get("low"), meta.get("high")
    if low is not None and value < low or high is not None and value > high:
        raise ConfigError(f"{source}: {name} = {value!r} is outside {low}..{high}")
    return value


def _from_text(name: str, text: Any, base: type, optional: bool, source: str) -> Any:
    if not isinstance(text, str) or base is str:
        return text
    if optional and text.strip().lower() in ("", "none"):
        return None
    try:
        if base is bool:
            return {"1": True, "true": True, "yes": True, "0": False, "false": False,
                    "no": False}[text.strip().lower()]
        return base(text)
    except (KeyError, ValueError):
        raise ConfigError(
            f"{source}: {name} = {text!r} must be {_type_name(base, optional)}"
        ) from None


def _type_name(base: type, optional: bool) -> str:
    name = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}[base]
    return f"{name} (or omitted)" if optional else name


def defaults_toml() -> str:
    """The default configuration as a commented TOML file."""
    lines = [
        "# checkpoint-kiosk configuration (default path /etc/checkpoint-kiosk/kiosk.toml).",
        "# Every key is optional; the value shown is the default.  Environment overrides:",
    ]
    lines += [f"#   {var} -> {dotted}" for var, dotted in ENV_OVERRIDES.items()]
    default = Config()
    for section in SECTIONS:
        lines += ["", f"[{section}]"]
        obj = getattr(default, section)
        for f in dataclasses.fields(obj):
            meta = f.metadata
            doc = meta["doc"]
            if meta.get("choices"):
                doc += " One of: " + ", ".join(repr(c) for c in meta["choices"]) + "."
            lines.append(f"# {doc}")
            value = getattr(obj, f.name)
            if value is None:
                lines.append(f"# {f.name} =")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}")
    lines += [
        "",
        "[policy]",
        "# Checkpoint policy profile: 'border', 'hospital' or 'office'; any rule of the profile",
        "# can be overridden here (see docs/policy.md for the keys).",
        'profile = "border"',
        "",
    ]
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)

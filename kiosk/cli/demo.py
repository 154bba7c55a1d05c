"""``checkpoint-kiosk demo``: the whole kiosk on a laptop, with nothing plugged in.

A replayed camera cycles through synthetic people's codes, the GPIO lights run on gpiozero's
mock pins and are drawn on screen, check-ins go to a database in the user's data folder and
sync to a reference central server started on 127.0.0.1 for the occasion.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from kiosk import USER_AGENT
from kiosk import config as config_mod
from kiosk.cli.extras import require_central, require_testing

log = logging.getLogger(__name__)

FRAMES_VERSION = "2"  # bump when kiosk.testing.samples changes what the frames show
SYNC_OPTIONS = {"boot_jitter": 0.5, "link_jitter": 0.5, "documents_interval": 30.0,
                "idle_interval": 5.0}


def data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("checkpoint-kiosk")) / "demo"


def prepare_frames(folder: Path) -> Path:
    """Write the sample camera frames once (and again when the samples change)."""
    from kiosk.testing.samples import write_sequence

    marker = folder / ".version"
    if not marker.exists() or marker.read_text() != FRAMES_VERSION:
        write_sequence(folder)
        marker.write_text(FRAMES_VERSION)
    return folder


# The demo's central runs on the same computer: its clock can only disagree with the kiosk's
# by the time a request takes, so anything above this means something else is wrong.
CLOCK_TOLERANCE = timedelta(seconds=2)


def demo_trust_list(now: datetime | None = None) -> bytes:
    """A trust list with one document signer made for the demo (valid for a year).

    No demo person shows an EU DCC; the list is there because a kiosk without one is not
    healthy (its status strip says so), as a real checkpoint's would not be.
    """
    from cryptography.hazmat.primitives.asymmetric import ec

    from kiosk.domain.trustlist import build_json
    from kiosk.testing.dcc_issue import make_dsc

    now = now or datetime.now(UTC)
    der = make_dsc(ec.generate_private_key(ec.SECP256R1()), country="VN",
                   not_before=now - timedelta(days=1), not_after=now + timedelta(days=365),
                   types=("test", "vaccination", "recovery"))
    return build_json([(der, "VN")])


def publish_documents(central_db: Path) -> None:
    """The province's side of the demo: a hospital policy, a one-person watchlist and a
    trust list."""
    from kiosk.domain.documents import VALIDATORS
    from kiosk.domain.watchlist import Watchlist
    from kiosk.testing.samples import WATCHLISTED_KEYS
    from offline_queue.central import db as central

    today = datetime.now(UTC).date()
    watchlist = Watchlist.build([(key, today + timedelta(days=14)) for key in WATCHLISTED_KEYS],
                                valid_for=timedelta(days=2))
    db = central.connect(central_db)
    try:
        central.set_document(db, "watchlist", watchlist, validators=VALIDATORS,
                             expires_at=datetime.now(UTC) + timedelta(days=2))
        central.set_document(db, "policy", json.dumps({"profile": "hospital"}).encode(),
                             validators=VALIDATORS)
        central.set_document(db, "trust_list", demo_trust_list(), validators=VALIDATORS)
    finally:
        db.close()


def clock_agrees(server_url: str) -> bool:
    """True when this computer's clock reads what the central's ``/v1/health`` says.

    Measured, not assumed: the round trip bounds the difference the network may explain.
    """
    import requests

    before = datetime.now(UTC)
    try:
        response = requests.get(f"{server_url}/v1/health", timeout=5)
        response.raise_for_status()
        server = datetime.fromisoformat(response.json()["time"])
    except (requests.RequestException, ValueError, KeyError, TypeError) as e:
        log.warning("demo: the central's clock could not be read: %s", e)
        return False
    after = datetime.now(UTC)
    if server.tzinfo is None:
        server = server.replace(tzinfo=UTC)
    offset = abs(server - (before + (after - before) / 2))
    agrees = offset <= CLOCK_TOLERANCE + (after - before) / 2
    log.info("demo: clock %s the central's (%.3f s apart)",
             "agrees with" if agrees else "DIFFERS from", offset.total_seconds())
    return agrees


def loop_options(server_url: str) -> dict[str, Callable[[], bool]]:
    """The scan loop's clock check for the demo: NTP-synced as on the appliance, or agreeing
    with the demo's own central, which is the only time the demo's records are compared to."""
    from kiosk.runtime.scanloop import clock_synced

    agrees = clock_agrees(server_url)
    return {"is_clock_synced": lambda: agrees or clock_synced()}


def demo_config(folder: Path, ids: Mapping[str, str], server_url: str, token_file: Path, *,
                width: int, height: int, language: str,
                scanner: str = "", central_key: str = "") -> config_mod.Config:
    """The demo kiosk's configuration (replayed camera, mock pins, local central whose
    signing key ``central_key`` it pins; a dedicated scanner when ``scanner`` names one)."""
    return config_mod.Config().replace(
        scanner={"spec": scanner},
        device={"id": ids["device_id"], "checkpoint_id": ids["checkpoint_id"],
                "checkpoint_name": "Cổng bệnh viện (demo)"},
        camera={"spec": f"replay:{folder / 'frames'},fps=4,loop"},
        store={"path": str(folder / "checkins.db")},
        sync={"server_url": server_url, "token_file": str(token_file),
              "central_key": central_key},
        signals={"pin_factory": "mock", "gate": 24},
        ui={"fullscreen": False, "width": width, "height": height, "language": language,
            "officer_pin": "1234"},
        policy={"profile": "hospital"},
    )


def _local_key(server_url: str) -> str:
    """The signing key of the demo's own central (in this process, on 127.0.0.1)."""
    import requests

    answer = requests.get(f"{server_url}/v1/keys", timeout=10)
    answer.raise_for_status()
    return str(answer.json()["public_key"])


def enrol(central_db: Path, server_url: str, token_file: Path) -> dict[str, str]:
    """Enrol the demo kiosk once; the device token is kept beside the demo database."""
    import requests

    from offline_queue.central import db as central

    ids_file = token_file.with_suffix(".json")
    if token_file.exists() and ids_file.exists():
        kept: dict[str, str] = json.loads(ids_file.read_text())  # written below
        return kept
    db = central.connect(central_db)
    try:
        enrolment = central.create_enrolment_token(db, checkpoint_id="DEMO-01",
                                                   name="Cổng bệnh viện (demo)")
    finally:
        db.close()
    response = requests.post(f"{server_url}/v1/devices/enrol",
                             json={"enrolment_token": enrolment}, timeout=10)
    response.raise_for_status()
    body = response.json()
    token_file.write_text(body["device_token"])
    token_file.chmod(0o600)
    ids = {"device_id": body["device_id"], "checkpoint_id": body["checkpoint_id"]}
    ids_file.write_text(json.dumps(ids))
    return ids


@click.command("demo")
@click.option("--data-dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Where the demo keeps its frames and databases (default: user data folder).")
@click.option("--size", default="1024x600", show_default=True, metavar="WxH",
              help="Window size, e.g. 800x480, 1280x720.")
@click.option("--language", type=click.Choice(config_mod.LANGUAGES), default="vi",
              show_default=True)
@click.option("--headless", is_flag=True, help="No window: lights and records only.")
@click.option("--scanner", "scanner_spec", metavar="SPEC", default="",
              help="A 2D scanner beside the replayed camera: serial:PATH[,baud=N] (a real "
                   "one, or a pty: docs/scanner.md) or hid:/dev/input/by-id/...-event-kbd.")
@click.option("--max-seconds", type=click.FloatRange(min=0.1), help="Stop after this long.")
def demo(folder: Path | None, size: str, language: str, headless: bool, scanner_spec: str,
         max_seconds: float | None) -> None:
    """Run the whole kiosk in a window with a replayed camera and a local central server.

    The camera replays synthetic people: a valid chip ID card (pass), a phone code (pass), an
    unreadable code (nothing happens), a venue poster (present a personal code), a card whose
    number contradicts it (check) and a person on the demo watchlist (stop).  The officer PIN
    is 1234.

    Example: checkpoint-kiosk demo --size 800x480 --language en

    Example: checkpoint-kiosk demo --scanner serial:/tmp/kiosk-scanner (docs/scanner.md)
    """
    require_testing("checkpoint-kiosk demo")
    require_central("checkpoint-kiosk demo")
    from hardware.errors import ScannerError
    from hardware.scanner import ScannerSpec
    from kiosk.domain.declared_status import DeclarationFolder
    from kiosk.domain.documents import VALIDATORS
    from kiosk.main import run_kiosk
    from kiosk.runtime.build import Supplied, setup_logging
    from offline_queue.central.server import CentralServer

    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{size!r} is not WIDTHxHEIGHT, e.g. 1024x600",
                                 param_hint="--size") from None
    if scanner_spec:
        try:
            ScannerSpec.parse(scanner_spec)
        except ScannerError as e:
            raise click.BadParameter(str(e), param_hint="--scanner") from None
    folder = folder or data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    setup_logging("INFO")
    prepare_frames(folder / "frames")
    central_db = folder / "central.db"
    token_file = folder / "device-token"
    with contextlib.ExitStack() as stack:
        # Declarations made on the demo kiosk's form are folded into its status document.
        server = stack.enter_context(CentralServer(central_db, validators=VALIDATORS,
                                                   fold=DeclarationFolder()))
        publish_documents(central_db)
        ids = enrol(central_db, server.url, token_file)
        log.info("demo: central server on %s, data in %s", server.url, folder)
        # Pull the watchlist and policy before the first person scans, as a provisioned
        # kiosk would have them from its last sync.
        from offline_queue.sync import sync_once

        # The central runs in this process: its key is known, not trusted on first use.
        central_key = _local_key(server.url)
        sync_once(db_path=folder / "checkins.db", server_url=server.url, user_agent=USER_AGENT,
                  token=token_file.read_text().strip(), central_key=central_key)
        cfg = demo_config(folder, ids, server.url, token_file, width=width, height=height,
                          language=language, scanner=scanner_spec, central_key=central_key)
        code = run_kiosk(cfg, headless=headless, max_seconds=max_seconds, show_lights=True,
                         supplied=Supplied(sync_options=SYNC_OPTIONS,
                                           loop_options=loop_options(server.url)))
    sys.exit(code)


__all__ = ["demo"]

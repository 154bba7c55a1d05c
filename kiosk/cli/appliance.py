"""Technician commands: ``provision``, ``selftest``, ``status``, ``support-bundle``.

Thin click layers over ``kiosk.ops.provision``, ``kiosk.ops.selftest``, ``kiosk.ops.status`` and
``kiosk.ops.support``; library errors become one line and exit status 1 in ``kiosk.cli``.
"""

from __future__ import annotations

import json
import logging
import pwd
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kiosk import config as config_mod
from kiosk.cli.extras import CommandT
from kiosk.domain.model import DIRECTIONS
from kiosk.terminal import printable

if TYPE_CHECKING:  # the commands import the provisioning unit only when they run
    from kiosk.ops.provision import Request, Result

log = logging.getLogger(__name__)

KIOSK_USER = "kiosk"
KIOSK_UNIT = "checkpoint-kiosk.service"
STATE_DIR = "/var/lib/checkpoint-kiosk"


def _default_owner() -> str | None:
    try:
        pwd.getpwnam(KIOSK_USER)
    except KeyError:
        return None
    return KIOSK_USER


def _config_option(f: CommandT) -> CommandT:
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False),
        default=str(config_mod.DEFAULT_PATH), show_default=True,
        help="Configuration file.")(f)


def _db_option(f: CommandT) -> CommandT:
    return click.option("--db", "db_path", type=click.Path(dir_okay=False),
                        help="Check-in database (overrides store.path), as 'run --db'.")(f)


def _state_dir_option(f: CommandT) -> CommandT:
    return click.option("--state-dir", default=STATE_DIR, show_default=True,
                        help="Where provisioning keeps its last result (as 'provision "
                             "--state-dir').")(f)


def _parse_pin(_ctx: click.Context, _param: click.Parameter,
               values: tuple[str, ...]) -> dict[str, int]:
    pins: dict[str, int] = {}
    for value in values:
        name, _, number = value.partition("=")
        if not number.isdigit():
            raise click.BadParameter(f"{value!r} must be NAME=BCM, e.g. red=17")
        pins[name.strip()] = int(number)
    return pins


@click.command("provision")
@click.option("--server", "server_url", metavar="URL", help="Central platform URL.")
@click.option("--token", "token", metavar="TOKEN", envvar="CHECKPOINT_KIOSK_ENROLMENT_TOKEN",
              help="One-time enrolment token; '-' reads it from stdin (keeps it out of ps and "
                   "shell history); or set CHECKPOINT_KIOSK_ENROLMENT_TOKEN.")
@click.option("--name", "checkpoint_name", default="", help="Checkpoint name shown on screen.")
@click.option("--checkpoint", "checkpoint_id", default="",
              help="Expected checkpoint id (the server's answer must match).")
@click.option("--profile", "policy_profile", help="Policy profile: border, hospital, office.")
@click.option("--camera", help="Camera spec: picamera2, v4l2:/dev/video0, replay:PATH.")
@click.option("--direction", type=click.Choice(DIRECTIONS), help="Start-up direction.")
@click.option("--ca-bundle", help="CA bundle (PEM) for the server's certificate (the "
              "province's own CA), used instead of the public CAs.")
@click.option("--central-key", metavar="FINGERPRINT", default="",
              help="The central's key fingerprint (64 hex digits, from 'checkpoint-kiosk "
                   "central key' or the province's enrolment sheet): enrolment stops if the "
                   "server holds another key (docs/trust.md).")
@click.option("--pin", "pins", multiple=True, callback=_parse_pin, metavar="NAME=BCM",
              help="A GPIO pin: red, amber, green, buzzer, gate, confirm_button, ... (repeat).")
@click.option("--file", "file_path", type=click.Path(dir_okay=False),
              help="Import this provisioning file instead of flags.")
@click.option("--qr", "qr_text", metavar="TEXT", help="Import a provisioning QR's text.")
@click.option("--from-media", is_flag=True,
              help="Import new provisioning files from the boot partition and USB sticks.")
@click.option("--media", "media_globs", multiple=True, metavar="GLOB",
              help="With --from-media: look in these folders instead of the boot partition, "
                   "/media/*, /run/media/*/* and /mnt (repeat).")
@click.option("--restart-kiosk", is_flag=True,
              help="After an import, restart the kiosk service so it uses the new config.")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="Where the device token goes (default: sync.token_file, else device-token "
                   "beside the config; mode 0600). The config written names this file.")
@click.option("--replace-token", is_flag=True,
              help="Replace an existing device token (re-provisioning this kiosk); without "
                   "it an existing token file is never overwritten.")
@click.option("--owner", default=_default_owner, show_default="kiosk if that user exists",
              help="Owner of the written files when run as root ('' = root).")
@click.option("--state-dir", default=STATE_DIR, show_default=True,
              help="Where the last result is kept for the screen.")
@click.option("--timeout", type=click.FloatRange(0.5, 120), default=10.0, show_default=True,
              help="Seconds to wait for the server.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_config_option
def provision(server_url: str | None, token: str | None, checkpoint_name: str,
              checkpoint_id: str, policy_profile: str | None, camera: str | None,
              direction: str | None, ca_bundle: str | None, central_key: str, pins: dict[str, int],
              file_path: str | None,
              qr_text: str | None, from_media: bool, media_globs: tuple[str, ...],
              restart_kiosk: bool,
              token_file: str | None, replace_token: bool, owner: str | None,
              state_dir: str, timeout: float, as_json: bool, config_path: str) -> None:
    """Enrol this kiosk with the central platform and write its configuration.

    The old configuration stays untouched if anything fails.  Flags, a provisioning file,
    a provisioning QR's text, or every new file on mounted media (the boot-time unit).
    Server URLs must be https (plain http only to this machine).  An existing device token
    is replaced only with --replace-token.  --from-media never re-points an enrolled kiosk:
    the file waits for the officer's confirmation (with the PIN) on the kiosk screen.

    Example: checkpoint-kiosk provision --server https://kiosk.so-yte.vn --token - --name
    "Cửa khẩu Hữu Nghị" --profile border
    """
    from kiosk.ops import provision as prov

    owner = owner or None
    ways = sum(bool(x) for x in (server_url, file_path, qr_text, from_media))
    if ways != 1:
        raise click.UsageError("give exactly one of --server (with --token), --file, --qr or "
                               "--from-media")
    results: list[prov.Result] = []
    if from_media:
        results = prov.import_from_media(globs=media_globs or prov.MEDIA_GLOBS,
                                          config_path=config_path, state_dir=state_dir,
                                          token_path=token_file, replace_token=replace_token,
                                          owner=owner, timeout=timeout)
        if not results:
            click.echo("no new provisioning file found")
            return
    elif file_path:
        result = prov.import_file(file_path, config_path=config_path, state_dir=state_dir,
                                  token_path=token_file, replace_token=replace_token,
                                  owner=owner, timeout=timeout, force=True)
        assert result is not None  # force=True always imports
        results = [result]
    else:
        request, source = _request(qr_text, server_url, token, checkpoint_name, checkpoint_id,
                                   policy_profile, camera, direction, ca_bundle, central_key,
                                   pins)
        try:
            result = prov.provision(request, config_path=config_path, token_path=token_file,
                                    replace_token=replace_token, owner=owner,
                                    timeout=timeout, source=source)
        except prov.ProvisionError as e:
            prov.save_result(prov.Result(ok=False, message=str(e), source=source), state_dir)
            raise
        prov.save_result(result, state_dir)
        results = [result]
    for result in results:
        _echo_result(result, as_json)
    if restart_kiosk and any(r.ok and not r.pending for r in results):
        # try-restart: only if it is running; a kiosk still booting picks the config up anyway.
        subprocess.run(["systemctl", "try-restart", KIOSK_UNIT], check=False)


def _request(qr_text: str | None, server_url: str | None, token: str | None,
             checkpoint_name: str, checkpoint_id: str, policy_profile: str | None,
             camera: str | None, direction: str | None, ca_bundle: str | None,
             central_key: str, pins: dict[str, int]) -> tuple[Request, str]:
    """The enrolment asked for by a QR's text or by the flags, and where it came from."""
    from kiosk.ops import provision as prov

    if qr_text:
        if central_key:
            raise click.UsageError("--central-key goes with --server; a provisioning QR "
                                   "carries its own")
        return prov.from_qr_payload(qr_text), "QR text"
    if token == "-":
        token = sys.stdin.readline().strip()
    if not token:
        raise click.UsageError("--server needs --token (or '-' to read it from stdin)")
    return prov.Request(
        server_url=server_url or "", enrolment_token=token,
        checkpoint_name=checkpoint_name, checkpoint_id=checkpoint_id,
        policy_profile=policy_profile, camera=camera, direction=direction,
        ca_bundle=ca_bundle, pins=pins, central_key=central_key), "command line"


def _echo_result(result: Result, as_json: bool) -> None:
    """One provisioning result: a JSON line, or what was staged or written, for a person."""
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    if result.pending:
        click.echo(f"staged: {result.source}: {result.message}")
        click.echo(f"  server:     {result.server_url}")
        return
    click.echo(f"provisioned: {result.message}")
    click.echo(f"  checkpoint: {result.checkpoint_id} {result.checkpoint_name}".rstrip())
    click.echo(f"  server:     {result.server_url}")
    click.echo(f"  config:     {result.config_path}")
    if result.replaced_token:
        whose = f" (was {result.replaced_device})" if result.replaced_device else ""
        click.echo(f"  replaced:   device token in {result.replaced_token}{whose}")
    if result.previous_device_ids:
        click.echo(f"  backlog of: {', '.join(result.previous_device_ids)}")
    if result.requeued:
        click.echo(f"  requeued:   {result.requeued} dead-lettered check-ins")
    if result.unlinked_device_ids:
        click.echo(f"  warning:    the central did not link "
                   f"{', '.join(result.unlinked_device_ids)}: check-ins recorded "
                   "under them cannot be delivered (another checkpoint's token?)")


@click.command("selftest")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--yes", "assume_yes", is_flag=True,
              help="Do not ask about the lights (they still cycle; the check then warns).")
@click.option("--card-seconds", type=click.FloatRange(0, 300), default=None,
              help="Wait this long for the printed test card in front of the camera "
                   "(default 30 interactive, 0 = decode the card image only).")
@click.option("--camera", "camera_spec", metavar="SPEC",
              help="Camera to test instead of camera.spec: picamera2, v4l2:/dev/videoN or "
                   "replay:PATH[,fps=N][,loop] (as 'run --camera').")
@click.option("--camera-seconds", type=click.FloatRange(0.5, 60), default=5.0,
              show_default=True, help="How long to wait for camera frames.")
@click.option("--write-card", type=click.Path(dir_okay=False),
              help="Write the printable test card PNG here and exit.")
@_db_option
@_config_option
def selftest(as_json: bool, assume_yes: bool, card_seconds: float | None,
             camera_spec: str | None, camera_seconds: float, write_card: str | None,
             db_path: str | None, config_path: str) -> None:
    """Test camera, test card, lights and buzzer, database, disk, clock, server, lists.

    Exit status 0 when nothing failed, 1 otherwise.  Stop the kiosk service first
    (systemctl stop checkpoint-kiosk): the camera and pins can have one user only; from the
    officer panel the running kiosk does the same test with its own devices.

    Example: sudo -u kiosk checkpoint-kiosk selftest --json --camera v4l2:/dev/video0
    """
    from kiosk.ops.selftest import run_selftest, test_card_image

    if write_card:
        test_card_image().save(write_card)
        click.echo(f"test card written to {write_card}; print it 6-8 cm wide")
        return
    cfg = _load(config_path)
    if db_path:
        cfg = cfg.replace(store={"path": db_path})
    if camera_spec:
        cfg = cfg.replace(camera={"spec": camera_spec})
        config_mod.check_values(cfg, lambda _key: "--camera")
    interactive = not as_json and not assume_yes and sys.stdin.isatty()
    confirm = (lambda q: click.confirm(q, default=True)) if interactive else None
    if card_seconds is None:
        card_seconds = 30.0 if interactive else 0.0
    progress = (lambda name: click.echo(f"... {name}", err=True)) if not as_json else None
    report = run_selftest(cfg, confirm=confirm, card_seconds=card_seconds,
                          camera_seconds=camera_seconds, progress=progress)
    click.echo(report.to_json() if as_json else report.human())
    sys.exit(0 if report.ok else 1)


def _status_report(config_path: str, db_path: str | None, state_dir: str) -> dict[str, Any]:
    """``status``'s report; every configuration problem (what stops start-up) comes first."""
    from kiosk.ops import status as status_mod

    cfg, config_problems = config_mod.check(_config_or_none(config_path))
    if db_path:
        cfg = cfg.replace(store={"path": db_path})
    report = status_mod.collect(cfg, probes=status_mod.Probes(state_dir=Path(state_dir)))
    report["errors"][:0] = [str(e) for e in config_problems]
    return report


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@_db_option
@_state_dir_option
@_config_option
def status(as_json: bool, db_path: str | None, state_dir: str, config_path: str) -> None:
    """Version, uptime, backlog, last sync, errors, warnings, disk, clock, under-voltage.

    No secrets are shown: the device token only as present or missing.  Exit status: 0 when
    no error is listed (warnings, such as a clock not synced by NTP, may be), 1 when errors
    are listed (every configuration problem, undeliverable check-ins, not provisioned, low
    disk, under-voltage now, service not active), 2 for a usage error.

    Example: checkpoint-kiosk status --json --db /var/lib/checkpoint-kiosk/checkins.db
    """
    from kiosk.ops import status as status_mod

    report = _status_report(config_path, db_path, state_dir)
    click.echo(status_mod.to_json(report) if as_json else status_mod.format_human(report))
    sys.exit(status_mod.exit_status(report))


@click.command("support-bundle")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Tarball to write (default ./checkpoint-kiosk-support-<time>.tar.gz).")
@click.option("--since", default="-48h", show_default=True, help="Journal lines since.")
@click.option("--log-file", "log_files", multiple=True, type=click.Path(dir_okay=False),
              help="Also include this log file (masked); repeatable.")
@_db_option
@_state_dir_option
@_config_option
def support_bundle(output: str | None, since: str, log_files: tuple[str, ...],
                   db_path: str | None, state_dir: str, config_path: str) -> None:
    """Write a tarball of config (secrets removed), recent logs (masked) and status.

    Example: sudo checkpoint-kiosk support-bundle -o /boot/firmware/support.tar.gz
    """
    from datetime import datetime

    from kiosk.ops.support import make_bundle

    cfg, _problems = config_mod.check(_config_or_none(config_path), whole=False)
    if db_path:
        cfg = cfg.replace(store={"path": db_path})
    if output is None:
        output = f"checkpoint-kiosk-support-{datetime.now():%Y%m%d-%H%M%S}.tar.gz"
    path = make_bundle(cfg, output, config_path=config_path if _exists(config_path) else None,
                       log_files=log_files, since=since,
                       status_report=_status_report(config_path, db_path, state_dir))
    click.echo(printable(str(path), keep=""))


def _config_or_none(path: str) -> str | None:
    """The default path may be absent (defaults apply); an explicit one may not."""
    return None if path == str(config_mod.DEFAULT_PATH) and not _exists(path) else path


def _load(path: str, *, whole: bool = True) -> config_mod.Config:
    """The config; the default path may be absent (defaults), an explicit one may not."""
    return config_mod.load(_config_or_none(path), whole=whole)


def _exists(path: str) -> bool:
    return Path(path).exists()

"""``queue stats``, ``export``, ``sync`` and ``central``: thin click layers over offline_queue."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from kiosk import USER_AGENT
from kiosk.cli.extras import CommandT, require_central

if TYPE_CHECKING:
    from kiosk.config import Config
    from offline_queue.central.backend import CentralDB
    from offline_queue.sync import SyncStatus

DB_HELP = "check-in database (default: store.path of the kiosk config)"
CONFIG_HELP = "kiosk configuration file (default /etc/checkpoint-kiosk/kiosk.toml)"


def _db_option(f: CommandT) -> CommandT:
    f = click.option("--db", "db_path", type=click.Path(dir_okay=False), help=DB_HELP)(f)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False),
                        help=CONFIG_HELP)(f)


def _kiosk_config(config_path: str | None, *, whole: bool = True) -> Config:
    """The kiosk's own configuration (kiosk.config.Config), so a technician on the device
    needs no options; ``whole=False`` for reports that must work on a kiosk whose
    configuration stops start-up (see kiosk.config.load)."""
    from kiosk import config

    return config.load(config_path, whole=whole)


def _db(config_path: str | None, db_path: str | None) -> str:
    return db_path or _kiosk_config(config_path).store.path


def _usage(error: ValueError) -> click.UsageError:
    return click.UsageError(str(error))


@click.group("queue")
def queue() -> None:
    """Inspect the kiosk's check-in queue.

    Example: checkpoint-kiosk queue stats
    """


@queue.command("stats")
@_db_option
def queue_stats(config_path: str | None, db_path: str | None) -> None:
    """Print pending, in-flight, sent, rejected counts, oldest pending age, sizes as JSON.

    "disk_low" is judged by store.disk_warn_mb of the config, as the screen and status judge it.

    Example: checkpoint-kiosk queue stats --db /var/lib/checkpoint-kiosk/checkins.db
    """
    from offline_queue.store import read_stats

    cfg = _kiosk_config(config_path, whole=False)
    stats = read_stats(db_path or cfg.store.path, disk_low_below=cfg.store.disk_warn_mb * 2**20)
    click.echo(json.dumps(stats, indent=2))


@queue.command("requeue")
@_db_option
def queue_requeue(config_path: str | None, db_path: str | None) -> None:
    """Put dead-letter check-ins (refused by the server) back in the queue to send again.

    Run it after fixing what the server refused them for (often a re-provisioning).
    Attempts and the last error are kept; conflicts stay for a technician.

    Example: checkpoint-kiosk queue requeue --db /var/lib/checkpoint-kiosk/checkins.db
    """
    from kiosk.errors import StoreError
    from offline_queue.outbox import Outbox

    db_path = _db(config_path, db_path)
    if not Path(db_path).is_file():
        raise StoreError(f"no check-in database at {db_path!r}; pass --db PATH")
    with Outbox(db_path) as outbox:
        count = outbox.requeue_dead_letter()
    click.echo(f"{count} check-in(s) moved from dead letter back to pending; the running "
               "kiosk sends them at its next sync, or run: checkpoint-kiosk sync --once")


@click.command("export")
@_db_option
@click.option("--since", required=True, help="start (ISO date/time, local if no zone)")
@click.option("--until", required=True, help="end, exclusive (ISO date/time)")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True)
def export(config_path: str | None, db_path: str | None, since: str, until: str,
           fmt: str) -> None:
    """Write check-ins between --since and --until to stdout (no person keys).

    Example: checkpoint-kiosk export --db checkins.db --since 2021-09-20 --until 2021-09-21
    """
    from offline_queue import export as ex

    db_path = _db(config_path, db_path)
    try:
        start, end = ex.parse_when(since), ex.parse_when(until)
    except ValueError as e:
        raise _usage(e) from e
    writer = ex.write_csv if fmt == "csv" else ex.write_jsonl
    writer(ex.rows(db_path, start, end), sys.stdout)


@click.command("sync")
@_db_option
@click.option("--server", help="central platform URL (default: sync.server_url of the config)")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="file holding the device token (default: sync.token_file of the config); "
                   "a token is never given on the command line, where other users could see it")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False),
              help="CA bundle (PEM) for a private platform CA, used instead of the public CAs")
@click.option("--once", is_flag=True,
              help="push and pull once; exit 0 only if all delivered, nothing is left "
                   "undeliverable (dead letter, forbidden) and every document was applied")
def sync(config_path: str | None, db_path: str | None, server: str | None,
         token_file: str | None, ca_bundle: str | None, once: bool) -> None:
    """Deliver the queue and fetch policy, trust list and watchlist.

    Without options it uses the kiosk's own configuration and device token.  Without --once
    it keeps syncing as the kiosk does, printing one line per change, until Ctrl-C or SIGTERM.

    Example: checkpoint-kiosk sync --once
    """
    from kiosk.domain.documents import VALIDATORS
    from kiosk.runtime.build import device_token
    from offline_queue.sync import SyncWorker, sync_once

    cfg = _kiosk_config(config_path)
    if token_file:
        cfg = cfg.replace(sync={"token_file": token_file})
    db_path = db_path or cfg.store.path
    server = server or cfg.sync.server_url
    if not server:
        raise click.UsageError("no server: set sync.server_url in the config or pass --server")
    token = device_token(cfg)
    if token is None:
        raise click.UsageError(f"no device token in {cfg.sync.token_file!r}: provision the "
                               "kiosk first (checkpoint-kiosk provision) or pass --token-file")
    ca_bundle = ca_bundle or cfg.sync.ca_bundle or None

    try:
        if once:
            result = sync_once(db_path=db_path, server_url=server, token=token,
                               user_agent=USER_AGENT, ca_bundle=ca_bundle,
                               validators=VALIDATORS,
                               central_key=cfg.sync.central_key or None)
            click.echo(result.as_json())
            if not result.ok:
                click.echo(f"sync: not everything was delivered: {result.error}", err=True)
                sys.exit(1)
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with SyncWorker(db_path=db_path, server_url=server, token=token, user_agent=USER_AGENT,
                        token_file=cfg.sync.token_file, ca_bundle=ca_bundle,
                        validators=VALIDATORS, central_key=cfg.sync.central_key or None,
                        on_status=lambda s: click.echo(_status_line(s), err=True),
                        boot_jitter=0):
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
    except ValueError as e:
        raise _usage(e) from e


def _status_line(status: SyncStatus) -> str:
    """One line a technician reads: 'online; backlog 0; dead letter 0; last sync 10:04:05'."""
    parts = ["online" if status.online else "offline", f"backlog {status.backlog}",
             f"dead letter {status.dead_letter}"]
    if status.forbidden:
        parts.append(f"forbidden {status.forbidden}")
    last = status.last_success
    parts.append(f"last sync {last.astimezone():%Y-%m-%d %H:%M:%S}" if last else "never synced")
    if status.token_refused:
        parts.append("device token refused: re-provision")
    elif status.reprovision_needed:
        parts.append("rows forbidden for this token: re-provision")
    parts.extend(f"{name} not applied: {why}" for name, why in status.document_errors)
    if status.key_warning:
        parts.append(status.key_warning)
    if status.last_error:
        parts.append(f"error: {status.last_error}")
    return "sync: " + "; ".join(parts)


ADMIN_TOKEN_ENV = "CHECKPOINT_CENTRAL_ADMIN_TOKEN"
ADMIN_TOKEN_FILE_ENV = "CHECKPOINT_CENTRAL_ADMIN_TOKEN_FILE"
KEY_FILE_ENV = "CHECKPOINT_CENTRAL_KEY_FILE"


def _admin_token_from_file(path: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise click.UsageError(f"cannot read the admin token file {path!r}: {e}") from None
    if not token:
        raise click.UsageError(f"the admin token file {path!r} is empty; write the token in it")
    return token


@click.group("central", invoke_without_command=True)
@click.option("--db", "db_path",
              help="central database: a SQLite path or a postgresql:// URL, also for the "
                   "sub-commands (serving: default central.db)")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True, help="0 picks a free port")
@click.option("--admin-token", envvar=ADMIN_TOKEN_ENV,
              help=f"token for the report and publish endpoints; set it in the environment "
                   f"variable {ADMIN_TOKEN_ENV} instead: a value given here is visible to "
                   "every user in the process list")
@click.option("--admin-token-file", envvar=ADMIN_TOKEN_FILE_ENV, type=click.Path(dir_okay=False),
              help=f"file holding the admin token (or {ADMIN_TOKEN_FILE_ENV})")
@click.option("--key-file", envvar=KEY_FILE_ENV, type=click.Path(dir_okay=False),
              help="the central's document-signing key, created (0600) if missing (default: "
                   "beside a SQLite database as DB.signing-key, else ./central-signing.key)")
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="application threads per worker process (default: "
                   "offline_queue.central.server.THREADS)")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="server processes sharing the port (default: "
                   "offline_queue.central.server.WORKERS; docs/central.md, herd)")
@click.option("--status-every", type=click.FloatRange(1, 3600), default=None,
              help="seconds between the status republisher's looks for new declarations "
                   "(default: offline_queue.central.people.CHECK_EVERY, 60; docs/policy.md)")
@click.pass_context
def central(ctx: click.Context, db_path: str | None, host: str, port: int,
            admin_token: str | None, admin_token_file: str | None, key_file: str | None,
            threads: int | None, workers: int | None, status_every: float | None) -> None:
    """Run the reference central platform (waitress), or manage it with a sub-command.

    Documents are checked on publish with the kiosk's own validators, and signed with the
    central's key when served (docs/trust.md).  Give the admin token in a file
    (--admin-token-file) or the environment (CHECKPOINT_CENTRAL_ADMIN_TOKEN), not with
    --admin-token (still accepted in this release, with a warning; it will go).

    --db is a SQLite file (a demo, a single hospital) or a PostgreSQL URL (a province:
    docs/central.md), e.g. postgresql://central@/central?host=/run/postgresql.

    Example: CHECKPOINT_CENTRAL_ADMIN_TOKEN=... checkpoint-kiosk central --db central.db
    """
    require_central("checkpoint-kiosk central")
    ctx.obj = {"db_path": db_path, "key_file": key_file}
    source = ctx.get_parameter_source("admin_token")
    if admin_token and source == click.core.ParameterSource.COMMANDLINE:
        click.echo(f"warning: --admin-token is visible in the process list and will be "
                   f"removed in the next release; use --admin-token-file or set "
                   f"{ADMIN_TOKEN_ENV} in the environment instead", err=True)
    if admin_token_file:
        admin_token = _admin_token_from_file(admin_token_file)
    if ctx.invoked_subcommand is not None:
        return
    from kiosk.domain.declared_status import DeclarationFolder
    from kiosk.domain.documents import VALIDATORS
    from offline_queue.central.keys import KeyFile
    from offline_queue.central.people import CHECK_EVERY
    from offline_queue.central.server import THREADS, WORKERS, serve

    target = db_path or "central.db"
    _central_logging()
    keys = KeyFile(_key_file(target))

    def listening(url: str) -> None:
        # The first line tells scripts and tests which port was picked.
        click.echo(f"listening on {url}", err=False)
        sys.stdout.flush()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve(target, host=host, port=port, admin_token=admin_token,
              validators=VALIDATORS, threads=threads or THREADS, workers=workers or WORKERS,
              signing_key=keys, on_listening=listening, fold=DeclarationFolder(),
              status_every=status_every or CHECK_EVERY)
    except KeyboardInterrupt:
        pass
    except OSError as e:
        raise click.ClickException(str(e)) from None


def _central_logging() -> None:
    """The serving central's log on stderr (the journal under systemd, which adds the
    time), INFO and up, each record one line with its level: enrolments, documents
    published, status foldings (counts only), errors.  Without it Python dropped the INFO
    records and wrote the others without a level."""
    import logging
    import os

    from kiosk.logfmt import install

    fmt = ("%(levelname)s %(name)s: %(message)s" if os.environ.get("INVOCATION_ID")
           else "%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.basicConfig(level=logging.INFO, format=fmt, force=True)
    install(fmt)  # one record, one line: text from a request cannot forge a line


def _central_db_path(db_path: str | None, *, must_exist: bool = False) -> str:
    """The sub-command's --db, else the group's; a usage error if neither was given."""
    path = db_path or (click.get_current_context().find_object(dict) or {}).get("db_path")
    if not path:
        raise click.UsageError("no database: pass --db PATH (before or after the sub-command)")
    if must_exist and not path.startswith(("postgresql://", "postgres://")) \
            and not Path(path).is_file():
        raise click.UsageError(f"no central database at {path!r}; check --db")
    return path


def _key_file(db_path: str) -> str:
    """The group's --key-file, else the default beside the database."""
    from offline_queue.central.keys import default_path

    given = (click.get_current_context().find_object(dict) or {}).get("key_file")
    return given or str(default_path(db_path))


def _central_db(db_path: str) -> CentralDB:
    from offline_queue.central import db
    from offline_queue.errors import StoreError

    try:
        return db.connect(db_path)
    except StoreError as e:
        raise click.ClickException(str(e)) from e


_central_db_option = click.option(
    "--db", "db_path",
    help="central database, a SQLite path or a postgresql:// URL (default: the --db "
         "given to 'central')")


@central.command("key")
@_central_db_option
def central_key(db_path: str | None) -> None:
    """Print the fingerprint of the central's signing key (created if missing).

    Put it in provisioning files and QR codes as central_key: a kiosk then enrols only
    with a central that holds this key.

    Example: checkpoint-kiosk central --db central.db key
    """
    from offline_queue.central.keys import load_or_create
    from offline_queue.errors import StoreError

    path = _key_file(_central_db_path(db_path))
    try:
        key = load_or_create(path)
    except StoreError as e:
        raise click.ClickException(str(e)) from e
    click.echo(key.fingerprint)


@central.command("rotate-key")
@_central_db_option
def central_rotate_key(db_path: str | None) -> None:
    """Replace the signing key by a new one signed by the old; kiosks follow by themselves.

    A running central signs with the new key within a second.  Back up the key file and
    its .rotations.json together.  Prints the new fingerprint.

    Example: checkpoint-kiosk central --db central.db rotate-key
    """
    from offline_queue.central.keys import rotate
    from offline_queue.errors import StoreError

    path = _key_file(_central_db_path(db_path))
    try:
        key = rotate(path)
    except (StoreError, OSError) as e:
        raise click.ClickException(f"the key was not rotated: {e}") from e
    click.echo(key.fingerprint)


@central.command("export")
@_central_db_option
def central_export(db_path: str | None) -> None:
    """Print every received check-in as JSON lines, full identities included (the export
    for the authorities: the kiosks' own exports are masked).  Written to the audit log
    first, as the operating-system user who ran it.

    Example: checkpoint-kiosk central --db central.db export > checkins.jsonl
    """
    import getpass

    from offline_queue.central import db
    from offline_queue.central.dashboard import audit
    from offline_queue.central.dashboard.users import User

    with _central_db(_central_db_path(db_path, must_exist=True)) as conn:
        (count,) = conn.one("SELECT count(*) FROM scans")
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "unknown"
        # No answer without its audit row (as the dashboard's exports).
        audit.record(conn, User(0, f"cli:{who}"[:64], "administrator"), "export_full",
                     {"format": "jsonl"}, rows=count, client="command line")
        for item in db.export_checkins(conn):
            click.echo(json.dumps(item, ensure_ascii=False, sort_keys=True))


@central.command("copy")
@click.option("--from", "source", required=True, type=click.Path(dir_okay=False),
              help="the SQLite central database to move (opened read-only)")
@click.option("--to", "target", required=True,
              help="the PostgreSQL central, a postgresql:// URL; migrated to the current "
                   "schema, and it must be empty")
@click.option("--key-file", "key_file", type=click.Path(dir_okay=False),
              help="the old central's signing key (its .sealing file beside it): prints the "
                   "fingerprint kiosks pinned and checks the sealing keys")
@click.option("--verify-only", is_flag=True,
              help="copy nothing: compare an earlier copy with its source again")
def central_copy(source: str, target: str, key_file: str | None, verify_only: bool) -> None:
    """Move a SQLite central to PostgreSQL: every table but the dashboard's sessions,
    streamed in one transaction, then verified (row counts and a checksum of every
    column, per table).  Exits 1 on any difference.  Stop the server first.

    The keys are not in the database: carry the signing key, its .rotations.json and its
    .sealing file to the new server and start it with --key-file (docs/central.md).

    Example: checkpoint-kiosk central copy --from /var/lib/checkpoint-central/central.db
    --to postgresql://central@/central?host=/run/postgresql --key-file central.db.signing-key
    """
    from offline_queue.central import transfer
    from offline_queue.central.backend import describe
    from offline_queue.errors import StoreError

    def progress(text: str) -> None:
        click.echo(text, err=True)

    try:
        keys = transfer.check_keys(key_file, source) if key_file else None
        if verify_only:
            report = transfer.verify(source, target, progress=progress)
        else:
            report = transfer.copy_central(source, target, progress=progress)
    except StoreError as e:
        raise click.ClickException(str(e)) from e
    for line in report.lines():
        click.echo(line)
    if keys is not None:
        click.echo(f"signing key {keys.path}: fingerprint {keys.fingerprint} (what the kiosks "
                   "pinned: provisioning's central_key)")
        for earlier in keys.earlier_fingerprints:
            click.echo(f"  rotated from {earlier} (kiosks pinned to it follow the rotations)")
        click.echo(f"sealing keys: {', '.join(keys.sealing_key_ids)}")
        if keys.unopened_key_ids_missing:
            click.echo(f"warning: kept-aside check-ins (unopened) are sealed to keys this "
                       f"file does not hold: {', '.join(keys.unopened_key_ids_missing)}; "
                       "find the key file that has them", err=True)
    else:
        click.echo("the keys are not in the database: copy the signing key, its "
                   ".rotations.json and .sealing files to the new server and start it with "
                   "--key-file (give --key-file here to print the fingerprint kiosks pinned)")
    if report.mismatches:
        names = ", ".join(t.name for t in report.mismatches)
        click.echo(f"error: the copy in {describe(target)!r} differs from {source!r} in: "
                   f"{names}; do not start the central on it: drop the database, create it "
                   "again and copy again", err=True)
        sys.exit(1)
    click.echo(("verified" if verify_only else "copied and verified")
               + f": {len(report.tables)} tables equal")


@central.command("rotate-sealing-key")
@_central_db_option
def central_rotate_sealing_key(db_path: str | None) -> None:
    """Make a new sealing key; kiosks seal to it after their next key check (within 6 h).

    The earlier keys stay in the file: they open the backlog of kiosks that were offline.
    Back up the .sealing file with the signing key.  Prints the new key id.

    Example: checkpoint-kiosk central --db central.db rotate-sealing-key
    """
    from offline_queue.central.keys import rotate_sealing
    from offline_queue.errors import StoreError

    path = _key_file(_central_db_path(db_path))
    try:
        keys = rotate_sealing(path)
    except (StoreError, OSError) as e:
        raise click.ClickException(f"the sealing key was not rotated: {e}") from e
    click.echo(keys.current_id)


@central.command("unopened")
@_central_db_option
def central_unopened(db_path: str | None) -> None:
    """List check-ins kept aside because their sealed identity could not be opened
    (unknown key, changed or cut in transit), as JSON lines; exit 1 if there are any.

    Example: checkpoint-kiosk central --db central.db unopened
    """
    from offline_queue.central import db

    with _central_db(_central_db_path(db_path, must_exist=True)) as conn:
        rows = db.unopened_rows(conn)
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))
    if rows:
        click.echo(f"{len(rows)} check-in(s) kept aside; restore the sealing key they name "
                   "(key_id) from the backup, then run: checkpoint-kiosk central reopen",
                   err=True)
        sys.exit(1)


@central.command("reopen")
@_central_db_option
def central_reopen(db_path: str | None) -> None:
    """Try the kept-aside check-ins again with the sealing keys in the key file (after a
    key was restored); those that open are stored as if just received.

    Example: checkpoint-kiosk central --db central.db reopen
    """
    from offline_queue.central import db
    from offline_queue.central.keys import load_or_create
    from offline_queue.errors import StoreError

    target = _central_db_path(db_path, must_exist=True)
    try:
        opener = load_or_create(_key_file(target)).sealing.opener
    except StoreError as e:
        raise click.ClickException(str(e)) from e
    with _central_db(target) as conn:
        click.echo(json.dumps(db.reopen(conn, opener), sort_keys=True))


@central.command("enrol-token")
@_central_db_option
@click.option("--checkpoint", required=True, help="checkpoint id, e.g. LS-HUUNGHI")
@click.option("--name", required=True, help="checkpoint name shown in reports")
@click.option("--valid-days", type=click.FloatRange(0.001, 366), default=7.0, show_default=True,
              help="the token is refused after this many days")
def central_enrol_token(db_path: str | None, checkpoint: str, name: str,
                        valid_days: float) -> None:
    """Print a one-time enrolment token for a kiosk at this checkpoint (it expires).

    Example: checkpoint-kiosk central --db c.db enrol-token --checkpoint LS-1 --name "Hữu Nghị"
    """
    from datetime import timedelta

    from offline_queue.central import db

    with _central_db(_central_db_path(db_path)) as conn:
        try:
            click.echo(db.create_enrolment_token(conn, checkpoint_id=checkpoint, name=name,
                                                 valid_for=timedelta(days=valid_days)))
        except ValueError as e:
            raise _usage(e) from e


@central.command("link-device")
@_central_db_option
@click.argument("device_id")
@click.argument("previous_device_id")
def central_link_device(db_path: str | None, device_id: str, previous_device_id: str) -> None:
    """Let DEVICE_ID deliver the check-ins recorded as PREVIOUS_DEVICE_ID.

    Enrolment links a kiosk's previous ids at the same checkpoint by itself; use this for
    a kiosk moved to another checkpoint whose backlog is answered "forbidden".

    Example: checkpoint-kiosk central --db c.db link-device kiosk-5f1e kiosk-09ab
    """
    from offline_queue.central import db

    with _central_db(_central_db_path(db_path, must_exist=True)) as conn:
        try:
            added = db.link_devices(conn, device_id, previous_device_id)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
    click.echo(f"{device_id} delivers the check-ins of {previous_device_id}"
               + ("" if added else " (already linked)"))


@central.command("set-document")
@_central_db_option
@click.argument("name")
@click.argument("file", type=click.File("rb"))
@click.option("--expires", help="expiry (ISO date-time) sent as the Expires header")
def central_set_document(db_path: str | None, name: str, file: BinaryIO,
                         expires: str | None) -> None:
    """Publish a policy, trust_list, watchlist, status, risk_levels or officers document;
    prints its ETag.

    The document is checked with the kiosk's own validators first: one no kiosk could
    apply is refused (exit 1) and the published version stays.  A status document is the
    province's import: it is kept, and published with the declarations recorded at kiosks
    folded in (docs/policy.md, "Declared at one kiosk, known at the next").

    Example: checkpoint-kiosk central --db central.db set-document policy policy.json
    """
    from kiosk.domain.declared_status import DeclarationFolder
    from kiosk.domain.documents import VALIDATORS
    from offline_queue.central import db, people
    from offline_queue.documents import check_name
    from offline_queue.export import parse_when

    path = _central_db_path(db_path)
    try:
        check_name(name)
        expires_at = parse_when(expires) if expires else None
    except ValueError as e:
        raise _usage(e) from e
    body = file.read()
    with _central_db(path) as conn:
        try:
            if name == people.NAME:
                click.echo(people.set_import(conn, body, fold=DeclarationFolder(),
                                             expires_at=expires_at, validators=VALIDATORS))
            else:
                click.echo(db.set_document(conn, name, body, expires_at=expires_at,
                                           validators=VALIDATORS))
        except ValueError as e:
            raise click.ClickException(f"{e}; nothing was published") from e


@central.command("publish-status")
@_central_db_option
def central_publish_status(db_path: str | None) -> None:
    """Publish the status document again now: the province's import with the declarations
    recorded at kiosks folded in (the running central does it by itself within seconds).

    Example: checkpoint-kiosk central --db central.db publish-status
    """
    from kiosk.domain.declared_status import DeclarationFolder
    from kiosk.domain.documents import VALIDATORS
    from offline_queue.central import people

    with _central_db(_central_db_path(db_path, must_exist=True)) as conn:
        try:
            etag = people.republish(conn, DeclarationFolder(), validators=VALIDATORS,
                                    force=True)
        except ValueError as e:
            raise click.ClickException(f"{e}; nothing was published") from e
    click.echo(etag or "nothing to publish: no status import and no declarations")


@central.command("report")
@_central_db_option
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "html"]), default="json",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="write the report to this file (atomically) instead of stdout")
def central_report(db_path: str | None, days: int, fmt: str, output: str | None) -> None:
    """Scans per checkpoint and day over the last N days, and the silent checkpoints.

    Days are local days (UTC+7).  CSV cells that a spreadsheet would run as a formula are
    neutralised; HTML escapes every value.  For the weekly report, see the systemd
    timer checkpoint-kiosk-central-report.timer (docs/central.md).

    Example: checkpoint-kiosk central --db central.db report --days 7 --format csv -o week.csv
    """
    from offline_queue.central.queries import activity_report
    from offline_queue.central.render import render_report

    with _central_db(_central_db_path(db_path, must_exist=True)) as conn:
        text = render_report(activity_report(conn, days=days), fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    target = Path(output)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as e:
        raise click.ClickException(f"cannot write the report to {output!r}: {e}; check "
                                   "that the folder exists and is writable") from e


@central.command("retention")
@_central_db_option
@click.option("--days", type=click.IntRange(1, 3660), default=30, show_default=True,
              help="keep check-ins this many days (by event time)")
def central_retention(db_path: str | None, days: int) -> None:
    """Delete check-ins older than N days (and conflicts received before then).

    Prints and logs the counts only.  The per-day counts of the activity report are
    kept.  Run daily by checkpoint-kiosk-central-retention.timer.

    Example: checkpoint-kiosk central --db central.db retention --days 30
    """
    from offline_queue.central.queries import apply_retention

    with _central_db(_central_db_path(db_path, must_exist=True)) as conn:
        done = apply_retention(conn, days=days)
    click.echo(f"deleted {done['deleted']} check-ins and {done['conflicts_deleted']} "
               f"conflicts from before {done['deleted_before']} ({days} days kept)")


# --- dashboard users (docs/central.md, "Dashboard") -------------------------------------------

@central.group("user")
def central_user() -> None:
    """Manage the dashboard's users: add, list, disable.

    Example: checkpoint-kiosk central --db central.db user add hoa --role official
    """


def _read_password() -> str:
    """The new password: prompted twice on a terminal, else the first line of stdin (never
    from the command line, where ps and the shell history would show it)."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise click.UsageError("no password on stdin; type it at the prompt or pipe one line")
    return line.rstrip("\r\n")


@central_user.command("add")
@_central_db_option
@click.argument("username")
@click.option("--role", required=True,
              type=click.Choice(["administrator", "official", "viewer"]),
              help="administrator: checkpoints, devices, tokens, documents, audit log; "
                   "official: reports and tracing; viewer: reports")
def central_user_add(db_path: str | None, username: str, role: str) -> None:
    """Add a dashboard user; the password is read from a prompt (or one line of stdin).

    Example: checkpoint-kiosk central --db central.db user add admin --role administrator
    """
    from offline_queue.central.dashboard.users import add_user, check_password, check_username

    try:
        name = check_username(username)
        password = check_password(_read_password())
    except ValueError as e:
        raise _usage(e) from e
    with _central_db(_central_db_path(db_path)) as conn:
        try:
            user = add_user(conn, name, role, password)
        except ValueError as e:
            raise _usage(e) from e
    click.echo(f"added {user.username} ({user.role})")


@central_user.command("list")
@_central_db_option
def central_user_list(db_path: str | None) -> None:
    """List the dashboard users as JSON lines (no password hashes).

    Example: checkpoint-kiosk central --db central.db user list
    """
    from offline_queue.central.dashboard.users import list_users

    with _central_db(_central_db_path(db_path, must_exist=True)) as conn:
        for row in list_users(conn):
            click.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))


@central_user.command("disable")
@_central_db_option
@click.argument("username")
@click.option("--enable", is_flag=True, help="enable the user again instead")
def central_user_disable(db_path: str | None, username: str, enable: bool) -> None:
    """Disable a dashboard user (their sessions end at once), or --enable again.

    Example: checkpoint-kiosk central --db central.db user disable hoa
    """
    from offline_queue.central.dashboard.users import set_disabled

    with _central_db(_central_db_path(db_path, must_exist=True)) as conn:
        try:
            found = set_disabled(conn, username, disabled=not enable)
        except ValueError as e:
            raise _usage(e) from e
    if not found:
        raise click.ClickException(f"no user {username!r}; see 'central user list'")
    click.echo(f"{'enabled' if enable else 'disabled'} {username.strip().lower()}")

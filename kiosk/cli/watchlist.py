"""``checkpoint-kiosk watchlist``: make the quarantine watchlist document from a list of numbers."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from kiosk.domain.watchlist import VIETNAM, Watchlist, local_date, read_numbers


@click.group("watchlist")
def watchlist_group() -> None:
    """Quarantine watchlist documents (Argon2id hashes of identity numbers).

    Example: checkpoint-kiosk watchlist build --until 2022-06-14 numbers.txt -o watchlist.json
    """


@watchlist_group.command("build")
@click.option("--until", "until_text", metavar="YYYY-MM-DD",
              help="Last day (inclusive, Vietnam date) of the orders; default: the day the "
                   "document expires, so the entries hold for as long as it is in force.")
@click.option("--valid-hours", type=click.IntRange(1, 24 * 31), default=24, show_default=True,
              help="Hours until kiosks treat the document as stale and ask for an officer.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Watchlist document to write (JSON).")
@click.argument("numbers_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def build(until_text: str | None, valid_hours: int, output: Path, numbers_file: Path) -> None:
    """Write the watchlist document for NUMBERS_FILE: one identity number a line.

    Any number a person's codes carry works: CCCD, old CMND, PC-Covid QID, BHYT card or
    social-insurance number, passport number, vaccine-passport UVCI.  Blank lines and lines
    starting with '#' are ignored.  Bad lines are listed with their line numbers and nothing
    is written.  The output holds only Argon2id hashes (a new random salt each time, about
    5 ms of one core per number, so 10 000 numbers take about a minute); publish
    it with 'checkpoint-kiosk central set-document watchlist FILE' or test it with
    'checkpoint-kiosk inspect --watchlist FILE'.

    Example: checkpoint-kiosk watchlist build --until 2022-06-14 numbers.txt -o watchlist.json
    """
    try:
        text = numbers_file.read_bytes().decode("utf-8-sig")  # a BOM from a spreadsheet export
    except UnicodeDecodeError as e:
        raise click.ClickException(
            f"{numbers_file} is not UTF-8 text ({e.reason} at byte {e.start}); save it as "
            "UTF-8 plain text, one number a line") from None
    numbers, bad = read_numbers(text)
    for line in bad:
        click.echo(f"{numbers_file}: {line}", err=True)
    if bad:
        raise click.ClickException(
            f"{len(bad)} bad line(s) in {numbers_file}; fix them, nothing was written")
    issued_at = datetime.now(UTC)
    expires_at = issued_at + timedelta(hours=valid_hours)
    until = _parse_until(until_text) if until_text else local_date(expires_at)
    if until < local_date(issued_at):
        raise click.BadParameter(f"{until_text!r} is in the past; the orders would stop nobody",
                                 param_hint="--until")
    body = Watchlist.build([(n, until) for _, n in numbers], issued_at=issued_at,
                           expires_at=expires_at)
    try:
        _write_atomically(output, body)
    except OSError as e:
        raise click.ClickException(f"cannot write {str(output)!r}: {e.strerror}; check that "
                                   "its folder exists and is writable") from None
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(
        Counter(kind for kind, _ in numbers).items()))
    kdf = Watchlist.from_json(body).kdf
    click.echo(f"wrote {len(numbers)} entries ({kinds or 'none'}) until {until.isoformat()} to "
               f"{output} (argon2id, time_cost {kdf.time_cost}, {kdf.memory_kib} KiB); "
               "the document expires "
               f"{expires_at.astimezone(VIETNAM).isoformat(timespec='minutes')}")


def _parse_until(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write it as YYYY-MM-DD, "
                                 "e.g. 2022-06-14", param_hint="--until") from None


def _write_atomically(path: Path, body: bytes) -> None:
    """A reader (the central's publish, a copy to a stick) never sees half a document."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

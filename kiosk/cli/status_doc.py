"""``checkpoint-kiosk status-doc``: make the status and risk-level documents from imports.

(``status`` is the technician's report of this kiosk; the documents are ``status-doc``.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from kiosk.cli.watchlist import _write_atomically
from kiosk.domain.status import RiskLevels, StatusList, read_import, read_levels
from kiosk.domain.watchlist import VIETNAM


@click.group("status-doc")
def status_doc_group() -> None:
    """Status documents (people's declarations and health status, hashed) and commune risk levels.

    Example: checkpoint-kiosk status-doc build people.csv -o status.json
    """


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")  # a BOM from a spreadsheet export
    except UnicodeDecodeError as e:
        raise click.ClickException(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); "
                                   f"save the {what} as UTF-8") from None


def _write(output: Path, body: bytes) -> None:
    try:
        _write_atomically(output, body)
    except OSError as e:
        raise click.ClickException(f"cannot write {str(output)!r}: {e.strerror}; check that "
                                   "its folder exists and is writable") from None


def _report_bad(path: Path, bad: Sequence[object], echo: Callable[..., None] = click.echo) -> None:
    for row in bad:
        echo(f"{path}: {row}", err=True)
    if bad:
        raise click.ClickException(f"{len(bad)} bad row(s) in {path}; fix them, nothing was "
                                   "written")


@status_doc_group.command("build")
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "json"]), default="auto",
              show_default=True, help="Import format; auto: by the file's extension.")
@click.option("--valid-hours", type=click.IntRange(1, 24 * 31), default=24, show_default=True,
              help="Hours until kiosks treat the document as stale: a person not in it then "
                   "gets 'check' (they may have declared since).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Status document to write (JSON).")
@click.argument("import_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def build(fmt: str, valid_hours: int, output: Path, import_file: Path) -> None:
    """Write the status document for IMPORT_FILE: one person a row.

    CSV columns (header line first; any subset after ids): ids, declared_at, declared_until,
    from, doses, last_dose, test_type, tested_at, recovered_since, birth_year.  'ids' holds
    every identity number of the person (CCCD, QID, BHYT, passport...) separated by spaces;
    times without a zone are Vietnam time; test_type is pcr or rapid_antigen; from is the
    5-digit commune code.  A JSON import is an array of objects with the same keys (ids a
    list).  Every bad row is listed with the field and the value, and nothing is written.
    The output holds salted hashes of the numbers, never the numbers.  Publish it with
    'checkpoint-kiosk central set-document status FILE'; try it with
    'checkpoint-kiosk inspect --status FILE'.

    Example: checkpoint-kiosk status-doc build people.csv -o status.json
    """
    text = _read_text(import_file, "import")
    if fmt == "auto":
        fmt = "json" if import_file.suffix.lower() == ".json" else "csv"
    issued_at = datetime.now(UTC)
    people, bad = read_import(text, fmt=fmt, now=issued_at)
    _report_bad(import_file, bad)
    expires_at = issued_at + timedelta(hours=valid_hours)
    _write(output, StatusList.build(people, issued_at=issued_at, expires_at=expires_at))
    numbers = sum(len(n) for n, _ in people)
    click.echo(f"wrote {len(people)} people ({numbers} numbers) to {output}; the document "
               f"expires {expires_at.astimezone(VIETNAM).isoformat(timespec='minutes')}")


@status_doc_group.command("risk-levels")
@click.option("--default-level", type=click.IntRange(1, 4), default=None,
              help="Level of a commune not listed (default: unknown, an officer checks).")
@click.option("--valid-hours", type=click.IntRange(1, 24 * 31), default=24 * 7,
              show_default=True, help="Hours until kiosks treat the list as stale.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Risk levels document to write (JSON).")
@click.argument("levels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def risk_levels(default_level: int | None, valid_hours: int, output: Path,
                levels_file: Path) -> None:
    """Write the commune risk-level document from LEVELS_FILE: 'commune,level' rows.

    A commune is its 5-digit code; a level is 1 (low) to 4 (very high).  A header line
    'commune,level', blank lines and lines starting with '#' are skipped.  Publish it with
    'checkpoint-kiosk central set-document risk_levels FILE'.

    Example: checkpoint-kiosk status-doc risk-levels levels.csv -o risk_levels.json
    """
    levels, bad = read_levels(_read_text(levels_file, "list"))
    _report_bad(levels_file, bad)
    issued_at = datetime.now(UTC)
    expires_at = issued_at + timedelta(hours=valid_hours)
    _write(output, RiskLevels.build(levels, default_level=default_level, issued_at=issued_at,
                                    expires_at=expires_at))
    click.echo(f"wrote {len(levels)} communes to {output}")

"""``checkpoint-kiosk officers``: make the named officers' list document (who may open the
officer panel, each with a PIN of their own)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import click

from kiosk.cli.watchlist import _write_atomically
from kiosk.domain.officers import ROLES, build_officers
from kiosk.errors import ConfigError

HEADER = ("id", "name", "role")


@click.group("officers")
def officers_group() -> None:
    """The officer list document: names, roles and PINs (as Argon2id hashes).

    Example: checkpoint-kiosk officers build officers.csv -o officers.json
    """


@officers_group.command("build")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Officer list document to write (JSON).")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def build(output: Path, csv_file: Path) -> None:
    """Write the officer list for CSV_FILE (header: id,name,role; role officer or supervisor).

    The PINs (4-8 digits; 6 or more recommended) are never in a file: from a terminal each is
    asked for twice, hidden; otherwise they are read from standard input, one line per
    officer in the CSV's order.  Two officers may not share a PIN (the PIN pad tells who
    typed it).  The output holds only Argon2id hashes with a new random salt; publish it with
    'checkpoint-kiosk central set-document officers FILE'.  Until a kiosk has a list, its
    configured ui.officer_pin opens the panel.

    Example: checkpoint-kiosk officers build officers.csv -o officers.json
    """
    rows = _read_rows(csv_file)
    interactive = sys.stdin.isatty()
    lines = None if interactive else sys.stdin.read().splitlines()
    if lines is not None and len(lines) < len(rows):
        raise click.ClickException(f"{csv_file} lists {len(rows)} officers but standard input "
                                   f"has {len(lines)} PIN line(s); give one PIN a line, in the "
                                   "CSV's order")
    entries = []
    for n, (officer_id, name, role) in enumerate(rows):
        if lines is None:
            pin = click.prompt(f"PIN for {officer_id} ({name})", hide_input=True,
                               confirmation_prompt=True, err=True)
        else:
            pin = lines[n].strip()
        entries.append((officer_id, name, role, pin))
    try:
        doc = build_officers(entries)
    except ConfigError as e:
        raise click.ClickException(f"{e}; nothing was written") from None
    try:
        _write_atomically(output, json.dumps(doc, ensure_ascii=False, indent=1).encode())
    except OSError as e:
        raise click.ClickException(f"cannot write {str(output)!r}: {e.strerror}; check that "
                                   "its folder exists and is writable") from None
    roles = ", ".join(f"{sum(1 for r in rows if r[2] == role)} {role}" for role in ROLES)
    click.echo(f"wrote {len(rows)} officers ({roles}) to {output}")


def _read_rows(path: Path) -> list[tuple[str, str, str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise click.ClickException(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); "
                                   "save it as UTF-8 CSV") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip().lower() for h in header) != HEADER:
        raise click.ClickException(f"{path}: the first line is {header!r}; it must be the "
                                   f"header {','.join(HEADER)}")
    rows = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(HEADER):
            raise click.ClickException(f"{path}:{line}: {len(row)} column(s); expected "
                                       f"{','.join(HEADER)}")
        rows.append((row[0].strip(), row[1].strip(), row[2].strip().lower()))
    if not rows:
        raise click.ClickException(f"{path} lists no officer; nothing was written")
    return rows

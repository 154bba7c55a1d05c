"""The activity report and trace results as CSV, JSON or HTML, safe to open anywhere.

CSV: a cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) is
prefixed with ``'`` so a spreadsheet shows it as text instead of running it as a formula
(checkpoint names and display fields come from admins and kiosks).  HTML: every value
is escaped; no script, no external resource.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offline_queue.central.queries import ActivityReport

FORMATS = ("csv", "json", "html")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """``value`` as a CSV cell that no spreadsheet evaluates."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv(rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def report_csv(report: ActivityReport) -> str:
    """One line per checkpoint: id, name, total, silent, then one column per day."""
    head = ["checkpoint_id", "name", "scans", "silent", *report["dates"]]
    rows = [[c["id"], c["name"], c["scans"], "yes" if c["scans"] == 0 else "no",
             *c["per_day"]] for c in report["checkpoints"]]
    total = ["(all)", "", sum(report["scans_per_day"]), "", *report["scans_per_day"]]
    return _csv([head, *rows, total])


def report_json(report: ActivityReport) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


_STYLE = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
          "td,th{border:1px solid #999;padding:.2em .5em;text-align:right}"
          "td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}.silent{background:#fdd}")


def report_html(report: ActivityReport, *, title: str = "Check-in activity") -> str:
    """A standalone page: totals, silent checkpoints, scans per checkpoint and day."""
    e = html.escape
    days = report["dates"]
    head = "".join(f"<th>{e(d)}</th>" for d in days)
    body = []
    for c in report["checkpoints"]:
        cls = ' class="silent"' if c["scans"] == 0 else ""
        cells = "".join(f"<td>{int(n)}</td>" for n in c["per_day"])
        body.append(f"<tr{cls}><td>{e(c['id'])}</td><td>{e(c['name'])}</td>{cells}"
                    f"<td>{int(c['scans'])}</td></tr>")
    totals = "".join(f"<td>{int(n)}</td>" for n in report["scans_per_day"])
    silent = ", ".join(e(s) for s in report["without_scans"]) or "none"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{e(title)}</h1>"
        f"<p>{e(report['since'])} to {e(report['until'])} ({int(report['days'])} days, "
        f"UTC{int(report['utc_offset_minutes']) // 60:+d}). "
        f"{int(report['active_checkpoints'])} of {int(report['total_checkpoints'])} "
        f"checkpoints had scans.</p>"
        f"<p>Silent for the whole period: {silent}</p>"
        f"<table><thead><tr><th>checkpoint</th><th>name</th>{head}<th>total</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody><tfoot><tr><th>all</th><th></th>{totals}"
        f"<td>{sum(int(n) for n in report['scans_per_day'])}</td></tr></tfoot></table>"
        "</body></html>\n"
    )


def render_report(report: ActivityReport, fmt: str) -> str:
    if fmt == "csv":
        return report_csv(report)
    if fmt == "json":
        return report_json(report)
    if fmt == "html":
        return report_html(report)
    raise ValueError(f"format is {fmt!r}; use one of {', '.join(FORMATS)}")


def trace_csv(checkins: list[dict[str, Any]], fields: Iterable[str]) -> str:
    """Traced check-ins (``queries`` answers) as CSV, formula cells neutralised."""
    names = list(fields)
    return _csv([names, *([c.get(f) for f in names] for c in checkins)])

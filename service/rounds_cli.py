"""The `secretary directory …` and `secretary pmqa …` commands: the office's other two jobs from the command line.

What changes the store goes through the clerk's command machinery (applied at
once, or queued for the running daemon); what only reads opens the store
without taking it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from .config import load
from .directory import DirectoryError
from .rounds import STATES, RoundError, progress, rounds

Clerk = Callable[[argparse.Namespace, str, dict], int]
Opener = Callable[[argparse.Namespace], Any]
out = Console()


def add_commands(commands: Any, clerk: Clerk, opener: Opener) -> None:
    """Add `directory` and `pmqa` to the `secretary` parser."""
    directory = commands.add_parser("directory", help="the office's directory: import, export, verification round, corrections")
    sub = directory.add_subparsers(dest="directory_command", required=True)
    imports = sub.add_parser("import", help="import a CSV or XLSX file: a report first; applied when clean (or with --apply)")
    imports.add_argument("file", type=Path)
    imports.add_argument("--apply", action="store_true", help="write the good rows even though the report shows problems")
    imports.set_defaults(handler=partial(_import, clerk, opener))
    export = sub.add_parser("export", help="the directory as CSV, XLSX or vCard, for other groups")
    export.add_argument("--format", choices=("csv", "xlsx", "vcard"), default="csv")
    export.add_argument("--out", type=Path, help="the file to write (default: standard output)")
    export.set_defaults(handler=partial(_export, opener))
    verify = sub.add_parser("verify", help="start a verification round: every school and agency checks its record by reply")
    verify.add_argument("--deadline", help="YYYY-MM-DD (default: rules/rounds.yaml)")
    verify.add_argument("--close", action="store_true", help="close the open round now instead")
    verify.set_defaults(handler=partial(_verify, clerk))
    review = sub.add_parser("review", help="the corrections waiting for the clerk; --approve/--reject them by number")
    review.add_argument("--approve", nargs="+", default=[], metavar="N")
    review.add_argument("--reject", nargs="+", default=[], metavar="N")
    review.set_defaults(handler=partial(_review, clerk, opener))
    history = sub.add_parser("history", help="one record: its fields, last-verified date and every change made to it")
    history.add_argument("id")
    history.set_defaults(handler=partial(_history, opener))

    pmqa = commands.add_parser("pmqa", help="the PMQA self-assessment round and its committees")
    sub = pmqa.add_subparsers(dest="pmqa_command", required=True)
    start = sub.add_parser("start", help="ask each category's champion for its report and evidence")
    start.add_argument("--deadline", help="YYYY-MM-DD (default: rules/rounds.yaml)")
    start.add_argument("--year", type=int, help="the Buddhist Era year (default: this year)")
    start.set_defaults(handler=partial(_pmqa_start, clerk))
    status = sub.add_parser("status", help="each category of a round (the latest by default): its champion and state")
    status.add_argument("round", nargs="?")
    status.set_defaults(handler=partial(_pmqa_status, opener))
    report = sub.add_parser("report", help="compile the report now (PDF and DOCX), and send it to the clerk")
    report.add_argument("round", nargs="?")
    report.set_defaults(handler=partial(_pmqa_report, clerk))
    committee = sub.add_parser("committee", help="open a meeting of the steering committee or the working team")
    committee.add_argument("committee", choices=("steering", "working"))
    committee.add_argument("--number", required=True, type=int)
    committee.add_argument("--start", required=True)
    committee.add_argument("--end", required=True)
    committee.add_argument("--place", required=True)
    committee.set_defaults(handler=partial(_pmqa_committee, clerk))


def _import(clerk: Clerk, opener: Opener, arguments: argparse.Namespace) -> int:
    from .directory.tabular import check, read_rows

    rows = read_rows(arguments.file)
    report, _ = check(rows, opener(arguments).office.directory)
    for line in report.lines():
        out.print(line, markup=False)
    if not report.clean and not arguments.apply:
        out.print("nothing imported: correct the file, or import the good rows with --apply")
        return 1
    return clerk(arguments, "directory_import", {"rows": rows, "source": arguments.file.name, "anyway": arguments.apply})


def _export(opener: Opener, arguments: argparse.Namespace) -> int:
    from .directory.tabular import export

    office = opener(arguments).office
    data = export(office.directory, office.store, arguments.format)
    if arguments.out:
        arguments.out.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


def _verify(clerk: Clerk, arguments: argparse.Namespace) -> int:
    if arguments.close:
        return clerk(arguments, "directory_close", {})
    return clerk(arguments, "directory_verify", {"deadline": arguments.deadline})


def _review(clerk: Clerk, opener: Opener, arguments: argparse.Namespace) -> int:
    from .directory.verification import pending

    if arguments.approve:
        clerk(arguments, "directory_review", {"decision": "approve", "ids": arguments.approve})
    if arguments.reject:
        clerk(arguments, "directory_review", {"decision": "reject", "ids": arguments.reject})
    if arguments.approve or arguments.reject:
        return 0
    waiting = pending(opener(arguments).office)
    table = Table(title="Corrections waiting for the clerk (secretary directory review --approve N / --reject N)")
    for column in ("no.", "record", "round", "change", "rule"):
        table.add_column(column)
    for c in waiting:
        change = "; ".join(f"{f}: {c['was'][f] or '-'} → {v}" for f, v in c["changes"].items())
        table.add_row(c["id"], f"{c['record']} {c['name']}", c["round"], change, ", ".join(c["rules"]))
    out.print(table)
    return 0


def _history(opener: Opener, arguments: argparse.Namespace) -> int:
    from .directory.records import record_of

    office = opener(arguments).office
    entry = office.directory.get(arguments.id)
    if entry is None:
        raise DirectoryError(f"no {arguments.id} in the directory")
    record = record_of(office.store, arguments.id) or {"last_verified": None, "history": []}
    out.print(f"{entry.id} ({entry.kind}) {entry.name} <{', '.join(entry.emails)}>", markup=False)
    out.print(f"last verified: {record['last_verified'] or 'never'}", markup=False)
    for change in record["history"]:
        said = "; ".join(f"{f}: {old!r} → {new!r}" for f, (old, new) in change["changes"].items()) or "confirmed as it stood"
        out.print(f"  {change['at'][:16]} {change['by']} ({change['source']}): {said}", markup=False)
    return 0


def _pmqa_start(clerk: Clerk, arguments: argparse.Namespace) -> int:
    return clerk(arguments, "pmqa_start", {"deadline": arguments.deadline, "year": arguments.year})


def _pmqa_status(opener: Opener, arguments: argparse.Namespace) -> int:
    from .pmqa import USE, status_rows

    service = opener(arguments)
    found = [r for r in rounds(service.office, USE) if arguments.round in (None, r["id"])]
    if not found:
        raise RoundError("no PMQA round" + (f" {arguments.round}" if arguments.round else " has been started"))
    head, today = found[-1], service.clock().date()
    summary = progress(service.office, head, today)
    table = Table(title=f"{head['id']} ({head['status']}), due {summary['deadline'].isoformat()}: {summary['answered']} of {summary['total']} in")
    for column in ("topic", "champion", "state", "versions", "evidence"):
        table.add_column(column)
    for row in status_rows(service.office, head, today):
        table.add_row(row["title"], row["champion"], STATES[row["state"]], str(row["versions"]), str(row["evidence"]))
    out.print(table)
    return 0


def _pmqa_report(clerk: Clerk, arguments: argparse.Namespace) -> int:
    return clerk(arguments, "pmqa_report", {"round": arguments.round})


def _pmqa_committee(clerk: Clerk, arguments: argparse.Namespace) -> int:
    zone = ZoneInfo(load(arguments.config).office.timezone)
    start, end = (datetime.fromisoformat(v).replace(tzinfo=zone) for v in (arguments.start, arguments.end))
    return clerk(arguments, "pmqa_committee", {"committee": arguments.committee, "number": arguments.number, "year_be": start.year + 543,
                                               "start": start.isoformat(), "end": end.isoformat(), "place": arguments.place})

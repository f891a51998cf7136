"""The directory in and out of spreadsheets: import with a report first, export for other groups.

An import reads a CSV or XLSX file (one row per record, a `kind` column and
the fields of `FIELDS`) and first says what it would do: which records are
new, which change and how, and what is wrong (a missing field, an address
that is not one, an id or an address used twice). Nothing changes until the
report is clean or the clerk asks for the good rows anyway. Exports write the
same columns (with each record's last-verified date) as CSV or XLSX, and
vCards for address books.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..meetings import Office, Outcome
from ..store import Store
from . import FIELDS, Directory, DirectoryError, Entry, read_entry
from .records import SHARD, differences, write_entry

COLUMNS = ("kind", *FIELDS)


@dataclass
class ImportReport:
    """What an import would do, before it does anything."""

    new: list[Entry] = field(default_factory=list)
    changed: list[tuple[Entry, dict[str, list[Any]]]] = field(default_factory=list)
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The report as the clerk reads it."""
        said = [f"{len(self.new)} new, {len(self.changed)} changed, {self.unchanged} unchanged, {len(self.problems)} problem(s)"]
        said += [f"  new: {e.id} {e.name} <{', '.join(e.emails)}>" for e in self.new]
        said += [f"  changed: {e.id}: " + "; ".join(f"{k} {v[0]!r} → {v[1]!r}" for k, v in diff.items()) for e, diff in self.changed]
        said += [f"  problem: {p}" for p in self.problems]
        return said


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV (UTF-8, with or without BOM) or XLSX file (its first sheet), by column name."""
    try:
        if path.suffix.lower() == ".xlsx":
            from openpyxl import load_workbook

            sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
            rows = [["" if cell is None else str(cell) for cell in row] for row in sheet.iter_rows(values_only=True)]
            header = [str(name).strip().lower() for name in rows[0]] if rows else []
            return [dict(zip(header, row)) for row in rows[1:] if any(str(cell).strip() for cell in row)]
        with path.open(encoding="utf-8-sig", newline="") as file:
            return [{(k or "").strip().lower(): v for k, v in row.items()} for row in csv.DictReader(file)]
    except (OSError, csv.Error, ValueError, KeyError) as error:
        raise DirectoryError(f"{path}: cannot read it: {error}") from error


def check(rows: list[dict[str, Any]], current: Directory) -> tuple[ImportReport, list[Entry]]:
    """The report on `rows` against the directory now, and the good entries that would be written."""
    report, good = ImportReport(), []
    ids: dict[str, int] = {}
    addresses: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        entry, problems = read_entry(str(row.get("kind") or "").strip(), row)
        where = f"row {number}" + (f" ({str(row.get('id') or '').strip()})" if str(row.get("id") or "").strip() else "")
        if entry is not None:
            if entry.id in ids:
                problems.append(f"the id {entry.id!r} is also on row {ids[entry.id]}")
            for address in entry.emails:
                holder = addresses.get(address) or _holder(current, address, entry.id)
                if holder and holder != entry.id:
                    problems.append(f"{address} is also the address of {holder}")
                addresses.setdefault(address, entry.id)
            ids.setdefault(entry.id, number)
        if problems:
            report.problems += [f"{where}: {p}" for p in problems]
            continue
        assert entry is not None
        good.append(entry)
        old = current.get(entry.id)
        diff = differences(old, entry) if old else {}
        if old is None:
            report.new.append(entry)
        elif diff:
            report.changed.append((entry, diff))
        else:
            report.unchanged += 1
    return report, good


def _holder(current: Directory, address: str, entry_id: str) -> str:
    """Who else in the directory writes from `address` (a person may share the address of their own group)."""
    holder = current.who(address)
    return holder.id if holder and holder.id != entry_id else ""


def import_documents(store: Store, current: Directory, entries: list[Entry], now: datetime, by: str,
                     source: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The records an import writes: the new and changed ones, and those only the file had, verified as of the import."""
    documents = []
    for entry in entries:
        was = current.get(entry.id)
        if was is None or differences(was, entry) or store.get(SHARD, "records", entry.id) is None:
            documents += write_entry(store, was, entry, now, by, source, verified=now.date())
    return documents


def export(directory: Directory, store: Store, form: str) -> bytes:
    """Every entry as CSV (UTF-8 with BOM, for Excel), XLSX or vCard 3.0."""
    verified = {r["_key"]: r.get("last_verified") or "" for r in store.find(SHARD, "records")}
    rows = [[_cell(e, c) for c in COLUMNS] + [verified.get(e.id, "")] for e in directory.entries.values()]
    header = [*COLUMNS, "last_verified"]
    if form == "csv":
        out = io.StringIO()
        csv.writer(out).writerows([header, *rows])
        return out.getvalue().encode("utf-8-sig")
    if form == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = "directory"
        for row in (header, *rows):
            sheet.append(row)
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
    if form == "vcard":
        return "".join(_vcard(e, verified.get(e.id, "")) for e in directory.entries.values()).encode("utf-8")
    raise DirectoryError(f"no export format {form!r} (csv, xlsx, vcard)")


def _cell(entry: Entry, column: str) -> str:
    value = getattr(entry, column)
    return "; ".join(value) if isinstance(value, tuple) else value


def _vcard(entry: Entry, verified: str) -> str:
    person = entry.kind == "person"
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{_escape(entry.id)}", f"FN:{_escape(entry.name)}",
             f"N:{_escape(entry.name) if person else ''};;;;", f"CATEGORIES:{entry.kind}"]
    organisation = entry.organisation if person else entry.name
    if organisation:
        lines.append(f"ORG:{_escape(organisation)}")
    if entry.position:
        lines.append(f"TITLE:{_escape(entry.position)}")
    lines += [f"EMAIL;TYPE=INTERNET:{address}" for address in entry.emails]
    if entry.phone:
        lines.append(f"TEL;TYPE=WORK:{_escape(entry.phone)}")
    if entry.address:
        lines.append(f"ADR;TYPE=WORK:;;{_escape(entry.address)};;;;")
    if entry.administrator:
        lines.append(f"NOTE:{_escape('ผู้อำนวยการ ' + entry.administrator)}")
    if verified:
        lines.append(f"REV:{verified}")
    lines.append("END:VCARD")
    return "".join(_fold(line) + "\r\n" for line in lines)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 6350 folding: lines of at most 75 octets, never splitting a character."""
    parts, current = [], ""
    for char in line:
        if len((current + char).encode("utf-8")) > (75 if not parts else 74):
            parts.append(current)
            current = ""
        current += char
    return "\r\n ".join([*parts, current])


def apply_import(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """The clerk's import: the good rows written (all of them, or none while the report shows problems, unless asked)."""
    office.directory.refresh()
    report, good = check(arguments["rows"], office.directory)
    if not report.clean and not arguments.get("anyway"):
        raise DirectoryError(f"{arguments['source']}: {len(report.problems)} problem(s); nothing imported (see the report, or import anyway)")
    documents = import_documents(office.store, office.directory, good, now, arguments.get("by", "clerk"), f"import {arguments['source']}")
    return Outcome(documents=documents), f"{arguments['source']}: " + report.lines()[0] + f"; {len(documents) // 2} record(s) written"

"""The office's directory: who a sender is, and where each mailing goes.

Groups (กลุ่ม), people, schools and the external agencies the office deals
with come from one TOML or CSV file that the office keeps, overlaid by the
records kept in the store (`records.py`: imported, verified and corrected,
each with its last-verified date and its history). A message is acted on only
when its sender is found here; everything from anyone else is filed and shown
to the clerk. Every mailing of the service takes its addresses from here.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from pathlib import Path

#: The kinds of entry, with the TOML table each is listed under.
TABLES = {"group": "groups", "person": "people", "school": "schools", "agency": "agencies"}
KINDS = tuple(TABLES)
#: An entry's fields besides its kind, in the order of the office's spreadsheets.
FIELDS = ("id", "name", "emails", "position", "organisation", "group", "role", "phone", "address", "administrator")


class DirectoryError(ValueError):
    """The directory file is wrong; the message says which record and why."""


@dataclass(frozen=True)
class Entry:
    """One group, person, school or agency, with every address it writes from.

    `administrator` is the head of a school or agency (ผู้อำนวยการ), by name.
    """

    kind: str
    id: str
    name: str
    emails: tuple[str, ...]
    position: str = ""
    organisation: str = ""
    group: str = ""
    role: str = ""
    phone: str = ""
    address: str = ""
    administrator: str = ""

    @property
    def email(self) -> str:
        return self.emails[0]


class Directory:
    """Entries by id and by address."""

    def __init__(self, entries: list[Entry] | None = None) -> None:
        self._entries: dict[str, Entry] = {}
        self._by_address: dict[str, Entry] = {}
        for entry in entries or []:
            self.add(entry)

    def add(self, entry: Entry) -> None:
        if entry.id in self._entries:
            raise DirectoryError(f"the id {entry.id!r} is used twice")
        self._entries[entry.id] = entry
        for address in entry.emails:
            self._by_address.setdefault(address, entry)

    def refresh(self) -> None:
        """Bring the entries up to date; a file's directory changes only with its file, so nothing to do here."""

    @property
    def entries(self) -> dict[str, Entry]:
        return self._entries

    def who(self, address: str) -> Entry | None:
        """The entry that writes from `address`; a person before the group or school sharing it."""
        self.refresh()
        return self._by_address.get(address.strip().lower())

    def get(self, entry_id: str) -> Entry | None:
        return self.entries.get(entry_id)

    def of_kind(self, kind: str) -> list[Entry]:
        self.refresh()
        return [entry for entry in self._entries.values() if entry.kind == kind]

    @classmethod
    def load(cls, path: Path) -> Directory:
        """Read a directory from a .toml file (groups/people/schools tables) or a .csv file (a `kind` column)."""
        try:
            if path.suffix.lower() == ".csv":
                with path.open(encoding="utf-8-sig", newline="") as file:
                    rows = [(row.get("kind", "").strip(), row) for row in csv.DictReader(file)]
            else:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
                rows = [(kind, row) for kind, table in TABLES.items() for row in data.get(table, [])]
        except (OSError, tomllib.TOMLDecodeError, csv.Error) as error:
            raise DirectoryError(f"{path}: cannot read the directory: {error}") from error
        directory = cls()
        for number, (kind, row) in enumerate(rows, start=1):
            directory.add(_entry(path, number, kind, row))
        return directory


def _entry(path: Path, number: int, kind: str, row: dict) -> Entry:
    where = f"{path}: record {number}"
    entry, problems = read_entry(kind, row)
    if problems:
        named = f" ({str(row.get('id', '')).strip()})" if str(row.get("id", "")).strip() and "id is missing" not in problems else ""
        raise DirectoryError(f"{where}{named}: {problems[0]}")
    assert entry is not None
    return entry


def read_entry(kind: str, row: dict) -> tuple[Entry | None, list[str]]:
    """An entry from one record (a TOML table, a spreadsheet row), or what is wrong with it."""
    problems = []
    if kind not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    emails = row.get("emails") or row.get("email") or []
    if isinstance(emails, str):
        emails = emails.replace(";", " ").replace(",", " ").split()
    emails = tuple(str(address).strip().lower() for address in emails)
    problems += [f"{field} is missing" for field in ("id", "name") if not str(row.get(field) or "").strip()]
    if not emails:
        problems.append("no e-mail address")
    problems += [f"{address!r} is not an e-mail address" for address in emails if not is_address(address)]
    if problems:
        return None, problems
    text = {field: str(row.get(field) or "").strip() for field in FIELDS if field != "emails"}
    return Entry(kind=kind, emails=emails, **text), []


def is_address(address: str) -> bool:
    """Good enough to send to: one @, something before it, a dotted domain after it, no spaces."""
    local, at, domain = address.partition("@")
    return bool(local) and bool(at) and "@" not in domain and "." in domain.strip(".") and not any(c.isspace() for c in address)

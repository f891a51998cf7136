"""The office's directory: who a sender is, and where each mailing goes.

Groups (กลุ่ม), people and schools come from one TOML or CSV file that the
office keeps. A message is acted on only when its sender is found here;
everything from anyone else is filed and shown to the clerk.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from pathlib import Path

#: The kinds of entry, with the TOML table each is listed under.
TABLES = {"group": "groups", "person": "people", "school": "schools"}
KINDS = tuple(TABLES)


class DirectoryError(ValueError):
    """The directory file is wrong; the message says which record and why."""


@dataclass(frozen=True)
class Entry:
    """One group, person or school, with every address it writes from."""

    kind: str
    id: str
    name: str
    emails: tuple[str, ...]
    position: str = ""
    organisation: str = ""
    group: str = ""
    role: str = ""

    @property
    def email(self) -> str:
        return self.emails[0]


class Directory:
    """Entries by id and by address."""

    def __init__(self, entries: list[Entry] | None = None) -> None:
        self.entries: dict[str, Entry] = {}
        self._by_address: dict[str, Entry] = {}
        for entry in entries or []:
            self.add(entry)

    def add(self, entry: Entry) -> None:
        if entry.id in self.entries:
            raise DirectoryError(f"the id {entry.id!r} is used twice")
        self.entries[entry.id] = entry
        for address in entry.emails:
            self._by_address.setdefault(address, entry)

    def who(self, address: str) -> Entry | None:
        """The entry that writes from `address`; a person before the group or school sharing it."""
        return self._by_address.get(address.strip().lower())

    def get(self, entry_id: str) -> Entry | None:
        return self.entries.get(entry_id)

    def of_kind(self, kind: str) -> list[Entry]:
        return [entry for entry in self.entries.values() if entry.kind == kind]

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
    if kind not in KINDS:
        raise DirectoryError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    emails = row.get("emails") or row.get("email") or []
    if isinstance(emails, str):
        emails = emails.replace(";", " ").replace(",", " ").split()
    emails = tuple(address.strip().lower() for address in emails)
    for field in ("id", "name"):
        if not str(row.get(field, "")).strip():
            raise DirectoryError(f"{where}: {field} is missing")
    if not emails:
        raise DirectoryError(f"{where} ({row['id']}): no e-mail address")
    for address in emails:
        local, _, domain = address.partition("@")
        if not local or "." not in domain:
            raise DirectoryError(f"{where} ({row['id']}): {address!r} is not an e-mail address")
    return Entry(
        kind=kind,
        id=str(row["id"]).strip(),
        name=str(row["name"]).strip(),
        emails=emails,
        position=str(row.get("position", "")).strip(),
        organisation=str(row.get("organisation", "")).strip(),
        group=str(row.get("group", "")).strip(),
        role=str(row.get("role", "")).strip(),
    )

"""The directory as the store keeps it: each record with its last-verified date and its history.

The office's file is where a directory starts; from then on imports,
verification rounds and approved corrections change records in the store's
`directory` shard, and each record keeps every change made to it (when, by
whom, from what, old and new values). `StoreDirectory` is what the service
reads: the file's entries overlaid by the store's records, read again
whenever a write has changed them (every write to the shard also writes a
new `meta/version`), so a correction the clerk approves is in force for the
very next message.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..store import Store
from . import FIELDS, Directory, DirectoryError, Entry

SHARD = "directory"


class StoreDirectory(Directory):
    """The file's entries, overlaid (by id) and extended by the store's records.

    It looks for a new version where a piece of work begins: `who` (every
    message starts there) and `of_kind` (every tick and every mailing to a
    kind), and whenever a command calls `refresh` before it changes records;
    `get` within the work reads what was current when it began, at no cost.
    """

    def __init__(self, store: Store, base: Directory) -> None:
        super().__init__()
        self._store = store
        self._base = base
        self._version: str | None = None
        self.refresh()

    def refresh(self) -> None:
        head = self._store.get(SHARD, "meta", "version")
        version = head["version"] if head else ""
        if version == self._version:
            return
        records = {r["_key"]: r for r in self._store.find(SHARD, "records")}
        entries = [entry_of(records.pop(e.id)) if e.id in records else e for e in self._base.entries.values()]
        entries += [entry_of(r) for r in records.values()]
        self._entries, self._by_address = {}, {}
        for entry in entries:
            self.add(entry)
        self._version = version


def office_directory(store: Store, path: Path | None) -> StoreDirectory:
    """The directory the service reads: the configured file (if any) under the store's records."""
    return StoreDirectory(store, Directory.load(path) if path else Directory())


def entry_of(record: dict[str, Any]) -> Entry:
    data = record["entry"]
    return Entry(**{**data, "emails": tuple(data["emails"])})


def plain(entry: Entry) -> dict[str, Any]:
    return {**asdict(entry), "emails": list(entry.emails)}


def record_of(store: Store, entry_id: str) -> dict[str, Any] | None:
    return store.get(SHARD, "records", entry_id)


def differences(old: Entry | None, new: Entry) -> dict[str, list[Any]]:
    """Field by field, [old, new] where they differ (everything, for a new record)."""
    before = plain(old) if old else {}
    after = plain(new)
    return {f: [before.get(f, ""), after[f]] for f in ("kind", *FIELDS) if before.get(f, "" if f != "emails" else []) != after[f]}


def changed(entry: Entry, changes: dict[str, Any]) -> Entry:
    """The entry with some fields given new values (addresses as a list or a text)."""
    unknown = set(changes) - set(FIELDS) - {"kind"}
    if unknown:
        raise DirectoryError(f"no such field: {', '.join(sorted(unknown))}")
    values = dict(changes)
    if "emails" in values and isinstance(values["emails"], str):
        values["emails"] = values["emails"].replace(";", " ").replace(",", " ").split()
    if "emails" in values:
        values["emails"] = tuple(a.strip().lower() for a in values["emails"])
    return replace(entry, **values)


def write_entry(store: Store, was: Entry | None, entry: Entry, now: datetime, by: str, source: str,
                verified: date | None = None) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The documents that set a record from `was` (as the directory has it, from the file or the store) to `entry`.

    The change is added to the record's history, and the shard gets a new version.
    """
    record = record_of(store, entry.id)
    history = record["history"] if record else []
    diff = differences(was, entry)
    if diff:
        history = [*history, {"at": now.isoformat(), "by": by, "source": source, "changes": diff}]
    last = verified.isoformat() if verified else (record or {}).get("last_verified")
    document = {"entry": plain(entry), "last_verified": last, "history": history}
    return [(SHARD, "records", entry.id, document), bump()]


def verified_today(store: Store, entry: Entry, now: datetime, by: str, source: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The record confirmed as it stands: only its last-verified date moves (and the confirmation is in its history)."""
    documents = write_entry(store, entry, entry, now, by, source, verified=now.date())
    record = documents[0][3]
    record["history"] = [*record["history"], {"at": now.isoformat(), "by": by, "source": source, "changes": {}}]
    return documents


def bump() -> tuple[str, str, str, dict[str, Any]]:
    """A new version of the shard, so every reader's directory reads it again."""
    return (SHARD, "meta", "version", {"version": uuid.uuid4().hex})

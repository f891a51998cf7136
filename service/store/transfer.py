"""Moving an office's store between TinyDB and PostgreSQL, and checking that nothing was lost.

`copy` writes every shard, table and document and every file of one store
into the other, and the logs and spools the caller names (the outbox's sent
log, the clerk's command spool: each store keeps those its own way); `verify`
then compares the two from scratch: the shards, the count of every table,
every document, every file's SHA-256, and every log line and spooled entry. Copying is
by key and by path, so running it again changes nothing that is already
right and repairs what is not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..commands import SPOOL
from ..mail.outbox import SENT_LOG
from . import JOURNAL, LOCK, Store, doc_id
from .postgres import PostgresStore
from .storage import write_atomically

AnyStore = Store | PostgresStore


@dataclass
class Inventory:
    """What a store holds: each shard with its tables, and each file's relative path."""

    shards: dict[str, list[str]]
    files: list[str]


@dataclass
class Report:
    """The comparison: documents per shard and table in each store, files and bytes checked, and what differs."""

    tables: list[tuple[str, str, int, int]] = field(default_factory=list)  # shard, table, in the source, in the target
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def documents(self) -> int:
        return sum(source for _, _, source, _ in self.tables)


@dataclass(frozen=True)
class Kept:
    """The logs and spools a store keeps beside its documents, by name: they move too, and their files are not files."""

    logs: tuple[str, ...]
    spools: tuple[str, ...]

    def holds(self, relative: str) -> bool:
        return relative in self.logs or relative.partition("/")[0] in self.spools


#: What the service keeps so: the outbox's sent log and the clerk's command spool.
SERVICE = Kept(logs=(SENT_LOG,), spools=(SPOOL,))


def inventory(store: AnyStore, kept: Kept = SERVICE) -> Inventory:
    """Everything in a store: the database's shards and files for PostgreSQL, the folder's for TinyDB."""
    if isinstance(store, PostgresStore):
        shards = {shard: store.tables(shard) for shard in store.all_shards()}
        return Inventory(shards, store.file_paths())
    shards: dict[str, list[str]] = {}
    files: list[str] = []
    for path in sorted(store.root.rglob("*")) if store.root.is_dir() else []:
        relative = path.relative_to(store.root).as_posix()
        if not path.is_file() or path.name in (LOCK, JOURNAL) or (path.name.startswith(".") and path.name.endswith(".tmp")):
            continue
        if kept.holds(relative):
            continue
        tables = _tinydb_tables(path) if relative.endswith(".json") else None
        if tables is not None:
            shards[relative.removesuffix(".json")] = tables
        else:
            files.append(relative)
    return Inventory(shards, files)


def copy(source: AnyStore, target: AnyStore, kept: Kept = SERVICE) -> Inventory:
    """Write everything of `source` into `target`, a shard per transaction; what was copied."""
    found = inventory(source, kept)
    for name in kept.logs:
        target.clear_lines(name)
        for line in source.read_lines(name):
            target.append_line(name, line, durable=False)
    for name in kept.spools:
        for key, data in source.spooled(name):
            target.spool(name, key, data)
    for shard, tables in found.shards.items():
        with target.transaction() as transaction:
            for table in tables:
                for document in source.find(shard, table):
                    transaction.put(shard, table, document["_key"], document)
        _keep_shard(target, shard)
    for relative in found.files:
        data = source.read_file(relative)
        if isinstance(target, PostgresStore):
            target.keep_file(relative, data)
        elif (target.root / relative).resolve() != (source.root / relative).resolve():
            write_atomically(target.root / relative, data)
    return found


def verify(source: AnyStore, target: AnyStore, kept: Kept = SERVICE) -> Report:
    """Compare the two stores afresh: shards, counts per table, every document, every file's SHA-256, the logs and spools."""
    want, have = inventory(source, kept), inventory(target, kept)
    report = Report()
    for name in kept.logs:
        if source.read_lines(name) != target.read_lines(name):
            report.problems.append(f"log {name}: its lines differ")
    for name in kept.spools:
        if dict(source.spooled(name)) != dict(target.spooled(name)):
            report.problems.append(f"spool {name}: its entries differ")
    for shard in sorted(want.shards.keys() | have.shards.keys()):
        if shard not in have.shards or shard not in want.shards:
            report.problems.append(f"shard {shard} is only in the {'source' if shard in want.shards else 'target'}")
            continue
        for table in sorted(set(want.shards[shard]) | set(have.shards[shard])):
            expected = {d["_key"]: d for d in source.find(shard, table)}
            found = {d["_key"]: d for d in target.find(shard, table)}
            report.tables.append((shard, table, len(expected), len(found)))
            if len(expected) != len(found):
                report.problems.append(f"{shard} {table}: {len(expected)} documents in the source, {len(found)} in the target")
            differing = sorted(key for key in expected.keys() | found.keys() if expected.get(key) != found.get(key))
            report.problems += [f"{shard} {table} {key}: the document differs" for key in differing]
    for relative in sorted(set(want.files) | set(have.files)):
        expected_sha, size = _sha256(source, relative)
        found_sha, _ = _sha256(target, relative)
        report.files += 1
        report.bytes += size
        if expected_sha != found_sha:
            where = "missing from the target" if found_sha is None else "only in the target" if expected_sha is None else \
                f"SHA-256 {found_sha} in the target, {expected_sha} in the source"
            report.problems.append(f"file {relative}: {where}")
    return report


def _keep_shard(target: AnyStore, shard: str) -> None:
    """A shard with nothing left in it exists all the same (the TinyDB store lists it), so it must in the copy too."""
    if isinstance(target, PostgresStore):
        target.keep_shard(shard)
    elif not (target.root / f"{shard}.json").exists():
        write_atomically(target.root / f"{shard}.json", b"{}")


def _sha256(store: AnyStore, relative: str) -> tuple[str | None, int]:
    try:
        data = store.read_file(relative)
    except OSError:
        return None, 0
    return hashlib.sha256(data).hexdigest(), len(data)


def _tinydb_tables(path: Path) -> list[str] | None:
    """The tables of a TinyDB shard file, or None when the file is something else (a spooled command, an export).

    Every document the store writes carries its key, and its id is the key's
    hash: no other JSON file looks like that.
    """
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(content, dict):
        return None
    for documents in content.values():
        if not isinstance(documents, dict):
            return None
        for number, document in documents.items():
            if not isinstance(document, dict) or str(doc_id(str(document.get("_key")))) != number:
                return None
    return sorted(table for table, documents in content.items() if documents)  # an empty table reads as no table

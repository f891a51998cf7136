"""The store: the office's files, and the one truth everything else reacts to.

Documents live in small TinyDB shards (one per meeting; the directory, the
message log and the outbox apart) under one folder, with raw messages and
attachments as content-addressed files beside them, append-only logs of
lines (the outbox's sends) as plain files, and spools (the clerk's commands)
as folders of small files. The whole interface is `get`, `find`,
`transaction`, `put_file`, the lines and the spools, so a server-backed store
can take its place without touching the rest of the service.

A transaction may touch several shards (a message's log entry, the meeting
it changes and the mail that change sends). It is first written whole to a
journal file; then each shard is rewritten atomically; then the journal is
removed. A crash in between leaves the journal, which the next start applies
again: every operation is a put or delete by key, so applying it twice is
the same as once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from tinydb import TinyDB
from tinydb.table import Document

from .storage import AtomicJSONStorage, to_json, write_atomically

if TYPE_CHECKING:  # psycopg is needed only where PostgreSQL is configured
    from ..config import Settings
    from .postgres import PostgresStore

JOURNAL = "journal.json"
LOCK = "secretary.lock"
_SHARD_NAME = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_.-]+)*$")
#: `folder/ab/ab12…(64 hex)-name`: the paths `put_file` returns (digest's first two, its rest, the name).
CONTENT_ADDRESSED = re.compile(r"^.+/([0-9a-f]{2})/\1([0-9a-f]{62})(?:-([^/]+))?$")


class StoreError(Exception):
    """The store cannot be read or written (a full disk, a second daemon, a bad path)."""


class StoreLocked(StoreError):
    """Another daemon already works this store."""


def doc_id(key: str) -> int:
    """A stable TinyDB document id for a string key (60 bits of its hash)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:15], 16)


class Transaction:
    """Puts and deletes by key, applied together when the `with` block ends."""

    def __init__(self) -> None:
        self.operations: list[tuple[str, str, str, dict[str, Any] | None]] = []

    def put(self, shard: str, table: str, key: str, document: dict[str, Any]) -> None:
        _check_shard(shard)
        self.operations.append((shard, table, key, {**document, "_key": key}))

    def delete(self, shard: str, table: str, key: str) -> None:
        _check_shard(shard)
        self.operations.append((shard, table, key, None))


class Store:
    """A folder of TinyDB shards and content-addressed files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._shards: dict[str, TinyDB] = {}
        self._lock_file: int | None = None
        self._unfinished = False
        self._batch: list[list[Any]] | None = None  # a batch's records, written when it ends
        self._batch_shards: dict[str, TinyDB] = {}

    def open(self, exclusive: bool = True) -> Store:
        """Make the folder, take the lock (for a daemon), and finish any interrupted transaction."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the store folder {self.root}: {error}") from error
        if exclusive:
            self._lock()
            self._unfinished = (self.root / JOURNAL).exists()
            self._finish()
        return self

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(self, shard: str, table: str, key: str) -> dict[str, Any] | None:
        self._finish()
        found = self._shard(shard).table(table).get(doc_id=doc_id(key))
        return dict(found) if found is not None else None

    def find(self, shard: str, table: str, where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        self._finish()
        documents = self._shard(shard).table(table).all()
        return [dict(d) for d in documents if where is None or where(d)]

    def shards(self, prefix: str) -> list[str]:
        """Names of the existing shards under a folder, e.g. "log" → ["log/00", …]."""
        folder = self.root / prefix
        written = (f"{prefix}/{path.relative_to(folder).with_suffix('')}" for path in folder.rglob("*.json")) if folder.is_dir() else ()
        batched = (name for name in self._batch_shards if name.startswith(f"{prefix}/"))
        return sorted({*written, *batched})

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Collect changes; on leaving the block, write them all or (on error) none."""
        self._finish()
        transaction = Transaction()
        yield transaction
        if not transaction.operations:
            return
        records = [list(op) for op in transaction.operations]
        if self._batch is None:
            self._commit(records)
            return
        to_json(records)  # what the batch's journal could not write fails this transaction, not the batch
        try:
            self._apply(records, self._batch_shards)
        except Exception as error:  # memory now holds part of it: the whole batch must go
            raise StoreError(f"cannot apply a transaction to the store at {self.root}: {error}") from error
        self._batch.extend(records)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write every transaction of the block at once when it ends (a group commit), or none of them on an error.

        Inside the block each transaction is applied in memory at once, so what
        follows reads it, but nothing reaches the disk: a backlog of messages
        costs one journal and one write per shard, not one per message. Nothing
        the block's transactions cause may leave the process (a message moved,
        mail sent) before the block has ended.
        """
        if self._batch is not None:  # inside another batch: the outer one writes
            yield
            return
        self._finish()
        self._batch = []
        try:
            yield
            records, self._batch = self._batch, None
            if records:
                self._commit(records, self._batch_shards)
        except BaseException:
            for shard in self._batch_shards.values():
                shard.storage.discard()
            raise
        finally:
            self._batch = None
            self._batch_shards = {}

    def _commit(self, records: list[list[Any]], applied: dict[str, TinyDB] | None = None) -> None:
        """Journal the records, then write them to their shards (`applied`: already in these, in memory), then remove the journal."""
        try:
            write_atomically(self.root / JOURNAL, to_json(records))
        except OSError as error:
            raise StoreError(f"cannot write the store at {self.root}: {error}") from error
        self._unfinished = True
        if applied is None:
            self._finish()
            return
        try:
            for shard in applied.values():
                shard.storage.flush()
            (self.root / JOURNAL).unlink()
        except OSError as error:  # the journal stays, and the next read applies it again
            raise StoreError(f"cannot write the store at {self.root}: {error}") from error
        self._unfinished = False

    def _finish(self) -> None:
        """Apply a journal that a crash or a failed write left, before anything reads or writes."""
        if not self._unfinished:
            return
        journal = self.root / JOURNAL
        try:
            self._apply(json.loads(journal.read_text(encoding="utf-8")))
            journal.unlink()
        except OSError as error:
            raise StoreError(f"cannot write the store at {self.root}: {error}") from error
        self._unfinished = False

    def put_file(self, folder: str, data: bytes, name: str = "") -> str:
        """Keep bytes under their SHA-256 (plus a readable name); return the path relative to the root.

        Writing the same content twice writes one file, so a crash and a retry
        cost nothing.
        """
        relative = content_path(folder, data, name)
        path = self.root / relative
        if not path.exists():
            try:
                write_atomically(path, data)
            except OSError as error:
                raise StoreError(f"cannot write {path}: {error}") from error
        return relative

    def files(self, folder: str) -> list[str]:
        """The paths of the files `put_file` kept in `folder` (not below it), sorted."""
        base = self.root / folder
        found = (path.relative_to(self.root).as_posix() for path in base.glob("??/*")) if base.is_dir() else ()
        return sorted(relative for relative in found if content_address(relative))

    def read_file(self, relative: str) -> bytes:
        return (self.root / relative).read_bytes()

    def append_line(self, name: str, text: str, durable: bool = True) -> None:
        """Add a line (no line break in it) to the log `name` at once, outside any transaction or batch.

        For what must be on record before the next step leaves the process
        (the outbox's sends): one write, which survives the process being
        killed; `durable` also fsyncs it, against a power cut.
        """
        path = self.root / name
        try:
            with open(path, "a", encoding="utf-8") as lines:
                lines.write(text + "\n")
                lines.flush()
                if durable:
                    os.fsync(lines.fileno())
        except OSError as error:
            raise StoreError(f"cannot write {path}: {error}") from error

    def read_lines(self, name: str) -> list[str]:
        """The log's lines, oldest first (none if it was never written)."""
        path = self.root / name
        try:
            return path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise StoreError(f"cannot read {path}: {error}") from error

    def clear_lines(self, name: str) -> None:
        """Empty the log, once what it records is in the documents."""
        path = self.root / name
        try:
            os.truncate(path, 0)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StoreError(f"cannot write {path}: {error}") from error

    def spool(self, name: str, key: str, data: bytes) -> None:
        """Leave an entry for the process that holds the store (a clerk's command), from any process: a file in the folder `name`."""
        path = self.root / name / f"{key}.json"
        try:
            write_atomically(path, data)
        except OSError as error:
            raise StoreError(f"cannot write {path}: {error}") from error

    def spooled(self, name: str) -> list[tuple[str, bytes]]:
        """The spool's entries as (key, data), oldest first."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        try:
            return [(path.stem, path.read_bytes()) for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)]
        except OSError as error:
            raise StoreError(f"cannot read {folder}: {error}") from error

    def unspool(self, name: str, key: str) -> None:
        """Take an entry away, once handled."""
        (self.root / name / f"{key}.json").unlink(missing_ok=True)

    def _apply(self, records: list[list[Any]], batch: dict[str, TinyDB] | None = None) -> None:
        """Apply records to their shards and write each touched shard once; in a batch, in memory only."""
        touched: dict[str, TinyDB] = {} if batch is None else batch
        try:
            for shard_name, table, key, document in records:
                shard = touched.get(shard_name)
                if shard is None:
                    shard = touched[shard_name] = self._shard(shard_name)
                    shard.storage.defer()
                rows = shard.table(table)
                if document is None:
                    if rows.contains(doc_id=doc_id(key)):
                        rows.remove(doc_ids=[doc_id(key)])
                else:
                    rows.upsert(Document(document, doc_id=doc_id(key)))
            if batch is None:
                for shard in touched.values():
                    shard.storage.flush()
        except BaseException:
            for shard in touched.values():
                shard.storage.discard()
            raise

    def _shard(self, name: str) -> TinyDB:
        shard = self._shards.get(name)
        if shard is None:
            _check_shard(name)
            shard = self._shards[name] = TinyDB(self.root / f"{name}.json", storage=AtomicJSONStorage)
        return shard

    def _lock(self) -> None:
        path = self.root / LOCK
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 64).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            raise StoreLocked(f"another secretary (pid {holder}) is already working the store at {self.root}") from None
        try:  # the pid only tells a second daemon who holds the lock; a full disk must not stop this one
            os.ftruncate(descriptor, 0)
            os.write(descriptor, str(os.getpid()).encode())
        except OSError:
            pass
        self._lock_file = descriptor


def content_path(folder: str, data: bytes, name: str = "") -> str:
    """Where `put_file` keeps bytes: `<folder>/<sha[:2]>/<sha>-<name>`, the same in every kind of store."""
    digest = hashlib.sha256(data).hexdigest()
    safe = re.sub(r"[^\w.\-]+", "_", name, flags=re.UNICODE).strip("._")[:80]
    return f"{folder}/{digest[:2]}/{digest}{'-' + safe if safe else ''}"


def content_address(relative: str) -> str | None:
    """The SHA-256 a path `put_file` returned records (its bytes must have it); None for any other path."""
    match = CONTENT_ADDRESSED.match(relative)
    return match[1] + match[2] if match else None


def original_name(relative: str) -> str:
    """The readable name a `put_file` path carries (`agenda-v2.pdf`), or the last part of any other path."""
    match = CONTENT_ADDRESSED.match(relative)
    return match[3] if match and match[3] else relative.rsplit("/", 1)[-1]


def _check_shard(name: str) -> None:
    if not _SHARD_NAME.match(name):
        raise ValueError(f"not a valid shard name: {name!r}")


def open_store(settings: Settings, exclusive: bool = True) -> Store | PostgresStore:
    """The store a configuration names: TinyDB in its folder (the default), or an office's rows in PostgreSQL."""
    if settings.postgres is None:
        return Store(settings.store).open(exclusive=exclusive)
    from .postgres import PostgresStore

    return PostgresStore(settings.store, settings.postgres.conninfo(), settings.postgres.office).open(exclusive=exclusive)

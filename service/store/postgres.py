"""The store in PostgreSQL: the same interface as the TinyDB store, for offices that share a server.

Documents are rows keyed by (office, shard, table, key), each the JSON text
as written (read back as it was, key order included) with its JSONB twin
beside it for SQL and its indexes; a transaction
is one PostgreSQL transaction, so the outbox and the state change it belongs
to are written together or not at all. What `put_file` keeps (raw mail,
attachments, the rendered papers) is content-addressed in the database
under the same relative path the TinyDB store returns, so every instance
that may run the office reads the same files: nothing of an office is kept
only on one machine. The append-only logs (the outbox's sends) are rows, each committed
the moment it is written, so an instance that takes an office over after
another died knows every send the dead one made; the spools (the clerk's
commands) are rows too, so a command given on any machine reaches the
instance running the office. Many offices share one database: every row
carries its office and every query names one, so an office never sees
another's documents, files, lines or spools. One daemon works an office at a
time: `open(exclusive=True)` takes a session advisory lock keyed by the
office, released when the connection ends, so a daemon that dies frees its
office at once, and one whose machine dies within 20 s (the server probes a
silent connection).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg

from . import _SHARD_NAME, StoreError, StoreLocked, Transaction, _check_shard, content_address, content_path, doc_id
from .storage import to_json

MIGRATIONS = Path(__file__).with_name("migrations")
#: Held (per transaction) while the schema is brought up to date, so two daemons starting together never both migrate.
MIGRATION_LOCK = doc_id("secretary schema migrations")

_UPSERT = """
    INSERT INTO documents (office, shard, table_name, key, body) VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (office, shard, table_name, key) DO UPDATE SET body = EXCLUDED.body
"""
_DELETE = "DELETE FROM documents WHERE office = %s AND shard = %s AND table_name = %s AND key = %s"
_NEW_SHARD = "INSERT INTO shards (office, shard) VALUES (%s, %s) ON CONFLICT DO NOTHING"
#: The bytes (a damaged copy is written again) and the path that names them, in one statement.
_KEEP_CONTENT = """
    WITH content AS (
        INSERT INTO contents (sha256, data) VALUES (%(sha256)s, %(data)b) ON CONFLICT (sha256) DO UPDATE
        SET data = EXCLUDED.data WHERE contents.data IS DISTINCT FROM EXCLUDED.data
    )
    INSERT INTO files (office, path, sha256) VALUES (%(office)s, %(path)s, %(sha256)s)
    ON CONFLICT (office, path) DO UPDATE SET sha256 = EXCLUDED.sha256
"""
#: The server's side of a connection whose machine died without closing it (power, network): probed after 5 s
#: of silence, given up after three unanswered probes 5 s apart, or after 20 s of data it sent going unacknowledged.
#: Its session ends then and frees the office's lock, so another instance can take the office over within 30 s.
_NOTICE_A_DEAD_PEER = """
    SELECT set_config('tcp_keepalives_idle', '5', false), set_config('tcp_keepalives_interval', '5', false),
           set_config('tcp_keepalives_count', '3', false), set_config('tcp_user_timeout', '20000', false)
"""
_HOLDER = """
    SELECT coalesce(nullif(a.application_name, ''), 'backend ' || l.pid) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = %s
"""


def session_name() -> str:
    """What this process's sessions are called on the server (application_name): how `_HOLDER` names a lock's holder."""
    return f"secretary pid {os.getpid()} on {socket.gethostname()}"[:63]


def lock_key(office: str) -> int:
    """The key of an office's advisory lock, the one its daemon holds."""
    return doc_id(f"office {office}")


class PostgresStore:
    """An office's store in a PostgreSQL database (its folder holds only what is of one machine: exports, a mailbox's sync state)."""

    def __init__(self, root: Path, conninfo: str, office: str) -> None:
        self.root = Path(root)
        self.office = office
        self._conninfo = conninfo
        self._connection: psycopg.Connection | None = None
        self._exclusive = False
        self._unsaved: dict[str, bytes] = {}  # put_file's, written with the next transaction (the one naming them)
        self._in_batch = False

    def open(self, exclusive: bool = True) -> PostgresStore:
        """Connect, bring the schema up to date, and take the office's lock (for a daemon)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the store folder {self.root}: {error}") from error
        self.close()  # opened again (as `with` does): a new session, so the lock is taken as asked now
        self._exclusive = exclusive
        self._db()
        return self

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> PostgresStore:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(self, shard: str, table: str, key: str) -> dict[str, Any] | None:
        _check_shard(shard)
        row = self._query("read", "SELECT body FROM documents WHERE office = %s AND shard = %s AND table_name = %s AND key = %s",
                          (self.office, shard, table, key)).fetchone()
        return json.loads(row[0]) if row else None

    def find(self, shard: str, table: str, where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """The table's documents in the order they were first put; `where` filters them here, in Python."""
        _check_shard(shard)
        rows = self._query("read", "SELECT body FROM documents WHERE office = %s AND shard = %s AND table_name = %s ORDER BY position",
                           (self.office, shard, table))
        documents = (json.loads(body) for (body,) in rows)
        return [d for d in documents if where is None or where(d)]

    def shards(self, prefix: str) -> list[str]:
        """Names of the existing shards under a folder, e.g. "log" → ["log/00", …], as the TinyDB store lists them."""
        rows = self._query("read", "SELECT shard FROM shards WHERE office = %s AND shard >= %s AND shard < %s ORDER BY shard",
                           (self.office, prefix + "/", prefix + chr(ord("/") + 1)))
        return [name for (name,) in rows]

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Collect changes; on leaving the block, write them all in one PostgreSQL transaction, or (on error) none."""
        transaction = Transaction()
        yield transaction
        if not transaction.operations and not self._unsaved:
            return
        files = dict(self._unsaved)
        with self._errors("write"):
            connection = self._db()
            with connection.pipeline(), connection.transaction(), connection.cursor() as cursor:
                cursor.executemany(_KEEP_CONTENT, [self._content_row(relative, data) for relative, data in files.items()])
                for shard, table, key, document in transaction.operations:
                    if document is None:
                        cursor.execute(_DELETE, (self.office, shard, table, key))
                    else:
                        cursor.execute(_UPSERT, (self.office, shard, table, key, to_json(document).decode("utf-8")))
                new = {shard for shard, _, _, document in transaction.operations if document is not None}
                cursor.executemany(_NEW_SHARD, [(self.office, shard) for shard in sorted(new)])
        for relative in files:
            del self._unsaved[relative]

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every transaction of the block in one PostgreSQL transaction (a group commit), or none of them on an error.

        Each is a savepoint inside it, so what follows in the block reads it,
        and nothing is committed before the block ends: nothing the block's
        transactions cause may leave the process (a message moved, mail sent)
        before then.
        """
        if self._in_batch:  # inside another batch: the outer one commits
            yield
            return
        connection = self._db()
        self._in_batch = True
        try:
            with self._errors("write"), connection.transaction():
                yield
        finally:
            self._in_batch = False

    def put_file(self, folder: str, data: bytes, name: str = "") -> str:
        """Keep bytes under their SHA-256 (plus a readable name) in the database; the relative path.

        The path is the one the TinyDB store gives, so documents that name
        files read the same in both stores. The database gets the bytes in
        the next transaction, the one that writes the document naming them:
        one commit, not one per file, and no file in the database that
        nothing names.
        """
        relative = content_path(folder, data, name)
        self._unsaved[relative] = data
        return relative

    def files(self, folder: str) -> list[str]:
        """The paths of the files `put_file` kept in `folder` (not below it), sorted; those of the coming transaction too."""
        rows = self._query("read", "SELECT path FROM files WHERE office = %s AND path LIKE %s", (self.office, _like(folder) + "/__/%"))
        found = {path for (path,) in rows} | {path for path in self._unsaved if path.startswith(folder + "/")}
        return sorted(path for path in found if path.count("/") == folder.count("/") + 2 and content_address(path))

    def read_file(self, relative: str) -> bytes:
        """A file kept in the database.

        A shard's name with ".json" reads as the file TinyDB would hold for it,
        so code that reads a meeting's shard whole (the archive) works unchanged.
        """
        if relative in self._unsaved:
            return self._unsaved[relative]
        row = self._query("read", "SELECT c.data FROM files f JOIN contents c USING (sha256) WHERE f.office = %s AND f.path = %s",
                          (self.office, relative), binary=True).fetchone()
        if row is not None:
            return bytes(row[0])
        shard = relative.removesuffix(".json")
        if shard == relative or not _SHARD_NAME.match(shard) or shard not in self.all_shards():
            raise FileNotFoundError(errno.ENOENT, f"no such file in the store of {self.office} in PostgreSQL", relative)
        tables = {table: {str(doc_id(d["_key"])): d for d in self.find(shard, table)} for table in self.tables(shard)}
        return to_json(tables)

    def append_line(self, name: str, text: str, durable: bool = True) -> None:
        """Add a line to the log `name`, committed at once (the connection is in autocommit; never call it inside a batch).

        Every line is durable: the commit is what another instance taking
        the office over reads, so `durable` is the TinyDB store's concern.
        """
        self._query("write", "INSERT INTO lines (office, name, text) VALUES (%s, %s, %s)", (self.office, name, text))

    def read_lines(self, name: str) -> list[str]:
        """The log's lines, oldest first."""
        rows = self._query("read", "SELECT text FROM lines WHERE office = %s AND name = %s ORDER BY seq", (self.office, name))
        return [text for (text,) in rows]

    def clear_lines(self, name: str) -> None:
        """Empty the log, once what it records is in the documents."""
        self._query("write", "DELETE FROM lines WHERE office = %s AND name = %s", (self.office, name))

    def spool(self, name: str, key: str, data: bytes) -> None:
        """Leave an entry for the instance that runs the office, from any machine, committed at once (written twice: once)."""
        self._query("write", "INSERT INTO spool (office, name, key, data) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (self.office, name, key, data))

    def spooled(self, name: str) -> list[tuple[str, bytes]]:
        """The spool's entries as (key, data), oldest first."""
        rows = self._query("read", "SELECT key, data FROM spool WHERE office = %s AND name = %s ORDER BY seq", (self.office, name))
        return [(key, bytes(data)) for key, data in rows]

    def unspool(self, name: str, key: str) -> None:
        """Take an entry away, once handled."""
        self._query("write", "DELETE FROM spool WHERE office = %s AND name = %s AND key = %s", (self.office, name, key))

    # What moving a store to or from another kind needs, beyond the store interface.

    def all_shards(self) -> list[str]:
        return [name for (name,) in self._query("read", "SELECT shard FROM shards WHERE office = %s ORDER BY shard", (self.office,))]

    def tables(self, shard: str) -> list[str]:
        rows = self._query("read", "SELECT DISTINCT table_name FROM documents WHERE office = %s AND shard = %s ORDER BY table_name",
                           (self.office, shard))
        return [name for (name,) in rows]

    def file_paths(self) -> list[str]:
        """The paths of every file `put_file` kept for this office."""
        return [path for (path,) in self._query("read", "SELECT path FROM files WHERE office = %s ORDER BY path", (self.office,))]

    def keep_shard(self, shard: str) -> None:
        """Make a shard exist though it holds nothing (as an emptied TinyDB shard file still does)."""
        _check_shard(shard)
        self._query("write", _NEW_SHARD, (self.office, shard))

    def keep_file(self, relative: str, data: bytes) -> None:
        """Keep a file at a given path (any a TinyDB store holds, content-addressed or not), committed at once."""
        self._query("write", _KEEP_CONTENT, self._content_row(relative, data))

    def _content_row(self, relative: str, data: bytes) -> dict[str, Any]:
        return {"sha256": hashlib.sha256(data).hexdigest(), "data": data, "office": self.office, "path": relative}

    def _query(self, doing: str, sql: str, parameters: tuple[Any, ...] | dict[str, Any], binary: bool = False) -> psycopg.Cursor:
        with self._errors(doing):
            return self._db().execute(sql, parameters, binary=binary)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """psycopg's errors as StoreError, in words an office's IT contact can act on."""
        try:
            yield
        except psycopg.Error as error:
            if self._connection is not None and self._connection.broken:
                self.close()  # reconnect (and take the lock again) on the next call
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise StoreError(f"cannot {doing} the store of {self.office} in PostgreSQL: {reason}") from error

    def _db(self) -> psycopg.Connection:
        """The connection, made (again, after a lost one) with the schema checked and the lock taken."""
        if self._connection is not None and not self._connection.closed:
            return self._connection
        if self._in_batch:  # a new session would carry on outside the batch's transaction, which the server has dropped
            raise StoreError(f"the connection to PostgreSQL was lost in the middle of a batch for {self.office}: nothing of it was written")
        try:
            connection = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10,
                                         application_name=session_name())
        except psycopg.Error as error:
            raise StoreError(f"cannot connect to PostgreSQL for the store of {self.office}: {str(error).strip()}") from error
        try:
            with self._errors("open"):
                connection.execute(_NOTICE_A_DEAD_PEER)
                _migrate(connection)
                if self._exclusive:
                    self._lock(connection)
        except StoreError:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _lock(self, connection: psycopg.Connection) -> None:
        key = lock_key(self.office)
        [taken] = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not taken:
            row = connection.execute(_HOLDER, (key,)).fetchone()
            holder = row[0] if row else "unknown"
            raise StoreLocked(f"another secretary ({holder}) is already working the store of {self.office} in PostgreSQL")


def _like(text: str) -> str:
    """`text` as a LIKE pattern that matches only itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _migrate(connection: psycopg.Connection) -> None:
    """Apply the migrations the database has not had, in order, each recorded in `schema_version`."""
    available = {int(path.name.split("_", 1)[0]): path for path in MIGRATIONS.glob("*.sql")}
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version "
                           "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        applied = {version for (version,) in connection.execute("SELECT version FROM schema_version")}
        newer = applied - set(available)
        if newer:
            raise StoreError(f"the database has schema version {max(newer)}, which this secretary does not know: upgrade secretary")
        for version in sorted(set(available) - applied):
            connection.execute(available[version].read_text(encoding="utf-8"))
            connection.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)", (version, available[version].stem))

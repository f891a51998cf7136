"""Crash-safe file storage for TinyDB.

TinyDB's default JSONStorage rewrites its file in place, so a crash or a full
disk mid-write leaves a truncated database. Here every write goes to a
temporary file that is fsynced and then renamed over the old one (and the
folder is fsynced so the rename itself survives a power cut): a reader sees
the old file or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tinydb.storages import Storage


def to_json(data: Any) -> bytes:
    """JSON as the store writes it: Thai as it is, and what a sloppy header smuggled in
    (lone surrogates from undecodable bytes) as \\u escapes, which read back as they were."""
    return json.dumps(data, ensure_ascii=False).encode("utf-8", "backslashreplace")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class AtomicJSONStorage(Storage):
    """A TinyDB storage that keeps the shard in memory and writes it atomically.

    Inside `deferred()` writes only change memory, and `flush()` writes once:
    a transaction that touches a shard many times costs one file write. A
    failed write reloads the file so memory never runs ahead of the disk.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._data: dict[str, Any] | None = None
        self._deferred = False
        self._dirty = False

    def read(self) -> dict[str, Any] | None:
        if self._data is None:
            self._data = self._load()
        return self._data

    def write(self, data: dict[str, Any]) -> None:
        self._data = data
        if self._deferred:
            self._dirty = True
        else:
            self._persist()

    def defer(self) -> None:
        self._deferred = True

    def flush(self) -> None:
        """Write what `deferred` writes changed, then go back to writing at once."""
        self._deferred = False
        if self._dirty:
            self._dirty = False
            self._persist()

    def discard(self) -> None:
        """Forget unflushed changes (the transaction failed)."""
        self._deferred = False
        self._dirty = False
        self._data = None

    def close(self) -> None:
        self._data = None

    def _persist(self) -> None:
        try:
            write_atomically(self.path, to_json(self._data))
        except BaseException:
            self._data = None
            raise

    def _load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return json.loads(text) if text.strip() else None

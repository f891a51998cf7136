"""The embedded default: a Maildir as the shared mailbox, and a folder of .eml files as the sender.

With these the whole service runs on one machine with no mail server at
all, which is what `secretary demo` and a first trial need. The Maildir uses
Maildir++ folders (`.Processed`, `.Quarantine`), so any IMAP server pointed at
it later sees the same mailbox.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..store.storage import write_atomically
from .sender import Delivery, Envelope
from .source import PROCESSED, QUARANTINE, Fetched

POLL_SECONDS = 0.2


class MaildirSource:
    """A Maildir's inbox as a source; files are moved, never copied, so nothing is duplicated."""

    def __init__(self, path: Path, poll_seconds: float = POLL_SECONDS) -> None:
        self.path = Path(path)
        self.poll_seconds = poll_seconds
        self._interrupted = threading.Event()
        for folder in (self.path, self.path / f".{PROCESSED}", self.path / f".{QUARANTINE}"):
            for sub in ("new", "cur", "tmp"):
                (folder / sub).mkdir(parents=True, exist_ok=True)

    def fetch_new(self) -> Iterator[Fetched]:
        for path in self._waiting():
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                continue
            yield Fetched(ref=f"{path.parent.name}/{path.name}", raw=raw)

    def mark_processed(self, ref: str) -> None:
        self._move(ref, PROCESSED)

    def mark_quarantined(self, ref: str) -> None:
        self._move(ref, QUARANTINE)

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._waiting() and not self._interrupted.is_set():
            self._interrupted.wait(min(self.poll_seconds, max(0.0, deadline - time.monotonic())))

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        pass

    def _waiting(self) -> list[Path]:
        """Inbox files, oldest delivery first (Maildir names start with the delivery time)."""
        files = [p for sub in ("new", "cur") for p in (self.path / sub).iterdir() if not p.name.startswith(".")]
        return sorted(files, key=lambda p: (_delivered(p), p.name))

    def _move(self, ref: str, folder: str) -> None:
        source = self.path / ref
        try:
            os.replace(source, self.path / f".{folder}" / "cur" / source.name)
        except FileNotFoundError:
            pass  # moved already, before a crash


def _delivered(path: Path) -> float:
    try:
        return float(path.name.split(".", 1)[0])
    except ValueError:
        return path.stat().st_mtime


def deliver(maildir: Path, raw: bytes, name: str) -> Path:
    """Put a message into a Maildir's `new/` the way an MTA does (tmp, then rename)."""
    final = Path(maildir) / "new" / f"{time.time():.6f}.{name}"
    temporary = Path(maildir) / "tmp" / final.name
    temporary.parent.mkdir(parents=True, exist_ok=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary.write_bytes(raw)
    os.replace(temporary, final)
    return final


class FileSender:
    """Writes each outbound message as `<folder>/<Message-ID>.eml`.

    The file name comes from the Message-ID, so sending the same message
    again after a crash rewrites the same file: there is still one.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def send_batch(
        self, envelopes: Iterable[Envelope], committing: Callable[[str], None] | None = None
    ) -> Iterator[Delivery]:
        # No `committing` note is needed: the rename that writes a file is atomic, and writing it again is harmless.
        for envelope in envelopes:
            name = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in envelope.message_id)
            try:
                write_atomically(self.path / f"{name}.eml", envelope.data)
            except OSError as error:
                yield Delivery(envelope.message_id, ok=False, error=str(error))
                return
            yield Delivery(envelope.message_id, ok=True)

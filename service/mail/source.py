"""What every mailbox the service watches must do: the source protocol.

A source hands out the messages waiting in the shared mailbox's inbox, oldest
first, and moves each one away once the store has recorded it: to *Processed*
when it was handled, to *Quarantine* when it could not be. Because a message
leaves the inbox only after the store write, a crash at any point leaves it
either still in the inbox (and the store's message identity stops it being
handled twice) or already moved. IMAP, Exchange, Graph and Maildir implement
just this.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

PROCESSED = "Processed"
QUARANTINE = "Quarantine"


@dataclass(frozen=True)
class Fetched:
    """One raw message as the mailbox holds it.

    `ref` is the source's own handle for moving the message later (an IMAP
    UID with its UIDVALIDITY, a Maildir file name, an Exchange item id); it
    means nothing outside the source that made it.
    """

    ref: str
    raw: bytes


class SourceError(Exception):
    """The mailbox could not be reached or refused an operation.

    The daemon logs it and calls again; the source itself waits (with capped
    exponential backoff) before its next attempt to reconnect.
    """


class Source(Protocol):
    """A shared mailbox seen as a queue of raw messages."""

    def fetch_new(self) -> Iterator[Fetched]:
        """Yield the messages now in the inbox, oldest first."""

    def mark_processed(self, ref: str) -> None:
        """Move a handled message out of the inbox into *Processed*."""

    def mark_quarantined(self, ref: str) -> None:
        """Move a message that could not be handled into *Quarantine*."""

    def wait(self, timeout: float) -> None:
        """Block until new mail may have arrived, or `timeout` seconds pass."""

    def interrupt(self) -> None:
        """End the wait in progress, and every later one, from another thread: the daemon is stopping."""

    def close(self) -> None:
        """Let go of connections and locks."""


@dataclass
class Backoff:
    """How long a source waits before its next attempt after a failure.

    Doubling from `base` up to `cap`, with jitter so that many daemons do not
    come back at once; the whole cap after a refused login (a wrong password
    will not heal in a second); nothing once an attempt went through.
    """

    base: float
    cap: float
    sleep: Callable[[float], object]
    delay: float = 0.0
    jitter: bool = True

    def pause(self) -> None:
        """Wait before an attempt, if the last one failed."""
        if self.delay:
            self.sleep(random.uniform(self.delay / 2, self.delay) if self.jitter else self.delay)

    def failed(self, at_least: float = 0.0) -> None:
        """A failure: the next wait doubles (capped), and is at least what the server asked for."""
        self.delay = max(min(self.cap, 2 * self.delay) if self.delay else self.base, min(at_least, self.cap))
        self.jitter = True

    def refused(self, exact: bool = False) -> None:
        """A refused login: the next attempt waits the whole cap (`exact`: without jitter)."""
        self.delay, self.jitter = self.cap, not exact

    def succeeded(self) -> None:
        self.delay = 0.0


class PollingSource:
    """What a source that polls a web API and moves messages by one call has in common (Exchange, Graph).

    It needs `processed`, `quarantine` (folder names), `poll_interval` and
    `_move(ref, folder)`, and calls `__init__` for its `_sleep`: every wait of
    the source (between polls, and the back-offs after a failure or when the
    server asks for quiet) goes through it, so that `interrupt()` ends them.
    """

    processed: str
    quarantine: str
    poll_interval: float

    def __init__(self, sleep: Callable[[float], object] | None = None) -> None:
        """`sleep`: what a test records instead of sleeping; by default an Event's wait, which `interrupt()` cuts short."""
        self._interrupted = threading.Event()
        self._sleep: Callable[[float], object] = sleep or self._interrupted.wait

    def interrupt(self) -> None:
        """End the wait in hand at once, from another thread, and never wait again."""
        self._interrupted.set()

    def mark_processed(self, ref: str) -> None:
        self._move(ref, self.processed)

    def mark_quarantined(self, ref: str) -> None:
        self._move(ref, self.quarantine)

    def wait(self, timeout: float) -> None:
        """Sleep `poll_interval` seconds, or `timeout` if that is shorter: the next fetch asks the server again."""
        if timeout > 0 and not self._interrupted.is_set():
            self._sleep(min(self.poll_interval, timeout))

    def _move(self, ref: str, folder: str) -> None:
        raise NotImplementedError

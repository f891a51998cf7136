"""What every way of sending mail must do: the sender protocol.

The outbox hands a sender a batch of envelopes; the sender yields one
`Delivery` per envelope *as soon as* the server has accepted or refused it, so
the outbox can record the result before the next one goes out. That is what
keeps the window in which a crash could send a message twice down to the time
between the server's reply and one write to a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol


@dataclass(frozen=True)
class Envelope:
    """A fully built message and where it goes."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    data: bytes


@dataclass(frozen=True)
class Delivery:
    """What happened to one envelope.

    `permanent` failures (a 5xx for every recipient, a malformed address) are
    not retried; temporary ones (4xx, a dropped connection) are.
    """

    message_id: str
    ok: bool
    permanent: bool = False
    error: str = ""


class Sender(Protocol):
    """Something that can hand envelopes to the mail system."""

    def send_batch(self, envelopes: Iterable[Envelope]) -> Iterator[Delivery]:
        """Send each envelope, yielding its delivery before sending the next.

        A sender may stop early (for example when its connection drops); the
        envelopes it did not yield a delivery for are simply tried again later.
        """

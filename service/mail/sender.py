"""What every way of sending mail must do: the sender protocol.

The outbox hands a sender a batch of envelopes; the sender yields one
`Delivery` per envelope *as soon as* the server has accepted or refused it, so
the outbox can record the result before the next one goes out.

A crash while the server is accepting a message (after the last byte of the
message went out, before the server's reply came back) would leave the outbox
unsure whether to send it again. So a sender calls `committing(message_id)`
just before it hands over that last byte: the outbox notes it, and a message
noted so and never answered counts as sent. What is left is the time between
that note and one write to a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol


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

    def send_batch(
        self, envelopes: Iterable[Envelope], committing: Callable[[str], None] | None = None
    ) -> Iterator[Delivery]:
        """Send each envelope, yielding its delivery before sending the next.

        A sender may stop early (for example when its connection drops); the
        envelopes it did not yield a delivery for are simply tried again later.
        """

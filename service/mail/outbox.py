"""The transactional outbox: every outbound message, queued with the change that causes it.

Mail is rendered and queued inside the same store transaction as the state
change that makes it necessary, so a crash can never leave one without the
other. The outbox is drained separately, with retries and backoff.

Marking a message sent is the one step that cannot share a transaction with
the send itself. So the moment the server accepts a message, one line is
appended to `outbox-sent.log` (a single write, which survives the process
being killed; it is then fsynced against power loss) before the next message
goes out. The log is folded into the store afterwards: sent mail moves from
the `outbox` shard to `sent/<year-month>`, keeping the outbox small.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..store import Store, Transaction
from .compose import Composer, Outgoing
from .sender import Envelope, Sender

log = logging.getLogger(__name__)

SENT_LOG = "outbox-sent.log"
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=2)


@dataclass(frozen=True)
class Drained:
    """What one drain did."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0


class Outbox:
    """Queue rendered messages in store transactions; send them later, once each."""

    def __init__(self, store: Store, composer: Composer, envelope_sender: str) -> None:
        self.store = store
        self.composer = composer
        self.envelope_sender = envelope_sender

    def queue(self, transaction: Transaction, outgoing: Outgoing, now: datetime) -> str:
        """Render `outgoing` and add it to `transaction`; return its Message-ID.

        The rendered bytes are written as a content-addressed file first; if
        the transaction then fails, that file is an orphan and harmless.
        """
        message_id, data = self.composer.render(outgoing, now)
        transaction.put("outbox", "mail", message_id, {
            "message_id": message_id,
            "to": list(outgoing.to),
            "template": outgoing.template,
            "cause": outgoing.cause,
            "file": self.store.put_file("mail/out", data, f"{message_id}.eml"),
            "created_at": now.isoformat(),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now.isoformat(),
            "last_error": "",
        })
        return message_id

    def pending(self) -> list[dict]:
        done = self._logged()
        return sorted(
            (d for d in self.store.find("outbox", "mail") if d["message_id"] not in done),
            key=lambda d: d["created_at"],
        )

    def drain(self, sender: Sender, now: datetime) -> Drained:
        """Send everything due; record each result the moment it is known."""
        self.fold()
        due = [d for d in self.pending() if d["next_attempt_at"] <= now.isoformat()]
        if not due:
            return Drained()
        by_id = {d["message_id"]: d for d in due}
        envelopes = (
            Envelope(d["message_id"], self.envelope_sender, tuple(d["to"]), self.store.read_file(d["file"]))
            for d in due
        )
        sent = failed = deferred = 0
        with open(self.store.root / SENT_LOG, "a", encoding="utf-8") as sent_log:
            for delivery in sender.send_batch(envelopes):
                document = by_id[delivery.message_id]
                gave_up = not delivery.ok and now - datetime.fromisoformat(document["created_at"]) > GIVE_UP_AFTER
                if delivery.ok or delivery.permanent or gave_up:
                    status = "sent" if delivery.ok else "failed"
                    _append(sent_log, f"{delivery.message_id}\t{status}\t{now.isoformat()}\t{_one_line(delivery.error)}\n")
                    sent += delivery.ok
                    failed += not delivery.ok
                    if not delivery.ok:
                        log.warning("giving up on %s to %s: %s", delivery.message_id, document["to"], delivery.error)
                else:
                    deferred += 1
                    self._retry_later(document, delivery.error, now)
        self.fold()
        return Drained(sent=sent, failed=failed, deferred=deferred)

    def fold(self) -> None:
        """Move what the sent log records out of the outbox, then empty the log."""
        path = self.store.root / SENT_LOG
        lines = _read_lines(path)
        if not lines:
            return
        with self.store.transaction() as transaction:
            for message_id, status, at, error in lines:
                document = self.store.get("outbox", "mail", message_id)
                if document is None:
                    continue
                transaction.delete("outbox", "mail", message_id)
                transaction.put(f"sent/{at[:7]}", "mail", message_id, {**document, "status": status, "sent_at": at, "last_error": error})
        os.truncate(path, 0)

    def _logged(self) -> set[str]:
        return {line[0] for line in _read_lines(self.store.root / SENT_LOG)}

    def _retry_later(self, document: dict, error: str, now: datetime) -> None:
        attempts = document["attempts"] + 1
        delay = min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)
        log.info("will retry %s in %s: %s", document["message_id"], delay, error)
        with self.store.transaction() as transaction:
            transaction.put("outbox", "mail", document["message_id"], {
                **document,
                "attempts": attempts,
                "next_attempt_at": (now + delay).isoformat(),
                "last_error": error,
            })


def _append(sent_log, line: str) -> None:
    sent_log.write(line)
    sent_log.flush()
    os.fsync(sent_log.fileno())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _read_lines(path) -> list[tuple[str, str, str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [tuple((line.split("\t") + ["", "", ""])[:4]) for line in text.splitlines() if line.strip()]

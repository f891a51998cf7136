"""The transactional outbox: every outbound message, queued with the change that causes it.

Mail is rendered and queued inside the same store transaction as the state
change that makes it necessary, so a crash can never leave one without the
other. The outbox is drained separately, with retries and backoff.

Marking a message sent is the one step that cannot share a transaction with
the send itself. So each send is noted in the store's sent log
(`outbox-sent.log`), one line at a time, written at once outside any
transaction (in a TinyDB store a single write to a file, which survives the
process being killed, the result lines also fsynced against power loss; in
PostgreSQL a committed row, which an instance taking the office over reads):

- `committing`, just before the last byte of the message goes to the server
  (see `sender.py`); a message noted so and never answered was in the
  server's hands when the daemon stopped, and counts as sent;
- `sent` or `failed` the moment the server has answered;
- `deferred` when the server said "later" (the retry time is in the store).

The log is folded into the store afterwards: settled mail moves from the
`outbox` shard to `sent/<year-month>`, keeping the outbox small.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..store import Store, StoreError, Transaction
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

    def queue(self, transaction: Transaction, outgoing: Outgoing, now: datetime, meetings: list[str] | None = None) -> str:
        """Render `outgoing` and add it to `transaction`; return its Message-ID.

        `meetings` names the meetings the message belongs to (for their archives).

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
            "meetings": meetings or [],
        })
        return message_id

    def pending(self) -> list[dict]:
        done = _settled(self._sent_log())
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
        try:
            return self._send(sender, envelopes, by_id, now)
        except OSError as error:  # a queued message's file cannot be read; the daemon backs off and tries again
            raise StoreError(f"cannot read the mail to send from the store at {self.store.root}: {error}") from error

    def _send(self, sender: Sender, envelopes, by_id: dict[str, dict], now: datetime) -> Drained:
        sent = failed = deferred = 0

        def note(message_id: str, status: str, error: str = "", durable: bool = True) -> None:
            self.store.append_line(SENT_LOG, f"{message_id}\t{status}\t{now.isoformat()}\t{_one_line(error)}", durable)

        for delivery in sender.send_batch(envelopes, committing=lambda mid: note(mid, "committing", durable=False)):
            document = by_id[delivery.message_id]
            gave_up = not delivery.ok and now - datetime.fromisoformat(document["created_at"]) > GIVE_UP_AFTER
            if delivery.ok or delivery.permanent or gave_up:
                note(delivery.message_id, "sent" if delivery.ok else "failed", delivery.error)
                sent += delivery.ok
                failed += not delivery.ok
                if not delivery.ok:
                    log.warning("giving up on %s to %s: %s", delivery.message_id, document["to"], delivery.error)
            else:
                note(delivery.message_id, "deferred", delivery.error, durable=False)
                deferred += 1
                self._retry_later(document, delivery.error, now)
        self.fold()
        return Drained(sent=sent, failed=failed, deferred=deferred)

    def fold(self) -> None:
        """Move what the sent log records out of the outbox, then empty the log."""
        lines = self._sent_log()
        if not lines:
            return
        with self.store.transaction() as transaction:
            for message_id, (status, at, error) in _settled(lines).items():
                document = self.store.get("outbox", "mail", message_id)
                if document is None:
                    continue
                if status == "committing":
                    log.warning("%s was in the server's hands when the daemon stopped: counted as sent", message_id)
                    status, error = "sent", "the daemon stopped while the server was accepting it; counted as sent"
                transaction.delete("outbox", "mail", message_id)
                transaction.put(sent_shard(message_id, at), "mail", message_id, {**document, "status": status, "sent_at": at, "last_error": error})
        self.store.clear_lines(SENT_LOG)

    def _sent_log(self) -> list[tuple[str, str, str, str]]:
        """The sent log's lines as (message id, status, at, error)."""
        return [tuple((line.split("\t") + ["", "", ""])[:4]) for line in self.store.read_lines(SENT_LOG) if line.strip()]

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


def sent_shard(message_id: str, at: str) -> str:
    """Settled mail by month, spread over 256 shards by Message-ID: a fold rewrites small files, whatever the month's volume."""
    return f"sent/{at[:7]}/{hashlib.sha256(message_id.encode('utf-8')).hexdigest()[:2]}"


def _settled(lines: list[tuple[str, str, str, str]]) -> dict[str, tuple[str, str, str]]:
    """Each message's last word in the log, for those that need no further sending."""
    last = {message_id: (status, at, error) for message_id, status, at, error in lines}
    return {message_id: entry for message_id, entry in last.items() if entry[0] != "deferred"}


def _one_line(text: str) -> str:
    return " ".join(text.split())

"""One message, in a straight line: dedupe → understand → handle → store → move.

The order is what makes a crash harmless. The message is moved out of the
inbox only after the store has recorded it, together with every change and
every outbound message it causes (one transaction). A crash before that
commit leaves the message in the inbox to be handled afresh; a crash after
it is caught by the message log: a message whose identity is already there
is only moved, never handled again. In a backlog, the messages of a batch
share one commit (`Store.batch`), and none is moved before it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from functools import partial
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Iterator

from .mail.message import InboundMessage, MalformedMessage
from .mail.outbox import Outbox
from .mail.source import Fetched, Source
from .meetings import Office, Outcome
from .meetings.meeting import MeetingError, meeting_for_key
from .meetings.receipts import receive
from .store import StoreError, Transaction
from .understand import Context, Verdict, understand

log = logging.getLogger(__name__)

PROCESSED = "processed"
QUARANTINED = "quarantined"


@dataclass(frozen=True)
class Handled:
    """What became of one message."""

    identity: str
    status: str
    kind: str = ""
    rule: str = ""
    reason: str = ""
    for_clerk: str = ""
    duplicate: bool = False
    queued: tuple[str, ...] = ()


def log_shard(identity: str) -> str:
    """The message log is spread over 256 shards by identity, so a lookup reads one small file."""
    return f"log/{hashlib.sha256(identity.encode('utf-8')).hexdigest()[:2]}"


class Pipeline:
    """Handles messages from a source into the store and the outbox."""

    def __init__(
        self,
        office: Office,
        context: Context,
        outbox: Outbox,
        clock: Callable[[], datetime],
        size_limit: int,
    ) -> None:
        self.office = office
        self.store = office.store
        self.context = context
        self.outbox = outbox
        self.clock = clock
        self.size_limit = size_limit

    def process(self, source: Source, fetched: Iterator[Fetched], most: int = 1, seconds: float = 0.0) -> list[Handled]:
        """Handle the next fetched messages in one store write, then move each where it belongs.

        Up to `most` messages, and no more than `seconds` allow, share the
        write (a group commit): in a backlog that is what makes the service
        fast. Nothing is moved before the write, so a crash before it leaves
        every message of the batch in the inbox, to be handled afresh.
        """
        batch: list[tuple[Fetched, Handled]] = []
        deadline = time.monotonic() + seconds
        with self.store.batch():
            for item in fetched:
                batch.append((item, self.handle(item.raw, item.ref)))
                if len(batch) >= most or time.monotonic() >= deadline:
                    break
        for item, handled in batch:
            if handled.status == QUARANTINED:
                source.mark_quarantined(item.ref)
            else:
                source.mark_processed(item.ref)
        return [handled for _, handled in batch]

    def handle(self, raw: bytes, ref: str = "") -> Handled:
        """File one raw message (once) and queue what it causes; raise StoreError if the store can't be written."""
        try:
            message: InboundMessage | None = InboundMessage.parse(raw, self.size_limit)
            identity = message.identity
            reason = ""
        except MalformedMessage as error:
            message, identity, reason = None, f"sha256:{hashlib.sha256(raw).hexdigest()}", str(error)
        earlier = self.store.get(log_shard(identity), "messages", identity)
        if earlier is not None:
            log.info("already handled %s (%s); moving it again", identity, earlier["status"])
            return Handled(identity, earlier["status"], earlier["kind"], earlier["rule"], earlier["reason"], duplicate=True)
        now = self.clock()
        raw_file = self.store.put_file("mail/in", raw, "message.eml")
        files = self._file_attachments(message)
        record = partial(self._record, identity, ref, now, message, raw_file, files)
        if message is not None:
            try:
                verdict = understand(message, self.context)
                reason = _quarantine_reason(verdict)
                return record(verdict, reason, Outcome() if reason else receive(self.office, message, verdict, files, now))
            except StoreError:
                raise
            except Exception as error:  # a bug (in a rule, a step, a template) costs one message, never the daemon
                log.exception("could not handle %s", identity)
                reason = f"ระบบขัดข้องขณะจัดการข้อความนี้ (แจ้งผู้ดูแลระบบ) / internal error while handling the message: {type(error).__name__}: {error}"
        return record(None, reason, Outcome())

    def _record(self, identity: str, ref: str, now: datetime, message: InboundMessage | None, raw_file: str,
                files: list[dict[str, str]], verdict: Verdict | None, reason: str, outcome: Outcome) -> Handled:
        """Write the log entry, the outcome's documents and its mail in one transaction.

        The mail is rendered inside the transaction: if rendering fails, nothing
        is written, and the caller quarantines the message instead.
        """
        status = QUARANTINED if reason else PROCESSED
        meetings = sorted(outcome.meetings() | self._meeting_of_key(verdict))
        with self.store.transaction() as transaction:
            queued = write_outcome(transaction, self.outbox, outcome, now, meetings)
            transaction.put(log_shard(identity), "messages", identity, {
                "identity": identity,
                "received_at": now.isoformat(),
                "source_ref": ref,
                "from": message.sender if message else "",
                "subject": message.subject if message else "",
                "raw": raw_file,
                "attachments": files,
                "status": status,
                "reason": reason,
                "kind": verdict.kind if verdict else "",
                "rule": verdict.rule if verdict else "",
                "verdict": verdict.to_dict() if verdict else None,
                "for_clerk": outcome.for_clerk,
                "queued": queued,
                "meetings": meetings,
            })
        log.info("%s %s: %s%s", status, identity, verdict.kind if verdict else "-", f" ({reason})" if reason else "")
        return Handled(
            identity, status, verdict.kind if verdict else "", verdict.rule if verdict else "", reason,
            for_clerk=outcome.for_clerk, queued=tuple(queued),
        )

    def _meeting_of_key(self, verdict: Verdict | None) -> set[str]:
        """The meeting a reply key names, so an answer nobody could place is still filed with its meeting."""
        if verdict is None or verdict.reply_key is None:
            return set()
        try:
            return {meeting_for_key(self.store, verdict.reply_key.meeting)}
        except MeetingError:
            return set()

    def _file_attachments(self, message: InboundMessage | None) -> list[dict[str, str]]:
        if message is None:
            return []
        return [
            {"name": a.filename, "type": a.content_type, "file": self.store.put_file("files", a.data, a.filename)}
            for a in message.attachments
        ]


def write_outcome(transaction: Transaction, outbox: Outbox, outcome: Outcome, now: datetime, meetings: Iterable[str] = ()) -> list[str]:
    """Add an outcome's documents and mail to a transaction; return the queued Message-IDs.

    Each message is tagged with the meetings the outcome concerns, so a meeting's
    archive finds every message it sent.
    """
    for shard, table, key, document in outcome.documents:
        transaction.put(shard, table, key, document)
    tags = sorted(outcome.meetings() | set(meetings))
    return [outbox.queue(transaction, outgoing, now, tags) for outgoing in outcome.outgoing]


def _quarantine_reason(verdict: Verdict) -> str:
    """A person's message we could not read safely is kept aside; automatic mail is filed anyway."""
    if verdict.problems and not verdict.automatic:
        return "; ".join(verdict.problems)
    return ""

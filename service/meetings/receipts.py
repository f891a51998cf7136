"""Receiving a message: who must be told, and what to record, once it is understood.

This is the part of the workflow every message goes through before (and
besides) any meeting step: known senders get an acknowledgement that says
what was understood, so a mistake is caught at once by the person who made
it; unknown senders and anything no rule recognised go to the clerk; bounces
mark the failing address; automatic mail is filed and never answered
(RFC 3834), so two robots can never talk to each other forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..mail.compose import AUTO_REPLIED, Outgoing
from ..mail.message import InboundMessage
from ..understand import Verdict


@dataclass
class Outcome:
    """What handling a message changes: documents to store, mail to send, and a word for the clerk."""

    documents: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    for_clerk: str = ""


def receive(message: InboundMessage, verdict: Verdict, mailbox: str, now: datetime) -> Outcome:
    """Decide the acknowledgement and the records for one understood message."""
    outcome = Outcome()
    if verdict.bounce:
        for address in verdict.bounce.recipients:
            outcome.documents.append(("mailstatus", "bounces", address, {
                "address": address,
                "permanent": verdict.bounce.permanent,
                "last_at": now.isoformat(),
                "message": message.identity,
            }))
    if verdict.automatic:
        return outcome
    if verdict.sender is None:
        outcome.for_clerk = f"from {message.sender}, who is not in the directory; filed and not acted on"
        return outcome
    if verdict.kind == "unknown":
        outcome.for_clerk = "no rule recognised this message"
    if must_not_answer(message, mailbox):
        return outcome
    outcome.outgoing.append(acknowledgement(message, verdict, now))
    return outcome


def must_not_answer(message: InboundMessage, mailbox: str) -> bool:
    """RFC 3834's other cases: mail from ourselves, from a list, or from a null sender."""
    local = message.sender.partition("@")[0]
    ours = message.sender == mailbox or message.sender.startswith(mailbox.partition("@")[0] + "+")
    return ours or bool(message.header("List-Id")) or local in ("mailer-daemon", "postmaster", "noreply", "no-reply")


def acknowledgement(message: InboundMessage, verdict: Verdict, now: datetime) -> Outgoing:
    """The receipt that tells the sender what the service understood."""
    attendance = verdict.attendance
    return Outgoing(
        template="acknowledgement",
        to=(message.reply_to or message.sender,),
        cause=f"ack:{message.identity}",
        in_reply_to=message.message_id or "",
        references=message.references,
        auto_submitted=AUTO_REPLIED,
        context={
            "kind": verdict.kind,
            "sender_name": verdict.sender.name if verdict.sender else message.sender,
            "subject": message.subject,
            "received": now,
            "attachments": [attachment.filename for attachment in message.attachments],
            "attendance": attendance.answer if attendance else "",
            "delegate": attendance.delegate if attendance else "",
            "delegate_position": attendance.delegate_position if attendance else "",
            "reason": attendance.reason if attendance else "",
            "approved": verdict.approval.approved if verdict.approval else False,
        },
    )

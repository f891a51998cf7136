"""Receiving a message: what it changes, who must be told, once it is understood.

Every message goes through here. Known senders get an acknowledgement that
says what was understood, so a mistake is caught at once by the person who
made it; agenda submissions are filed into the meeting collecting items;
unknown senders and anything no rule recognised go to the clerk; bounces
mark the failing address; automatic mail is filed and never answered
(RFC 3834), so two robots can never talk to each other forever.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..mail.compose import AUTO_REPLIED, Outgoing
from ..mail.message import InboundMessage
from ..understand import Verdict
from . import Office, Outcome
from .approvals import ApprovalError, record_answer
from .intake import receive_submission
from .invitations import receive_attendance
from .meeting import MeetingError, load, meeting_for_key


def receive(office: Office, message: InboundMessage, verdict: Verdict, files: list[dict[str, str]], now: datetime) -> Outcome:
    """Decide the records and the acknowledgement for one understood message."""
    outcome = Outcome()
    if verdict.bounce:
        kind = "permanently" if verdict.bounce.permanent else "for now"
        outcome.for_clerk = f"mail to {', '.join(verdict.bounce.recipients) or 'an unknown address'} failed {kind}"
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
    understood: dict[str, Any] = {}
    if verdict.kind == "agenda_item":
        outcome, understood = receive_submission(office, message, verdict, files, now)
    elif verdict.kind == "attendance":
        outcome, understood = receive_attendance(office, message.identity, message.sender, verdict, now)
    elif verdict.kind == "approval":
        outcome = receive_approval(office, verdict, now)
        if outcome.for_clerk:
            understood = {"kind": "unknown"}  # not recorded: say only that the clerk will read it
    elif verdict.kind == "unknown":
        outcome.for_clerk = "no rule recognised this message"
    if not must_not_answer(message, office.mailbox):
        outcome.outgoing.append(acknowledgement(message, verdict, understood, now))
    return outcome


def receive_approval(office: Office, verdict: Verdict, now: datetime) -> Outcome:
    """An approver's answer counts only through the key sent to that very person; anything else goes to the clerk."""
    key = verdict.reply_key
    if key is None or key.purpose != "appr" or not verdict.key_matches_sender:
        return Outcome(for_clerk="an answer about a draft that did not come from the approver it was sent to")
    if verdict.approval is None:
        return Outcome(for_clerk="an approver's reply that says neither approve nor return: the clerk reads it")
    try:
        meeting = load(office.store, meeting_for_key(office.store, key.meeting))
        return record_answer(office, meeting, verdict.sender.id, verdict.approval.approved, verdict.approval.comments, now)
    except (ApprovalError, MeetingError) as error:
        return Outcome(for_clerk=f"an approver's answer that could not be recorded: {error}")


def must_not_answer(message: InboundMessage, mailbox: str) -> bool:
    """RFC 3834's cases that are not automatic mail: mail from ourselves, or from a list.

    Servers and no-reply senders are automatic mail already (rules/automated.yaml).
    """
    local, _, domain = mailbox.partition("@")
    ours = message.sender == mailbox or (message.sender.startswith(local + "+") and message.sender.endswith("@" + domain))
    return ours or bool(message.header("List-Id"))


def acknowledgement(message: InboundMessage, verdict: Verdict, understood: dict[str, Any], now: datetime) -> Outgoing:
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
            "meeting_title": "",
            "agenda_result": "",
            "section_title": "",
            "item_title": message.subject,
            "attendance_placed": True,
            **understood,
        },
    )

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
from ..understand.notes import notes_text
from .approvals import PURPOSE, ApprovalError, paper_of, record_answer
from .followups import receive_progress
from .intake import receive_submission
from .invitations import receive_attendance
from .meeting import MeetingError, load, meeting_for_key
from .minutes import after_approval, decide_objections, receive_notes, receive_objection
from .timeline import load_timeline
from ..rounds import receive as receive_round_reply


def receive(office: Office, message: InboundMessage, verdict: Verdict, files: list[dict[str, str]], now: datetime) -> Outcome:
    """Decide the records and the acknowledgement for one understood message."""
    outcome = Outcome()
    if verdict.bounce:
        outcome.for_clerk = office.note("bounce", recipients=", ".join(verdict.bounce.recipients), permanent=verdict.bounce.permanent)
        for address in verdict.bounce.recipients:
            outcome.documents.append(("mailstatus", "bounces", address, {
                "address": address,
                "permanent": verdict.bounce.permanent,
                "last_at": now.isoformat(),
                "message": message.identity,
            }))
    if verdict.automatic:
        return outcome
    if verdict.sender is None and not (verdict.kind == "notes" and message.sender.lower() == office.clerk.lower()):
        outcome.for_clerk = office.note("stranger", sender=message.sender)
        return outcome
    understood: dict[str, Any] = {}
    if verdict.kind == "agenda_item":
        outcome, understood = receive_submission(office, message, verdict, files, now)
    elif verdict.kind == "attendance":
        outcome, understood = receive_attendance(office, message.identity, message.sender, verdict, now)
    elif verdict.kind == "approval":
        outcome = receive_approval(office, verdict, now)
        if outcome.for_clerk and not outcome.documents:
            understood = {"kind": "unknown"}  # not recorded: say only that the clerk will read it
    elif verdict.kind in ("notes", "objection"):
        outcome, understood = _about_the_record(office, message, verdict, now)
    elif verdict.kind == "progress":
        outcome, understood = receive_progress(office, verdict, message.identity, now)
    elif verdict.kind == "round_reply":
        outcome, understood = receive_round_reply(office, message, verdict, files, now)
    elif verdict.kind == "unknown":
        outcome.for_clerk = office.note("unrecognised")
    if not must_not_answer(message, office.mailbox):
        outcome.outgoing.append(acknowledgement(message, verdict, understood, now))
    return outcome


def receive_approval(office: Office, verdict: Verdict, now: datetime) -> Outcome:
    """An approver's answer counts only through the key sent to that very person; anything else goes to the clerk.

    The key says which paper it answers (`appr`, `appr_minutes`, …), or that it
    is the director's decision on the objections (`decide`).
    """
    key = verdict.reply_key
    if key is None or key.purpose.split("_")[0] not in (PURPOSE, "decide") or not verdict.key_matches_sender:
        return Outcome(for_clerk=office.note("approval_not_from_approver"))
    if verdict.approval is None:
        return Outcome(for_clerk=office.note("approval_unclear"))
    try:
        meeting = load(office.store, meeting_for_key(office.store, key.meeting))
        return answer_paper(office, meeting, verdict.sender.id, key.purpose, verdict.approval.approved, verdict.approval.comments, now)
    except (ApprovalError, MeetingError) as error:
        return Outcome(for_clerk=office.note("approval_not_recorded", error=error))


def answer_paper(office: Office, meeting: dict[str, Any], person: str, purpose: str, approved: bool, comments: str,
                 now: datetime, on_paper: bool = False) -> Outcome:
    """Record an answer on a paper (by e-mail or on paper) and do what its approval sets going."""
    if purpose == "decide":
        return decide_objections(office, meeting, person, approved, comments, now, on_paper)
    paper = paper_of(purpose)
    kind = load_timeline(office.rules / "timeline.yaml").kind(meeting["kind"])
    return after_approval(office, record_answer(office, meeting, person, approved, comments, now, on_paper, paper), paper, kind, now)


def _about_the_record(office: Office, message: InboundMessage, verdict: Verdict, now: datetime) -> tuple[Outcome, dict[str, Any]]:
    """The clerk's notes, or an attendee's answer to the circulated resolutions, for the meeting the key names."""
    key = verdict.reply_key
    if key is None or key.purpose not in ("notes", "circ"):
        return Outcome(for_clerk=office.note("record_unkeyed", kind=verdict.kind)), {"kind": "unknown"}
    try:
        meeting = load(office.store, meeting_for_key(office.store, key.meeting))
    except MeetingError as error:
        return Outcome(for_clerk=office.note("about_unknown_meeting", error=error)), {"kind": "unknown"}
    if verdict.kind == "objection":
        return receive_objection(office, meeting, verdict, message.identity, now)
    text, source = notes_of(message, verdict)
    kind = load_timeline(office.rules / "timeline.yaml").kind(meeting["kind"])
    return receive_notes(office, meeting, message.sender, text, source, kind, now)


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


def notes_of(message: InboundMessage, verdict: Verdict) -> tuple[str, str]:
    """The notes' text and where it came from: the first attachment that has text, else what the clerk wrote."""
    for attachment in message.attachments:
        text = notes_text(attachment.filename, attachment.content_type, attachment.data)
        if text and text.strip():
            return text, attachment.filename
    return verdict.new_text, "e-mail"

"""Invitations and attendance: the meeting request every attendee gets, and each answer, counted.

An invitation is one e-mail per attendee with the approved papers and an iMIP
calendar request (RFC 5546/6047), so mail clients show Accept and Decline.
The calendar's UID never changes for a meeting, which is how calendar answers
find their meeting; the reply key in the Message-ID is how text answers do,
also when someone else (a secretary, a school's shared address) answers.
Every answer is kept; the latest one counts.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event, Timezone, vCalAddress, vText
from rich.table import Table

from ..directory import Entry
from ..mail.compose import OutboundAttachment, Outgoing
from ..reply_keys import ReplyKey, safe_id
from ..understand import Verdict
from . import Office, Outcome
from .meeting import MeetingError, load, meeting_for_key, shard

PRODID = "-//secretary//Thai meeting secretariat//TH"
ANSWERS = ("accepted", "declined", "tentative", "delegated")


def calendar_uid(meeting: dict[str, Any], mailbox: str) -> str:
    """The meeting's calendar UID: stable for its whole life, and naming the meeting."""
    return f"{meeting['id']}@{mailbox.partition('@')[2]}"


def meeting_of_uid(uid: str) -> str:
    return uid.partition("@")[0]


def meeting_request(office: Office, meeting: dict[str, Any], attendee: Entry, sequence: int, now: datetime, method: str = "REQUEST") -> str:
    """The iCalendar text of a request (or a cancellation) for one attendee."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(Timezone.from_tzid(office.details.timezone))
    event = Event()
    event.add("uid", calendar_uid(meeting, office.mailbox))
    event.add("sequence", sequence)
    event.add("dtstamp", now.astimezone(timezone.utc))
    # In the named zone, so that TZID matches the VTIMEZONE above (a bare +07:00 offset would not).
    zone = ZoneInfo(office.details.timezone)
    event.add("dtstart", datetime.fromisoformat(meeting["start"]).astimezone(zone))
    event.add("dtend", datetime.fromisoformat(meeting["end"]).astimezone(zone))
    event.add("summary", f"{meeting['title']} ครั้งที่ {meeting['number']}/{meeting['year_be']}")
    event.add("location", meeting["place"])
    event.add("description", f"{office.details.name}\nตอบรับได้ด้วยปุ่มตอบรับในปฏิทิน หรือตอบกลับอีเมลนี้")
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{office.mailbox}")
    organizer.params["cn"] = vText(office.details.name)
    event.add("organizer", organizer)
    person = vCalAddress(f"mailto:{attendee.email}")
    person.params["cn"] = vText(attendee.name)
    person.params["role"] = vText("REQ-PARTICIPANT")
    person.params["partstat"] = vText("NEEDS-ACTION")
    person.params["rsvp"] = vText("TRUE")
    event.add("attendee", person)
    if method == "REQUEST":
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", event["summary"])
        alarm.add("trigger", timedelta(minutes=-60))
        event.add_component(alarm)
    calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")


def invite(office: Office, meeting: dict[str, Any], now: datetime) -> Outcome | None:
    """Send every attendee the meeting request with the approved papers; None while no draft is approved."""
    approved = [d for d in meeting.get("drafts", []) if d["status"] == "approved"]
    if not approved:
        return None
    papers = approved[-1]["papers"]
    attachments = tuple(
        OutboundAttachment(name, "application/pdf", office.store.read_file(papers[key]))
        for key, name in (("invitation_pdf", "หนังสือเชิญประชุม.pdf"), ("pack_pdf", "ระเบียบวาระการประชุม.pdf"))
        if key in papers
    )
    outcome, gone = Outcome(), []
    for person_id in meeting["attendees"]:
        attendee = office.directory.get(person_id)
        if attendee is None:
            gone.append(person_id)
            continue
        outcome.outgoing.append(_letter(office, meeting, attendee, "invitation", "inv", now, attachments))
        outcome.documents.append((shard(meeting["id"]), "invitees", person_id, {
            "person": person_id, "email": attendee.email, "status": "no_answer", "answers": [], "invited_at": now.isoformat(),
        }))
    if gone:
        outcome.for_clerk = office.note("not_invited", people=", ".join(gone))
    return outcome


def ask_to_confirm(office: Office, meeting: dict[str, Any], now: datetime) -> Outcome:
    """Ask everyone who has not answered to confirm, with the same calendar request again."""
    silent = [i for i in office.store.find(shard(meeting["id"]), "invitees") if i["status"] == "no_answer"]
    outcome = Outcome()
    for invitee in silent:
        attendee = office.directory.get(invitee["person"])
        if attendee is not None:
            outcome.outgoing.append(_letter(office, meeting, attendee, "confirmation", "conf", now, ()))
    return outcome


def record_answer(office: Office, meeting: dict[str, Any], person_id: str, answer: dict[str, Any]) -> Outcome:
    """Keep an answer in the invitee's history; the latest one is the invitee's status."""
    invitee = office.store.get(shard(meeting["id"]), "invitees", person_id)
    if invitee is None:
        return Outcome(for_clerk=office.note("answer_not_invited", person=person_id, meeting=meeting["id"]))
    outcome = Outcome(documents=[(shard(meeting["id"]), "invitees", person_id, {
        **invitee, "status": answer["answer"] if answer["answer"] in ANSWERS else invitee["status"],
        "answers": [*invitee["answers"], answer],
    })])
    if answer["answer"] == "counter":
        start = datetime.fromisoformat(answer["proposed_start"]) if answer.get("proposed_start") else None
        if start is not None and start.tzinfo is not None:  # a floating time (no zone) is the office's own already
            start = start.astimezone(ZoneInfo(office.details.timezone))
        who = office.directory.get(person_id)
        outcome.for_clerk = office.note("proposes_time", person=who.name if who else person_id, meeting=meeting["id"], start=start)
    return outcome


def announce_change(office: Office, meeting: dict[str, Any], changes: list[str], now: datetime, cancelled: bool = False) -> Outcome:
    """Tell everyone already invited what changed (SEQUENCE + 1), or that the meeting is cancelled (METHOD:CANCEL)."""
    outcome = Outcome()
    for invitee in office.store.find(shard(meeting["id"]), "invitees"):
        attendee = office.directory.get(invitee["person"])
        if attendee is None:
            continue
        template, method = ("cancellation", "CANCEL") if cancelled else ("update", "REQUEST")
        outcome.outgoing.append(_letter(office, meeting, attendee, template, "inv", now, (), method, {"changes": changes}))
    return outcome


def _letter(office: Office, meeting: dict[str, Any], attendee: Entry, template: str, purpose: str, now: datetime,
            attachments: tuple[OutboundAttachment, ...], method: str = "REQUEST", extra: dict[str, Any] | None = None) -> Outgoing:
    sequence = meeting.get("sequence", 0)
    return Outgoing(
        template=template,
        to=(attendee.email,),
        cause=f"{template}:{meeting['id']}:{sequence}:{attendee.id}",
        reply_key=ReplyKey(purpose, safe_id(meeting["id"]), safe_id(attendee.id)).token(office.reply_key_secret),
        context={"attendee": attendee.name, "meeting": meeting, "start": datetime.fromisoformat(meeting["start"]),
                 "end": datetime.fromisoformat(meeting["end"]), **(extra or {})},
        attachments=attachments,
        calendar=meeting_request(office, meeting, attendee, sequence, now, method),
        calendar_method=method,
    )


def receive_attendance(office: Office, message_identity: str, sender: str, verdict: Verdict, now: datetime) -> tuple[Outcome, dict[str, Any]]:
    """Count an answer to an invitation; what cannot be placed or read goes to the clerk, never guessed."""
    meeting, person_id, via = _whose_answer(office, sender, verdict)
    if meeting is None or person_id is None:
        unplaced = {"kind": "attendance" if verdict.attendance else "unknown", "attendance_placed": False}
        return Outcome(for_clerk=office.note("unplaced_attendance")), unplaced
    attendance = verdict.attendance
    if attendance is None:
        return Outcome(for_clerk=office.note("not_understood", person=sender, about="invitation", about_id=meeting["id"])), {"kind": "unknown"}
    answer = {
        "answer": attendance.answer, "delegate": attendance.delegate, "delegate_position": attendance.delegate_position,
        "reason": attendance.reason, "proposed_start": attendance.proposed_start.isoformat() if attendance.proposed_start else None,
        "rule": attendance.rule, "at": now.isoformat(), "message": message_identity, "from": sender, "via": via,
    }
    return record_answer(office, meeting, person_id, answer), {"meeting_title": f"{meeting['title']} ครั้งที่ {meeting['number']}/{meeting['year_be']}"}


def _whose_answer(office: Office, sender: str, verdict: Verdict) -> tuple[dict[str, Any] | None, str | None, str]:
    """The meeting and the invitee an answer is for: by reply key first, then by the calendar's UID and attendee."""
    key = verdict.reply_key
    if key and key.purpose in ("inv", "conf"):
        try:
            meeting = load(office.store, meeting_for_key(office.store, key.meeting))
        except MeetingError:
            return None, None, ""
        person = next((p for p in meeting["attendees"] if safe_id(p) == key.person), None)
        return meeting, person, "reply key" if verdict.key_matches_sender else f"reply key, answered from {sender}"
    attendance = verdict.attendance
    if attendance and attendance.uid:
        try:
            meeting = load(office.store, meeting_of_uid(attendance.uid))
        except MeetingError:
            return None, None, ""
        entry = office.directory.who(attendance.attendee or "") or office.directory.who(sender)
        person = entry.id if entry and entry.id in meeting["attendees"] else None
        return meeting, person, "calendar"
    return None, None, ""


def attendance_table(office: Office, meeting: dict[str, Any]) -> Table:
    """Who accepted, declined, sent whom, has not answered — with the counts as the caption."""
    invitees = {i["person"]: i for i in office.store.find(shard(meeting["id"]), "invitees")}
    table = Table(title=f"{meeting['title']} ครั้งที่ {meeting['number']}/{meeting['year_be']}: attendance")
    for column in ("attendee", "answer", "representative", "reason / note", "how"):
        table.add_column(column)
    counts: Counter[str] = Counter()
    for person_id in meeting["attendees"]:
        entry = office.directory.get(person_id)
        invitee = invitees.get(person_id, {"status": "not invited yet", "answers": []})
        last = invitee["answers"][-1] if invitee["answers"] else {}
        counts[invitee["status"]] += 1
        representative = " ".join(x for x in (last.get("delegate"), last.get("delegate_position")) if x)
        table.add_row(entry.name if entry else person_id, invitee["status"], representative, last.get("reason") or "", last.get("via", ""))
    table.caption = ", ".join(f"{status}: {count}" for status, count in sorted(counts.items())) + f" (of {len(meeting['attendees'])})"
    return table

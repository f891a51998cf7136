"""A group's message about the agenda: which meeting it is for, and what it does to the items."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..mail.message import InboundMessage
from ..rounds import answer_record, silent
from ..understand import Verdict
from . import Office, Outcome
from .agenda import group_of, intake, load_agenda_rules, read_submission
from .meeting import MeetingError, all_meetings, load, meeting_for_key, shard
from .steps import CALL


def collecting_meeting(office: Office, verdict: Verdict, today: date) -> dict[str, Any] | None:
    """The meeting a submission is for: the one its reply key names, else the only one collecting items."""
    if verdict.reply_key and verdict.reply_key.purpose == CALL:
        try:
            return load(office.store, meeting_for_key(office.store, verdict.reply_key.meeting))
        except MeetingError:
            return None
    collecting = [
        meeting for meeting in (load(office.store, m["id"]) for m in all_meetings(office.store) if m["status"] == "open")
        if "call_for_items" in meeting["done"] and today < date.fromisoformat(meeting["start"][:10])
    ]
    return collecting[0] if len(collecting) == 1 else None


def receive_submission(office: Office, message: InboundMessage, verdict: Verdict, files: list[dict[str, str]], now: datetime) -> tuple[Outcome, dict[str, Any]]:
    """File a submission into its meeting; return the outcome and what the acknowledgement should say."""
    meeting = collecting_meeting(office, verdict, now.date())
    if meeting is None:
        return Outcome(for_clerk=office.note("no_collecting_meeting")), {}
    rules = load_agenda_rules(office.rules / "agenda.yaml")
    group = group_of(verdict.sender, office.directory)
    submission = read_submission(message.subject, verdict.new_text, files, rules)
    items = {item["id"]: item for item in office.store.find(shard(meeting["id"]), "items")}
    deadline = date.fromisoformat(meeting["schedule"]["submission_deadline"])
    result, item = intake(items, group, submission, message.identity, now, deadline)
    outcome = Outcome()
    if item is not None:
        outcome.documents.append((shard(meeting["id"]), "items", item["id"], item))
    if result in ("submitted", "revised", "nothing", "withdrawn"):
        outcome.documents.append((shard(meeting["id"]), "answers", group.id, {**answer_record(group.id, result, now), "group": group.id}))
    if result == "late":
        outcome.for_clerk = office.note("late_item", group=group.name, meeting=meeting["id"])
    section = rules.sections[submission.section]
    return outcome, {
        "meeting_title": f"{meeting['title']} ครั้งที่ {meeting['number']}/{meeting['year_be']}",
        "agenda_result": result,
        "section_title": f"ระเบียบวาระที่ {section.number} {section.title}",
        "item_title": submission.title,
    }


def call_progress(office: Office, meeting: dict[str, Any]) -> dict[str, Any] | None:
    """The meeting's round while it collects items, as the digest shows every round: who answered, who not; None otherwise."""
    if "call_for_items" not in meeting["done"] or "submission_deadline" in meeting["done"]:
        return None
    groups = [g.id for g in office.directory.of_kind("group")]
    quiet = silent(groups, (a["group"] for a in office.store.find(shard(meeting["id"]), "answers")))
    return {"deadline": date.fromisoformat(meeting["schedule"]["submission_deadline"]), "total": len(groups),
            "answered": len(groups) - len(quiet), "silent": [office.directory.get(g).name for g in quiet]}

"""What the clerk can do from the command line: each a command the store's owner applies.

Every handler takes the office, the command's arguments (plain data, so a
command can wait in a file for the daemon) and the time, and returns an
`Outcome` and a sentence for the clerk.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import pmqa
from ..directory import tabular, verification
from ..documents.thai import thai_date
from . import Office, Outcome
from .agenda import assemble, load_agenda_rules
from .approvals import AGENDA, chain, purpose_of, start_chain
from . import minutes
from .continuity import carried_over
from .papers import with_new_draft
from .invitations import announce_change
from .meeting import INDEX, MeetingError, NewMeeting, create, load, shard, summary
from .timeline import load_timeline


def new_meeting(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    new = NewMeeting(**{**arguments, "start": datetime.fromisoformat(arguments["start"]), "end": datetime.fromisoformat(arguments["end"]), "attendees": tuple(arguments["attendees"])})
    timeline = load_timeline(office.rules / "timeline.yaml")
    outcome = create(office.store, timeline, office.directory, new, now)
    meeting = outcome.documents[0][3]
    return outcome, f"opened meeting {meeting['id']} with {len(meeting['attendees'])} attendees"


def approve(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """Record an approval (or a return) given on paper, marked as such; `paper` names which (the agenda by default)."""
    from .receipts import answer_paper

    meeting = load(office.store, arguments["meeting"])
    paper = arguments.get("paper") or AGENDA
    purpose = "decide" if paper == "objections" else purpose_of(paper)
    outcome = answer_paper(office, meeting, arguments["by"], purpose, arguments["approved"], arguments.get("comments", ""), now, on_paper=True)
    word = "approval" if arguments["approved"] else "return"
    on = meeting["id"] if paper == AGENDA else f"the {paper} of {meeting['id']}"
    return outcome, f"recorded the paper {word} by {arguments['by']} on {on}"


def new_draft(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """Assemble the agenda again as a new draft; once approvals have begun, the chain starts again."""
    meeting = load(office.store, arguments["meeting"])
    rules = load_agenda_rules(office.rules / "agenda.yaml")
    order = arguments.get("group_order") or [g.id for g in office.directory.of_kind("group")]
    items = office.store.find(shard(meeting["id"]), "items")
    meeting = with_new_draft(office, meeting, assemble(items, office.directory, rules, order, carried_over(office, meeting)), items, now)
    version = meeting["drafts"][-1]["version"]
    if "approvals" not in meeting["done"]:
        return Outcome(documents=[(shard(meeting["id"]), "meeting", "meeting", meeting)]), f"draft {version} of {meeting['id']} made"
    people = chain(office.directory, load_timeline(office.rules / "timeline.yaml").kind(meeting["kind"]).approvers)
    return start_chain(office, meeting, people), f"draft {version} of {meeting['id']} sent up the chain"


def decide_late(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """Accept or refuse an item that came after the deadline."""
    item = office.store.get(shard(arguments["meeting"]), "items", arguments["item"])
    if item is None or item["status"] != "held_late":
        raise MeetingError(f"no late item {arguments['item']!r} waits in {arguments['meeting']}")
    status = "accepted" if arguments["accept"] else "refused"
    updated = {**item, "status": status, "decided_at": now.isoformat()}
    return Outcome(documents=[(shard(arguments["meeting"]), "items", item["id"], updated)]), f"late item {item['id']} {status}"


def edit_item(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """Move an item to another section or give it a clearer title (the next draft shows it)."""
    item = office.store.get(shard(arguments["meeting"]), "items", arguments["item"])
    if item is None:
        raise MeetingError(f"no item {arguments['item']!r} in {arguments['meeting']}")
    sections = load_agenda_rules(office.rules / "agenda.yaml").sections
    changes = {key: arguments[key] for key in ("section", "title") if arguments.get(key)}
    if changes.get("section") and changes["section"] not in sections:
        raise MeetingError(f"no section {changes['section']!r} (known: {', '.join(sections)})")
    updated = {**item, **changes, "edited_by_clerk_at": now.isoformat()}
    return Outcome(documents=[(shard(arguments["meeting"]), "items", item["id"], updated)]), f"item {item['id']} now: {updated['section']}, {updated['title']}"


def change_meeting(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """A new time or place: the schedule of the steps not yet done follows, and everyone invited gets an update."""
    meeting = load(office.store, arguments["meeting"])
    updated = {**meeting, **{k: arguments[k] for k in ("start", "end", "place") if arguments.get(k)}}
    changes = [f"{label}: {_shown(meeting[key])} → {_shown(updated[key])}"
               for key, label in (("start", "เริ่ม"), ("end", "สิ้นสุด"), ("place", "สถานที่")) if updated[key] != meeting[key]]
    if not changes:
        raise MeetingError("nothing to change: give --start, --end or --place with a new value")
    timeline = load_timeline(office.rules / "timeline.yaml")
    schedule = {step.name: day.isoformat() for step, day in timeline.schedule(meeting["kind"], datetime.fromisoformat(updated["start"]).date())}
    updated["schedule"] = {name: meeting["schedule"][name] if name in meeting["done"] else day for name, day in schedule.items()}
    updated["sequence"] = meeting.get("sequence", 0) + 1
    outcome = announce_change(office, updated, changes, now)
    outcome.documents += [(shard(updated["id"]), "meeting", "meeting", updated), (INDEX, "meetings", updated["id"], summary(updated))]
    return outcome, f"{updated['id']} changed ({'; '.join(changes)}); {len(outcome.outgoing)} update(s) queued"


def cancel_meeting(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """Cancel a meeting: everyone invited gets METHOD:CANCEL, and its timeline stops."""
    meeting = load(office.store, arguments["meeting"])
    updated = {**meeting, "status": "cancelled", "sequence": meeting.get("sequence", 0) + 1}
    outcome = announce_change(office, updated, [arguments.get("reason") or ""], now, cancelled=True)
    outcome.documents += [(shard(updated["id"]), "meeting", "meeting", updated), (INDEX, "meetings", updated["id"], summary(updated))]
    return outcome, f"{updated['id']} cancelled; {len(outcome.outgoing)} cancellation(s) queued"


def _shown(value: str) -> str:
    """A stored value as the clerk and attendees read it (dates in the Buddhist Era)."""
    try:
        return thai_date(datetime.fromisoformat(value), "datetime")
    except ValueError:
        return value


def import_notes(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """The clerk's notes from a file: the brief resolutions (or the minutes) drafted and sent up the chain."""
    meeting = load(office.store, arguments["meeting"])
    kind = load_timeline(office.rules / "timeline.yaml").kind(meeting["kind"])
    outcome, understood = minutes.import_notes(office, meeting, arguments["text"], arguments["source"], kind, now)
    problems = "".join(f"\n  - {p}" for p in understood["notes_problems"])
    said = (f"notes of {meeting['id']}: {understood['notes_items']} item(s), "
            f"{understood['notes_resolutions']} resolution(s), {understood['notes_actions']} action(s)")
    return outcome, said + (f"; {outcome.for_clerk}" if outcome.for_clerk else "") + (f"; could not read:{problems}" if problems else "")


def pmqa_committee(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """A meeting of one of the PMQA committees, on the meeting engine, its members from rules/pmqa.yaml."""
    return new_meeting(office, pmqa.committee_meeting(office, arguments, now), now)


HANDLERS = {"meeting_new": new_meeting, "approve": approve, "new_draft": new_draft, "decide_late": decide_late, "edit_item": edit_item, "change_meeting": change_meeting,
            "cancel_meeting": cancel_meeting, "import_notes": import_notes}
#: The directory's and PMQA's commands, on the same machinery as the meetings'.
HANDLERS.update({"directory_import": tabular.apply_import, "directory_verify": verification.start, "directory_review": verification.review,
                 "directory_close": verification.close_now, "pmqa_start": pmqa.start, "pmqa_report": pmqa.report, "pmqa_committee": pmqa_committee})

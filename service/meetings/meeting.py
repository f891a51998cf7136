"""Meetings as the store keeps them: creating, listing and reading one.

Each meeting has its own shard (`meetings/<id>/meeting`), so writing to one
meeting costs the size of that meeting, not of the office's history; a small
index (`meetings/index`) lists them all for the clerk's commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..directory import Directory
from ..reply_keys import safe_id
from ..store import Store
from . import Outcome
from .timeline import Timeline

INDEX = "meetings/index"


class MeetingError(ValueError):
    """A meeting cannot be created or found; the message says why."""


@dataclass(frozen=True)
class NewMeeting:
    """What the clerk gives to open a meeting."""

    kind: str
    title: str
    number: int
    year_be: int
    start: datetime
    end: datetime
    place: str
    chair: str
    secretary: str
    attendees: tuple[str, ...]


def shard(meeting_id: str) -> str:
    return f"meetings/{meeting_id}/meeting"


def create(store: Store, timeline: Timeline, directory: Directory, new: NewMeeting, now: datetime) -> Outcome:
    """A new meeting with its schedule, as documents to store; attendee selectors are resolved now."""
    kind = timeline.kind(new.kind)
    if new.end <= new.start:
        raise MeetingError("the meeting must end after it starts")
    for role, person in (("chair", new.chair), ("secretary", new.secretary)):
        if directory.get(person) is None:
            raise MeetingError(f"the {role} {person!r} is not in the directory")
    meeting_id = f"{kind.code}{new.year_be}-{new.number}"
    if store.get(INDEX, "meetings", meeting_id):
        raise MeetingError(f"meeting {meeting_id} exists already")
    attendees = resolve_attendees(directory, new.attendees)
    schedule = {step.name: day.isoformat() for step, day in timeline.schedule(new.kind, new.start.date())}
    document = {
        "id": meeting_id,
        "kind": new.kind,
        "title": new.title,
        "number": new.number,
        "year_be": new.year_be,
        "start": new.start.isoformat(),
        "end": new.end.isoformat(),
        "place": new.place,
        "chair": new.chair,
        "secretary": new.secretary,
        "attendees": attendees,
        "schedule": schedule,
        "done": {},
        "created_at": now.isoformat(),
        "status": "open",
    }
    return Outcome(documents=[
        (shard(meeting_id), "meeting", "meeting", document),
        (INDEX, "meetings", meeting_id, summary(document)),
    ])


def resolve_attendees(directory: Directory, selectors: tuple[str, ...]) -> list[str]:
    """Directory ids from selectors: an id, `role:<role>` or `group:<group id>` (its members)."""
    found: list[str] = []
    for selector in selectors:
        kind, _, value = selector.partition(":")
        if kind == "role":
            matches = [e.id for e in directory.entries.values() if e.role == value]
        elif kind == "group":
            matches = [e.id for e in directory.entries.values() if e.group == value]
        else:
            matches = [selector] if directory.get(selector) else []
        if not matches:
            raise MeetingError(f"no one in the directory matches the attendees {selector!r}")
        found.extend(m for m in matches if m not in found)
    return found


def load(store: Store, meeting_id: str) -> dict[str, Any]:
    document = store.get(shard(meeting_id), "meeting", "meeting")
    if document is None:
        raise MeetingError(f"no meeting {meeting_id!r} (see `secretary meeting list`)")
    return document


def meeting_for_key(store: Store, key_meeting: str) -> str:
    """The id of the meeting a reply key names (keys carry ids in their safe form)."""
    for summary in all_meetings(store):
        if safe_id(summary["id"]) == key_meeting:
            return summary["id"]
    raise MeetingError(f"no meeting matches the reply key's meeting {key_meeting!r}")


def all_meetings(store: Store) -> list[dict[str, Any]]:
    return sorted(store.find(INDEX, "meetings"), key=lambda m: m["start"])


def title_of(meeting: dict[str, Any]) -> str:
    """How people name a meeting: its title and ครั้งที่ number/year."""
    return f"{meeting['title']} ครั้งที่ {meeting['number']}/{meeting['year_be']}"


def summary(document: dict[str, Any]) -> dict[str, Any]:
    return {key: document[key] for key in ("id", "kind", "title", "number", "year_be", "start", "place", "status")}

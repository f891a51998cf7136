"""The timeline's actions: what the daemon does when a step's day has come.

Each action takes the meeting as the store holds it and returns an
`Outcome` (documents to store, mail to send), or None when the step cannot
be done yet (invitations wait for an approved agenda); the caller writes the
outcome and marks the step done in one transaction, so a step is done exactly once
however often the daemon restarts. Actions are named in `rules/timeline.yaml`
(`do:`); a step whose action is not here yet stays due for the clerk to see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable

from ..mail.compose import Outgoing
from ..rounds import request, silent
from . import Office, Outcome
from .agenda import AgendaRules, assemble
from .approvals import chain, start_chain
from .continuity import carried_over
from .invitations import ask_to_confirm, invite
from .minutes import ask_for_notes as notes_request, brief_resolutions_due, close_objections as objections_close, draft_minutes, remind_notes as notes_reminder
from .papers import with_new_draft
from .preparation import prepare
from .meeting import shard
from .timeline import Kind

#: The reply-key purpose of the call for agenda items.
CALL = "call"


@dataclass(frozen=True)
class StepContext:
    """What every action may need besides the meeting."""

    office: Office
    agenda_rules: AgendaRules
    kind: Kind
    group_order: list[str]
    items: list[dict[str, Any]]
    answers: dict[str, dict[str, Any]]
    step: str
    now: datetime


def call_for_items(meeting: dict[str, Any], context: StepContext) -> Outcome:
    """Ask every group for its agenda items, with the deadline and a reply key: the meeting's round (service/rounds.py)."""
    return Outcome(outgoing=[_to_group(meeting, context, group_id, "call_for_items") for group_id in context.group_order])


def remind_groups(meeting: dict[str, Any], context: StepContext) -> Outcome:
    """Remind the groups that have sent neither an item nor "nothing this time"."""
    return Outcome(outgoing=[_to_group(meeting, context, g, "reminder") for g in silent(context.group_order, context.answers)])


def submission_deadline(meeting: dict[str, Any], context: StepContext) -> Outcome:
    """The round closes: from now on a new item is late, held for the clerk to accept or refuse."""
    names = [context.office.directory.get(g).name for g in silent(context.group_order, context.answers)]
    return Outcome(for_clerk=context.office.note("submissions_closed", silent=", ".join(names)))


def assemble_agenda(meeting: dict[str, Any], context: StepContext) -> Outcome:
    """Put the accepted items in the standard sections and keep the draft as a new version."""
    agenda = assemble(context.items, context.office.directory, context.agenda_rules, context.group_order, carried_over(context.office, meeting))
    return Outcome(documents=[(shard(meeting["id"]), "meeting", "meeting", with_new_draft(context.office, meeting, agenda, context.items, context.now))])


def approvals(meeting: dict[str, Any], context: StepContext) -> Outcome:
    """Send the newest draft agenda to the first approver of the chain."""
    return start_chain(context.office, meeting, chain(context.office.directory, context.kind.approvers))


def invitations(meeting: dict[str, Any], context: StepContext) -> Outcome | None:
    """The meeting request to every attendee, once a draft is approved (until then the step stays due)."""
    return invite(context.office, meeting, context.now)


def confirmations(meeting: dict[str, Any], context: StepContext) -> Outcome:
    """Ask those who have not answered to confirm."""
    return ask_to_confirm(context.office, meeting, context.now)


def preparation(meeting: dict[str, Any], context: StepContext) -> Outcome:
    """The sign-in sheet, name tags, catering head-count and allowance list, to the clerk."""
    return prepare(context.office, meeting, context.now)


def ask_for_notes(meeting: dict[str, Any], context: StepContext) -> Outcome:
    """The meeting day: ask the clerk for the notes, with an outline to fill in."""
    return notes_request(context.office, meeting, context.now)


def remind_notes(meeting: dict[str, Any], context: StepContext) -> Outcome:
    """Remind the clerk of the notes, unless they are in."""
    return notes_reminder(context.office, meeting, context.now)


def brief_resolutions(meeting: dict[str, Any], context: StepContext) -> Outcome:
    """Done once the notes made a draft of the brief resolutions; until then a daily reminder that they are late."""
    return brief_resolutions_due(context.office, meeting, context.now)


def close_objections(meeting: dict[str, Any], context: StepContext) -> Outcome | None:
    """After the comment window: silence is endorsement; objections go to the director."""
    return objections_close(context.office, meeting, context.now)


def minutes(meeting: dict[str, Any], context: StepContext) -> Outcome | None:
    """The minutes, once the objections are decided, up their chain."""
    return draft_minutes(context.office, meeting, context.kind, context.now)


ACTIONS: dict[str, Callable[[dict[str, Any], StepContext], Outcome | None]] = {
    "call_for_items": call_for_items,
    "remind_groups": remind_groups,
    "submission_deadline": submission_deadline,
    "assemble_agenda": assemble_agenda,
    "approvals": approvals,
    "invitations": invitations,
    "confirmations": confirmations,
    "preparation": preparation,
    "ask_for_notes": ask_for_notes,
    "remind_notes": remind_notes,
    "brief_resolutions": brief_resolutions,
    "close_objections": close_objections,
    "minutes": minutes,
}


def _to_group(meeting: dict[str, Any], context: StepContext, group_id: str, template: str) -> Outgoing:
    """One ask of the meeting's round: the round is the meeting, the recipients its groups."""
    group = context.office.directory.get(group_id)
    return request(context.office, group, purpose=CALL, round_id=meeting["id"], template=template,
                   cause=f"{context.step}:{meeting['id']}:{group_id}", context={
                       "group_name": group.name,
                       "meeting": meeting,
                       "start": datetime.fromisoformat(meeting["start"]),
                       "deadline": date.fromisoformat(meeting["schedule"]["submission_deadline"]),
                   })

"""On every tick: each open meeting's timeline steps that are due and not yet done.

Each step is written in its own transaction together with its outcome and
the mark that it is done, so a crash loses at most the step in hand (which
the next tick does again, from scratch) and nothing is ever done twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from .digest import send_digest_if_due
from .mail.outbox import Outbox
from .meetings import Office, Outcome
from .meetings.followups import SHARD, reminders_due
from .meetings.agenda import AgendaRules, load_agenda_rules
from .meetings.meeting import all_meetings, load, shard
from .meetings.steps import ACTIONS, StepContext
from .meetings.timeline import Timeline, load_timeline
from .pipeline import write_outcome
from .rounds import closing_due, reminders_due as round_reminders_due
from .store import StoreError

log = logging.getLogger(__name__)


def run_due_steps(office: Office, outbox: Outbox, now: datetime) -> list[str]:
    """Do every due step that has an action; return the names done, as `meeting:step`."""
    timeline = load_timeline(office.rules / "timeline.yaml")
    agenda_rules = load_agenda_rules(office.rules / "agenda.yaml")
    group_order = [group.id for group in office.directory.of_kind("group")]
    done: list[str] = []
    for summary in all_meetings(office.store):
        if summary["status"] != "open":
            continue
        meeting = load(office.store, summary["id"])
        try:
            done += _run_steps(office, outbox, timeline, agenda_rules, group_order, meeting, now)
        except StoreError:
            raise
        except Exception:  # a broken step stops its own meeting's timeline this tick, never the daemon
            log.exception("meeting %s: a step failed; it stays due and is tried again next tick", meeting["id"])
    for job, name in ((lambda: remind_follow_ups(office, outbox, now), "follow-up reminders"),
                      (lambda: run_rounds(office, outbox, now), "the rounds' reminders and deadlines"),
                      (lambda: send_digest(office, outbox, timeline, now), "the daily digest")):
        try:
            job()
        except StoreError:
            raise
        except Exception:  # like a step: it is tried again next tick, and the daemon goes on
            log.exception("%s failed; tried again next tick", name)
    return done


def send_digest(office: Office, outbox: Outbox, timeline: Timeline, now: datetime) -> None:
    """The clerk's digest, once a day, recorded in the same write as its mail."""
    outcome = send_digest_if_due(office, timeline, now)
    if outcome is not None:
        with office.store.transaction() as transaction:
            write_outcome(transaction, outbox, outcome, now)
        log.info("daily digest for %s: %s", now.date(), "sent" if outcome.outgoing else "not needed")


def _run_steps(office: Office, outbox: Outbox, timeline: Timeline, agenda_rules: AgendaRules, group_order: list[str],
               meeting: dict[str, Any], now: datetime) -> list[str]:
    """Do one meeting's due steps in order, each in its own transaction."""
    done: list[str] = []
    start = datetime.fromisoformat(meeting["start"]).date()
    for step in timeline.due(meeting["kind"], start, now.date(), set(meeting["done"])):
        action = ACTIONS.get(step.action)
        if action is None:
            continue
        context = StepContext(
            office=office,
            agenda_rules=agenda_rules,
            kind=timeline.kind(meeting["kind"]),
            group_order=group_order,
            items=office.store.find(shard(meeting["id"]), "items"),
            answers={a["group"]: a for a in office.store.find(shard(meeting["id"]), "answers")},
            step=step.name,
            now=now,
        )
        outcome = action(meeting, context)
        if outcome is None or (not outcome.done and not (outcome.documents or outcome.outgoing)):
            break  # not ready (e.g. no approved agenda yet): later steps wait too
        key = (shard(meeting["id"]), "meeting", "meeting")
        changed = [d for s, t, k, d in outcome.documents if (s, t, k) == key]
        outcome.documents = [entry for entry in outcome.documents if entry[:3] != key]
        meeting = {**(changed[-1] if changed else meeting)}
        if outcome.done:
            meeting["done"] = {**meeting["done"], step.name: now.isoformat()}
        if outcome.for_clerk:
            meeting["for_clerk"] = [*meeting.get("for_clerk", []), {"step": step.name, "note": outcome.for_clerk, "at": now.isoformat()}]
        with office.store.transaction() as transaction:
            write_outcome(transaction, outbox, outcome, now, [meeting["id"]])
            transaction.put(*key, meeting)
        if not outcome.done:
            log.info("meeting %s: %s waits (%d messages queued)", meeting["id"], step.name, len(outcome.outgoing))
            break
        log.info("meeting %s: %s done (%d messages queued)", meeting["id"], step.name, len(outcome.outgoing))
        done.append(f"{meeting['id']}:{step.name}")
    return done


def remind_follow_ups(office: Office, outbox: Outbox, now: datetime) -> int:
    """Remind each group of its follow-ups as their due dates near and pass; each reminder in its own transaction."""
    due = reminders_due(office, now.date())
    for action, reminder in due:
        with office.store.transaction() as transaction:
            write_outcome(transaction, outbox, Outcome(documents=[(SHARD, "actions", action["id"], action)], outgoing=[reminder]), now, [action["meeting"]])
    return len(due)


def run_rounds(office: Office, outbox: Outbox, now: datetime) -> int:
    """The office-wide rounds (verification, PMQA): reminders due, then rounds past their deadline closed; each in its own transaction."""
    due = round_reminders_due(office, now.date()) + closing_due(office, now)
    for outcome in due:
        with office.store.transaction() as transaction:
            write_outcome(transaction, outbox, outcome, now)
    return len(due)

"""Follow-ups (แบบฟอร์มติดตามงาน): the work a resolution assigns, tracked to completion.

Each `มอบหมาย` line of the clerk's notes becomes an action (group, what, due
date) when the brief resolutions are circulated. Actions live in one shard for
the whole office (`followups`), because they outlive their meeting: the group
is reminded as the due date nears and while it is overdue (the days are data,
`rules/followups.yaml`), reports progress by replying, and every action still
open is carried to ระเบียบวาระที่ ๓ of the next meeting of the kind.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..mail.compose import Outgoing
from ..reply_keys import ReplyKey, safe_id
from ..rounds import latest_reminder
from ..rulefiles import read_rule_file
from ..understand import Verdict
from . import Office, Outcome
from .meeting import MeetingError, load, meeting_for_key, title_of

SHARD = "followups"
OPEN = ("open", "in_progress", "overdue")
STATUS_WORDS = {"open": "ยังไม่รายงาน", "in_progress": "อยู่ระหว่างดำเนินการ", "overdue": "เกินกำหนด", "done": "ดำเนินการแล้ว", "delayed": "ขอขยายเวลา"}


def new_actions(office: Office, meeting: dict[str, Any], record: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The actions the notes assign, numbered within the meeting; a line whose group is unknown was reported to the clerk already."""
    actions = []
    for item in record["items"]:
        for line in item["actions"]:
            if not line["group"]:
                continue
            number = len(actions) + 1
            actions.append({
                "id": f"{meeting['id']}-{number}", "meeting": meeting["id"], "kind": meeting["kind"], "number": number,
                "meeting_title": title_of(meeting), "item": item["number"], "item_title": item["title"],
                "resolution": item["resolution"], "what": line["what"], "group": line["group"], "due": line["due"],
                "status": "open", "reports": [], "reminded": [], "created_at": now.isoformat(),
            })
    return actions


def open_actions(office: Office, kind: str | None = None) -> list[dict[str, Any]]:
    """Every action not done, oldest first; of one kind of meeting when `kind` is given."""
    found = office.store.find(SHARD, "actions", lambda a: a["status"] in OPEN and (kind is None or a["kind"] == kind))
    return sorted(found, key=lambda a: (a["created_at"], a["number"]))


@lru_cache(maxsize=4)
def reminder_days(path: Path) -> tuple[tuple[int, ...], int]:
    """Days before the due date to remind, and how often to remind while overdue."""
    data = read_rule_file(path).get("reminders") or {}
    return tuple(int(d) for d in data.get("before_days", (7, 1))), int(data.get("overdue_every_days", 7))


def reminders_due(office: Office, today: date) -> list[tuple[dict[str, Any], Outgoing]]:
    """Each open action whose latest reminder day has come and was not yet used, with the reminder to send.

    Reminder days are points in time (due − 7, due − 1, due + 7, due + 14 …);
    the latest one not after today is sent once, so a daemon that was down for
    a week sends one reminder, not seven.
    """
    before, every = reminder_days(office.rules / "followups.yaml")
    due_now = []
    for action in open_actions(office):
        if not action["due"]:
            continue
        due = date.fromisoformat(action["due"])
        point = latest_reminder(due, before, every, today)
        if point is None or point.isoformat() in action["reminded"]:
            continue
        status = "overdue" if today > due and action["status"] != "in_progress" else action["status"]
        updated = {**action, "status": status, "reminded": [*action["reminded"], point.isoformat()]}
        due_now.append((updated, _mail(office, updated, "followup_reminder", f"followup-reminder:{action['id']}:{point}", today)))
    return due_now


def _mail(office: Office, action: dict[str, Any], template: str, cause: str, today: date) -> Outgoing:
    group = office.directory.get(action["group"])
    return Outgoing(
        template=template, to=group.emails[:1] if group else (office.clerk,), cause=cause,
        reply_key=ReplyKey(f"act_{action['number']}", safe_id(action["meeting"]), safe_id(action["group"])).token(office.reply_key_secret),
        context={"action": action, "group_name": group.name if group else action["group"], "due": date.fromisoformat(action["due"]),
                 "overdue": today > date.fromisoformat(action["due"]), "status_text": STATUS_WORDS[action["status"]]},
    )


def receive_progress(office: Office, verdict: Verdict, message_identity: str, now: datetime) -> tuple[Outcome, dict[str, Any]]:
    """A group's report on its action: recorded when it comes from that group (or one of its people) about one of its actions."""
    key = verdict.reply_key
    try:
        meeting = load(office.store, meeting_for_key(office.store, key.meeting))
    except MeetingError:
        return Outcome(for_clerk=office.note("progress_meeting_unknown")), {"kind": "unknown"}
    mine = [a for a in office.store.find(SHARD, "actions", lambda a: a["meeting"] == meeting["id"]) if safe_id(a["group"]) == key.person]
    sender = verdict.sender
    if not mine or sender is None or key.person not in (safe_id(sender.id), safe_id(sender.group or "")):
        return Outcome(for_clerk=office.note("progress_not_from_group", meeting=meeting["id"], sender=sender.name if sender else "")), {"kind": "unknown"}
    progress = verdict.progress
    if progress is None:
        return Outcome(for_clerk=office.note("not_understood", person=sender.name, about="followup", about_id=meeting["id"])), {"kind": "unknown"}
    numbered = key.purpose.partition("_")[2]
    number = int(numbered) if numbered.isdigit() else progress.action
    chosen = [a for a in mine if a["number"] == number] if number else [a for a in mine if a["status"] in OPEN]
    if len(chosen) != 1:
        return Outcome(for_clerk=office.note("progress_which_action", person=sender.name, meeting=meeting["id"], count=len(mine))), {"kind": "unknown"}
    action = chosen[0]
    report = {"status": progress.status, "note": progress.note, "new_due": progress.new_due.isoformat() if progress.new_due else None,
              "rule": progress.rule, "at": now.isoformat(), "message": message_identity, "by": sender.id}
    status = "done" if progress.status == "done" else "in_progress"
    updated = {**action, "status": status, "reports": [*action["reports"], report],
               **({"due": report["new_due"], "due_was": action["due"]} if report["new_due"] else {})}
    note = office.note("progress", action=action["id"], what=action["what"], status=progress.status, new_due=progress.new_due)
    return (Outcome(documents=[(SHARD, "actions", action["id"], updated)], for_clerk=note),
            {"kind": "progress", "meeting_title": title_of(meeting), "action_what": action["what"], "progress": STATUS_WORDS[progress.status]})


def follow_up_form(office: Office, actions: list[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    """The rows of แบบฟอร์มติดตามงาน for the documents' template."""
    rows = []
    for n, action in enumerate(actions, start=1):
        group = office.directory.get(action["group"])
        last = action["reports"][-1]["note"] if action["reports"] else ""
        rows.append({"number": n, "item": f"{action['item']} {action['item_title']}".strip(), "what": action["what"],
                     "group_name": group.name if group else action["group"], "due": date.fromisoformat(action["due"]) if action["due"] else None,
                     "status": action["status"], "status_text": STATUS_WORDS[action["status"]], "progress": last})
    return rows

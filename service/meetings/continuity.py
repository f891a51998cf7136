"""What one meeting hands on to the next of its kind.

The minutes of the previous meeting are ระเบียบวาระที่ ๒ (เรื่องรับรองรายงานการประชุม),
with the approved minutes in the agenda pack, and every follow-up still open
is ระเบียบวาระที่ ๓ (เรื่องสืบเนื่อง), saying who was to do what by when and what
they last reported. Both are worked out from the store when the agenda is
assembled, so they are always as the store has them then.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..documents.thai import thai_date
from . import Office
from .approvals import drafts_of
from .followups import STATUS_WORDS, open_actions
from .meeting import all_meetings, load

ENDORSE_MINUTES = 2
CONTINUED = 3


def previous_meeting(office: Office, meeting: dict[str, Any]) -> dict[str, Any] | None:
    """The last meeting of the same kind before this one that was not cancelled."""
    earlier = [m for m in all_meetings(office.store)
               if m["kind"] == meeting["kind"] and m["start"] < meeting["start"] and m["status"] != "cancelled" and m["id"] != meeting["id"]]
    return load(office.store, earlier[-1]["id"]) if earlier else None


def carried_over(office: Office, meeting: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """Agenda entries by section number: the previous minutes to endorse, the open follow-ups."""
    carried: dict[int, list[dict[str, Any]]] = {}
    previous = previous_meeting(office, meeting)
    if previous is not None:
        carried[ENDORSE_MINUTES] = [_minutes_entry(previous)]
    followups = [_followup_entry(office, action) for action in open_actions(office, meeting["kind"]) if action["meeting"] != meeting["id"]]
    if followups:
        carried[CONTINUED] = followups
    return carried


def _minutes_entry(previous: dict[str, Any]) -> dict[str, Any]:
    drafts = drafts_of(previous, "minutes")
    approved = [d for d in drafts if d["status"] == "approved"]
    when = thai_date(date.fromisoformat(previous["start"][:10]), "weekday")
    if approved:
        pdf, state = approved[-1].get("final", approved[-1]["papers"]).get("minutes_pdf"), "รายละเอียดตามเอกสารแนบ"
    elif drafts:
        pdf, state = drafts[-1]["papers"].get("minutes_pdf"), "(ร่าง อยู่ระหว่างเสนอผู้บังคับบัญชาพิจารณา)"
    else:
        pdf, state = None, "(อยู่ระหว่างจัดทำ)"
    return {"title": f"รับรองรายงานการ{previous['title'].removeprefix('การ')} ครั้งที่ {previous['number']}/{previous['year_be']}",
            "text": f"ประชุมเมื่อ{when} ณ {previous['place']} {state}", "pdf": pdf, "from_meeting": previous["id"]}


def _followup_entry(office: Office, action: dict[str, Any]) -> dict[str, Any]:
    group = office.directory.get(action["group"])
    due = thai_date(date.fromisoformat(action["due"]), "date") if action["due"] else "-"
    last = action["reports"][-1]["note"] if action["reports"] else ""
    lines = [f"มติ ({action['meeting_title']} ระเบียบวาระที่ {action['item']}): {action['resolution']}",
             f"มอบหมาย {group.name if group else action['group']}: {action['what']} กำหนดเสร็จ {due}",
             f"สถานะ: {STATUS_WORDS[action['status']]}" + (f" — {last}" if last else "")]
    return {"title": action["item_title"] or action["what"], "text": "\n".join(lines),
            "presenter": group.name if group else "", "action": action["id"], "from_meeting": action["meeting"]}

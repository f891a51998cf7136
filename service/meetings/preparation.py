"""The day before (seed step 9): sign-in sheet, name tags, catering head-count, allowance list.

The papers are rendered from who has answered what, in the office's order
(groups first, in the directory's order, then schools and everyone else),
and sent to the clerk, who prints them. Rates come from `rules/costs.yaml`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..documents.filing import keep
from ..mail.compose import OutboundAttachment, Outgoing
from ..store import original_name
from . import Office, Outcome
from .costs import expected_attendees, load_costs, summarise_costs
from .meeting import shard
from .papers import documents_folder

PAPERS = ("signin", "name_tags", "catering", "allowances")


def prepare(office: Office, meeting: dict[str, Any], now: datetime) -> Outcome:
    """Render the preparation papers and send them to the clerk."""
    from ..documents.render import render_document  # WeasyPrint loads only when rendering

    people = attendance_list(office, meeting)
    start, end = datetime.fromisoformat(meeting["start"]), datetime.fromisoformat(meeting["end"])
    entitled = [{"name": p["delegate_name"] or p["name"], "position": p["delegate_position"] or p["position"], "role": p["role"]}
                for p in people if p["status"] in ("accepted", "delegated")]
    costs = summarise_costs(load_costs(office.rules / "costs.yaml"), meeting["kind"], start, end,
                            expected_attendees(people, count_tentative=True), entitled)
    context = {
        "office": {"name": office.details.name, "thai_digits": office.details.thai_digits},
        "meeting": {**meeting, "start": start, "end": end},
        "people": people, "costs": costs, "thai": office.details.thai_digits,
        "list_declined": True, "count_tentative": True,
    }
    rendered = {name: render_document(name, context, office.templates) for name in PAPERS}
    papers = {f"{name}_{extension}": path for name, files in rendered.items()
              for extension, path in keep(office.store, documents_folder(meeting), name, pdf=files.pdf, docx=files.docx).items()}
    updated = {**meeting, "preparation": {**papers, "at": now.isoformat()}}
    return Outcome(
        documents=[(shard(meeting["id"]), "meeting", "meeting", updated)],
        outgoing=[Outgoing(
            template="preparation",
            to=(office.clerk,),
            cause=f"preparation:{meeting['id']}:{meeting.get('sequence', 0)}",
            context={"meeting": meeting, "start": start, "people": people, "costs": costs},
            attachments=tuple(OutboundAttachment(original_name(papers[f"{name}_pdf"]), "application/pdf", files.pdf)
                              for name, files in rendered.items()),
        )],
    )


def attendance_list(office: Office, meeting: dict[str, Any]) -> list[dict[str, Any]]:
    """Every attendee with their latest answer, in the office's order of groups, then everyone else."""
    invitees = {i["person"]: i for i in office.store.find(shard(meeting["id"]), "invitees")}
    groups = [g.id for g in office.directory.of_kind("group")]
    order = {person_id: n for n, person_id in enumerate(office.directory.entries)}
    people = []
    for person_id in meeting["attendees"]:
        entry = office.directory.get(person_id)
        if entry is None:
            continue
        invitee = invitees.get(person_id, {"status": "no_answer", "answers": []})
        last = invitee["answers"][-1] if invitee["answers"] else {}
        people.append({
            "id": person_id, "name": entry.name, "position": entry.position, "group": entry.group,
            "status": invitee["status"], "delegate_name": last.get("delegate") or "",
            "delegate_position": last.get("delegate_position") or "", "reason": last.get("reason") or "",
            "role": "chair" if person_id == meeting["chair"] else "secretary" if person_id == meeting["secretary"] else "member",
        })
    return sorted(people, key=lambda p: (groups.index(p["group"]) if p["group"] in groups else len(groups), order[p["id"]]))

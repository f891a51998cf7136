"""A draft's papers: the agenda and the invitation letter, rendered into the meeting's folder.

The meeting logic decides what the papers say (the assembled agenda, who
signs, to whom); the words of the letter are a template
(`templates/documents/invitation_letter.yaml.j2`) and the layout is the
documents' templates. Every draft's papers are kept in the store, as
`agenda-vN`, `invitation-vN` and `pack-vN` in the meeting's documents folder
(`documents.filing`).
"""

from __future__ import annotations

from datetime import datetime
from io import BytesIO
from typing import Any

import yaml

from ..documents.environment import environment
from ..documents.filing import keep
from . import Office
from .approvals import AGENDA, drafts_of, with_drafts


def with_new_draft(office: Office, meeting: dict[str, Any], agenda: list[dict[str, Any]], items: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The meeting with a new draft of its agenda, its papers rendered and kept."""
    drafts = meeting.get("drafts", [])
    papers = render_papers(office, meeting, agenda, items, now)
    draft = {"version": len(drafts) + 1, "agenda": agenda, "papers": papers, "at": now.isoformat(), "status": "draft"}
    return {**meeting, "drafts": [*drafts, draft]}


def render_papers(office: Office, meeting: dict[str, Any], agenda: list[dict[str, Any]], items: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """Render the agenda, the invitation letter and the agenda pack and keep them; their paths in the store."""
    # Imported here: WeasyPrint takes half a second to load, and a restarted daemon should be back at once.
    from ..documents.render import render_document, render_pack

    context = papers_context(office, meeting, agenda, now)
    agenda_files = render_document("agenda", context, office.templates)
    letter_files = render_document("invitation", context, office.templates)
    attachments, unreadable = pack_attachments(office, agenda, items)
    pack = render_pack(agenda_files.pdf, attachments, templates=office.templates, thai_digits=office.details.thai_digits)
    folder = documents_folder(meeting)
    agenda_paths = keep(office.store, folder, "agenda", pdf=agenda_files.pdf, docx=agenda_files.docx)
    letter_paths = keep(office.store, folder, "invitation", pdf=letter_files.pdf, docx=letter_files.docx)
    return {
        "agenda_pdf": agenda_paths["pdf"],
        "agenda_docx": agenda_paths["docx"],
        "invitation_pdf": letter_paths["pdf"],
        "invitation_docx": letter_paths["docx"],
        "pack_pdf": keep(office.store, folder, "pack", pdf=pack)["pdf"],
        "not_in_pack": unreadable,
    }


def documents_folder(meeting: dict[str, Any]) -> str:
    """Where the store keeps the meeting's rendered papers."""
    return f"meetings/{meeting['id']}/documents"


def pack_attachments(office: Office, agenda: list[dict[str, Any]], items: list[dict[str, Any]]) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The items' PDF attachments in agenda order, each titled with its item number; and those that are no readable PDF."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    by_id = {item["id"]: item for item in items}
    found, unreadable = [], []
    for entry in _items_in_order(agenda):
        if entry.get("pdf"):  # the previous meeting's minutes, to be endorsed
            found.append((f"{entry['number']} {entry['title']}", office.store.read_file(entry["pdf"])))
        for attachment in by_id.get(entry.get("item"), {}).get("attachments", []):
            if not attachment["name"].lower().endswith(".pdf"):
                continue
            try:
                data = office.store.read_file(attachment["file"])
                PdfReader(BytesIO(data)).pages[0]
            except (PdfReadError, OSError, IndexError, ValueError) as error:
                unreadable.append(f"{attachment['name']}: {error}")
                continue
            found.append((f"{entry['number']} {attachment['name']}", data))
    return found, unreadable


def _items_in_order(entries: list[dict[str, Any]]):
    for entry in entries:
        if entry.get("item") or entry.get("pdf"):
            yield entry
        yield from _items_in_order(entry.get("entries", []))


def papers_context(office: Office, meeting: dict[str, Any], agenda: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The plain data the document templates render."""
    details = office.details
    start = datetime.fromisoformat(meeting["start"])
    chair = office.directory.get(meeting["chair"])
    office_data = {
        "name": details.name, "short_name": details.short_name, "address": details.address, "code": details.code,
        "phone": details.phone, "fax": details.fax, "email": details.mailbox, "mailbox": details.mailbox,
        "unit": details.unit, "thai_digits": details.thai_digits, "emblem": details.emblem,
    }
    meeting_data = {**meeting, "start": start, "end": datetime.fromisoformat(meeting["end"]),
                    "chair": person(office, meeting["chair"]), "secretary": person(office, meeting["secretary"])}
    words = environment(office.templates).get_template("documents/invitation_letter.yaml.j2").render(
        office=office_data, meeting=meeting_data, start=start, addressees=_addressees(office, meeting),
    )
    letter = {
        **yaml.safe_load(words),
        "number": "",
        "date": now.date(),
        "signer": {"name": chair.name if chair else "", "position": chair.position if chair else ""},
        "contact": {"unit": details.unit, "phone": details.phone, "fax": details.fax, "email": details.mailbox},
    }
    return {"office": office_data, "meeting": meeting_data, "agenda": agenda, "letter": letter, "thai": details.thai_digits}


def person(office: Office, person_id: str) -> dict[str, str]:
    """Name and position, as papers print them (the id when the directory no longer knows the person)."""
    entry = office.directory.get(person_id)
    return {"name": entry.name if entry else person_id, "position": entry.position if entry else ""}


def _addressees(office: Office, meeting: dict[str, Any]) -> str:
    """เรียน: the attendees' positions in short when they are many, the one person's when one."""
    people = [office.directory.get(a) for a in meeting["attendees"]]
    if len(people) == 1 and people[0]:
        return people[0].position or people[0].name
    return "ผู้เข้าร่วมประชุมทุกท่าน"


def render_paper(office: Office, meeting: dict[str, Any], name: str, context: dict[str, Any]) -> dict[str, str]:
    """Render any document template and keep it with the meeting's papers; its `<name>_pdf` and `<name>_docx` paths in the store.

    The context adds to what every paper gets (the office, the meeting with its chair and secretary).
    """
    from ..documents.render import render_document  # WeasyPrint loads only when rendering

    full = {**papers_context(office, meeting, [], datetime.fromisoformat(meeting["start"])), **context}
    files = render_document(name, full, office.templates)
    paths = keep(office.store, documents_folder(meeting), name, pdf=files.pdf, docx=files.docx)
    return {f"{name}_{extension}": path for extension, path in paths.items()}


def new_draft(office: Office, meeting: dict[str, Any], paper: str, template: str, context: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The meeting with the next draft of a paper (brief resolutions, minutes, an order), rendered from `template`."""
    drafts = drafts_of(meeting, paper)
    draft = {"version": len(drafts) + 1, "at": now.isoformat(), "status": "draft", "title": context["paper_title"],
             "record": (meeting.get("records") or [{}])[-1].get("version"), "papers": render_paper(office, meeting, template, context)}
    return with_drafts(meeting, paper, [*drafts, draft])


def approved_agenda(meeting: dict[str, Any]) -> list[dict[str, Any]]:
    """The agenda the meeting followed: the approved draft, else the newest."""
    drafts = drafts_of(meeting, AGENDA)
    approved = [d for d in drafts if d["status"] == "approved"]
    return (approved or drafts or [{"agenda": []}])[-1]["agenda"]


def agenda_entries(agenda: list[dict[str, Any]]):
    """Every numbered entry of an agenda, sections included, depth first, numbers as text."""
    for entry in agenda:
        yield {**entry, "number": str(entry["number"])}
        yield from agenda_entries(entry.get("entries", []))

"""After the meeting (seed steps 11–12): the clerk's notes, the brief resolutions, their circulation, objections, the minutes.

The line runs: on the meeting day the clerk is asked for the notes (an outline
to fill in, prefilled with the agenda and who sent apologies); the notes come
back by reply or `secretary minutes import`; from them the brief resolutions
(มติที่ประชุมโดยย่อ) are drafted at once and go up their chain; approved, they
are circulated to those present for endorsement within `objection_days`, and to
every group for action; objections are recorded, and when the window closes,
silence counts as endorsement and the objections go to the office director,
whose decision shapes the minutes (รายงานการประชุม), which then go up their own
chain and become item ๒ of the next meeting of the kind (see continuity.py).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from ..mail.compose import OutboundAttachment, Outgoing
from ..reply_keys import ReplyKey, safe_id
from ..store import original_name
from ..understand import Verdict
from ..understand.notes import Notes, read_notes
from . import Office, Outcome
from .approvals import AGENDA, chain, drafts_of, start_chain, with_drafts
from .followups import SHARD as FOLLOWUPS, follow_up_form, new_actions
from .meeting import shard, title_of
from .orders import draft_orders, issue_order
from .papers import agenda_entries, approved_agenda, new_draft, person as person_on_paper, render_paper
from .timeline import Kind, load_timeline

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
RESOLUTIONS = "resolutions"
MINUTES = "minutes"
CLERK = "clerk"


# --- the clerk's notes --------------------------------------------------------------------

def ask_for_notes(office: Office, meeting: dict[str, Any], now: datetime) -> Outcome:
    """On the meeting day: ask the clerk for the notes, with an outline to fill in and send back."""
    return Outcome(outgoing=[_to_clerk_for_notes(office, meeting, "notes_request", f"notes-request:{meeting['id']}")])


def remind_notes(office: Office, meeting: dict[str, Any], now: datetime) -> Outcome:
    """As the brief resolutions' day nears, remind the clerk, unless the notes are in."""
    if meeting.get("records"):
        return Outcome()
    return Outcome(outgoing=[_to_clerk_for_notes(office, meeting, "notes_reminder", f"notes-reminder:{meeting['id']}:{now.date()}")])


def brief_resolutions_due(office: Office, meeting: dict[str, Any], now: datetime) -> Outcome:
    """The brief resolutions' day: done when they are drafted; until then the clerk is reminded once a day that they are late."""
    if meeting.get("records"):
        return Outcome()
    if meeting.get("notes_late_reminded") == now.date().isoformat():
        return Outcome(done=False)
    return Outcome(
        documents=[(shard(meeting["id"]), "meeting", "meeting", {**meeting, "notes_late_reminded": now.date().isoformat()})],
        outgoing=[_to_clerk_for_notes(office, meeting, "notes_late", f"notes-late:{meeting['id']}:{now.date()}")],
        for_clerk=office.note("notes_late", meeting=meeting["id"], due=date.fromisoformat(meeting["schedule"]["brief_resolutions"])),
        done=False,
    )


def receive_notes(office: Office, meeting: dict[str, Any], sender: str, text: str, source: str, kind: Kind, now: datetime) -> tuple[Outcome, dict[str, Any]]:
    """The notes by e-mail: only the clerk's address may send them."""
    if sender.lower() != office.clerk.lower():
        return Outcome(for_clerk=office.note("notes_not_from_clerk", meeting=meeting["id"], sender=sender)), {"kind": "unknown"}
    return import_notes(office, meeting, text, source, kind, now)


def import_notes(office: Office, meeting: dict[str, Any], text: str, source: str, kind: Kind, now: datetime) -> tuple[Outcome, dict[str, Any]]:
    """File a version of the notes; draft the brief resolutions (or, once they are out, the minutes) and send them up the chain."""
    notes = read_notes(text, office.directory, datetime.fromisoformat(meeting["start"]).date(), office.rules)
    understood = {"kind": "notes", "notes_items": len(notes.items), "notes_resolutions": sum(1 for i in notes.items if i.resolution),
                  "notes_actions": sum(len(i.actions) for i in notes.items), "notes_problems": list(notes.problems),
                  "meeting_title": title_of(meeting)}
    if not notes.items:
        return Outcome(for_clerk=office.note("notes_without_items", meeting=meeting["id"])), understood
    records = meeting.get("records", [])
    record = _record(meeting, notes, len(records) + 1, source, now)
    updated = {**meeting, "records": [*records, record]}
    if _approved(updated, RESOLUTIONS):
        paper, document = MINUTES, (_minutes_context if _minutes_started(updated) else None)
    else:
        paper, document = RESOLUTIONS, _resolutions_context
    if document is None:  # the minutes are not drafted yet: they will use this version
        return Outcome(documents=[(shard(meeting["id"]), "meeting", "meeting", updated)]), understood
    updated = new_draft(office, updated, paper, paper, document(office, updated, draft=True), now)
    return start_chain(office, updated, chain(office.directory, kind.chain_for(paper)), paper), understood


def _record(meeting: dict[str, Any], notes: Notes, version: int, source: str, now: datetime) -> dict[str, Any]:
    """The notes as plain data, each item titled from the agenda when the notes give only its number."""
    titles = {entry["number"]: entry["title"] for entry in agenda_entries(approved_agenda(meeting))}
    return {
        "version": version, "at": now.isoformat(), "source": source,
        "began": notes.began, "ended": notes.ended, "recorder": notes.recorder,
        "absent": [{"text": p.text, "id": p.id, "reason": p.reason} for p in notes.absent],
        "present": [{"text": p.text, "id": p.id, "reason": p.reason} for p in notes.present],
        "guests": list(notes.guests),
        "items": [{
            "number": item.number, "title": item.title or titles.get(item.number, ""), "discussion": item.discussion,
            "resolution": item.resolution,
            "actions": [{"group": a.group_id, "group_text": a.group_text, "what": a.what,
                         "due": a.due.isoformat() if a.due else None, "due_text": a.due_text} for a in item.actions],
            "orders": [{"kind": o.kind, "title": o.title, "groups": list(o.groups), "body": o.body} for o in item.orders],
        } for item in notes.items],
        "problems": list(notes.problems),
    }


# --- the papers ---------------------------------------------------------------------------

def _approved(meeting: dict[str, Any], paper: str) -> bool:
    return any(d["status"] == "approved" for d in drafts_of(meeting, paper))


def _minutes_started(meeting: dict[str, Any]) -> bool:
    return bool(drafts_of(meeting, MINUTES))


def _without_kind_word(meeting: dict[str, Any]) -> str:
    """The meeting's name after "มติที่ประชุม" or "รายงานการประชุม", which say การประชุม already."""
    return title_of(meeting).removeprefix("การประชุม")


def _resolutions_context(office: Office, meeting: dict[str, Any], draft: bool) -> dict[str, Any]:
    record = meeting["records"][-1]
    items = [{**item, "actions": [{"group_name": _name(office, a["group"]) or a["group_text"], "what": a["what"],
                                   "due": date.fromisoformat(a["due"]) if a["due"] else None} for a in item["actions"]]}
             for item in record["items"] if item["resolution"]]
    return {"paper_title": f"มติที่ประชุม{_without_kind_word(meeting)} (โดยย่อ)", "items": items, "draft": draft,
            "signer": person_on_paper(office, meeting["chair"]),
            "objection_days": load_timeline(office.rules / "timeline.yaml").kind(meeting["kind"]).objection_days}


def _minutes_context(office: Office, meeting: dict[str, Any], draft: bool) -> dict[str, Any]:
    """รายงานการประชุม: who came and who did not, and the agenda with what was said and resolved, objections applied."""
    record = meeting["records"][-1]
    by_number = {item["number"]: item for item in record["items"]}
    corrections = {o["item"]: o["change"] for o in _accepted_objections(meeting) if o["item"]}

    def minuted(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result = []
        for entry in entries:
            number = str(entry["number"])
            noted = by_number.get(number, {})
            result.append({**entry, "discussion": noted.get("discussion") or "", "entries": minuted(entry.get("entries", [])),
                           "resolution": corrections.get(number) or noted.get("resolution") or ""})
        return result

    agenda = minuted(approved_agenda(meeting))
    listed = {str(e["number"]) for e in agenda_entries(agenda)}
    extra = [item for item in record["items"] if item["number"] not in listed]  # raised at the meeting (เรื่องอื่น ๆ)
    for item in extra:
        section = next((s for s in agenda if str(s["number"]) == item["number"].split(".")[0]), None)
        entry = {"number": item["number"], "title": item["title"], "discussion": item["discussion"],
                 "resolution": corrections.get(item["number"]) or item["resolution"], "entries": []}
        if section is not None:
            section["entries"] = [*section.get("entries", []), entry]
    present, absent = attendance_record(office, meeting, record)
    clerk = office.directory.who(office.clerk)
    recorder = {"name": record["recorder"], "position": ""} if record["recorder"] or not clerk else person_on_paper(office, clerk.id)
    return {
        "paper_title": f"รายงานการประชุม{_without_kind_word(meeting)}", "draft": draft, "agenda": agenda,
        "present": present, "absent": absent,
        "guests": [{"name": guest, "position": ""} for guest in record["guests"]],
        "began": record["began"], "ended": record["ended"],
        "recorder": recorder, "checker": person_on_paper(office, meeting["secretary"]),
    }


def attendance_record(office: Office, meeting: dict[str, Any], record: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """ผู้มาประชุม and ผู้ไม่มาประชุม, in the office's order.

    When the notes list who was absent (or present), they decide: the clerk
    took them from the sign-in sheet. Otherwise the invitation answers do, and
    whoever never answered is counted absent, "ไม่ได้แจ้ง".
    """
    from .preparation import attendance_list

    said_absent = {p["id"]: p["reason"] for p in record["absent"] if p["id"]}
    said_present = {p["id"] for p in record["present"] if p["id"]}
    notes_decide = bool(record["absent"] or record["present"])
    present, absent = [], []
    for person in attendance_list(office, meeting):
        if notes_decide:
            away = person["id"] in said_absent or (person["status"] == "declined" and person["id"] not in said_present)
        else:
            away = person["status"] in ("declined", "no_answer")
        if away:
            reason = said_absent.get(person["id"]) or person["reason"] or ("ไม่ได้แจ้ง" if person["status"] == "no_answer" else "")
            absent.append({"id": person["id"], "name": person["name"], "position": person["position"], "reason": reason})
        elif person["status"] == "delegated" and person["delegate_name"]:
            present.append({"id": person["id"], "name": person["delegate_name"], "position": person["delegate_position"],
                            "note": f"ประชุมแทน {person['name']}"})
        else:
            present.append({"id": person["id"], "name": person["name"], "position": person["position"], "note": ""})
    named = {p["id"] for p in [*present, *absent]}
    absent += [{"id": "", "name": p["text"], "position": "", "reason": p["reason"]} for p in record["absent"] if not p["id"] or p["id"] not in named]
    return present, absent


def _name(office: Office, entry_id: str | None) -> str:
    entry = office.directory.get(entry_id or "")
    return entry.name if entry else ""


# --- approved: what each paper's approval sets going ---------------------------------------

def after_approval(office: Office, outcome: Outcome, paper: str, kind: Kind, now: datetime) -> Outcome:
    """When the last approver has approved: circulate the resolutions, file the final minutes, issue an order."""
    meeting = next((d for s, t, k, d in outcome.documents if t == "meeting" and s.startswith("meetings/")), None)
    if meeting is None or drafts_of(meeting, paper)[-1]["status"] != "approved" or paper == AGENDA:
        return outcome
    if paper == RESOLUTIONS:
        follow = circulate(office, meeting, kind, now)
    elif paper == MINUTES:
        follow = _finalise(office, meeting, MINUTES, _minutes_context, now)
    else:
        follow = issue_order(office, meeting, paper, now)
    others = [d for d in outcome.documents if d[3] is not meeting]
    return Outcome(documents=[*others, *follow.documents], outgoing=[*outcome.outgoing, *follow.outgoing],
                   for_clerk="; ".join(n for n in (outcome.for_clerk, follow.for_clerk) if n))


def _finalise(office: Office, meeting: dict[str, Any], paper: str, document, now: datetime) -> Outcome:
    """The approved paper rendered once more without the draft mark: the copy that is circulated and filed."""
    drafts = drafts_of(meeting, paper)
    final = {**drafts[-1], "final": render_paper(office, meeting, paper, document(office, meeting, draft=False))}
    updated = with_drafts(meeting, paper, [*drafts[:-1], final])
    return Outcome(documents=[(shard(meeting["id"]), "meeting", "meeting", updated)])


def circulate(office: Office, meeting: dict[str, Any], kind: Kind, now: datetime) -> Outcome:
    """The approved brief resolutions to those present, for endorsement, and to every group, for action."""
    outcome = _finalise(office, meeting, RESOLUTIONS, _resolutions_context, now)
    meeting = outcome.documents[0][3]
    final = drafts_of(meeting, RESOLUTIONS)[-1]["final"]
    window_ends = now.date() + timedelta(days=kind.objection_days)
    form = render_paper(office, meeting, "objection_form", {"person_name": ""})
    pdf = OutboundAttachment(f"มติที่ประชุมโดยย่อ-{meeting['id']}.pdf", "application/pdf", office.store.read_file(final["resolutions_pdf"]))
    forms = (OutboundAttachment("แบบฟอร์มแจ้งความเห็นเกี่ยวกับมติที่ประชุม.docx", DOCX, office.store.read_file(form["objection_form_docx"])),
             OutboundAttachment("แบบฟอร์มแจ้งความเห็นเกี่ยวกับมติที่ประชุม.pdf", "application/pdf", office.store.read_file(form["objection_form_pdf"])))
    record = meeting["records"][-1]
    present, _ = attendance_record(office, meeting, record)
    context = {"meeting": meeting, "start": datetime.fromisoformat(meeting["start"]), "window_ends": window_ends,
               "items": [i for i in record["items"] if i["resolution"]]}
    for person in present:
        entry = office.directory.get(person["id"])
        if entry is None:
            continue
        outcome.outgoing.append(Outgoing(
            template="resolutions_circulated", to=entry.emails[:1], cause=f"circulate:{meeting['id']}:{entry.id}",
            reply_key=ReplyKey("circ", safe_id(meeting["id"]), safe_id(entry.id)).token(office.reply_key_secret),
            context={**context, "person": entry.name}, attachments=(pdf, *forms),
        ))
        outcome.documents.append((shard(meeting["id"]), "endorsements", entry.id, {"person": entry.id, "status": "waiting", "answers": []}))
    actions = new_actions(office, meeting, record, now)
    outcome.documents += [(FOLLOWUPS, "actions", a["id"], a) for a in actions]
    with_form: tuple[OutboundAttachment, ...] = (pdf,)
    action_form: dict[str, str] = {}
    if actions:
        action_form = render_paper(office, meeting, "followups", {"group_name": "", "actions": follow_up_form(office, actions, now.date()), "as_of": now.date()})
        with_form = (pdf, OutboundAttachment("แบบฟอร์มติดตามงาน.pdf", "application/pdf", office.store.read_file(action_form["followups_pdf"])))
    for group in office.directory.of_kind("group"):
        mine = [a for a in actions if a["group"] == group.id]
        outcome.outgoing.append(Outgoing(
            template="resolutions_for_action", to=group.emails[:1], cause=f"for-action:{meeting['id']}:{group.id}",
            reply_key=ReplyKey("act", safe_id(meeting["id"]), safe_id(group.id)).token(office.reply_key_secret) if mine else "",
            context={**context, "group_name": group.name, "actions": [{**a, "due": date.fromisoformat(a["due"]) if a["due"] else None} for a in mine]},
            attachments=with_form if mine else (pdf,),
        ))
    meeting = {**meeting, "circulated": {"at": now.isoformat(), "window_ends": window_ends.isoformat(), "forms": {**form, **action_form}}}
    meeting, requests = draft_orders(office, meeting, record, kind, now)
    outcome.documents[0] = (shard(meeting["id"]), "meeting", "meeting", meeting)
    outcome.outgoing += requests
    return outcome


# --- objections ---------------------------------------------------------------------------

def receive_objection(office: Office, meeting: dict[str, Any], verdict: Verdict, message_identity: str, now: datetime) -> tuple[Outcome, dict[str, Any]]:
    """An attendee's answer to the circulated resolutions: an endorsement, or objections to record for the director."""
    person = verdict.sender.id if verdict.sender else ""
    endorsement = office.store.get(shard(meeting["id"]), "endorsements", person) if verdict.key_matches_sender else None
    if endorsement is None:
        return Outcome(for_clerk=office.note("circulated_not_from_attendee", meeting=meeting["id"])), {"kind": "unknown"}
    if meeting.get("objection_review") is not None:
        return (Outcome(for_clerk=office.note("circulated_after_compiled", person=_name(office, person), meeting=meeting["id"])),
                {"kind": "unknown"})
    reading = verdict.objection
    if reading is None:
        return (Outcome(for_clerk=office.note("not_understood", person=_name(office, person), about="resolutions", about_id=meeting["id"])),
                {"kind": "unknown"})
    answer = {"at": now.isoformat(), "message": message_identity, "rule": reading.rule}
    outcome = Outcome()
    if reading.points:
        status = "objected"
        for n, point in enumerate(reading.points, start=len(endorsement["answers"]) + 1):
            outcome.documents.append((shard(meeting["id"]), "objections", f"{person}-{n}", {
                "person": person, "item": point.item, "change": point.change, "reason": point.reason, "source": point.source,
                "at": now.isoformat(), "message": message_identity, "late": now.date().isoformat() > meeting["circulated"]["window_ends"],
            }))
    else:
        status = "endorsed"
    outcome.documents.append((shard(meeting["id"]), "endorsements", person, {**endorsement, "status": status, "answers": [*endorsement["answers"], answer]}))
    titles = {i["number"]: i["title"] for i in meeting["records"][-1]["items"]}
    return outcome, {"kind": "objection", "endorses": not reading.points, "meeting_title": title_of(meeting),
                     "points": [{"item": p.item, "title": titles.get(p.item, ""), "change": p.change, "reason": p.reason} for p in reading.points]}


def close_objections(office: Office, meeting: dict[str, Any], now: datetime) -> Outcome | None:
    """When the window has closed: silence is endorsement, and the objections go to the office director to decide."""
    circulated = meeting.get("circulated")
    if not circulated or now.date().isoformat() <= circulated["window_ends"]:
        return None
    outcome = Outcome()
    for endorsement in office.store.find(shard(meeting["id"]), "endorsements"):
        if endorsement["status"] == "waiting":
            outcome.documents.append((shard(meeting["id"]), "endorsements", endorsement["person"], {**endorsement, "status": "endorsed_by_silence"}))
    objections = sorted(office.store.find(shard(meeting["id"]), "objections"), key=lambda o: o["at"])
    if not objections:
        updated = {**meeting, "objection_review": {"numbers": {}, "decided": True, "accepted": [], "at": now.isoformat()}}
        outcome.documents.insert(0, (shard(meeting["id"]), "meeting", "meeting", updated))
        return outcome
    director = chain(office.directory, ("office_director",))[0]
    numbered = {str(n): o["_key"] for n, o in enumerate(objections, start=1)}
    titles = {i["number"]: i for i in meeting["records"][-1]["items"]}
    endorsements = office.store.find(shard(meeting["id"]), "endorsements")
    listed = [{"number": n, "person_name": _name(office, o["person"]), "item": f"{o['item']} {titles.get(o['item'], {}).get('title', '')}".strip(),
               "resolution": titles.get(o["item"], {}).get("resolution", ""), "change": o["change"], "reason": o["reason"],
               "at": datetime.fromisoformat(o["at"])} for n, o in enumerate(objections, start=1)]
    papers = render_paper(office, meeting, "objections", {
        "objections": listed, "window_ends": date.fromisoformat(circulated["window_ends"]),
        "endorsed": sum(1 for e in endorsements if e["status"] == "endorsed"),
        "silent": sum(1 for e in endorsements if e["status"] == "waiting"),
    })
    updated = {**meeting, "objection_review": {"numbers": numbered, "decided": False, "by": director.id, "papers": papers, "at": now.isoformat()}}
    outcome.documents.insert(0, (shard(meeting["id"]), "meeting", "meeting", updated))
    outcome.outgoing.append(Outgoing(
        template="objections_compiled", to=director.emails[:1], cause=f"objections:{meeting['id']}",
        reply_key=ReplyKey("decide", safe_id(meeting["id"]), safe_id(director.id)).token(office.reply_key_secret),
        context={"meeting": updated, "start": datetime.fromisoformat(meeting["start"]), "director": director.name, "objections": listed},
        attachments=(OutboundAttachment(original_name(papers["objections_pdf"]), "application/pdf", office.store.read_file(papers["objections_pdf"])),),
    ))
    return outcome


NUMBERS = re.compile(r"[0-9๐-๙]+")


def decide_objections(office: Office, meeting: dict[str, Any], director_id: str, approved: bool, comments: str, now: datetime,
                      on_paper: bool = False) -> Outcome:
    """The director's decision: "เห็นชอบทุกข้อ" accepts all, "เห็นชอบข้อ 1, 3" those, "ไม่เห็นชอบ" none ("ไม่เห็นชอบข้อ 2": all but 2)."""
    from ..documents.thai import arabic_digits

    review = meeting.get("objection_review") or {}
    if review.get("decided", True) or review.get("by") != director_id:
        return Outcome(for_clerk=office.note("decision_not_asked", meeting=meeting["id"], director=_name(office, director_id) or director_id))
    named = [n for n in NUMBERS.findall(arabic_digits(comments)) if n in review["numbers"]]
    if approved:
        accepted = named or list(review["numbers"])
    else:
        accepted = [n for n in review["numbers"] if named and n not in named]
    decided = {**review, "decided": True, "accepted": [review["numbers"][n] for n in accepted], "comments": comments,
               "at_decided": now.isoformat(), "on_paper": on_paper}
    return Outcome(
        documents=[(shard(meeting["id"]), "meeting", "meeting", {**meeting, "objection_review": decided})],
        for_clerk=office.note("objections_decided", accepted=len(accepted), asked=len(review["numbers"]), meeting=meeting["id"]),
    )


def _accepted_objections(meeting: dict[str, Any]) -> list[dict[str, Any]]:
    """The objections the director accepted, kept on the meeting when the minutes are first drafted."""
    return meeting.get("accepted_objections", [])


def draft_minutes(office: Office, meeting: dict[str, Any], kind: Kind, now: datetime) -> Outcome | None:
    """The minutes' day: drafted once the resolutions are out and the objections decided; then up their chain."""
    review = meeting.get("objection_review")
    if not meeting.get("records") or not meeting.get("circulated") or not review or not review.get("decided"):
        return None
    accepted = [office.store.get(shard(meeting["id"]), "objections", key) for key in review["accepted"]]
    meeting = {**meeting, "accepted_objections": [o for o in accepted if o]}
    updated = new_draft(office, meeting, MINUTES, MINUTES, _minutes_context(office, meeting, draft=True), now)
    return start_chain(office, updated, chain(office.directory, kind.chain_for(MINUTES)), MINUTES)


# --- mail to the clerk ----------------------------------------------------------------------

def _to_clerk_for_notes(office: Office, meeting: dict[str, Any], template: str, cause: str) -> Outgoing:
    """A request or reminder for the notes, with the outline to fill in; the reply key makes the clerk's answer the notes."""
    from ..documents.environment import environment

    outline = environment(office.templates).get_template("documents/notes.txt.j2").render(notes_outline(office, meeting))
    return Outgoing(
        template=template, to=(office.clerk,), cause=cause,
        reply_key=ReplyKey("notes", safe_id(meeting["id"]), CLERK).token(office.reply_key_secret),
        context={"meeting": meeting, "start": datetime.fromisoformat(meeting["start"]), "outline": outline,
                 "due": date.fromisoformat(meeting["schedule"]["brief_resolutions"])},
        attachments=(OutboundAttachment(f"บันทึกการประชุม-{meeting['id']}.txt", "text/plain", outline.encode("utf-8")),),
    )


def notes_outline(office: Office, meeting: dict[str, Any]) -> dict[str, Any]:
    """What the notes outline is prefilled with: the agenda's items and those who sent apologies or never answered."""
    from .preparation import attendance_list

    people = attendance_list(office, meeting)
    return {
        "meeting": meeting, "start": datetime.fromisoformat(meeting["start"]),
        "entries": [e for e in agenda_entries(approved_agenda(meeting)) if not e.get("entries") or "." not in e["number"]],
        "absent": [p for p in people if p["status"] in ("declined", "no_answer")],
        "recorder": office.directory.who(office.clerk),
    }

"""The verification round (seed ๓): every school and agency checks its record by reply.

Each is sent its record as the office has it, as a form to return or answer in
a sentence (a round of service/rounds.py, days in rules/rounds.yaml). A reply
that confirms the record moves its last-verified date at once; a correction
waits for the clerk (`secretary directory review`) and, approved, changes the
record, its history keeping the old values and the message they came from.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from ..mail.compose import OutboundAttachment
from ..meetings import Office, Outcome
from ..rounds import Reply, RoundError, Use, close as close_round, open_round, round_settings, rounds
from ..understand.corrections import FIELDS, form_labels, read_corrections
from ..understand.notes import notes_text
from . import DirectoryError, Entry, is_address
from .records import SHARD, changed, verified_today, write_entry

USE = "verification"
FORM_NAME = "แบบตรวจสอบข้อมูลพื้นฐาน.txt"


def start(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """A new verification round to every school and agency (the kinds in rules/rounds.yaml), or those named."""
    office.directory.refresh()
    settings = round_settings(office.rules, USE)
    kinds = arguments.get("kinds") or settings.extra.get("kinds", ["school", "agency"])
    recipients = arguments.get("ids") or [e.id for kind in kinds for e in office.directory.of_kind(kind)]
    if not recipients:
        raise RoundError(f"no one in the directory of the kinds {', '.join(kinds)} to ask")
    if any(r["status"] == "open" for r in rounds(office, USE)):
        raise RoundError("a verification round is open already")
    deadline = date.fromisoformat(arguments["deadline"]) if arguments.get("deadline") else now.date() + timedelta(days=settings.deadline_days)
    round_id = arguments.get("id") or f"verify-{now:%Y%m%d}"
    outcome = open_round(office, USE, round_id, [(r, "") for r in recipients], deadline, now)
    return outcome, f"verification round {round_id} started: {len(recipients)} asked to check their record by {deadline.isoformat()}"


def form_lines(office: Office, entry: Entry) -> list[tuple[str, str]]:
    """The record as the form shows it: (label, value) for each field a reply may correct."""
    labels = form_labels(office.rules)
    return [(labels[f], _shown(entry, f)) for f in FIELDS if f in labels and (f != "position" or entry.kind == "person")]


def _shown(entry: Entry, name: str) -> str:
    value = getattr(entry, name)
    return ", ".join(value) if isinstance(value, tuple) else value


def _mail(office: Office, head: dict[str, Any], ask: dict[str, Any]) -> tuple[dict[str, Any], tuple[OutboundAttachment, ...]]:
    entry = office.directory.get(ask["recipient"])
    lines = form_lines(office, entry)
    form = "".join(f"{label}: {value}\n" for label, value in lines)
    return {"entry": entry, "form": lines}, (OutboundAttachment(FORM_NAME, "text/plain", form.encode("utf-8")),)


def _reply(office: Office, head: dict[str, Any], ask: dict[str, Any], reply: Reply, now: datetime) -> tuple[Outcome, dict[str, Any], dict[str, Any]]:
    """Read the reply: a confirmation is recorded now, corrections wait for the clerk, anything else goes to the clerk."""
    entry = office.directory.get(ask["recipient"])
    returned = [notes_text(a.filename, a.content_type, a.data) or "" for a in reply.message.attachments]
    read = read_corrections("\n".join([reply.verdict.new_text, *returned]), office.rules)
    changes = {f: v for f, v in read.values.items() if _shown(changed(entry, {f: v}), f) != _shown(entry, f)}
    unusable = "emails" in changes and not all(is_address(a) for a in changed(entry, {"emails": changes["emails"]}).emails)
    if unusable:
        del changes["emails"]  # not an address to send to: the clerk reads the reply
    by = reply.verdict.sender.id if reply.verdict.sender else ask["recipient"]
    source = f"{head['id']}: reply {reply.message.identity}"
    if changes:
        number = len(office.store.find(SHARD, "corrections")) + 1
        correction = {"id": str(number), "round": head["id"], "record": entry.id, "name": entry.name, "changes": changes,
                      "was": {f: _shown(entry, f) for f in changes}, "rules": list(read.rules), "by": by,
                      "message": reply.message.identity, "at": now.isoformat(), "status": "pending"}
        labels = form_labels(office.rules)
        said = "; ".join(f"{labels.get(f, f)}: {correction['was'][f]!r} → {v!r}" for f, v in changes.items())
        outcome = Outcome(documents=[(SHARD, "corrections", correction["id"], correction)],
                          for_clerk=office.note("correction_asked", name=entry.name, changes=said, bad_address=unusable))
        return outcome, {"result": "corrections", "correction": correction["id"], "rules": list(read.rules)}, {
            "corrections": [{"field": labels.get(f, f), "was": correction["was"][f], "now": v} for f, v in changes.items()],
            "confirmed": False}
    # The form sent back unchanged confirms the record; lines that only repeat it in the text may be quoted history.
    if not unusable and (read.confirmed or (read.values and any(t.strip() for t in returned))):
        outcome = Outcome(documents=verified_today(office.store, entry, now, by, source))
        return outcome, {"result": "confirmed", "rules": list(read.rules)}, {"corrections": [], "confirmed": True}
    outcome = Outcome(for_clerk=office.note("not_understood", person=entry.name, about="verification", about_id=head["id"]))
    return outcome, {"result": "unclear", "rules": []}, {"kind": "unknown"}


def _close(office: Office, head: dict[str, Any], asks: list[dict[str, Any]], now: datetime) -> Outcome:
    silent = [office.directory.get(a["recipient"]) for a in asks if not a["answers"]]
    waiting = _summary(office, head, asks)["pending_corrections"]
    return Outcome(for_clerk=office.note("verification_closed", round=head["id"], answered=len(asks) - len(silent), asked=len(asks),
                                         waiting=waiting, silent=", ".join(e.name for e in silent if e)))


def pending(office: Office) -> list[dict[str, Any]]:
    return sorted(office.store.find(SHARD, "corrections", lambda c: c["status"] == "pending"), key=lambda c: int(c["id"]))


def review(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """The clerk's decision on pending corrections: approved ones change their record (history kept), rejected ones are marked."""
    office.directory.refresh()
    outcome, said = Outcome(), []
    approve = arguments["decision"] == "approve"
    applied: dict[str, list[dict[str, Any]]] = {}  # by record: two corrections of one record make one change, in order
    for correction_id in arguments["ids"]:
        correction = office.store.get(SHARD, "corrections", correction_id)
        if correction is None or correction["status"] != "pending":
            raise DirectoryError(f"no pending correction {correction_id}")
        decided = {**correction, "status": "approved" if approve else "rejected", "decided_at": now.isoformat(), "decided_by": arguments.get("by", "clerk")}
        outcome.documents.append((SHARD, "corrections", correction_id, decided))
        if approve:
            applied.setdefault(correction["record"], []).append(decided)
        said.append(f"{correction_id} ({correction['name']}) {decided['status']}")
    for record, corrections in applied.items():
        entry = office.directory.get(record)
        if entry is None:
            raise DirectoryError(f"correction {corrections[0]['id']}: {record} is no longer in the directory")
        new = changed(entry, {f: v for c in corrections for f, v in c["changes"].items()})
        source = "; ".join(f"correction {c['id']} ({c['round']}, reply {c['message']})" for c in corrections) + f", approved by {corrections[0]['decided_by']}"
        outcome.documents += write_entry(office.store, entry, new, now, corrections[-1]["by"], source, verified=now.date())
    return outcome, "; ".join(said) or "nothing to decide"


def close_now(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """Close the open verification round before its deadline."""
    head = next((r for r in rounds(office, USE) if r["status"] == "open"), None)
    if head is None:
        raise RoundError("no verification round is open")
    outcome = close_round(office, head, now)
    return outcome, outcome.for_clerk


def _summary(office: Office, head: dict[str, Any], asks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"pending_corrections": sum(1 for c in pending(office) if c["round"] == head["id"])}


VERIFICATION = Use(name=USE, mail=_mail, reply=_reply, close=_close, summary=_summary)

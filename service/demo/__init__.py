"""`secretary demo`: the whole service on the embedded default, with realistic sample mail.

It writes a starter configuration into a folder, then plays two acts on a
local Maildir and a folder of outgoing .eml files:

1. The mail loop: the sample messages in `messages/` (Thai and English: an
   agenda item with a PDF, free-text and calendar answers, a delegation, an
   out-of-office reply, a bounce, an unknown sender, a broken message).
2. A meeting's whole life in simulated time (`meeting.yaml`): the clerk opens
   a meeting, the call for items goes out, groups submit (one revised, one
   late, one "nothing this time", one stranger), reminders go out, the agenda
   is assembled and goes up the approval chain, is returned with comments,
   redrafted and approved; invitations go out and are answered; after the
   meeting the clerk's notes come in, the brief resolutions are approved and
   circulated, an attendee objects, an order is signed and numbered, a group
   reports progress, the director accepts the objection, the minutes are
   approved; and the meeting's file is archived (folder, index and ISO image).
3. The office's other two jobs (`rounds.yaml`, `rounds.py`): a verification
   round of the directory and a PMQA self-assessment round, on the same
   machinery as the call for agenda items.

It shows what the service understood and did, and where everything is.
"""

from __future__ import annotations

import email
import email.policy
import tempfile
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from icalendar import Calendar
from rich.console import Console
from rich.table import Table

from ..commands import apply
from ..config import DEFAULT_CONFIG, Settings, load, write_starter
from ..daemon import Daemon, build, make_sender, make_source
from ..mail.maildir import deliver
from ..meetings.clerk import HANDLERS
from ..archive import export_meeting
from ..meetings.approvals import drafts_of
from ..meetings.invitations import attendance_table
from ..meetings.meeting import load as load_meeting
from ..pipeline import Handled
from ..store import original_name

HERE = Path(__file__).parent
MESSAGES = HERE / "messages"
#: A one-page Thai PDF that the demo's submissions carry, so the agenda pack has real pages.
SAMPLE_PDF = HERE / "attachments" / "แผนปฏิบัติการ.pdf"
#: The demo plays the meeting's life up to this many days after the meeting day.
LAST_DAY = 19


class SimulatedClock:
    """The demo's clock: the daemon reads it, the demo moves it on."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def run_demo(folder: Path | None, console: Console) -> int:
    folder = Path(folder or tempfile.mkdtemp(prefix="secretary-demo-")).resolve()
    write_starter(folder, "สำนักงานเขตพื้นที่การศึกษาประถมศึกษาตัวอย่าง เขต ๑", "meeting@office.example.go.th", "clerk@office.example.go.th")
    settings = load(folder / DEFAULT_CONFIG)
    mail_loop(settings, console)
    meeting_id = a_meeting(settings, console)
    office = build(settings, exclusive=False).office
    archived = export_meeting(office.store, meeting_id, folder / "archive", iso=True, directory=office.directory)
    office.store.close()
    from .rounds import the_rounds  # it builds on this module's helpers

    the_rounds(settings, console, datetime.fromisoformat(_meeting(settings, meeting_id)["start"]) + timedelta(days=LAST_DAY + 1))
    outgoing = sorted(settings.sender.path.glob("*.eml"))
    console.print(
        f"\nThe office folder:      {folder}\n"
        f"The store (แฟ้ม):        {settings.store}\n"
        f"Outgoing mail ({len(outgoing)} .eml): {settings.sender.path}\n"
        f"Handled messages:       {settings.source.path / '.Processed' / 'cur'}\n"
        f"Quarantine:             {settings.source.path / '.Quarantine' / 'cur'}\n"
        f"The meeting's archive:  {archived.folder} ({archived.files} files, {archived.bytes / 1e6:.1f} MB; "
        f"CD image {archived.iso.name}, exported in {archived.seconds:.1f} s)\n"
        f"Try: secretary -c {folder / DEFAULT_CONFIG} meeting show {meeting_id}\n"
        f"     secretary explain {MESSAGES / '03-attendance-thai-delegate.eml'}"
    )
    return 0


def mail_loop(settings: Settings, console: Console) -> None:
    """Act one: the sample messages through the daemon, and what it made of each."""
    samples = sorted(MESSAGES.glob("*.eml"))
    for sample in samples:
        deliver(settings.source.path, sample.read_bytes(), sample.stem)
    console.print(f"Delivered {len(samples)} sample messages into {settings.source.path}")
    daemon = Daemon(build(settings), make_source(settings), make_sender(settings))
    with console.status("The daemon is working through the mailbox…"):
        daemon.run(once=True)
    table = Table(title="Act 1 — what the service understood")
    for column in ("message", "kind", "rule", "went to", "note"):
        table.add_column(column)
    for sample, handled in zip(samples, daemon.handled):
        table.add_row(sample.stem, handled.kind or "-", handled.rule or "-", handled.status, _describe(handled, kind=False))
    console.print(table)


def a_meeting(settings: Settings, console: Console) -> str:
    """Act two: a meeting from the call for items to its approved minutes, day by day in simulated time."""
    script = yaml.safe_load((HERE / "meeting.yaml").read_text(encoding="utf-8"))
    zone = ZoneInfo(settings.office.timezone)
    today = datetime.now(zone).replace(hour=8, minute=0, second=0, microsecond=0)
    meeting_day = today + timedelta(days=28 + (2 - today.weekday()) % 7)  # a Wednesday four weeks or more away
    start = meeting_day.replace(hour=script["meeting"]["hour"])
    clock = SimulatedClock(start - timedelta(days=22))
    plan = {k: v for k, v in script["meeting"].items() if k not in ("hour", "hours")}
    service = build(settings, clock=clock)
    said = apply(service.office, service.outbox, HANDLERS, "meeting_new", {
        **plan, "year_be": start.year + 543, "start": start.isoformat(),
        "end": (start + timedelta(hours=script["meeting"]["hours"])).isoformat(),
    }, clock())
    service.office.store.close()
    meeting_id = said.split()[2]
    table = Table(title=f"Act 2 — meeting {meeting_id}, day by day (T = {start.date().isoformat()})")
    for column in ("day", "what happened"):
        table.add_column(column)
    for offset in range(-21, LAST_DAY + 1):
        clock.now = start.replace(hour=8) + timedelta(days=offset)
        for entry in (e for e in script["mail"] if e["day"] == offset):
            deliver(settings.source.path, _reply(settings, entry, clock.now), "demo")
        daemon = Daemon(build(settings, clock=clock), make_source(settings), make_sender(settings))
        daemon.run(once=True)
        events = [_describe(h) for h in daemon.handled]
        for entry in (e for e in script["clerk"] if e["day"] == offset):
            service = build(settings, clock=clock)
            events.append("clerk: " + apply(service.office, service.outbox, HANDLERS, entry["command"], {"meeting": meeting_id, **entry["arguments"]}, clock()))
            service.office.store.close()
        done = [step for step, at in _meeting(settings, meeting_id)["done"].items() if at.startswith(clock.now.date().isoformat())]
        if events or done:
            table.add_row(f"T{offset:+d}" if offset else "T", "\n".join([*(f"step: {s}" for s in done), *events]))
    console.print(table)
    draft = _meeting(settings, meeting_id)["drafts"][-1]
    console.print(f"Draft {draft['version']} of the agenda: {draft['status']} by " + ", ".join(a["by"] + (" (on paper)" if a["on_paper"] else "") for a in draft["answers"]))
    papers = ", ".join(original_name(path) for key, path in draft["papers"].items() if key != "not_in_pack")
    console.print(f"Its papers ({papers}) are kept in the store under {settings.store / 'meetings' / meeting_id / 'documents'}, "
                  "and in the meeting's archive under their names")
    service = build(settings, exclusive=False)
    console.print(attendance_table(service.office, _meeting(settings, meeting_id)))
    meeting = _meeting(settings, meeting_id)
    for paper in ("resolutions", "minutes", *sorted(p for p in meeting.get("papers", {}) if p.startswith("order"))):
        for draft in drafts_of(meeting, paper)[-1:]:
            console.print(f"{draft['title']}: {draft['status']}" + (f" (ที่ {draft['number']})" if draft.get("number") else ""))
    return meeting_id


def _describe(handled: Handled, kind: bool = True) -> str:
    automatic = handled.kind in ("auto_reply", "bounce") and "filed, never answered"
    notes = [n for n in (handled.reason, handled.for_clerk and f"for the clerk: {handled.for_clerk}", handled.queued and "acknowledged", automatic) if n]
    return (f"{handled.kind}: " if kind else "") + "; ".join(notes)


def _meeting(settings: Settings, meeting_id: str) -> dict:
    service = build(settings, exclusive=False)
    return load_meeting(service.office.store, meeting_id)


def _reply(settings: Settings, entry: dict, now: datetime) -> bytes:
    """A person's message as their mail client would send it, answering our latest mail to them."""
    mail = EmailMessage()
    mail["From"] = entry["from"]
    mail["To"] = settings.office.mailbox
    mail["Date"] = format_datetime(now + timedelta(hours=2))
    mail["Message-ID"] = make_msgid(domain=entry["from"].rsplit("@", 1)[1].rstrip(">"))
    answered = _latest_to(settings, entry.get("answers", ""), entry.get("about", ""))
    if answered is not None:
        mail["In-Reply-To"] = answered["Message-ID"]
        mail["References"] = answered["Message-ID"]
    mail["Subject"] = entry.get("subject") or f"Re: {answered['Subject']}"
    for name, value in entry.get("headers", {}).items():
        mail[name] = value
    mail.set_content(entry["text"])
    if entry.get("calendar"):
        mail.add_alternative(_calendar_reply(answered, entry), subtype="calendar", params={"method": "REPLY"})
    if entry.get("attachment"):
        mail.add_attachment(SAMPLE_PDF.read_bytes(), maintype="application", subtype="pdf", filename=entry["attachment"])
    if entry.get("notes"):
        mail.add_attachment(entry["notes"].encode("utf-8"), maintype="text", subtype="plain", filename="บันทึกการประชุม.txt")
    return mail.as_bytes()


def _calendar_reply(request, entry: dict) -> str:
    """What a client sends when a calendar button is pressed: the request's UID with the chosen PARTSTAT (Outlook's by default)."""
    part = next(p for p in request.walk() if p.get_content_type() == "text/calendar")
    event = Calendar.from_ical(part.get_content()).walk("VEVENT")[0]
    address = entry["from"].rsplit("<", 1)[-1].rstrip(">")
    return (
        f"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nPRODID:{entry.get('prodid', 'Microsoft Exchange Server 2010')}\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n"
        f"ATTENDEE;PARTSTAT={entry['calendar']}:mailto:{address}\r\nUID:{event['UID']}\r\nSEQUENCE:{event['SEQUENCE']}\r\n"
        f"DTSTAMP:{datetime.now().strftime('%Y%m%dT%H%M%SZ')}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _latest_to(settings: Settings, address: str, about: str = ""):
    """Our newest mail to `address` that asks for an answer (and whose subject says `about`)."""
    if not address:
        return None
    sent = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in settings.sender.path.glob("*.eml")]
    # What asks for an answer carries a reply key; people answer those, not the clerk's digest.
    mine = [m for m in sent if address in m["To"] and m["Reply-To"] and not m["Message-ID"].startswith("<digest-") and about in m["Subject"]]
    return max(mine, key=lambda m: (m["Date"].datetime, m["Message-ID"])) if mine else None

"""The `secretary` command: init, run, explain, demo."""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import logging
import os
import sys
from pathlib import Path

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from . import __version__
from .config import DEFAULT_CONFIG, PROJECT_ROOT, ConfigError, load, write_starter
from .directory import Directory, DirectoryError
from .documents.thai import thai_date
from .meetings.approvals import ApprovalError
from .meetings.meeting import MeetingError
from .mail.message import InboundMessage, MalformedMessage
from .store import StoreError
from .understand import Context, understand
from .rulefiles import RuleError
from .rounds import RoundError
from .rounds_cli import add_commands as add_round_commands

console = Console(stderr=True)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    _set_up_logging(arguments.verbose, arguments.command == "run", getattr(arguments, "offices", None) is not None)
    try:
        return arguments.handler(arguments)
    except (ConfigError, DirectoryError, RuleError, StoreError, MeetingError, ApprovalError, RoundError) as error:
        console.print(f"[bold red]error:[/] {escape(str(error))}")
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secretary", description="The email-first meeting secretariat.")
    parser.add_argument("--version", action="version", version=f"secretary {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument(
        "-c", "--config", type=Path, default=Path(os.environ.get("SECRETARY_CONFIG", DEFAULT_CONFIG)),
        help=f"the configuration file (default: $SECRETARY_CONFIG or ./{DEFAULT_CONFIG})",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="write a commented starter configuration and a sample directory")
    init.add_argument("--dir", type=Path, default=Path("."), help="where to write them (default: here)")
    init.add_argument("--office", default="สำนักงานเขตพื้นที่การศึกษาประถมศึกษาตัวอย่าง เขต ๑")
    init.add_argument("--mailbox", default="meeting@office.example.go.th")
    init.add_argument("--clerk", default="clerk@office.example.go.th")
    init.set_defaults(handler=_init)

    run = commands.add_parser("run", help="run the daemon in the foreground (logs to stderr)")
    once_or_many = run.add_mutually_exclusive_group()
    once_or_many.add_argument("--once", action="store_true", help="stop when the inbox and the outbox are empty")
    once_or_many.add_argument("--offices", type=Path, metavar="DIR",
                              help="run every office configured in DIR (one *.toml each), following the folder as it changes")
    run.set_defaults(handler=_run)

    explain = commands.add_parser("explain", help="say what a message file is, as JSON, without a daemon")
    explain.add_argument("file", type=Path)
    explain.set_defaults(handler=_explain)

    meeting = commands.add_parser("meeting", help="open, list and show meetings")
    meeting_commands = meeting.add_subparsers(dest="meeting_command", required=True)
    new = meeting_commands.add_parser("new", help="open a meeting and schedule its timeline")
    new.add_argument("--kind", required=True, help="a kind from rules/timeline.yaml, e.g. school_administrators")
    new.add_argument("--title", required=True, help="e.g. การประชุมผู้บริหารสถานศึกษา")
    new.add_argument("--number", type=int, required=True, help="the meeting's number in the year (ครั้งที่)")
    new.add_argument("--year", type=int, default=None, help="the Buddhist Era year (default: the start's)")
    new.add_argument("--start", required=True, help="e.g. 2026-12-16T09:00 (office time)")
    new.add_argument("--end", required=True, help="e.g. 2026-12-16T12:00")
    new.add_argument("--place", required=True)
    new.add_argument("--chair", required=True, help="directory id of the chair")
    new.add_argument("--secretary", required=True, help="directory id of the meeting's secretary")
    new.add_argument("--attendees", required=True, help="comma-separated: ids, role:<role>, group:<group id>")
    new.set_defaults(handler=_meeting_new)
    meeting_commands.add_parser("list", help="every meeting").set_defaults(handler=_meeting_list)
    show = meeting_commands.add_parser("show", help="one meeting with its timeline")
    show.add_argument("meeting")
    show.set_defaults(handler=_meeting_show)
    draft = meeting_commands.add_parser("assemble", help="assemble the agenda again as a new draft (restarts the approval chain)")
    draft.add_argument("meeting")
    draft.add_argument("--group-order", help="comma-separated group ids: the order of groups under each section")
    draft.set_defaults(handler=_meeting_draft)
    late = meeting_commands.add_parser("late", help="accept or refuse an item sent after the deadline")
    late.add_argument("meeting")
    late.add_argument("item", help="the item id, e.g. g-finance-1 (see meeting show)")
    late.add_argument("decision", choices=("accept", "refuse"))
    late.set_defaults(handler=_meeting_late)

    item = meeting_commands.add_parser("item", help="move an item to another section or retitle it (shown in the next draft)")
    item.add_argument("meeting")
    item.add_argument("item", help="the item id, e.g. g-policy-1")
    item.add_argument("--section", help="info, consider, continued or other (rules/agenda.yaml)")
    item.add_argument("--title")
    item.set_defaults(handler=_meeting_item)

    attendance = commands.add_parser("attendance", help="who accepted, declined, sent whom, has not answered — with counts")
    attendance.add_argument("meeting")
    attendance.set_defaults(handler=_attendance)

    change = meeting_commands.add_parser("change", help="a new time or place: everyone invited gets an update (SEQUENCE + 1)")
    change.add_argument("meeting")
    change.add_argument("--start", help="e.g. 2026-12-17T13:30 (office time)")
    change.add_argument("--end")
    change.add_argument("--place")
    change.set_defaults(handler=_meeting_change)
    cancel = meeting_commands.add_parser("cancel", help="cancel a meeting: everyone invited gets METHOD:CANCEL")
    cancel.add_argument("meeting")
    cancel.add_argument("--reason", default="")
    cancel.set_defaults(handler=_meeting_cancel)

    approve = commands.add_parser("approve", help="record an approval given on paper (marked as such)")
    approve.add_argument("meeting")
    approve.add_argument("--by", required=True, help="directory id of the approver")
    approve.add_argument("--returned", action="store_true", help="the approver returned the draft instead")
    approve.add_argument("--comments", help="the approver's comments (for --paper objections: e.g. \"เห็นชอบข้อ 1, 3\")")
    approve.add_argument("--paper", default="agenda",
                         help="agenda (default), resolutions, minutes, order_1 …, or objections (the director's decision)")

    minutes = commands.add_parser("minutes", help="after the meeting: the clerk's notes, the resolutions, objections, minutes")
    minutes_commands = minutes.add_subparsers(dest="minutes_command", required=True)
    notes = minutes_commands.add_parser("import", help="the clerk's notes from a file (.txt, .docx, .pdf): drafts the brief resolutions")
    notes.add_argument("meeting")
    notes.add_argument("file", type=Path)
    notes.set_defaults(handler=_minutes_import)
    record = minutes_commands.add_parser("show", help="the notes, the papers after the meeting, endorsements and objections")
    record.add_argument("meeting")
    record.set_defaults(handler=_minutes_show)
    followups = commands.add_parser("followups", help="the follow-up actions still open (แบบฟอร์มติดตามงาน), or all with --all")
    followups.add_argument("--all", action="store_true")
    followups.set_defaults(handler=_followups)

    status = commands.add_parser("status", help="every open meeting: its stage, next step, and what needs the clerk")
    steps = commands.add_parser("timeline", help="every step of a meeting: done, due or overdue, with Buddhist Era dates")
    steps.add_argument("meeting")
    digest = commands.add_parser("digest", help="the clerk's daily digest")
    digest.add_argument("--preview", action="store_true", required=True, help="render it to files without sending")
    digest.add_argument("--out", type=Path, default=Path("digest-preview"), help="where (default: ./digest-preview.html, .txt and .eml)")
    for command, handler in ((status, _status), (steps, _timeline), (digest, _digest)):
        command.add_argument("--at", help="as of this office time, e.g. 2026-12-14T07:30 (default: now)")
        command.set_defaults(handler=handler)
    approve.set_defaults(handler=_approve)

    demo = commands.add_parser("demo", help="run the service on a local Maildir with sample mail; no mail server needed")
    demo.add_argument("--dir", type=Path, default=None, help="where to leave everything (default: a new temporary folder)")
    demo.set_defaults(handler=_demo)

    archive = commands.add_parser("archive", help="file everything of a meeting in one folder (and an ISO image for a CD), every file checked")
    archive.add_argument("meeting")
    archive.add_argument("--out", type=Path, default=None, help="where to write the folder (default: <store>/archive)")
    archive.add_argument("--iso", action="store_true", help="also write <meeting>.iso beside it, read back and checked")
    archive.set_defaults(handler=_archive)

    store = commands.add_parser("store", help="the store itself: move an office's store between TinyDB and PostgreSQL")
    store_commands = store.add_subparsers(dest="store_command", required=True)
    migrate = store_commands.add_parser("migrate", help="copy everything into the other kind of store, then check every document and file")
    migrate.add_argument("--from", dest="source", choices=("tinydb", "postgresql"), required=True)
    migrate.add_argument("--to", dest="target", choices=("tinydb", "postgresql"), required=True)
    migrate.add_argument("--path", type=Path, default=None, help="the TinyDB store's folder (default: [store] path)")
    migrate.set_defaults(handler=_store_migrate)
    add_round_commands(commands, _clerk, _office)
    return parser


def _set_up_logging(verbose: bool, daemon: bool, offices: bool = False) -> None:
    """With many offices, each line starts with the office's name (its daemon's thread is named after it)."""
    level = logging.DEBUG if verbose else logging.INFO if daemon else logging.WARNING
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)  # two lines a tick otherwise
    office = "[%(threadName)s] " if offices else ""
    if daemon and not sys.stderr.isatty():
        logging.basicConfig(level=level, format=f"%(levelname)s {office}%(name)s: %(message)s", stream=sys.stderr)
    else:
        logging.basicConfig(level=level, format=f"{office}%(message)s", handlers=[RichHandler(console=console, show_path=False)])


def _init(arguments: argparse.Namespace) -> int:
    for path, written in write_starter(arguments.dir, arguments.office, arguments.mailbox, arguments.clerk):
        console.print(f"wrote {path}" if written else f"[yellow]{path} exists; left as it is[/]")
    console.print(f"Next: edit the configuration and the directory, then run: secretary -c {arguments.dir / DEFAULT_CONFIG} run")
    return 0


def _run(arguments: argparse.Namespace) -> int:
    from .daemon import Daemon, build, make_sender, make_source

    if arguments.offices is not None:
        from .offices import Supervisor

        Supervisor(arguments.offices).run()
        return 0
    settings = load(arguments.config)
    service = build(settings)
    Daemon(service, make_source(settings), make_sender(settings)).run(once=arguments.once)
    return 0


def _explain(arguments: argparse.Namespace) -> int:
    raw = arguments.file.read_bytes()
    try:
        message = InboundMessage.parse(raw)
    except MalformedMessage as error:
        print(json.dumps({"kind": "unknown", "rule": "unreadable", "reasons": [str(error)], "quarantine": str(error)}, ensure_ascii=False, indent=2))
        return 0
    context = _explain_context(arguments.config)
    verdict = understand(message, context)
    result = {"message_id": message.message_id, "from": message.sender, "subject": message.subject, **verdict.to_dict()}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def _explain_context(config: Path) -> Context:
    """The configured directory and secret when there is a configuration; the bare rules otherwise."""
    if config.exists():
        settings = load(config)
        directory = Directory.load(settings.directory) if settings.directory else Directory()
        return Context(directory, settings.reply_key_secret, settings.rules)
    secret = os.environ.get("SECRETARY_REPLY_KEY", "").encode()
    return Context(Directory(), secret, PROJECT_ROOT / "rules")


def _office(arguments: argparse.Namespace):
    from .daemon import build

    return build(load(arguments.config), exclusive=False)


def _clerk(arguments: argparse.Namespace, name: str, command: dict) -> int:
    """Apply a clerk's command now, or queue it for the running daemon."""
    from .commands import apply, submit
    from .daemon import build
    from .meetings.clerk import HANDLERS

    settings = load(arguments.config)

    def run_now() -> str:
        service = build(settings)
        try:
            return apply(service.office, service.outbox, HANDLERS, name, command, service.clock())
        finally:
            service.office.store.close()

    console.print(submit(settings, name, command, run_now))
    return 0


def _meeting_new(arguments: argparse.Namespace) -> int:
    zone = ZoneInfo(load(arguments.config).office.timezone)
    start = datetime.fromisoformat(arguments.start).replace(tzinfo=zone)
    return _clerk(arguments, "meeting_new", {
        "kind": arguments.kind,
        "title": arguments.title,
        "number": arguments.number,
        "year_be": arguments.year or start.year + 543,
        "start": start.isoformat(),
        "end": datetime.fromisoformat(arguments.end).replace(tzinfo=zone).isoformat(),
        "place": arguments.place,
        "chair": arguments.chair,
        "secretary": arguments.secretary,
        "attendees": [a.strip() for a in arguments.attendees.split(",") if a.strip()],
    })


def _meeting_draft(arguments: argparse.Namespace) -> int:
    order = [g.strip() for g in arguments.group_order.split(",")] if arguments.group_order else []
    return _clerk(arguments, "new_draft", {"meeting": arguments.meeting, "group_order": order})


def _meeting_late(arguments: argparse.Namespace) -> int:
    return _clerk(arguments, "decide_late", {"meeting": arguments.meeting, "item": arguments.item, "accept": arguments.decision == "accept"})


def _meeting_item(arguments: argparse.Namespace) -> int:
    return _clerk(arguments, "edit_item", {"meeting": arguments.meeting, "item": arguments.item, "section": arguments.section, "title": arguments.title})


def _meeting_change(arguments: argparse.Namespace) -> int:
    zone = ZoneInfo(load(arguments.config).office.timezone)
    when = {key: datetime.fromisoformat(value).replace(tzinfo=zone).isoformat()
            for key, value in (("start", arguments.start), ("end", arguments.end)) if value}
    return _clerk(arguments, "change_meeting", {"meeting": arguments.meeting, "place": arguments.place, **when})


def _meeting_cancel(arguments: argparse.Namespace) -> int:
    return _clerk(arguments, "cancel_meeting", {"meeting": arguments.meeting, "reason": arguments.reason})


def _approve(arguments: argparse.Namespace) -> int:
    return _clerk(arguments, "approve", {
        "meeting": arguments.meeting, "by": arguments.by, "approved": not arguments.returned, "comments": arguments.comments or "",
        "paper": arguments.paper,
    })


def _minutes_import(arguments: argparse.Namespace) -> int:
    from .understand.notes import notes_text

    suffix = arguments.file.suffix.lower()
    kinds = {".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".pdf": "application/pdf"}
    text = notes_text(arguments.file.name, kinds.get(suffix, "text/plain"), arguments.file.read_bytes())
    if text is None:
        raise MeetingError(f"{arguments.file}: not a text, DOCX or PDF file")
    return _clerk(arguments, "import_notes", {"meeting": arguments.meeting, "text": text, "source": arguments.file.name})


def _minutes_show(arguments: argparse.Namespace) -> int:
    from .meetings.approvals import drafts_of
    from .meetings.meeting import load as load_meeting, shard

    store = _office(arguments).office.store
    meeting = load_meeting(store, arguments.meeting)
    out = Console()
    records = meeting.get("records", [])
    if not records:
        out.print(f"{meeting['id']}: no notes yet (`secretary minutes import {meeting['id']} FILE`, or the clerk replies to the request for notes)")
        return 0
    record = records[-1]
    out.print(f"[bold]{meeting['title']}[/] ครั้งที่ {meeting['number']}/{meeting['year_be']}: notes v{record['version']} from {record['source']}")
    items = Table(title="Resolutions")
    for column in ("item", "title", "resolution", "actions", "orders"):
        items.add_column(column)
    for item in record["items"]:
        items.add_row(item["number"], item["title"], item["resolution"], str(len(item["actions"])), str(len(item["orders"])))
    out.print(items)
    for problem in record["problems"]:
        out.print(f"[yellow]could not read:[/] {problem}")
    for paper in ("resolutions", "minutes", *sorted(p for p in meeting.get("papers", {}) if p.startswith("order"))):
        for draft in drafts_of(meeting, paper):
            answers = ", ".join(f"{a['by']} {'approved' if a['approved'] else 'returned'}{' (paper)' if a['on_paper'] else ''}" for a in draft.get("answers", []))
            out.print(f"{paper} draft {draft['version']}: {draft['status']}{' — ' + answers if answers else ''}")
    if meeting.get("circulated"):
        out.print(f"circulated {meeting['circulated']['at'][:10]}; comments until {meeting['circulated']['window_ends']}")
    endorsements = Table(title="Endorsements and objections")
    for column in ("attendee", "answer", "objections"):
        endorsements.add_column(column)
    objections = store.find(shard(meeting["id"]), "objections")
    for endorsement in store.find(shard(meeting["id"]), "endorsements"):
        theirs = "; ".join(f"{o['item'] or '?'}: {o['change']}" for o in objections if o["person"] == endorsement["person"])
        endorsements.add_row(endorsement["person"], endorsement["status"], theirs)
    out.print(endorsements)
    review = meeting.get("objection_review")
    if review:
        out.print(f"objections: {len(review['numbers'])}, " + (f"{len(review['accepted'])} accepted by the director" if review["decided"] else "waiting for the director"))
    return 0


def _followups(arguments: argparse.Namespace) -> int:
    from .meetings.followups import SHARD, STATUS_WORDS

    store = _office(arguments).office.store
    actions = sorted(store.find(SHARD, "actions", None if arguments.all else lambda a: a["status"] != "done"), key=lambda a: (a["due"] or "", a["id"]))
    table = Table(title="Follow-ups (แบบฟอร์มติดตามงาน)")
    for column in ("action", "meeting / item", "group", "what", "due", "status", "last report"):
        table.add_column(column)
    for action in actions:
        due = thai_date(datetime.fromisoformat(action["due"]), "short") if action["due"] else "-"
        last = action["reports"][-1]["note"] if action["reports"] else ""
        table.add_row(action["id"], f"{action['meeting']} {action['item']}", action["group"], action["what"], due, STATUS_WORDS[action["status"]], last)
    Console().print(table)
    return 0


def _meeting_list(arguments: argparse.Namespace) -> int:
    from .meetings.meeting import all_meetings

    table = Table(title="Meetings")
    for column in ("id", "title", "ครั้งที่", "date", "place", "status"):
        table.add_column(column)
    for meeting in all_meetings(_office(arguments).office.store):
        start = datetime.fromisoformat(meeting["start"])
        table.add_row(meeting["id"], meeting["title"], f"{meeting['number']}/{meeting['year_be']}", thai_date(start, "datetime"), meeting["place"], meeting["status"])
    Console().print(table)
    return 0


def _meeting_show(arguments: argparse.Namespace) -> int:
    from .meetings.meeting import load as load_meeting, shard
    from .meetings.timeline import load_timeline

    service = _office(arguments)
    meeting = load_meeting(service.office.store, arguments.meeting)
    out = Console()
    out.print(f"[bold]{meeting['title']}[/] ครั้งที่ {meeting['number']}/{meeting['year_be']}  ({meeting['id']}, {meeting['kind']})")
    out.print(f"{thai_date(datetime.fromisoformat(meeting['start']), 'datetime')} ณ {meeting['place']}")
    out.print(f"attendees: {len(meeting['attendees'])}")
    _print_timeline(meeting, load_timeline(service.settings.rules / "timeline.yaml"), service.clock().date().isoformat(), out)
    items = Table(title="Agenda items")
    for column in ("item", "section", "title", "status", "versions", "attachments"):
        items.add_column(column)
    for item in sorted(service.office.store.find(shard(meeting["id"]), "items"), key=lambda i: i["submitted_at"]):
        items.add_row(item["id"], item["section"], item["title"], item["status"], str(len(item["versions"])), str(len(item["attachments"])))
    out.print(items)
    for draft in meeting.get("drafts", []):
        answers = ", ".join(f"{a['by']} {'approved' if a['approved'] else 'returned'}{' (paper)' if a['on_paper'] else ''}" for a in draft.get("answers", []))
        out.print(f"draft {draft['version']}: {draft['status']}{' — ' + answers if answers else ''}")
    return 0


def _attendance(arguments: argparse.Namespace) -> int:
    from .meetings.invitations import attendance_table
    from .meetings.meeting import load as load_meeting

    service = _office(arguments)
    Console().print(attendance_table(service.office, load_meeting(service.office.store, arguments.meeting)))
    return 0


def _print_timeline(meeting: dict, timeline, today: str, out: Console | None = None) -> None:
    """Each step's working day; done (and when), due today, overdue, or to come; and why a day moved."""
    table = Table(title="Timeline")
    for column in ("step", "day", "status", "note"):
        table.add_column(column)
    meeting_day = datetime.fromisoformat(meeting["start"]).date()
    for step in timeline.kind(meeting["kind"]).steps:
        day = meeting["schedule"][step.name]
        done = meeting["done"].get(step.name)
        if done:
            status = "done" if done[:10] == day else f"done {thai_date(datetime.fromisoformat(done), 'short')}"
        else:
            status = "[bold red]overdue[/]" if day < today else "[yellow]due today[/]" if day == today else ""
        nominal = meeting_day + timedelta(days=step.offset)
        moved = "" if nominal.isoformat() == day else f"เลื่อนจาก {thai_date(nominal, 'short')} ({timeline.working_days.why_closed(nominal)})"
        table.add_row(step.title, thai_date(datetime.fromisoformat(day), "weekday"), status, moved)
    (out or Console()).print(table)


def _timeline(arguments: argparse.Namespace) -> int:
    from .meetings.meeting import load as load_meeting
    from .meetings.timeline import load_timeline

    service = _office(arguments)
    meeting = load_meeting(service.office.store, arguments.meeting)
    out = Console()
    out.print(f"[bold]{meeting['title']}[/] ครั้งที่ {meeting['number']}/{meeting['year_be']} ({meeting['id']}): "
              f"{thai_date(datetime.fromisoformat(meeting['start']), 'datetime')}, {meeting['status']}")
    _print_timeline(meeting, load_timeline(service.settings.rules / "timeline.yaml"), _as_of(arguments, service).date().isoformat(), out)
    return 0


def _as_of(arguments: argparse.Namespace, service) -> datetime:
    """`--at` in office time, or now."""
    if not arguments.at:
        return service.clock()
    return datetime.fromisoformat(arguments.at).replace(tzinfo=ZoneInfo(service.settings.office.timezone))


def _status(arguments: argparse.Namespace) -> int:
    from .digest import preview

    service = _office(arguments)
    digest, _ = preview(service.office, _as_of(arguments, service))
    out = Console()
    table = Table(title=f"Open meetings, {thai_date(digest.day, 'weekday')}")
    for column in ("meeting", "date", "last step", "next step", "needs the clerk"):
        table.add_column(column)
    for m in digest.meetings:
        needs = [*(f"[red]overdue:[/] {s['title']}" for s in m["overdue"]),
                 *(f"late item: {i['title']}" for i in m["submissions"] if i["status"] == "held_late"),
                 *(f"{w['paper']} v{w['version']} with {w['approver']} ({w['days']} d)" for w in m["waiting"]),
                 *(f"objection from {o['person']} on {o['item'] or '?'}" for o in m["objections"])]
        following = f"{m['next']['title']} ({thai_date(m['next']['day'], 'short')})" if m["next"] else "-"
        table.add_row(f"{m['title']}\n{m['id']}", thai_date(m["start"], "short"), m["stage"], following, "\n".join(needs) or "-")
    out.print(table)
    for r in digest.rounds:
        out.print(f"{r['title']} {r['id']} ({r['status']}, due {thai_date(r['deadline'], 'short')}): {r['answered']} of {r['total']} answered"
                  + (f", {r['pending_corrections']} correction(s) to review" if r["pending_corrections"] else ""), markup=False)
    office = [(len(digest.quarantined), "in Quarantine"), (len(digest.strangers), "from unknown senders"), (len(digest.for_clerk), "for the clerk to read"),
              (len(digest.failed), "failed sends"), (len(digest.bouncing), "bouncing addresses"), (len(digest.overdue_followups), "follow-ups past due")]
    out.print(f"Since {thai_date(digest.since, 'datetime')}: " + ", ".join(f"{n} {what}" for n, what in office))
    for q in digest.quarantined:
        out.print(f"  [red]quarantined[/] {q['at']} {q['from'] or '-'} {q['subject']!r}: {q['reason']}")
    for q in digest.for_clerk:
        out.print(f"  [yellow]for the clerk[/] {q['at']} {q['from']}: {q['note']}")
    return 0


def _digest(arguments: argparse.Namespace) -> int:
    """Write the digest as it would go now: the HTML and the text, and the whole message."""
    from .digest import preview

    service = _office(arguments)
    now = _as_of(arguments, service)
    digest, mail = preview(service.office, now)
    _, raw = service.outbox.composer.render(mail, now)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    html, text = message.get_body(("html",)).get_content(), message.get_body(("plain",)).get_content()
    written = []
    for suffix, content in ((".html", html), (".txt", text), (".eml", raw)):
        path = arguments.out.with_suffix(suffix)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
        written.append(str(path))
    console.print(f"{message['Subject']}\nwritten (not sent): {', '.join(written)}")
    return 0


def _demo(arguments: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(arguments.dir, console)


def _archive(arguments: argparse.Namespace) -> int:
    """The meeting's file; exit 1 when any file failed its check, so a script never burns a bad CD."""
    from .archive import export_meeting

    service = _office(arguments)
    store = service.office.store
    result = export_meeting(store, arguments.meeting, arguments.out or store.root / "archive", iso=arguments.iso,
                            directory=service.office.directory)
    out = Console()
    out.print(f"folder: {result.folder}")
    if result.iso:
        out.print(f"ISO:    {result.iso} ({result.iso.stat().st_size / 1e6:.1f} MB)" if result.iso.exists() else f"ISO:    {result.iso} (not written)")
    out.print(", ".join(f"{section}: {count}" for section, count in result.counts.items()))
    out.print(f"{result.files} files, {result.bytes / 1e6:.1f} MB, in {result.seconds:.1f} s")
    for problem in result.problems:
        console.print(f"[bold red]problem:[/] {problem}")
    return 1 if result.problems else 0


def _store_migrate(arguments: argparse.Namespace) -> int:
    """Copy, then compare both stores afresh; exit 1 on any difference, so no one switches over to a bad copy."""
    from contextlib import ExitStack

    from .store import Store, open_store
    from .store.transfer import copy, verify

    if arguments.source == arguments.target:
        raise ConfigError(f"--from and --to are both {arguments.source}: nothing to move")
    settings = load(arguments.config)
    if settings.postgres is None:
        raise ConfigError(f'{settings.path}: set [store] kind = "postgresql" and its dsn first: the database is taken from there')
    with ExitStack() as stack:
        database = open_store(settings)
        stack.callback(database.close)
        folder = stack.enter_context(Store(arguments.path or settings.store))
        source, target = (folder, database) if arguments.source == "tinydb" else (database, folder)
        copy(source, target)
        report = verify(source, target)
    totals: dict[tuple[str, str], list[int]] = {}
    for shard, name, expected, found in report.tables:
        counts = totals.setdefault((shard.split("/")[0], name), [0, 0, 0])
        counts[0], counts[1], counts[2] = counts[0] + 1, counts[1] + expected, counts[2] + found
    out = Console()
    table = Table(title=f"{arguments.source} → {arguments.target}: documents per table (each shard compared)")
    for column in ("shards", "table", "number of shards", arguments.source, arguments.target):
        table.add_column(column)
    for (folder, name), (shards, expected, found) in sorted(totals.items()):
        table.add_row(folder, name, str(shards), str(expected), str(found) if found == expected else f"[red]{found}[/]")
    out.print(table)
    out.print(f"{report.documents} documents, {report.files} files ({report.bytes / 1e6:.1f} MB) checked by SHA-256")
    for problem in report.problems:
        console.print(f"[bold red]problem:[/] {problem}")
    out.print("[red]the copy differs: do not switch over[/]" if report.problems else "every document and file is the same in both")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo's third act: a verification round of the directory and a PMQA round, in simulated time.

Both rounds start on one day; a school corrects its record by reply and the
clerk approves it, the agency confirms, the other school is reminded; the
champions send their reports with evidence, one late and one never (reminded
until the deadline); on the deadlines both rounds close and the PMQA report is
compiled. The script is `rounds.yaml`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import yaml
from rich.console import Console
from rich.table import Table

from ..commands import apply
from ..config import Settings
from ..daemon import Daemon, build, make_sender, make_source
from ..directory.records import record_of
from ..directory.verification import pending
from ..mail.maildir import deliver
from ..meetings.clerk import HANDLERS
from ..pmqa import status_rows
from ..rounds import STATES, asks_of, rounds
from ..store import original_name
from . import HERE, SimulatedClock, _describe, _reply


def the_rounds(settings: Settings, console: Console, start: datetime) -> None:
    """Play both rounds from `start` to their close, then show the school's record and the PMQA report."""
    script = yaml.safe_load((HERE / "rounds.yaml").read_text(encoding="utf-8"))
    clock = SimulatedClock(start.astimezone(ZoneInfo(settings.office.timezone)).replace(hour=8, minute=0, second=0, microsecond=0))
    table = Table(title=f"Act 3 — the directory's verification and the PMQA round (day 0 = {clock.now.date().isoformat()})")
    for column in ("day", "what happened"):
        table.add_column(column)
    first = clock.now
    for day in range(script["last_day"] + 1):
        clock.now = first + timedelta(days=day)
        events = []
        if day == 0:
            events += [_clerk(settings, clock, "directory_verify", {"deadline": (clock.now + timedelta(days=script["verification_days"])).date().isoformat()}),
                       _clerk(settings, clock, "pmqa_start", {"deadline": (clock.now + timedelta(days=script["pmqa_days"])).date().isoformat()})]
        for entry in (e for e in script["mail"] if e["day"] == day):
            deliver(settings.source.path, _reply(settings, entry, clock.now), "demo")
        daemon = Daemon(build(settings, clock=clock), make_source(settings), make_sender(settings))
        daemon.run(once=True)
        events += [_describe(h) for h in daemon.handled] + _round_events(settings, clock.now)
        if any(r["day"] == day for r in script["review"]):
            service = build(settings, exclusive=False)
            ids = [c["id"] for c in pending(service.office)]
            service.office.store.close()
            if ids:
                events.append(_clerk(settings, clock, "directory_review", {"decision": "approve", "ids": ids}))
        if events:
            table.add_row(f"{day}", "\n".join(events))
    console.print(table)
    _show(settings, console, clock.now)


def _round_events(settings: Settings, now: datetime) -> list[str]:
    """What the daemon's ticks did to the rounds today: reminders sent, rounds closed."""
    service = build(settings, exclusive=False)
    today, said = now.date().isoformat(), []
    for head in rounds(service.office):
        reminded = [service.office.directory.get(a["recipient"]).name for a in asks_of(service.office, head["id"]) if today in a["reminded"]]
        if reminded:
            said.append(f"{head['id']}: reminded {', '.join(sorted(set(reminded)))}")
        if head.get("closed_at", "").startswith(today):
            said.append(f"{head['id']}: closed" + (", report compiled and sent to the clerk" if head.get("reports") else ""))
    service.office.store.close()
    return said


def _clerk(settings: Settings, clock: SimulatedClock, command: str, arguments: dict) -> str:
    service = build(settings, clock=clock)
    try:
        return "clerk: " + apply(service.office, service.outbox, HANDLERS, command, arguments, clock())
    finally:
        service.office.store.close()


def _show(settings: Settings, console: Console, now: datetime) -> None:
    service = build(settings, exclusive=False)
    office = service.office
    record = record_of(office.store, "s-001") or {"history": [], "last_verified": None}
    school = office.directory.get("s-001")
    console.print(f"{school.name}: โทร {school.phone}, ผู้อำนวยการ {school.administrator}; last verified {record['last_verified']}")
    for change in record["history"]:
        console.print(f"  {change['at'][:10]} {change['source']}: " + ("; ".join(f"{f} {o!r} → {n!r}" for f, (o, n) in change["changes"].items()) or "confirmed"))
    for head in rounds(office):
        console.print(f"{head['id']} ({head['title']}): {head['status']}")
        if head["use"] == "pmqa":
            for row in status_rows(office, head, now.date()):
                console.print(f"  {row['title']}: {STATES[row['state']]} ({row['champion']}, {row['evidence']} evidence)")
            for report in head.get("reports", [])[-1:]:
                console.print(f"  report: {original_name(report['pdf'])} and {original_name(report['docx'])}, sent to the clerk "
                              f"(kept in the store: {settings.store / report['pdf']})")
    office.store.close()

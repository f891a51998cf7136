"""The timeline proves itself: a whole meeting's life, T−22 to T+21, on the real mail servers.

The daemon reads the shared mailbox over IMAP from Dovecot and sends through
Postfix into each person's Dovecot mailbox. Simulated time runs day by day;
each day has a few tick moments, of which a seeded random subset runs (never
none). At some ticks the daemon runs twice, is stopped after one message
(`daemon.stopping`, as a signal would), or crashes after a store write or
after one accepted send (and is started again at once, as systemd would).
People answer by e-mail, and the clerk gives some approvals on paper.

Then every step of the `school_administrators` timeline (rules/timeline.yaml)
must be done exactly once, on its working day (a step whose nominal day is a
Thai public holiday moves to the day before), or, for a step that waits on
people, on the first tick after what it waits for; and each step's mail must
exist once in the store and once in its recipient's mailbox.

PROOF_SEED=<n> chooses the seed (printed; shown when the test fails).
"""

from __future__ import annotations

import email
import email.policy
import os
import random
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

import pytest

from service.commands import apply
from service.config import PROJECT_ROOT
from service.daemon import Daemon, build, make_sender, make_source
from service.meetings.clerk import HANDLERS
from service.meetings.meeting import shard
from service.meetings.timeline import load_timeline
from service.store import Store
from worlds import Clock, make_world, reply

BANGKOK = ZoneInfo("Asia/Bangkok")
KIND = "school_administrators"
MEETING_DAY = date(2027, 1, 13)  # a Wednesday: T−13 is 31 Dec 2026 (วันสิ้นปี), so `approvals` moves to the 30th
START = datetime.combine(MEETING_DAY, time(9), BANGKOK)
MID = "sa2570-1"
FIRST_DAY, LAST_DAY = MEETING_DAY - timedelta(days=22), MEETING_DAY + timedelta(days=21)
TICKS = (time(0, 0, 30), time(8), time(10), time(12), time(14), time(16, 30), time(23, 59))
GROUPS = ("g-admin", "g-personnel", "g-policy", "g-promotion", "g-supervision", "g-finance")
ATTENDEES = ("p-school-001", "p-school-002", "p-school-003")
DEFAULT_SEED = 20270113

NOTES = """เริ่มประชุม 09.00 น.
เลิกประชุม 12.00 น.

วาระที่ 1 เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ
ประธานแจ้งนโยบายลดภาระงานครู
มติ: ที่ประชุมรับทราบ

วาระที่ 4.1.1 ปฏิทินงานเดือนมกราคม ๒๕๗๐
มติ: ที่ประชุมรับทราบ

วาระที่ 5.1.1 ขออนุมัติแผนปฏิบัติการ ปี ๒๕๗๐
กลุ่มนโยบายและแผนนำเสนอแผน ที่ประชุมอภิปรายเรื่องงบประมาณ
มติ: เห็นชอบ
มอบหมาย: กลุ่มนโยบายและแผน | ปรับแผนและเสนอผู้อำนวยการลงนาม | 29 ม.ค. 2570
"""


class Crash(BaseException):
    """The daemon's process dies here (not an Exception: nothing in the daemon may catch it)."""


def at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), BANGKOK)


def T(offset: int, hour: int = 0, minute: int = 0) -> datetime:
    return at(MEETING_DAY + timedelta(days=offset), hour, minute)


# --- the daemon, restarted, stopped and crashed -------------------------------------------------

class StopsAfterOne:
    """A source that asks its daemon to stop once one message is handled, as SIGTERM between two messages would."""

    def __init__(self, inner, daemon: Daemon) -> None:
        self.inner, self.daemon = inner, daemon

    def fetch_new(self):
        return self.inner.fetch_new()

    def mark_processed(self, ref: str) -> None:
        self.inner.mark_processed(ref)
        self.daemon.stopping = True

    def mark_quarantined(self, ref: str) -> None:
        self.inner.mark_quarantined(ref)
        self.daemon.stopping = True

    def wait(self, timeout: float) -> None:
        self.inner.wait(timeout)

    def close(self) -> None:
        self.inner.close()


class CrashesAfterSends:
    """A sender whose process dies right after the server accepted `count` messages (and the outbox noted them)."""

    def __init__(self, inner, count: int) -> None:
        self.inner, self.count = inner, count

    def send_batch(self, envelopes, committing=None):
        batch = self.inner.send_batch(envelopes, committing=committing)
        sent = 0
        for delivery in batch:
            yield delivery
            sent += 1
            if sent >= self.count:
                batch.close()
                raise Crash(f"after {sent} send(s)")


def crash_after_writes(store: Store, count: int) -> None:
    """The process dies right after the store committed its `count`-th transaction that wrote something."""
    original = store.transaction
    written = [0]

    @contextmanager
    def transaction():
        with original() as t:
            yield t
        if t.operations:
            written[0] += 1
            if written[0] == count:
                raise Crash(f"after store write {count}")

    store.transaction = transaction


@dataclass
class Snapshot:
    """The meeting as the store holds it after one daemon run."""

    moment: datetime
    mode: str
    done: dict[str, str]
    answered: frozenset[str]
    silent_invitees: frozenset[str]
    has_notes: bool


@dataclass
class Simulation:
    settings: Any
    world: Any
    clock: Clock
    rng: random.Random
    snapshots: list[Snapshot] = field(default_factory=list)
    moments: list[datetime] = field(default_factory=list)
    modes: Counter = field(default_factory=Counter)
    crashes: Counter = field(default_factory=Counter)

    def run_daemon(self, mode: str = "normal") -> None:
        """One daemon, from start to `run(once=True)`'s end (or its crash); then what the store holds."""
        service = build(self.settings, clock=self.clock)
        daemon = Daemon(service, make_source(self.settings), make_sender(self.settings))
        if mode == "stop":
            daemon.source = StopsAfterOne(daemon.source, daemon)
        elif mode == "crash-write":
            crash_after_writes(service.office.store, self.rng.randint(1, 3))
        elif mode == "crash-send":
            daemon.sender = CrashesAfterSends(daemon.sender, self.rng.randint(1, 2))
        crashed = False
        try:
            daemon.run(once=True)
        except Crash as crash:
            crashed = True
            self.crashes[str(crash)] += 1
        finally:
            service.office.store.close()  # run() closes it too; a second close is harmless
        self.modes[mode + (" (crashed)" if crashed else "")] += 1
        if mode == "stop" and self.world.dovecot.messages(self.world.mailbox):
            self.modes["stop (mail left in the inbox)"] += 1
        self.snapshot(mode)
        if crashed:
            self.run_daemon("restart after crash")

    def tick(self, moment: datetime, busy: bool, waiting: int) -> None:
        """The daemon at one tick: once, twice, stopped after a message, or crashing; more often so when there is work.

        `waiting` is how many people's messages were just delivered: with two or more, a stop leaves mail in the inbox.
        """
        self.clock.now = moment
        self.moments.append(moment)
        weights = (20, 10, 45, 15, 10) if waiting > 1 else (30, 15, 20, 20, 15) if busy else (55, 15, 12, 10, 8)
        mode = self.rng.choices(("normal", "again", "stop", "crash-write", "crash-send"), weights)[0]
        if mode == "again":
            self.run_daemon()
            self.run_daemon("again")
        elif mode == "stop":
            self.run_daemon("stop")
            if self.rng.random() < 0.5:
                self.run_daemon("restart after stop")
        else:
            self.run_daemon(mode)

    def snapshot(self, mode: str) -> None:
        store = Store(self.settings.store).open(exclusive=False)
        try:
            meeting = store.get(shard(MID), "meeting", "meeting")
            answered = frozenset(a["group"] for a in store.find(shard(MID), "answers"))
            silent = frozenset(i["person"] for i in store.find(shard(MID), "invitees") if i["status"] == "no_answer")
        finally:
            store.close()
        self.snapshots.append(Snapshot(self.clock.now, mode, dict(meeting["done"]), answered, silent, bool(meeting.get("records"))))

    def when_done(self, step: str) -> Snapshot:
        """The state right after the run that did `step` (in a run, messages are handled before the steps)."""
        return next(s for s in self.snapshots if step in s.done)

    def first_tick_from(self, moment: datetime) -> datetime:
        return min(m for m in self.moments if m >= moment)

    # the store and the mailboxes

    def store(self) -> Store:
        return Store(self.settings.store).open(exclusive=False)

    def meeting(self) -> dict[str, Any]:
        store = self.store()
        try:
            return store.get(shard(MID), "meeting", "meeting")
        finally:
            store.close()

    def mails(self, address: str, subject_part: str = "") -> list[email.message.EmailMessage]:
        found = [email.message_from_bytes(raw, policy=email.policy.default) for raw in self.world.received(self.settings, address)]
        return [m for m in found if subject_part in m["Subject"]]

    def clerk(self, command: str, arguments: dict[str, Any]) -> str:
        service = build(self.settings, clock=self.clock)
        try:
            return apply(service.office, service.outbox, HANDLERS, command, arguments, self.clock())
        finally:
            service.office.store.close()


# --- the people -------------------------------------------------------------------------------

@dataclass
class Act:
    """Something a person does at the first tick from `not_before` at which `ready` gives what they answer."""

    name: str
    not_before: datetime
    ready: Callable[[], Any]
    do: Callable[[Any], None]
    by_mail: bool = True
    done_at: datetime | None = None


def people(sim: Simulation) -> list[Act]:
    world, settings = sim.world, sim.settings
    A = world.address

    def mail(local: str, subject: str, count: int = 1):
        """The newest mail of `local` whose subject has `subject`, once there are `count` of them."""
        def ready():
            found = sim.mails(A(local) if local != "clerk" else world.clerk(), subject)
            return found[-1] if len(found) >= count else None
        return ready

    def answer(sender: str, text: str, subject: str | None = None):
        return lambda to: reply(world, settings, to, sender, text, subject=subject)

    def waiting_for(paper: str, person: str):
        """A paper's newest draft waits for `person` (the clerk can record that person's answer on paper)."""
        def ready():
            meeting = sim.meeting()
            drafts = meeting.get("drafts", []) if paper == "agenda" else meeting.get("papers", {}).get(paper, {}).get("drafts", [])
            if not drafts or drafts[-1].get("status") != "awaiting":
                return None
            answered = [a["by"] for a in drafts[-1]["answers"]]
            return True if next((p for p in drafts[-1]["chain"] if p not in answered), None) == person else None
        return ready

    def on_paper(person: str, paper: str):
        def do(_):
            said = sim.clerk("approve", {"meeting": MID, "by": person, "approved": True, **({"paper": paper} if paper != "agenda" else {})})
            assert said.startswith("recorded the paper approval"), said
        return do

    somsri, director = f"นางสาวสมศรี ใจงาม <{A('somsri')}>", f"นายประเสริฐ วงศ์ใหญ่ <{A('director')}>"
    call, agenda_request, papers_request = "ขอเรื่องเข้าระเบียบวาระ", "ขอความเห็นชอบร่างระเบียบวาระ", "ขอความเห็นชอบ "
    return [
        # The call for items (T−21): two groups answer at once, one after the first reminder, one after the second; two never do.
        # (People often write at the same tick, so a daemon stopped after one message leaves mail in the inbox.)
        Act("g-admin submits", T(-21, 9), mail("admin", call),
            answer(f"กลุ่มอำนวยการ <{A('admin')}>", "ขอเสนอเรื่องเพื่อทราบครับ", subject="เรื่องเพื่อทราบ: ปฏิทินงานเดือนมกราคม ๒๕๗๐")),
        Act("g-finance has nothing", T(-21, 9), mail("finance", call), answer(f"กลุ่มการเงิน <{A('finance')}>", "ครั้งนี้ไม่มีเรื่องเสนอครับ")),
        Act("g-policy submits", T(-16, 9), mail("policy", call),
            answer(f"นายวิชัย แสงทอง <{A('wichai')}>", "ขอเสนอเรื่องเพื่อพิจารณาครับ", subject="ขออนุมัติแผนปฏิบัติการ ปี ๒๕๗๐")),
        Act("g-promotion has nothing", T(-15), mail("promotion", "แจ้งเตือน", count=2),
            answer(f"กลุ่มส่งเสริมการจัดการศึกษา <{A('promotion')}>", "ไม่มีเรื่องเสนอครับ")),
        # The agenda's chain: by e-mail after New Year, then on paper on the invitations' day (the step waits for it).
        Act("agenda: somsri approves by e-mail", T(-9, 9), mail("somsri", agenda_request), answer(somsri, "เห็นชอบค่ะ")),
        Act("agenda: the director approves on paper", T(-7, 10), waiting_for("agenda", "p-director"), on_paper("p-director", "agenda"), False),
        # Answers: a text accept, a delegation from the school's shared address, and one only after the request to confirm.
        Act("somchai accepts", T(-6, 8), mail("somchai", "ขอเชิญประชุม"), answer(f"นายสมชาย ใจดี <{A('somchai')}>", "ยืนยันเข้าร่วมประชุมครับ")),
        Act("malee sends her deputy", T(-6, 8), mail("malee", "ขอเชิญประชุม"),
            answer(f"ธุรการโรงเรียน <{A('school002')}>", "ผู้อำนวยการติดราชการ จึงมอบหมาย นางสาวจันทร์เพ็ญ ดวงดี รองผู้อำนวยการโรงเรียน เข้าร่วมประชุมแทน")),
        Act("john confirms after being asked", T(-2, 9), mail("john.carter", "ขอคำยืนยัน"),
            answer(f"John Carter <{A('john.carter')}>", "Dear Sir,\n\nI will attend the meeting.\n\nJohn")),
        # After the meeting: the notes typed into the reply; the resolutions' chain by e-mail, on paper, by e-mail.
        Act("the clerk sends the notes", T(0, 12), mail("clerk", "ขอบันทึกการประชุม"), answer(f"นางสาวกนกวรรณ มีสุข <{world.clerk()}>", NOTES)),
        Act("resolutions: somsri approves by e-mail", T(0, 12), mail("somsri", papers_request + "มติที่ประชุม"), answer(somsri, "เห็นชอบค่ะ")),
        Act("resolutions: the deputy approves on paper", T(0, 12), waiting_for("resolutions", "p-deputy"), on_paper("p-deputy", "resolutions"), False),
        Act("resolutions: the director approves by e-mail", T(0, 12), mail("director", papers_request + "มติที่ประชุม"), answer(director, "อนุมัติ")),
        # The circulation: one objection, one endorsement, one silence; the director accepts the objection by e-mail.
        Act("somchai objects", T(2, 9), mail("somchai", "แจ้งเวียนมติ"), answer(f"นายสมชาย ใจดี <{A('somchai')}>",
            "เรียน ประธาน\n\nขอแก้ไขมติวาระที่ 5.1.1 จาก \"เห็นชอบ\" เป็น \"เห็นชอบในหลักการ\" เนื่องจากยังไม่ได้ปรับงบประมาณ\n\nสมชาย")),
        Act("malee endorses", T(2, 9), mail("malee", "แจ้งเวียนมติ"), answer(f"นางมาลี พรหมมา <{A('malee')}>", "รับรองมติค่ะ")),
        Act("the director decides the objections by e-mail", T(12, 9), mail("director", "สรุปความเห็น"), answer(director, "เห็นชอบทุกข้อ")),
        # The minutes' chain: by e-mail, then on paper twice.
        Act("minutes: somsri approves by e-mail", T(14, 13), mail("somsri", papers_request + "รายงานการประชุม"), answer(somsri, "เห็นชอบค่ะ")),
        Act("minutes: the deputy approves on paper", T(15, 9), waiting_for("minutes", "p-deputy"), on_paper("p-deputy", "minutes"), False),
        Act("minutes: the director approves on paper", T(15, 10), waiting_for("minutes", "p-director"), on_paper("p-director", "minutes"), False),
    ]


def story(acts: list[Act]) -> str:
    """What the people did when, for a failure's message."""
    return "".join(f"\n  {f'{a.done_at:%Y-%m-%d %H:%M}' if a.done_at else 'never':16} {a.name}" for a in acts)


def act(sim: Simulation, acts: list[Act], moment: datetime) -> tuple[bool, int]:
    """Whoever is due and has what they answer acts now: whether anyone did, and how many messages they sent."""
    acted = sent = 0
    for person in acts:
        if person.done_at is None and moment >= person.not_before:
            found = person.ready()
            if found is not None:
                person.do(found)
                person.done_at = moment
                acted, sent = True, sent + person.by_mail
    return bool(acted), sent


# --- the test -----------------------------------------------------------------------------------

@pytest.fixture(params=["servers"])
def office(request, tmp_path, monkeypatch):
    settings, world = make_world(request, tmp_path, monkeypatch)
    clock = Clock(at(FIRST_DAY - timedelta(days=1), 8))
    service = build(settings, clock=clock)
    try:
        said = apply(service.office, service.outbox, HANDLERS, "meeting_new", {
            "kind": KIND, "title": "การประชุมผู้บริหารสถานศึกษา", "number": 1, "year_be": 2570,
            "start": START.isoformat(), "end": (START + timedelta(hours=3)).isoformat(), "place": "ห้องประชุมใหญ่",
            "chair": "p-director", "secretary": "p-deputy", "attendees": ["role:school_director"],
        }, clock())
    finally:
        service.office.store.close()
    assert said == f"opened meeting {MID} with 3 attendees"
    return settings, world, clock


def test_every_step_once_on_its_working_day_through_restarts_and_skipped_ticks(office):
    settings, world, clock = office
    seed = int(os.environ.get("PROOF_SEED", DEFAULT_SEED))
    print(f"PROOF_SEED={seed}")
    rng = random.Random(seed)

    # The window holds Thai public holidays, and one step's nominal day is one of them (others move for a weekend).
    timeline = load_timeline(PROJECT_ROOT / "rules" / "timeline.yaml")
    working = timeline.working_days
    schedule = timeline.schedule(KIND, MEETING_DAY)
    moved = {step.name: (nominal, day, working.why_closed(nominal)) for step, day in schedule
             if (nominal := MEETING_DAY + timedelta(days=step.offset)) != day}
    weekend = "วันหยุดสุดสัปดาห์"
    by_holiday = {name: (nominal, day) for name, (nominal, day, why) in moved.items() if why and why != weekend}
    assert by_holiday == {"approvals": (date(2026, 12, 31), date(2026, 12, 30))}, moved
    assert sorted(name for name, (_, _, why) in moved.items() if why == weekend) == ["brief_resolutions", "objections", "reminder_1"]
    assert all(not working.is_working(d) and d.weekday() < 5 for d in (date(2026, 12, 31), date(2027, 1, 1)))
    assert FIRST_DAY < date(2026, 12, 31) < LAST_DAY

    sim = Simulation(settings, world, clock, rng)
    acts = people(sim)
    step_days = {day for _, day in schedule}
    day = FIRST_DAY
    while day <= LAST_DAY:
        ticks = [t for t in TICKS if rng.random() < 0.5] or [rng.choice(TICKS)]
        for n, moment in enumerate(datetime.combine(day, t, BANGKOK) for t in ticks):
            clock.now = moment  # what people do now is recorded now
            acted, sent = act(sim, acts, moment)
            sim.tick(moment, busy=acted or (n == 0 and day in step_days), waiting=sent)
        day += timedelta(days=1)
    print(f"{len(sim.moments)} ticks over {(LAST_DAY - FIRST_DAY).days + 1} days; daemon runs: {dict(sim.modes)}; crashes: {dict(sim.crashes)}")
    assert [p.name for p in acts if p.done_at is None] == [], "everyone had their chance to act"
    assert sim.modes["stop"] and sim.modes["again"] and sim.modes["restart after crash"], "restarts of every sort happened"

    meeting = sim.meeting()
    store = sim.store()
    try:
        mail = store.find("outbox", "mail") + [d for s in store.shards("sent") for d in store.find(s, "mail")]
        objections = store.find(shard(MID), "objections")
        endorsements = {e["person"]: e["status"] for e in store.find(shard(MID), "endorsements")}
        actions = store.find("followups", "actions")
        log = [m for s in store.shards("log") for m in store.find(s, "messages")]
        invitees = store.find(shard(MID), "invitees")
    finally:
        store.close()

    # Nothing sent twice: one record per cause in the store, each sent; one copy of each Message-ID in every mailbox.
    causes = Counter(m["cause"] for m in mail)
    assert [c for c, n in causes.items() if n > 1] == [], "two messages in the outbox/sent with one cause"
    assert [m["cause"] for m in mail if m["status"] != "sent"] == [], "everything queued was sent"
    # Nothing received twice: each person's message handled once, understood, and moved out of the inbox.
    assert [m["identity"] for m in log if m["status"] != "processed"] == [], "every person's message was understood"
    assert [i for i, n in Counter(m["identity"] for m in log).items() if n > 1] == [], "a message handled twice"
    assert len(log) == sum(p.by_mail for p in acts) == len(world.dovecot.messages(world.mailbox, "Processed"))
    assert world.dovecot.messages(world.mailbox) == [], "the inbox is empty"
    assert {i["person"]: [a["answer"] for a in i["answers"]] for i in invitees} == {
        "p-school-001": ["accepted"], "p-school-002": ["delegated"], "p-school-003": ["accepted"]}, "each answer counted once"
    boxes = {address: Counter("".join(str(m["Message-ID"]).split()).strip("<>") for m in sim.mails(address))
             for address in {*world.addresses.values(), world.clerk()}}
    twice = {address: [i for i, n in ids.items() if n > 1] for address, ids in boxes.items()}
    assert {a: ids for a, ids in twice.items() if ids} == {}, "a Message-ID delivered twice"
    assert sum(sum(ids.values()) for ids in boxes.values()) == sum(len(m["to"]) for m in mail), "every message delivered once, nothing else"
    by_cause = {m["cause"]: m for m in mail}

    # Every step done once, and nothing else marked done.
    steps = timeline.kind(KIND).steps
    assert meeting["schedule"] == {step.name: day.isoformat() for step, day in schedule}
    assert sorted(meeting["done"]) == sorted(step.name for step in steps)
    assert [n["step"] for n in meeting.get("for_clerk", [])].count("submission_deadline") == 1

    # What each step that waits on people waits for, and when that was met.
    agenda = [d for d in meeting["drafts"] if d["status"] == "approved"][-1]
    review = meeting["objection_review"]
    waits_for = {
        "invitations": datetime.fromisoformat(agenda["answers"][-1]["at"]),
        "brief_resolutions": datetime.fromisoformat(meeting["records"][0]["at"]),
        "objections": at(date.fromisoformat(meeting["circulated"]["window_ends"]) + timedelta(days=1)),
        "minutes": datetime.fromisoformat(review["at_decided"] if review["numbers"] else review["at"]),
    }
    table, on_day, previous = [], 0, None
    for step in steps:
        scheduled = date.fromisoformat(meeting["schedule"][step.name])
        done_at = datetime.fromisoformat(meeting["done"][step.name])
        # A step is done on the first tick from its day (from what it waits for, and from the step before it, which it never overtakes).
        ready = max(m for m in (at(scheduled), waits_for.get(step.name), previous) if m is not None)
        expected = sim.first_tick_from(ready)
        table.append(f"{step.name:20} T{step.offset:+3d} {MEETING_DAY + timedelta(days=step.offset)} → {scheduled}  done {done_at:%Y-%m-%d %H:%M:%S}"
                     + (f"  (waited for {waits_for[step.name]:%Y-%m-%d %H:%M})" if step.name in waits_for else ""))
        assert done_at == expected, f"{step.name}: done {done_at}, expected at the first tick from {ready}: {expected}" + story(acts)
        if step.name not in waits_for:
            assert done_at.date() == scheduled, f"{step.name} done on {done_at.date()}, scheduled {scheduled}"
        on_day += done_at.date() == scheduled
        previous = done_at
    print("\n".join(table))
    assert on_day >= len(steps) - 2, "people answered in time for nearly every step to be done on its day"
    assert meeting["done"]["approvals"].startswith("2026-12-30"), "the day before New Year's Eve"

    # Each step's mail: exactly the expected causes, queued by the step's run, delivered once to the one it is for.
    mid = MID

    def sent(step: str, expected: set[str], prefix: str | None = None) -> None:
        if prefix is not None:
            assert {c for c in causes if c.startswith(prefix)} == expected, f"{step}: the mail with causes {prefix}*"
        for cause in expected:
            record = by_cause.get(cause)
            assert record is not None, f"{step}: nothing sent for {cause}"
            assert record["created_at"] == meeting["done"][step], f"{step}: {cause} queued at {record['created_at']}, not when the step was done"
            [to] = record["to"]
            assert boxes[to][record["message_id"]] == 1, f"{step}: {cause} not in {to}'s mailbox exactly once"

    silent_then = {name: set(GROUPS) - sim.when_done(name).answered for name in ("reminder_1", "reminder_2")}
    assert silent_then == {"reminder_1": {"g-personnel", "g-policy", "g-promotion", "g-supervision"},
                           "reminder_2": {"g-personnel", "g-promotion", "g-supervision"}}, "reminders only to the groups silent then"
    sent("call_for_items", {f"call_for_items:{mid}:{g}" for g in GROUPS}, "call_for_items:")
    for name in ("reminder_1", "reminder_2"):
        sent(name, {f"{name}:{mid}:{g}" for g in silent_then[name]}, f"{name}:")
    sent("approvals", {f"approval:{mid}:v1:p-admin-director"})
    sent("invitations", {f"invitation:{mid}:0:{p}" for p in ATTENDEES}, "invitation:")
    silent_invitees = sim.when_done("confirmations").silent_invitees
    assert silent_invitees == {"p-school-003"}
    sent("confirmations", {f"confirmation:{mid}:0:{p}" for p in silent_invitees}, "confirmation:")
    sent("preparation", {f"preparation:{mid}:0"}, "preparation:")
    sent("meeting", {f"notes-request:{mid}"}, "notes-request:")
    assert sim.when_done("notes_reminder_1").has_notes and sim.when_done("notes_reminder_2").has_notes
    sent("notes_reminder_1 and _2", set(), "notes-reminder:")  # the notes were in: the clerk is not reminded
    sent("brief_resolutions", set(), "notes-late:")
    assert [(o["person"], o["item"]) for o in objections] == [("p-school-001", "5.1.1")]
    sent("objections", {f"objections:{mid}"}, "objections:")
    sent("minutes", {f"approval:{mid}:minutes:v1:p-admin-director"})
    assert endorsements == {"p-school-001": "objected", "p-school-002": "endorsed", "p-school-003": "endorsed_by_silence"}
    assert review["decided"] and len(review["accepted"]) == 1

    # The papers' chains went to their ends, each paper drafted once (a step done twice would draft it again);
    # the follow-up was reminded once at each reminder day.
    assert [len(d) for d in (meeting["drafts"], meeting["papers"]["resolutions"]["drafts"], meeting["papers"]["minutes"]["drafts"])] == [1, 1, 1]
    assert meeting["papers"]["resolutions"]["drafts"][-1]["status"] == "approved"
    minutes = meeting["papers"]["minutes"]["drafts"][-1]
    assert minutes["status"] == "approved" and minutes["final"] and [a["on_paper"] for a in minutes["answers"]] == [False, True, True]
    [action] = actions
    assert action["due"] == "2027-01-29"
    for point in ("2027-01-22", "2027-01-28"):
        record = by_cause[f"followup-reminder:{action['id']}:{point}"]
        assert datetime.fromisoformat(record["created_at"]) == sim.first_tick_from(at(date.fromisoformat(point)))
    assert {c for c in causes if c.startswith("followup-reminder:")} == {f"followup-reminder:{action['id']}:{p}" for p in ("2027-01-22", "2027-01-28")}

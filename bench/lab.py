"""What the benchmarks share: an office with a big directory, realistic mail, the private servers, the result table.

The servers are the tests' own (`tests/servers.py`: Dovecot, Postfix,
smtp-sink on 127.0.0.1), imported rather than copied, so a benchmark runs on
exactly what the tests run on. Every mail is made here from a seed, so two
runs measure the same backlog; nothing leaves the loopback interface.
"""

from __future__ import annotations

import argparse
import csv
import email.policy
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT / "tests", ROOT):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from helpers import DIRECTORY, ENV, MAILBOX, write_config  # noqa: E402  (tests/helpers.py)
from servers import HOST, Dovecot, Postfix, ServerError, SmtpSink, binary  # noqa: E402,F401  (tests/servers.py)
from worlds import Clock  # noqa: E402  (tests/worlds.py)

from service.commands import apply  # noqa: E402
from service.config import Settings, load  # noqa: E402
from service.daemon import Service, build  # noqa: E402
from service.mail.sender import Delivery, Envelope  # noqa: E402
from service.meetings.clerk import HANDLERS  # noqa: E402
from service.ticks import run_due_steps  # noqa: E402

BANGKOK = ZoneInfo("Asia/Bangkok")
OFFICE_DOMAIN = "office.test"
SCHOOL_DOMAIN = "school.test"
CLERK = f"clerk@{OFFICE_DOMAIN}"
#: The meeting being invited to (its T−7 is `INVITE_DAY`) and the next one, collecting items that day.
INVITED = "sa2569-11"
COLLECTING = "sa2569-12"
INVITED_START = datetime(2026, 12, 16, 9, tzinfo=BANGKOK)
COLLECTING_START = datetime(2026, 12, 30, 9, tzinfo=BANGKOK)
INVITE_DAY = datetime(2026, 12, 9, 8, tzinfo=BANGKOK)
#: When the backlog is handled: after the invitations went out, before any later step is due.
BACKLOG_TIME = datetime(2026, 12, 9, 10, tzinfo=BANGKOK)


# ---------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the results table; `ratio` is always ours over the peer's, oriented so that bigger is better, or a cost ratio."""

    figure: str
    value: float
    unit: str
    peer: float | None = None
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""


def judge(ratio: float | None, at_least: float | None = None, below: float | None = None) -> bool | None:
    if ratio is None:
        return None
    if at_least is not None:
        return ratio >= at_least
    return ratio < below if below is not None else None


def table(rows: Sequence[Row]) -> str:
    """The rows as a plain text table (figure, value, peer, ratio, target, ok)."""
    def number(value: float | None, unit: str = "") -> str:
        if value is None:
            return "—"
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
        return f"{text} {unit}".strip()

    lines = [("figure", "value", "peer", "ratio", "target", "ok")]
    for row in rows:
        ok = "—" if row.ok is None else "yes" if row.ok else "NO"
        lines.append((row.figure, number(row.value, row.unit), number(row.peer, row.unit),
                      "—" if row.ratio is None else f"{row.ratio:.2f}", row.target or "—", ok))
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * width for width in widths))
    notes = [f"  {row.figure}: {row.note}" for row in rows if row.note]
    return "\n".join(out + (["notes:"] + notes if notes else []))


def arguments(description: str, add: Callable[[argparse.ArgumentParser], None]) -> argparse.Namespace:
    """The common flags (--seed, --json, --keep) plus a script's own."""
    parser = argparse.ArgumentParser(description=description)
    add(parser)
    parser.add_argument("--seed", type=int, default=2569, help="makes the same mail every run")
    parser.add_argument("--json", type=Path, help="also write the rows here (bench/run_all.py reads them)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (servers' logs, the store) to look at")
    return parser.parse_args()


def report(rows: Sequence[Row], args: argparse.Namespace) -> None:
    print(table(rows), flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], ensure_ascii=False, indent=1), encoding="utf-8")


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank), as the latency targets are read."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


@contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A fresh folder in /tmp that the servers' unprivileged processes can traverse; removed afterwards unless kept."""
    folder = Path(tempfile.mkdtemp(prefix=f"secretary-bench-{prefix}-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        if keep:
            print(f"(kept {folder})", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the office


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str
    kind: str = "person"


@dataclass
class Staff:
    """Who is in the generated directory: the sample office's groups and officials, and `schools` school directors."""

    groups: list[Person]
    officials: list[Person]
    directors: list[Person]

    def everyone(self) -> list[Person]:
        return [*self.groups, *self.officials, *self.directors]


FIRST = ["สมชาย", "มาลี", "ประเสริฐ", "วิไลวรรณ", "สมศักดิ์", "จันทร์เพ็ญ", "ธนากร", "สุภาพร", "อนุชา", "กาญจนา", "วีระ", "ปราณี"]
LAST = ["ใจดี", "พรหมมา", "วงศ์ใหญ่", "ศรีสุข", "รักเรียน", "ดวงดี", "แสงทอง", "มีสุข", "บุญมา", "ทองคำ", "สายสุวรรณ", "เพชรรัตน์"]
VILLAGES = ["หนองบัว", "ป่าสัก", "โนนสูง", "ดอนแดง", "ห้วยทราย", "นาดี", "โคกกลาง", "บึงงาม", "ท่าช้าง", "หนองแวง"]


def write_directory(path: Path, schools: int) -> Staff:
    """A CSV directory: the sample's groups and office people (moved to the test domains) and `schools` directors.

    The sample's own three school directors are left out, so `role:school_director` is exactly `schools` people.
    """
    sample = tomllib.loads(DIRECTORY.read_text(encoding="utf-8"))
    rows: list[dict[str, str]] = []
    staff = Staff([], [], [])
    for kind, table_name in (("group", "groups"), ("person", "people")):
        for record in sample.get(table_name, []):
            if record.get("role") == "school_director":
                continue
            address = f"{record['emails'][0].split('@')[0]}@{OFFICE_DOMAIN}"
            rows.append({**{k: str(v) for k, v in record.items() if k != "emails"}, "kind": kind, "emails": address})
            (staff.groups if kind == "group" else staff.officials).append(Person(record["id"], record["name"], address, kind))
    for n in range(1, schools + 1):
        name = f"{['นาย', 'นาง', 'นางสาว'][n % 3]}{FIRST[n % len(FIRST)]} {LAST[(n * 7) % len(LAST)]}"
        school = f"โรงเรียนบ้าน{VILLAGES[n % len(VILLAGES)]} {n}"
        person = Person(f"p-school-{n:04d}", name, f"director{n:04d}@{SCHOOL_DOMAIN}")
        rows.append({"kind": "person", "id": person.id, "name": name, "emails": person.email, "position": f"ผู้อำนวยการ{school}",
                     "organisation": school, "role": "school_director"})
        staff.directors.append(person)
    columns = ["kind", "id", "name", "emails", "position", "organisation", "group", "role"]
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return staff


def office_config(folder: Path, source: str, sender: str, schools: int, store: Path | None = None,
                  poll_interval: float = 1.0) -> tuple[Path, Staff]:
    """A configuration (tests/helpers.py's, with our directory and store) for an IMAP/Maildir source and any sender."""
    folder.mkdir(parents=True, exist_ok=True)
    staff = write_directory(folder / "directory.csv", schools)
    if source == "maildir":
        source_toml = 'kind = "maildir"\npath = "mailbox"'
    else:
        host, port = source.split(":")
        source_toml = (f'kind = "imap"\nhost = "{host}"\nport = {port}\nsecurity = "none"\nusername = "{MAILBOX}"\n'
                       f"poll_interval = {poll_interval}\ntimeout = 30")
    if sender == "file":
        sender_toml = 'kind = "file"\npath = "outgoing"'
    else:
        host, port = sender.split(":")
        sender_toml = f'kind = "smtp"\nhost = "{host}"\nport = {port}\nsecurity = "none"\ntimeout = 30'
    config = write_config(folder, source_toml, sender_toml, directory=folder / "directory.csv")
    if store is not None:
        config.write_text(config.read_text(encoding="utf-8").replace('path = "store"', f'path = "{store}"', 1), encoding="utf-8")
    return config, staff


def settings_of(config: Path) -> Settings:
    return load(config, {**os.environ, **ENV})


class NullSender:
    """A sender that writes nowhere: every envelope is accepted at once (the ingest benchmark measures filing, not SMTP)."""

    def __init__(self) -> None:
        self.count = 0

    def send_batch(self, envelopes: Iterable[Envelope], committing: Callable[[str], None] | None = None) -> Iterator[Delivery]:
        for envelope in envelopes:
            self.count += 1
            yield Delivery(envelope.message_id, ok=True)


class RecordingSender(NullSender):
    """Accepts everything and remembers, per recipient, the Message-IDs sent to it (so replies can quote them)."""

    def __init__(self) -> None:
        super().__init__()
        self.to: dict[str, list[str]] = {}
        self.sizes: list[int] = []

    def send_batch(self, envelopes: Iterable[Envelope], committing: Callable[[str], None] | None = None) -> Iterator[Delivery]:
        for envelope in envelopes:
            self.sizes.append(len(envelope.data))
            for address in envelope.recipients:
                self.to.setdefault(address, []).append(envelope.message_id)
            self.count += 1
            yield Delivery(envelope.message_id, ok=True)


# ---------------------------------------------------------------- mail


def fake_pdf(size: int, rng: random.Random) -> bytes:
    """A valid one-page PDF of about `size` bytes: an image of random pixels, incompressible like a scanned letter."""
    side = max(8, int((size / 3) ** 0.5))
    pixels = rng.randbytes(side * side * 3)
    drawing = b"q 400 0 0 400 97 300 cm /Im1 Do Q"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 /Length %d >>\n"
        b"stream\n%s\nendstream" % (side, side, len(pixels), pixels),
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(drawing), drawing),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, start)
    return bytes(out)


@dataclass(frozen=True)
class Mail:
    """One generated message: its bytes, what it is, and whether the service must acknowledge it."""

    raw: bytes
    kind: str
    message_id: str
    sender: str
    acknowledged: bool


@dataclass
class Keys:
    """What replies quote: the Message-ID each person got (invitation, call for items) and the meeting's calendar UID."""

    invitations: dict[str, str] = field(default_factory=dict)
    calls: dict[str, str] = field(default_factory=dict)
    uid: str = f"{INVITED}@{OFFICE_DOMAIN}"


MIX = (("submission", 30), ("reply", 35), ("calendar", 20), ("bounce", 10), ("auto_reply", 5))
TOPICS = ["แผนปฏิบัติการประจำปี", "โครงการพัฒนาครู", "การจัดสรรงบประมาณ", "ผลการประเมินคุณภาพ", "การรับนักเรียน", "ปฏิทินงาน",
          "โครงการอาหารกลางวัน", "การนิเทศภายใน"]
THAI_ANSWERS = ["ยืนยันเข้าร่วมประชุมครับ", "ขอลาประชุมครับ เนื่องจากติดราชการต่างจังหวัด",
                "ติดราชการ จึงมอบหมาย นายสมศักดิ์ รักเรียน รองผู้อำนวยการโรงเรียน เข้าร่วมประชุมแทน",
                "ยินดีเข้าร่วมประชุมค่ะ", "อาจจะติดราชการ จะแจ้งยืนยันอีกครั้งครับ"]
ENGLISH_ANSWERS = ["I will attend the meeting.", "Unfortunately I am unable to attend, as I will be abroad that week.",
                   "I can't make it, so I will send Ms. Jane Doe, deputy director, in my place.", "Yes, I'll be there."]
INVITATION_TEXT = ("เรียน ผู้อำนวยการโรงเรียน\n\nด้วยสำนักงานเขตพื้นที่การศึกษาทดสอบ กำหนดประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569\n"
                   "ในวันพุธที่ 16 ธันวาคม 2569 เวลา 09.00 น. ณ ห้องประชุมใหญ่\nจึงขอเชิญท่านเข้าร่วมประชุมตามวัน เวลา และสถานที่ดังกล่าว\n")


class Backlog:
    """A realistic mixed backlog: agenda submissions with ~200 KB PDFs (30 %), text replies in Thai and English with
    quoted history (35 %), iMIP calendar replies (20 %), DSN bounces (10 %) and out-of-office replies (5 %).

    `senders` limits the directors who write (each must then be a real mailbox when acknowledgements are delivered).
    """

    def __init__(self, staff: Staff, keys: Keys | None = None, seed: int = 2569, senders: int | None = None,
                 pdf_size: int = 200_000) -> None:
        self.staff = staff
        self.keys = keys or Keys()
        self.rng = random.Random(seed)
        self.seed = seed
        self.directors = staff.directors[:senders] if senders else staff.directors
        self.pdf_size = pdf_size
        self.made = 0

    def take(self, count: int) -> list[Mail]:
        kinds = [kind for kind, weight in MIX for _ in range(weight)]
        return [self.one(self.rng.choice(kinds)) for _ in range(count)]

    def one(self, kind: str) -> Mail:
        self.made += 1
        message_id = f"bench-{kind}-{self.seed}-{self.made}@{'mail.' + SCHOOL_DOMAIN}"
        return getattr(self, kind)(message_id)

    def _base(self, sender: Person, subject: str, message_id: str, reply_to_mid: str | None = None) -> EmailMessage:
        mail = EmailMessage(policy=email.policy.SMTP)
        mail["From"] = f"{sender.name} <{sender.email}>"
        mail["To"] = f"สพท.ทดสอบ <{MAILBOX}>"
        mail["Subject"] = subject
        mail["Date"] = format_datetime(BACKLOG_TIME - timedelta(minutes=self.rng.randint(1, 3000)))
        mail["Message-ID"] = f"<{message_id}>"
        if reply_to_mid:
            mail["In-Reply-To"] = f"<{reply_to_mid}>"
            mail["References"] = f"<{reply_to_mid}>"
        return mail

    def submission(self, message_id: str, group: Person | None = None, topic: str = "") -> Mail:
        group = group or self.rng.choice(self.staff.groups)
        topic = topic or self.rng.choice(TOPICS)
        section = self.rng.choice(["เรื่องเพื่อพิจารณา: ขออนุมัติ", "เรื่องเพื่อทราบ: รายงาน"])
        mail = self._base(group, f"{section}{topic} ปีงบประมาณ ๒๕๗๐", message_id, self.keys.calls.get(group.email))
        quoted = "\n".join(f"> {line}" for line in "ขอให้กลุ่มส่งเรื่องเข้าระเบียบวาระการประชุม\nภายในวันพุธที่ 16 ธันวาคม 2569".splitlines())
        mail.set_content(f"เรียน ผู้อำนวยการ\n\nขอเสนอเรื่อง{topic} รายละเอียดตามเอกสารแนบ\n\nขอแสดงความนับถือ\n{group.name}\n\n"
                         f"เมื่อ วันพุธที่ 9 ธ.ค. 2569 08:00 <{MAILBOX}> เขียนว่า:\n{quoted}\n")
        size = int(self.pdf_size * self.rng.uniform(0.75, 1.25))
        mail.add_attachment(fake_pdf(size, self.rng), maintype="application", subtype="pdf", filename=f"{topic}.pdf")
        return Mail(mail.as_bytes(), "submission", message_id, group.email, True)

    def reply(self, message_id: str) -> Mail:
        director = self.rng.choice(self.directors)
        english = self.rng.random() < 0.25
        answer = self.rng.choice(ENGLISH_ANSWERS if english else THAI_ANSWERS)
        subject = "Re: Invitation: school administrators' meeting 11/2569" if english else "Re: ขอเชิญประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569"
        mail = self._base(director, subject, message_id, self.keys.invitations.get(director.email))
        quoted = "\n".join(f"> {line}" for line in INVITATION_TEXT.splitlines())
        if english:
            history = f"On Wed, 9 Dec 2026 at 08:00, Meeting <{MAILBOX}> wrote:\n{quoted}"
            body = f"Dear Sir,\n\n{answer}\n\nBest regards,\n{director.name}\n\n{history}\n"
        elif self.rng.random() < 0.5:
            history = f"เมื่อ วันพุธที่ 9 ธ.ค. 2569 08:00 สพท.ทดสอบ <{MAILBOX}> เขียนว่า:\n{quoted}"
            body = f"{answer}\n\n{director.name}\n\nส่งจาก iPhone ของฉัน\n\n{history}\n"
        else:
            history = (f"________________________________\nจาก: สพท.ทดสอบ <{MAILBOX}>\nส่ง: 9 ธันวาคม 2569 8:00\n"
                       f"ถึง: {director.email}\nเรื่อง: ขอเชิญประชุมผู้บริหารสถานศึกษา\n\n{INVITATION_TEXT}")
            body = f"{answer}\n\nด้วยความเคารพ\n{director.name}\n\n{history}\n"
        mail.set_content(body)
        if self.rng.random() < 0.4:  # webmail sends HTML too
            html = "<div>" + "<br>".join(body.replace("<", "&lt;").splitlines()) + "</div>"
            mail.add_alternative(html, subtype="html")
        return Mail(mail.as_bytes(), "reply", message_id, director.email, True)

    def calendar(self, message_id: str) -> Mail:
        director = self.rng.choice(self.directors)
        partstat, word = self.rng.choice([("ACCEPTED", "Accepted"), ("DECLINED", "Declined"), ("TENTATIVE", "Tentative")])
        mail = self._base(director, f"{word}: การประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569", message_id, self.keys.invitations.get(director.email))
        ics = "\r\n".join([
            "BEGIN:VCALENDAR", "METHOD:REPLY", "PRODID:Microsoft Exchange Server 2010", "VERSION:2.0", "BEGIN:VEVENT",
            f'ATTENDEE;PARTSTAT={partstat};CN="{director.name}":mailto:{director.email}',
            f"ORGANIZER:mailto:{MAILBOX}", f"UID:{self.keys.uid}", "SEQUENCE:0", "DTSTAMP:20261209T030000Z",
            "DTSTART;TZID=Asia/Bangkok:20261216T090000", "DTEND;TZID=Asia/Bangkok:20261216T120000",
            f"SUMMARY:{word}: การประชุมผู้บริหารสถานศึกษา", "END:VEVENT", "END:VCALENDAR", "",
        ])
        mail.set_content("")
        mail.add_alternative(ics, subtype="calendar", params={"method": "REPLY"})
        return Mail(mail.as_bytes(), "calendar", message_id, director.email, True)

    def bounce(self, message_id: str) -> Mail:
        director = self.rng.choice(self.staff.directors)
        permanent = self.rng.random() < 0.7
        status, code = ("5.1.1", 550) if permanent else ("4.2.2", 452)
        original = self.keys.invitations.get(director.email, f"inv-{self.made}@{OFFICE_DOMAIN}")
        date = format_datetime(BACKLOG_TIME - timedelta(minutes=self.rng.randint(1, 3000)))
        boundary = f"DSN{self.made}"
        text = (
            f"From: Mail Delivery System <MAILER-DAEMON@mail.{OFFICE_DOMAIN}>\r\nTo: {MAILBOX}\r\n"
            f"Subject: {'Undelivered Mail Returned to Sender' if permanent else 'Delayed Mail (still being retried)'}\r\n"
            f"Date: {date}\r\nMessage-ID: <{message_id}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is the mail system at host mail.{OFFICE_DOMAIN}.\r\n\r\n"
            f"<{director.email}>: host mx.{SCHOOL_DOMAIN} said: {code} {status} mailbox {'unknown' if permanent else 'full'}\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.{OFFICE_DOMAIN}\r\n\r\n"
            f"Final-Recipient: rfc822; {director.email}\r\nAction: {'failed' if permanent else 'delayed'}\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; {code} {status}\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {MAILBOX}\r\nTo: {director.email}\r\n"
            f"Message-ID: <{original}>\r\n\r\n--{boundary}--\r\n"
        )
        return Mail(text.encode(), "bounce", message_id, "", False)

    def auto_reply(self, message_id: str) -> Mail:
        director = self.rng.choice(self.directors)
        mail = self._base(director, "ตอบกลับอัตโนมัติ: ขอเชิญประชุมผู้บริหารสถานศึกษา", message_id, self.keys.invitations.get(director.email))
        mail["Auto-Submitted"] = "auto-replied"
        mail.set_content("ขณะนี้ข้าพเจ้าอยู่นอกสำนักงาน จะกลับมาปฏิบัติงานในวันที่ 14 ธันวาคม 2569")
        return Mail(mail.as_bytes(), "auto_reply", message_id, director.email, False)


# ---------------------------------------------------------------- meetings


@dataclass
class Opened:
    """An office whose meeting has just queued its invitations."""

    service: Service
    clock: Clock
    before: RecordingSender  # what was sent before the invitations step
    invitations_seconds: float  # how long the invitations step took (rendering every invitation into the outbox)


def open_meetings(settings: Settings, staff: Staff, submissions: int = 2, collecting: bool = True, pdf_size: int = 200_000,
                  seed: int = 2569) -> Opened:
    """Meeting `INVITED` up to and including its invitations step (queued, not sent), and optionally `COLLECTING`
    with its call for items; at `INVITE_DAY`.

    The way a clerk does it: open the meeting, the call for items goes out, `submissions` groups send an item with a
    PDF, the agenda is assembled and approved on paper by the chain, and the invitations step runs. Everything queued
    before the invitations step is drained into the returned recorder; the invitations (and the second meeting's
    calls) are left in the outbox for the caller.
    """
    clock = Clock(datetime(2026, 11, 25, 8, tzinfo=BANGKOK))
    service = build(settings, clock=clock)
    office, outbox = service.office, service.outbox
    recorder = RecordingSender()

    def new_meeting(number: int, start: datetime) -> None:
        apply(office, outbox, HANDLERS, "meeting_new", {
            "kind": "school_administrators", "title": "การประชุมผู้บริหารสถานศึกษา", "number": number, "year_be": 2569,
            "start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat(), "place": "ห้องประชุมใหญ่",
            "chair": "p-director", "secretary": "p-deputy", "attendees": ["role:school_director"],
        }, clock())

    new_meeting(11, INVITED_START)
    run_due_steps(office, outbox, clock())  # T−21: the call for items
    outbox.drain(recorder, clock())
    maker = Backlog(staff, keys_from(recorder, staff), seed=seed, pdf_size=pdf_size)
    for n, group in enumerate(staff.groups[:submissions]):
        service.pipeline.handle(maker.submission(f"setup-{n}-{seed}@mail.{SCHOOL_DOMAIN}", group).raw, f"setup/{n}")
    clock.now = datetime(2026, 12, 3, 8, tzinfo=BANGKOK)  # T−13: reminders, deadline, assembly (renders), approvals
    run_due_steps(office, outbox, clock())
    for approver in ("p-admin-director", "p-director"):
        apply(office, outbox, HANDLERS, "approve", {"meeting": INVITED, "by": approver, "approved": True, "comments": ""}, clock())
    outbox.drain(recorder, clock())
    clock.now = INVITE_DAY
    if collecting:
        new_meeting(12, COLLECTING_START)
    started = time.perf_counter()
    run_due_steps(office, outbox, clock())  # T−7: the invitations (and the next meeting's call for items)
    return Opened(service, clock, recorder, time.perf_counter() - started)


def keys_from(recorder: RecordingSender, staff: Staff) -> Keys:
    """The newest Message-ID each group and director received, for replies to quote."""
    keys = Keys()
    for person in staff.groups:
        if person.email in recorder.to:
            keys.calls[person.email] = recorder.to[person.email][-1]
    for person in staff.directors:
        if person.email in recorder.to:
            keys.invitations[person.email] = recorder.to[person.email][-1]
    return keys


# ---------------------------------------------------------------- servers


def start(server: Dovecot | Postfix | SmtpSink) -> None:
    """Start a server or stop the benchmark with its reason (and its log's tail)."""
    try:
        server.start()
    except ServerError as error:
        raise SystemExit(f"{type(server).__name__} could not start: {error}") from None


def append_all(dovecot: Dovecot, address: str, raws: Iterable[bytes], folder: str = "INBOX") -> int:
    """APPEND many messages on one connection (Dovecot.append opens one per message)."""
    client = dovecot.client(address)
    count = 0
    try:
        for raw in raws:
            client.append(folder, raw)
            count += 1
    finally:
        client.logout()
    return count


def maxrss_mb_children() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

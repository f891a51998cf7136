"""A meeting's first half on the embedded default, in simulated time: call, intake, reminders, assembly, approvals."""

from __future__ import annotations

import email
import email.policy
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from helpers import ENV, message, write_config
from service.config import load
from service.daemon import Daemon, build, make_sender, make_source
from service.mail.maildir import deliver
from service.commands import apply
from service.meetings.clerk import HANDLERS
from service.meetings.meeting import load as load_meeting, shard

BANGKOK = ZoneInfo("Asia/Bangkok")
START = datetime(2026, 12, 16, 9, tzinfo=BANGKOK)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def office(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    settings = load(write_config(tmp_path, 'kind = "maildir"\npath = "mailbox"', 'kind = "file"\npath = "outgoing"'))
    clock = Clock(datetime(2026, 11, 20, 8, tzinfo=BANGKOK))
    service = build(settings, clock=clock)
    said = apply(service.office, service.outbox, HANDLERS, "meeting_new", {
        "kind": "school_administrators", "title": "การประชุมผู้บริหารสถานศึกษา", "number": 11, "year_be": 2569,
        "start": START.isoformat(), "end": (START + timedelta(hours=3)).isoformat(), "place": "ห้องประชุมใหญ่",
        "chair": "p-director", "secretary": "p-deputy", "attendees": ["role:school_director"],
    }, clock())
    assert said == "opened meeting sa2569-11 with 3 attendees"
    service.office.store.close()
    return settings, clock


def run(settings, clock, day: datetime | None = None):
    if day:
        clock.now = day
    daemon = Daemon(build(settings, clock=clock), make_source(settings), make_sender(settings))
    daemon.run(once=True)
    return daemon.handled


def outgoing(settings, to: str, subject_part: str = ""):
    found = []
    for path in sorted(settings.sender.path.glob("*.eml")):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to in mail["To"] and subject_part in mail["Subject"]:
            found.append(mail)
    return found


def reply(settings, to_mail, sender: str, text: str, subject: str | None = None, attachments=()):
    raw = message(sender=sender, subject=subject or f"Re: {to_mail['Subject']}", text=text, attachments=attachments,
                  headers=(("In-Reply-To", to_mail["Message-ID"]), ("References", to_mail["Message-ID"])))
    deliver(settings.source.path, raw, "reply")


def meeting(settings, clock):
    service = build(settings, clock=clock, exclusive=False)
    return load_meeting(service.office.store, "sa2569-11"), {i["id"]: i for i in service.office.store.find(shard("sa2569-11"), "items")}


def test_call_intake_reminders_assembly_and_the_approval_chain(office):
    settings, clock = office
    run(settings, clock, datetime(2026, 11, 25, 8, tzinfo=BANGKOK))  # T−21
    [call] = outgoing(settings, "policy@office.example.go.th", "ขอเรื่องเข้าระเบียบวาระ")
    assert "ภายในวันพุธที่ 2 ธันวาคม 2569" in call.get_body(("plain",)).get_content()
    assert len(outgoing(settings, "@office.example.go.th", "ขอเรื่องเข้าระเบียบวาระ")) == 6, "one call per group"

    reply(settings, call, "นายวิชัย แสงทอง <wichai@office.example.go.th>", "ขอเสนอเรื่องเพื่อพิจารณา รายละเอียดตามแนบ",
          subject="ขออนุมัติแผนปฏิบัติการ ปี ๒๕๗๐", attachments=(("แผน.pdf", b"%PDF-1.4 plan"),))
    [admin_call] = outgoing(settings, "admin@office.example.go.th", "ขอเรื่องเข้าระเบียบวาระ")
    reply(settings, admin_call, "กลุ่มอำนวยการ <admin@office.example.go.th>", "ขอเสนอเรื่องเพื่อทราบครับ", subject="เรื่องเพื่อทราบ: ปฏิทินงานเดือนธันวาคม")
    [finance_call] = outgoing(settings, "finance@office.example.go.th", "ขอเรื่องเข้าระเบียบวาระ")
    reply(settings, finance_call, "กลุ่มการเงิน <finance@office.example.go.th>", "ครั้งนี้ไม่มีเรื่องเสนอครับ")
    run(settings, clock, datetime(2026, 11, 26, 9, tzinfo=BANGKOK))
    state, items = meeting(settings, clock)
    assert sorted(items) == ["g-admin-1", "g-policy-1"]
    assert items["g-policy-1"]["section"] == "consider" and items["g-policy-1"]["attachments"][0]["name"] == "แผน.pdf"
    [ack] = outgoing(settings, "wichai@office.example.go.th", "ได้รับเรื่อง")
    assert "ระเบียบวาระที่ 5 เรื่องเพื่อพิจารณา" in ack.get_body(("plain",)).get_content()

    run(settings, clock, datetime(2026, 11, 29, 8, tzinfo=BANGKOK))  # T−17: groups that said nothing are reminded
    reminded = {m["To"] for m in outgoing(settings, "@office.example.go.th", "แจ้งเตือน")}
    assert reminded == {"personnel@office.example.go.th", "promotion@office.example.go.th", "supervision@office.example.go.th"}

    run(settings, clock, datetime(2026, 12, 3, 8, tzinfo=BANGKOK))  # past T−14 and T−13: assembled and sent up the chain
    state, _ = meeting(settings, clock)
    draft = state["drafts"][-1]
    assert draft["status"] == "awaiting"
    assert [e["title"] for e in draft["agenda"][4]["entries"][0]["entries"]] == ["ขออนุมัติแผนปฏิบัติการ ปี ๒๕๗๐"]
    [request] = outgoing(settings, "somsri@office.example.go.th", "ขอความเห็นชอบ")
    papers = {part.get_filename(): part.get_content() for part in request.iter_attachments()}
    assert sorted(papers) == ["agenda-v1.pdf", "invitation-v1.pdf"]
    agenda_text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(papers["agenda-v1.pdf"])).pages)
    assert "แผนปฏิบัติการ" in agenda_text and "๕.๑.๑" in agenda_text, "the item, numbered in Thai digits"
    assert (settings.store / "meetings" / "sa2569-11" / "documents" / "agenda-v1.docx").exists()
    assert (settings.store / draft["papers"]["pack_pdf"]).exists()
    assert draft["papers"]["not_in_pack"][0].startswith("แผน.pdf:"), "an attachment that is no PDF is named, not packed"

    # Someone else answering through the director's key does not count.
    reply(settings, request, "นายวิชัย แสงทอง <wichai@office.example.go.th>", "เห็นชอบ")
    reply(settings, request, "นางสาวสมศรี ใจงาม <somsri@office.example.go.th>", "เห็นชอบครับ")
    run(settings, clock)
    [to_director] = outgoing(settings, "director@office.example.go.th", "ขอความเห็นชอบ")
    reply(settings, to_director, "นายประเสริฐ วงศ์ใหญ่ <director@office.example.go.th>", "ส่งคืนแก้ไข ขอให้เพิ่มรายละเอียดงบประมาณในวาระ 5.1")
    run(settings, clock)
    state, _ = meeting(settings, clock)
    draft = state["drafts"][-1]
    assert draft["status"] == "returned"
    assert [a["by"] for a in draft["answers"]] == ["p-admin-director", "p-director"]
    [returned] = outgoing(settings, "clerk@office.test", "ส่งคืนแก้ไข")
    assert "เพิ่มรายละเอียดงบประมาณ" in returned.get_body(("plain",)).get_content()

    # The clerk revises: a new draft starts the chain again; a paper approval and an e-mail approval finish it.
    late = message(sender="กลุ่มการเงิน <finance@office.example.go.th>", subject="เรื่องเพื่อทราบ: รายงานการเบิกจ่าย", text="ขอเสนอเพิ่มเติมครับ")
    deliver(settings.source.path, late, "late")
    run(settings, clock)
    _, items = meeting(settings, clock)
    assert items["g-finance-1"]["status"] == "held_late"
    service = build(settings, clock=clock)
    apply(service.office, service.outbox, HANDLERS, "decide_late", {"meeting": "sa2569-11", "item": "g-finance-1", "accept": True}, clock())
    assert apply(service.office, service.outbox, HANDLERS, "new_draft", {"meeting": "sa2569-11"}, clock()) == "draft 2 of sa2569-11 sent up the chain"
    said = apply(service.office, service.outbox, HANDLERS, "approve", {"meeting": "sa2569-11", "by": "p-admin-director", "approved": True}, clock())
    assert said == "recorded the paper approval by p-admin-director on sa2569-11"
    service.office.store.close()
    run(settings, clock)
    to_director = outgoing(settings, "director@office.example.go.th", "ร่างที่ 2")
    assert len(to_director) == 1
    reply(settings, to_director[0], "นายประเสริฐ วงศ์ใหญ่ <director@office.example.go.th>", "อนุมัติ")
    run(settings, clock)
    state, _ = meeting(settings, clock)
    draft = state["drafts"][-1]
    assert (draft["version"], draft["status"]) == (2, "approved")
    assert draft["answers"][0]["on_paper"] and not draft["answers"][1]["on_paper"]
    assert [e["title"] for e in draft["agenda"][3]["entries"][-1]["entries"]] == ["รายงานการเบิกจ่าย"]

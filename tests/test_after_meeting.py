"""A meeting's second half in simulated time, to the archive: notes, brief resolutions, objections, minutes, follow-ups, an order.

It runs on the embedded default and on the real servers (IMAP from Dovecot,
SMTP through Postfix into each person's Dovecot mailbox). The first half is
played quickly (approvals on paper), then everything after the meeting goes by
e-mail as people would send it: the clerk's notes as a Word file, approvals
(one of them after the brief resolutions' day), an objection in Thai, a silent
attendee, the director's decision, a group's progress report, an order signed
and sent; then the next meeting of the kind carries the minutes and the open
follow-up, and the meeting's archive is exported and its ISO image read back.
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

import pytest
from docx import Document
from pypdf import PdfReader

from service.daemon import build
from service.meetings.followups import SHARD
from service.meetings.meeting import load as load_meeting, shard
from worlds import Clock, clerk, make_world, outgoing, reply, run

BANGKOK = ZoneInfo("Asia/Bangkok")
START = datetime(2026, 12, 16, 9, tzinfo=BANGKOK)
MEETING = "sa2569-11"

NOTES = """เริ่มประชุม 09.00 น.
เลิกประชุม 12.10 น.
ไม่มาประชุม: Mr. John Carter (ติดราชการต่างประเทศ)

วาระที่ 1 เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ
ประธานแจ้งนโยบายลดภาระงานครู
มติ: ที่ประชุมรับทราบ

วาระที่ ๕.๑.๑ ขออนุมัติแผนปฏิบัติการ ปี ๒๕๗๐
กลุ่มนโยบายและแผนนำเสนอแผน ที่ประชุมอภิปรายเรื่องงบประมาณโครงการที่ ๓
มติ: เห็นชอบ
มอบหมาย: กลุ่มนโยบายและแผน | ปรับงบประมาณโครงการที่ ๓ และเสนอผู้อำนวยการลงนาม | 15 ม.ค. 2570
คำสั่ง: แต่งตั้งคณะกรรมการติดตามแผนปฏิบัติการ | กลุ่มนโยบายและแผน, กลุ่มอำนวยการ
  ด้วยที่ประชุมผู้บริหารสถานศึกษามีมติเห็นชอบแผนปฏิบัติการ จึงแต่งตั้งคณะกรรมการติดตามแผน
"""


@pytest.fixture(params=["embedded", "servers"])
def office(request, tmp_path, monkeypatch):
    settings, world = make_world(request, tmp_path, monkeypatch)
    clock = Clock(datetime(2026, 11, 20, 8, tzinfo=BANGKOK))
    for number, start in ((11, START), (1, datetime(2027, 2, 10, 9, tzinfo=BANGKOK))):
        clerk(settings, clock, "meeting_new", {
            "kind": "school_administrators", "title": "การประชุมผู้บริหารสถานศึกษา", "number": number, "year_be": start.year + 543,
            "start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat(), "place": "ห้องประชุมใหญ่",
            "chair": "p-director", "secretary": "p-deputy", "attendees": ["role:school_director"],
        })
    return settings, clock, world


def state(settings, clock, meeting_id: str = MEETING):
    service = build(settings, clock=clock, exclusive=False)
    store = service.office.store
    return load_meeting(store, meeting_id), store


def day(month: int, date: int, hour: int = 8, year: int = 2026) -> datetime:
    return datetime(year, month, date, hour, tzinfo=BANGKOK)


def first_half(settings, clock, world) -> None:
    """Call, one item, approvals on paper, invitations and two answers (one a delegation): the meeting is ready."""
    A = world.address
    run(settings, clock, day(11, 25))
    [call] = outgoing(world, settings, A("policy"), "ขอเรื่องเข้าระเบียบวาระ")
    reply(world, settings, call, f"นายวิชัย แสงทอง <{A('wichai')}>", "ขอเสนอเรื่องเพื่อพิจารณา", subject="ขออนุมัติแผนปฏิบัติการ ปี ๒๕๗๐")
    run(settings, clock, day(11, 26))
    run(settings, clock, day(12, 3))
    for approver in ("p-admin-director", "p-director"):
        clerk(settings, clock, "approve", {"meeting": MEETING, "by": approver, "approved": True})
    run(settings, clock, day(12, 9))
    [to_somchai] = outgoing(world, settings, A("somchai"), "ขอเชิญประชุม")
    reply(world, settings, to_somchai, f"นายสมชาย ใจดี <{A('somchai')}>", "ยืนยันเข้าร่วมประชุมครับ")
    [to_malee] = outgoing(world, settings, A("malee"), "ขอเชิญประชุม")
    reply(world, settings, to_malee, f"ธุรการโรงเรียน <{A('school002')}>",
          "ผู้อำนวยการติดราชการ จึงมอบหมาย นางสาวจันทร์เพ็ญ ดวงดี รองผู้อำนวยการโรงเรียน เข้าร่วมประชุมแทน")
    run(settings, clock, day(12, 9, 11))


def notes_as_word(text: str) -> bytes:
    document = Document()
    for line in text.splitlines():
        document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def send_notes(world, settings, request, sender: str, attachment: bytes, now: datetime) -> None:
    """The clerk answers the request for notes from Outlook, the notes as a Word file."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, settings.office.mailbox, f"RE: {request['Subject']}"
    mail["Message-ID"], mail["Date"] = make_msgid(domain="office.test"), format_datetime(now)
    mail["In-Reply-To"] = mail["References"] = request["Message-ID"]
    mail.set_content("ส่งบันทึกการประชุมตามแนบค่ะ\n\nกนกวรรณ")
    mail.add_attachment(attachment, maintype="application", subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                        filename="บันทึกการประชุม 11-2569.docx")
    world.deliver(settings, mail.as_bytes())


def text_of(mail) -> str:
    return mail.get_body(("plain",)).get_content()


def folded(text: str) -> str:
    """Text as it can be compared with a PDF's: SARA AM as SARA AA (pypdf loses it from Sarabun: THAI-DOCUMENTS.md), no spaces or line breaks."""
    return "".join(text.replace("ำ", "า").split())


def pdf_text(data: bytes) -> str:
    return folded("".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


def test_after_the_meeting_to_the_archive(office, tmp_path):
    settings, clock, world = office
    A = world.address
    first_half(settings, clock, world)

    # T: the clerk is asked for the notes, with an outline prefilled from the agenda and the answers.
    run(settings, clock, day(12, 16, 13))
    [request] = outgoing(world, settings, world.clerk(), "ขอบันทึกการประชุม")
    outline = next(p for p in request.iter_attachments() if p.get_filename().endswith(".txt")).get_content()
    assert "วาระที่ 5.1.1 ขออนุมัติแผนปฏิบัติการ ปี ๒๕๗๐" in outline and "ไม่มาประชุม: Mr. John Carter" in outline

    # T+1: the notes come back as a Word file; the brief resolutions are drafted and go to the first approver.
    send_notes(world, settings, request, f"นางสาวกนกวรรณ มีสุข <{world.clerk()}>", notes_as_word(NOTES), day(12, 17, 9))
    run(settings, clock, day(12, 17, 10))
    [ack] = outgoing(world, settings, world.clerk(), "ได้รับบันทึกการประชุม")
    assert "2 วาระ" in text_of(ack) and "งานที่มอบหมาย 1 งาน" in text_of(ack)
    meeting, _ = state(settings, clock)
    assert meeting["records"][0]["items"][1]["actions"][0]["group"] == "g-policy"
    [to_somsri] = outgoing(world, settings, A("somsri"), "มติที่ประชุม")
    draft_pdf = next(p for p in to_somsri.iter_attachments() if p.get_filename().startswith("resolutions")).get_content()
    assert folded("ปรับงบประมาณโครงการที่ ๓") in pdf_text(draft_pdf), "the action, in Thai digits"
    reply(world, settings, to_somsri, f"นางสาวสมศรี ใจงาม <{A('somsri')}>", "เห็นชอบค่ะ")
    run(settings, clock, day(12, 18))
    [to_deputy] = outgoing(world, settings, A("deputy"), "มติที่ประชุม")

    # T+10 comes and goes with the draft waiting for the deputy: the step is done (the notes are in), nothing nags.
    run(settings, clock, day(12, 25))
    assert outgoing(world, settings, world.clerk(), "เลยกำหนด") == []
    # A late approval (after the brief resolutions' day) still moves the chain on.
    reply(world, settings, to_deputy, f"นางวิไลวรรณ ศรีสุข <{A('deputy')}>", "เห็นชอบ")
    run(settings, clock, day(12, 28))
    [to_director] = outgoing(world, settings, A("director"), "มติที่ประชุม")
    reply(world, settings, to_director, f"นายประเสริฐ วงศ์ใหญ่ <{A('director')}>", "อนุมัติ")
    run(settings, clock, day(12, 29))

    # Circulated: to those present (not to the absent one), with the objection form; to every group, the policy group with its action.
    meeting, _ = state(settings, clock)
    assert meeting["circulated"]["window_ends"] == "2027-01-05"
    [circulated] = outgoing(world, settings, A("somchai"), "แจ้งเวียนมติ")
    assert {p.get_filename() for p in circulated.iter_attachments()} >= {
        f"มติที่ประชุมโดยย่อ-{MEETING}.pdf", "แบบฟอร์มแจ้งความเห็นเกี่ยวกับมติที่ประชุม.docx"}
    assert len(outgoing(world, settings, A("malee"), "แจ้งเวียนมติ")) == 1
    assert outgoing(world, settings, A("john.carter"), "แจ้งเวียนมติ") == [], "the absent member endorses nothing"
    [for_policy] = outgoing(world, settings, A("policy"), "เพื่อดำเนินการ")
    assert "ปรับงบประมาณโครงการที่ ๓" in text_of(for_policy)
    assert {p.get_filename() for p in for_policy.iter_attachments()} >= {"แบบฟอร์มติดตามงาน.pdf"}
    [for_finance] = outgoing(world, settings, A("finance"), "เพื่อดำเนินการ")
    assert "ไม่มีงานที่มอบหมาย" in text_of(for_finance)

    # An objection in Thai from somchai; malee stays silent. Someone else using somchai's key is not counted.
    reply(world, settings, circulated, f"นายวิชัย แสงทอง <{A('wichai')}>", "ขอแก้ไขมติวาระที่ 5.1.1 เป็น \"ไม่เห็นชอบ\"")
    reply(world, settings, circulated, f"นายสมชาย ใจดี <{A('somchai')}>",
          "เรียน ประธาน\n\nขอแก้ไขมติวาระที่ 5.1.1 จาก \"เห็นชอบ\" เป็น \"เห็นชอบในหลักการ\" เนื่องจากยังไม่ได้ปรับงบประมาณโครงการที่ ๓\n\nสมชาย")
    # The order goes to the director for signature; signed, it takes the office's next number and goes to the groups.
    [order_request] = outgoing(world, settings, A("director"), "คำสั่ง")
    reply(world, settings, order_request, f"นายประเสริฐ วงศ์ใหญ่ <{A('director')}>", "ลงนามแล้ว")
    run(settings, clock, day(12, 30))
    [objection_ack] = outgoing(world, settings, A("somchai"), "ได้รับความเห็น")
    assert "เห็นชอบในหลักการ" in text_of(objection_ack)
    [issued] = outgoing(world, settings, A("admin"), "คำสั่งที่ 1/2569")
    order_pdf = next(p for p in issued.iter_attachments()).get_content()
    assert folded("แต่งตั้งคณะกรรมการติดตามแผนปฏิบัติการ") in pdf_text(order_pdf) and "๑/๒๕๖๙" in pdf_text(order_pdf)
    _, store = state(settings, clock)
    assert [(o["person"], o["item"]) for o in store.find(shard(MEETING), "objections")] == [("p-school-001", "5.1.1")]

    # The follow-up: reminded a week before it is due; the group reports progress by replying.
    run(settings, clock, day(1, 8, year=2027))
    [reminder] = outgoing(world, settings, A("policy"), "แจ้งเตือน: งานตามมติ")
    reply(world, settings, reminder, f"กลุ่มนโยบายและแผน <{A('policy')}>", "อยู่ระหว่างดำเนินการ คาดว่าแล้วเสร็จสิ้นเดือนนี้")

    # The window closed on 5 January: silence is endorsement; the objection goes to the director, who accepts it.
    run(settings, clock, day(1, 8, 10, year=2027))
    _, store = state(settings, clock)
    endorsements = {e["person"]: e["status"] for e in store.find(shard(MEETING), "endorsements")}
    assert endorsements == {"p-school-001": "objected", "p-school-002": "endorsed_by_silence"}
    [action] = store.find(SHARD, "actions")
    assert action["status"] == "in_progress" and "ระหว่างดำเนินการ" in action["reports"][0]["note"]
    [compiled] = outgoing(world, settings, A("director"), "สรุปความเห็น")
    reply(world, settings, compiled, f"นายประเสริฐ วงศ์ใหญ่ <{A('director')}>", "เห็นชอบข้อ 1")
    run(settings, clock, day(1, 11, year=2027))

    # The minutes: drafted with the accepted correction, who came (the delegate in the member's place) and who did not, up their chain.
    meeting, _ = state(settings, clock)
    assert meeting["objection_review"]["decided"] and len(meeting["objection_review"]["accepted"]) == 1
    [minutes_request] = outgoing(world, settings, A("somsri"), "รายงานการประชุม")
    minutes = (pdf_text(next(p for p in minutes_request.iter_attachments() if p.get_filename().startswith("minutes")).get_content()))
    for words in ("ผู้มาประชุม", "ผู้ไม่มาประชุม", "John Carter", "ติดราชการต่างประเทศ", "จันทร์เพ็ญ", "ประชุมแทน", "เห็นชอบในหลักการ",
                  "เลิกประชุมเวลา", "ผู้จดรายงานการประชุม", "ผู้ตรวจรายงานการประชุม"):
        assert folded(words) in minutes, words
    for approver in ("p-admin-director", "p-deputy", "p-director"):
        clerk(settings, clock, "approve", {"meeting": MEETING, "by": approver, "approved": True, "paper": "minutes"})
    meeting, _ = state(settings, clock)
    assert meeting["papers"]["minutes"]["drafts"][-1]["status"] == "approved" and meeting["papers"]["minutes"]["drafts"][-1]["final"]

    # The next meeting of the kind: item 2 endorses these minutes (in its pack), item 3 carries the open follow-up.
    run(settings, clock, day(1, 27, year=2027))
    following, _ = state(settings, clock, "sa2570-1")
    agenda = following["drafts"][-1]["agenda"]
    [endorse] = agenda[1]["entries"]
    assert endorse["number"] == "2.1" and "ครั้งที่ 11/2569" in endorse["title"] and endorse["pdf"].endswith(".pdf")
    [continued] = agenda[2]["entries"]
    assert continued["number"] == "3.1" and "ปรับงบประมาณโครงการที่ ๓" in continued["text"] and "อยู่ระหว่างดำเนินการ" in continued["text"]
    pack = PdfReader(settings.store / following["drafts"][-1]["papers"]["pack_pdf"])
    assert [item.title for item in pack.outline][1].startswith("2.1 รับรองรายงาน")

    # The archive: every message in and out, every document version, the records; the ISO image read back byte for byte.
    from service.archive import export_meeting
    import pycdlib

    result = export_meeting(state(settings, clock)[1], MEETING, tmp_path / "archive", iso=True)
    assert not result.problems
    folder = tmp_path / "archive" / MEETING
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"index.html", "index.csv", "records/attendance.csv", "records/approvals.csv"} <= names
    assert any(n.startswith("documents/minutes-v") for n in names) and any(n.startswith("documents/order-v") for n in names)
    assert sum(n.startswith("mail/in/") for n in names) >= 10 and sum(n.startswith("mail/out/") for n in names) >= 20
    image = pycdlib.PyCdlib()
    image.open(str(result.iso))
    try:
        for name in names:
            data = io.BytesIO()
            image.get_file_from_iso_fp(data, joliet_path="/" + name)
            assert hashlib.sha256(data.getvalue()).digest() == hashlib.sha256((folder / name).read_bytes()).digest(), name
    finally:
        image.close()


def test_the_clerk_is_reminded_of_the_notes_and_told_when_they_are_late(office):
    settings, clock, world = office
    first_half(settings, clock, world)
    run(settings, clock, day(12, 21))  # T+5
    assert len(outgoing(world, settings, world.clerk(), "แจ้งเตือน: ขอบันทึกการประชุม")) == 1
    run(settings, clock, day(12, 25))  # T+10 falls on a Saturday: the step is on Friday the 25th
    run(settings, clock, day(12, 25, 15))
    assert len(outgoing(world, settings, world.clerk(), "เลยกำหนด")) == 1, "once a day"
    run(settings, clock, day(12, 28))
    assert len(outgoing(world, settings, world.clerk(), "เลยกำหนด")) == 2
    meeting, _ = state(settings, clock)
    assert "brief_resolutions" not in meeting["done"]

"""A PMQA self-assessment round by e-mail, on the embedded default and on the real servers.

The clerk starts the round; each champion gets one request per topic (the
organisational profile and หมวด ๑–๗) and answers with the report in the text
and the evidence attached, except the champion of หมวด ๗, who is reminded.
The compiled report (PDF and DOCX) has the profile first and all seven
categories; the next year's round shows what changed since this one.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from docx import Document

from service.daemon import build
from service.digest import preview
from service.pmqa import load_pmqa, status_rows
from service.rounds import asks_of, rounds
from worlds import Clock, clerk, make_world, outgoing, reply, run

BANGKOK = ZoneInfo("Asia/Bangkok")
CATEGORIES = ["การนำองค์การ", "การวางแผนเชิงยุทธศาสตร์", "การให้ความสำคัญกับผู้รับบริการและผู้มีส่วนได้ส่วนเสีย",
              "การวัด การวิเคราะห์ และการจัดการความรู้", "การมุ่งเน้นบุคลากร", "การมุ่งเน้นระบบปฏิบัติการ", "ผลลัพธ์การดำเนินการ"]
CHAMPIONS = {"wichai": ("นายวิชัย แสงทอง", 3), "somsri": ("นางสาวสมศรี ใจงาม", 3), "deputy": ("นางวิไลวรรณ ศรีสุข", 2)}

pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs poppler-utils")


def day(month: int, number: int, hour: int = 8, year: int = 2026) -> datetime:
    return datetime(year, month, number, hour, tzinfo=BANGKOK)


def folded(text: str) -> str:
    """Thai as the PDF text layer gives it back: no marks above or below the line, SARA AM as SARA AA, no spaces."""
    return "".join(c for c in text.replace("\u0e33", "\u0e32") if unicodedata.category(c) != "Mn" and not c.isspace())


@pytest.fixture(params=["embedded", "servers"])
def office(request, tmp_path, monkeypatch):
    settings, world = make_world(request, tmp_path, monkeypatch)
    return settings, Clock(day(12, 1)), world


def test_champions_submit_one_is_reminded_and_the_report_has_all_seven_categories(office):
    settings, clock, world = office
    A = world.address
    assert "8 topics" in clerk(settings, clock, "pmqa_start", {"deadline": "2026-12-20"})
    run(settings, clock)
    requests = {local: outgoing(world, settings, A(local), "PMQA") for local in CHAMPIONS}
    assert {local: len(mails) for local, mails in requests.items()} == {local: n for local, (_, n) in CHAMPIONS.items()}
    for local, mails in requests.items():
        name = CHAMPIONS[local][0]
        for mail in mails:
            if "ผลลัพธ์การดำเนินการ" in mail["Subject"]:
                continue  # หมวด ๗ stays silent
            topic = mail["Subject"].split("PMQA ", 1)[1]
            reply(world, settings, mail, f"{name} <{A(local)}>", f"ผลการดำเนินงาน {topic}\nดำเนินการตามแผนครบถ้วน",
                  attachments=((f"หลักฐาน-{topic[:12]}.pdf", b"%PDF-1.4 evidence"),))
    run(settings, clock, day(12, 2))
    [ack, *_] = outgoing(world, settings, A("somsri"), "ได้รับคำตอบของท่านแล้ว")
    assert "หลักฐาน 1 รายการ" in ack.get_body(("plain",)).get_content()

    run(settings, clock, day(12, 13))  # deadline − 7: only หมวด ๗ is reminded
    reminders = outgoing(world, settings, A("deputy"), "แจ้งเตือน")
    assert [m["Subject"].split("หมวด ")[1] for m in reminders] == ["7 ผลลัพธ์การดำเนินการ"]
    assert outgoing(world, settings, A("wichai"), "แจ้งเตือน") == []

    service = build(settings, clock=clock, exclusive=False)
    [head] = rounds(service.office, "pmqa")
    states = {row["number"]: row["state"] for row in status_rows(service.office, head, day(12, 13).date())}
    assert states == {0: "answered", 1: "answered", 2: "answered", 3: "answered", 4: "answered", 5: "answered", 6: "answered", 7: "reminded"}
    assert all(len(a["answers"][-1]["files"]) == 1 for a in asks_of(service.office, head["id"]) if a["topic"] != "7")
    digest, mail = preview(service.office, day(12, 14, 7))
    [shown] = digest.rounds
    assert shown["answered"] == 7 and shown["silent"] == ["นางวิไลวรรณ ศรีสุข"]
    service.office.store.close()

    run(settings, clock, day(12, 21))  # the deadline passed: the round closes and the report goes to the clerk
    [report] = outgoing(world, settings, world.clerk(), "รายงานการประเมินตนเอง PMQA")
    pdf = next(p for p in report.iter_attachments() if p.get_filename().endswith(".pdf")).get_content()
    text = folded(subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode())
    assert folded("ลักษณะสำคัญขององค์การ") in text
    positions = [text.index(folded(title)) for title in CATEGORIES]
    assert positions == sorted(positions) and text.index(folded("ลักษณะสำคัญขององค์การ")) < positions[0]
    assert folded("ยังไม่ได้รับรายงาน") in text and folded("หลักฐานประกอบ") in text

    clock.now = day(11, 1, year=2027)  # next year's round: one category resubmitted with new evidence
    clerk(settings, clock, "pmqa_start", {"deadline": "2027-11-30"})
    run(settings, clock)
    [again] = [m for m in outgoing(world, settings, A("deputy"), "การนำองค์การ") if "2570" in m.get_body(("plain",)).get_content()]
    reply(world, settings, again, f"นางวิไลวรรณ ศรีสุข <{A('deputy')}>", "ผลการดำเนินงานหมวด 1 ปรับปรุงใหม่",
          attachments=(("แผนภาวะผู้นำ-2570.pdf", b"%PDF-1.4 new"),))
    run(settings, clock, day(11, 2, year=2027))
    said = clerk(settings, clock, "pmqa_report", {})
    service = build(settings, clock=clock, exclusive=False)
    [_, second] = rounds(service.office, "pmqa")
    docx = Document(io.BytesIO(service.office.store.read_file(second["reports"][-1]["docx"])))
    words = "\n".join(p.text for p in docx.paragraphs)
    assert "pmqa-2570" in said and "การเปลี่ยนแปลงจากรอบก่อน (pmqa-2569)" in words
    assert "หลักฐานใหม่: แผนภาวะผู้นำ-2570.pdf" in words and "ยังไม่ได้รับรายงานในรอบนี้" in words
    service.office.store.close()


def test_the_rules_have_the_profile_and_the_seven_official_categories():
    from service.config import PROJECT_ROOT

    book = load_pmqa(PROJECT_ROOT / "rules")
    assert [t.title for t in book.topics[1:]] == CATEGORIES
    assert book.topics[0].title == "ลักษณะสำคัญขององค์การ"
    assert set(book.committees) == {"steering", "working"}


def test_a_committee_meets_on_the_meeting_engine(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from service.meetings.meeting import all_meetings, load

    settings, _ = make_world(SimpleNamespace(param="embedded"), tmp_path, monkeypatch)
    clock = Clock(day(12, 1))
    said = clerk(settings, clock, "pmqa_committee", {"committee": "steering", "number": 1, "year_be": 2570, "place": "ห้องประชุม ๑",
                                                     "start": day(1, 20, 9, year=2027).isoformat(), "end": day(1, 20, 12, year=2027).isoformat()})
    service = build(settings, clock=clock, exclusive=False)
    [summary] = all_meetings(service.office.store)
    meeting = load(service.office.store, summary["id"])
    assert said.startswith("opened meeting ps2570-1") and meeting["kind"] == "pmqa_steering"
    assert meeting["chair"] == "p-director" and set(meeting["attendees"]) == {"p-director", "p-admin-director", "p-deputy", "p-policy-director"}
    service.office.store.close()


def test_the_team_may_send_the_report_and_no_one_else(tmp_path, monkeypatch):
    from types import SimpleNamespace

    settings, world = make_world(SimpleNamespace(param="embedded"), tmp_path, monkeypatch)
    clock = Clock(day(12, 1))
    clerk(settings, clock, "pmqa_start", {"deadline": "2026-12-20"})
    run(settings, clock)
    [leading] = outgoing(world, settings, world.address("deputy"), "การนำองค์การ")
    reply(world, settings, leading, f"นายวิชัย แสงทอง <{world.address('wichai')}>", "รายงานหมวด 1 ส่งแทน")  # group g-policy: not the team
    reply(world, settings, leading, f"นางสาวกนกวรรณ มีสุข <{world.address('clerk')}>", "รายงานหมวด 1 จากคณะทำงาน")  # group g-admin: the team
    run(settings, clock, day(12, 2))
    service = build(settings, clock=clock, exclusive=False)
    [head] = rounds(service.office, "pmqa")
    [ask] = [a for a in asks_of(service.office, head["id"]) if a["topic"] == "1"]
    assert [a["text"] for a in ask["answers"]] == ["รายงานหมวด 1 จากคณะทำงาน"]
    service.office.store.close()

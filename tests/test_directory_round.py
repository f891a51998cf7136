"""The directory's verification round by e-mail, on the embedded default, on the real servers and with the store in PostgreSQL.

The clerk starts the round; every school and the agency get their record; one
school corrects its phone and its new director in a sentence, the agency
returns the form unchanged, the other school stays silent and is reminded;
the clerk approves the correction; the record changes, its history keeps the
old values, and the next mailing uses the new record.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from service.daemon import build
from service.digest import preview
from service.directory.records import record_of
from service.directory.verification import pending
from service.rounds import asks_of, progress, rounds
from worlds import Clock, clerk, make_world, outgoing, reply, run

BANGKOK = ZoneInfo("Asia/Bangkok")
SUBJECT = "ตรวจสอบข้อมูลพื้นฐาน"


def day(month: int, number: int, hour: int = 8) -> datetime:
    return datetime(2026, month, number, hour, tzinfo=BANGKOK)


@pytest.fixture(params=["embedded", "servers", "postgresql"])
def office(request, tmp_path, monkeypatch):
    settings, world = make_world(request, tmp_path, monkeypatch)
    return settings, Clock(day(12, 1)), world


def test_a_school_corrects_its_record_by_reply_and_the_clerk_approves(office):
    settings, clock, world = office
    A = world.address
    said = clerk(settings, clock, "directory_verify", {"deadline": "2026-12-15"})
    assert "3 asked" in said
    run(settings, clock)
    [to_school] = outgoing(world, settings, A("school001"), SUBJECT)
    text = to_school.get_body(("plain",)).get_content()
    assert "042-111-001" in text and "นายสมชาย ใจดี" in text and "15 ธันวาคม 2569" in text
    form = next(p for p in to_school.iter_attachments() if p.get_filename().endswith(".txt")).get_content()
    assert "โทรศัพท์: 042-111-001" in form
    [to_agency] = outgoing(world, settings, A("pes"), SUBJECT)
    agency_form = next(p for p in to_agency.iter_attachments()).get_content()

    reply(world, settings, to_school, f"ธุรการโรงเรียน <{A('school001')}>",
          "เรียน สพป.\nเบอร์โทรใหม่ 042-999-001\nผู้อำนวยการคนใหม่ชื่อนายสมหมาย ดีมาก ตั้งแต่ 1 ธ.ค. 2569\n\nขอบคุณค่ะ")
    reply(world, settings, to_agency, f"สารบรรณ <{A('pes')}>", "ตามแบบที่แนบ", attachments=(("แบบตรวจสอบข้อมูลพื้นฐาน.txt", agency_form.encode()),))
    run(settings, clock, day(12, 2))
    [ack] = outgoing(world, settings, A("school001"), "ได้รับคำตอบของท่านแล้ว")
    assert "042-999-001" in ack.get_body(("plain",)).get_content()

    service = build(settings, clock=clock, exclusive=False)
    [correction] = pending(service.office)
    assert correction["record"] == "s-001"
    assert correction["changes"] == {"phone": "042-999-001", "administrator": "นายสมหมาย ดีมาก"}
    assert service.office.directory.get("s-001").phone == "042-111-001"  # nothing changes before the clerk's OK
    assert record_of(service.office.store, "a-pes")["last_verified"] == "2026-12-02"  # the form came back unchanged
    service.office.store.close()

    run(settings, clock, day(12, 8))  # deadline − 7: the silent school is reminded, once
    run(settings, clock, day(12, 8, 12))
    assert len(outgoing(world, settings, A("school002"), "แจ้งเตือน")) == 1
    assert outgoing(world, settings, A("school001"), "แจ้งเตือน") == []

    clerk(settings, clock, "directory_review", {"decision": "approve", "ids": [correction["id"]]})
    service = build(settings, clock=clock, exclusive=False)
    school = service.office.directory.get("s-001")
    assert (school.phone, school.administrator) == ("042-999-001", "นายสมหมาย ดีมาก")
    record = record_of(service.office.store, "s-001")
    assert record["last_verified"] == "2026-12-08"
    assert record["history"][-1]["changes"]["phone"] == ["042-111-001", "042-999-001"]
    assert "correction 1" in record["history"][-1]["source"]
    [head] = rounds(service.office, "verification")
    states = {a["recipient"]: a["state"] for a in progress(service.office, head, day(12, 8).date())["asks"]}
    assert states == {"s-001": "answered", "s-002": "reminded", "a-pes": "answered"}
    digest, _ = preview(service.office, day(12, 9, 7))
    [shown] = digest.rounds
    assert (shown["answered"], shown["total"], shown["pending_corrections"]) == (2, 3, 0)
    service.office.store.close()


def test_a_reply_from_someone_else_is_not_filed_against_the_school(office):
    settings, clock, world = office
    A = world.address
    clerk(settings, clock, "directory_verify", {"deadline": "2026-12-15"})
    run(settings, clock)
    [to_school] = outgoing(world, settings, A("school002"), SUBJECT)
    reply(world, settings, to_school, f"นายวิชัย แสงทอง <{A('wichai')}>", "เบอร์โทรใหม่ 02-000-0000")
    run(settings, clock, day(12, 2))
    service = build(settings, clock=clock, exclusive=False)
    [head] = rounds(service.office, "verification")
    assert all(not a["answers"] for a in asks_of(service.office, head["id"]))
    assert pending(service.office) == []
    service.office.store.close()

    run(settings, clock, day(12, 16))  # past the deadline: the round closes, and that morning's digest says so
    [digest] = outgoing(world, settings, world.clerk(), "16 ธันวาคม 2569")
    text = digest.get_body(("plain",)).get_content()
    assert "ปิดรอบแล้ว: ปิดรอบตรวจสอบข้อมูลพื้นฐาน" in text and "ตอบแล้ว 0 จาก 3;" in text and "ไม่มีเรื่องใหม่" not in digest["Subject"]
    service = build(settings, clock=clock, exclusive=False)
    assert [r["status"] for r in rounds(service.office, "verification")] == ["closed"]
    service.office.store.close()

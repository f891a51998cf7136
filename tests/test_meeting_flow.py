"""A meeting's first half in simulated time: call, intake, reminders, assembly, approvals.

The same story runs twice: on the embedded default (a Maildir and a folder of
.eml files) and on the real servers (the daemon reads the shared mailbox over
IMAP from Dovecot and sends through Postfix, which delivers into each person's
Dovecot mailbox, where the test reads what they received).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import vobject
from email.message import EmailMessage
from icalendar import Calendar
from pypdf import PdfReader

from helpers import ENV, message
from worlds import Clock, make_world, outgoing, reply, run
from service.commands import apply
from service.daemon import build
from service.meetings.clerk import HANDLERS
from service.meetings.meeting import load as load_meeting, shard
from service.store import original_name

BANGKOK = ZoneInfo("Asia/Bangkok")
START = datetime(2026, 12, 16, 9, tzinfo=BANGKOK)


@pytest.fixture(params=["embedded", "servers", "postgresql"])
def office(request, tmp_path, monkeypatch):
    settings, world = make_world(request, tmp_path, monkeypatch)
    clock = Clock(datetime(2026, 11, 20, 8, tzinfo=BANGKOK))
    service = build(settings, clock=clock)
    said = apply(service.office, service.outbox, HANDLERS, "meeting_new", {
        "kind": "school_administrators", "title": "การประชุมผู้บริหารสถานศึกษา", "number": 11, "year_be": 2569,
        "start": START.isoformat(), "end": (START + timedelta(hours=3)).isoformat(), "place": "ห้องประชุมใหญ่",
        "chair": "p-director", "secretary": "p-deputy", "attendees": ["role:school_director"],
    }, clock())
    assert said == "opened meeting sa2569-11 with 3 attendees"
    service.office.store.close()
    return settings, clock, world


def meeting(settings, clock):
    service = build(settings, clock=clock, exclusive=False)
    return load_meeting(service.office.store, "sa2569-11"), {i["id"]: i for i in service.office.store.find(shard("sa2569-11"), "items")}


def test_call_intake_reminders_assembly_and_the_approval_chain(office):
    settings, clock, world = office
    A = world.address
    run(settings, clock, datetime(2026, 11, 25, 8, tzinfo=BANGKOK))  # T−21
    [call] = outgoing(world, settings, A("policy"), "ขอเรื่องเข้าระเบียบวาระ")
    assert "ภายในวันพุธที่ 2 ธันวาคม 2569" in call.get_body(("plain",)).get_content()
    assert len([m for g in ("admin", "personnel", "policy", "promotion", "supervision", "finance") for m in outgoing(world, settings, A(g), "ขอเรื่องเข้าระเบียบวาระ")]) == 6, "one call per group"

    reply(world, settings, call, f"นายวิชัย แสงทอง <{A('wichai')}>", "ขอเสนอเรื่องเพื่อพิจารณา รายละเอียดตามแนบ",
          subject="ขออนุมัติแผนปฏิบัติการ ปี ๒๕๗๐", attachments=(("แผน.pdf", b"%PDF-1.4 plan"),))
    [admin_call] = outgoing(world, settings, A("admin"), "ขอเรื่องเข้าระเบียบวาระ")
    reply(world, settings, admin_call, f"กลุ่มอำนวยการ <{A('admin')}>", "ขอเสนอเรื่องเพื่อทราบครับ", subject="เรื่องเพื่อทราบ: ปฏิทินงานเดือนธันวาคม")
    [finance_call] = outgoing(world, settings, A("finance"), "ขอเรื่องเข้าระเบียบวาระ")
    reply(world, settings, finance_call, f"กลุ่มการเงิน <{A('finance')}>", "ครั้งนี้ไม่มีเรื่องเสนอครับ")
    run(settings, clock, datetime(2026, 11, 26, 9, tzinfo=BANGKOK))
    state, items = meeting(settings, clock)
    assert sorted(items) == ["g-admin-1", "g-policy-1"]
    assert items["g-policy-1"]["section"] == "consider" and items["g-policy-1"]["attachments"][0]["name"] == "แผน.pdf"
    [ack] = outgoing(world, settings, A("wichai"), "ได้รับเรื่อง")
    assert "ระเบียบวาระที่ 5 เรื่องเพื่อพิจารณา" in ack.get_body(("plain",)).get_content()

    run(settings, clock, datetime(2026, 11, 29, 8, tzinfo=BANGKOK))  # T−17: groups that said nothing are reminded
    reminded = {g for g in ("admin", "personnel", "policy", "promotion", "supervision", "finance") if outgoing(world, settings, A(g), "แจ้งเตือน")}
    assert reminded == {"personnel", "promotion", "supervision"}

    run(settings, clock, datetime(2026, 12, 3, 8, tzinfo=BANGKOK))  # past T−14 and T−13: assembled and sent up the chain
    state, _ = meeting(settings, clock)
    draft = state["drafts"][-1]
    assert draft["status"] == "awaiting"
    assert [e["title"] for e in draft["agenda"][4]["entries"][0]["entries"]] == ["ขออนุมัติแผนปฏิบัติการ ปี ๒๕๗๐"]
    [request] = outgoing(world, settings, A("somsri"), "ขอความเห็นชอบ")
    papers = {part.get_filename(): part.get_content() for part in request.iter_attachments()}
    assert sorted(papers) == ["agenda-v1.pdf", "invitation-v1.pdf"]
    agenda_text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(papers["agenda-v1.pdf"])).pages)
    assert "แผนปฏิบัติการ" in agenda_text and "๕.๑.๑" in agenda_text, "the item, numbered in Thai digits"
    store = build(settings, clock=clock, exclusive=False).office.store  # the papers are kept in the store, on PostgreSQL too
    assert original_name(draft["papers"]["agenda_docx"]) == "agenda-v1.docx" and store.read_file(draft["papers"]["agenda_docx"]).startswith(b"PK")
    assert original_name(draft["papers"]["pack_pdf"]) == "pack-v1.pdf" and store.read_file(draft["papers"]["pack_pdf"]).startswith(b"%PDF")
    store.close()
    assert draft["papers"]["not_in_pack"][0].startswith("แผน.pdf:"), "an attachment that is no PDF is named, not packed"

    # Someone else answering through the director's key does not count.
    reply(world, settings, request, f"นายวิชัย แสงทอง <{A('wichai')}>", "เห็นชอบ")
    reply(world, settings, request, f"นางสาวสมศรี ใจงาม <{A('somsri')}>", "เห็นชอบครับ")
    run(settings, clock)
    [to_director] = outgoing(world, settings, A("director"), "ขอความเห็นชอบ")
    [not_counted] = outgoing(world, settings, A("wichai"), "ได้รับข้อความของท่านแล้ว")
    assert "เจ้าหน้าที่จะตรวจสอบ" in not_counted.get_body(("plain",)).get_content(), "an answer through someone else's key is not recorded"
    reply(world, settings, to_director, f"นายประเสริฐ วงศ์ใหญ่ <{A('director')}>", "ส่งคืนแก้ไข ขอให้เพิ่มรายละเอียดงบประมาณในวาระ 5.1")
    run(settings, clock)
    state, _ = meeting(settings, clock)
    draft = state["drafts"][-1]
    assert draft["status"] == "returned"
    assert [a["by"] for a in draft["answers"]] == ["p-admin-director", "p-director"]
    [returned] = outgoing(world, settings, world.clerk(), "ส่งคืนแก้ไข")
    assert "เพิ่มรายละเอียดงบประมาณ" in returned.get_body(("plain",)).get_content()

    # The clerk revises: a new draft starts the chain again; a paper approval and an e-mail approval finish it.
    late = message(sender=f"กลุ่มการเงิน <{A('finance')}>", subject="เรื่องเพื่อทราบ: รายงานการเบิกจ่าย", text="ขอเสนอเพิ่มเติมครับ")
    world.deliver(settings, late)
    run(settings, clock)
    _, items = meeting(settings, clock)
    assert items["g-finance-1"]["status"] == "held_late"
    service = build(settings, clock=clock)
    apply(service.office, service.outbox, HANDLERS, "decide_late", {"meeting": "sa2569-11", "item": "g-finance-1", "accept": True}, clock())
    said = apply(service.office, service.outbox, HANDLERS, "edit_item", {"meeting": "sa2569-11", "item": "g-admin-1", "section": "consider", "title": ""}, clock())
    assert said == "item g-admin-1 now: consider, ปฏิทินงานเดือนธันวาคม"
    assert apply(service.office, service.outbox, HANDLERS, "new_draft", {"meeting": "sa2569-11"}, clock()) == "draft 2 of sa2569-11 sent up the chain"
    said = apply(service.office, service.outbox, HANDLERS, "approve", {"meeting": "sa2569-11", "by": "p-admin-director", "approved": True}, clock())
    assert said == "recorded the paper approval by p-admin-director on sa2569-11"
    service.office.store.close()
    run(settings, clock)
    to_director = outgoing(world, settings, A("director"), "ร่างที่ 2")
    assert len(to_director) == 1
    reply(world, settings, to_director[0], f"นายประเสริฐ วงศ์ใหญ่ <{A('director')}>", "อนุมัติ")
    run(settings, clock)
    state, _ = meeting(settings, clock)
    draft = state["drafts"][-1]
    assert (draft["version"], draft["status"]) == (2, "approved")
    assert draft["answers"][0]["on_paper"] and not draft["answers"][1]["on_paper"]
    assert [e["title"] for e in draft["agenda"][3]["entries"][-1]["entries"]] == ["รายงานการเบิกจ่าย"]
    assert [g["title"] for g in draft["agenda"][4]["entries"]] == ["กลุ่มอำนวยการ", "กลุ่มนโยบายและแผน"], "moved by the clerk"

    # T−7: the meeting request goes to every attendee, with the papers and an iMIP calendar.
    run(settings, clock, datetime(2026, 12, 9, 8, tzinfo=BANGKOK))
    [invitation] = outgoing(world, settings, A("somchai"), "ขอเชิญประชุม")
    calendar_part = next(part for part in invitation.walk() if part.get_content_type() == "text/calendar")
    assert calendar_part.get_param("method") == "REQUEST"
    request_ics = Calendar.from_ical(calendar_part.get_content())
    event = request_ics.walk("VEVENT")[0]
    assert (str(request_ics["METHOD"]), str(event["UID"]), int(event["SEQUENCE"])) == ("REQUEST", "sa2569-11@office.test", 0)
    attendee = event["ATTENDEE"]
    assert str(attendee) == f"mailto:{A('somchai')}" and attendee.params["RSVP"] == "TRUE" and attendee.params["ROLE"] == "REQ-PARTICIPANT"
    assert str(event["ORGANIZER"]).endswith(settings.office.mailbox) and request_ics.walk("VTIMEZONE") and event.walk("VALARM")
    assert {part.get_filename() for part in invitation.iter_attachments()} >= {"หนังสือเชิญประชุม.pdf", "ระเบียบวาระการประชุม.pdf", "invite.ics"}

    # Answers: a calendar Accept; a delegation written by the school's shared address; one silence.
    reply_ics = (
        "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nPRODID:Microsoft Exchange Server 2010\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n"
        f"ATTENDEE;PARTSTAT=ACCEPTED;CN=somchai:mailto:{A('somchai')}\r\nUID:{event['UID']}\r\nSEQUENCE:0\r\n"
        "DTSTAMP:20261209T030000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    accept = EmailMessage()
    accept["From"], accept["To"], accept["Subject"] = A("somchai"), settings.office.mailbox, f"Accepted: {invitation['Subject']}"
    accept["Message-ID"], accept["Date"] = "<accept-1@school.test>", "Wed, 09 Dec 2026 10:00:00 +0700"
    accept.set_content(reply_ics, subtype="calendar", params={"method": "REPLY"})
    world.deliver(settings, accept.as_bytes())
    [to_malee] = outgoing(world, settings, A("malee"), "ขอเชิญประชุม")
    reply(world, settings, to_malee, f"ธุรการโรงเรียน <{A('school002')}>",
          "เรียน ประธาน\nผู้อำนวยการติดราชการ จึงมอบหมาย นางสาวจันทร์เพ็ญ ดวงดี รองผู้อำนวยการโรงเรียน เข้าร่วมประชุมแทน")
    run(settings, clock, datetime(2026, 12, 9, 11, tzinfo=BANGKOK))
    service = build(settings, clock=clock, exclusive=False)
    invitees = {i["person"]: i for i in service.office.store.find(shard("sa2569-11"), "invitees")}
    assert invitees["p-school-001"]["status"] == "accepted" and invitees["p-school-001"]["answers"][0]["via"] == "calendar"
    malee = invitees["p-school-002"]
    assert malee["status"] == "delegated" and "จันทร์เพ็ญ" in malee["answers"][0]["delegate"]
    assert malee["answers"][0]["via"].startswith("reply key, answered from")
    assert invitees["p-school-003"]["status"] == "no_answer"

    # T−2: only the silent one is asked to confirm.
    run(settings, clock, datetime(2026, 12, 14, 8, tzinfo=BANGKOK))
    assert len(outgoing(world, settings, A("john.carter"), "ขอคำยืนยัน")) == 1
    assert outgoing(world, settings, A("somchai"), "ขอคำยืนยัน") == [] and outgoing(world, settings, A("malee"), "ขอคำยืนยัน") == []
    shown = subprocess.run([sys.executable, "-m", "service", "-c", str(settings.path), "attendance", "sa2569-11"],
                           capture_output=True, text=True, env={**os.environ, **ENV, "COLUMNS": "200"})
    assert "accepted: 1, delegated: 1, no_answer: 1 (of 3)" in shown.stdout, shown.stderr
    assert "จันทร์เพ็ญ" in shown.stdout

    # T−1: the preparation papers go to the clerk.
    run(settings, clock, datetime(2026, 12, 15, 8, tzinfo=BANGKOK))
    [prepared] = outgoing(world, settings, world.clerk(), "เอกสารเตรียมการประชุม")
    attached = {part.get_filename(): part.get_content() for part in prepared.iter_attachments()}
    assert sorted(attached) == ["allowances-v1.pdf", "catering-v1.pdf", "name_tags-v1.pdf", "signin-v1.pdf"]
    signin = "".join(page.extract_text() for page in PdfReader(io.BytesIO(attached["signin-v1.pdf"])).pages)
    assert "จันทร์เพ็ญ" in signin and "ประชุมแทน" in signin, "the delegate signs in the member's place"

    # A new place: everyone invited gets an update with SEQUENCE 1 that says what changed; then a cancellation.
    service = build(settings, clock=clock)
    said = apply(service.office, service.outbox, HANDLERS, "change_meeting", {"meeting": "sa2569-11", "place": "หอประชุมโรงเรียนบ้านหนองบัว"}, clock())
    assert said.endswith("3 update(s) queued")
    apply(service.office, service.outbox, HANDLERS, "cancel_meeting", {"meeting": "sa2569-11", "reason": "ผู้อำนวยการติดภารกิจเร่งด่วน"}, clock())
    service.office.store.close()
    run(settings, clock)
    [update] = outgoing(world, settings, A("malee"), "แจ้งเปลี่ยนแปลง")
    assert "สถานที่: ห้องประชุมใหญ่ → หอประชุมโรงเรียนบ้านหนองบัว" in update.get_body(("plain",)).get_content()
    [cancel] = outgoing(world, settings, A("malee"), "ยกเลิก")
    calendars = [calendar_of(mail) for mail in (invitation, update, cancel)]
    assert [(str(c["METHOD"]), int(c.walk("VEVENT")[0]["SEQUENCE"])) for c in calendars] == [("REQUEST", 0), ("REQUEST", 1), ("CANCEL", 2)]
    assert str(calendars[2].walk("VEVENT")[0]["STATUS"]) == "CANCELLED"
    assert len({str(c.walk("VEVENT")[0]["UID"]) for c in calendars}) == 1, "one UID for the meeting's whole life"
    for mail in (invitation, update, cancel):
        same_by_another_parser(mail)


def calendar_of(mail):
    part = next(part for part in mail.walk() if part.get_content_type() == "text/calendar")
    assert part.get_param("method") == Calendar.from_ical(part.get_content())["METHOD"], "MIME method = METHOD"
    return Calendar.from_ical(part.get_content())


def same_by_another_parser(mail):
    """vobject, an independent parser, reads the calendar field by field as icalendar does."""
    text = next(part for part in mail.walk() if part.get_content_type() == "text/calendar").get_content()
    ours = calendar_of(mail).walk("VEVENT")[0]
    theirs = vobject.readOne(text)
    event = theirs.vevent
    assert theirs.method.value == str(calendar_of(mail)["METHOD"])
    assert event.uid.value == str(ours["UID"]) and int(event.sequence.value) == int(ours["SEQUENCE"])
    assert event.summary.value == str(ours["SUMMARY"]) and "ครั้งที่" in event.summary.value
    assert event.location.value == str(ours["LOCATION"])
    assert event.dtstart.value == ours["DTSTART"].dt and event.dtstart.value.utcoffset() == timedelta(hours=7)
    assert event.dtstart.params["X-VOBJ-ORIGINAL-TZID"] == ["Asia/Bangkok"] == [theirs.vtimezone.tzid.value]
    assert event.attendee.value == str(ours["ATTENDEE"]) and event.attendee.params["RSVP"] == ["TRUE"]
    assert event.organizer.value == str(ours["ORGANIZER"])

"""The clerk's daily digest: what it says, when it goes, and that it reads right in a browser."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from helpers import ENV, message
from service.config import load
from service.daemon import build
from test_after_meeting import BANGKOK, MEETING, START, clerk, day, first_half
from worlds import Clock, Embedded, outgoing, reply, run

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "digest"


@pytest.fixture
def office(tmp_path, monkeypatch):
    """An office on the embedded default with one meeting (the digest reads the store, not the mail protocols)."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    world = Embedded(tmp_path)
    settings = load(world.config)
    clock = Clock(datetime(2026, 11, 20, 8, tzinfo=BANGKOK))
    clerk(settings, clock, "meeting_new", {
        "kind": "school_administrators", "title": "การประชุมผู้บริหารสถานศึกษา", "number": 11, "year_be": 2569,
        "start": START.isoformat(), "end": (START + timedelta(hours=3)).isoformat(), "place": "ห้องประชุมใหญ่",
        "chair": "p-director", "secretary": "p-deputy", "attendees": ["role:school_director"],
    })
    return settings, clock, world


def digests(world, settings, on: str = "") -> list:
    """The digests the clerk received, oldest first (`on`: of the day whose Thai date, e.g. "30 พฤศจิกายน", the subject names)."""
    found = outgoing(world, settings, world.clerk(), "สรุปงานการประชุมประจำ")
    return sorted((m for m in found if on in m["Subject"]), key=lambda m: m["Date"].datetime)


def body(mail, kind: str = "plain") -> str:
    return mail.get_body((kind,)).get_content()


def test_one_digest_a_working_day_at_its_time_and_on_a_holiday_only_when_urgent(office):
    settings, clock, world = office
    run(settings, clock, day(11, 27, 7))  # Friday 07:00: before its time
    assert digests(world, settings) == []
    run(settings, clock, day(11, 27, 7) + timedelta(minutes=31))
    run(settings, clock, day(11, 27, 16))
    [friday] = digests(world, settings)
    assert "วันศุกร์ที่ 27 พฤศจิกายน 2569" in friday["Subject"]
    run(settings, clock, day(11, 28, 9))  # Saturday, nothing urgent: none
    assert len(digests(world, settings)) == 1
    world.deliver(settings, b"")  # an empty message goes to Quarantine: urgent
    run(settings, clock, day(11, 29, 9))  # Sunday
    [sunday] = digests(world, settings, "29 พฤศจิกายน")
    assert sunday["Subject"].startswith("[ต้องดำเนินการ]") and "Quarantine" in body(sunday)
    run(settings, clock, day(11, 30, 9))  # Monday: new since Sunday's digest, not since Friday's
    [monday] = digests(world, settings, "30 พฤศจิกายน")
    assert "Quarantine" not in body(monday)


def test_a_quiet_day_gets_a_short_digest_or_none(office, tmp_path):
    settings, clock, world = office
    run(settings, clock, day(11, 23, 8))  # the meeting's call for items is three days away; nothing has happened
    [quiet] = digests(world, settings)
    assert "ไม่มีเรื่องใหม่" in quiet["Subject"] and "ไม่มีเรื่องใหม่และไม่มีเรื่องค้าง" in body(quiet)
    settings.path.write_text(settings.path.read_text(encoding="utf-8") + '\n[digest]\nwhen_quiet = "none"\n', encoding="utf-8")
    settings = load(settings.path)
    run(settings, clock, day(11, 24, 8))
    assert len(digests(world, settings)) == 1


def test_an_office_that_turns_the_digest_off_gets_none(office):
    settings, clock, world = office
    settings.path.write_text(settings.path.read_text(encoding="utf-8") + "\n[digest]\nsend = false\n", encoding="utf-8")
    settings = load(settings.path)
    world.deliver(settings, b"")  # urgent (Quarantine): still not mailed
    run(settings, clock, day(11, 23, 8))
    run(settings, clock, day(11, 24, 8))
    assert digests(world, settings) == []


def test_the_digest_shows_each_meeting_and_what_needs_the_clerk(office):
    settings, clock, world = office
    A = world.address
    first_half(settings, clock, world)  # an item, approvals on paper, invitations, two answers (one silent invitee)
    world.deliver(settings, message(sender="Printing Shop <sales@printing-shop.example.com>",
                                    subject="<script>alert('x')</script>ขอเสนอบริการพิมพ์", text="โปรโมชั่นพิเศษ"))
    world.deliver(settings, b"From: someone\r\n\r\n")
    to_somchai = outgoing(world, settings, A("somchai"), "ขอเชิญประชุม")[0]
    reply(world, settings, to_somchai, f"นายวิชัย แสงทอง <{A('wichai')}>", "ขอบคุณครับ")  # not his key: for the clerk
    run(settings, clock, day(12, 10, 8))
    [digest] = digests(world, settings, "10 ธันวาคม")
    text, html = body(digest), body(digest, "html")
    for words in ("การประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569 (sa2569-11)", "ขั้นตอนล่าสุด: ส่งหนังสือเชิญประชุมและระเบียบวาระ",
                  "ถัดไป: ขอคำยืนยันการเข้าร่วมประชุม", "เชิญ 3 คน", "ตอบรับ 1", "ส่งผู้แทน 1", "ยังไม่ตอบ 1", "ยังไม่ตอบ: Mr. John Carter",
                  "จากผู้ที่ไม่อยู่ในทำเนียบ 1 ฉบับ", "sales@printing-shop.example.com", "ข้อความที่กักไว้ (Quarantine) 1 ฉบับ", "ข้อความที่เจ้าหน้าที่ต้องอ่าน"):
        assert words in text, words
    assert "<script>" not in html and "ขอเสนอบริการพิมพ์" in html, "what a sender wrote is shown as text, never as markup"
    assert 'bgcolor="#2e7d32"' in html, "the attendance chart is table cells Outlook can draw"

    # The command line shows the same picture, and writes the digest without sending it.
    env = {**os.environ, **ENV, "COLUMNS": "200"}
    status = subprocess.run([sys.executable, "-m", "service", "-c", str(settings.path), "status", "--at", "2026-12-10T07:00"],
                            capture_output=True, text=True, env=env)
    assert "sa2569-11" in status.stdout and "1 in Quarantine" in status.stdout, status.stderr
    timeline = subprocess.run([sys.executable, "-m", "service", "-c", str(settings.path), "timeline", MEETING, "--at", "2026-12-15T09:00"],
                              capture_output=True, text=True, env=env)
    assert "วันพุธที่ 9 ธันวาคม" in timeline.stdout and "done" in timeline.stdout and "overdue" in timeline.stdout, timeline.stderr
    out = settings.path.parent / "preview"
    subprocess.run([sys.executable, "-m", "service", "-c", str(settings.path), "digest", "--preview", "--out", str(out), "--at", "2026-12-10T07:00"],
                   check=True, env=env)
    assert "sa2569-11" in out.with_suffix(".html").read_text(encoding="utf-8")
    assert email.message_from_bytes(out.with_suffix(".eml").read_bytes(), policy=email.policy.default)["To"] == world.clerk()


def test_the_digest_renders_thai_in_a_browser(office):
    """The HTML digest in headless Chromium: a screenshot kept as an artifact, and every Thai glyph drawn by a Thai font."""
    from browser import assert_no_tofu, screenshot

    settings, clock, world = office
    first_half(settings, clock, world)
    world.deliver(settings, b"")
    run(settings, clock, day(12, 10, 8))
    [digest] = digests(world, settings, "10 ธันวาคม")
    html = body(digest, "html")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = ARTIFACTS / "digest.html"
    page.write_text(html, encoding="utf-8")
    png = screenshot(page, ARTIFACTS / "digest.png")
    assert png.stat().st_size > 20_000
    assert_no_tofu(page)


def test_the_clerks_reply_to_a_digest_is_filed_for_the_clerk_not_taken_as_an_agenda_item(office):
    settings, clock, world = office
    run(settings, clock, day(11, 25, 8))  # the call for items is out: an attachment from a group member would be an item
    [digest] = digests(world, settings)
    world.deliver(settings, message(sender="นางสาวกนกวรรณ มีสุข <clerk@office.example.go.th>", subject=f"Re: {digest['Subject']}",
                                    text="รับทราบค่ะ แนบตารางงานไว้ดูเอง", attachments=(("ตาราง.pdf", b"%PDF-1.4 x"),),
                                    headers=(("In-Reply-To", digest["Message-ID"]), ("References", digest["Message-ID"]))))
    [handled] = run(settings, clock, day(11, 25, 9))
    assert (handled.kind, handled.rule) == ("unknown", "answer-to-digest")
    service = build(settings, clock=clock, exclusive=False)
    assert service.office.store.find("meetings/sa2569-11/meeting", "items") == []

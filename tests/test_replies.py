"""Answers to invitations and drafts, as real clients and real people send them."""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from helpers import message
from service.mail.message import InboundMessage
from service.understand.quotes import RULES
from service.understand.replies import phrasebooks, read_approval, read_attendance
from service.understand.rules import RuleError

REPLIES = Path(__file__).parent / "messages" / "replies"
UID = "m2569-11-sa@office.example.go.th"
DEPUTY = "deputy@school008.example.ac.th"
INVITATION = (
    "ขอเชิญเข้าร่วมประชุมผู้บริหารสถานศึกษา ครั้งที่ ๑๑/๒๕๖๙\n"
    "กรุณายืนยันเข้าร่วมประชุมภายในวันที่ ๒๓ พฤศจิกายน หากไม่สามารถเข้าร่วมได้ โปรดมอบหมายผู้แทนเข้าร่วมประชุมแทน\n"
    "Please confirm your attendance. If you are unable to attend, please send a representative in your place."
)
GMAIL_QUOTE = "\n\nเมื่อ วันจันทร์ที่ 23 พ.ย. 2569 เวลา 10:00 สพป.ตัวอย่าง <meeting@office.example.go.th> เขียนว่า:\n" + "\n".join(
    "> " + line for line in INVITATION.split("\n")
)


def fixture(name: str) -> InboundMessage:
    return InboundMessage.parse((REPLIES / name).read_bytes())


def text_reply(text: str, subject: str = "Re: ขอเชิญประชุมผู้บริหารสถานศึกษา") -> InboundMessage:
    return InboundMessage.parse(message(text=text, subject=subject))


# --- iMIP, as each client sends it -------------------------------------------------


@pytest.mark.parametrize(
    "name, answer, attendee, extra",
    [
        ("outlook-th-accepted.eml", "accepted", "somchai@school001.example.ac.th", {}),
        ("outlook-th-tentative.eml", "tentative", "wichai@school003.example.ac.th", {}),
        (
            "outlook-en-declined-comment.eml",
            "declined",
            "john.carter@eis.example.ac.th",
            {"reason": "Sorry, I am on annual leave that week."},
        ),
        (
            "outlook-th-declined-delegate.eml",
            "delegated",
            "malee@school002.example.ac.th",
            {"delegate": "นางสาวจันทร์เพ็ญ ดวงดี", "delegate_position": "รองผู้อำนวยการโรงเรียนวัดป่าสัก"},
        ),
        ("gmail-accepted.eml", "accepted", "pranee.school004@gmail.com", {"reason": None}),
        ("gmail-declined-comment.eml", "declined", "anan.school005@gmail.com", {"reason": "ติดราชการต่างจังหวัด ขออภัยครับ"}),
        ("gmail-tentative.eml", "tentative", "suda.school006@gmail.com", {"reason": None}),
        ("thunderbird-accepted.eml", "accepted", "kittipong@school007.example.ac.th", {"reason": None}),
        ("thunderbird-delegated.eml", "delegated", "director@school008.example.ac.th", {"delegate": DEPUTY}),
        ("thunderbird-delegate-answers.eml", "delegated", "director@school008.example.ac.th", {"delegate": DEPUTY}),
        ("apple-declined-no-body.eml", "declined", "napat@school009.example.ac.th", {"reason": None}),
        ("attachment-only-base64.eml", "accepted", "teacher.school010@gmail.com", {}),
    ],
)
def test_calendar_replies_from_every_client(name, answer, attendee, extra):
    found = read_attendance(fixture(name))
    assert (found.answer, found.attendee, found.uid, found.rule) == (answer, attendee, UID, "imip-reply")
    for field, expected in extra.items():
        assert getattr(found, field) == expected, field
    assert found.reasons[0].startswith("a calendar REPLY from ")


def test_an_outlook_counter_proposes_a_new_start():
    found = read_attendance(fixture("outlook-counter.eml"))
    assert (found.answer, found.rule, found.attendee) == ("counter", "imip-counter", "somchai@school001.example.ac.th")
    assert found.proposed_start == datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
    assert found.reason == "ขอเลื่อนเป็นช่วงบ่ายได้ไหมครับ"


def _calendar_mail(calendar: str, sender: str = "napat@school009.example.ac.th", body: str = "") -> InboundMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "meeting@office.example.go.th"
    mail["Subject"] = "Re: ประชุม"
    mail.set_content(body)
    mail.add_attachment(calendar.encode(), maintype="text", subtype="calendar", filename="reply.ics")
    return InboundMessage.parse(mail.as_bytes())


def _reply(*attendees: str, method: str = "REPLY") -> str:
    lines = ["BEGIN:VCALENDAR", f"METHOD:{method}", "PRODID:-//Apple Inc.//macOS 14.0//EN", "VERSION:2.0", "BEGIN:VEVENT"]
    lines += [f"UID:{UID}", "DTSTART:20261125T020000Z", *attendees, "END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def test_the_answering_attendee_is_the_sender_even_among_others_and_apple_urn_addresses():
    calendar = _reply(
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:someone.else@school009.example.ac.th",
        'ATTENDEE;CN="Napat";EMAIL="Napat@School009.example.ac.th";PARTSTAT=TENTATIVE:urn:uuid:9f1c2d3e-0000-4000-8000-123456789abc',
    )
    found = read_attendance(_calendar_mail(calendar))
    assert (found.answer, found.attendee) == ("tentative", "napat@school009.example.ac.th")


def test_a_delegation_without_delegated_to_names_the_new_attendee_delegated_from():
    calendar = _reply(
        "ATTENDEE;PARTSTAT=DELEGATED:mailto:napat@school009.example.ac.th",
        'ATTENDEE;PARTSTAT=NEEDS-ACTION;DELEGATED-FROM="mailto:napat@school009.example.ac.th":mailto:vice@school009.example.ac.th',
    )
    found = read_attendance(_calendar_mail(calendar, sender="napat.alias@school009.example.ac.th"))
    assert (found.answer, found.delegate) == ("delegated", "vice@school009.example.ac.th")
    assert found.attendee == "napat@school009.example.ac.th"


def test_a_broken_or_foreign_calendar_leaves_the_answer_to_the_text():
    broken = _calendar_mail("BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nATTENDEE;PARTSTAT", body="ติดราชการครับ")
    assert read_attendance(broken).rule == "th:declined:ติดราชการ"
    forwarded_request = _reply("ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:napat@school009.example.ac.th", method="REQUEST")
    assert read_attendance(_calendar_mail(forwarded_request, body="Count me in.")).rule == "en:accepted:count me in"


# --- free text --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, answer, delegate, position, reason",
    [
        ("ยืนยันเข้าร่วมประชุมครับ", "accepted", None, None, None),
        ("ยินดีเข้าร่วมค่ะ", "accepted", None, None, None),
        ("จะเข้าร่วมประชุมตามวันและเวลาดังกล่าวครับ", "accepted", None, None, None),
        ("เข้าร่วมได้ครับ", "accepted", None, None, None),
        ("ยินดีเข้าร่วมครับ แต่อาจจะมาสาย", "accepted", None, None, None),
        ("ไม่ติดราชการครับ จะเข้าร่วมประชุม", "accepted", None, None, None),
        ("ไม่สามารถเข้าร่วมได้ครับ", "declined", None, None, None),
        ("ติดราชการครับ", "declined", None, None, "ติดราชการ"),
        ("ขออนุญาตลาประชุม เนื่องจากติดภารกิจเร่งด่วน", "declined", None, None, "ติดภารกิจเร่งด่วน"),
        ("ป่วยครับ ขอลา", "declined", None, None, "ป่วย"),
        ("ไม่สามารถจะไปร่วมประชุมได้ เนื่องจากไปราชการต่างประเทศ", "declined", None, None, "ไปราชการต่างประเทศ"),
        ("ยังไม่แน่ใจครับ อาจจะติดประชุมอื่น จะแจ้งยืนยันอีกครั้ง", "tentative", None, None, "ติดประชุมอื่น"),
        ("อาจจะไม่สามารถเข้าร่วมได้ค่ะ", "tentative", None, None, None),
        ("หากไม่ติดภารกิจจะเข้าร่วมครับ", "tentative", None, None, None),
        ("ยังไม่สามารถยืนยันได้ครับ", "tentative", None, None, None),
        (
            "ติดราชการ จึงมอบหมาย นายสมชาย ใจดี รองผู้อำนวยการ เข้าร่วมประชุมแทน",
            "delegated", "นายสมชาย ใจดี", "รองผู้อำนวยการ", "ติดราชการ",
        ),
        (
            "เนื่องจากกระผมติดภารกิจ จึงขอมอบหมายให้ ว่าที่ร้อยตรีสมศักดิ์ รักเรียน ตำแหน่ง ครูชำนาญการพิเศษ เข้าร่วมประชุมแทน",
            "delegated", "ว่าที่ร้อยตรีสมศักดิ์ รักเรียน", "ครูชำนาญการพิเศษ", "ติดภารกิจ",
        ),
        (
            "ขอมอบหมายให้ ผศ.ดร.อรุณ แสงทอง ผู้ช่วยผู้อำนวยการ เป็นผู้แทนเข้าร่วมประชุม",
            "delegated", "ผศ.ดร.อรุณ แสงทอง", "ผู้ช่วยผู้อำนวยการ", None,
        ),
        ("ส่งผู้แทนเข้าร่วมประชุม คือ นางสาวสุดา รักดี ตำแหน่ง ครูชำนาญการ", "delegated", "นางสาวสุดา รักดี", "ครูชำนาญการ", None),
        ("ให้ นายวิรัตน์ ศรีสุข ไปแทนครับ", "delegated", "นายวิรัตน์ ศรีสุข", None, None),
        ("มอบหมายรองผู้อำนวยการโรงเรียนเข้าร่วมประชุมแทนครับ", "delegated", None, "รองผู้อำนวยการโรงเรียน", None),
        ("นายสมชาย ใจดี รองผู้อำนวยการ จะเข้าร่วมประชุมแทนครับ", "delegated", "นายสมชาย ใจดี", "รองผู้อำนวยการ", None),
        ("ขอส่ง นางสาวพรทิพย์ แก้วใส ครูผู้ช่วย เข้าร่วมประชุมแทน", "delegated", "นางสาวพรทิพย์ แก้วใส", "ครูผู้ช่วย", None),
        (
            "ผู้แทนเข้าร่วมประชุม: นายอดิศักดิ์ ทองมา ตำแหน่ง รองผู้อำนวยการโรงเรียนบ้านนา",
            "delegated", "นายอดิศักดิ์ ทองมา", "รองผู้อำนวยการโรงเรียนบ้านนา", None,
        ),
        ("I will attend.", "accepted", None, None, None),
        ("Yes, I'll be there.", "accepted", None, None, None),
        ("Count me in!", "accepted", None, None, None),
        ("I will attend, but might be 15 minutes late.", "accepted", None, None, None),
        ("I have another meeting right after, but I will attend.", "accepted", None, None, None),
        ("I'm unable to attend due to a prior commitment.", "declined", None, None, "a prior commitment"),
        ("Sorry, I can’t make it.", "declined", None, None, None),
        ("With regret, I must decline.", "declined", None, None, None),
        ("I am not able to attend.", "declined", None, None, None),
        ("Not sure yet, I might be travelling.", "tentative", None, None, None),
        ("I might not be able to attend.", "tentative", None, None, None),
        ("I will tentatively attend.", "tentative", None, None, None),
        (
            "I can't make it, so I will send Ms. Jane Doe (Deputy Director) in my place.",
            "delegated", "Ms. Jane Doe", "Deputy Director", None,
        ),
        ("Mr. Tom Lee, Head of Science, will attend on my behalf.", "delegated", "Mr. Tom Lee", "Head of Science", None),
        ("I have asked Dr. Anna Smith to attend in my place.", "delegated", "Dr. Anna Smith", None, None),
        ("I'll send somsri@school001.example.ac.th in my place.", "delegated", "somsri@school001.example.ac.th", None, None),
    ],
)
def test_free_text_answers(text, answer, delegate, position, reason):
    found = read_attendance(text_reply(text + GMAIL_QUOTE))
    assert (found.answer, found.delegate, found.delegate_position, found.reason) == (answer, delegate, position, reason)
    assert found.rule.split(":")[1] == answer and found.reasons


def test_the_rule_and_reasons_say_what_decided():
    found = read_attendance(text_reply("ติดราชการครับ"))
    assert found.rule == "th:declined:ติดราชการ"
    assert found.reasons == ("the text says 'ติดราชการ' (th:declined:ติดราชการ)",)
    delegated = read_attendance(text_reply("ติดราชการ จึงมอบหมาย นายสมชาย ใจดี รองผู้อำนวยการ เข้าร่วมประชุมแทน"))
    assert delegated.rule == "th:delegated:มอบหมาย…แทน"
    assert "it also says 'ติดราชการ' (th:declined:ติดราชการ)" in delegated.reasons


@pytest.mark.parametrize(
    "name, answer, delegate, position",
    [
        ("outlook-web-th-declined.eml", "declined", None, None),
        ("outlook-desktop-en-accepted.eml", "accepted", None, None),
        ("webmail-gmail-quote-th-accepted.eml", "accepted", None, None),
        ("gmail-th-sick.eml", "declined", None, None),
        ("outlook-th-plain-delegate.eml", "delegated", "ว่าที่ร้อยตรีสมศักดิ์ รักเรียน", "ครูชำนาญการพิเศษ"),
        ("apple-mail-en-iphone.eml", "accepted", None, None),
        ("thunderbird-en-inline.eml", "declined", None, None),
    ],
)
def test_text_replies_from_every_client_ignore_the_quoted_invitation(name, answer, delegate, position):
    found = read_attendance(fixture(name))
    assert (found.answer, found.delegate, found.delegate_position) == (answer, delegate, position)


@pytest.mark.parametrize(
    "raw",
    [
        message(text="\n" + GMAIL_QUOTE),
        message(text="ขอบคุณครับ" + GMAIL_QUOTE),
        message(text="รับทราบครับ\n\nนายสมชาย ใจดี" + GMAIL_QUOTE),
        message(text="Thanks for the update." + GMAIL_QUOTE, subject="Re: Invitation"),
        (REPLIES / "outlook-web-th-empty.eml").read_bytes(),
    ],
)
def test_the_quoted_invitation_never_answers_and_nothing_recognisable_is_none(raw):
    assert read_attendance(InboundMessage.parse(raw)) is None


def test_a_subject_prefix_answers_only_when_nothing_else_does():
    assert read_attendance(text_reply("", subject="Accepted: School administrators' meeting")).rule == "en:subject:accepted"
    assert read_attendance(text_reply("", subject="ปฏิเสธคำเชิญ: ประชุม")).answer == "declined"
    assert read_attendance(text_reply("", subject="เบื้องต้น: ประชุม")).answer == "tentative"
    assert read_attendance(text_reply("ไม่สามารถเข้าร่วมได้ครับ", subject="Accepted: ประชุม")).answer == "declined"
    assert read_attendance(text_reply("", subject="Re: Accepted: ประชุม")) is None


# --- approvals --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, approved",
    [
        ("อนุมัติ", True),
        ("เห็นชอบตามเสนอครับ", True),
        ("ชอบ", True),
        ("ลงนามแล้ว", True),
        ("ดำเนินการได้ครับ", True),
        ("อนุมัติครับ ไม่ต้องแก้ไข", True),
        ("เห็นชอบ ผู้รับผิดชอบคือกลุ่มนโยบายและแผน", True),
        ("OK", True),
        ("Approved.", True),
        ("Looks good to me.", True),
        ("ไม่อนุมัติ", False),
        ("ไม่เห็นชอบ", False),
        ("เห็นชอบ แต่ขอให้ปรับชื่อวาระที่ 3", False),
        ("แก้ไขวันที่ในหนังสือเชิญด้วยครับ", False),
        ("ส่งคืนเพื่อทบทวน", False),
        ("Not approved.", False),
        ("Please revise item 2.", False),
        ("OK, but the date is wrong.", False),
    ],
)
def test_approvals(text, approved):
    answer = read_approval(text_reply(text + GMAIL_QUOTE, subject="Re: ขออนุมัติร่างระเบียบวาระการประชุม"))
    assert answer.approved is approved
    assert answer.comments == text and answer.rule.startswith("approvals:") and answer.reasons


def test_an_approval_reply_that_says_nothing_is_none():
    assert read_approval(text_reply("ขอบคุณครับ" + GMAIL_QUOTE)) is None


# --- rules files -------------------------------------------------------------------


def test_rules_are_read_once():
    assert phrasebooks(RULES) is phrasebooks(RULES)


@pytest.fixture
def rules(tmp_path):
    for path in RULES.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


@pytest.mark.parametrize(
    "file, old, new, expected",
    [
        (
            "replies-th.yaml",
            "  - ยินดีเข้าร่วม\n",
            "  - {name: ยินดี, pattern: 'ยินดี(เข้าร่วม'}\n",
            "replies-th.yaml: accepted: ยินดี: not a valid pattern",
        ),
        ("replies-en.yaml", "  - {name: unsure, pattern:", "  - {pattern:", "replies-en.yaml: tentative entry 2: needs a name"),
        ("replies-en.yaml", "accepted:\n", "acepted: []\naccepted:\n", "replies-en.yaml: unknown sections acepted"),
        ("replies-th.yaml", "    - 'ขอแสดงความนับถือ'", "    - '(ขอแสดง'", "replies-th.yaml: quotes.closings[0]: not a valid pattern"),
        (
            "approvals.yaml",
            "  - ทบทวน\n",
            "  - {name: ทบทวน, pattern: 'ทบทวน', weight: 2}\n",
            "approvals.yaml: returned: ทบทวน: unknown keys weight",
        ),
    ],
)
def test_a_broken_rule_is_an_error_naming_the_file_and_the_entry(rules, file, old, new, expected):
    path = rules / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    reply = text_reply("ยืนยันเข้าร่วมครับ")
    with pytest.raises(RuleError, match=re.escape(expected)):
        read_attendance(reply, rules) if file.startswith("replies") else read_approval(reply, rules)


def test_a_counter_whose_start_cannot_be_read_is_still_a_counter_without_a_time():
    """icalendar keeps "DTSTART:2026" as a broken property and raises when it is read (found by tests/test_fuzz.py)."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"], mail["Message-ID"] = "somchai@school001.example.ac.th", "meeting@office.test", "", "<c@school.test>"
    mail.set_content(
        "BEGIN:VCALENDAR\r\nMETHOD:COUNTER\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:sa2569-11@office.test\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:somchai@school001.example.ac.th\r\nDTSTART;TZID=Asia/Bangkok:2026\r\n"
        "SEQUENCE:0\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", subtype="calendar", params={"method": "COUNTER"})
    attendance = read_attendance(InboundMessage.parse(mail.as_bytes()))
    assert attendance.answer == "counter" and attendance.proposed_start is None

"""Only what the sender wrote: quoted history and signatures go, the answer never does."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from service.mail.message import InboundMessage
from service.understand.quotes import new_text, strip_quoted

REPLIES = Path(__file__).parent / "messages" / "replies"
INVITATION = "ขอเชิญเข้าร่วมประชุมผู้บริหารสถานศึกษา กรุณายืนยันเข้าร่วมประชุมภายในวันที่ ๒๓"

HISTORY = {
    "outlook-en": (
        "From: Meeting Secretariat <meeting@office.example.go.th>\n"
        "Sent: Monday, November 23, 2026 10:00 AM\n"
        "To: Somchai <somchai@school001.example.ac.th>\n"
        "Subject: Invitation\n\n" + INVITATION
    ),
    "outlook-th": (
        "________________________________\n"
        "จาก: สพป.ตัวอย่าง เขต ๑ <meeting@office.example.go.th>\n"
        "ส่ง: 23 พฤศจิกายน 2569 10:00\n"
        "ถึง: somchai@school001.example.ac.th\n"
        "เรื่อง: ขอเชิญประชุม\n\n" + INVITATION
    ),
    "outlook-original-message": "-----Original Message-----\nFrom: meeting@office.example.go.th\n\n" + INVITATION,
    "gmail-en-wrapped": (
        "On Mon, 23 Nov 2026 at 10:00, Meeting Secretariat <\nmeeting@office.example.go.th> wrote:\n\n> " + INVITATION
    ),
    "gmail-th-wrapped": (
        "เมื่อ วันจันทร์ที่ 23 พ.ย. 2569 เวลา 10:00 สพป.ตัวอย่าง เขต ๑ <\nmeeting@office.example.go.th> เขียนว่า:\n\n> "
        + INVITATION
    ),
    "apple-en": "On 23 Nov 2026, at 10:00, Meeting Secretariat <meeting@office.example.go.th> wrote:\n\n> " + INVITATION,
    "apple-th": "เมื่อ 23 พ.ย. 2569 เวลา 10:00 สพป.ตัวอย่าง <meeting@office.example.go.th> เขียนว่า:\n\n> " + INVITATION,
    "gmail-forward-th": "---------- ข้อความที่ส่งต่อ ---------\nจาก: สพป.ตัวอย่าง\nวันที่: 23 พ.ย. 2569\n\n" + INVITATION,
    "quoted-lines-only": "> " + INVITATION + "\n> ขอแสดงความนับถือ",
}


@pytest.mark.parametrize("client", sorted(HISTORY))
def test_quoted_history_goes_whatever_the_client(client):
    assert strip_quoted("ยืนยันเข้าร่วมประชุมครับ\n\n" + HISTORY[client]) == "ยืนยันเข้าร่วมประชุมครับ"


@pytest.mark.parametrize("client", ["outlook-en", "outlook-th", "outlook-original-message"])
def test_a_reply_with_nothing_written_above_the_history_says_nothing(client):
    assert strip_quoted(HISTORY[client]) == ""


def test_bottom_and_inline_posting_keep_the_answers_between_the_quotes():
    text = (
        "On 23/11/2026 10:00, Meeting Secretariat wrote:\n"
        "> You are invited to the meeting.\n"
        "> > On 20/11/2026, Clerk wrote:\n"
        "> > Draft invitation\n\n"
        "I'm afraid I can't make it.\n\n"
        "> Please confirm your attendance.\n\n"
        "Sorry again."
    )
    assert strip_quoted(text) == "I'm afraid I can't make it.\n\nSorry again."


@pytest.mark.parametrize(
    "signature",
    [
        "-- \nJohn Carter\nDeputy Head",
        "Sent from my iPhone",
        "ส่งจาก iPhone ของฉัน",
        "Get Outlook for Android",
        "ขอแสดงความนับถือ\nนายสมชาย ใจดี\nผู้อำนวยการโรงเรียนบ้านหนองบัว\nโทร 08 1234 5678",
        "Best regards,\nJohn Carter\nDeputy Head",
        "ขอบคุณครับ\nสมชาย",
    ],
)
def test_signatures_go(signature):
    assert strip_quoted(f"ติดราชการครับ\n\n{signature}") == "ติดราชการครับ"


@pytest.mark.parametrize(
    "text",
    [
        "Thanks, I will attend.",
        "- I will attend\n- my deputy will come too",
        "ขอบคุณครับ\n" + " ".join(["ยืนยันเข้าร่วมประชุม และขอส่งรายชื่อผู้ติดตามดังนี้"] * 3) + "\n" + "\n".join(["รายชื่อ"] * 8),
        "Best regards,\nplease note that I will send Mr. Tom Lee in my place, and he will bring the report "
        "on the budget that the committee asked for at the last meeting, together with the annex.",
    ],
)
def test_the_answer_is_never_taken_for_a_signature(text):
    assert strip_quoted(text) == text


def _mail(plain: str | None, html: str | None) -> InboundMessage:
    mail = EmailMessage()
    mail["From"] = "somchai@school001.example.ac.th"
    mail["To"] = "meeting@office.example.go.th"
    mail["Subject"] = "Re: ขอเชิญประชุม"
    if plain is not None:
        mail.set_content(plain)
    if html is not None:
        if plain is None:
            mail.set_content(html, subtype="html")
        else:
            mail.add_alternative(html, subtype="html")
    return InboundMessage.parse(mail.as_bytes())


def test_html_only_quote_containers_go_and_text_after_them_stays():
    html = (
        "<div>ยินดีเข้าร่วมครับ</div>"
        "<blockquote type='cite'>" + INVITATION + "</blockquote>และจะนำเอกสารไปด้วย"
        "<div class='gmail_quote'><div class='gmail_attr'>เมื่อ … เขียนว่า:</div>" + INVITATION + "</div>"
        "<div class='yahoo_quoted'>" + INVITATION + "</div>"
    )
    assert new_text(_mail(None, html)) == "ยินดีเข้าร่วมครับ\nและจะนำเอกสารไปด้วย"


def test_html_only_outlook_history_goes_from_the_reply_separator_on():
    html = (
        "<div><div>ไม่สามารถเข้าร่วมได้ค่ะ</div></div><div id='appendonsend'></div><hr>"
        "<div id='divRplyFwdMsg'><b>จาก:</b> สพป.<br><b>ส่ง:</b> 23 พ.ย.</div><div>" + INVITATION + "</div>"
    )
    assert new_text(_mail(None, html)) == "ไม่สามารถเข้าร่วมได้ค่ะ"


def test_the_plain_part_is_read_when_there_is_one_and_the_html_when_it_is_empty():
    assert new_text(_mail("ยืนยันเข้าร่วมครับ\n\n> " + INVITATION, "<p>html</p>")) == "ยืนยันเข้าร่วมครับ"
    assert new_text(_mail("\n", "<p>จาก html</p><blockquote>" + INVITATION + "</blockquote>")) == "จาก html"


@pytest.mark.parametrize(
    "fixture, written",
    [
        ("outlook-web-th-declined.eml", "เรียน ประธานการประชุม\n\nดิฉันไม่สามารถเข้าร่วมประชุมได้ เนื่องจากติดภารกิจเร่งด่วน"),
        ("outlook-web-th-empty.eml", ""),
        ("outlook-desktop-en-accepted.eml", "Dear Secretary,\n\nThank you for the invitation. I will attend."),
        ("webmail-gmail-quote-th-accepted.eml", "ยินดีเข้าร่วมประชุมครับ"),
        ("gmail-th-sick.eml", "ขออนุญาตลาประชุมครับ เนื่องจากป่วย"),
        ("apple-mail-en-iphone.eml", "Count me in. See you on Wednesday."),
        ("apple-declined-no-body.eml", ""),
    ],
)
def test_new_text_of_real_client_replies(fixture, written):
    assert new_text(InboundMessage.parse((REPLIES / fixture).read_bytes())) == written

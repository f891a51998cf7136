"""Every client-shaped answer, through the real servers, counted for the right invitee.

The fixtures in tests/messages/replies are shaped like what Outlook/Exchange,
Gmail, Thunderbird, Apple and webmail send. Here each one answers a real
invitation: its people are in the directory and invited, calendar answers
carry the meeting's UID, text answers quote the invitation's Message-ID; all
are APPENDed to the shared mailbox in Dovecot and the daemon reads them over
IMAP (its own mail goes to Postfix's smtp-sink). The accuracy per client is
printed.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
import uuid
from collections import Counter
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

from helpers import DIRECTORY, ENV, write_config
from service.commands import apply
from service.config import load
from service.directory import Directory
from service.daemon import Daemon, build, make_sender, make_source
from service.meetings.clerk import HANDLERS
from service.meetings.meeting import shard

REPLIES = Path(__file__).parent / "messages" / "replies"
UID_LINE = re.compile(rb"(?m)^UID:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*")  # with its folded continuation lines
BANGKOK = ZoneInfo("Asia/Bangkok")
START = datetime(2026, 12, 16, 9, tzinfo=BANGKOK)

#: fixture → (the invitee who answers, the answer to be counted)
EXPECTED = {
    "outlook-th-accepted.eml": ("somchai@school001.example.ac.th", "accepted"),
    "outlook-th-tentative.eml": ("wichai@school003.example.ac.th", "tentative"),
    "outlook-en-declined-comment.eml": ("john.carter@eis.example.ac.th", "declined"),
    "outlook-th-declined-delegate.eml": ("malee@school002.example.ac.th", "delegated"),
    "gmail-accepted.eml": ("pranee.school004@gmail.com", "accepted"),
    "gmail-declined-comment.eml": ("anan.school005@gmail.com", "declined"),
    "gmail-tentative.eml": ("suda.school006@gmail.com", "tentative"),
    "thunderbird-accepted.eml": ("kittipong@school007.example.ac.th", "accepted"),
    "thunderbird-delegated.eml": ("director@school008.example.ac.th", "delegated"),
    "apple-declined-no-body.eml": ("napat@school009.example.ac.th", "declined"),
    "attachment-only-base64.eml": ("teacher.school010@gmail.com", "accepted"),
    "outlook-web-th-declined.eml": (None, "declined"),
    "outlook-desktop-en-accepted.eml": (None, "accepted"),
    "webmail-gmail-quote-th-accepted.eml": (None, "accepted"),
    "gmail-th-sick.eml": (None, "declined"),
    "outlook-th-plain-delegate.eml": (None, "delegated"),
    "apple-mail-en-iphone.eml": (None, "accepted"),
    "thunderbird-en-inline.eml": (None, "declined"),
}


def answering(name: str) -> str:
    """The invitee's address: the calendar's attendee, or the sender of a text answer."""
    address, _ = EXPECTED[name]
    return address or parseaddr(email.message_from_bytes((REPLIES / name).read_bytes())["From"])[1].lower()


def as_answer_to(raw: bytes, uid: str, invitation_id: str, calendar: bool) -> bytes:
    """The fixture answering our meeting: its calendars carry our UID; a text answer quotes our invitation."""
    new_uid = b"UID:" + uid.encode()
    mail = email.message_from_bytes(UID_LINE.sub(new_uid, raw), policy=email.policy.compat32)
    for part in mail.walk():  # calendars sent base64-encoded
        payload = None if part.is_multipart() else part.get_payload(decode=True)
        if payload and b"BEGIN:VCALENDAR" in payload and (part["Content-Transfer-Encoding"] or "").lower() == "base64":
            part.set_payload(base64.encodebytes(UID_LINE.sub(new_uid, payload)).decode())
    if not calendar:
        del mail["In-Reply-To"]
        mail["In-Reply-To"] = f"<{invitation_id}>"
    return mail.as_bytes()


def test_every_client_shaped_answer_is_counted_for_its_invitee(tmp_path, monkeypatch, dovecot, smtp_sink):
    """The invitations go to Postfix's smtp-sink: these people's domains are not ours to deliver to."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    mailbox = f"meeting-{uuid.uuid4().hex[:6]}@office.test"
    dovecot.add_user(mailbox)
    people = sorted({answering(name) for name in EXPECTED})
    known = Directory.load(DIRECTORY)
    new = [address for address in people if known.who(address) is None]
    directory = tmp_path / "directory.toml"
    directory.write_text(DIRECTORY.read_text(encoding="utf-8") + "".join(
        f'\n[[people]]\nid = "p-answer-{n}"\nname = "ผู้บริหารสถานศึกษา {n}"\nemails = ["{address}"]\nrole = "school_director"\n'
        for n, address in enumerate(new)
    ), encoding="utf-8")
    attendees = [Directory.load(directory).who(address).id for address in people]
    config = write_config(
        tmp_path,
        f'kind = "imap"\nhost = "{dovecot.host}"\nport = {dovecot.imap_port}\nsecurity = "none"\nusername = "{mailbox}"',
        f'kind = "smtp"\nhost = "{smtp_sink.host}"\nport = {smtp_sink.port}\nsecurity = "none"',
        directory=directory,
    )
    config.write_text(config.read_text().replace("meeting@office.test", mailbox))
    settings = load(config)
    clock = lambda: datetime(2026, 12, 9, 8, tzinfo=BANGKOK)  # noqa: E731 - T−7, the invitations' day
    service = build(settings, clock=clock)
    for command, arguments in [
        ("meeting_new", {"kind": "school_administrators", "title": "การประชุมผู้บริหารสถานศึกษา", "number": 11, "year_be": 2569,
                         "start": START.isoformat(), "end": (START + timedelta(hours=3)).isoformat(), "place": "ห้องประชุมใหญ่",
                         "chair": "p-director", "secretary": "p-deputy", "attendees": attendees}),
        ("new_draft", {"meeting": "sa2569-11"}),
    ]:
        apply(service.office, service.outbox, HANDLERS, command, arguments, clock())
    meeting = service.office.store.get(shard("sa2569-11"), "meeting", "meeting")
    approved = {**meeting, "drafts": [{**meeting["drafts"][-1], "status": "approved"}],
                "done": {step: clock().isoformat() for step in ("call_for_items", "reminder_1", "reminder_2", "submission_deadline", "assemble_agenda", "approvals")}}
    with service.office.store.transaction() as transaction:
        transaction.put(shard("sa2569-11"), "meeting", "meeting", approved)
    service.office.store.close()
    Daemon(build(settings, clock=clock), make_source(settings), make_sender(settings)).run(once=True)

    service = build(settings, clock=clock, exclusive=False)
    sent = [d for s in service.office.store.shards("sent") for d in service.office.store.find(s, "mail") if d["template"] == "invitation"]
    invitation_to = {d["to"][0]: d["message_id"] for d in sent}
    assert len(invitation_to) == len(people)
    for name in EXPECTED:
        raw = (REPLIES / name).read_bytes()
        is_calendar = EXPECTED[name][0] is not None
        dovecot.append(mailbox, as_answer_to(raw, "sa2569-11@office.test", invitation_to[answering(name)], is_calendar))
    Daemon(build(settings, clock=clock), make_source(settings), make_sender(settings)).run(once=True)

    service = build(settings, clock=clock, exclusive=False)
    invitees = {i["email"]: i for i in service.office.store.find(shard("sa2569-11"), "invitees")}
    right, asked = Counter(), Counter()
    for name, (_, answer) in EXPECTED.items():
        client = name.split("-")[0]
        asked[client] += 1
        statuses = [a["answer"] for a in invitees[answering(name)]["answers"]]
        right[client] += answer in statuses
        if answer not in statuses:
            print(f"\n{name}: expected {answer}, counted {statuses}")
    print("\nanswers counted right, per client: " + ", ".join(f"{c} {right[c]}/{asked[c]}" for c in sorted(asked)))
    assert right == asked

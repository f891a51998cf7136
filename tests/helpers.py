"""Small builders the tests share: an office configuration and realistic messages."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

from service.config import PROJECT_ROOT

SECRET = "test-reply-key-secret"
ENV = {"SECRETARY_REPLY_KEY": SECRET, "SECRETARY_IMAP_PASSWORD": "secret"}
MAILBOX = "meeting@office.test"
DIRECTORY = PROJECT_ROOT / "templates" / "config" / "directory.toml"


#: These offices run on the real clock: from 07:30 office time the clerk's digest would be one more mail in every count.
NO_DIGEST = "[digest]\nsend = false\n"


def write_config(folder: Path, source: str, sender: str, directory: Path = DIRECTORY, extra: str = "", digest: bool = False) -> Path:
    """An office configuration with the given [source] and [sender] tables; the digest only for a simulated clock (`digest`)."""
    path = folder / "secretary.toml"
    path.write_text(
        f'[office]\nname = "สำนักงานเขตพื้นที่การศึกษาทดสอบ"\nmailbox = "{MAILBOX}"\nclerk = "clerk@office.test"\n'
        f'[store]\npath = "store"\n[directory]\npath = "{directory}"\n[daemon]\ntick_seconds = 1\n'
        f"[source]\n{source}\n[sender]\n{sender}\n{'' if digest else NO_DIGEST}{extra}",
        encoding="utf-8",
    )
    return path


def message(
    sender: str = "นายสมชาย ใจดี <somchai@school001.example.ac.th>",
    subject: str = "Re: ขอเชิญประชุมผู้บริหารสถานศึกษา",
    text: str = "ยืนยันเข้าร่วมประชุมครับ",
    message_id: str | None = "",
    to: str = MAILBOX,
    attachments: tuple[tuple[str, bytes], ...] = (),
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A plain message as a mail client would send it; message_id "" makes a unique one, None none."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc))
    if message_id is not None:
        mail["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@mail.example.ac.th>"
    for name, value in headers:
        mail[name] = value
    mail.set_content(text)
    for filename, data in attachments:
        mail.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return mail.as_bytes()

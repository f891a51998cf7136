"""An inbound message as the rest of the service sees it.

Mail from real clients is messy: wrong charsets, broken MIME, missing headers.
`InboundMessage.parse` reads what can be read and lists what it could not
(`problems`), so the pipeline can still recognise a bounce from a sloppy MTA
but quarantine a person's message it cannot read safely, with that reason,
instead of guessing. Only a message with nothing to read is refused outright.
"""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.errors import StartBoundaryNotFoundDefect
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from inscriptis import get_text

from .headers import READING

#: Charsets tried, in order, after the declared one fails. Thai mail is often
#: TIS-620/Windows-874 mislabelled as something else, or UTF-8 with no label.
FALLBACK_CHARSETS = ("utf-8", "tis-620")

DEFAULT_SIZE_LIMIT = 25 * 1024 * 1024


class MalformedMessage(ValueError):
    """The message cannot be read at all; the text says why, for the clerk (in Thai, then English, as every reason here)."""


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message."""

    filename: str
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class CalendarPart:
    """An iCalendar object found in a message, with its iTIP method if any."""

    method: str
    text: str


@dataclass(frozen=True)
class InboundMessage:
    """The parts of a message that understanding and filing need."""

    raw: bytes
    message: EmailMessage
    message_id: str | None
    sender: str
    sender_name: str
    reply_to: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    calendars: tuple[CalendarPart, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def identity(self) -> str:
        """What makes two copies of this message the same message.

        The Message-ID when there is one (the same mail fetched again after a
        crash, or delivered twice, has the same one); the content hash else.
        """
        if self.message_id:
            return f"mid:{self.message_id}"
        return f"sha256:{self.sha256}"

    def header(self, name: str) -> str:
        """A header's decoded value, or "" when absent or unreadable."""
        return header_value(self.message, name)

    @classmethod
    def parse(cls, raw: bytes, size_limit: int = DEFAULT_SIZE_LIMIT) -> InboundMessage:
        """Read a raw RFC 5322 message; raise MalformedMessage if there is nothing to read."""
        if not raw.strip():
            raise MalformedMessage("ข้อความว่างเปล่า / empty message")
        if len(raw) > size_limit:
            raise MalformedMessage(
                f"ข้อความมีขนาด {len(raw) / 1048576:.1f} MB เกินกำหนด {size_limit / 1048576:.0f} MB / "
                f"message is {len(raw) / 1048576:.1f} MB, over the {size_limit / 1048576:.0f} MB limit"
            )
        message = email.message_from_bytes(raw, policy=READING)
        problems = _structure_problems(message)
        sender_name, sender = parseaddr(header_value(message, "From"))
        if "@" not in sender:
            problems.append("ไม่มีที่อยู่ผู้ส่ง (From) ที่ใช้ได้ / no usable From address")
        message_id = first_message_id(header_value(message, "Message-ID"))
        if not message_id:
            problems.append("ไม่มี Message-ID จึงโยงคำตอบกับข้อความนี้ไม่ได้ / no Message-ID header: replies to it could not be threaded")
        bodies, attachments, calendars = _walk(message, problems)
        html = bodies.get("text/html", "")
        text = bodies.get("text/plain") or (get_text(html).strip() if html else "")
        return cls(
            raw=raw,
            message=message,
            message_id=message_id,
            sender=sender.lower(),
            sender_name=sender_name,
            reply_to=next(iter(_addresses(message, "Reply-To")), ""),  # an address, or none: never what a broken header left
            to=_addresses(message, "To"),
            cc=_addresses(message, "Cc"),
            subject=" ".join(header_value(message, "Subject").split()),
            date=_date(header_value(message, "Date")),
            in_reply_to=message_ids(header_value(message, "In-Reply-To")),
            references=message_ids(header_value(message, "References")),
            text=text,
            html=html,
            attachments=tuple(attachments),
            calendars=tuple(calendars),
            problems=tuple(problems),
        )


def header_value(message: Message, name: str) -> str:
    """Decode a header without ever raising: bad encodings become what can be read."""
    try:
        value = message.get(name)
    except Exception:  # the email package raises many kinds on hostile headers
        value = None
        for key, raw_value in message.raw_items():
            if key.lower() == name.lower():
                value = raw_value
                break
    if value is None:
        return ""
    return str(value).strip()


_MSGID = re.compile(r"<([^<>\s]+)>")


def message_ids(value: str) -> tuple[str, ...]:
    """The message ids in an In-Reply-To or References header, without brackets."""
    return tuple(_MSGID.findall(value))


def first_message_id(value: str) -> str | None:
    """The Message-ID's value; a bare id without brackets is accepted too."""
    found = message_ids(value)
    if found:
        return found[0]
    bare = value.strip()
    return bare if bare and " " not in bare else None


def _addresses(message: Message, name: str) -> tuple[str, ...]:
    """The header's addresses; not what a mangled header leaves (control characters, spaces), which no reply could go to."""
    found = (addr.lower() for _, addr in getaddresses([header_value(message, name)]))
    return tuple(addr for addr in found if "@" in addr and addr.isprintable() and " " not in addr)


def _date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None


def _structure_problems(message: Message) -> list[str]:
    for part in message.walk():
        for defect in part.defects:
            if isinstance(defect, StartBoundaryNotFoundDefect):
                return ["โครงสร้างข้อความเสียหาย อ่านส่วนต่าง ๆ ไม่ได้ / broken MIME: a multipart part has no boundary where it says it has"]
    return []


def _walk(message: EmailMessage, problems: list[str]) -> tuple[dict[str, str], list[Attachment], list[CalendarPart]]:
    """Sort the leaves of the MIME tree into body texts, attachments and calendars."""
    bodies: dict[str, str] = {}
    attachments: list[Attachment] = []
    calendars: list[CalendarPart] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() == "message":
            continue  # containers, and reports (a DSN's fields) that are no attachment
        content_type = part.get_content_type()
        filename = _filename(part)
        disposition = (part.get_content_disposition() or "").lower()
        if content_type in ("text/calendar", "application/ics") or filename.lower().endswith(".ics"):
            calendars.append(CalendarPart(_calendar_method(part), _read_text(part, problems)))
            if disposition != "attachment" and not filename:
                continue
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            bodies.setdefault(content_type, _read_text(part, problems))
            continue
        data = part.get_payload(decode=True) or b""
        attachments.append(Attachment(filename or f"attachment-{len(attachments) + 1}", content_type, data))
    return bodies, attachments, calendars


def _filename(part: Message) -> str:
    try:
        return part.get_filename() or ""
    except Exception:  # a hostile RFC 2231 parameter
        return ""


def _calendar_method(part: Message) -> str:
    method = part.get_param("method") or ""
    if not method:
        found = re.search(r"^METHOD:(\S+)", decode_text(part) or "", re.MULTILINE)
        method = found.group(1) if found else ""
    return str(method).upper()


def decode_text(part: Message) -> str | None:
    """A text part's content, trying the declared charset then common fallbacks; None if none reads it."""
    data = part.get_payload(decode=True) or b""
    for charset in (part.get_content_charset() or "us-ascii", *FALLBACK_CHARSETS):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return None


def _read_text(part: Message, problems: list[str]) -> str:
    """Decoded text; text no charset reads is kept with replacement characters, and noted."""
    text = decode_text(part)
    if text is None:
        charset = part.get_content_charset()
        problems.append(f"อ่านข้อความที่ระบุชุดอักขระ {charset!r} ไม่ออก / a text part declared as {charset!r} cannot be decoded in any known charset")
        text = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
    return text

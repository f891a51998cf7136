"""Outbound MIME: text and HTML from templates, attachments, threading and loop-safety headers.

Every message the service sends is rendered here from `templates/email/<lang>/`
(`NAME.subject.j2`, `NAME.txt.j2`, `NAME.html.j2`). It is rendered once, when
it is queued, and kept as bytes in the outbox, so a retry sends exactly the
same message with the same Message-ID.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime
from pathlib import Path
from typing import Any

from ..documents.environment import environment
from .headers import WRITING

#: RFC 3834: "auto-replied" for answers to a message, "auto-generated" for the rest.
AUTO_REPLIED = "auto-replied"
AUTO_GENERATED = "auto-generated"


@dataclass(frozen=True)
class OutboundAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Outgoing:
    """A message the meeting logic wants sent, before it is rendered.

    `cause` names what made it (an inbound message's identity plus a purpose,
    or a timeline step); the Message-ID is derived from it, so the same cause
    always yields the same Message-ID and can never be queued twice.
    """

    template: str
    to: tuple[str, ...]
    context: dict[str, Any]
    cause: str
    reply_key: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    auto_submitted: str = AUTO_GENERATED
    attachments: tuple[OutboundAttachment, ...] = field(default=())
    calendar: str = ""
    calendar_method: str = ""


@dataclass(frozen=True)
class Composer:
    """Renders `Outgoing` messages for one office."""

    templates: Path
    office_name: str
    mailbox: str
    language: str = "th"

    def message_id(self, outgoing: Outgoing) -> str:
        """A stable Message-ID: the reply key (when an answer is wanted) and a hash of the cause."""
        digest = hashlib.sha256(outgoing.cause.encode("utf-8")).hexdigest()[:20]
        local = f"{outgoing.reply_key}.{digest}" if outgoing.reply_key else f"s.{digest}"
        return f"{local}@{self.mailbox.partition('@')[2]}"

    def render(self, outgoing: Outgoing, now: datetime) -> tuple[str, bytes]:
        """The Message-ID and the bytes of the finished message."""
        context = {**outgoing.context, "office_name": self.office_name, "mailbox": self.mailbox, "reply_key": outgoing.reply_key}
        subject, text, html = (self._render(f"{outgoing.template}.{part}.j2", context) for part in ("subject", "txt", "html"))
        message_id = self.message_id(outgoing)
        message = EmailMessage(policy=WRITING)
        message["From"] = Address(self.office_name, addr_spec=self.mailbox)
        message["To"] = ", ".join(outgoing.to)
        message["Subject"] = " ".join(subject.split())
        message["Date"] = format_datetime(now)
        message["Message-ID"] = f"<{message_id}>"
        if outgoing.reply_key:
            local, _, domain = self.mailbox.partition("@")
            message["Reply-To"] = Address(self.office_name, addr_spec=f"{local}+{outgoing.reply_key}@{domain}")
        if outgoing.in_reply_to:
            message["In-Reply-To"] = f"<{outgoing.in_reply_to}>"
            message["References"] = " ".join(f"<{ref}>" for ref in (*outgoing.references, outgoing.in_reply_to))
        message["Auto-Submitted"] = outgoing.auto_submitted
        message["X-Auto-Response-Suppress"] = "All"
        message["Content-Language"] = self.language
        message.set_content(text, charset="utf-8")
        message.add_alternative(html, subtype="html", charset="utf-8")
        if outgoing.calendar:
            # iMIP (RFC 6047): the calendar is an alternative of the text, its `method` equal to the
            # calendar's METHOD; the same file attached as invite.ics serves clients that look there.
            message.add_alternative(outgoing.calendar, subtype="calendar", charset="utf-8", params={"method": outgoing.calendar_method})
        for attachment in outgoing.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            if maintype == "text":  # named UTF-8, or a client would read Thai as its own default charset
                message.add_attachment(attachment.data.decode("utf-8"), subtype=subtype, charset="utf-8", filename=attachment.filename)
            else:
                message.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
        if outgoing.calendar:
            message.add_attachment(outgoing.calendar.encode("utf-8"), maintype="application", subtype="ics", filename="invite.ics")
        return message_id, message.as_bytes()

    def _render(self, name: str, context: dict[str, Any]) -> str:
        env = environment(self.templates)
        template = env.get_template(f"email/{self.language}/{name}")
        return template.render(context)

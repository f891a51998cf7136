"""What a message means: one verdict, with the rule that decided and why.

`understand` turns an inbound message into a `Verdict` and nothing else: it
changes no state and sends nothing. Context comes first (is it automatic mail?
does it answer one of our messages, through a reply key?), content after,
following `rules/classify.yaml`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..directory import Directory, Entry
from ..mail.message import InboundMessage
from ..reply_keys import ReplyKey, find_keys, safe_id
from .automated import Bounce, detect_auto_reply, detect_bounce
from .objections import ObjectionReading, read_objection
from .progress import Progress, read_progress
from .quotes import new_text
from .replies import ApprovalAnswer, Attendance, read_approval, read_attendance
from .rules import Facts, first_match, load_rules

DETECTORS = frozenset({"bounce", "auto_reply", "calendar_reply", "attendance", "approval"})


@dataclass(frozen=True)
class Context:
    """What understanding needs to know besides the message itself."""

    directory: Directory
    reply_key_secret: bytes
    rules: Path


@dataclass(frozen=True)
class Verdict:
    """What a message is, who sent it, what it answers, and why we think so."""

    kind: str
    rule: str
    reasons: tuple[str, ...]
    sender: Entry | None = None
    reply_key: ReplyKey | None = None
    key_matches_sender: bool = False
    attendance: Attendance | None = None
    approval: ApprovalAnswer | None = None
    bounce: Bounce | None = None
    objection: ObjectionReading | None = None
    progress: Progress | None = None
    new_text: str = ""
    problems: tuple[str, ...] = field(default=())

    @property
    def automatic(self) -> bool:
        return self.kind in ("bounce", "auto_reply")

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain data, for `secretary explain`, the store and the digest."""
        result: dict[str, Any] = {"kind": self.kind, "rule": self.rule, "reasons": list(self.reasons)}
        if self.attendance:
            result["attendance"] = self.attendance.answer
            result["delegate"] = self.attendance.delegate
            result["attendance_detail"] = _plain(asdict(self.attendance))
        if self.bounce:
            result["recipients"] = list(self.bounce.recipients)
            result["permanent"] = self.bounce.permanent
        if self.approval:
            result["approved"] = self.approval.approved
            result["comments"] = self.approval.comments
        if self.objection:
            result["objection"] = _plain(asdict(self.objection))
        if self.progress:
            result["progress"] = _plain(asdict(self.progress))
        result["sender"] = _plain(asdict(self.sender)) if self.sender else None
        result["reply_key"] = asdict(self.reply_key) if self.reply_key else None
        result["key_matches_sender"] = self.key_matches_sender
        result["problems"] = list(self.problems)
        return result


def understand(message: InboundMessage, context: Context) -> Verdict:
    """Decide what `message` is, following the rules in order."""
    sender = context.directory.who(message.sender)
    keys = _reply_keys(message, context.reply_key_secret)
    key = keys[0] if keys else None
    facts = Facts(
        subject=message.subject,
        text=lambda: new_text(message, context.rules),
        header=message.header,
        sender_known=sender is not None,
        attachments=len(message.attachments),
        reply_purposes=tuple(k.purpose for k in keys),
        detectors={
            "bounce": lambda: _explained(detect_bounce(message.message, context.rules / "automated.yaml")),
            "auto_reply": lambda: _explained(detect_auto_reply(message.message, context.rules / "automated.yaml")),
            "calendar_reply": lambda: facts.detect("attendance") if _has_calendar_reply(message) else (None, []),
            "attendance": lambda: _explained(read_attendance(message, context.rules)),
            "approval": lambda: _explained(read_approval(message, context.rules)),
        },
    )
    rule, reasons = first_match(load_rules(context.rules / "classify.yaml", DETECTORS), facts)
    bounce = facts.detect("bounce")[0] if rule.kind == "bounce" else None
    attendance = facts.detect("attendance")[0] if rule.kind == "attendance" else None
    approval = facts.detect("approval")[0] if rule.kind == "approval" else None
    objection = read_objection(facts.text, [(a.filename, a.data) for a in message.attachments], context.rules) if rule.kind == "objection" else None
    sent = (message.date or datetime.now(timezone.utc)).date()
    progress = read_progress(facts.text, context.rules, sent) if rule.kind == "progress" else None
    return Verdict(
        kind=rule.kind,
        rule=rule.name,
        reasons=(rule.description, *reasons),
        sender=sender,
        reply_key=key,
        key_matches_sender=bool(key and sender and safe_id(sender.id) == key.person),
        attendance=attendance,
        approval=approval,
        bounce=bounce,
        objection=objection,
        progress=progress,
        new_text="" if rule.kind in ("bounce", "auto_reply") else facts.text,
        problems=message.problems,
    )


def _reply_keys(message: InboundMessage, secret: bytes) -> list[ReplyKey]:
    """Keys in what the message answers: its reference headers, its recipients, its text."""
    places = [*message.in_reply_to, *message.references, *message.to, *message.cc, message.subject, message.text]
    return find_keys("\n".join(places), secret)


def _explained(found: Any) -> tuple[Any, list[str]]:
    if found is None:
        return None, []
    return found, [*getattr(found, "reasons", ())]


def _has_calendar_reply(message: InboundMessage) -> bool:
    return any(part.method in ("REPLY", "COUNTER") for part in message.calendars)


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return {key: (value.isoformat() if hasattr(value, "isoformat") else list(value) if isinstance(value, tuple) else value) for key, value in data.items()}

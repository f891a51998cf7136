"""Answers to our mail: attendance (to an invitation) and approval (to a draft).

Attendance is read from the most reliable source first:

1. an iMIP calendar answer (RFC 6047): METHOD:REPLY with the replying
   ATTENDEE's PARTSTAT, or METHOD:COUNTER with a proposed time. Clients send
   it inline, as an `invite.ics` attachment, base64 or not, sometimes with no
   body at all;
2. the sender's own words (quoted history and signature removed), matched
   against the phrases of rules/replies-<language>.yaml;
3. a calendar-answer subject prefix ("Accepted:", "ปฏิเสธ:") alone, which is
   weaker: only when nothing else answers.

A text that says nothing recognisable is no answer (None), never a guess.
Every answer names the rule that decided and says why, for the clerk.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any

from icalendar import Calendar, Event
from icalendar.prop import vCalAddress

from ..mail.message import InboundMessage
from ..rulefiles import read_rule_file
from .quotes import RULES, compile_rule, language_files, new_text
from ..rulefiles import RuleError

#: When a text matches several answers, the first of these wins: a decline
#: that sends someone is a delegation, a hedged decline is not yet a no.
ANSWER_ORDER = ("delegated", "tentative", "declined", "accepted")

PARTSTATS = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative", "DELEGATED": "delegated"}

#: PRODIDs of clients that put the attendee's comment in the mail body
#: (Outlook, Exchange); the others write boilerplate there ("… has accepted
#: this invitation") and put the comment in the calendar, if anywhere.
COMMENT_IN_BODY = re.compile(r"microsoft", re.IGNORECASE)

#: How far before a phrase a negation is looked for: it must end right before
#: the phrase, and "ไม่สามารถจะ" or "will not be" are short.
NEGATION_REACH = 40

_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LANGUAGE_KEYS = {"quotes", "negation", "subject_prefixes", "reasons", "delegate", *ANSWER_ORDER}


@dataclass(frozen=True)
class Attendance:
    """Someone's answer to an invitation, with the rule that decided and why."""

    answer: str  # "accepted" | "declined" | "tentative" | "delegated" | "counter"
    delegate: str | None = None  # the delegate's name or address when delegated
    delegate_position: str | None = None
    reason: str | None = None  # e.g. "ติดราชการ", or the attendee's comment
    uid: str | None = None  # the calendar UID, when from iMIP
    attendee: str | None = None  # the ATTENDEE address that answered, when from iMIP
    proposed_start: datetime | None = None  # for COUNTER
    rule: str = ""  # which rule decided, e.g. "imip-reply", "th:declined:ติดราชการ"
    reasons: tuple[str, ...] = ()  # human-readable why


@dataclass(frozen=True)
class ApprovalAnswer:
    """An approver's answer to a draft: approved, or returned with comments."""

    approved: bool
    comments: str
    rule: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Phrase:
    """A named pattern from a rules file; the name is what a verdict cites."""

    name: str
    pattern: re.Pattern[str]
    declines: bool = False


@dataclass(frozen=True)
class Found:
    """A phrase found in a text, and the rule name it gives the verdict."""

    rule: str
    match: re.Match[str]

    @property
    def said(self) -> str:
        return " ".join(self.match.group(0).split())


@dataclass(frozen=True)
class Phrasebook:
    """One language's answers to an invitation, from rules/replies-<language>.yaml."""

    language: str
    answers: dict[str, tuple[Phrase, ...]]
    reasons: tuple[Phrase, ...]
    negation: tuple[re.Pattern[str], ...]
    subject_prefixes: dict[str, re.Pattern[str]]
    delegate_name: re.Pattern[str]
    delegate_position: re.Pattern[str]

    def find(self, kind: str, text: str) -> list[Found]:
        return _find(text, self.answers[kind], self.negation, f"{self.language}:{kind}")

    def delegate_in(self, match: re.Match[str]) -> tuple[str | None, str | None]:
        """The delegate's name (or else address) and position named by a delegation phrase.

        A phrase with a `who` group names the delegate inside it ("มอบหมาย <who>
        เข้าร่วมประชุมแทน"); otherwise the delegate is looked for on its line.
        A name needs its title, so a bare word is never taken for one.
        """
        region = match.group("who") if "who" in match.re.groupindex else _line(match)
        name = self.delegate_name.search(region)
        position = self.delegate_position.match((region[name.end() :] if name else region).strip())
        address = _ADDRESS.search(region)
        delegate = name.group(0).strip() if name else address.group(0).lower() if address else None
        return delegate, " ".join(position.group("position").split()) if position else None


@dataclass(frozen=True)
class ApprovalPhrases:
    """rules/approvals.yaml: what approves a draft and what sends it back."""

    approved: tuple[Phrase, ...]
    returned: tuple[Phrase, ...]
    negation: tuple[re.Pattern[str], ...]


def read_attendance(message: InboundMessage, rules: Path = RULES) -> Attendance | None:
    """The answer to an invitation in `message`, or None when it holds none."""
    books = phrasebooks(rules)
    return _from_calendar(message, books, rules) or _from_text(new_text(message, rules), books) or _from_subject(message, books)


def read_approval(message: InboundMessage, rules: Path = RULES) -> ApprovalAnswer | None:
    """An approver's answer to a draft, or None when the text neither approves nor asks for changes."""
    text = new_text(message, rules)
    phrases = approval_phrases(rules)
    returned = _find(text, phrases.returned, phrases.negation, "approvals:returned")
    approved = _find(text, phrases.approved, phrases.negation, "approvals:approved")
    decided = returned or approved
    if not decided:
        return None
    reasons = [f"the text says {found.said!r} ({found.rule})" for found in decided]
    if returned and approved:
        reasons.append(f"it also says {approved[0].said!r}, but a request for changes sends the draft back")
    return ApprovalAnswer(approved=not returned, comments=text, rule=decided[0].rule, reasons=tuple(reasons))


# --- iMIP -------------------------------------------------------------------


def _from_calendar(message: InboundMessage, books: tuple[Phrasebook, ...], rules: Path) -> Attendance | None:
    """The first REPLY or COUNTER answer in the message's calendar parts; a part icalendar cannot read is skipped."""
    for part in message.calendars:
        try:
            calendar = Calendar.from_ical(part.text)
        except ValueError:
            continue
        method = str(calendar.get("METHOD") or part.method).upper()
        if method not in ("REPLY", "COUNTER"):
            continue
        for event in calendar.walk("VEVENT"):
            found = _event_answer(event, method, str(calendar.get("PRODID", "")), message, books, rules)
            if found:
                return found
    return None


def _event_answer(
    event: Event, method: str, prodid: str, message: InboundMessage, books: tuple[Phrasebook, ...], rules: Path
) -> Attendance | None:
    """The replying attendee's answer in one VEVENT.

    Two answers are delegations without PARTSTAT=DELEGATED: the delegate's own
    acceptance (their line has DELEGATED-FROM; the seat is the delegator's),
    and a decline whose comment sends someone ("ติดราชการ จึงมอบหมาย … แทน",
    typed into Outlook's response), which the organizer must not read as a no.
    """
    attendees = list(event.attendees)
    person = _replying_attendee(attendees, message.sender)
    if person is None:
        return None
    address = _address(person)
    partstat = str(person.params.get("PARTSTAT", "")).upper()
    answer = "counter" if method == "COUNTER" else PARTSTATS.get(partstat)
    if answer is None:
        return None
    comment = _comment(event, person, prodid, message, rules)
    reasons = [f"a calendar {method} from {prodid or 'an unnamed client'}: ATTENDEE {address} PARTSTAT={partstat or 'none'}"]
    if comment:
        reasons.append(f"the attendee's comment: {comment!r}")
    attendance = Attendance(
        answer=answer, reason=comment, uid=str(event.get("UID", "")) or None, attendee=address, rule=f"imip-{method.lower()}"
    )
    delegator = _addresses(person.params.get("DELEGATED-FROM"))
    if answer == "counter":
        proposed = _as_datetime(event.get("DTSTART"))
        reasons.append(f"proposes a new start: {proposed.isoformat() if proposed else 'none given'}")
        attendance = replace(attendance, proposed_start=proposed)
    elif answer == "delegated":
        delegate = _delegated_to(person, attendees)
        reasons.append(f"delegated to {delegate or 'someone not named'}")
        attendance = replace(attendance, delegate=delegate)
    elif delegator and answer != "declined":
        reasons.append(f"{address} answers as the delegate of {delegator[0]}")
        attendance = replace(attendance, answer="delegated", delegate=address, attendee=delegator[0])
    elif answer != "accepted" and (said := _from_text(comment or "", books)) and said.answer == "delegated":
        reasons += [f"the comment sends a delegate ({said.rule})", *said.reasons]
        attendance = replace(attendance, answer="delegated", delegate=said.delegate, delegate_position=said.delegate_position)
    return replace(attendance, reasons=tuple(reasons))


def _replying_attendee(attendees: list[vCalAddress], sender: str) -> vCalAddress | None:
    """The attendee who answers: the one with the From address, else the only one.

    A delegation REPLY also carries the delegate's line (with DELEGATED-FROM);
    that line is not the one answering.
    """
    for attendee in attendees:
        if _address(attendee) == sender:
            return attendee
    answering = [a for a in attendees if not a.params.get("DELEGATED-FROM")] or attendees
    return answering[0] if len(answering) == 1 else None


def _address(attendee: vCalAddress) -> str:
    """The attendee's mail address; Apple may give a urn:uuid value and the address in EMAIL."""
    value = str(attendee)
    if value.lower().startswith("mailto:"):
        return value[7:].strip().lower()
    return str(attendee.params.get("EMAIL", value)).strip().lower()


def _addresses(value: Any) -> list[str]:
    """Addresses from a DELEGATED-TO / DELEGATED-FROM parameter (one or a list, quoted or not)."""
    values = value if isinstance(value, (list, tuple)) else [value] if value else []
    return [re.sub(r"^mailto:", "", str(v).strip('"'), flags=re.IGNORECASE).lower() for v in values]


def _delegated_to(person: vCalAddress, attendees: list[vCalAddress]) -> str | None:
    """DELEGATED-TO on the delegator's line, else the new attendee DELEGATED-FROM them."""
    named = _addresses(person.params.get("DELEGATED-TO"))
    if named:
        return named[0]
    delegator = _address(person)
    for attendee in attendees:
        if delegator in _addresses(attendee.params.get("DELEGATED-FROM")):
            return _address(attendee)
    return None


def _comment(event: Event, person: vCalAddress, prodid: str, message: InboundMessage, rules: Path) -> str | None:
    """Gmail's X-RESPONSE-COMMENT parameter, the COMMENT property, or Outlook's body."""
    comments = [html.unescape(str(person.params.get("X-RESPONSE-COMMENT", "")))]
    comments += [str(comment) for comment in event.comments]
    if COMMENT_IN_BODY.search(prodid):
        comments.append(new_text(message, rules))
    text = "\n".join(comment.strip() for comment in comments if comment.strip())
    return text or None


def _as_datetime(value: Any) -> datetime | None:
    try:
        moment = getattr(value, "dt", None)
    except ValueError:  # icalendar keeps an unreadable value ("DTSTART:2026") and raises when it is read
        return None
    if isinstance(moment, datetime):
        return moment
    if isinstance(moment, date):
        return datetime.combine(moment, time())
    return None


# --- free text ----------------------------------------------------------------


def _from_text(text: str, books: tuple[Phrasebook, ...]) -> Attendance | None:
    """The answer the text gives; when it gives several, the first in ANSWER_ORDER wins."""
    found = {kind: [hit for book in books for hit in book.find(kind, text)] for kind in ANSWER_ORDER}
    answer = next((kind for kind in ANSWER_ORDER if found[kind]), None)
    if answer is None:
        return None
    decided = found[answer][0]
    reasons = [f"the text says {decided.said!r} ({decided.rule})"]
    reasons += [f"it also says {hit.said!r} ({hit.rule})" for kind in ANSWER_ORDER if kind != answer for hit in found[kind][:1]]
    reason = _reason(text, books) if answer != "accepted" else None
    delegate, position = _named_delegate(text, books) if answer == "delegated" else (None, None)
    if answer == "delegated":
        reasons.append(f"delegate: {delegate or 'not named'}" + (f", {position}" if position else ""))
    return Attendance(
        answer=answer, delegate=delegate, delegate_position=position, reason=reason, rule=decided.rule, reasons=tuple(reasons)
    )


def _reason(text: str, books: tuple[Phrasebook, ...]) -> str | None:
    """The first reason the text gives ("ติดราชการ", "on official duty")."""
    found = [hit for book in books for hit in _find(text, book.reasons, book.negation, f"{book.language}:reason")]
    return min(found, key=lambda hit: hit.match.start()).said if found else None


def _named_delegate(text: str, books: tuple[Phrasebook, ...]) -> tuple[str | None, str | None]:
    """The delegate's name (or address) and position, from the first delegation phrase that names one."""
    for book in books:
        for hit in book.find("delegated", text):
            named = book.delegate_in(hit.match)
            if named != (None, None):
                return named
    return None, None


def _line(match: re.Match[str]) -> str:
    text = match.string
    end = text.find("\n", match.end())
    return text[text.rfind("\n", 0, match.start()) + 1 : end if end >= 0 else len(text)]


def _from_subject(message: InboundMessage, books: tuple[Phrasebook, ...]) -> Attendance | None:
    for book in books:
        for answer, prefix in book.subject_prefixes.items():
            found = prefix.match(message.subject)
            if found:
                why = f"no calendar part or text answers, but the subject starts with {found.group(0)!r}"
                return Attendance(answer=answer, rule=f"{book.language}:subject:{answer}", reasons=(why,))
    return None


def _find(text: str, phrases: tuple[Phrase, ...], negation: tuple[re.Pattern[str], ...], rule: str) -> list[Found]:
    """Each phrase's first occurrence that no negation right before it cancels, in the order the text says them."""
    found = []
    for phrase in phrases:
        for match in phrase.pattern.finditer(text):
            before = max(0, match.start() - NEGATION_REACH)
            if not any(pattern.search(text, before, match.start()) for pattern in negation):
                found.append(Found(f"{rule}:{phrase.name}", match))
                break
    return sorted(found, key=lambda hit: hit.match.start())


# --- rules files --------------------------------------------------------------


@lru_cache(maxsize=None)
def phrasebooks(rules: Path) -> tuple[Phrasebook, ...]:
    """Every language's phrasebook (rules/replies-<language>.yaml), read and checked once."""
    return tuple(_phrasebook(path) for path in language_files(rules))


def _phrasebook(path: Path) -> Phrasebook:
    data = read_rule_file(path)
    unknown = set(data) - _LANGUAGE_KEYS
    if unknown:
        raise RuleError(f"{path}: unknown sections {', '.join(sorted(unknown))} (known: {', '.join(sorted(_LANGUAGE_KEYS))})")
    delegate = data.get("delegate")
    if not isinstance(delegate, dict):
        raise RuleError(f"{path}: delegate: needs `name` and `position` patterns")
    position = compile_rule(path, "delegate.position", delegate.get("position"))
    if "position" not in position.groupindex:
        raise RuleError(f"{path}: delegate.position: needs a (?P<position>…) group")
    prefixes = data.get("subject_prefixes") or {}
    if not isinstance(prefixes, dict) or not set(prefixes) <= set(PARTSTATS.values()):
        raise RuleError(f"{path}: subject_prefixes: maps accepted, declined, tentative to lists of prefixes")
    answers = {kind: _phrases(path, data, kind) for kind in ANSWER_ORDER}
    reasons = _phrases(path, data, "reasons")
    answers["declined"] += tuple(reason for reason in reasons if reason.declines)
    return Phrasebook(
        language=path.stem.removeprefix("replies-"),
        answers=answers,
        reasons=reasons,
        negation=_negation(path, data),
        subject_prefixes={answer: _subject_prefix(path, answer, words) for answer, words in prefixes.items()},
        delegate_name=compile_rule(path, "delegate.name", delegate.get("name")),
        delegate_position=position,
    )


def _subject_prefix(path: Path, answer: str, words: Any) -> re.Pattern[str]:
    if not isinstance(words, list) or not words or not all(isinstance(word, str) and word for word in words):
        raise RuleError(f"{path}: subject_prefixes.{answer}: must be a list of prefixes")
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return compile_rule(path, f"subject_prefixes.{answer}", rf"\s*(?:{alternatives})\s*:")


@lru_cache(maxsize=None)
def approval_phrases(rules: Path) -> ApprovalPhrases:
    """rules/approvals.yaml, read and checked once."""
    path = rules / "approvals.yaml"
    data = read_rule_file(path)
    unknown = set(data) - {"negation", "approved", "returned"}
    if unknown:
        raise RuleError(f"{path}: unknown sections {', '.join(sorted(unknown))} (known: negation, approved, returned)")
    return ApprovalPhrases(_phrases(path, data, "approved"), _phrases(path, data, "returned"), _negation(path, data))


def _negation(path: Path, data: dict[str, Any]) -> tuple[re.Pattern[str], ...]:
    """Negations must end right before the phrase they cancel, whatever the pattern says."""
    patterns = data.get("negation") or []
    if not isinstance(patterns, list):
        raise RuleError(f"{path}: negation must be a list of patterns")
    return tuple(compile_rule(path, f"negation[{n}]", rf"(?:{p})\s*\Z") for n, p in enumerate(patterns))


def _phrases(path: Path, data: dict[str, Any], section: str) -> tuple[Phrase, ...]:
    entries = data.get(section) or []
    if not isinstance(entries, list):
        raise RuleError(f"{path}: {section} must be a list of phrases")
    return tuple(_phrase(path, section, number, entry) for number, entry in enumerate(entries, start=1))


def need_groups(path: Path, where: str, phrases: tuple[Phrase, ...], groups: tuple[str, ...]) -> None:
    """Every phrase must capture the named groups its reader takes from a match: say which one does not."""
    for phrase in phrases:
        missing = [group for group in groups if group not in phrase.pattern.groupindex]
        if missing:
            raise RuleError(f"{path}: {where}: {phrase.name}: needs {', '.join(f'(?P<{g}>…)' for g in missing)}")


def _phrase(path: Path, section: str, number: int, entry: Any) -> Phrase:
    """A phrase: a literal string named by itself, or {name, pattern} (and `declines` among reasons)."""
    if isinstance(entry, str) and entry:
        return Phrase(entry, compile_rule(path, f"{section}: {entry}", re.escape(entry)))
    if not isinstance(entry, dict) or not entry.get("name"):
        raise RuleError(f"{path}: {section} entry {number}: needs a name (a phrase, or {{name, pattern}})")
    name = str(entry["name"])
    allowed = {"name", "pattern", "declines"} if section == "reasons" else {"name", "pattern"}
    if not set(entry) <= allowed:
        raise RuleError(f"{path}: {section}: {name}: unknown keys {', '.join(sorted(set(entry) - allowed))}")
    pattern = compile_rule(path, f"{section}: {name}", entry.get("pattern") or re.escape(name))
    return Phrase(name, pattern, bool(entry.get("declines")))

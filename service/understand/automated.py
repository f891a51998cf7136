"""Automatic mail: bounces and auto-replies, so that neither is taken for a person's answer.

A secretary that counted an out-of-office note as an answer, or acknowledged a
bounce, would mislead the clerk and could loop with another robot. So every
inbound message is asked two questions, and each answer carries its evidence:

* `detect_bounce`: did a mail server report that a message could not be
  delivered, to whom, and for good? Read three ways, the most exact first: the
  fields of a standard delivery status notification (RFC 3464); flufl.bounce's
  detectors (GNU Mailman's) for the formats of common mail servers; the
  patterns in rules/automated.yaml for the non-standard rest.
* `detect_auto_reply`: did a program write it (RFC 3834 headers, out-of-office
  subjects, reports)? The named rules in rules/automated.yaml.

Mail from sloppy servers is the norm here, so neither function raises on
malformed input: what cannot be read is passed over.
"""

from __future__ import annotations

import email.errors
import email.header
import html
import re
from copy import deepcopy
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator


# The detector list, rather than flufl.bounce.all_failures(), because a verdict
# must name the detector that decided; the version is pinned in pyproject.toml.
from flufl.bounce._scan import _DETECTORS

from ..config import PROJECT_ROOT
from ..mail.message import decode_text, header_value
from ..rulefiles import RuleError, read_rule_file

RULES_FILE = PROJECT_ROOT / "rules" / "automated.yaml"

#: An address as mail servers write it. Stricter than RFC 5322 on purpose: a
#: failed address is only useful if it can be matched to a person we wrote to.
#: The lengths are bounded (RFC 5321's limits) so that a search stays linear on hostile text.
ADDRESS = (
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9_%+-][A-Za-z0-9._%+-]{0,63}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_VALID_ADDRESS = re.compile(ADDRESS)

DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
#: Parts that hold the returned message, or its headers, rather than the report.
RETURNED_TYPES = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers", "message/global-headers"}
)
#: RFC 3464 actions that mean "not delivered"; OpenSMTPD writes "error", SendGrid "expired".
FAILED_ACTIONS = ("failed", "delayed", "expired", "error")

_FIELD = re.compile(r"^([A-Za-z][\w-]*):\s*(.*)$")
_MESSAGE_ID = re.compile(r"^[ \t]*(?:message-id|in-reply-to|references):[ \t]*<?([^<>\s@]+@[^<>\s]+?)>?[ \t]*$", re.I | re.M)
_STATUS_CLASS = re.compile(r"^\s*([245])\.\d")


@dataclass(frozen=True)
class Bounce:
    """A mail server's report that a message could not be delivered."""

    recipients: tuple[str, ...]
    permanent: bool
    reasons: tuple[str, ...]
    detector: str


@dataclass(frozen=True)
class AutoReply:
    """A message a program wrote: an out-of-office note, a receipt, a report."""

    reasons: tuple[str, ...]
    rule: str


@dataclass(frozen=True)
class Rule:
    """A named set of conditions on headers, subject and text that must all hold."""

    name: str
    description: str
    headers: tuple[tuple[str, re.Pattern[str]], ...]
    subject: re.Pattern[str] | None
    text: re.Pattern[str] | None

    def check(self, facts: _Facts) -> list[str] | None:
        """Why the rule holds for this message, or None when it does not."""
        reasons = [self.description]
        for name, pattern in self.headers:
            value = facts.header(name)
            if not value or not pattern.search(value):
                return None
            reasons.append(f"{name}: {value}")
        for where, pattern in (("subject", self.subject), ("text", self.text)):
            if pattern is None:
                continue
            if not (found := pattern.search(facts.look(where))):
                return None
            reasons.append(f"{where} contains {found.group(0).strip()!r}")
        return reasons


@dataclass(frozen=True)
class RecipientPattern:
    """Where a bounce names its failed addresses: its own text, the returned message, or a header."""

    name: str
    where: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class PermanenceSign:
    """Words or codes that tell a permanent failure from a temporary one."""

    name: str
    permanent: bool
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Rules:
    """rules/automated.yaml, checked and compiled."""

    auto_reply: tuple[Rule, ...]
    bounce: tuple[Rule, ...]
    mail_system: tuple[Rule, ...]
    returned_message: re.Pattern[str]
    recipients: tuple[RecipientPattern, ...]
    not_recipients: re.Pattern[str]
    permanence: tuple[PermanenceSign, ...]


def detect_bounce(msg: Message, rules_file: Path = RULES_FILE) -> Bounce | None:
    """The delivery failure `msg` reports, or None if it reports none.

    A standard report that names its recipients is believed over any
    heuristic; one that says every recipient was delivered is not a bounce.
    """
    facts = _Facts(msg, load_rules(rules_file))
    reports = _delivery_reports(msg)
    failures = [failure for failure in map(_failure, reports) if failure]
    if reports and not failures:
        return None
    dsn = _dsn_bounce(failures) if failures else None
    if dsn and dsn.recipients:
        return dsn
    return (_flufl_bounce(msg, facts) if _from_mail_system(facts) else None) or _rules_bounce(facts) or dsn


def detect_auto_reply(msg: Message, rules_file: Path = RULES_FILE) -> AutoReply | None:
    """The first rule in rules/automated.yaml saying a program wrote `msg`, or None."""
    facts = _Facts(msg, load_rules(rules_file))
    for rule in facts.rules.auto_reply:
        reasons = rule.check(facts)
        if reasons is not None:
            return AutoReply(reasons=tuple(reasons), rule=rule.name)
    return None


class _Facts:
    """What the rules ask of one message, each read once and only when asked."""

    def __init__(self, msg: Message, rules: Rules) -> None:
        self.msg = msg
        self.rules = rules
        self._headers: dict[str, str] = {}

    def header(self, name: str) -> str:
        if name not in self._headers:
            self._headers[name] = _header(self.msg, name)
        return self._headers[name]

    @cached_property
    def _texts(self) -> tuple[str, str]:
        return _split_texts(self.msg, self.rules.returned_message)

    def look(self, where: str) -> str:
        """What a rule reads: "subject"; "text", the message's own words (a bounce's report
        without its copy of the returned message); "returned", that copy; or a header."""
        if where == "subject":
            return self.header("Subject")
        if where == "text":
            return self._texts[0]
        if where == "returned":
            return self._texts[1]
        return self.header(where)

    @cached_property
    def own_addresses(self) -> frozenset[str]:
        """Addresses of the report's sender and the mailbox it went to: never the failed ones."""
        values = [self.header(name) for name in ("From", "Return-Path", "To")]
        return frozenset(address.lower() for _, address in getaddresses(values))

    @cached_property
    def message_ids(self) -> frozenset[str]:
        """The message ids the bounce quotes: they look like addresses but name messages."""
        quoted = _MESSAGE_ID.findall(f"{self.look('text')}\n{self.look('returned')}")
        return frozenset(message_id.lower() for message_id in quoted)

    def usable(self, addresses: Iterable[str]) -> tuple[str, ...]:
        """The addresses that can be a failed recipient, lower-cased, each once, in order."""
        found = []
        for address in addresses:
            address = address.strip().strip("<>").lower()
            if (
                _VALID_ADDRESS.fullmatch(address)
                and address not in self.own_addresses
                and address not in self.message_ids
                and not self.rules.not_recipients.search(address)
                and address not in found
            ):
                found.append(address)
        return tuple(found)


def _header(msg: Message, name: str) -> str:
    """A header decoded (RFC 2047 too, which compat32 leaves encoded) on one line; "" if absent or unreadable."""
    value = header_value(msg, name)
    if "=?" in value:
        try:
            value = str(email.header.make_header(email.header.decode_header(value)))
        except (LookupError, UnicodeError, ValueError, email.errors.MessageError):
            pass
    return " ".join(value.split())


def _own_parts(msg: Message) -> Iterator[Message]:
    """The leaves of the MIME tree in order, without descending into attached messages."""
    pending = [msg]
    while pending:
        part = pending.pop()
        if part.get_content_maintype() == "multipart" and part.is_multipart():
            pending.extend(reversed([sub for sub in part.get_payload() if isinstance(sub, Message)]))
        else:
            yield part


def _part_text(part: Message) -> str:
    """A part as text: decoded, HTML made plain, header blocks of message/* parts written out."""
    if part.is_multipart():
        return "\n\n".join(_block_text(block) for block in part.get_payload() if isinstance(block, Message))
    text = decode_text(part)
    if text is None:
        text = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
    return _plain(text) if part.get_content_type() == "text/html" else text


def _block_text(block: Message) -> str:
    """A header block as it was written, with any text the parser could not take as headers."""
    lines = [f"{name}: {value}" for name, value in block.raw_items()]
    payload = block.get_payload()
    if isinstance(payload, str):
        lines.append(payload)
    return "\n".join(lines)


def _plain(markup: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|li|h\d)>", "\n", markup)
    return html.unescape(re.sub(r"<[^>]*>", " ", text))


def _split_texts(msg: Message, returned_at: re.Pattern[str]) -> tuple[str, str]:
    """The message's own text and the returned message's, apart: the copy holds addresses that did not fail."""
    own, returned = [], []
    for part in _own_parts(msg):
        content_type = part.get_content_type()
        if content_type in RETURNED_TYPES:
            returned.append(_part_text(part))
        elif part.get_content_maintype() in ("text", "multipart") or content_type in DSN_TYPES:
            text = _part_text(part)
            if cut := returned_at.search(text):
                text, copy = text[: cut.start()], text[cut.start() :]
                returned.append(copy)
            own.append(text)
    return "\n".join(own), "\n".join(returned)


# --- standard delivery status notifications (RFC 3464) ---


def _delivery_reports(msg: Message) -> list[dict[str, str]]:
    """The per-recipient field blocks of the message's delivery-status parts."""
    return [
        fields
        for part in _own_parts(msg)
        if part.get_content_type() in DSN_TYPES
        for fields in _field_blocks(_part_text(part))
        if "final-recipient" in fields or "original-recipient" in fields
    ]


def _field_blocks(text: str) -> list[dict[str, str]]:
    """Blank-line separated blocks of `Name: value` fields, names lower-cased, the first of each kept.

    Read as text rather than trusted to the email parser, because servers break
    the format (unindented continuation lines, say) and the fields still count.
    """
    blocks: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                blocks.append(fields)
            fields, last = {}, ""
        elif line[0] in " \t" and last:
            fields[last] += " " + line.strip()
        elif found := _FIELD.match(line):
            last = found.group(1).lower()
            fields.setdefault(last, found.group(2).strip())
    if fields:
        blocks.append(fields)
    return blocks


@dataclass(frozen=True)
class _Failure:
    address: str | None
    permanent: bool
    action: str
    status: str


def _failure(fields: dict[str, str]) -> _Failure | None:
    """The failure one recipient block reports; None when it says delivered, relayed or expanded.

    The Status code decides permanence when there is one (5.x.x permanent,
    4.x.x temporary), since servers write "Action: failed" for both.
    """
    action = fields.get("action", "").lower()
    status = fields.get("status", "")
    status_class = found.group(1) if (found := _STATUS_CLASS.match(status)) else ""
    if (action and not action.startswith(FAILED_ACTIONS)) or (not action and status_class not in ("4", "5")):
        return None
    permanent = status_class == "5" if status_class else action.startswith(("failed", "error"))
    address = _dsn_address(fields.get("original-recipient", "")) or _dsn_address(fields.get("final-recipient", ""))
    return _Failure(address, permanent, action or "(none)", status or "(none)")


def _dsn_address(value: str) -> str | None:
    """The address in `rfc822; someone@example.org`: the original recipient is what we sent to."""
    address = value.rpartition(";")[2].strip().strip("<>").lower()
    return address if _VALID_ADDRESS.fullmatch(address) else None


def _dsn_bounce(failures: list[_Failure]) -> Bounce:
    """A bounce from the report's failures; when it mixes kinds, only the permanent ones are listed.

    The temporary ones may yet be delivered, and a later report will say.
    """
    permanent = any(failure.permanent for failure in failures)
    recipients = tuple(dict.fromkeys(f.address for f in failures if f.address and f.permanent == permanent))
    reasons = [
        "a delivery status notification (RFC 3464)",
        *(f"{f.address or 'unreadable address'}: Action: {f.action}, Status: {f.status}" for f in failures),
    ]
    return Bounce(recipients=recipients, permanent=permanent, reasons=tuple(reasons), detector="dsn")


# --- flufl.bounce ---


def _from_mail_system(facts: _Facts) -> bool:
    """Whether the message could be a mail system's report (rules/automated.yaml `mail_system`).

    flufl.bounce's heuristics read every line of every part and were written
    for mail already known to be a bounce; a person's reply is spared them.
    """
    return any(rule.check(facts) is not None for rule in facts.rules.mail_system)


def _flufl_bounce(msg: Message, facts: _Facts) -> Bounce | None:
    """The first of flufl.bounce's detectors that names a usable failed address.

    Its detectors answer with sets, so their addresses come sorted rather than in the report's order.
    They read every line of every part, so they get the message without its
    attachments: a bounce says what failed in text, and scanning a 200 KB PDF's
    base64 cost a submission some 170 ms (bench/ingest.py).
    """
    text = _text_only(msg)
    for detector in _DETECTORS:
        try:
            temporary, permanent = detector().process(text)
        except Exception:  # its heuristics were written for well-formed mail, and may trip on the rest
            continue
        failed = sorted(address.decode("ascii", errors="replace") for address in permanent or temporary)
        if recipients := facts.usable(failed):
            found = f"flufl.bounce's {detector.__name__} detector found the failed addresses"
            is_permanent, why = _permanence(facts, default=bool(permanent))
            return Bounce(recipients, is_permanent, (found, why), f"flufl:{detector.__name__.lower()}")
    return None


def _text_only(msg: Message) -> Message:
    """A copy of `msg` whose parts other than text and enclosed messages are emptied."""
    copy = deepcopy(msg)
    for part in copy.walk():
        if not part.is_multipart() and part.get_content_maintype() not in ("text", "message"):
            part.set_payload("")
    return copy


# --- our own rules, for the rest ---


def _rules_bounce(facts: _Facts) -> Bounce | None:
    """A bounce by the first rule in rules/automated.yaml that matches, with what its text says."""
    for rule in facts.rules.bounce:
        reasons = rule.check(facts)
        if reasons is None:
            continue
        recipients, found_by = _recipients(facts)
        permanent, why = _permanence(facts, default=True)
        return Bounce(recipients, permanent, (*reasons, found_by, why), rule.name)
    return None


def _recipients(facts: _Facts) -> tuple[tuple[str, ...], str]:
    """The failed addresses by the first recipient pattern that finds any."""
    for recipient in facts.rules.recipients:
        matches = recipient.pattern.finditer(facts.look(recipient.where))
        if found := facts.usable(match.group("address") for match in matches):
            return found, f"failed address found by {recipient.name}"
    return (), "no failed address found"


def _permanence(facts: _Facts, default: bool) -> tuple[bool, str]:
    """What the report's own codes and words say of permanence; `default` when they say nothing.

    Asked even when flufl.bounce found the addresses: several of its detectors
    call every failure permanent, "mailbox full" and "4.4.1" included.
    """
    text = f"{facts.look('subject')}\n{facts.look('text')}"
    for sign in facts.rules.permanence:
        found = sign.pattern.search(text)
        if found:
            return sign.permanent, f"{sign.name}: {found.group(0).strip()!r}"
    return default, f"nothing says whether the failure is permanent; taken as {'permanent' if default else 'temporary'}"


# --- the rules file ---


@lru_cache(maxsize=None)
def load_rules(path: Path = RULES_FILE) -> Rules:
    """Read and check rules/automated.yaml once; later calls reuse it."""
    data = read_rule_file(path)
    return Rules(
        auto_reply=_rules(path, _list(path, data, "auto_reply")),
        bounce=_rules(path, _list(path, data, "bounce")),
        mail_system=_rules(path, _list(path, data, "mail_system")),
        returned_message=_pattern(
            f"{path}: returned_message", "|".join(f"(?:{p})" for p in _list(path, data, "returned_message"))
        ),
        recipients=tuple(_recipient(path, entry) for entry in _list(path, data, "recipients")),
        not_recipients=_pattern(f"{path}: not_recipients", data.get("not_recipients")),
        permanence=tuple(_sign(path, entry) for entry in _list(path, data, "permanence")),
    )


def _list(path: Path, data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise RuleError(f"{path}: `{key}` must be a non-empty list")
    return value


def _named(path: Path, section: str, entry: Any, *keys: str) -> str:
    """Where an entry stands, for error messages; checks it has a name and the given keys."""
    name = entry.get("name") if isinstance(entry, dict) else None
    where = f"{path}: {section} {name or repr(entry)}"
    if not name:
        raise RuleError(f"{where}: every entry needs a name")
    missing = [key for key in keys if key not in entry]
    if missing:
        raise RuleError(f"{where}: missing {', '.join(missing)}")
    return where


def _rules(path: Path, entries: list[Any]) -> tuple[Rule, ...]:
    rules = tuple(_rule(path, entry) for entry in entries)
    names = [rule.name for rule in rules]
    if duplicated := sorted({name for name in names if names.count(name) > 1}):
        raise RuleError(f"{path}: rule {duplicated[0]}: two rules have this name; a verdict must say which one decided")
    return rules


def _rule(path: Path, entry: Any) -> Rule:
    where = _named(path, "rule", entry, "description", "when")
    when = entry["when"]
    if not isinstance(when, dict) or not when:
        raise RuleError(f"{where}: `when` must give at least one condition: header, subject or text")
    if unknown := sorted(set(when) - {"header", "subject", "text"}):
        raise RuleError(f"{where}: unknown condition {unknown[0]!r} (known: header, subject, text)")
    headers = when.get("header", {})
    if not isinstance(headers, dict) or ("header" in when and not headers):
        raise RuleError(f"{where}: header must map header names to patterns")
    return Rule(
        name=entry["name"],
        description=entry["description"],
        headers=tuple((name, _pattern(f"{where}: header {name}", pattern)) for name, pattern in headers.items()),
        subject=_pattern(f"{where}: subject", when["subject"]) if "subject" in when else None,
        text=_pattern(f"{where}: text", when["text"]) if "text" in when else None,
    )


def _recipient(path: Path, entry: Any) -> RecipientPattern:
    where = _named(path, "recipients", entry, "in", "pattern")
    if not isinstance(entry["in"], str) or not re.fullmatch(r"[\w-]+", entry["in"]):
        raise RuleError(f"{where}: `in` must be text, returned or a header name, got {entry['in']!r}")
    if "{address}" not in str(entry["pattern"]):
        raise RuleError(f"{where}: the pattern must say where the address is, with {{address}}")
    pattern = str(entry["pattern"]).replace("{address}", f"(?P<address>{ADDRESS})")
    return RecipientPattern(entry["name"], entry["in"], _pattern(where, pattern))


def _sign(path: Path, entry: Any) -> PermanenceSign:
    where = _named(path, "permanence", entry, "permanent", "pattern")
    if not isinstance(entry["permanent"], bool):
        raise RuleError(f"{where}: permanent must be true or false")
    return PermanenceSign(entry["name"], entry["permanent"], _pattern(where, entry["pattern"]))


def _pattern(where: str, value: Any) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise RuleError(f"{where}: expected a pattern (a string), got {value!r}")
    try:
        return re.compile(value, re.IGNORECASE | re.MULTILINE)
    except re.error as error:
        raise RuleError(f"{where}: not a valid pattern: {error}") from error

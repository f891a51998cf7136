"""Rules kept as data: load them from YAML and check them against a message.

A rule is a name, a description, a kind and conditions that must all hold.
What each condition found true becomes a reason, so a verdict can always say
which rule decided and why (as GNU Mailman's rules do).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ..rulefiles import RuleError, read_rule_file

KINDS = ("agenda_item", "attendance", "objection", "approval", "notes", "progress", "round_reply", "auto_reply", "bounce", "unknown")
CONDITIONS = ("detector", "reply_to", "subject", "text", "header", "sender", "attachments")


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    kind: str
    when: dict[str, Any]


class Facts:
    """What the conditions ask of a message, each worked out once and only when asked.

    `detectors` maps a detector name to a function giving (found, reasons).
    """

    def __init__(
        self,
        *,
        subject: str,
        text: Callable[[], str],
        header: Callable[[str], str],
        sender_known: bool,
        attachments: int,
        reply_purposes: tuple[str, ...],
        detectors: dict[str, Callable[[], tuple[Any, list[str]]]],
    ) -> None:
        self.subject = subject
        self._text = text
        self.header = header
        self.sender_known = sender_known
        self.attachments = attachments
        self.reply_purposes = reply_purposes
        self._detectors = detectors
        self.found: dict[str, tuple[Any, list[str]]] = {}

    @property
    def text(self) -> str:
        if "text" not in self.found:
            self.found["text"] = (self._text(), [])
        return self.found["text"][0]

    def detect(self, name: str) -> tuple[Any, list[str]]:
        if name not in self.found:
            self.found[name] = self._detectors[name]()
        return self.found[name]


def first_match(rules: tuple[Rule, ...], facts: Facts) -> tuple[Rule, list[str]]:
    """The first rule whose conditions all hold, with the reasons they give."""
    for rule in rules:
        reasons = _check(rule.when, facts)
        if reasons is not None:
            return rule, reasons
    raise RuleError("no rule matched: the rules must end with a catch-all rule (when: {})")


def _check(when: dict[str, Any], facts: Facts) -> list[str] | None:
    reasons: list[str] = []
    for condition, expected in when.items():
        reason = _CHECKS[condition](expected, facts)
        if reason is None:
            return None
        reasons.extend(reason)
    return reasons


def _detector(name: str, facts: Facts) -> list[str] | None:
    found, reasons = facts.detect(name)
    return (reasons or [name]) if found else None


def _reply_to(purposes: list[str], facts: Facts) -> list[str] | None:
    """A purpose names a family: `appr` also matches `appr_minutes`, `act` matches `act_3`."""
    matching = [p for p in facts.reply_purposes if p.split("_")[0] in purposes or p in purposes]
    return [f"answers our message with a {matching[0]!r} reply key"] if matching else None


def _subject(pattern: str, facts: Facts) -> list[str] | None:
    found = re.search(pattern, facts.subject, re.IGNORECASE)
    return [f"subject contains {found.group(0)!r}"] if found else None


def _text(pattern: str, facts: Facts) -> list[str] | None:
    found = re.search(pattern, facts.text, re.IGNORECASE)
    return [f"text contains {found.group(0)!r}"] if found else None


def _header(patterns: dict[str, str], facts: Facts) -> list[str] | None:
    reasons = []
    for name, pattern in patterns.items():
        value = facts.header(name)
        if not value or (pattern and not re.search(pattern, value, re.IGNORECASE)):
            return None
        reasons.append(f"{name}: {value}")
    return reasons


def _sender(expected: str, facts: Facts) -> list[str] | None:
    known = "known" if facts.sender_known else "unknown"
    return [f"the sender is {known} in the directory"] if known == expected else None


def _attachments(expected: bool, facts: Facts) -> list[str] | None:
    return [f"{facts.attachments} attachment(s)"] if bool(facts.attachments) == expected else None


_CHECKS: dict[str, Callable[[Any, Facts], list[str] | None]] = {
    "detector": _detector,
    "reply_to": _reply_to,
    "subject": _subject,
    "text": _text,
    "header": _header,
    "sender": _sender,
    "attachments": _attachments,
}


@lru_cache(maxsize=None)
def load_rules(path: Path, detectors: frozenset[str]) -> tuple[Rule, ...]:
    """Read and check a rules file once; later calls reuse it."""
    data = read_rule_file(path)
    if not isinstance(data.get("rules"), list):
        raise RuleError(f"{path}: must hold a list under `rules:`")
    rules = tuple(_rule(path, number, entry, detectors) for number, entry in enumerate(data["rules"], start=1))
    if not rules or rules[-1].when:
        raise RuleError(f"{path}: the last rule must be a catch-all (when: {{}})")
    return rules


def _rule(path: Path, number: int, entry: Any, detectors: frozenset[str]) -> Rule:
    name = entry.get("name", f"#{number}") if isinstance(entry, dict) else f"#{number}"
    where = f"{path}: rule {name}"
    if not isinstance(entry, dict) or not entry.get("name"):
        raise RuleError(f"{where}: every rule needs a name")
    if entry.get("kind") not in KINDS:
        raise RuleError(f"{where}: kind must be one of {', '.join(KINDS)}, got {entry.get('kind')!r}")
    when = entry.get("when") or {}
    for condition, value in when.items():
        if condition not in CONDITIONS:
            raise RuleError(f"{where}: unknown condition {condition!r} (known: {', '.join(CONDITIONS)})")
        if condition == "detector" and value not in detectors:
            raise RuleError(f"{where}: unknown detector {value!r} (known: {', '.join(sorted(detectors))})")
        if condition in ("subject", "text"):
            try:
                re.compile(value)
            except re.error as error:
                raise RuleError(f"{where}: {condition} is not a valid pattern: {error}") from error
    return Rule(name=entry["name"], description=entry.get("description", ""), kind=entry["kind"], when=when)

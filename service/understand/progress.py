"""A group's report, by reply, on an action the meeting gave it: done, in progress, or delayed.

The brief resolutions go to each group with the actions assigned to it, and
later the office asks how they stand. Groups answer in a sentence
("ดำเนินการเรียบร้อยแล้ว", "ยังไม่แล้วเสร็จ ขอขยายเวลาถึง 31 ม.ค. 2570",
"Completed, report attached"); this reads the status, which action the reply
means when it says ("ข้อ 2", "#2"), and a new due date when it asks for one.

Words are data (the `progress:` section of rules/followups.yaml), with
negation: "ยังไม่ได้ดำเนินการ" is not done, nor is what is only expected
("คาดว่าจะแล้วเสร็จ"). A reply that says nothing about progress is None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from pythainlp.util import thai_digit_to_arabic_digit

from ..rulefiles import RuleError, read_rule_file
from .notes import read_date
from .replies import Phrase, _find, _negation, _phrases, need_groups  # the one phrase format of every rules file

RULE_FILE = "followups.yaml"
SECTION = "progress"

#: When a reply says several things, the first of these wins.
STATUS_ORDER = ("delayed", "in_progress", "done")


@dataclass(frozen=True)
class Progress:
    """How an action stands, by the group's own words, and the rule that decided."""

    status: str  # "done" | "in_progress" | "delayed"
    note: str  # what they wrote, trimmed
    action: int | None  # the action's number, when the reply names one
    new_due: date | None  # when the reply asks for more time until a date
    rule: str


@dataclass(frozen=True)
class ProgressRules:
    """The `progress:` section of rules/followups.yaml, compiled."""

    negation: tuple[re.Pattern[str], ...]
    statuses: dict[str, tuple[Phrase, ...]]
    action: tuple[Phrase, ...]
    new_due: tuple[Phrase, ...]


def read_progress(text: str, rules: Path, today: date) -> Progress | None:
    """The progress a reply reports, or None when it says nothing about it; "อีก 30 วัน" counts from `today`."""
    book = progress_rules(rules)
    said = text.strip()
    found = {status: _find(said, book.statuses[status], book.negation, f"progress:{status}") for status in STATUS_ORDER}
    status = next((status for status in STATUS_ORDER if found[status]), None)
    if status is None:
        return None
    return Progress(status=status, note=said, action=_action(said, book), new_due=_new_due(said, book, rules, today),
                    rule=found[status][0].rule)


def _action(text: str, book: ProgressRules) -> int | None:
    """The number of the first action the reply names."""
    hits = [m for phrase in book.action for m in phrase.pattern.finditer(text)]
    if not hits:
        return None
    return int(thai_digit_to_arabic_digit(min(hits, key=lambda m: m.start()).group("number")))


def _new_due(text: str, book: ProgressRules, rules: Path, today: date) -> date | None:
    """The date a request for more time names, read by the date rules the notes use."""
    for hit in _find(text, book.new_due, book.negation, "progress:new_due"):
        when = read_date(hit.match.group("date"), today, rules)
        if when is not None:
            return when.day
    return None


@lru_cache(maxsize=None)
def progress_rules(rules: Path) -> ProgressRules:
    """The `progress:` section of rules/followups.yaml, read and checked once (other sections are other readers')."""
    path = rules / RULE_FILE
    data = read_rule_file(path).get(SECTION)
    if not isinstance(data, dict):
        raise RuleError(f"{path}: {SECTION}: must be a mapping of negation, {', '.join(STATUS_ORDER)}, action, new_due")
    known = {"negation", "action", "new_due", *STATUS_ORDER}
    unknown = set(data) - known
    if unknown:
        raise RuleError(f"{path}: {SECTION}: unknown keys {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    action = _phrases(path, data, "action")
    new_due = _phrases(path, data, "new_due")
    need_groups(path, f"{SECTION}.action", action, ("number",))
    need_groups(path, f"{SECTION}.new_due", new_due, ("date",))
    return ProgressRules(
        negation=_negation(path, data),
        statuses={status: _phrases(path, data, status) for status in STATUS_ORDER},
        action=action,
        new_due=new_due,
    )

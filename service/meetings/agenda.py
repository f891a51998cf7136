"""Agenda items: the call for items, reading a submission, intake, and assembly.

The words that decide a submission's section, a withdrawal or "nothing this
time" are data (`rules/agenda.yaml`); this module only applies them. Items
are kept per meeting, each with its versions, so a revision replaces the
current text without losing the earlier one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any


from ..directory import Directory, Entry
from ..rulefiles import RuleError, read_rule_file


@dataclass(frozen=True)
class Section:
    name: str
    number: int
    title: str
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class AgendaRules:
    sections: dict[str, Section]
    default_section: str
    fixed: tuple[tuple[int, str], ...]
    nothing_to_submit: tuple[str, ...]
    withdrawal: tuple[str, ...]
    subject_prefixes: tuple[str, ...]
    revision: tuple[str, ...]


@dataclass(frozen=True)
class Submission:
    """What a group's message asks for the agenda."""

    action: str  # "submit" | "revise" | "withdraw" | "nothing"
    section: str
    title: str
    text: str
    attachments: tuple[dict[str, str], ...]


@lru_cache(maxsize=4)
def load_agenda_rules(path: Path) -> AgendaRules:
    data = read_rule_file(path)
    try:
        sections = {
            name: Section(name, int(entry["number"]), entry["title"], tuple(entry.get("patterns", ())))
            for name, entry in data["sections"].items()
        }
        rules = AgendaRules(
            sections=sections,
            default_section=data["default_section"],
            fixed=tuple((int(entry["number"]), entry["title"]) for entry in data.get("fixed", ())),
            nothing_to_submit=tuple(data.get("nothing_to_submit", ())),
            withdrawal=tuple(data.get("withdrawal", ())),
            subject_prefixes=tuple(data.get("subject_prefixes", ())),
            revision=tuple(data.get("revision", ())),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RuleError(f"{path}: {type(error).__name__}: {error}") from error
    if rules.default_section not in sections:
        raise RuleError(f"{path}: default_section {rules.default_section!r} is not one of the sections")
    for pattern in (*rules.nothing_to_submit, *rules.withdrawal, *rules.subject_prefixes, *rules.revision,
                    *(p for s in sections.values() for p in s.patterns)):
        try:
            re.compile(pattern)
        except re.error as error:
            raise RuleError(f"{path}: the pattern {pattern!r} is not valid: {error}") from error
    return rules


def read_submission(subject: str, text: str, attachments: list[dict[str, str]], rules: AgendaRules) -> Submission:
    """Section, title and intent of a submission, from its subject first, then its text."""
    if _matches(rules.withdrawal, subject, text):
        action = "withdraw"
    elif _matches(rules.nothing_to_submit, subject, text) and not attachments:
        action = "nothing"
    elif _matches(rules.revision, subject, text):
        action = "revise"
    else:
        action = "submit"
    section = next(
        (name for name, s in rules.sections.items() if _matches(s.patterns, subject)),
        next((name for name, s in rules.sections.items() if _matches(s.patterns, text)), rules.default_section),
    )
    return Submission(action, section, item_title(subject, rules), text.strip(), tuple(attachments))


def item_title(subject: str, rules: AgendaRules) -> str:
    """The subject without reply prefixes and submission words: what the agenda will print."""
    title = subject.strip()
    changed = True
    while changed:
        changed = False
        for prefix in rules.subject_prefixes:
            stripped = re.sub(rf"^\s*(?:{prefix})\s*", "", title, flags=re.IGNORECASE)
            if stripped != title and stripped:
                title, changed = stripped, True
    return title.strip(" :-–")


def group_of(sender: Entry, directory: Directory) -> Entry:
    """The group a submission belongs to: the sender's group, or the sender itself."""
    return directory.get(sender.group) or sender if sender.group else sender


def intake(items: dict[str, dict[str, Any]], group: Entry, submission: Submission, message: str, now: datetime, deadline: date) -> tuple[str, dict[str, Any] | None]:
    """Apply a submission to the meeting's items; return what happened and the item to store.

    An item is one group's one title. A later submission from the same group
    with the same title, or one that says it is a revision of the group's only
    item, replaces the current version and keeps the earlier one.
    """
    mine = [item for item in items.values() if item["group"] == group.id and item["status"] != "withdrawn"]
    same = [item for item in mine if _same_title(item["title"], submission.title)]
    target = same[0] if same else (mine[0] if submission.action in ("revise", "withdraw") and len(mine) == 1 else None)
    if submission.action == "nothing":
        return "nothing", None
    if submission.action == "withdraw":
        if target is None:
            return "nothing_to_withdraw", None
        return "withdrawn", {**target, "status": "withdrawn", "withdrawn_at": now.isoformat()}
    version = {
        "title": submission.title,
        "section": submission.section,
        "text": submission.text,
        "attachments": list(submission.attachments),
        "message": message,
        "at": now.isoformat(),
    }
    late = now.date() > deadline
    if target is not None:
        return "revised", {**target, **version, "versions": [*target["versions"], version]}
    item_id = f"{group.id}-{len([i for i in items.values() if i['group'] == group.id]) + 1}"
    return ("late" if late else "submitted"), {
        "id": item_id,
        "group": group.id,
        **version,
        "versions": [version],
        "status": "held_late" if late else "submitted",
        "submitted_at": now.isoformat(),
    }


def assemble(items: list[dict[str, Any]], directory: Directory, rules: AgendaRules, group_order: list[str],
             carried: dict[int, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """The agenda in its standard sections, groups' items numbered by the office's order of groups.

    Returns the structure the documents render: sections 1–6, each with
    entries per group (4.1 กลุ่มอำนวยการ) holding the items (4.1.1 …).
    `carried` are entries the previous meeting hands on (its minutes under 2,
    its open follow-ups under 3); they come first in their sections.
    """
    accepted = [item for item in items if item["status"] in ("submitted", "accepted")]
    numbers = sorted({n for n, _ in rules.fixed} | {s.number for s in rules.sections.values()})
    titles = dict(rules.fixed) | {s.number: s.title for s in rules.sections.values()}
    by_number = {s.number: name for name, s in rules.sections.items()}
    agenda = []
    for number in numbers:
        section_items = [item for item in accepted if by_number.get(number) == item["section"]]
        groups = sorted({item["group"] for item in section_items}, key=lambda g: (group_order.index(g) if g in group_order else len(group_order), g))
        entries = [{**entry, "number": f"{number}.{n}"} for n, entry in enumerate((carried or {}).get(number, []), start=1)]
        for group_number, group_id in enumerate(groups, start=len(entries) + 1):
            group = directory.get(group_id)
            mine = sorted((i for i in section_items if i["group"] == group_id), key=lambda i: i["submitted_at"])
            entries.append({
                "number": f"{number}.{group_number}",
                "title": group.name if group else group_id,
                "entries": [
                    {"number": f"{number}.{group_number}.{n}", "title": i["title"], "text": i["text"],
                     "presenter": group.name if group else "", "attachments": [a["name"] for a in i["attachments"]], "item": i["id"]}
                    for n, i in enumerate(mine, start=1)
                ],
            })
        agenda.append({"number": number, "title": titles[number], "entries": entries})
    return agenda


def _matches(patterns: tuple[str, ...], *texts: str) -> bool:
    return any(re.search(p, text, re.IGNORECASE) for p in patterns for text in texts)


def _same_title(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()

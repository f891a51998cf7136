"""An attendee's answer to the circulated brief resolutions: an endorsement, or the points to correct.

Within the window (seven days by default) an attendee endorses the brief
resolutions (รับรอง) or asks to correct one: in free Thai or English ("ขอแก้ไข
มติวาระที่ 5.1.1 จาก 'เห็นชอบ' เป็น 'เห็นชอบในหลักการ' เนื่องจาก …"), or in the
objection form we attach (a DOCX table whose labels are the contract). Each
correction is a `Point`: the item, what it should read, and why, so the office
director can decide on each.

Words are data (rules/objections.yaml). Negation matters: "ไม่มีข้อแก้ไข" and
"no objection" endorse, "ไม่เห็นด้วยกับมติ" objects. A request to correct wins
over an endorsement in the same reply. A reply that does neither is None:
the clerk reads it, nothing is guessed.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pythainlp.util import thai_digit_to_arabic_digit

from ..rulefiles import RuleError, read_rule_file
from .notes import TYPED_CHARACTERS
from .quotes import compile_rule
from .replies import Found, Phrase, _find, _negation, _phrases, need_groups  # the one phrase format of every rules file

RULE_FILE = "objections.yaml"
FORM_FIELDS = ("item", "resolution", "change", "reason")

#: How far apart "วาระที่ 5" and "ข้อ 5.1" may be and still be one item.
NESTED_REACH = 20


@dataclass(frozen=True)
class Point:
    """One correction asked for: the item ("" when none is named), what it should read, and why."""

    item: str  # "5.1.1", Arabic digits
    change: str
    reason: str
    source: str  # "text" | "form"


@dataclass(frozen=True)
class ObjectionReading:
    """The answer: an endorsement (no points), or the points; the rule that decided and why."""

    endorses: bool
    points: tuple[Point, ...]
    rule: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ObjectionRules:
    """rules/objections.yaml, compiled."""

    negation: tuple[re.Pattern[str], ...]
    endorse: tuple[Phrase, ...]
    object: tuple[Phrase, ...]
    items: tuple[Phrase, ...]
    should_read: tuple[Phrase, ...]
    because: tuple[re.Pattern[str], ...]
    closings: tuple[re.Pattern[str], ...]
    greetings: tuple[re.Pattern[str], ...]
    signature_lines: tuple[re.Pattern[str], ...]
    trim: tuple[re.Pattern[str], ...]
    labels: dict[str, str]
    blank: re.Pattern[str]
    number: re.Pattern[str]


@dataclass(frozen=True)
class _Ref:
    """Where the text names an item."""

    start: int
    end: int
    item: str
    rule: str


def read_objection(text: str, attachments: list[tuple[str, bytes]], rules: Path) -> ObjectionReading | None:
    """What an attendee's reply says about the brief resolutions, or None when it neither endorses nor objects.

    `text` is what the sender wrote (quoted history removed); `attachments`
    are (filename, data): a filled objection form among them gives points too.
    """
    book = objection_rules(rules)
    points: list[Point] = []
    reasons: list[str] = []
    rule = ""
    for filename, data in attachments:
        from_form = form_points(filename, data, book)
        if from_form:
            points += from_form
            rule = rule or "objections:form"
            reasons.append(f"the objection form {filename!r} asks for {len(from_form)} correction(s)")
    said = own_words(text, book)
    for point, found in _text_points(said, book):
        points.append(point)
        rule = rule or found.rule
        reasons.append(f"item {point.item or '(none named)'}: the text says {found.said!r} ({found.rule})")
    endorsed = _find(said, book.endorse, book.negation, "objections:endorse")
    if points:
        if endorsed:
            reasons.append(f"it also says {endorsed[0].said!r} ({endorsed[0].rule}), but a request to correct wins")
        return ObjectionReading(endorses=False, points=tuple(points), rule=rule, reasons=tuple(reasons))
    if endorsed:
        reasons = [f"the text says {found.said!r} ({found.rule})" for found in endorsed]
        return ObjectionReading(endorses=True, points=(), rule=endorsed[0].rule, reasons=tuple(reasons))
    return None


# --- free text -------------------------------------------------------------------------


def own_words(text: str, book: ObjectionRules) -> str:
    """The reply without its greeting, closing and signature lines."""
    text = text.translate(TYPED_CHARACTERS).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    while lines and (not lines[0].strip() or any(p.fullmatch(lines[0]) for p in book.greetings)):
        lines.pop(0)
    text = "\n".join(lines)
    cuts = [m.start() for p in book.closings for m in p.finditer(text) if text[: m.start()].strip()]
    if cuts:
        text = text[: min(cuts)]
    lines = text.rstrip().split("\n")
    while lines and (not lines[-1].strip() or _signs(lines[-1], book)):
        lines.pop()
    return "\n".join(lines).strip()


def _signs(line: str, book: ObjectionRules) -> bool:
    """A signature line: a name, a position, a phone; never one that names an item or says something."""
    if not any(pattern.fullmatch(line) for pattern in book.signature_lines):
        return False
    return not (_refs(line, book) or _find(line, book.object, book.negation, "") or _find(line, book.endorse, book.negation, ""))


def _text_points(said: str, book: ObjectionRules) -> list[tuple[Point, Found]]:
    """One point per part of the text that names an item and asks for a change; one without an item when none is named."""
    refs = _refs(said, book)
    if not refs:
        found = _find(said, book.object, book.negation, "objections:object")
        if not found:
            return []
        change, reason = _change_and_reason(said, 0, 0, book)
        return [(Point(item="", change=change, reason=reason, source="text"), found[0])]
    segments = _segments(said, refs)
    lead = _find(said[: segments[0][0]], book.object, book.negation, "objections:object")
    points = []
    for start, end, ref in segments:
        part = said[start:end]
        found = _find(part, book.object, book.negation, "objections:object") or lead
        if not found:
            continue
        change, reason = _change_and_reason(part, ref.start - start, ref.end - start, book)
        points.append((Point(item=ref.item, change=change, reason=reason, source="text"), found[0]))
    return points


def _refs(text: str, book: ObjectionRules) -> list[_Ref]:
    """Every item the text names, in order, overlaps dropped and "วาระที่ 5 ข้อ 5.1" made one."""
    found = sorted(
        (_Ref(m.start(), m.end(), _number(m.group("item")), phrase.name) for phrase in book.items for m in phrase.pattern.finditer(text)),
        key=lambda ref: (ref.start, -ref.end),
    )
    refs: list[_Ref] = []
    for ref in found:
        if refs and ref.start < refs[-1].end:
            continue
        last = refs[-1] if refs else None
        if last and ref.start - last.end <= NESTED_REACH and ref.item.startswith(last.item + ".") and "\n" not in text[last.end : ref.start]:
            refs[-1] = _Ref(last.start, ref.end, ref.item, ref.rule)
            continue
        refs.append(ref)
    return refs


def _segments(text: str, refs: list[_Ref]) -> list[tuple[int, int, _Ref]]:
    """The text cut at each newly named item: from the start of its line, or (on the line of the one before) its clause."""
    segments: list[tuple[int, _Ref]] = []
    for ref in refs:
        if segments and segments[-1][1].item == ref.item:
            continue
        start = text.rfind("\n", 0, ref.start) + 1
        if segments and start <= segments[-1][1].end:
            previous = segments[-1][1].end
            spaces = [m.end() for m in re.finditer(r"[\s,;]+", text[previous : ref.start])]
            start = previous + spaces[-1] if spaces else ref.start
        segments.append((start, ref))
    ends = [start for start, _ in segments[1:]] + [len(text)]
    return [(start, end, ref) for (start, ref), end in zip(segments, ends)]


def _change_and_reason(part: str, ref_start: int, ref_end: int, book: ObjectionRules) -> tuple[str, str]:
    """What it should read (a quoted wording, else the words after the item, else the whole part) and why."""
    body, reason = part, ""
    causes = [m for pattern in book.because for m in pattern.finditer(part) if m.start() >= ref_start]
    if causes:
        cause = min(causes, key=lambda m: m.start())
        body, reason = part[: cause.start()], part[cause.end() :]
    wording = next((m.group("to") for phrase in book.should_read for m in phrase.pattern.finditer(body) if m.start() >= ref_start), None)
    change = _trimmed(wording or "", book) or _trimmed(body[ref_end:], book) or _trimmed(body, book)
    return change, _trimmed(reason, book)


def _trimmed(text: str, book: ObjectionRules) -> str:
    text = " ".join(text.split())
    while True:
        before = text
        for pattern in book.trim:
            text = pattern.sub("", text)
        if text == before:
            return text.strip("\"'“”‘’ ")


def _number(text: str) -> str:
    return re.sub(r"\s+", "", thai_digit_to_arabic_digit(text)).rstrip(".")


# --- the form ---------------------------------------------------------------------------


def form_points(filename: str, data: bytes, book: ObjectionRules) -> list[Point]:
    """The corrections in a filled objection form (DOCX); [] for any other file, or a form left empty.

    Each row whose first cell starts with a label gives that field the text
    of its second cell (or, when that is empty, what follows the label in the
    first). A new point starts at each item row, or when a field comes twice.
    """
    if not (filename or "").lower().endswith(".docx") and not data.startswith(b"PK"):
        return []
    try:
        from docx import Document

        document = Document(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - not a DOCX after all, or a broken one: no form
        return []
    labels = {key: " ".join(label.split()) for key, label in book.labels.items()}
    filled: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for cells in _rows(document):
        first = " ".join(cells[0].split())
        key = next((k for k, label in labels.items() if first.startswith(label)), None)
        if key is None:
            continue
        value = "\n".join(cell.strip() for cell in cells[1:] if cell.strip()) or first[len(labels[key]) :].strip(" :")
        if key in current or (key == "item" and current):
            filled.append(current)
            current = {}
        current[key] = "" if book.blank.fullmatch(value.strip()) else value.strip()
    filled.append(current)
    points = []
    for fields in filled:
        if not (fields.get("change") or fields.get("reason")):
            continue
        number = book.number.search(thai_digit_to_arabic_digit(fields.get("item", "")))
        points.append(Point(
            item=_number(number.group("item")) if number else "",
            change=" ".join(fields.get("change", "").split()),
            reason=" ".join(fields.get("reason", "").split()),
            source="form",
        ))
    return points


def _rows(document: Any):
    """Every table row's distinct cells' texts, nested tables included, in document order."""
    def tables(container: Any):
        for table in container.tables:
            yield table
            for row in table.rows:
                for cell in row.cells:
                    yield from tables(cell)

    for table in tables(document):
        for row in table.rows:
            seen: set[int] = set()
            cells = []
            for cell in row.cells:  # a merged cell comes once per grid column it spans
                if id(cell._tc) not in seen:
                    seen.add(id(cell._tc))
                    cells.append(cell.text)
            if cells:
                yield cells


# --- rules file ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def objection_rules(rules: Path) -> ObjectionRules:
    """rules/objections.yaml, read and checked once."""
    path = rules / RULE_FILE
    data = read_rule_file(path)
    known = {"negation", "endorse", "object", "items", "should_read", "because", "closings", "greetings", "signature_lines", "trim", "form"}
    unknown = set(data) - known
    if unknown:
        raise RuleError(f"{path}: unknown sections {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    items = _phrases(path, data, "items")
    should_read = _phrases(path, data, "should_read")
    need_groups(path, "items", items, ("item",))
    need_groups(path, "should_read", should_read, ("to",))
    form = data.get("form")
    if not isinstance(form, dict) or not isinstance(form.get("labels"), dict) or set(form["labels"]) != set(FORM_FIELDS):
        raise RuleError(f"{path}: form.labels: maps {', '.join(FORM_FIELDS)} to the labels of the form's rows")
    number = compile_rule(path, "form.number", form.get("number"))
    if "item" not in number.groupindex:
        raise RuleError(f"{path}: form.number: needs a (?P<item>…) group")
    return ObjectionRules(
        negation=_negation(path, data),
        endorse=_phrases(path, data, "endorse"),
        object=_phrases(path, data, "object"),
        items=items,
        should_read=should_read,
        because=_patterns(path, data, "because"),
        closings=_patterns(path, data, "closings"),
        greetings=_patterns(path, data, "greetings"),
        signature_lines=_patterns(path, data, "signature_lines"),
        trim=_patterns(path, data, "trim"),
        labels={key: str(label) for key, label in form["labels"].items()},
        blank=compile_rule(path, "form.blank", form.get("blank")),
        number=number,
    )


def _patterns(path: Path, data: dict[str, Any], section: str) -> tuple[re.Pattern[str], ...]:
    values = data.get(section) or []
    if not isinstance(values, list):
        raise RuleError(f"{path}: {section} must be a list of patterns")
    return tuple(compile_rule(path, f"{section}[{n}]", value) for n, value in enumerate(values))

"""The clerk's meeting notes, read into items, resolutions, actions and orders.

After a meeting the clerk sends the notes as simple marked-up text (README,
"The clerk's notes"): a heading per item ("ระเบียบวาระที่ ๕.๑.๑ …"), the
resolution ("มติ: …"), actions ("มอบหมาย: group | what | due"), orders and
announcements ("คำสั่ง: title | groups", body indented below), and a few fields
(when the meeting began and ended, who recorded it, who was absent). Every
marker is data in rules/notes.yaml; this module only walks the lines.

Nothing is guessed silently: what cannot be understood (a group nobody knows,
a date that cannot be read, a line before the first item that is no known
field) becomes a line in `problems`, in Thai and English, for the clerk. The
dates people type ("15 ม.ค. 70", "๑๕/๑/๒๕๗๐", "ภายใน 30 วัน") are read by
`read_date`, which the follow-up reader shares.
"""

from __future__ import annotations

import calendar
import io
import re
import textwrap
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from pythainlp.util import thai_digit_to_arabic_digit, thai_strptime
from pythainlp.util.date import thai_full_month_lists, thai_full_months

from ..directory import Directory, Entry
from ..rulefiles import RuleError, read_rule_file
from .quotes import compile_rule
from .replies import Phrase, _phrases, need_groups  # the one phrase format of every rules file

RULE_FILE = "notes.yaml"

#: The markers, in the order a line is tried against them.
MARKERS = ("resolution", "action", "order", "announcement", "began", "ended", "recorder", "absent", "present", "guests")
LISTS = ("absent", "present", "guests")

#: What people's editors put in text that means a plain character (or nothing):
#: a BOM, zero-width spaces, no-break spaces, full-width colon, bar and brackets.
TYPED_CHARACTERS = str.maketrans({
    "\ufeff": None, "\u200b": None, "\u200c": None, "\u200d": None, "\u2060": None,
    "\u00a0": " ", "\u202f": " ", "\u3000": " ",
    "：": ":", "｜": "|", "（": "(", "）": ")",
})

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
#: What an attachment holds, by its name's suffix, else (for a name without one) by its content type.
BY_SUFFIX = {".txt": "text", ".text": "text", ".md": "text", ".docx": "docx", ".pdf": "pdf"}
BY_TYPE = {"text/plain": "text", "text/markdown": "text", DOCX: "docx", "application/pdf": "pdf"}


@dataclass(frozen=True)
class Person:
    """Someone the notes list as absent or present; `id` when the directory knows them."""

    text: str  # as written, without the reason
    id: str | None
    reason: str  # "ติดราชการต่างประเทศ", or ""


@dataclass(frozen=True)
class Action:
    """A task the meeting gave a group: what, and by when (`due_text` as written)."""

    group_text: str
    group_id: str | None
    what: str
    due: date | None
    due_text: str


@dataclass(frozen=True)
class Order:
    """An order (คำสั่ง) or announcement (ประกาศ) the meeting asked the office to issue."""

    kind: str  # "order" | "announcement"
    title: str
    groups: tuple[str, ...]  # the ids of the groups that resolved
    group_texts: tuple[str, ...]  # every group as written
    body: str


@dataclass(frozen=True)
class NoteItem:
    """One agenda item as the clerk noted it."""

    number: str  # Arabic digits, "5.1.1", no trailing dot
    title: str
    discussion: str
    resolution: str
    actions: tuple[Action, ...]
    orders: tuple[Order, ...]
    rule: str = ""  # the heading rule that started it, e.g. "notes:heading:วาระที่"


@dataclass(frozen=True)
class Notes:
    """The whole notes: the meeting's fields, its items, and what could not be understood."""

    began: str  # "09.00", or ""
    ended: str
    recorder: str
    absent: tuple[Person, ...]
    present: tuple[Person, ...]
    guests: tuple[str, ...]
    items: tuple[NoteItem, ...]
    problems: tuple[str, ...]  # one line each, Thai / English


@dataclass(frozen=True)
class When:
    """A date read from text, the rule that read it and the words it read."""

    day: date
    rule: str
    said: str


@dataclass(frozen=True)
class DateRules:
    """The `dates:` section of rules/notes.yaml."""

    absolute: tuple[Phrase, ...]
    month_end: tuple[Phrase, ...]
    relative: tuple[Phrase, ...]
    units: dict[str, int | str]
    english_months: tuple[str, ...]
    buddhist_era_from: int


@dataclass(frozen=True)
class NoteRules:
    """rules/notes.yaml, compiled."""

    headings: tuple[Phrase, ...]
    markers: dict[str, tuple[Phrase, ...]]
    bullet: re.Pattern[str]
    ignore: tuple[re.Pattern[str], ...]
    preamble: tuple[re.Pattern[str], ...]
    time: re.Pattern[str]
    columns: re.Pattern[str]
    groups: re.Pattern[str]
    people: re.Pattern[str]  # with one capturing group, so a split keeps the separators
    no_due: re.Pattern[str]
    titles: re.Pattern[str]  # titles at the start of a name
    reasons: tuple[re.Pattern[str], ...]
    group_prefix: re.Pattern[str]
    group_substring_min: int
    dates: DateRules


# --- reading ------------------------------------------------------------------------


def read_notes(text: str, directory: Directory, meeting_day: date, rules: Path) -> Notes:
    """The notes in `text`; relative due dates ("ภายใน 30 วัน") count from `meeting_day`."""
    return _Reader(note_rules(rules), directory, meeting_day, rules).read(text)


@dataclass
class _OrderDraft:
    kind: str
    title: str
    groups: list[str]
    group_texts: list[str]
    indent: int
    body: list[str] = field(default_factory=list)


@dataclass
class _ItemDraft:
    number: str
    title: str
    rule: str
    discussion: list[str] = field(default_factory=list)
    resolution: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    orders: list[_OrderDraft] = field(default_factory=list)


class _Reader:
    """One pass over the lines; what a plain line means depends on the marker above it."""

    def __init__(self, book: NoteRules, directory: Directory, meeting_day: date, rules: Path) -> None:
        self.book, self.directory, self.meeting_day, self.rules = book, directory, meeting_day, rules
        self.fields = {"began": "", "ended": "", "recorder": ""}
        self.lists: dict[str, list[Any]] = {kind: [] for kind in LISTS}
        self.items: list[_ItemDraft] = []
        self.problems: list[str] = []
        self.mode: str | None = None  # what plain lines continue: "resolution", "recorder" or a list
        self.mode_filled = False  # a blank line ends a continuation only once it holds something
        self.order: _OrderDraft | None = None  # while its indented body is read
        self.closed = False  # "เลิกประชุม" below an item: what follows is signatures
        self.people = [(entry, _name_pattern(entry.name, book)) for entry in directory.of_kind("person")]

    def read(self, text: str) -> Notes:
        lines = text.translate(TYPED_CHARACTERS).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if not any(line.strip() for line in lines):
            self.problems.append("ไม่มีข้อความบันทึกการประชุม / the notes are empty")
        for line in lines:
            self._line(line.expandtabs(4).rstrip())
        if not self.items and any(line.strip() for line in lines):
            self.problems.append("ไม่พบหัวข้อวาระ เช่น 'วาระที่ 1 …' / no item headings found, e.g. 'วาระที่ 1 …' or 'Item 1'")
        seen: set[str] = set()
        for item in self.items:
            if item.number in seen:
                self.problems.append(f"วาระที่ {item.number} ซ้ำ / item {item.number} appears twice")
            seen.add(item.number)
        return Notes(
            began=self.fields["began"], ended=self.fields["ended"], recorder=self.fields["recorder"],
            absent=tuple(self.lists["absent"]), present=tuple(self.lists["present"]), guests=tuple(self.lists["guests"]),
            items=tuple(_item(draft) for draft in self.items), problems=tuple(self.problems),
        )

    @property
    def item(self) -> _ItemDraft | None:
        return self.items[-1] if self.items else None

    def _line(self, line: str) -> None:
        if self.order is not None:
            indent = len(line) - len(line.lstrip())
            if not line or indent > self.order.indent:
                self.order.body.append(line)
                return
            self.order = None
        stripped = line.strip()
        if not stripped:
            if self.mode_filled:
                self.mode = None
            if self.item and not self.closed:
                self.item.discussion.append("")
            return
        if any(pattern.search(stripped) for pattern in self.book.ignore):
            return
        bare = self.book.bullet.sub("", stripped, count=1)
        if self._heading(stripped) or (bare != stripped and self._heading(bare)):
            return
        if self._marker(bare, len(line) - len(line.lstrip())):
            return
        self._plain(line, stripped, bare)

    def _heading(self, line: str) -> bool:
        for phrase in self.book.headings:
            found = phrase.pattern.match(line)
            if found:
                number = re.sub(r"\s+", "", _arabic(found.group("number"))).rstrip(".")
                self.items.append(_ItemDraft(number, found.group("title").strip(), f"notes:heading:{phrase.name}"))
                self.mode, self.closed = None, False
                return True
        return False

    def _marker(self, line: str, indent: int) -> bool:
        handlers = {
            "resolution": self._resolution, "action": self._action, "order": self._order, "announcement": self._order,
            "began": self._time, "ended": self._time, "recorder": self._recorder,
            "absent": self._people, "present": self._people, "guests": self._people,
        }
        for kind in MARKERS:
            for phrase in self.book.markers[kind]:
                found = phrase.pattern.match(line)
                if found:
                    self.mode = None
                    handlers[kind](kind, found.group("value").strip(), indent)
                    return True
        return False

    def _plain(self, line: str, stripped: str, bare: str) -> None:
        if self.mode == "resolution" and self.item:
            self.item.resolution.append(stripped)
            self.mode_filled = True
        elif self.mode == "recorder":
            self.fields["recorder"], self.mode = bare, None
        elif self.mode in LISTS:
            self._add_people(self.mode, bare)
        elif self.closed:
            return
        elif self.item:
            self.item.discussion.append(line)
        elif not any(pattern.search(bare) for pattern in self.book.preamble):
            self.problems.append(
                f"ข้อความก่อนวาระแรกที่ไม่ใช่หัวข้อที่รู้จัก: {_short(stripped)!r} / "
                f"text before the first item that is no known field: {_short(stripped)!r}"
            )

    def _continue(self, mode: str, filled: bool) -> None:
        self.mode, self.mode_filled = mode, filled

    # --- the markers ---------------------------------------------------------------

    def _resolution(self, kind: str, value: str, indent: int) -> None:
        if self.item is None:
            self.problems.append(f"มติก่อนวาระแรก: {_short(value)!r} / a resolution before the first item: {_short(value)!r}")
            return
        if value:
            self.item.resolution.append(value)
        self._continue("resolution", bool(value))

    def _action(self, kind: str, value: str, indent: int) -> None:
        if self.item is None:
            self.problems.append(f"การมอบหมายก่อนวาระแรก: {_short(value)!r} / an action before the first item: {_short(value)!r}")
            return
        where_th, where_en = self._where()
        parts = [part.strip() for part in self.book.columns.split(value)]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            self.problems.append(
                f"{where_th}: การมอบหมายต้องเขียนเป็น 'กลุ่ม | งาน | กำหนดเสร็จ': {_short(value)!r} / "
                f"{where_en}: an action needs 'group | what | due': {_short(value)!r}"
            )
            return
        if resolve_group(parts[1], self.directory, self.book, loose=False)[0] and not resolve_group(parts[0], self.directory, self.book)[0]:
            parts[0], parts[1] = parts[1], parts[0]  # "what | group | due": only the second column is a group's name
        what = " | ".join(parts[1:-1]) if len(parts) > 2 else parts[1]
        due_text = parts[-1] if len(parts) > 2 else ""
        if self.book.no_due.fullmatch(due_text):
            due_text = ""
        when = read_date(due_text, self.meeting_day, self.rules) if due_text else None
        if due_text and when is None:
            self.problems.append(
                f"{where_th}: อ่านกำหนดเสร็จไม่ออก {due_text!r} / {where_en}: cannot read the due date {due_text!r}"
            )
        for group_text in self._group_texts(parts[0]):
            group_id = self._resolve_group(group_text, where_th, where_en, "การมอบหมาย", "an action")
            self.item.actions.append(Action(group_text, group_id, what, when.day if when else None, due_text))

    def _order(self, kind: str, value: str, indent: int) -> None:
        where_th, where_en = self._where()
        parts = self.book.columns.split(value, maxsplit=1)
        title, groups = parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")
        label_th, label_en = ("คำสั่ง", "an order") if kind == "order" else ("ประกาศ", "an announcement")
        if not title:
            self.problems.append(f"{where_th}: {label_th}ไม่มีชื่อเรื่อง / {where_en}: {label_en} without a title")
        texts = self._group_texts(groups) if groups else []
        ids = [self._resolve_group(text, where_th, where_en, label_th, label_en) for text in texts]
        draft = _OrderDraft(kind, title, [i for i in ids if i], texts, indent)
        if self.item is None:
            self.problems.append(f"{label_th}ก่อนวาระแรก: {_short(value)!r} / {label_en} before the first item: {_short(value)!r}")
        else:
            self.item.orders.append(draft)
        self.order = draft

    def _time(self, kind: str, value: str, indent: int) -> None:
        found = self.book.time.search(_arabic(value))
        label = "เวลาเริ่มประชุม" if kind == "began" else "เวลาเลิกประชุม"
        if found is None and not re.search(r"\d", value):
            self.problems.append(f"ไม่ได้กรอก{label} / the time the meeting {kind} is not filled in")
            return
        if found is None:
            self.problems.append(f"อ่าน{label}ไม่ออก: {value!r} / cannot read the time the meeting {kind}: {value!r}")
            return
        self.fields[kind] = f"{int(found.group('hour')):02d}.{found.group('minute')}"
        if kind == "ended" and self.items:
            self.closed = True

    def _recorder(self, kind: str, value: str, indent: int) -> None:
        if value:
            self.fields["recorder"] = value
        else:
            self._continue("recorder", False)

    def _people(self, kind: str, value: str, indent: int) -> None:
        if value:
            self._add_people(kind, value)
        self._continue(kind, bool(value))

    # --- people and groups -----------------------------------------------------------

    def _add_people(self, kind: str, text: str) -> None:
        self.mode_filled = True
        for piece in self._split_people(text):
            if kind == "guests":
                self.lists[kind].append(piece)
                continue
            name, reason = piece, ""
            for pattern in self.book.reasons:
                found = pattern.search(piece)
                if found and found.start() > 0:
                    name, reason = piece[: found.start()].strip(), found.group("reason").strip()
                    break
            self.lists[kind].append(Person(name, self._person_id(name), reason))

    def _split_people(self, text: str) -> list[str]:
        """Pieces at each separator, unless the next piece is no name (a reason's comma, a position)."""
        parts = self.book.people.split(text)
        pieces = [parts[0]]
        for separator, piece in zip(parts[1::2], parts[2::2]):
            if self.book.titles.match(piece.strip()).end() or self._person_id(piece.strip()):
                pieces.append(piece)
            else:
                pieces[-1] += separator + piece
        return [piece.strip() for piece in pieces if piece.strip()]

    def _person_id(self, text: str) -> str | None:
        """A person by id, or by name with titles and spaces folded; the longest name wins, a tie is nobody."""
        entry = self.directory.get(text.strip())
        if entry is not None and entry.kind == "person":
            return entry.id
        found = [(len(entry.name), entry.id) for entry, pattern in self.people if pattern and pattern.match(text)]
        found.sort(reverse=True)
        if not found or (len(found) > 1 and found[0][0] == found[1][0]):
            return None
        return found[0][1]

    def _group_texts(self, text: str) -> list[str]:
        return [part.strip() for part in self.book.groups.split(text) if part.strip()]

    def _resolve_group(self, text: str, where_th: str, where_en: str, label_th: str, label_en: str) -> str | None:
        group, others = resolve_group(text, self.directory, self.book)
        if group is None:
            if others:
                names = ", ".join(other.name for other in others)
                self.problems.append(
                    f"{where_th}: '{text}' ใน{label_th}ตรงกับหลายกลุ่ม ({names}) / {where_en}: '{text}' in {label_en} matches several groups ({names})"
                )
            else:
                self.problems.append(f"{where_th}: ไม่รู้จักกลุ่ม '{text}' ใน{label_th} / {where_en}: unknown group '{text}' in {label_en}")
            return None
        return group.id

    def _where(self) -> tuple[str, str]:
        if self.item is None:
            return "ก่อนวาระแรก", "before the first item"
        return f"วาระที่ {self.item.number}", f"item {self.item.number}"


def resolve_group(text: str, directory: Directory, book: NoteRules, loose: bool = True) -> tuple[Entry | None, list[Entry]]:
    """A group by id, exact name, name without "กลุ่ม", or (`loose`) a unique part of one name; else None and the candidates."""
    entry = directory.get(text.strip())
    if entry is not None and entry.kind == "group":
        return entry, []
    groups = directory.of_kind("group")
    folded = _fold(text)
    bare = _fold(book.group_prefix.sub("", text.strip(), count=1))
    tries = (
        [g for g in groups if _fold(g.name) == folded],
        [g for g in groups if _fold(book.group_prefix.sub("", g.name, count=1)) == bare],
        [g for g in groups if len(bare) >= book.group_substring_min and bare in _fold(g.name)],
        [g for g in groups if _fold(book.group_prefix.sub("", g.name, count=1)) in folded],
    )
    for candidates in tries if loose else tries[:2]:
        if len(candidates) == 1:
            return candidates[0], []
        if candidates:
            return None, candidates
    return None, []


def _item(draft: _ItemDraft) -> NoteItem:
    orders = tuple(
        Order(o.kind, o.title, tuple(o.groups), tuple(o.group_texts), _block(o.body)) for o in draft.orders
    )
    return NoteItem(
        number=draft.number, title=draft.title, discussion=_block(draft.discussion),
        resolution="\n".join(draft.resolution).strip(), actions=tuple(draft.actions), orders=orders, rule=draft.rule,
    )


def _block(lines: list[str]) -> str:
    """Lines as a text: common indentation removed, no blank lines at the ends, never two blank lines in a row."""
    text = textwrap.dedent("\n".join(lines)).strip("\n")
    return re.sub(r"\n\s*\n(?:\s*\n)+", "\n\n", text)


def _name_pattern(name: str, book: NoteRules) -> re.Pattern[str] | None:
    """A directory name as a pattern: any titles, then its words with any spacing, then the end of a word."""
    words = book.titles.sub("", name.strip()).split()
    if not words:
        return None
    body = r"\s*".join(re.escape(word) for word in words)
    return re.compile(rf"{book.titles.pattern}{body}(?=\s|$|[,;(])", re.IGNORECASE)


def _fold(text: str) -> str:
    return re.sub(r"\s+", "", text).casefold()


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _arabic(text: str) -> str:
    return thai_digit_to_arabic_digit(text)


# --- dates --------------------------------------------------------------------------


def read_date(text: str, reference: date, rules: Path) -> When | None:
    """The first date `text` gives, by the `dates:` rules of rules/notes.yaml.

    Relative dates ("ภายใน 30 วัน") count from `reference`; a date without a
    year is the next such day on or after it. Buddhist Era years become Common
    Era ones (pythainlp), so 15 ม.ค. 2570 is 2027-01-15.
    """
    book = note_rules(rules).dates
    plain = _arabic(text)
    found: list[tuple[int, int, When]] = []
    for order, (kind, phrases) in enumerate((("absolute", book.absolute), ("month_end", book.month_end), ("relative", book.relative))):
        for phrase in phrases:
            for match in phrase.pattern.finditer(plain):
                day = _date_from(kind, match, reference, book)
                if day is not None:
                    found.append((match.start(), order, When(day, f"notes:date:{phrase.name}", " ".join(match.group(0).split()))))
                    break
    return min(found, key=lambda hit: hit[:2])[2] if found else None


def _date_from(kind: str, match: re.Match[str], reference: date, book: DateRules) -> date | None:
    groups = match.groupdict()
    if kind == "relative":
        unit = book.units.get(groups["unit"].lower())
        count = int(groups["count"])
        if unit is None:
            return None
        return _add_months(reference, count) if unit == "month" else reference + timedelta(days=count * int(unit))
    month = _month(groups["month"], book)
    if month is None:
        return None
    year_text = groups.get("year")
    if kind == "month_end":
        first = _dated(1, month, year_text, book) if year_text else date(reference.year + (month < reference.month), month, 1)
        return None if first is None else first.replace(day=calendar.monthrange(first.year, month)[1])
    day = int(groups["day"])
    return _dated(day, month, year_text, book) if year_text else _next(day, month, reference)


def _dated(day: int, month: int, year_text: str, book: DateRules) -> date | None:
    """A day of a year as written: Buddhist Era when two digits or from `buddhist_era_from`, else Common Era (pythainlp converts)."""
    era = "be" if len(year_text) <= 2 or int(year_text) >= book.buddhist_era_from else "ad"
    try:
        return thai_strptime(f"{day} {thai_full_months[month - 1]} {year_text}", "%d %B %Y", year=era).date()
    except (ValueError, IndexError):
        return None


def _next(day: int, month: int, reference: date) -> date | None:
    """The next such day on or after `reference` (a date without a year)."""
    for year in range(reference.year, reference.year + 9):  # a 29 February may be years away
        try:
            found = date(year, month, day)
        except ValueError:
            continue
        if found >= reference:
            return found
    return None


def _month(token: str, book: DateRules) -> int | None:
    """A month from a number, an English name (three letters at least) or a Thai name or abbreviation (pythainlp's)."""
    word = token.strip().lower()
    if word.isdigit():
        return int(word) if 1 <= int(word) <= 12 else None
    bare = word.replace(".", "").replace(" ", "")
    if re.fullmatch(r"[a-z]+", bare):
        return next((n for n, name in enumerate(book.english_months, start=1) if len(bare) >= 3 and name.startswith(bare)), None)
    for number, name, exact in _thai_months():
        if bare == name or (not exact and bare.startswith(name)):
            return number
    return None


@lru_cache(maxsize=1)
def _thai_months() -> tuple[tuple[int, str, bool], ...]:
    """pythainlp's month names, dots removed, longest first; an abbreviation must be the whole word."""
    names = [
        (number, name.replace(".", ""), "." in name)
        for number, forms in enumerate(thai_full_month_lists, start=1)
        for name in forms
        if not name.isdigit()
    ]
    return tuple(sorted(names, key=lambda entry: len(entry[1]), reverse=True))


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- attachments --------------------------------------------------------------------


def notes_text(filename: str, content_type: str, data: bytes) -> str | None:
    """The text of an attachment that can hold notes (.txt/.md, .docx, .pdf); None for anything else or a broken file.

    The name's suffix decides, else the content type (clients send .docx as
    application/octet-stream, and text without a name).
    """
    suffix = Path(filename or "").suffix.lower()
    kind = BY_SUFFIX.get(suffix) if suffix else BY_TYPE.get((content_type or "").split(";")[0].strip().lower())
    readers = {"text": _decoded, "docx": _docx_text, "pdf": _pdf_text}
    if kind is None:
        return None
    try:
        return readers[kind](data)
    except Exception:  # noqa: BLE001 - python-docx and pypdf raise many kinds on a broken file: the clerk looks
        return None


def _decoded(data: bytes) -> str:
    """UTF-8 (with or without a BOM), UTF-16 with a BOM (Notepad's "Unicode"), else Thai Windows (cp874 ⊃ TIS-620)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp874")
    except UnicodeDecodeError:
        return data.decode("tis-620", errors="replace")


def _docx_text(data: bytes) -> str:
    """Paragraphs and table cells in document order; a directly indented paragraph keeps its indent as spaces."""
    from docx import Document
    from docx.table import Table

    lines: list[str] = []

    def walk(container: Any) -> None:
        for block in container.iter_inner_content():
            if isinstance(block, Table):
                for row in block.rows:
                    seen: set[int] = set()
                    for cell in row.cells:  # a merged cell comes once per grid column it spans
                        if id(cell._tc) not in seen:
                            seen.add(id(cell._tc))
                            walk(cell)
            else:
                indent = block.paragraph_format.left_indent
                spaces = max(1, round(indent.cm * 2)) if indent and indent > 0 else 0
                lines.append(" " * spaces + block.text if block.text.strip() else block.text)

    walk(Document(io.BytesIO(data)))
    return "\n".join(lines)


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


# --- rules files ----------------------------------------------------------------------


@lru_cache(maxsize=None)
def note_rules(rules: Path) -> NoteRules:
    """rules/notes.yaml, read and checked once."""
    path = rules / RULE_FILE
    data = read_rule_file(path)
    known = {"headings", "markers", "bullet", "ignore", "preamble", "time", "separators", "no_due", "titles", "reason",
             "group_prefixes", "group_substring_min", "dates"}
    unknown = set(data) - known
    if unknown:
        raise RuleError(f"{path}: unknown sections {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    headings = _phrases(path, data, "headings")
    need_groups(path, "headings", headings, ("number", "title"))
    markers_data = _section(path, data, "markers")
    markers = {kind: _phrases(path, markers_data, kind) for kind in MARKERS}
    for kind, phrases in markers.items():
        if not phrases:
            raise RuleError(f"{path}: markers.{kind}: needs at least one pattern")
        need_groups(path, f"markers.{kind}", phrases, ("value",))
    separators = _section(path, data, "separators")
    titles = _list(path, data, "titles")
    title_pattern = "|".join(sorted(titles, key=len, reverse=True))
    time = compile_rule(path, "time", data.get("time"))
    if not {"hour", "minute"} <= set(time.groupindex):
        raise RuleError(f"{path}: time: needs (?P<hour>…) and (?P<minute>…) groups")
    reasons = tuple(compile_rule(path, f"reason[{n}]", p) for n, p in enumerate(_list(path, data, "reason")))
    if any("reason" not in pattern.groupindex for pattern in reasons):
        raise RuleError(f"{path}: reason: each pattern needs a (?P<reason>…) group")
    prefixes = "|".join(sorted(_list(path, data, "group_prefixes"), key=len, reverse=True))
    return NoteRules(
        headings=headings,
        markers=markers,
        bullet=compile_rule(path, "bullet", data.get("bullet")),
        ignore=tuple(compile_rule(path, f"ignore[{n}]", p) for n, p in enumerate(_list(path, data, "ignore"))),
        preamble=tuple(compile_rule(path, f"preamble[{n}]", p) for n, p in enumerate(_list(path, data, "preamble"))),
        time=time,
        columns=compile_rule(path, "separators.columns", separators.get("columns")),
        groups=compile_rule(path, "separators.groups", separators.get("groups")),
        people=compile_rule(path, "separators.people", f"({_uncaptured(path, 'separators.people', separators.get('people'))})"),
        no_due=compile_rule(path, "no_due", data.get("no_due")),
        titles=compile_rule(path, "titles", f"^\\s*(?:(?:{title_pattern})\\s*)*"),
        reasons=reasons,
        group_prefix=compile_rule(path, "group_prefixes", f"^(?:{prefixes})\\s*"),
        group_substring_min=int(data.get("group_substring_min") or 1),
        dates=_date_rules(path, _section(path, data, "dates")),
    )


def _date_rules(path: Path, data: dict[str, Any]) -> DateRules:
    absolute = _phrases(path, data, "absolute")
    month_end = _phrases(path, data, "month_end")
    relative = _phrases(path, data, "relative")
    need_groups(path, "dates.absolute", absolute, ("day", "month", "year"))
    need_groups(path, "dates.month_end", month_end, ("month", "year"))
    need_groups(path, "dates.relative", relative, ("count", "unit"))
    units = data.get("units")
    if not isinstance(units, dict) or not all(value == "month" or isinstance(value, int) for value in units.values()):
        raise RuleError(f"{path}: dates.units: maps each unit word to a number of days or `month`")
    months = data.get("english_months")
    if not isinstance(months, list) or len(months) != 12:
        raise RuleError(f"{path}: dates.english_months: the twelve month names, January first")
    return DateRules(
        absolute=absolute, month_end=month_end, relative=relative,
        units={str(word).lower(): value for word, value in units.items()},
        english_months=tuple(str(name).lower() for name in months),
        buddhist_era_from=int(data.get("buddhist_era_from") or 2400),
    )


def _section(path: Path, data: dict[str, Any], name: str) -> dict[str, Any]:
    section = data.get(name)
    if not isinstance(section, dict):
        raise RuleError(f"{path}: {name}: must be a mapping")
    return section


def _list(path: Path, data: dict[str, Any], name: str) -> list[str]:
    values = data.get(name) or []
    if not isinstance(values, list) or not all(isinstance(value, str) and value for value in values):
        raise RuleError(f"{path}: {name}: must be a list of patterns")
    return values


def _uncaptured(path: Path, where: str, pattern: Any) -> str:
    if compile_rule(path, where, pattern).groups:
        raise RuleError(f"{path}: {where}: use (?:…) groups, not capturing ones")
    return pattern

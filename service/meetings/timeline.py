"""A meeting's timeline: which steps fall on which working day, and which are due.

The steps and their offsets are data (`rules/timeline.yaml`), per kind of
meeting. The timeline holds no state: whether a step is done is recorded in
the meeting, so asking "what is due now?" after a crash, a restart or a
missed tick gives the same answer, and nothing runs twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import holidays

from ..rulefiles import RuleError, read_rule_file


class TimelineError(RuleError):
    """rules/timeline.yaml is wrong, or names no such kind; the message says which."""


@dataclass(frozen=True)
class Step:
    name: str
    offset: int
    title: str
    action: str


@dataclass(frozen=True)
class Kind:
    """A kind of meeting: its steps and its approval chains."""

    name: str
    code: str
    title: str
    steps: tuple[Step, ...]
    approvers: tuple[str, ...]
    chains: dict[str, tuple[str, ...]]
    objection_days: int

    def chain_for(self, paper: str) -> tuple[str, ...]:
        """The approvers of a paper (`order_2` goes up the chain of `order`); the agenda's chain by default."""
        return self.chains.get(paper) or self.chains.get(paper.split("_")[0]) or self.approvers


class WorkingDays:
    """Monday to Friday, less Thai public holidays and the office's own closed days."""

    def __init__(self, country: str = "TH", categories: tuple[str, ...] = ("public",), closed: frozenset[date] = frozenset()) -> None:
        self._holidays = holidays.country_holidays(country, categories=categories, language="th")
        self.closed = closed

    def is_working(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._holidays and day not in self.closed

    def why_closed(self, day: date) -> str:
        if day in self.closed:
            return "วันหยุดของสำนักงาน"
        return self._holidays.get(day) or ("วันหยุดสุดสัปดาห์" if day.weekday() >= 5 else "")

    def on_or_before(self, day: date) -> date:
        """The day itself if it is a working day, else the working day before it."""
        while not self.is_working(day):
            day -= timedelta(days=1)
        return day


@dataclass(frozen=True)
class Timeline:
    kinds: dict[str, Kind]
    working_days: WorkingDays

    def kind(self, name: str) -> Kind:
        try:
            return self.kinds[name]
        except KeyError:
            raise TimelineError(f"no meeting kind {name!r} in rules/timeline.yaml (known: {', '.join(self.kinds)})") from None

    def day_of(self, meeting_day: date, offset: int) -> date:
        """The working day a step at `offset` falls on; the meeting day itself never moves."""
        day = meeting_day + timedelta(days=offset)
        return day if offset == 0 else self.working_days.on_or_before(day)

    def schedule(self, kind: str, meeting_day: date) -> list[tuple[Step, date]]:
        return [(step, self.day_of(meeting_day, step.offset)) for step in self.kind(kind).steps]

    def due(self, kind: str, meeting_day: date, today: date, done: set[str]) -> list[Step]:
        """Steps whose day has come and that are not done yet, in timeline order."""
        return [step for step, day in self.schedule(kind, meeting_day) if day <= today and step.name not in done]


@lru_cache(maxsize=4)
def load_timeline(path: Path) -> Timeline:
    """Read and check rules/timeline.yaml once."""
    data = read_rule_file(path)
    days = data.get("working_days", {})
    try:
        closed = frozenset(date.fromisoformat(str(d)) for d in days.get("closed", []))
    except ValueError as error:
        raise TimelineError(f"{path}: working_days.closed: {error}") from error
    working_days = WorkingDays(days.get("country", "TH"), tuple(days.get("categories", ["public"])), closed)
    kinds = {name: _kind(path, name, entry) for name, entry in (data.get("kinds") or {}).items()}
    if not kinds:
        raise TimelineError(f"{path}: no meeting kinds under `kinds:`")
    return Timeline(kinds, working_days)


def _kind(path: Path, name: str, entry: dict) -> Kind:
    steps = []
    for number, step in enumerate(entry.get("steps") or [], start=1):
        if not isinstance(step, dict) or not step.get("name") or not isinstance(step.get("offset"), int):
            raise TimelineError(f"{path}: kind {name}, step {number}: needs a name and a whole-number offset")
        steps.append(Step(step["name"], step["offset"], step.get("title", step["name"]), step.get("do", step["name"])))
    names = [step.name for step in steps]
    if len(set(names)) != len(names):
        raise TimelineError(f"{path}: kind {name}: a step name is used twice")
    return Kind(
        name=name,
        code=entry.get("code", name[:2]),
        title=entry.get("title", name),
        steps=tuple(sorted(steps, key=lambda s: s.offset)),
        approvers=tuple(entry.get("approvers") or ()),
        chains={paper: tuple(people) for paper, people in (entry.get("chains") or {}).items()},
        objection_days=int(entry.get("objection_days", 7)),
    )

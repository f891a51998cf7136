"""What a meeting costs: snacks, lunch and meeting allowances, from `rules/costs.yaml`.

The Ministry of Finance's per-head limits change over time, so the rates are dated
data, not code: a meeting is costed with the rates in force on its day. What each
kind of meeting pays for (a meal over lunch, เบี้ยประชุม only for committees set up by
law) is data too. `summarise_costs` gives plain data (numbers and Thai words) that
the catering and allowance documents print as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from pythainlp.util import bahttext

from ..rulefiles import RuleError, read_rule_file

ROLES = {"chair": "ประธาน", "member": "กรรมการ", "secretary": "เลขานุการ"}
# Who will be in the room; "tentative" only when the caller chooses to count them.
ATTENDING = ("accepted", "delegated")


@dataclass(frozen=True)
class Rate:
    valid_from: date
    source: str
    verify: bool
    snack: Decimal
    meal: Decimal


@dataclass(frozen=True)
class Allowance:
    source: str
    verify: bool
    per_role: dict[str, Decimal]  # chair, member, secretary


@dataclass(frozen=True)
class KindCosts:
    snacks_per_half_day: int
    meal_over_lunch: bool
    travel: bool
    allowance: Allowance | None


@dataclass(frozen=True)
class CostRules:
    rates: tuple[Rate, ...]  # oldest first
    lunch: tuple[time, time]
    kinds: dict[str, KindCosts]


@lru_cache(maxsize=4)
def load_costs(path: Path) -> CostRules:
    """costs.yaml, checked: a wrong entry is a RuleError naming it, not a wrong sum later."""
    data = read_rule_file(path)
    rates = tuple(sorted((_rate(path, n, entry) for n, entry in enumerate(_list(path, data, "rates"))),
                         key=lambda rate: rate.valid_from))
    if not rates:
        raise RuleError(f"{path}: rates: at least one dated rate is needed")
    lunch = data.get("lunch") or {}
    if not isinstance(lunch, dict):
        raise RuleError(f"{path}: lunch: must have `from` and `to` times")
    window = (_time(path, "lunch.from", lunch.get("from")), _time(path, "lunch.to", lunch.get("to")))
    kinds = data.get("kinds")
    if not isinstance(kinds, dict) or not kinds:
        raise RuleError(f"{path}: kinds: must map each kind of meeting to its costs")
    return CostRules(rates, window, {name: _kind(path, name, entry) for name, entry in kinds.items()})


def rate_on(rules: CostRules, day: date) -> Rate:
    """The rate in force on `day`: the one with the latest valid_from not after it."""
    in_force = [rate for rate in rules.rates if rate.valid_from <= day]
    if not in_force:
        raise RuleError(f"costs: no rate is valid on {day.isoformat()} (the earliest is from {rules.rates[0].valid_from})")
    return in_force[-1]


def expected_attendees(people: Sequence[Mapping[str, Any]], count_tentative: bool) -> int:
    """How many to cater for: those who accepted, delegates, and the undecided if counted."""
    statuses = ATTENDING + (("tentative",) if count_tentative else ())
    return sum(1 for person in people if person["status"] in statuses)


def summarise_costs(
    rules: CostRules,
    kind: str,
    start: datetime,
    end: datetime,
    attendees: int,
    entitled: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The costs of one meeting as plain data for the documents.

    `entitled` are the people paid เบี้ยประชุม ({name, position, role}: chair, member or
    secretary) — those who sat in the meeting; ignored for kinds that pay none.
    """
    if kind not in rules.kinds:
        raise RuleError(f"costs: kind {kind!r} has no entry under `kinds`")
    costs = rules.kinds[kind]
    rate = rate_on(rules, start.date())
    lunch_from, lunch_to = rules.lunch
    morning, afternoon = start.time() < lunch_from, end.time() > lunch_to
    spans_lunch = morning and afternoon
    half_days = max(1, morning + afternoon)
    snacks = half_days * costs.snacks_per_half_day
    items = [_item("snack", "ค่าอาหารว่างและเครื่องดื่ม", attendees, snacks, rate.snack)] if snacks else []
    if spans_lunch and costs.meal_over_lunch:
        items.append(_item("meal", "ค่าอาหารกลางวัน", attendees, 1, rate.meal))
    total = sum((item["amount"] for item in items), Decimal(0))
    return {
        "kind": kind,
        "date": start.date(),
        "valid_from": rate.valid_from,
        "source": rate.source,
        "verify": rate.verify,
        "attendees": attendees,
        "half_days": half_days,
        "spans_lunch": spans_lunch,
        "items": items,
        "total": total,
        "total_words": bahttext(float(total)),
        "travel": costs.travel,
        "allowance": _allowance(costs.allowance, entitled) if costs.allowance else None,
    }


def _item(key: str, title: str, people: int, servings: int, rate: Decimal) -> dict[str, Any]:
    count = people * servings
    return {"item": key, "title": title, "people": people, "servings": servings, "count": count,
            "rate": rate, "amount": rate * count}


def _allowance(allowance: Allowance, entitled: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    rows = []
    for person in entitled:
        role = person.get("role", "member")
        if role not in ROLES:
            raise ValueError(f"{person['name']}: role {role!r} is not one of {', '.join(ROLES)}")
        rows.append({"name": person["name"], "position": person["position"], "role": role,
                     "role_title": ROLES[role], "amount": allowance.per_role[role]})
    total = sum((row["amount"] for row in rows), Decimal(0))
    return {"source": allowance.source, "verify": allowance.verify, "rates": allowance.per_role,
            "rows": rows, "total": total, "total_words": bahttext(float(total))}


def _list(path: Path, data: dict, key: str) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        raise RuleError(f"{path}: {key}: must be a list")
    return value


def _rate(path: Path, number: int, entry: Any) -> Rate:
    where = f"rates[{number}]"
    if not isinstance(entry, dict):
        raise RuleError(f"{path}: {where}: must be a mapping")
    valid_from = entry.get("valid_from")
    if not isinstance(valid_from, date):
        raise RuleError(f"{path}: {where}.valid_from: must be a date (YYYY-MM-DD)")
    if not entry.get("source"):
        raise RuleError(f"{path}: {where}.source: say where the rate comes from")
    return Rate(valid_from, str(entry["source"]).strip(), bool(entry.get("verify", False)),
                _amount(path, f"{where}.snack", entry.get("snack")), _amount(path, f"{where}.meal", entry.get("meal")))


def _kind(path: Path, name: str, entry: Any) -> KindCosts:
    where = f"kinds.{name}"
    if not isinstance(entry, dict):
        raise RuleError(f"{path}: {where}: must be a mapping")
    snacks = entry.get("snacks_per_half_day", 1)
    if not isinstance(snacks, int) or snacks < 0:
        raise RuleError(f"{path}: {where}.snacks_per_half_day: must be a whole number, 0 or more")
    allowance = entry.get("allowance")
    if allowance is not None:
        if not isinstance(allowance, dict) or not allowance.get("source"):
            raise RuleError(f"{path}: {where}.allowance: null, or a mapping with source, chair, member and secretary")
        per_role = {role: _amount(path, f"{where}.allowance.{role}", allowance.get(role)) for role in ROLES}
        allowance = Allowance(str(allowance["source"]), bool(allowance.get("verify", False)), per_role)
    return KindCosts(snacks, bool(entry.get("meal_over_lunch", False)), bool(entry.get("travel", False)), allowance)


def _amount(path: Path, where: str, value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal(-1)
    if value is None or isinstance(value, bool) or not amount.is_finite() or amount < 0:
        raise RuleError(f"{path}: {where}: must be an amount in baht, 0 or more")
    return amount


def _time(path: Path, where: str, value: Any) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise RuleError(f"{path}: {where}: must be a time like \"12:00\"") from None

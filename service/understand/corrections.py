"""A school's or agency's reply to the directory's verification: the corrections it asks for.

The verification mail shows the record as the office has it, as a form of
"label: value" lines (also attached as a text file). People answer the way
they write: the form returned with a line changed, a sentence ("เบอร์โทรใหม่
02-123-4567", "ผู้อำนวยการคนใหม่ชื่อนายสมหมาย ดีมาก", "our new phone is …"),
or a word that all is right ("ข้อมูลถูกต้อง"). This reads every value the
reply gives; what differs from the record is for the use to decide.

Labels and phrases are data (the `corrections:` section of rules/directory.yaml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pythainlp.util import thai_digit_to_arabic_digit

from ..rulefiles import RuleError, read_rule_file
from .replies import Phrase, _find, _phrases, need_groups
from .quotes import compile_rule

RULE_FILE = "directory.yaml"
SECTION = "corrections"
FIELDS = ("name", "administrator", "emails", "phone", "address", "position")


@dataclass(frozen=True)
class Corrections:
    """The values a reply gives, by field, the rules that read them, and whether it confirms the record."""

    values: dict[str, str]
    confirmed: bool
    rules: tuple[str, ...]


@dataclass(frozen=True)
class CorrectionRules:
    form: dict[str, re.Pattern[str]]
    phrases: dict[str, tuple[Phrase, ...]]
    confirmed: tuple[Phrase, ...]


def read_corrections(text: str, rules: Path) -> Corrections:
    """Every field value the text gives (form lines first, then sentences), and whether it says the record is right."""
    book = correction_rules(rules)
    values: dict[str, str] = {}
    used: list[str] = []
    for line in text.splitlines():
        for name, pattern in book.form.items():
            match = pattern.match(line)
            if match and match.group("value").strip(" -–—\t") and name not in values:
                values[name] = _clean(name, match.group("value"))
                used.append(f"corrections:form:{name}")
                break
    for name, phrases in book.phrases.items():
        hits = _find(text, phrases, (), f"corrections:{name}")
        if hits and name not in values:
            values[name] = _clean(name, hits[0].match.group("value"))
            used.append(hits[0].rule)
    confirmed = _find(text, book.confirmed, (), "corrections:confirmed")
    return Corrections(values=values, confirmed=bool(confirmed) and not values, rules=tuple(used or [h.rule for h in confirmed]))


def _clean(name: str, value: str) -> str:
    said = " ".join(value.split()).strip(" .;")
    return thai_digit_to_arabic_digit(said) if name == "phone" else said


@lru_cache(maxsize=None)
def correction_rules(rules: Path) -> CorrectionRules:
    """The `corrections:` section of rules/directory.yaml, read and checked once."""
    path = rules / RULE_FILE
    data = read_rule_file(path).get(SECTION)
    if not isinstance(data, dict) or not isinstance(data.get("form"), dict):
        raise RuleError(f"{path}: {SECTION}: must be a mapping with form, confirmed and a list of phrases per field")
    unknown = set(data) - {"form", "confirmed", *FIELDS} | (set(data["form"]) - set(FIELDS))
    if unknown:
        raise RuleError(f"{path}: {SECTION}: unknown keys {', '.join(sorted(unknown))} (fields: {', '.join(FIELDS)})")
    form = {}
    for name, labels in data["form"].items():
        choices = "|".join(re.escape(str(label)) for label in labels)
        form[name] = compile_rule(path, f"{SECTION}.form.{name}", rf"^\s*[-*•]?\s*(?:{choices})\s*[:：]\s*(?P<value>.*?)\s*$")
    phrases = {name: _phrases(path, data, name) for name in FIELDS if name in data}
    for name, found in phrases.items():
        need_groups(path, f"{SECTION}.{name}", found, ("value",))
    return CorrectionRules(form=form, phrases=phrases, confirmed=_phrases(path, data, "confirmed"))


def form_labels(rules: Path) -> dict[str, str]:
    """Each field's first label, which the form the office sends uses."""
    form = read_rule_file(rules / RULE_FILE)[SECTION]["form"]
    return {name: str(labels[0]) for name, labels in form.items()}

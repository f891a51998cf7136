"""The lines for the clerk (the digest's "ข้อความที่เจ้าหน้าที่ต้องอ่าน", `secretary status`) are worded by the templates.

Every note the service writes names a macro of `email/<language>/notes.j2`;
these tests read the service's source for every `.note("name", …)` call, so
a note added in code without its wording in both languages fails here, not
in an office's digest.
"""

from __future__ import annotations

import ast
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from helpers import ENV, message, write_config
from service.cli import main
from service.config import PROJECT_ROOT, load
from service.daemon import Daemon, build, make_sender, make_source
from service.documents.environment import environment, note
from service.mail.maildir import deliver

TEMPLATES = PROJECT_ROOT / "templates"
THAI = re.compile(r"[\u0e00-\u0e7f]")
ENGLISH_WORDS = re.compile(r"\b[A-Za-z]{2,}(?: [A-Za-z]{2,}){2,}\b")  # three English words in a row
SAMPLES = {"permanent": True, "bad_address": True, "due": date(2027, 1, 8), "new_due": date(2027, 2, 1),
           "start": datetime(2027, 1, 6, 13, 30, tzinfo=ZoneInfo("Asia/Bangkok")), "about": "invitation",
           "status": "in_progress", "paper": "minutes"}
KEPT_IN_ENGLISH = ("secretary directory review",)  # a command to type, the same in both languages


def calls() -> list[tuple[str, str, frozenset[str]]]:
    """(where, note name, the keywords given) for every `.note("…", …)` in the service's code."""
    found = []
    for path in sorted((PROJECT_ROOT / "service").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "note"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.append((f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}", node.args[0].value,
                              frozenset(k.arg for k in node.keywords)))
    return found


def macros(language: str) -> dict:
    module = environment(TEMPLATES).get_template(f"email/{language}/notes.j2").module
    return {name: value for name, value in vars(module).items() if hasattr(value, "arguments")}


def test_the_service_writes_notes_and_both_languages_word_the_same_ones():
    assert len({name for _, name, _ in calls()}) >= 30, "the notes are found in the code"
    thai, english = macros("th"), macros("en")
    assert {n: m.arguments for n, m in thai.items()} == {n: m.arguments for n, m in english.items()}


@pytest.mark.parametrize("where, name, given", calls(), ids=lambda value: value if isinstance(value, str) and ":" in value else "")
def test_every_note_the_code_writes_is_worded_in_thai_and_english(where, name, given):
    for language in ("th", "en"):
        macro = macros(language).get(name)
        assert macro is not None, f"{where}: no macro {name} in email/{language}/notes.j2"
        assert given == set(macro.arguments), f"{where}: {name} takes {macro.arguments}, is given {sorted(given)}"
    values = {key: SAMPLES.get(key, 3 if key in ("accepted", "asked", "answered", "count", "files", "groups", "sent", "topics",
                                                  "version", "waiting") else "ก") for key in given}
    thai, english = (note(TEMPLATES, language, name, **values) for language in ("th", "en"))
    assert THAI.search(thai) and not ENGLISH_WORDS.search(_without_commands(thai)), thai
    assert re.search("[A-Za-z]{3,}", english) and not THAI.search(english.replace("ก", "")), english


def _without_commands(text: str) -> str:
    for kept in KEPT_IN_ENGLISH:
        text = text.replace(kept, "")
    return text


@pytest.mark.parametrize("language, expected", [("th", "ระบบไม่เข้าใจข้อความนี้"), ("en", "no rule recognised this message")])
def test_the_clerks_digest_says_what_needs_the_clerk_in_the_offices_language(tmp_path, monkeypatch, language, expected):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = write_config(tmp_path, 'kind = "maildir"\npath = "mailbox"', 'kind = "file"\npath = "outgoing"')
    config.write_text(config.read_text(encoding="utf-8").replace("[office]\n", f'[office]\nlanguage = "{language}"\n', 1), encoding="utf-8")
    settings = load(config)
    deliver(settings.source.path, message(subject="สอบถามการประชุม", text="ขอบคุณสำหรับข้อมูลเมื่อวานนะครับ"), "unclear")
    Daemon(build(settings), make_source(settings), make_sender(settings)).run(once=True)

    assert main(["-c", str(config), "digest", "--preview", "--out", str(tmp_path / "digest")]) == 0
    digest = (tmp_path / "digest.txt").read_text(encoding="utf-8")
    [line] = [line for line in digest.splitlines() if "somchai@school001.example.ac.th" in line and "สอบถามการประชุม" in line]
    assert expected in line
    assert bool(THAI.search(line.replace("สอบถามการประชุม", ""))) == (language == "th"), line


def test_an_office_with_its_own_templates_words_its_own_notes(tmp_path):
    own = tmp_path / "templates"
    for language in ("th", "en"):
        (own / "email" / language).mkdir(parents=True)
        original = (TEMPLATES / "email" / language / "notes.j2").read_text(encoding="utf-8")
        (own / "email" / language / "notes.j2").write_text(
            original.replace("ซึ่งไม่อยู่ในทำเนียบ", "ซึ่งไม่มีชื่อในทำเนียบของสำนักงาน"), encoding="utf-8")
    assert note(own, "th", "stranger", sender="x@y.th") == "จาก x@y.th ซึ่งไม่มีชื่อในทำเนียบของสำนักงาน: เก็บเข้าแฟ้มแล้ว ไม่ได้ดำเนินการต่อ"

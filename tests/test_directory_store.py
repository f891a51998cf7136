"""The directory kept in the store: imports with a report first, exports, corrections read from replies, the rounds' days.

What reads or writes the store runs on both stores (TinyDB and PostgreSQL); the mail's rendering on TinyDB only.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from service.commands import apply
from service.config import PROJECT_ROOT
from service.daemon import build
from service.directory import DirectoryError
from service.directory.records import record_of
from service.directory.tabular import check, export, read_rows
from service.meetings.clerk import HANDLERS
from service.rounds import latest_reminder, state
from service.understand.corrections import read_corrections
from worlds import make_world

NOW = datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("Asia/Bangkok"))
HEADER = "kind,id,name,emails,position,organisation,group,role,phone,address,administrator\n"


@pytest.fixture(params=["embedded", "postgresql"])
def service(request, tmp_path, monkeypatch):
    """The embedded office, with its store in TinyDB or in PostgreSQL."""
    settings, _ = make_world(request, tmp_path, monkeypatch)
    service = build(settings, clock=lambda: NOW)
    yield service
    service.office.store.close()


def write(tmp_path, rows: str):
    path = tmp_path / "import.csv"
    path.write_text(HEADER + rows, encoding="utf-8-sig")
    return path


def test_the_report_names_every_problem_and_nothing_is_written_until_it_is_clean(service, tmp_path):
    rows = read_rows(write(tmp_path, (
        "school,s-001,โรงเรียนบ้านหนองบัว,school001@example.ac.th,,,,,042-999-001,,นายสมหมาย ดีมาก\n"
        "school,s-003,โรงเรียนบ้านโคก,school003@example.ac.th,,,,,,,\n"
        "school,s-003,โรงเรียนบ้านโคกซ้ำ,other@example.ac.th,,,,,,,\n"
        "agency,a-x,สำนักงานหนึ่ง,not-an-address,,,,,,,\n"
        "agency,a-y,,y@agency.go.th,,,,,,,\n"
        "school,s-004,โรงเรียนใหม่,school002@example.ac.th,,,,,,,\n")))
    report, good = check(rows, service.office.directory)
    assert [e.id for e in report.new] == ["s-003"] and [e.id for e, _ in report.changed] == ["s-001"]
    assert report.changed[0][1]["phone"] == ["042-111-001", "042-999-001"]
    problems = "\n".join(report.problems)
    assert "row 4 (s-003): the id 's-003' is also on row 3" in problems
    assert "row 5 (a-x): 'not-an-address' is not an e-mail address" in problems
    assert "row 6 (a-y): name is missing" in problems
    assert "row 7 (s-004): school002@example.ac.th is also the address of s-002" in problems
    arguments = {"rows": rows, "source": "import.csv"}
    with pytest.raises(DirectoryError, match="4 problem"):
        apply(service.office, service.outbox, HANDLERS, "directory_import", arguments, NOW)
    assert record_of(service.office.store, "s-001") is None

    said = apply(service.office, service.outbox, HANDLERS, "directory_import", {**arguments, "anyway": True}, NOW)
    assert "2 record(s) written" in said
    assert service.office.directory.who("school001@example.ac.th").phone == "042-999-001"  # the next message sees the new record
    assert service.office.directory.get("s-003").name == "โรงเรียนบ้านโคก"
    record = record_of(service.office.store, "s-001")
    assert record["last_verified"] == "2026-12-01" and record["history"][0]["source"] == "import import.csv"


def test_exports_carry_every_entry_and_read_back_unchanged(service, tmp_path):
    directory = service.office.directory
    table = list(csv.DictReader(io.StringIO(export(directory, service.office.store, "csv").decode("utf-8-sig"))))
    assert len(table) == len(directory.entries) and table[-1]["kind"] == "agency"
    workbook = tmp_path / "directory.xlsx"
    workbook.write_bytes(export(directory, service.office.store, "xlsx"))
    report, _ = check(read_rows(workbook), directory)
    assert (report.unchanged, report.new, report.changed, report.problems) == (len(directory.entries), [], [], [])
    cards = export(directory, service.office.store, "vcard").decode("utf-8")
    assert cards.count("BEGIN:VCARD") == len(directory.entries)
    assert "FN:โรงเรียนบ้านหนองบัว" in cards and "TEL;TYPE=WORK:042-111-001" in cards
    assert max(len(line.encode("utf-8")) for line in cards.split("\r\n")) <= 75


@pytest.mark.parametrize("text, values, confirmed", [
    ("เบอร์โทรใหม่ ๐๔๒-๙๙๙-๐๐๑ ค่ะ", {"phone": "042-999-001"}, False),
    ("ผู้อำนวยการคนใหม่ชื่อนายสมหมาย ดีมาก ตั้งแต่ 1 ธ.ค. 2569", {"administrator": "นายสมหมาย ดีมาก"}, False),
    ("Our new phone number is +66 42 999 001. The new director is Ms. Jane Doe, since May.",
     {"phone": "+66 42 999 001", "administrator": "Ms. Jane Doe"}, False),
    ("ชื่อ: โรงเรียนบ้านหนองบัว\nโทรศัพท์： 042-999-001\nอีเมล: a@school.ac.th", {"name": "โรงเรียนบ้านหนองบัว", "phone": "042-999-001", "emails": "a@school.ac.th"}, False),
    ("ข้อมูลถูกต้องครับ", {}, True),
    ("All details are correct, thank you", {}, True),
    ("ได้รับแล้วครับ จะตรวจสอบให้", {}, False),
])
def test_corrections_are_read_from_free_text_and_the_returned_form(text, values, confirmed):
    read = read_corrections(text, PROJECT_ROOT / "rules")
    assert (read.values, read.confirmed) == (values, confirmed)


def test_reminders_fall_on_the_latest_day_due_and_an_ask_says_how_it_stands():
    deadline = date(2026, 12, 15)
    assert latest_reminder(deadline, (7, 2), 7, date(2026, 12, 7)) is None
    assert latest_reminder(deadline, (7, 2), 7, date(2026, 12, 14)) == date(2026, 12, 13)
    assert latest_reminder(deadline, (7, 2), 7, date(2026, 12, 30)) == date(2026, 12, 29)
    ask = {"answers": [], "reminded": []}
    assert state(ask, deadline, date(2026, 12, 1)) == "asked"
    assert state({**ask, "reminded": ["2026-12-08"]}, deadline, date(2026, 12, 9)) == "reminded"
    assert state(ask, deadline, date(2026, 12, 16)) == "overdue"
    assert state({**ask, "answers": [{"at": "2026-12-16T09:00"}]}, deadline, date(2026, 12, 16)) == "late"


def test_the_commands_report_then_import_and_export(service, tmp_path, capsys):
    from service.cli import main

    service.office.store.close()
    config = str(tmp_path / "secretary.toml")
    bad = write(tmp_path, "agency,a-z,สำนักงานสอง,no-address,,,,,,,\n")
    assert main(["-c", config, "directory", "import", str(bad)]) == 1
    good = write(tmp_path, "agency,a-z,สำนักงานสอง,z@agency.go.th,,,,,02-000-0000,,นายหนึ่ง สอง\n")
    assert main(["-c", config, "directory", "import", str(good)]) == 0
    cards = tmp_path / "directory.vcf"
    assert main(["-c", config, "directory", "export", "--format", "vcard", "--out", str(cards)]) == 0
    assert "FN:สำนักงานสอง" in cards.read_text(encoding="utf-8")
    assert main(["-c", config, "directory", "history", "a-z"]) == 0
    shown = capsys.readouterr()
    assert "'no-address' is not an e-mail address" in shown.out + shown.err and "import import.csv" in shown.out
    assert main(["-c", config, "directory", "verify", "--deadline", "2099-01-31"]) == 0
    assert main(["-c", config, "status"]) == 0
    assert "ตรวจสอบข้อมูลพื้นฐาน verify-" in capsys.readouterr().out
    assert main(["-c", config, "directory", "verify"]) == 2  # one round at a time
    assert "a verification round is open already" in capsys.readouterr().err


@pytest.mark.parametrize("service", ["embedded"], indirect=True)
@pytest.mark.parametrize("language", ["th", "en"])
def test_the_rounds_mail_renders_in_both_languages(service, language):
    from service.mail.compose import Composer
    from service.pmqa import compile_report, start
    from service.directory.verification import start as verify
    from service.rounds import rounds as all_rounds

    composer = Composer(service.settings.templates, "สำนักงานทดสอบ", "meeting@office.test", language)
    asked = [verify(service.office, {"deadline": "2026-12-15"}, NOW)[0], start(service.office, {"deadline": "2026-12-20"}, NOW)[0]]
    with service.office.store.transaction() as transaction:
        for outcome in asked:
            for document in outcome.documents:
                transaction.put(*document)
    [head] = all_rounds(service.office, "pmqa")
    mails = [m for outcome in asked for m in outcome.outgoing] + compile_report(service.office, head, NOW).outgoing
    parsed = [email.message_from_bytes(composer.render(m, NOW)[1], policy=email.policy.default) for m in mails]
    texts = [m.get_body(("plain",)).get_content() for m in parsed]
    reference = {"th": "รหัสอ้างอิง", "en": "Reference"}[language]
    assert len(texts) == 3 + 8 + 1 and all(reference in t for t in texts[:-1])
    assert all(m.get_body(("html",)).get_content().count("<html") == 1 for m in parsed)
    assert ("หมวด 7" if language == "th" else "Category 7") in texts[-1]


def test_two_corrections_of_one_record_approved_together_both_apply(service):
    base = {"round": "verify-1", "record": "s-002", "name": "โรงเรียนวัดป่าสัก", "rules": [], "by": "s-002", "at": NOW.isoformat(), "status": "pending"}
    with service.office.store.transaction() as transaction:
        transaction.put("directory", "corrections", "1", {**base, "id": "1", "changes": {"phone": "042-000-002"}, "was": {"phone": "042-111-002"}, "message": "m1"})
        transaction.put("directory", "corrections", "2", {**base, "id": "2", "changes": {"administrator": "นายใหม่ มาแทน"}, "was": {"administrator": "นางมาลี พรหมมา"}, "message": "m2"})
    apply(service.office, service.outbox, HANDLERS, "directory_review", {"decision": "approve", "ids": ["1", "2"]}, NOW)
    school = service.office.directory.who("school002@example.ac.th")
    assert (school.phone, school.administrator) == ("042-000-002", "นายใหม่ มาแทน")
    [change] = record_of(service.office.store, "s-002")["history"]
    assert set(change["changes"]) == {"phone", "administrator"} and "correction 1" in change["source"] and "correction 2" in change["source"]

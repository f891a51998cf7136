"""Agenda items from what groups write: section, title, revisions, withdrawals, late items, assembly."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from service.config import PROJECT_ROOT
from service.directory import Directory
from service.meetings.agenda import assemble, group_of, intake, item_title, load_agenda_rules, read_submission

RULES = load_agenda_rules(PROJECT_ROOT / "rules" / "agenda.yaml")
DIRECTORY = Directory.load(PROJECT_ROOT / "templates" / "config" / "directory.toml")
BANGKOK = ZoneInfo("Asia/Bangkok")
DEADLINE = date(2026, 12, 2)


def at(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, 10, tzinfo=BANGKOK)


def test_section_and_title_come_from_the_subject_then_the_text():
    submission = read_submission("Re: เสนอวาระการประชุม: ขออนุมัติโครงการอบรมครู", "รายละเอียดตามแนบ", [], RULES)
    assert (submission.action, submission.section, submission.title) == ("submit", "consider", "ขออนุมัติโครงการอบรมครู")
    assert read_submission("รายงานผลการจัดสรรงบประมาณ", "ขอเสนอเป็นเรื่องเพื่อทราบ", [], RULES).section == "info"
    assert read_submission("Agenda item: follow-up on the sports day", "", [], RULES).section == "continued"
    assert read_submission("ไม่มีเรื่องเสนอ", "กลุ่มบุคคลไม่มีเรื่องเสนอในครั้งนี้ครับ", [], RULES).action == "nothing"
    assert read_submission("Re: รายงานงบประมาณ", "ขอถอนเรื่องนี้ก่อนครับ", [], RULES).action == "withdraw"
    assert item_title("ตอบกลับ: ฉบับแก้ไข: รายงานผลการจัดสรรงบประมาณ", RULES) == "รายงานผลการจัดสรรงบประมาณ"


def test_a_revision_replaces_the_item_and_keeps_its_history_and_a_withdrawal_removes_it():
    group = group_of(DIRECTORY.get("p-policy-director"), DIRECTORY)
    assert group.id == "g-policy"
    items = {}
    first = read_submission("เสนอวาระ: รายงานงบประมาณ", "ฉบับแรก", [{"name": "a.pdf", "file": "f1"}], RULES)
    outcome, item = intake(items, group, first, "mid:1", at(24), DEADLINE)
    assert outcome == "submitted" and item["id"] == "g-policy-1"
    items[item["id"]] = item
    revised = read_submission("ฉบับแก้ไข: รายงานงบประมาณ", "ฉบับที่สอง", [], RULES)
    outcome, item = intake(items, group, revised, "mid:2", at(25), DEADLINE)
    assert outcome == "revised" and item["text"] == "ฉบับที่สอง" and len(item["versions"]) == 2
    items[item["id"]] = item
    outcome, item = intake(items, group, read_submission("Re: รายงานงบประมาณ", "ขอถอนเรื่อง", [], RULES), "mid:3", at(26), DEADLINE)
    assert outcome == "withdrawn" and item["status"] == "withdrawn"


def test_an_item_after_the_deadline_is_held_for_the_clerk():
    group = DIRECTORY.get("g-finance")
    outcome, item = intake({}, group, read_submission("เสนอวาระ: รายงานการเงิน", "", [], RULES), "mid:9", at(3, month=12), DEADLINE)
    assert outcome == "late" and item["status"] == "held_late"


def test_the_agenda_is_assembled_in_sections_with_groups_in_the_offices_order():
    items = []
    for group_id, subject, day in [("g-policy", "เรื่องเพื่อทราบ: แผนปฏิบัติการ", 24), ("g-admin", "เรื่องเพื่อทราบ: ปฏิทินงาน", 25), ("g-admin", "ขออนุมัติจัดซื้อ", 26), ("g-admin", "เรื่องเพื่อทราบ: สรุปงานสารบรรณ", 27)]:
        outcome, item = intake({i["id"]: i for i in items}, DIRECTORY.get(group_id), read_submission(subject, "", [], RULES), f"mid:{day}", at(day), DEADLINE)
        items.append(item)
    agenda = assemble(items, DIRECTORY, RULES, ["g-admin", "g-personnel", "g-policy"])
    assert [s["number"] for s in agenda] == [1, 2, 3, 4, 5, 6]
    info = agenda[3]
    assert info["title"] == "เรื่องเพื่อทราบ"
    assert [(e["number"], e["title"]) for e in info["entries"]] == [("4.1", "กลุ่มอำนวยการ"), ("4.2", "กลุ่มนโยบายและแผน")]
    assert [(i["number"], i["title"]) for i in info["entries"][0]["entries"]] == [("4.1.1", "ปฏิทินงาน"), ("4.1.2", "สรุปงานสารบรรณ")]
    assert agenda[4]["entries"][0]["entries"][0]["title"] == "ขออนุมัติจัดซื้อ"
    assert agenda[0]["entries"] == [] and agenda[5]["entries"] == []

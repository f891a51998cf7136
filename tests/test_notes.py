"""The clerk's meeting notes, as clerks really type them: Thai and English markers, Thai digits, Word and PDF files."""

from __future__ import annotations

import io
import shutil
from datetime import date

import pytest
from docx import Document
from docx.shared import Cm

from service.config import PROJECT_ROOT
from service.directory import Directory
from service.rulefiles import RuleError, read_rule_file
from service.understand.notes import Action, Notes, Person, note_rules, notes_text, read_date, read_notes

RULES = PROJECT_ROOT / "rules"
DIRECTORY = Directory.load(PROJECT_ROOT / "templates" / "config" / "directory.toml")
MEETING_DAY = date(2026, 12, 16)

EXAMPLE = """\
เริ่มประชุม 09.00 น.
เลิกประชุม 12.10 น.
ผู้จดรายงานการประชุม: นางสาวกนกวรรณ มีสุข นักจัดการงานทั่วไป
ไม่มาประชุม: Mr. John Carter (ติดราชการต่างประเทศ)
ไม่มาประชุม: นายสมปอง ขยันดี - ลาป่วย
มาประชุม: นายสมชาย ใจดี
ผู้เข้าร่วมประชุม: นายสมหมาย ดีงาม ผู้แทนสำนักงานสาธารณสุขจังหวัด

วาระที่ 1 เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ
ประธานแจ้งนโยบายการลดภาระครู
มติ: ที่ประชุมรับทราบ

ระเบียบวาระที่ ๕.๑.๑ ขออนุมัติแผนปฏิบัติการประจำปีงบประมาณ ๒๕๗๐
กลุ่มนโยบายและแผนนำเสนอแผน ที่ประชุมอภิปรายเรื่องงบประมาณโครงการที่ ๓
มติที่ประชุม: เห็นชอบ โดยให้ปรับงบประมาณโครงการที่ ๓
มอบหมาย: กลุ่มนโยบายและแผน | ปรับแผนและเสนอผู้อำนวยการลงนาม | 15 ม.ค. 2570
มอบหมาย: g-finance | ตรวจสอบวงเงิน | ภายใน 30 วัน
คำสั่ง: แต่งตั้งคณะกรรมการติดตามแผนปฏิบัติการ | กลุ่มนโยบายและแผน, กลุ่มอำนวยการ
  ด้วยที่ประชุมมีมติเห็นชอบแผนปฏิบัติการประจำปีงบประมาณ ๒๕๗๐
  จึงแต่งตั้งคณะกรรมการ ดังนี้
ประกาศ: รายชื่อโครงการที่ได้รับอนุมัติ | การเงิน
"""


def notes(text: str, day: date = MEETING_DAY) -> Notes:
    return read_notes(text, DIRECTORY, day, RULES)


def item(text: str, number: str):
    return next(i for i in notes(text).items if i.number == number)


# --- the example in full ---------------------------------------------------------------


def test_the_example_reads_in_full():
    read = notes(EXAMPLE)
    assert read.problems == ()
    assert (read.began, read.ended) == ("09.00", "12.10")
    assert read.recorder == "นางสาวกนกวรรณ มีสุข นักจัดการงานทั่วไป"
    assert read.absent == (
        Person("Mr. John Carter", "p-school-003", "ติดราชการต่างประเทศ"),
        Person("นายสมปอง ขยันดี", None, "ลาป่วย"),
    )
    assert read.present == (Person("นายสมชาย ใจดี", "p-school-001", ""),)
    assert read.guests == ("นายสมหมาย ดีงาม ผู้แทนสำนักงานสาธารณสุขจังหวัด",)
    assert [i.number for i in read.items] == ["1", "5.1.1"]
    first, plan = read.items
    assert first.title == "เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ"
    assert first.discussion == "ประธานแจ้งนโยบายการลดภาระครู"
    assert first.resolution == "ที่ประชุมรับทราบ"
    assert first.rule == "notes:heading:วาระที่"
    assert plan.title == "ขออนุมัติแผนปฏิบัติการประจำปีงบประมาณ ๒๕๗๐"
    assert plan.discussion == "กลุ่มนโยบายและแผนนำเสนอแผน ที่ประชุมอภิปรายเรื่องงบประมาณโครงการที่ ๓"
    assert plan.resolution == "เห็นชอบ โดยให้ปรับงบประมาณโครงการที่ ๓"
    assert plan.actions == (
        Action("กลุ่มนโยบายและแผน", "g-policy", "ปรับแผนและเสนอผู้อำนวยการลงนาม", date(2027, 1, 15), "15 ม.ค. 2570"),
        Action("g-finance", "g-finance", "ตรวจสอบวงเงิน", date(2027, 1, 15), "ภายใน 30 วัน"),
    )
    order, announcement = plan.orders
    assert (order.kind, order.title, order.groups, order.group_texts) == (
        "order", "แต่งตั้งคณะกรรมการติดตามแผนปฏิบัติการ", ("g-policy", "g-admin"), ("กลุ่มนโยบายและแผน", "กลุ่มอำนวยการ"))
    assert order.body == "ด้วยที่ประชุมมีมติเห็นชอบแผนปฏิบัติการประจำปีงบประมาณ ๒๕๗๐\nจึงแต่งตั้งคณะกรรมการ ดังนี้"
    assert (announcement.kind, announcement.title, announcement.groups, announcement.body) == (
        "announcement", "รายชื่อโครงการที่ได้รับอนุมัติ", ("g-finance",), "")


def test_windows_line_endings_and_a_byte_order_mark_change_nothing():
    assert notes("\ufeff" + EXAMPLE.replace("\n", "\r\n")) == notes(EXAMPLE)


def test_thai_digits_everywhere():
    read = notes(
        "เริ่มประชุมเวลา ๐๙.๓๐ น.\nเลิกประชุมเวลา ๑๒.๔๕ น.\n"
        "ระเบียบวาระที่ ๕.๑. เรื่องเพื่อพิจารณา\nมติ: อนุมัติ\n"
        "มอบหมาย: กลุ่มนโยบายและแผน | จัดทำรายงาน | ๑๕ ม.ค. ๒๕๗๐\n"
        "มอบหมาย: กลุ่มอำนวยการ | แจ้งเวียน | ๓๑/๑/๒๕๗๐\n"
    )
    assert (read.began, read.ended) == ("09.30", "12.45")
    assert [i.number for i in read.items] == ["5.1"]
    assert [a.due for a in read.items[0].actions] == [date(2027, 1, 15), date(2027, 1, 31)]
    assert read.items[0].actions[0].due_text == "๑๕ ม.ค. ๒๕๗๐"
    assert read.problems == ()


def test_english_markers():
    read = notes(
        "Started 9:00\nEnded: 12:10\nRecorder: Ms. Kanokwan Meesuk\n"
        "Absent: Mr. John Carter (overseas duty)\nPresent: Somchai Jaidee\nGuests: Dr. Jane Roe, Provincial Health Office\n\n"
        "Item 5.1.1 Annual action plan 2027\nThe policy group presented the plan.\n"
        "Resolution: Approved in principle.\n"
        "Action: g-policy | Revise the plan | 2027-01-15\n"
        "Order: Committee to follow the plan | g-policy, g-admin\n"
        "Announcement: Approved projects | g-finance\n"
    )
    assert read.problems == ()
    assert (read.began, read.ended, read.recorder) == ("09.00", "12.10", "Ms. Kanokwan Meesuk")
    assert read.absent == (Person("Mr. John Carter", "p-school-003", "overseas duty"),)
    assert read.guests == ("Dr. Jane Roe, Provincial Health Office",)
    (plan,) = read.items
    assert (plan.number, plan.title, plan.rule) == ("5.1.1", "Annual action plan 2027", "notes:heading:Item")
    assert plan.resolution == "Approved in principle."
    assert plan.actions == (Action("g-policy", "g-policy", "Revise the plan", date(2027, 1, 15), "2027-01-15"),)
    assert [(o.kind, o.groups) for o in plan.orders] == [("order", ("g-policy", "g-admin")), ("announcement", ("g-finance",))]


def test_markdown_headings_and_an_empty_title():
    read = notes("## 5.1 เรื่องเพื่อพิจารณา\nมติ: เห็นชอบ\n\n# 6\nไม่มี\n\nวาระที่ 3\n")
    assert [(i.number, i.title) for i in read.items] == [("5.1", "เรื่องเพื่อพิจารณา"), ("6", ""), ("3", "")]
    assert read.items[1].discussion == "ไม่มี"
    assert read.items[2].resolution == ""
    assert read.problems == ()


def test_a_heading_typed_without_a_space():
    read = notes("วาระที่1เรื่องที่ประธานแจ้ง\nมติ:รับทราบ\nระเบียบวาระที่ ๒. รับรองรายงานการประชุม\n")
    assert [(i.number, i.title, i.resolution) for i in read.items] == [("1", "เรื่องที่ประธานแจ้ง", "รับทราบ"), ("2", "รับรองรายงานการประชุม", "")]


def test_a_heading_with_nothing_under_it_is_fine():
    read = notes("วาระที่ 4 เรื่องเพื่อทราบ\nวาระที่ 4.1 เรื่องจากกลุ่มอำนวยการ\nมติ: รับทราบ\n")
    assert [(i.number, i.resolution) for i in read.items] == [("4", ""), ("4.1", "รับทราบ")]
    assert read.problems == ()


@pytest.mark.parametrize("line", ["5.1.1 ขออนุมัติแผน", "ข้อ 5 การเงิน", "วาระสำคัญของที่ประชุม", "Items discussed today"])
def test_lines_that_are_no_heading(line):
    read = notes(f"วาระที่ 1 เรื่องแจ้ง\n{line}\n")
    assert len(read.items) == 1
    assert read.items[0].discussion == line


# --- resolutions -------------------------------------------------------------------------


def test_a_resolution_continues_until_a_blank_line_or_a_marker():
    read = item(
        "วาระที่ 5.1 แผนปฏิบัติการ\nอภิปรายกันอย่างกว้างขวาง\nมติ: เห็นชอบ\nโดยให้ปรับงบประมาณโครงการที่ ๓\nและรายงานผลในการประชุมครั้งต่อไป\n\n"
        "ประธานกล่าวเพิ่มเติม\n", "5.1")
    assert item_fields(read) == (
        "อภิปรายกันอย่างกว้างขวาง\n\nประธานกล่าวเพิ่มเติม",
        "เห็นชอบ\nโดยให้ปรับงบประมาณโครงการที่ ๓\nและรายงานผลในการประชุมครั้งต่อไป",
    )


def item_fields(noted) -> tuple[str, str]:
    return noted.discussion, noted.resolution


def test_a_resolution_marker_alone_takes_the_lines_below():
    noted = item("วาระที่ 2 เรื่องรับรองรายงานการประชุม\nมติที่ประชุม\n\n    ที่ประชุมรับรองรายงานการประชุม\n    โดยไม่มีการแก้ไข\n", "2")
    assert noted.resolution == "ที่ประชุมรับรองรายงานการประชุม\nโดยไม่มีการแก้ไข"
    assert noted.discussion == ""


@pytest.mark.parametrize(
    "line, resolution",
    [
        ("มติ: ที่ประชุมรับทราบ", "ที่ประชุมรับทราบ"),
        ("มติ ที่ประชุมรับทราบ", "ที่ประชุมรับทราบ"),
        ("มติที่ประชุม ： เห็นชอบ", "เห็นชอบ"),
        ("มติที่ประชุม:เห็นชอบ", "เห็นชอบ"),
        ("  - มติ: อนุมัติ  ", "อนุมัติ"),
        ("• มติที่ประชุม: รับทราบ", "รับทราบ"),
        ("Resolution: noted", "noted"),
        ("Decision: approved", "approved"),
    ],
)
def test_resolution_markers(line, resolution):
    assert item(f"วาระที่ 1 เรื่องแจ้ง\n{line}\n", "1").resolution == resolution


def test_a_word_starting_with_the_marker_is_discussion():
    noted = item("วาระที่ 3 เรื่องสืบเนื่อง\nมติคณะรัฐมนตรีเมื่อวันที่ ๑ ธันวาคม ให้ดำเนินการต่อ\nมติ: รับทราบ\n", "3")
    assert noted.discussion == "มติคณะรัฐมนตรีเมื่อวันที่ ๑ ธันวาคม ให้ดำเนินการต่อ"
    assert noted.resolution == "รับทราบ"


def test_discussion_keeps_its_lines_and_bullets():
    noted = item("วาระที่ 4.1 ผลการทดสอบ O-NET\nผลการทดสอบปีนี้\n- ภาษาไทย เพิ่มขึ้น\n- คณิตศาสตร์ ลดลง\n\n\n\nประธานให้ข้อสังเกต\nมติ: รับทราบ\n", "4.1")
    assert noted.discussion == "ผลการทดสอบปีนี้\n- ภาษาไทย เพิ่มขึ้น\n- คณิตศาสตร์ ลดลง\n\nประธานให้ข้อสังเกต"


# --- actions -------------------------------------------------------------------------------


def actions(lines: str):
    read = notes(f"วาระที่ 5.1 แผน\nมติ: เห็นชอบ\n{lines}\n")
    return read.items[0].actions, read.problems


@pytest.mark.parametrize(
    "group, expected",
    [
        ("g-finance", "g-finance"),
        ("กลุ่มบริหารงานการเงินและสินทรัพย์", "g-finance"),
        ("บริหารงานการเงินและสินทรัพย์", "g-finance"),
        ("การเงิน", "g-finance"),
        ("นโยบายและแผน", "g-policy"),
        ("กลุ่มนโยบายและแผน", "g-policy"),
        ("กลุ่มนิเทศ ติดตามและประเมินผลการจัดการศึกษา", "g-supervision"),
        ("กลุ่มนิเทศติดตามและประเมินผลการจัดการศึกษา", "g-supervision"),
        ("นิเทศ", "g-supervision"),
        ("กลุ่มส่งเสริมการจัดการศึกษา", "g-promotion"),
        ("บริหารงานบุคคล", "g-personnel"),
    ],
)
def test_groups_resolve_by_id_name_or_a_unique_part(group, expected):
    found, problems = actions(f"มอบหมาย: {group} | ดำเนินการ | 31 ม.ค. 2570")
    assert [a.group_id for a in found] == [expected]
    assert found[0].group_text == group
    assert problems == ()


def test_an_unknown_group_is_a_problem():
    found, problems = actions("มอบหมาย: กลุ่มกฎหมายและคดี | ตรวจสอบสัญญา | 31 ม.ค. 2570")
    assert found == (Action("กลุ่มกฎหมายและคดี", None, "ตรวจสอบสัญญา", date(2027, 1, 31), "31 ม.ค. 2570"),)
    assert len(problems) == 1
    assert "กลุ่มกฎหมายและคดี" in problems[0] and "วาระที่ 5.1" in problems[0] and "unknown group" in problems[0]


def test_a_part_of_several_names_is_ambiguous():
    found, problems = actions("มอบหมาย: บริหารงาน | รายงาน")
    assert found[0].group_id is None
    assert "several groups" in problems[0] and "กลุ่มบริหารงานบุคคล" in problems[0] and "กลุ่มบริหารงานการเงินและสินทรัพย์" in problems[0]


def test_an_action_for_two_groups_is_two_actions():
    found, problems = actions("มอบหมาย: กลุ่มนโยบายและแผน, กลุ่มอำนวยการ | จัดทำรายงานร่วมกัน | ภายใน 2 สัปดาห์")
    assert [(a.group_id, a.what, a.due) for a in found] == [
        ("g-policy", "จัดทำรายงานร่วมกัน", date(2026, 12, 30)), ("g-admin", "จัดทำรายงานร่วมกัน", date(2026, 12, 30))]
    assert problems == ()


@pytest.mark.parametrize(
    "line",
    [
        "มอบหมาย: g-admin | แจ้งเวียนโรงเรียน",
        "มอบหมาย: g-admin | แจ้งเวียนโรงเรียน | -",
        "มอบหมาย: g-admin | แจ้งเวียนโรงเรียน | ไม่กำหนด",
        "มอบหมาย ：g-admin ｜ แจ้งเวียนโรงเรียน",
        "1) มอบหมาย: g-admin | แจ้งเวียนโรงเรียน",
        "- มอบหมายงาน: g-admin | แจ้งเวียนโรงเรียน",
        "มอบหมาย g-admin | แจ้งเวียนโรงเรียน",
        "Action: g-admin | แจ้งเวียนโรงเรียน",
    ],
)
def test_an_action_without_a_due_date(line):
    found, problems = actions(line)
    assert [(a.group_id, a.what, a.due, a.due_text) for a in found] == [("g-admin", "แจ้งเวียนโรงเรียน", None, "")]
    assert problems == ()


def test_columns_typed_the_other_way_round():
    found, problems = actions("มอบหมาย: จัดทำรายงานผล | กลุ่มนโยบายและแผน | 31 มี.ค. 2570")
    assert [(a.group_id, a.what, a.due) for a in found] == [("g-policy", "จัดทำรายงานผล", date(2027, 3, 31))]
    assert problems == ()


def test_a_what_that_mentions_a_group_does_not_swap_the_columns():
    found, problems = actions("มอบหมาย: กลุ่มกฎหมายและคดี | ประสานกลุ่มนโยบายและแผน | 31 มี.ค. 2570")
    assert [(a.group_text, a.group_id, a.what) for a in found] == [("กลุ่มกฎหมายและคดี", None, "ประสานกลุ่มนโยบายและแผน")]
    assert len(problems) == 1


def test_an_unreadable_due_date_is_a_problem():
    found, problems = actions("มอบหมาย: g-admin | แจ้งเวียน | ก่อนเปิดภาคเรียน")
    assert (found[0].due, found[0].due_text) == (None, "ก่อนเปิดภาคเรียน")
    assert "ก่อนเปิดภาคเรียน" in problems[0] and "due date" in problems[0]


def test_an_impossible_date_is_a_problem():
    found, problems = actions("มอบหมาย: g-admin | แจ้งเวียน | 31/2/2570")
    assert found[0].due is None
    assert len(problems) == 1


def test_an_action_without_what_is_a_problem():
    found, problems = actions("มอบหมาย: กลุ่มอำนวยการ")
    assert found == ()
    assert "group | what | due" in problems[0]


def test_prose_about_assigning_is_no_action():
    found, problems = actions("มอบหมายให้กลุ่มอำนวยการประสานโรงเรียน")
    assert found == () and problems == ()


# --- dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("15 ม.ค. 2570", date(2027, 1, 15)),
        ("15 มกราคม 2570", date(2027, 1, 15)),
        ("๑๕ ม.ค. ๒๕๗๐", date(2027, 1, 15)),
        ("15 ม.ค.2570", date(2027, 1, 15)),
        ("15 มค 70", date(2027, 1, 15)),
        ("15 มกรา 70", date(2027, 1, 15)),
        ("15 มกราคม พ.ศ. 2570", date(2027, 1, 15)),
        ("15/1/2570", date(2027, 1, 15)),
        ("15/01/70", date(2027, 1, 15)),
        ("15.1.2570", date(2027, 1, 15)),
        ("2027-01-15", date(2027, 1, 15)),
        ("ภายในวันที่ 15 ม.ค. 70", date(2027, 1, 15)),
        ("ภายใน 30 วัน", date(2027, 1, 15)),
        ("ภายใน 2 สัปดาห์", date(2026, 12, 30)),
        ("ภายใน 1 เดือน", date(2027, 1, 16)),
        ("ภายในเดือนมกราคม 2570", date(2027, 1, 31)),
        ("15 ม.ค.", date(2027, 1, 15)),
        ("20 ธ.ค.", date(2026, 12, 20)),
        ("31 January 2027", date(2027, 1, 31)),
        ("Jan 31, 2027", date(2027, 1, 31)),
        ("within 10 days", date(2026, 12, 26)),
        ("by the end of February 2027", date(2027, 2, 28)),
        ("29 ก.พ. 2571", date(2028, 2, 29)),
        ("29 ก.พ.", date(2028, 2, 29)),
    ],
)
def test_dates_as_people_type_them(text, expected):
    when = read_date(text, MEETING_DAY, RULES)
    assert when is not None and when.day == expected, when
    assert when.rule.startswith("notes:date:")


@pytest.mark.parametrize("text", ["", "เร็วที่สุด", "31/2/2570", "ASAP", "32 ม.ค. 2570", "ก่อนเปิดภาคเรียนที่ 2", "5.1.1"])
def test_what_is_no_date(text):
    assert read_date(text, MEETING_DAY, RULES) is None


# --- people ---------------------------------------------------------------------------------


def test_people_by_id_name_with_other_titles_and_spaces():
    read = notes(
        "มาประชุม: p-school-002\nมาประชุม: นาย  สมชาย   ใจดี ผู้อำนวยการโรงเรียนบ้านหนองบัว\nมาประชุม: John Carter\n"
        "มาประชุม: ดร.วิชัย แสงทอง\nมาประชุม: นายใครก็ไม่รู้ นามสมมุติ\nวาระที่ 1 แจ้ง\n")
    assert [p.id for p in read.present] == ["p-school-002", "p-school-001", "p-school-003", "p-policy-director", None]
    assert read.problems == ()


def test_several_people_on_one_line():
    read = notes("ไม่มาประชุม: นายสมชาย ใจดี (ติดราชการ, ประชุมที่ กทม.), นางมาลี พรหมมา - ลาป่วย; p-school-003\nวาระที่ 1 แจ้ง\n")
    assert read.absent == (
        Person("นายสมชาย ใจดี", "p-school-001", "ติดราชการ, ประชุมที่ กทม."),
        Person("นางมาลี พรหมมา", "p-school-002", "ลาป่วย"),
        Person("p-school-003", "p-school-003", ""),
    )


def test_a_list_under_a_bare_marker():
    read = notes(
        "รายงานการประชุมผู้บริหารสถานศึกษา ครั้งที่ 12/2569\nวันพุธที่ 16 ธันวาคม 2569\nณ ห้องประชุมสำนักงานเขตพื้นที่การศึกษา\n\n"
        "ผู้ไม่มาประชุม\n1. นายสมชาย ใจดี ติดราชการ\n2. นางมาลี พรหมมา (ลากิจ)\n\n"
        "ผู้จดรายงานการประชุม\nนางสาวกนกวรรณ มีสุข\n\nวาระที่ 1 แจ้ง\n")
    assert [(p.text, p.id, p.reason) for p in read.absent] == [
        ("นายสมชาย ใจดี ติดราชการ", "p-school-001", ""), ("นางมาลี พรหมมา", "p-school-002", "ลากิจ")]
    assert read.recorder == "นางสาวกนกวรรณ มีสุข"
    assert read.problems == ()


# --- orders ------------------------------------------------------------------------------------


def test_an_order_body_is_the_lines_indented_below_it():
    noted = item(
        "วาระที่ 5.2 คณะกรรมการ\nมติ: เห็นชอบ\n"
        "  คำสั่ง: แต่งตั้งคณะกรรมการประเมิน | g-supervision\n"
        "      ข้อ ๑ ให้คณะกรรมการประกอบด้วย\n\n"
        "          (๑) ผู้อำนวยการ ประธาน\n"
        "  ประธานขอบคุณที่ประชุม\n", "5.2")
    (order,) = noted.orders
    assert order.body == "ข้อ ๑ ให้คณะกรรมการประกอบด้วย\n\n    (๑) ผู้อำนวยการ ประธาน"
    assert noted.discussion == "ประธานขอบคุณที่ประชุม"


def test_an_order_for_an_unknown_group():
    read = notes("วาระที่ 5.2 คณะกรรมการ\nคำสั่ง: แต่งตั้งคณะทำงาน | กลุ่มนโยบายและแผน, กลุ่มลูกเสือ\n")
    (order,) = read.items[0].orders
    assert (order.groups, order.group_texts) == (("g-policy",), ("กลุ่มนโยบายและแผน", "กลุ่มลูกเสือ"))
    assert "กลุ่มลูกเสือ" in read.problems[0]


# --- what cannot be understood -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n", "\ufeff"])
def test_empty_notes(text):
    read = notes(text)
    assert read.items == ()
    assert read.problems == ("ไม่มีข้อความบันทึกการประชุม / the notes are empty",)


def test_notes_without_headings_say_so():
    read = notes("ประชุมเรื่องงบประมาณ ที่ประชุมเห็นชอบ\nมอบหมายกลุ่มการเงินดำเนินการ\n")
    assert read.items == ()
    assert any("no item headings" in problem for problem in read.problems)
    assert any("text before the first item" in problem and "ประชุมเรื่องงบประมาณ" in problem for problem in read.problems)


def test_the_preamble_and_comments_are_no_problem():
    read = notes(
        "# บันทึกการประชุม: กรอกตามแบบแล้วส่งกลับ\n// comments like this are skipped\n"
        "รายงานการประชุมผู้บริหารสถานศึกษา\nครั้งที่ ๑๒/๒๕๖๙\nวันพุธที่ ๑๖ ธันวาคม ๒๕๖๙\nณ ห้องประชุมใหญ่\n-----\n"
        "วาระที่ 1 แจ้ง\n# ใส่มติด้านล่าง\nมติ: รับทราบ\n")
    assert read.problems == ()
    assert read.items[0].discussion == ""


def test_a_duplicated_item_is_a_problem():
    read = notes("วาระที่ 4.1 เรื่องหนึ่ง\nมติ: รับทราบ\nวาระที่ 4.1 เรื่องสอง\nมติ: รับทราบ\n")
    assert len(read.items) == 2
    assert read.problems == ("วาระที่ 4.1 ซ้ำ / item 4.1 appears twice",)


def test_an_unreadable_time_is_a_problem():
    read = notes("เลิกประชุม 25.00 น.\nวาระที่ 1 แจ้ง\n")
    assert read.ended == ""
    assert "cannot read the time" in read.problems[0]


def test_markers_before_the_first_item_are_problems():
    read = notes("มติ: รับทราบ\nมอบหมาย: g-admin | แจ้งเวียน\nวาระที่ 1 แจ้ง\n")
    assert len(read.problems) == 2
    assert "a resolution before the first item" in read.problems[0]
    assert "an action before the first item" in read.problems[1]


def test_signatures_after_the_end_are_not_discussion():
    read = notes(
        "วาระที่ 6 เรื่องอื่น ๆ\nไม่มี\nเลิกประชุมเวลา 12.10 น.\n\n"
        "(ลงชื่อ) กนกวรรณ มีสุข\n(นางสาวกนกวรรณ มีสุข)\nผู้จดรายงานการประชุม: นางสาวกนกวรรณ มีสุข\n")
    assert read.items[0].discussion == "ไม่มี"
    assert (read.ended, read.recorder) == ("12.10", "นางสาวกนกวรรณ มีสุข")
    assert read.problems == ()


def test_times_in_every_form():
    for line, time in [("เริ่มประชุม 9.00", "09.00"), ("เริ่มประชุม 09:00 น.", "09.00"), ("เปิดประชุมเวลา 13.30 น.", "13.30"),
                       ("Meeting started at 9:05", "09.05"), ("เริ่มประชุมเวลา ๐๘.๔๕ น.", "08.45")]:
        assert notes(f"{line}\nวาระที่ 1 แจ้ง\n").began == time, line


# --- attachments -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp874", "tis-620", "utf-16"])
def test_text_attachments_in_every_thai_encoding(encoding):
    text = notes_text("บันทึกการประชุม.txt", "text/plain", EXAMPLE.encode(encoding))
    assert text is not None and text.lstrip("\ufeff") == EXAMPLE


def test_text_without_a_name_by_its_type():
    assert notes_text("", "text/plain; charset=utf-8", "วาระที่ 1".encode()) == "วาระที่ 1"
    assert notes_text("notes.md", "application/octet-stream", "## 1".encode()) == "## 1"


def docx_bytes(build) -> bytes:
    document = Document()
    build(document)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_a_word_file_gives_paragraphs_and_table_cells_in_order():
    def build(document):
        document.add_paragraph("เริ่มประชุม 09.00 น.")
        document.add_paragraph("ระเบียบวาระที่ ๕.๑.๑ ขออนุมัติแผนปฏิบัติการ")
        document.add_paragraph("มติที่ประชุม: เห็นชอบ")
        table = document.add_table(rows=2, cols=2)
        table.cell(0, 0).text = "มอบหมาย: กลุ่มนโยบายและแผน | ปรับแผน | 15 ม.ค. 2570"
        table.cell(0, 1).text = "มอบหมาย: กลุ่มการเงิน | ตรวจสอบวงเงิน"
        merged = table.cell(1, 0).merge(table.cell(1, 1))
        merged.text = "คำสั่ง: แต่งตั้งคณะกรรมการ | g-policy"
        body = document.add_paragraph("ด้วยที่ประชุมมีมติ")
        body.paragraph_format.left_indent = Cm(1.5)
        document.add_paragraph("วาระที่ 6 เรื่องอื่น ๆ")

    data = docx_bytes(build)
    text = notes_text("บันทึก.docx", "application/octet-stream", data)
    lines = [line for line in text.split("\n") if line.strip()]
    assert [line.strip() for line in lines] == [
        "เริ่มประชุม 09.00 น.", "ระเบียบวาระที่ ๕.๑.๑ ขออนุมัติแผนปฏิบัติการ", "มติที่ประชุม: เห็นชอบ",
        "มอบหมาย: กลุ่มนโยบายและแผน | ปรับแผน | 15 ม.ค. 2570", "มอบหมาย: กลุ่มการเงิน | ตรวจสอบวงเงิน",
        "คำสั่ง: แต่งตั้งคณะกรรมการ | g-policy", "ด้วยที่ประชุมมีมติ", "วาระที่ 6 เรื่องอื่น ๆ",
    ]
    read = notes(text)
    assert read.problems == ()
    plan = read.items[0]
    assert [(a.group_id, a.due) for a in plan.actions] == [("g-policy", date(2027, 1, 15)), ("g-finance", None)]
    assert plan.orders[0].body == "ด้วยที่ประชุมมีมติ"
    assert [i.number for i in read.items] == ["5.1.1", "6"]


def test_a_pdf_is_read_through_its_text():
    weasyprint = pytest.importorskip("weasyprint")
    font = (PROJECT_ROOT / "templates" / "documents" / "fonts" / "Sarabun-Regular.ttf").as_uri()
    lines = EXAMPLE.split("\n")[:16]
    html = (f"<html><head><style>@font-face {{font-family: S; src: url({font});}} body {{font-family: S}} p {{margin: 0}}</style></head><body>"
            + "".join(f"<p>{line}</p>" for line in lines if line) + "</body></html>")
    text = notes_text("notes.pdf", "application/pdf", weasyprint.HTML(string=html).write_pdf())
    assert text is not None
    read = notes(text)
    # pypdf drops SARA AM (ำ) from Sarabun's glyphs, so compare what does not contain it
    assert [i.number for i in read.items] == ["1", "5.1.1"]
    assert (read.began, read.ended) == ("09.00", "12.10")
    assert read.items[0].resolution == "ที่ประชุมรับทราบ"
    assert read.absent[0].id == "p-school-003"
    assert read.items[1].actions[0].due == date(2027, 1, 15)


@pytest.mark.parametrize(
    "filename, content_type, data",
    [
        ("notes.doc", "application/msword", b"\xd0\xcf\x11\xe0 old word"),
        ("photo.jpg", "image/jpeg", b"\xff\xd8\xff"),
        ("notes.docx", "application/octet-stream", b"not a zip file"),
        ("notes.pdf", "application/pdf", b"%PDF-1.4 broken"),
        ("", "application/octet-stream", b"whatever"),
    ],
)
def test_anything_else_has_no_text(filename, content_type, data):
    assert notes_text(filename, content_type, data) is None


# --- the rules file ------------------------------------------------------------------------------


def test_every_marker_has_a_value_group_or_the_rules_are_refused(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "notes.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("(?P<value>.*)$'}\n    - {name: Resolution", ".*$'}\n    - {name: Resolution", 1), encoding="utf-8")
    read_rule_file.cache_clear()
    with pytest.raises(RuleError, match=r"markers\.resolution: มติ: needs \(\?P<value>…\)"):
        note_rules(rules)


def test_the_rules_file_is_commented():
    text = (RULES / "notes.yaml").read_text(encoding="utf-8")
    assert text.startswith("# The clerk's meeting notes")
    assert set(read_rule_file(RULES / "notes.yaml")) >= {"headings", "markers", "dates"}


# --- the outline the clerk is sent -------------------------------------------------------------


def outline(**filled: str) -> str:
    """templates/documents/notes.txt.j2 as the clerk receives it, for a meeting with two apologies."""
    from datetime import datetime

    from service.documents.environment import environment

    template = environment(PROJECT_ROOT / "templates").get_template("documents/notes.txt.j2")
    return template.render(
        meeting={"title": "ประชุมผู้บริหารสถานศึกษา", "number": 12, "year_be": 2569, "place": "ห้องประชุมใหญ่"},
        start=datetime(2026, 12, 16, 9, 0),
        recorder=DIRECTORY.get("p-clerk"),
        absent=[{"name": "Mr. John Carter", "reason": "ติดราชการต่างประเทศ", "status": "declined"},
                {"name": "นางมาลี พรหมมา", "reason": "", "status": "no_answer"}],
        entries=[{"number": "1", "title": "เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ"}, {"number": "5.1", "title": "ขออนุมัติแผน"}],
    )


def test_the_outline_as_sent_reads_with_only_the_blanks_reported():
    read = notes(outline())
    assert [(i.number, i.title, i.resolution) for i in read.items] == [
        ("1", "เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ", ""), ("5.1", "ขออนุมัติแผน", "")]
    assert read.began == "09.00" and read.recorder.startswith("นางสาวกนกวรรณ มีสุข")
    assert [(p.id, p.reason) for p in read.absent] == [("p-school-003", "ติดราชการต่างประเทศ"), ("p-school-002", "ไม่ได้แจ้ง")]
    assert read.problems == ("ไม่ได้กรอกเวลาเลิกประชุม / the time the meeting ended is not filled in",)


def test_the_outline_filled_in():
    text = outline().replace("เลิกประชุม     .     น.", "เลิกประชุม 12.10 น.")
    text = text.replace("ขออนุมัติแผน\n\nมติ:", "ขออนุมัติแผน\nกลุ่มนโยบายและแผนเสนอแผน\nมติ:\nเห็นชอบ\nมอบหมาย: นโยบายและแผน | ปรับแผน | 15 ม.ค. 70")
    read = notes(text)
    assert read.problems == ()
    plan = read.items[1]
    assert (plan.discussion, plan.resolution) == ("กลุ่มนโยบายและแผนเสนอแผน", "เห็นชอบ")
    assert [(a.group_id, a.due) for a in plan.actions] == [("g-policy", date(2027, 1, 15))]


def test_prose_starting_like_a_time_marker_stays_discussion():
    noted = item("วาระที่ 1 แจ้ง\nเริ่มประชุมโดยประธานกล่าวเปิดการประชุม\n", "1")
    assert noted.discussion == "เริ่มประชุมโดยประธานกล่าวเปิดการประชุม"

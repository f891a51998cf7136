"""Answers to the circulated brief resolutions: endorsements and corrections, as attendees write them, and the filled form."""

from __future__ import annotations

import io
import re

import pytest
from docx import Document

from service.config import PROJECT_ROOT
from service.rulefiles import read_rule_file
from service.understand.objections import Point, read_objection

RULES = PROJECT_ROOT / "rules"
LABELS = ("ระเบียบวาระที่", "มติที่ประชุม (เดิม)", "ขอแก้ไขเป็น", "เหตุผล")


def reading(text: str, attachments: list[tuple[str, bytes]] | None = None):
    return read_objection(text, attachments or [], RULES)


# --- endorsements ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, rule",
    [
        ("รับรองมติครับ", "objections:endorse:รับรอง"),
        ("ไม่มีข้อแก้ไขค่ะ", "objections:endorse:ไม่มีข้อแก้ไข"),
        ("เห็นด้วยกับมติทุกข้อครับ", "objections:endorse:เห็นด้วยกับมติ"),
        ("ขอรับรองมติที่ประชุมโดยย่อ ครั้งที่ ๑๒/๒๕๖๙ ครับ", "objections:endorse:รับรอง"),
        ("ไม่มีข้อทักท้วงครับ", "objections:endorse:ไม่มีข้อทักท้วง"),
        ("ไม่มีการแก้ไขค่ะ", "objections:endorse:ไม่มีแก้ไข"),
        ("ไม่ขอแก้ไขใด ๆ ครับ", "objections:endorse:ไม่มีแก้ไข"),
        ("ไม่มีความเห็นเพิ่มเติมครับ", "objections:endorse:ไม่มีความเห็นเพิ่มเติม"),
        ("ถูกต้องครับ", "objections:endorse:ถูกต้อง"),
        ("เรียน ฝ่ายเลขานุการ\n\nโรงเรียนบ้านหนองบัวขอรับรองมติที่ประชุมครับ\n\nขอแสดงความนับถือ\nนายสมชาย ใจดี\nผู้อำนวยการโรงเรียนบ้านหนองบัว\nโทร 081-234-5678",
         "objections:endorse:รับรอง"),
        ("I endorse the resolutions.", "objections:endorse:endorse"),
        ("No comments.", "objections:endorse:no comments"),
        ("No objection. Thank you.", "objections:endorse:no objection"),
        ("Dear Secretary,\n\nI have no further comments on the brief resolutions.\n\nBest regards,\nJohn Carter\nDirector, Example International School",
         "objections:endorse:no comments"),
        ("No changes needed from my side.", "objections:endorse:no objection"),
        ("Agreed with all resolutions. Thanks!", "objections:endorse:agree"),
        ("Approved, thank you.", "objections:endorse:approve"),
        ("All correct.", "objections:endorse:correct"),
        ("I confirm the brief resolutions as circulated.", "objections:endorse:approve"),
        ("Looks good to me.", "objections:endorse:correct"),
    ],
)
def test_endorsements(text, rule):
    answer = reading(text)
    assert answer is not None, text
    assert (answer.endorses, answer.points, answer.rule) == (True, (), rule)
    assert answer.reasons and rule in answer.reasons[0]


# --- objections in free text -------------------------------------------------------------


@pytest.mark.parametrize(
    "text, points",
    [
        (
            "ขอแก้ไขมติวาระที่ 5.1.1 จาก 'เห็นชอบ' เป็น 'เห็นชอบในหลักการ' เนื่องจากยังไม่ได้ปรับงบประมาณ",
            [("5.1.1", "เห็นชอบในหลักการ", "ยังไม่ได้ปรับงบประมาณ")],
        ),
        (
            "วาระ ๔.๑.๑ ควรระบุว่าให้กลุ่มการเงินเป็นผู้รับผิดชอบ เพราะเป็นงานด้านการเงินโดยตรงครับ",
            [("4.1.1", "ควรระบุว่าให้กลุ่มการเงินเป็นผู้รับผิดชอบ", "เป็นงานด้านการเงินโดยตรง")],
        ),
        ("ข้อ 5.1 ขอให้เพิ่มกำหนดเวลาครับ", [("5.1", "ขอให้เพิ่มกำหนดเวลา", "")]),
        ("ไม่เห็นด้วยกับมติวาระ 5.1.1 ครับ", [("5.1.1", "ไม่เห็นด้วยกับมติวาระ 5.1.1", "")]),
        (
            "ไม่เห็นด้วยกับมติวาระ 5.1.1 เพราะงบประมาณยังไม่ผ่านการพิจารณาของคณะกรรมการ",
            [("5.1.1", "ไม่เห็นด้วยกับมติวาระ 5.1.1", "งบประมาณยังไม่ผ่านการพิจารณาของคณะกรรมการ")],
        ),
        (
            "เรียน ฝ่ายเลขานุการ\n\nขอแก้ไขมติดังนี้\n1. วาระที่ 4.1.1 ผู้รับผิดชอบคือกลุ่มการเงิน\n2. วาระที่ 5.1 ขอให้เพิ่มกำหนดเวลาเป็นภายใน 30 วัน\n\n"
            "ขอแสดงความนับถือ\nนางมาลี พรหมมา\nผู้อำนวยการโรงเรียนวัดป่าสัก",
            [("4.1.1", "ผู้รับผิดชอบคือกลุ่มการเงิน", ""), ("5.1", "ขอให้เพิ่มกำหนดเวลาเป็นภายใน 30 วัน", "")],
        ),
        (
            "วาระที่ 4.1 ควรเพิ่มผู้รับผิดชอบ และวาระที่ 5.1 ควรตัดคำว่า 'เร่งด่วน' ออกครับ",
            [("4.1", "ควรเพิ่มผู้รับผิดชอบ", ""), ("5.1", "ควรตัดคำว่า 'เร่งด่วน' ออก", "")],
        ),
        (
            "รับรองมติ แต่ขอแก้ไขวาระที่ 4.2 ให้ระบุวงเงิน 50,000 บาท",
            [("4.2", "ให้ระบุวงเงิน 50,000 บาท", "")],
        ),
        (
            "ขอแก้ไขมติเรื่องการจัดสรรงบประมาณ ให้ระบุวงเงินให้ชัดเจนค่ะ",
            [("", "ขอแก้ไขมติเรื่องการจัดสรรงบประมาณ ให้ระบุวงเงินให้ชัดเจน", "")],
        ),
        (
            "ไม่มีข้อแก้ไข ยกเว้นวาระที่ 6.1 พิมพ์ชื่อผิด ที่ถูกคือ นางมาลี พรหมมา",
            [("6.1", "พิมพ์ชื่อผิด ที่ถูกคือ นางมาลี พรหมมา", "")],
        ),
        ("ระเบียบวาระที่ ๕ ข้อ ๕.๑ ขอให้เพิ่มกำหนดเวลาครับ", [("5.1", "ขอให้เพิ่มกำหนดเวลา", "")]),
        (
            "ขอแก้ไขมติระเบียบวาระที่ ๓.๒ เป็น \"ที่ประชุมรับทราบ และมอบกลุ่มนิเทศฯ ติดตาม\" ครับ",
            [("3.2", "ที่ประชุมรับทราบ และมอบกลุ่มนิเทศฯ ติดตาม", "")],
        ),
        (
            "วาระที่ 5.2 ขอแก้ไขเป็น เห็นชอบตามที่เสนอ โดยให้รายงานผลภายในเดือนมีนาคม เนื่องจากที่ประชุมได้อภิปรายไว้เช่นนั้น",
            [("5.2", "เห็นชอบตามที่เสนอ โดยให้รายงานผลภายในเดือนมีนาคม", "ที่ประชุมได้อภิปรายไว้เช่นนั้น")],
        ),
        (
            "เรียนท่านเลขานุการ\nวาระที่ 4.3 ชื่อโรงเรียนสะกดผิดครับ ที่ถูกต้องคือ โรงเรียนวัดป่าสัก\nนายสมชาย ใจดี",
            [("4.3", "ชื่อโรงเรียนสะกดผิด ที่ถูกต้องคือ โรงเรียนวัดป่าสัก", "")],
        ),
        (
            "ขอทักท้วงมติวาระที่ 5.1.1 ครับ ที่ประชุมให้ปรับงบประมาณก่อน ไม่ใช่เห็นชอบทันที",
            [("5.1.1", "ที่ประชุมให้ปรับงบประมาณก่อน ไม่ใช่เห็นชอบทันที", "")],
        ),
        (
            "Regarding item 5.1.1, the resolution should read 'approved in principle' because the budget is not final.",
            [("5.1.1", "approved in principle", "the budget is not final")],
        ),
        (
            "I object to 4.1.1: the responsible group should be the finance group.",
            [("4.1.1", "the responsible group should be the finance group", "")],
        ),
        (
            "I do not agree with the resolution of item 5.1.1.",
            [("5.1.1", "I do not agree with the resolution of item 5.1.1", "")],
        ),
        (
            "Dear clerk,\n\nItem 4.1.1 should say the finance group is responsible, and item 5.1.1 should read 'approved in principle'.\n\n"
            "Best regards,\nJohn Carter\nDirector, Example International School",
            [("4.1.1", "should say the finance group is responsible", ""), ("5.1.1", "approved in principle", "")],
        ),
        (
            "Please amend item 5.1 to add a deadline of 31 January 2027.",
            [("5.1", "to add a deadline of 31 January 2027", "")],
        ),
        (
            "I endorse the resolutions except agenda item 6.1, where the school name is wrong: it is Wat Pa Sak School.",
            [("6.1", "where the school name is wrong: it is Wat Pa Sak School", "")],
        ),
        (
            "Please correct the resolution on the budget: it should mention the 50,000 baht ceiling, since the chair said so.",
            [("", "Please correct the resolution on the budget: it should mention the 50,000 baht ceiling", "the chair said so")],
        ),
        (
            "Item 4.2 is missing the responsible group.\nItem 5.3: the date is incorrect, it should be 15 January.",
            [("4.2", "is missing the responsible group", ""), ("5.3", "the date is incorrect, it should be 15 January", "")],
        ),
        (
            "I cannot endorse resolution 5.1.1 as the committee did not vote on it.",
            [("5.1.1", "I cannot endorse resolution 5.1.1", "the committee did not vote on it")],
        ),
        (
            "Hi,\nObjection to item 3.1 – the resolution should be \"noted\", not \"approved\".\nThanks,\nMalee",
            [("3.1", "noted", "")],
        ),
    ],
)
def test_objections(text, points):
    answer = reading(text)
    assert answer is not None, text
    assert answer.endorses is False
    assert [(p.item, p.change, p.reason) for p in answer.points] == points
    assert all(p.source == "text" for p in answer.points)
    assert answer.rule.startswith("objections:object:")
    assert len(answer.reasons) >= len(points)


def test_points_win_over_an_endorsement_and_say_so():
    answer = reading("รับรองมติครับ แต่วาระที่ 4.2 ควรระบุผู้รับผิดชอบ")
    assert answer.endorses is False
    assert answer.points == (Point("4.2", "ควรระบุผู้รับผิดชอบ", "", "text"),)
    assert any("รับรอง" in reason and "wins" in reason for reason in answer.reasons)


def test_negation_decides():
    assert reading("ไม่มีข้อแก้ไข").endorses is True
    assert reading("ไม่เห็นด้วยกับมติวาระ 5.1.1").endorses is False
    assert reading("no objection").endorses is True
    assert reading("I object to 5.1.1").endorses is False
    assert reading("ไม่มีอะไรต้องแก้ไขครับ").endorses is True
    assert reading("no corrections, thanks").endorses is True


def test_naming_an_item_to_agree_with_it_is_no_point():
    answer = reading("วาระที่ 5.1.1 เห็นด้วยครับ")
    assert (answer.endorses, answer.points) == (True, ())


@pytest.mark.parametrize(
    "text",
    ["", "ได้รับเอกสารแล้วครับ ขอบคุณครับ", "Thank you, I received the documents.", "ขอบคุณครับ", "ส่งแบบฟอร์มมาแล้วครับ", "See you next month."],
)
def test_neither_endorsement_nor_objection_is_none(text):
    assert reading(text) is None


def test_windows_line_endings_and_full_width_colons():
    answer = reading("เรียน เลขานุการ\r\n\r\nวาระที่ ๕.๑.๑ ： ขอแก้ไขเป็น เห็นชอบในหลักการ\r\n\r\nขอบคุณครับ\r\nนายสมชาย ใจดี\r\n")
    assert [(p.item, p.change) for p in answer.points] == [("5.1.1", "เห็นชอบในหลักการ")]


# --- the objection form -------------------------------------------------------------------


def form(*blocks: tuple[str, str, str, str], empty_blocks: int = 0, extra_cells: bool = False) -> bytes:
    """The objection form as Word users fill it: a heading, then the four labelled rows once per objection."""
    document = Document()
    document.add_paragraph("แบบฟอร์มแจ้งความเห็นเกี่ยวกับมติที่ประชุม")
    document.add_paragraph("ชื่อ–สกุล นายสมชาย ใจดี ตำแหน่ง ผู้อำนวยการโรงเรียนบ้านหนองบัว")
    rows = [*blocks, *[("", "", "", "")] * empty_blocks]
    table = document.add_table(rows=4 * len(rows), cols=3 if extra_cells else 2)
    for n, values in enumerate(rows):
        for m, (label, value) in enumerate(zip(LABELS, values)):
            row = table.rows[4 * n + m]
            row.cells[0].text = label
            if extra_cells:
                row.cells[1].merge(row.cells[2])
            row.cells[1].text = value
    document.add_paragraph("ลงชื่อ .................... ผู้แจ้งความเห็น")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_a_filled_form_with_two_objections():
    data = form(
        ("๕.๑.๑", "เห็นชอบ", "เห็นชอบในหลักการ โดยให้ปรับงบประมาณโครงการที่ ๓", "ที่ประชุมยังไม่ได้อนุมัติวงเงิน"),
        ("4.1.1 การรายงานผลการทดสอบ", "รับทราบ", "รับทราบ และมอบกลุ่มนิเทศ ติดตามและประเมินผลการจัดการศึกษาติดตาม", "ประธานสั่งการไว้"),
    )
    answer = reading("ส่งแบบฟอร์มแจ้งความเห็นมาพร้อมนี้ครับ", [("แบบฟอร์มแจ้งความเห็นเกี่ยวกับมติที่ประชุม.docx", data)])
    assert answer.endorses is False
    assert answer.rule == "objections:form"
    assert answer.points == (
        Point("5.1.1", "เห็นชอบในหลักการ โดยให้ปรับงบประมาณโครงการที่ ๓", "ที่ประชุมยังไม่ได้อนุมัติวงเงิน", "form"),
        Point("4.1.1", "รับทราบ และมอบกลุ่มนิเทศ ติดตามและประเมินผลการจัดการศึกษาติดตาม", "ประธานสั่งการไว้", "form"),
    )
    assert answer.reasons[0] == "the objection form 'แบบฟอร์มแจ้งความเห็นเกี่ยวกับมติที่ประชุม.docx' asks for 2 correction(s)"


def test_a_form_with_one_block_filled_and_merged_cells():
    data = form(("5.2", "", "เห็นชอบตามที่เสนอ", ""), empty_blocks=1, extra_cells=True)
    answer = reading("", [("form.docx", data)])
    assert answer.points == (Point("5.2", "เห็นชอบตามที่เสนอ", "", "form"),)


def test_a_form_left_as_printed_says_nothing():
    data = form(("......", "......", "..................", "(ระบุ)"), empty_blocks=1)
    assert reading("", [("form.docx", data)]) is None
    answer = reading("รับรองมติครับ", [("form.docx", data)])
    assert (answer.endorses, answer.rule) == (True, "objections:endorse:รับรอง")


def test_form_and_text_points_add_up():
    data = form(("5.1.1", "เห็นชอบ", "เห็นชอบในหลักการ", "งบประมาณยังไม่ผ่าน"))
    answer = reading("นอกจากแบบฟอร์ม ขอแก้ไขวาระที่ 6.1 ให้ระบุวันที่ให้ถูกต้อง", [("objection.docx", data)])
    assert [(p.item, p.source) for p in answer.points] == [("5.1.1", "form"), ("6.1", "text")]
    assert answer.rule == "objections:form"


def test_a_form_without_an_item_number():
    data = form(("เรื่องงบประมาณ", "", "ให้ระบุวงเงิน", "เพื่อความชัดเจน"))
    (point,) = reading("", [("objection.docx", data)]).points
    assert (point.item, point.change, point.reason) == ("", "ให้ระบุวงเงิน", "เพื่อความชัดเจน")


@pytest.mark.parametrize("attachment", [("report.pdf", b"%PDF-1.4"), ("form.docx", b"not a zip"), ("photo.jpg", b"\xff\xd8")])
def test_other_attachments_are_ignored(attachment):
    assert reading("รับรองมติครับ", [attachment]).endorses is True


def test_the_form_template_and_the_rules_share_the_labels():
    """The labels are the contract between the form we send and the reader of what comes back."""
    template = (PROJECT_ROOT / "templates" / "documents" / "objection_form.html.j2").read_text(encoding="utf-8")
    labels = read_rule_file(RULES / "objections.yaml")["form"]["labels"]
    assert tuple(labels.values()) == LABELS
    for label in LABELS:
        assert re.search(re.escape(f'("{label}"'), template), label

"""Groups' reports on their follow-up actions, by reply: done, in progress, delayed, and a new due date."""

from __future__ import annotations

from datetime import date

import pytest

from service.config import PROJECT_ROOT
from service.rulefiles import read_rule_file
from service.understand.progress import Progress, read_progress

RULES = PROJECT_ROOT / "rules"
TODAY = date(2027, 1, 10)


def progress(text: str) -> Progress | None:
    return read_progress(text, RULES, TODAY)


@pytest.mark.parametrize(
    "text, status, rule",
    [
        ("ดำเนินการเรียบร้อยแล้ว", "done", "progress:done:เรียบร้อยแล้ว"),
        ("แล้วเสร็จ", "done", "progress:done:แล้วเสร็จ"),
        ("เรียน ฝ่ายเลขานุการ\nกลุ่มนโยบายและแผนได้ดำเนินการตามมติแล้วครับ รายละเอียดตามไฟล์แนบ", "done", "progress:done:ดำเนินการแล้ว"),
        ("ส่งรายงานเรียบร้อยแล้วค่ะ", "done", "progress:done:ส่งแล้ว"),
        ("ลงนามแล้ว", "done", "progress:done:ส่งแล้ว"),
        ("เสร็จสิ้นแล้วครับ", "done", "progress:done:แล้วเสร็จ"),
        ("Done.", "done", "progress:done:done"),
        ("Completed, report attached", "done", "progress:done:done"),
        ("The plan has been finished and signed.", "done", "progress:done:done"),
        ("อยู่ระหว่างดำเนินการ คาดว่าแล้วเสร็จสิ้นเดือน", "in_progress", "progress:in_progress:อยู่ระหว่างดำเนินการ"),
        ("กำลังดำเนินการครับ", "in_progress", "progress:in_progress:กำลังดำเนินการ"),
        ("ยังไม่แล้วเสร็จครับ", "in_progress", "progress:in_progress:ยังไม่แล้วเสร็จ"),
        ("ดำเนินการไปแล้วร้อยละ 60", "in_progress", "progress:in_progress:ดำเนินการไปแล้วร้อยละ"),
        ("จะดำเนินการให้แล้วเสร็จภายในสัปดาห์หน้า", "in_progress", "progress:in_progress:จะแล้วเสร็จ"),
        ("in progress", "in_progress", "progress:in_progress:in progress"),
        ("We are working on it, about 50% done.", "in_progress", "progress:in_progress:in progress"),
        ("It will be completed by Friday.", "in_progress", "progress:in_progress:will be completed"),
        ("Not done yet.", "in_progress", "progress:in_progress:in progress"),
        ("ยังไม่แล้วเสร็จ ขอขยายเวลาถึง 31 ม.ค. 2570", "delayed", "progress:delayed:ขอขยายเวลา"),
        ("ยังไม่ได้ดำเนินการ", "delayed", "progress:delayed:ยังไม่ได้ดำเนินการ"),
        ("ล่าช้าเนื่องจากรองบประมาณ", "delayed", "progress:delayed:ล่าช้า"),
        ("we need more time until 2027-01-31", "delayed", "progress:delayed:need more time"),
        ("Delayed: waiting for the budget.", "delayed", "progress:delayed:delayed"),
        ("We have not started yet.", "delayed", "progress:delayed:delayed"),
    ],
)
def test_status(text, status, rule):
    found = progress(text)
    assert found is not None, text
    assert (found.status, found.rule) == (status, rule)
    assert found.note == text.strip()


@pytest.mark.parametrize(
    "text, new_due",
    [
        ("ยังไม่แล้วเสร็จ ขอขยายเวลาถึง 31 ม.ค. 2570", date(2027, 1, 31)),
        ("ขอขยายระยะเวลาดำเนินการไปจนถึงวันที่ ๒๘ กุมภาพันธ์ ๒๕๗๐ ครับ", date(2027, 2, 28)),
        ("ขอขยายเวลาอีก 30 วัน", date(2027, 2, 9)),
        ("ขอเลื่อนกำหนดส่งเป็น 15/2/70", date(2027, 2, 15)),
        ("we need more time until 2027-01-31", date(2027, 1, 31)),
        ("Could we have an extension to 15 February 2027?", date(2027, 2, 15)),
        ("ขอขยายเวลาครับ", None),
        ("ยังไม่ได้ดำเนินการ", None),
        ("อยู่ระหว่างดำเนินการ คาดว่าแล้วเสร็จ 31 ม.ค. 2570", None),
    ],
)
def test_new_due_date(text, new_due):
    assert progress(text).new_due == new_due


@pytest.mark.parametrize(
    "text, action",
    [
        ("ข้อ 2 ดำเนินการเรียบร้อยแล้ว", 2),
        ("งานที่ ๓ อยู่ระหว่างดำเนินการ", 3),
        ("#4 done", 4),
        ("Action 1: completed.", 1),
        ("รายการที่ 12 แล้วเสร็จ", 12),
        ("ดำเนินการเรียบร้อยแล้ว", None),
        ("Regarding item 5.1.1, done.", None),
    ],
)
def test_the_action_referred_to(text, action):
    assert progress(text).action == action


@pytest.mark.parametrize(
    "text",
    ["", "ได้รับทราบครับ ขอบคุณครับ", "Thanks, noted.", "ขอทราบรายละเอียดเพิ่มเติมครับ", "ไม่ขอขยายเวลา"],
)
def test_saying_nothing_about_progress_is_none(text):
    assert progress(text) is None


def test_not_done_is_never_done():
    for text in ["ยังไม่ได้ดำเนินการ", "ยังไม่แล้วเสร็จ", "ยังไม่เรียบร้อย", "not completed yet", "haven't started"]:
        found = progress(text)
        assert found is not None and found.status != "done", text


def test_the_progress_section_leaves_room_for_others():
    data = read_rule_file(RULES / "followups.yaml")
    assert set(data["progress"]) == {"negation", "delayed", "in_progress", "done", "action", "new_due"}

"""The preparation papers (seed step 9, T−1) and the costs behind them.

Sign-in sheet, name tags, catering head-count and the allowance list are rendered
from a realistic meeting and read back from the PDF text layer, compared `folded()`
as in test_documents.py (SARA AM and the marks do not survive extraction reliably).
The first page of each is kept as a PNG in artifacts/documents/ to look at.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from docx import Document
from pypdf import PdfReader
from pythainlp.util import bahttext

from papers import render_files
from service.meetings.costs import expected_attendees, load_costs, rate_on, summarise_costs
from service.rulefiles import RuleError, read_rule_file

from test_documents import folded, page_image

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
COSTS = ROOT / "rules" / "costs.yaml"
BANGKOK = ZoneInfo("Asia/Bangkok")

needs_poppler = pytest.mark.skipif(not shutil.which("pdftoppm"), reason="needs poppler-utils")


def person(name: str, position: str, group: str, status: str = "accepted", **extra: str) -> dict:
    return {"name": name, "position": position, "group": group, "status": status,
            "delegate_name": "", "delegate_position": "", "reason": "", **extra}


PEOPLE = [
    person("นายสมชาย ใจดี", "ผู้อำนวยการสำนักงานเขตพื้นที่การศึกษา", "ผู้บริหารสำนักงาน"),
    person("นางสาวสมศรี รักงาน", "ผู้อำนวยการกลุ่มอำนวยการ", "กลุ่มอำนวยการ"),
    person("นายวิชัย มั่นคง", "ผู้อำนวยการกลุ่มนโยบายและแผน", "กลุ่มนโยบายและแผน", "tentative"),
    person("นางประไพ ศรีสุข", "ผู้อำนวยการโรงเรียนบ้านหนองบัว", "โรงเรียน", "delegated",
           delegate_name="นายธนากร แก้วมา", delegate_position="รองผู้อำนวยการโรงเรียนบ้านหนองบัว"),
    person("นายอนุชา ทองดี", "ผู้อำนวยการโรงเรียนบ้านป่าซาง", "โรงเรียน", "declined", reason="ติดราชการ"),
    person("นางกาญจนา บุญมี", "ผู้อำนวยการโรงเรียนวัดสันทราย", "โรงเรียน"),
    person("นายปรีชา สายทอง", "ผู้อำนวยการโรงเรียนบ้านแม่ริม", "โรงเรียน", "no_answer"),
]


def context(kind: str = "school_administrators", list_declined: bool = True, count_tentative: bool = True) -> dict:
    start = datetime(2026, 11, 25, 9, 0, tzinfo=BANGKOK)
    end = datetime(2026, 11, 25, 15, 30, tzinfo=BANGKOK)
    attendees = expected_attendees(PEOPLE, count_tentative)
    entitled = [{"name": PEOPLE[0]["name"], "position": PEOPLE[0]["position"], "role": "chair"},
                {"name": PEOPLE[5]["name"], "position": PEOPLE[5]["position"], "role": "member"},
                {"name": PEOPLE[1]["name"], "position": PEOPLE[1]["position"], "role": "secretary"}]
    return {
        "office": {"name": "สำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1", "thai_digits": True},
        "meeting": {"title": "การประชุมผู้บริหารสถานศึกษา", "number": 11, "year_be": 2569, "start": start, "end": end,
                    "place": "ห้องประชุมดอยสุเทพ ชั้น 2 สพป.เชียงใหม่ เขต 1"},
        "people": PEOPLE,
        "costs": summarise_costs(load_costs(COSTS), kind, start, end, attendees, entitled),
        "list_declined": list_declined,
        "count_tentative": count_tentative,
        "thai": True,
    }


def text_of(pdf: Path) -> str:
    return folded("".join(page.extract_text() for page in PdfReader(pdf).pages))


def docx_text(path: Path) -> str:
    document = Document(str(path))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join([paragraph.text for paragraph in document.paragraphs] + cells)


# --- documents ---------------------------------------------------------------------------


@needs_poppler
def test_signin_sheet_lists_people_with_the_delegate_and_the_excused(tmp_path: Path) -> None:
    rendered = render_files("signin", context(), tmp_path, TEMPLATES)

    text = text_of(rendered.pdf)
    assert folded("บัญชีลงชื่อผู้เข้าร่วมประชุม") in text
    assert folded("การประชุมผู้บริหารสถานศึกษา ครั้งที่ ๑๑/๒๕๖๙") in text
    assert folded("วันพุธที่ ๒๕ พฤศจิกายน ๒๕๖๙") in text and folded("ชั้น ๒") in text
    for heading in ("ที่", "ชื่อ–สกุล", "ตำแหน่ง", "ลายมือชื่อ", "หมายเหตุ"):
        assert folded(heading) in text
    # The delegate signs under their own name and position, on behalf of the member.
    assert folded("นายธนากร แก้วมา") in text and folded("รองผู้อำนวยการโรงเรียนบ้านหนองบัว") in text
    assert folded("ประชุมแทน นางประไพ ศรีสุข") in text
    assert folded("นายอนุชา ทองดี") in text and folded("ติดราชการ") in text
    # Rows keep the caller's order.
    order = [text.index(folded(name)) for name in ("นายสมชาย ใจดี", "นายวิชัย มั่นคง", "นายธนากร แก้วมา", "นางกาญจนา บุญมี")]
    assert order == sorted(order)
    assert "นายธนากร แก้วมา" in docx_text(rendered.docx) and "ประชุมแทน นางประไพ ศรีสุข" in docx_text(rendered.docx)
    page_image(rendered.pdf, "signin")


def test_signin_sheet_can_leave_out_who_declined(tmp_path: Path) -> None:
    rendered = render_files("signin", context(list_declined=False), tmp_path, TEMPLATES)

    text = text_of(rendered.pdf)
    assert folded("นายอนุชา ทองดี") not in text and folded("ติดราชการ") not in text
    assert folded("นางกาญจนา บุญมี") in text


@needs_poppler
def test_name_tags_are_for_those_expected_with_the_delegates_name(tmp_path: Path) -> None:
    rendered = render_files("name_tags", context(), tmp_path, TEMPLATES)

    text = text_of(rendered.pdf)
    assert folded("นายธนากร แก้วมา") in text and folded("นางประไพ ศรีสุข") not in text
    assert folded("นายอนุชา ทองดี") not in text  # declined
    assert folded("นางกาญจนา บุญมี") in text and folded("ผู้อำนวยการโรงเรียนวัดสันทราย") in text
    assert len(PdfReader(rendered.pdf).pages) == 1  # 6 tags fit one sheet of 8
    assert "นายวิชัย มั่นคง" in docx_text(rendered.docx)
    page_image(rendered.pdf, "name_tags")


@needs_poppler
def test_catering_sheet_counts_heads_and_totals_in_figures_and_words(tmp_path: Path) -> None:
    data = context()
    rendered = render_files("catering", data, tmp_path, TEMPLATES)

    # 2 accepted + 1 delegate + 1 tentative (counted) + 1 accepted school = 5 people;
    # 9.00–15.30 spans lunch: 2 snacks × 35 and 1 lunch × 120 each = 5 × 190 = 950 baht.
    assert data["costs"]["attendees"] == 5 and data["costs"]["total"] == Decimal(950)
    text = text_of(rendered.pdf)
    assert folded("สรุปจำนวนผู้เข้าร่วมประชุมและค่าอาหารว่าง/อาหารกลางวัน") in text
    assert folded("ค่าอาหารว่างและเครื่องดื่ม") in text and folded("ค่าอาหารกลางวัน") in text
    assert folded("๕ × ๒ = ๑๐") in text and folded("๓๕๐.๐๐") in text and folded("๖๐๐.๐๐") in text
    assert folded("๙๕๐.๐๐") in text
    assert folded(bahttext(950)) in text and folded("เก้าร้อยห้าสิบบาทถ้วน") in text
    assert "๙๕๐.๐๐" in docx_text(rendered.docx)
    page_image(rendered.pdf, "catering")


def test_amounts_have_thousands_separators(tmp_path: Path) -> None:
    data = context()
    data["thai"] = data["office"]["thai_digits"] = False
    data["costs"] = summarise_costs(load_costs(COSTS), "school_administrators", data["meeting"]["start"],
                                    data["meeting"]["end"], 40)

    text = text_of(render_files("catering", data, tmp_path, TEMPLATES).pdf)

    assert "7,600.00" in text and folded("เจ็ดพันหกร้อยบาทถ้วน") in text


@needs_poppler
def test_allowance_list_pays_committee_members_per_role(tmp_path: Path) -> None:
    rendered = render_files("allowances", context("personnel_subcommittee"), tmp_path, TEMPLATES)

    text = text_of(rendered.pdf)
    assert folded("บัญชีรายชื่อผู้มีสิทธิ์รับเบี้ยประชุม / ค่าพาหนะ") in text
    assert folded("นายสมชาย ใจดี") in text and folded("(ประธาน)") in text and folded("(เลขานุการ)") in text
    assert folded("๑,๒๕๐.๐๐") in text and folded("๓,๒๕๐.๐๐") in text
    assert folded(bahttext(3250)) in text
    assert "นางกาญจนา บุญมี" in docx_text(rendered.docx)
    page_image(rendered.pdf, "allowances")


def test_allowance_list_says_so_when_the_kind_pays_none(tmp_path: Path) -> None:
    text = text_of(render_files("allowances", context("internal_staff"), tmp_path, TEMPLATES).pdf)

    assert folded("ไม่มีการเบิกจ่ายเบี้ยประชุม") in text and folded("ค่าพาหนะ") not in text


# --- costs -------------------------------------------------------------------------------


def at(hour: int, minute: int = 0, day: date = date(2026, 11, 25)) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BANGKOK)


def costs_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "costs.yaml"
    path.write_text(text, encoding="utf-8")
    read_rule_file.cache_clear()
    load_costs.cache_clear()
    return path


DATED = """
rates:
  - {valid_from: 2020-01-01, source: old letter, snack: 25, meal: 80}
  - {valid_from: 2026-12-01, source: new letter, snack: 50, meal: 150}
  - {valid_from: 2024-10-01, source: middle letter, snack: 35, meal: 120}
lunch: {from: "12:00", to: "13:00"}
kinds:
  school_administrators: {snacks_per_half_day: 1, meal_over_lunch: true, allowance: null}
"""


def test_the_rate_is_the_latest_in_force_on_the_meeting_day(tmp_path: Path) -> None:
    rules = load_costs(costs_file(tmp_path, DATED))

    assert rate_on(rules, date(2026, 11, 30)).source == "middle letter"
    assert rate_on(rules, date(2026, 12, 1)).source == "new letter"
    assert rate_on(rules, date(2024, 9, 30)).source == "old letter"
    with pytest.raises(RuleError, match="no rate is valid on 2019-12-31"):
        rate_on(rules, date(2019, 12, 31))
    summary = summarise_costs(rules, "school_administrators", at(9, day=date(2026, 12, 2)), at(12, day=date(2026, 12, 2)), 10)
    assert summary["items"][0]["rate"] == 50 and summary["valid_from"] == date(2026, 12, 1)


def test_lunch_is_served_only_when_the_meeting_spans_it() -> None:
    rules = load_costs(COSTS)

    morning = summarise_costs(rules, "school_administrators", at(9), at(12), 30)
    assert [item["item"] for item in morning["items"]] == ["snack"] and morning["items"][0]["count"] == 30
    assert not morning["spans_lunch"] and morning["total"] == 30 * 35
    day = summarise_costs(rules, "school_administrators", at(9), at(16), 30)
    assert day["spans_lunch"] and [(item["item"], item["count"]) for item in day["items"]] == [("snack", 60), ("meal", 30)]
    assert day["total"] == 60 * 35 + 30 * 120 and day["total_words"] == bahttext(5700)
    afternoon = summarise_costs(rules, "school_administrators", at(13), at(16), 30)
    assert not afternoon["spans_lunch"] and afternoon["half_days"] == 1
    # Internal staff meetings get no lunch even over lunch time.
    staff = summarise_costs(rules, "internal_staff", at(9), at(16), 12)
    assert [item["item"] for item in staff["items"]] == ["snack"]


def test_no_allowance_for_internal_staff_or_school_administrators() -> None:
    rules = load_costs(COSTS)
    chair = [{"name": "นายสมชาย ใจดี", "position": "ผู้อำนวยการ", "role": "chair"}]

    for kind in ("internal_staff", "school_administrators"):
        assert summarise_costs(rules, kind, at(9), at(12), 20, chair)["allowance"] is None
    paid = summarise_costs(rules, "personnel_subcommittee", at(9), at(12), 9, chair)["allowance"]
    assert paid["total"] == 1250 and paid["rows"][0]["role_title"] == "ประธาน"


def test_expected_attendees_counts_tentative_only_when_asked() -> None:
    assert expected_attendees(PEOPLE, count_tentative=True) == 5
    assert expected_attendees(PEOPLE, count_tentative=False) == 4


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("rates: []\nkinds: {a: {}}\nlunch: {from: '12:00', to: '13:00'}", "rates: at least one"),
        ("rates: [{valid_from: soon, source: x, snack: 1, meal: 1}]\nkinds: {a: {}}", r"rates\[0\].valid_from"),
        ("rates: [{valid_from: 2024-01-01, snack: 1, meal: 1}]\nkinds: {a: {}}", r"rates\[0\].source"),
        ("rates: [{valid_from: 2024-01-01, source: x, snack: lots, meal: 1}]\nkinds: {a: {}}", r"rates\[0\].snack"),
        ("rates: [{valid_from: 2024-01-01, source: x, snack: 1, meal: 1}]\nlunch: {from: 12:00, to: '13:00'}\nkinds: {a: {}}", "lunch.from"),
        ("rates: [{valid_from: 2024-01-01, source: x, snack: 1, meal: 1}]\nlunch: {from: '12:00', to: '13:00'}\n"
         "kinds: {board: {allowance: {source: decree, chair: 1, member: 1}}}", "kinds.board.allowance.secretary"),
    ],
)
def test_a_wrong_costs_file_names_the_entry(tmp_path: Path, text: str, entry: str) -> None:
    with pytest.raises(RuleError, match=entry):
        load_costs(costs_file(tmp_path, text))


def test_an_unknown_kind_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match="'board' has no entry"):
        summarise_costs(load_costs(COSTS), "board", at(9), at(12), 5)

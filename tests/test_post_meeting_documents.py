"""The papers after the meeting, rendered for real and read back.

Brief resolutions (มติที่ประชุมโดยย่อ), the minutes (รายงานการประชุม, แบบที่ ๑๑), an
order and an announcement (คำสั่ง / ประกาศ), the follow-up form, the objection form
(filled in Word and read back by its table) and the memo that sums the objections up
for the office director. Each is rendered from a realistic school administrators'
meeting, ครั้งที่ 11/2569 on 16 December 2026, with Thai and with Arabic digits.

PDF text comes back through pypdf and is compared `folded()`: the text layer loses
SARA AM and some marks (shared/docs/THAI-DOCUMENTS.md), so both sides drop the marks
above and below the line, read SARA AM as SARA AA and ignore spaces. The DOCX is read
with python-docx, where the text is exact. Pages of the minutes, the order and the
follow-up form are kept as PNGs in artifacts/documents/ for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from docx import Document
from docx.enum.section import WD_ORIENT
from docx.oxml.ns import qn
from PIL import Image, ImageDraw, ImageStat
from pypdf import PdfReader

from papers import render_files
from service.config import PROJECT_ROOT
from service.documents.thai import thai_digits

TEMPLATES = PROJECT_ROOT / "templates"
ARTIFACTS = PROJECT_ROOT / "artifacts" / "documents"
BANGKOK = ZoneInfo("Asia/Bangkok")
DIRECTOR = "ผู้อำนวยการสำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1"
DUE = date(2027, 1, 15)
LABELS = ["ระเบียบวาระที่", "มติที่ประชุม (เดิม)", "ขอแก้ไขเป็น", "เหตุผล"]

pytestmark = pytest.mark.skipif(not shutil.which("pdftoppm"), reason="needs poppler-utils (pdftoppm)")

digits_both = pytest.mark.parametrize("thai", [True, False], ids=["thai-digits", "arabic-digits"])


# --- reading back --------------------------------------------------------------------------

def folded(text: str) -> str:
    """Thai as a PDF text layer reliably gives it back: SARA AM as SARA AA, without the
    marks above and below the line, without spaces."""
    text = unicodedata.normalize("NFC", text).replace("\u0e33", "\u0e32")
    return "".join(c for c in text if unicodedata.category(c) != "Mn" and not c.isspace())


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def docx_text(path: Path) -> str:
    """Paragraphs, then every table cell (nested tables too), one per line."""
    document = Document(str(path))

    def cells(tables):
        for table in tables:
            for row in table.rows:
                for cell in row.cells:
                    yield cell.text
                    yield from cells(cell.tables)

    return "\n".join([paragraph.text for paragraph in document.paragraphs] + list(cells(document.tables)))


def d(text: str, thai: bool) -> str:
    """The expected text with the digits the office uses."""
    return thai_digits(text) if thai else text


def assert_says(rendered, expected: list[str], thai: bool) -> None:
    """Every expected text in the PDF (folded) and in the DOCX (exactly, spaces made plain)."""
    assert rendered.pdf.exists() and rendered.docx.exists()
    pdf = folded(pdf_text(rendered.pdf))
    docx = re.sub(r"[ \u00a0]+", " ", docx_text(rendered.docx))
    for text in expected:
        text = d(text, thai)
        assert folded(text) in pdf, f"PDF lacks {text!r}"
        assert text in docx, f"DOCX lacks {text!r}"


def assert_digits(rendered, thai: bool) -> None:
    """Thai digits only (none Arabic outside the e-mail address) when the office uses them; else none Thai."""
    text = re.sub(r"\S+@\S+", "", pdf_text(rendered.pdf) + docx_text(rendered.docx))
    if thai:
        assert re.search("[๐-๙]", text) and not re.search("[0-9]", text), re.findall(r".{0,12}[0-9].{0,12}", text)[:5]
    else:
        assert not re.search("[๐-๙]", text)


def page_image(pdf: Path, name: str, page: int = 1) -> Path:
    """Page `page` as a PNG in artifacts/documents/ (kept for a person to look at)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / name
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", str(page), "-l", str(page), "-singlefile", str(pdf), str(target)],
                   check=True)
    return target.with_suffix(".png")


def ink(png: Path) -> float:
    """Share of the page that is not white: a blank page has none."""
    grey = Image.open(png).convert("L")
    return ImageStat.Stat(grey.point(lambda value: 255 if value < 200 else 0)).sum[0] / 255 / (grey.width * grey.height)


# --- a realistic meeting ---------------------------------------------------------------------

def emblem(folder: Path) -> str:
    """A stand-in for the Garuda emblem (the office's own image in real use)."""
    path = folder / "garuda.png"
    image = Image.new("RGB", (200, 240), "white")
    ImageDraw.Draw(image).ellipse((20, 20, 180, 220), outline="black", width=8)
    image.save(path)
    return str(path)


def common(folder: Path, thai: bool, with_emblem: bool = True) -> dict:
    return {
        "office": {
            "name": "สำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1",
            "short_name": "สพป.เชียงใหม่ เขต 1",
            "address": "ถนนโชตนา ตำบลช้างเผือก\nอำเภอเมืองเชียงใหม่ จังหวัดเชียงใหม่ 50300",
            "code": "ศธ 04099",
            "phone": "0 5311 2333",
            "fax": "0 5311 2334",
            "email": "meeting@cmarea1.go.th",
            "unit": "กลุ่มอำนวยการ",
            "thai_digits": thai,
            "emblem": emblem(folder) if with_emblem else "",
        },
        "thai": thai,
        "meeting": {
            "id": "m-2569-11",
            "title": "การประชุมผู้บริหารสถานศึกษา",
            "number": 11,
            "year_be": 2569,
            "start": datetime(2026, 12, 16, 9, 0, tzinfo=BANGKOK),
            "end": datetime(2026, 12, 16, 12, 0, tzinfo=BANGKOK),
            "place": "ห้องประชุมดอยสุเทพ ชั้น 2 สพป.เชียงใหม่ เขต 1",
        },
    }


ACTION = {"group_name": "กลุ่มนโยบายและแผน", "what": "แจ้งโรงเรียนที่ได้รับจัดสรรงบประมาณค่าซ่อมแซมอาคารเรียน", "due": DUE}

ITEMS = [
    {"number": "1", "title": "เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ", "resolution": "รับทราบ", "actions": []},
    {"number": "4.1.1", "title": "การรายงานผลการดำเนินงานประจำปีงบประมาณ 2569",
     "resolution": "รับทราบ\nให้โรงเรียนรายงานผลภายในเดือนมกราคม 2570", "actions": []},
    {"number": "5.1.1", "title": "การจัดสรรงบประมาณค่าซ่อมแซมอาคารเรียน ปีงบประมาณ 2570",
     "resolution": "เห็นชอบการจัดสรรงบประมาณ จำนวน 12 โรงเรียน ตามที่เสนอ", "actions": [ACTION]},
]


def resolutions_context(folder: Path, thai: bool, draft: bool = True) -> dict:
    return {**common(folder, thai), "items": ITEMS, "draft": draft, "objection_days": 7,
            "signer": {"name": "นายสมชาย ใจดี", "position": DIRECTOR}}


def minutes_context(folder: Path, thai: bool, draft: bool = False) -> dict:
    return {
        **common(folder, thai),
        "present": [
            {"name": "นายสมชาย ใจดี", "position": DIRECTOR, "note": "ประธานที่ประชุม"},
            {"name": "นางสาวสมศรี รักงาน", "position": "ผู้อำนวยการกลุ่มอำนวยการ", "note": "เลขานุการ"},
            {"name": "นายธนากร แก้วมา", "position": "รองผู้อำนวยการโรงเรียนบ้านหนองบัว", "note": "ประชุมแทน นางประไพ ศรีสุข"},
            {"name": "นางกาญจนา บุญมี", "position": "ผู้อำนวยการโรงเรียนวัดสันทราย", "note": ""},
        ],
        "absent": [{"name": "นายอนุชา ทองดี", "position": "ผู้อำนวยการโรงเรียนบ้านป่าซาง", "reason": "ติดราชการ"}],
        "guests": [{"name": "นายวีระ ศรีเมือง", "position": "นักวิชาการศึกษา สำนักงานศึกษาธิการจังหวัดเชียงใหม่"}],
        "began": "09.00",
        "ended": "12.10",
        "agenda": [
            {"number": 1, "title": "เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ",
             "discussion": "ประธานแจ้งนโยบายการจัดการศึกษาปีงบประมาณ 2570\nขอให้ผู้บริหารสถานศึกษาทุกท่านดำเนินการตามนโยบาย",
             "resolution": "รับทราบ"},
            {"number": 2, "title": "เรื่องรับรองรายงานการประชุม ครั้งที่ 10/2569",
             "discussion": "ฝ่ายเลขานุการได้แจ้งเวียนรายงานการประชุมครั้งที่ 10/2569 แล้ว ไม่มีผู้ขอแก้ไข",
             "resolution": "รับรองรายงานการประชุม"},
            {"number": 3, "title": "เรื่องสืบเนื่อง"},
            {"number": 4, "title": "เรื่องเพื่อทราบ", "entries": [
                {"number": "4.1", "title": "กลุ่มอำนวยการ", "entries": [
                    {"number": "4.1.1", "title": ITEMS[1]["title"],
                     "discussion": "ผู้อำนวยการกลุ่มอำนวยการรายงานผลการดำเนินงาน ร้อยละ 95 ของแผน",
                     "resolution": ITEMS[1]["resolution"]},
                ]},
            ]},
            {"number": 5, "title": "เรื่องเพื่อพิจารณา", "entries": [
                {"number": "5.1", "title": "กลุ่มนโยบายและแผน", "entries": [
                    {"number": "5.1.1", "title": ITEMS[2]["title"],
                     "discussion": "ผู้อำนวยการกลุ่มนโยบายและแผนเสนอการจัดสรรงบประมาณ 3,500,000 บาท\n\nที่ประชุมอภิปรายเรื่องเกณฑ์การจัดสรร",
                     "resolution": ITEMS[2]["resolution"]},
                ]},
            ]},
            {"number": 6, "title": "เรื่องอื่น ๆ (ถ้ามี)", "entries": []},
        ],
        "recorder": {"name": "นางสาวพิมพ์ใจ ศรีงาม", "position": "นักจัดการงานทั่วไปชำนาญการ"},
        "checker": {"name": "นางสาวสมศรี รักงาน", "position": "ผู้อำนวยการกลุ่มอำนวยการ"},
        "draft": draft,
    }


ORDER_BODY = """เพื่อให้การดำเนินงานตามมติที่ประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569 เป็นไปด้วยความเรียบร้อย
จึงแต่งตั้งคณะกรรมการพิจารณาการจัดสรรงบประมาณค่าซ่อมแซมอาคารเรียน ดังนี้

1. นายสมชาย ใจดี ผู้อำนวยการสำนักงานเขตพื้นที่การศึกษา ประธานกรรมการ
2. นางสาวสมศรี รักงาน ผู้อำนวยการกลุ่มอำนวยการ กรรมการ
2.1 นายธนากร แก้วมา รองผู้อำนวยการโรงเรียนบ้านหนองบัว กรรมการ
3. นายวิชัย มั่นคง ผู้อำนวยการกลุ่มนโยบายและแผน กรรมการและเลขานุการ

ให้คณะกรรมการที่ได้รับแต่งตั้งปฏิบัติหน้าที่ให้แล้วเสร็จภายในวันที่ 15 มกราคม 2570

ทั้งนี้ ตั้งแต่บัดนี้เป็นต้นไป"""


def order_context(folder: Path, thai: bool, *, kind: str = "order", number: str = "12",
                  when: date | None = date(2026, 12, 18), with_emblem: bool = True) -> dict:
    return {
        **common(folder, thai, with_emblem),
        "order": {"kind": kind, "number": number, "year_be": 2569,
                  "title": "แต่งตั้งคณะกรรมการพิจารณาการจัดสรรงบประมาณค่าซ่อมแซมอาคารเรียน",
                  "body": ORDER_BODY, "date": when, "signer": {"name": "นายสมชาย ใจดี", "position": DIRECTOR}},
        "draft": not number,
    }


def followups_context(folder: Path, thai: bool, group_name: str = "") -> dict:
    actions = [
        {"number": 1, "item": f"5.1.1 {ITEMS[2]['title']}", "what": ACTION["what"], "group_name": ACTION["group_name"],
         "due": DUE, "status": "in_progress", "status_text": "กำลังดำเนินการ", "progress": "แจ้งโรงเรียนแล้ว 8 แห่ง"},
        {"number": 2, "item": f"4.1.1 {ITEMS[1]['title']}", "what": "รวบรวมรายงานผลจากโรงเรียน",
         "group_name": "กลุ่มอำนวยการ", "due": None, "status": "open", "status_text": "ยังไม่ดำเนินการ", "progress": ""},
        {"number": 3, "item": "5.1.2 การจัดซื้อครุภัณฑ์", "what": "จัดทำรายการครุภัณฑ์", "group_name": "กลุ่มนโยบายและแผน",
         "due": date(2026, 12, 20), "status": "overdue", "status_text": "เกินกำหนด", "progress": ""},
    ]
    return {**common(folder, thai), "group_name": group_name, "actions": actions, "as_of": date(2026, 12, 28)}


def objections_context(folder: Path, thai: bool, objections: bool = True) -> dict:
    rows = [
        {"number": 1, "person_name": "นางกาญจนา บุญมี", "item": f"5.1.1 {ITEMS[2]['title']}",
         "resolution": ITEMS[2]["resolution"], "change": "เห็นชอบการจัดสรรงบประมาณ จำนวน 13 โรงเรียน",
         "reason": "โรงเรียนวัดสันทรายได้รับอนุมัติเพิ่มเติม", "at": datetime(2026, 12, 18, 10, 30, tzinfo=BANGKOK)},
        {"number": 2, "person_name": "นายธนากร แก้วมา", "item": f"4.1.1 {ITEMS[1]['title']}",
         "resolution": "รับทราบ", "change": "รับทราบ และให้รายงานผลภายในเดือนกุมภาพันธ์ 2570",
         "reason": "โรงเรียนขนาดเล็กต้องใช้เวลารวบรวมข้อมูล", "at": datetime(2026, 12, 21, 14, 5, tzinfo=BANGKOK)},
    ]
    return {**common(folder, thai), "objections": rows if objections else [], "endorsed": 38, "silent": 112,
            "window_ends": date(2026, 12, 25)}


# --- the documents ---------------------------------------------------------------------------

@digits_both
def test_brief_resolutions(tmp_path: Path, thai: bool) -> None:
    rendered = render_files("resolutions", resolutions_context(tmp_path, thai), tmp_path, TEMPLATES)

    assert_says(rendered, [
        "มติที่ประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569 (โดยย่อ)",
        "เมื่อวันพุธที่ 16 ธันวาคม 2569 ณ ห้องประชุมดอยสุเทพ ชั้น 2",
        "ระเบียบวาระที่ 1 เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ",
        "ระเบียบวาระที่ 4.1.1 การรายงานผลการดำเนินงานประจำปีงบประมาณ 2569",
        "ระเบียบวาระที่ 5.1.1 การจัดสรรงบประมาณค่าซ่อมแซมอาคารเรียน",
        "มติที่ประชุม เห็นชอบการจัดสรรงบประมาณ จำนวน 12 โรงเรียน ตามที่เสนอ",
        "ให้โรงเรียนรายงานผลภายในเดือนมกราคม 2570",
        "มอบหมาย กลุ่มนโยบายและแผน ดำเนินการ: แจ้งโรงเรียนที่ได้รับจัดสรรงบประมาณค่าซ่อมแซมอาคารเรียน ภายใน 15 มกราคม 2570",
        "ภายใน 7 วัน",
        "(นายสมชาย ใจดี)",
        DIRECTOR,
        "ร่าง",
    ], thai)
    assert_digits(rendered, thai)
    assert PdfReader(rendered.pdf).metadata.title == d("มติที่ประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569 (โดยย่อ)", thai)
    # the draft mark is a line of its own, right-aligned, at the top of the DOCX
    first = Document(str(rendered.docx)).paragraphs[0]
    assert first.text == "ร่าง" and first.alignment == 2


def test_brief_resolutions_final_has_no_draft_mark(tmp_path: Path) -> None:
    rendered = render_files("resolutions", resolutions_context(tmp_path, True, draft=False), tmp_path, TEMPLATES)

    assert "ร่าง" not in docx_text(rendered.docx).splitlines()
    assert "ร่าง" not in pdf_text(rendered.pdf).split()


@digits_both
def test_minutes_in_the_layout_of_form_11(tmp_path: Path, thai: bool) -> None:
    rendered = render_files("minutes", minutes_context(tmp_path, thai, draft=thai), tmp_path, TEMPLATES)

    assert_says(rendered, [
        "รายงานการประชุมผู้บริหารสถานศึกษา",
        "ครั้งที่ 11/2569",
        "เมื่อวันพุธที่ 16 ธันวาคม 2569",
        "ณ ห้องประชุมดอยสุเทพ ชั้น 2 สพป.เชียงใหม่ เขต 1",
        "ผู้มาประชุม", "ผู้ไม่มาประชุม", "ผู้เข้าร่วมประชุม",
        "นายธนากร แก้วมา", "ประชุมแทน นางประไพ ศรีสุข",
        "นายอนุชา ทองดี", "ติดราชการ",
        "นายวีระ ศรีเมือง",
        "เริ่มประชุมเวลา 09.00 น.",
        "ระเบียบวาระที่ 1 เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ",
        "ประธานแจ้งนโยบายการจัดการศึกษาปีงบประมาณ 2570",
        "มติที่ประชุม รับรองรายงานการประชุม",
        "ระเบียบวาระที่ 3 เรื่องสืบเนื่อง",
        "4.1 กลุ่มอำนวยการ",
        "4.1.1 การรายงานผลการดำเนินงานประจำปีงบประมาณ 2569",
        "ร้อยละ 95 ของแผน",
        "5.1.1 การจัดสรรงบประมาณค่าซ่อมแซมอาคารเรียน",
        "3,500,000 บาท",
        "มติที่ประชุม เห็นชอบการจัดสรรงบประมาณ จำนวน 12 โรงเรียน ตามที่เสนอ",
        "เลิกประชุมเวลา 12.10 น.",
        "ผู้จดรายงานการประชุม", "(นางสาวพิมพ์ใจ ศรีงาม)", "นักจัดการงานทั่วไปชำนาญการ",
        "ผู้ตรวจรายงานการประชุม", "(นางสาวสมศรี รักงาน)",
    ], thai)
    assert_digits(rendered, thai)
    pdf = folded(pdf_text(rendered.pdf))
    # numbered lists; a section without a resolution (3, 6) shows none: 4 resolutions in all
    assert folded(d("1. นายสมชาย ใจดี", thai)) in pdf and folded(d("1. นายอนุชา ทองดี", thai)) in pdf
    assert pdf.count(folded("มติที่ประชุม")) == 4
    # the order of the form: attendance, start, items, end, signatures
    marks = ["ผู้มาประชุม", "ผู้ไม่มาประชุม", "ผู้เข้าร่วมประชุม", "เริ่มประชุมเวลา", "ระเบียบวาระที่6", "เลิกประชุมเวลา",
             "ผู้จดรายงานการประชุม", "ผู้ตรวจรายงานการประชุม"]
    positions = [pdf.index(folded(d(mark, thai))) for mark in marks]
    assert positions == sorted(positions)
    assert ("ร่าง" in pdf_text(rendered.pdf).split()) == thai  # drafted with Thai digits only here
    if thai:
        png = page_image(rendered.pdf, "minutes-page-1")
        assert ink(png) > 0.01
        page_image(rendered.pdf, "minutes-page-2", page=2)


def test_minutes_without_absentees_or_guests(tmp_path: Path) -> None:
    data = minutes_context(tmp_path, True)
    data.update(absent=[], guests=[], began="", ended="")
    rendered = render_files("minutes", data, tmp_path, TEMPLATES)

    pdf = folded(pdf_text(rendered.pdf))
    assert folded("ผู้ไม่มาประชุม- ไม่มี -") in pdf
    assert folded("ผู้เข้าร่วมประชุม") not in pdf
    assert folded("เริ่มประชุมเวลา") in pdf and folded("เลิกประชุมเวลา") in pdf  # left to write in


@digits_both
def test_order_with_number_date_and_emblem(tmp_path: Path, thai: bool) -> None:
    rendered = render_files("order", order_context(tmp_path, thai), tmp_path, TEMPLATES)

    assert_says(rendered, [
        "คำสั่งสำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1",
        "ที่ 12/2569",
        "เรื่อง แต่งตั้งคณะกรรมการพิจารณาการจัดสรรงบประมาณค่าซ่อมแซมอาคารเรียน",
        "เพื่อให้การดำเนินงานตามมติที่ประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569 เป็นไปด้วยความเรียบร้อย จึงแต่งตั้ง",
        "1. นายสมชาย ใจดี",
        "3. นายวิชัย มั่นคง ผู้อำนวยการกลุ่มนโยบายและแผน กรรมการและเลขานุการ",
        "ทั้งนี้ ตั้งแต่บัดนี้เป็นต้นไป",
        "สั่ง ณ วันที่ 18 ธันวาคม พ.ศ. 2569",
        "(นายสมชาย ใจดี)",
    ], thai)
    assert_digits(rendered, thai)
    document = Document(str(rendered.docx))
    assert len(document.inline_shapes) == 1  # the Garuda
    texts = [paragraph.text for paragraph in document.paragraphs]
    # the body: paragraphs indented on their first line, each list entry its own paragraph
    entries = [p for p in document.paragraphs if re.match(r"[๐-๙]\. " if thai else r"[0-9]\. ", p.text)]
    assert len(entries) == 3 and all(p.paragraph_format.first_line_indent for p in entries)
    assert any(t.startswith(d("2.1 นายธนากร", thai)) for t in texts)
    assert "ร่าง" not in texts
    if thai:
        assert ink(page_image(rendered.pdf, "order-page-1")) > 0.01


def test_draft_announcement_without_number_or_date(tmp_path: Path) -> None:
    data = order_context(tmp_path, True, kind="announcement", number="", when=None, with_emblem=False)
    rendered = render_files("order", data, tmp_path, TEMPLATES)

    text = docx_text(rendered.docx)
    assert "ประกาศสำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต ๑" in text
    assert "ที่ ......../๒๕๖๙" in text
    assert re.search(r"ประกาศ ณ วันที่\s+\.{10,}", text)
    assert "สั่ง ณ วันที่" not in text
    assert "ร่าง" in text.splitlines()
    assert not Document(str(rendered.docx)).inline_shapes
    pdf = folded(pdf_text(rendered.pdf))
    assert folded("ที่ ......../๒๕๖๙") in pdf and folded("ประกาศ ณ วันที่") in pdf


@digits_both
def test_followup_form_on_landscape_paper(tmp_path: Path, thai: bool) -> None:
    rendered = render_files("followups", followups_context(tmp_path, thai), tmp_path, TEMPLATES)

    assert_says(rendered, [
        "แบบฟอร์มติดตามงานตามมติที่ประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569",
        "ข้อมูล ณ วันที่ 28 ธันวาคม 2569",
        "ที่", "เรื่อง/มติ", "งานที่มอบหมาย", "ผู้รับผิดชอบ", "กำหนดเสร็จ", "ผลการดำเนินงาน", "สถานะ",
        "5.1.1 การจัดสรรงบประมาณค่าซ่อมแซมอาคารเรียน",
        ACTION["what"], "กลุ่มนโยบายและแผน", "15 มกราคม 2570",
        "แจ้งโรงเรียนแล้ว 8 แห่ง", "กำลังดำเนินการ", "ยังไม่ดำเนินการ", "เกินกำหนด",
    ], thai)
    assert_digits(rendered, thai)
    box = PdfReader(rendered.pdf).pages[0].mediabox
    assert float(box.width) > float(box.height)  # A4 landscape
    document = Document(str(rendered.docx))
    section = document.sections[0]
    assert section.orientation == WD_ORIENT.LANDSCAPE and section.page_width > section.page_height
    table = document.tables[0]
    assert [cell.text for cell in table.rows[0].cells] == ["ที่", "เรื่อง/มติ", "งานที่มอบหมาย", "ผู้รับผิดชอบ", "กำหนดเสร็จ", "ผลการดำเนินงาน", "สถานะ"]
    assert table.rows[0]._tr.trPr.find(qn("w:tblHeader")) is not None  # repeats on each page in Word
    assert table._tbl.tblPr.find(qn("w:tblBorders")) is not None  # ruled in Word as in the PDF
    assert [row.cells[0].text for row in table.rows[1:]] == [d(str(n), thai) for n in (1, 2, 3)]
    assert table.rows[2].cells[4].text == "-" and table.rows[2].cells[5].text == ""  # no deadline; nothing reported
    if thai:
        assert ink(page_image(rendered.pdf, "followups-page-1")) > 0.01


def test_followup_form_for_one_group(tmp_path: Path) -> None:
    data = followups_context(tmp_path, True, group_name="กลุ่มนโยบายและแผน")
    data["actions"] = [a for a in data["actions"] if a["group_name"] == "กลุ่มนโยบายและแผน"]
    rendered = render_files("followups", data, tmp_path, TEMPLATES)

    assert "ผู้รับผิดชอบ กลุ่มนโยบายและแผน" in re.sub(r"[ \u00a0]+", " ", docx_text(rendered.docx))
    assert len(Document(str(rendered.docx)).tables[0].rows) == 3


@digits_both
def test_objection_form_keeps_the_label_and_value_cells(tmp_path: Path, thai: bool) -> None:
    data = {**common(tmp_path, thai), "person_name": "นางกาญจนา บุญมี" if thai else ""}
    rendered = render_files("objection_form", data, tmp_path, TEMPLATES)

    assert_says(rendered, [
        "แบบฟอร์มแจ้งความเห็นเกี่ยวกับมติที่ประชุม",
        "การประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569",
        "เมื่อวันพุธที่ 16 ธันวาคม 2569",
        "ชื่อ–สกุล", "ตำแหน่ง", *LABELS, "ลงชื่อ", "วันที่",
    ], thai)
    assert_digits(rendered, thai)
    assert ("นางกาญจนา บุญมี" in docx_text(rendered.docx)) == thai
    document = Document(str(rendered.docx))
    tables = [table for table in document.tables if any(row.cells[0].text in LABELS for row in table.rows)]
    assert len(tables) == 1
    rows = [(row.cells[0].text, row.cells[1].text) for row in tables[0].rows]
    assert rows == [(label, "") for label in LABELS] * 2  # two objections, labels alone, values empty
    assert all(len(row.cells) == 2 for row in tables[0].rows)
    # as the reader will find them once filled in: first cell starts with a label, the second holds the text
    filled = tables[0]
    filled.rows[0].cells[1].text = "5.1.1"
    filled.rows[2].cells[1].text = "จำนวน 13 โรงเรียน"
    path = tmp_path / "filled.docx"
    document.save(str(path))
    again = {row.cells[0].text: row.cells[1].text for row in Document(str(path)).tables[0].rows[:4]}
    assert again["ระเบียบวาระที่"] == "5.1.1" and again["ขอแก้ไขเป็น"] == "จำนวน 13 โรงเรียน"
    # room to write in Word: the text rows are at least 2 cm tall
    assert all(row.height and row.height.cm >= 2 for row in filled.rows[1:4])


@digits_both
def test_objections_memo_for_the_director(tmp_path: Path, thai: bool) -> None:
    rendered = render_files("objections", objections_context(tmp_path, thai), tmp_path, TEMPLATES)

    assert_says(rendered, [
        "บันทึกข้อความ",
        "ส่วนราชการ", "กลุ่มอำนวยการ",
        "เรื่อง สรุปความเห็นต่อมติที่ประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569",
        "เรียน ผู้อำนวยการสำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1",
        "จำนวน 38 คน", "จำนวน 112 คน", "25 ธันวาคม 2569",
        "ผู้เสนอ", "ระเบียบวาระ", "มติเดิม", "ขอแก้ไขเป็น", "เหตุผล",
        "นางกาญจนา บุญมี", "เห็นชอบการจัดสรรงบประมาณ จำนวน 13 โรงเรียน", "โรงเรียนวัดสันทรายได้รับอนุมัติเพิ่มเติม",
        "นายธนากร แก้วมา", "รับทราบ และให้รายงานผลภายในเดือนกุมภาพันธ์ 2570",
        "“เห็นชอบทุกข้อ”", "“เห็นชอบข้อ 1, 3”", "“ไม่เห็นชอบ”",
    ], thai)
    assert_digits(rendered, thai)
    table = next(t for t in Document(str(rendered.docx)).tables if t.rows[0].cells[0].text == "ที่")
    assert [cell.text for cell in table.rows[0].cells] == ["ที่", "ผู้เสนอ", "ระเบียบวาระ", "มติเดิม", "ขอแก้ไขเป็น", "เหตุผล"]
    assert len(table.rows) == 3
    assert Document(str(rendered.docx)).inline_shapes  # the small Garuda of the memo form


def test_objections_memo_when_nobody_objected(tmp_path: Path) -> None:
    rendered = render_files("objections", objections_context(tmp_path, True, objections=False), tmp_path, TEMPLATES)

    text = docx_text(rendered.docx)
    assert "ไม่มีผู้เสนอขอแก้ไขมติที่ประชุม" in text and "จึงเรียนมาเพื่อโปรดทราบ" in text
    assert not any(t.rows[0].cells[0].text == "ที่" for t in Document(str(rendered.docx)).tables if t.rows)


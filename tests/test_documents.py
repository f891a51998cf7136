"""The agenda, the invitation letter and the meeting pack, rendered and read back.

PDFs are checked by their text layer (pdftotext), by their first page as an
image (pdftoppm, written to artifacts/documents/ for people to look at) and by
the fonts they embed. The text layer of a Thai PDF is less faithful than the
page (shared/docs/THAI-DOCUMENTS.md; WeasyPrint issue #2841): a glyph that two
characters share, like the า that SARA AM (ำ) is drawn with, maps back to
whichever of them came first in the document, and some marks drop out. So the
texts are compared `folded()` (SARA AM as SARA AA, without the marks above and
below the line), and the shaping is judged from the images.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import unicodedata
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from docx import Document
from docx.oxml.ns import qn
from PIL import Image, ImageDraw, ImageStat
from pypdf import PdfReader, PdfWriter
from weasyprint import HTML

from papers import pack_file, render_files
from service.documents.thai import thai_digits

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
ARTIFACTS = ROOT / "artifacts" / "documents"
BANGKOK = ZoneInfo("Asia/Bangkok")

pytestmark = pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdftoppm")), reason="needs poppler-utils"
)

SECTION_TITLES = [
    "เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ",
    "เรื่องรับรองรายงานการประชุม ครั้งที่ 10/2569",
    "เรื่องสืบเนื่อง",
    "เรื่องเพื่อทราบ",
    "เรื่องเพื่อพิจารณา",
    "เรื่องอื่น ๆ (ถ้ามี)",
]


def folded(text: str) -> str:
    """Thai text as the PDF text layer reliably gives it back: without marks above or
    below the line (tone marks, upper and lower vowels), SARA AM as SARA AA, no spaces."""
    text = text.replace("\u0e33", "\u0e32")
    return "".join(c for c in text if unicodedata.category(c) != "Mn" and not c.isspace())


def pdf_text(path: Path, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", "-layout", *pages, str(path), "-"], capture_output=True, text=True, check=True).stdout


def bottom_line(page_text: str) -> str:
    """The page's lowest line of text, without spaces (where the pack stamps its numbers)."""
    return re.sub(r"\s", "", page_text.strip().splitlines()[-1])


def page_image(pdf: Path, name: str, page: int = 1) -> Path:
    """Page `page` as a PNG in artifacts/documents/ (kept for a person to look at)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / name
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page), "-singlefile", str(pdf), str(target)],
        check=True,
    )
    return target.with_suffix(".png")


def ink(png: Path) -> float:
    """Share of the page that is not white: a blank page has none."""
    grey = Image.open(png).convert("L")
    dark = sum(ImageStat.Stat(grey.point(lambda value: 255 if value < 200 else 0)).sum) / 255
    return dark / (grey.width * grey.height)


def emblem(folder: Path) -> Path:
    """A stand-in for the Garuda emblem (the office's own image in real use)."""
    path = folder / "garuda.png"
    image = Image.new("RGB", (200, 240), "white")
    ImageDraw.Draw(image).ellipse((20, 20, 180, 220), outline="black", width=8)
    image.save(path)
    return path


def item(number: str, title: str, presenter: str, attachments: list[str] | None = None) -> dict:
    return {
        "number": number,
        "title": title,
        "text": f"สำนักงานเขตพื้นที่การศึกษาขอแจ้ง{title} รายละเอียดตามเอกสารประกอบ จำนวน 2 หน้า",
        "presenter": presenter,
        "attachments": attachments or [],
    }


def context(folder: Path, thai_digits: bool = True, items_per_group: int = 2) -> dict:
    """A realistic meeting of a primary ESA office's school administrators."""
    groups = ["กลุ่มอำนวยการ", "กลุ่มบริหารงานบุคคล", "กลุ่มนโยบายและแผน", "กลุ่มส่งเสริมการจัดการศึกษา"]
    for_information = [
        {
            "number": f"4.{g}",
            "title": group,
            "entries": [
                item(f"4.{g}.{i}", f"การดำเนินงานของ{group} เรื่องที่ {i}", "ผู้อำนวยการกลุ่ม", [f"4-{g}-{i}.pdf"])
                for i in range(1, items_per_group + 1)
            ],
        }
        for g, group in enumerate(groups, start=1)
    ]
    return {
        "office": {
            "name": "สำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1",
            "short_name": "สพป.เชียงใหม่ เขต 1",
            "address": "ถนนโชตนา ตำบลช้างเผือก\nอำเภอเมืองเชียงใหม่ จังหวัดเชียงใหม่ 50300",
            "code": "ศธ ๐๔๐๙๙",
            "phone": "0 5311 2333",
            "fax": "0 5311 2334",
            "email": "saraban@cmarea1.go.th",
            "unit": "กลุ่มอำนวยการ",
            "thai_digits": thai_digits,
            "emblem": str(emblem(folder)),
        },
        "meeting": {
            "title": "การประชุมผู้บริหารสถานศึกษา",
            "number": 11,
            "year_be": 2569,
            "start": datetime(2026, 11, 25, 9, 0, tzinfo=BANGKOK),
            "end": datetime(2026, 11, 25, 12, 0, tzinfo=BANGKOK),
            "place": "ห้องประชุมดอยสุเทพ ชั้น 2 สพป.เชียงใหม่ เขต 1",
            "chair": {"name": "นายสมชาย ใจดี", "position": "ผู้อำนวยการสำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1"},
            "secretary": {"name": "นางสาวสมศรี รักงาน", "position": "ผู้อำนวยการกลุ่มอำนวยการ"},
        },
        "agenda": [
            {"number": 1, "title": SECTION_TITLES[0], "entries": [item("1.1", "นโยบายการจัดการศึกษาปีงบประมาณ 2570", "ประธาน")]},
            {"number": 2, "title": SECTION_TITLES[1], "entries": []},
            {"number": 3, "title": SECTION_TITLES[2], "entries": []},
            {"number": 4, "title": SECTION_TITLES[3], "entries": for_information},
            {"number": 5, "title": SECTION_TITLES[4], "entries": [item("5.1", "การจัดสรรงบประมาณค่าซ่อมแซมอาคารเรียน", "ผู้อำนวยการกลุ่มนโยบายและแผน")]},
            {"number": 6, "title": SECTION_TITLES[5], "entries": []},
        ],
        "letter": {
            "number": "ศธ ๐๔๐๙๙/ว ๑๒๓",
            "date": date(2026, 11, 17),
            "subject": "ขอเชิญประชุมผู้บริหารสถานศึกษา ครั้งที่ 11/2569",
            "to": "ผู้บริหารสถานศึกษาทุกแห่ง",
            "reference": "หนังสือสำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1 ที่ ศธ ๐๔๐๙๙/ว ๑๐๐ ลงวันที่ 1 ตุลาคม 2569",
            "enclosures": ["ระเบียบวาระการประชุม จำนวน 1 ชุด", "แบบตอบรับการเข้าร่วมประชุม จำนวน 1 ฉบับ"],
            "body": [
                "ด้วยสำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1 กำหนดจัดการประชุมผู้บริหารสถานศึกษา "
                "ครั้งที่ 11/2569 ในวันพุธที่ 25 พฤศจิกายน 2569 เวลา 09.00 น. ณ ห้องประชุมดอยสุเทพ ชั้น 2 "
                "สำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1",
                "จึงเรียนมาเพื่อโปรดทราบ และเข้าร่วมประชุมตามวัน เวลา และสถานที่ดังกล่าว",
            ],
            "signer": {"name": "นายสมชาย ใจดี", "position": "ผู้อำนวยการสำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต 1"},
            "contact": {"unit": "กลุ่มอำนวยการ", "phone": "0 5311 2333 ต่อ 101", "fax": "0 5311 2334", "email": "saraban@cmarea1.go.th"},
        },
    }


def docx_text(path: Path) -> str:
    document = Document(str(path))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join([paragraph.text for paragraph in document.paragraphs] + cells)


def embedded_fonts(pdf: Path) -> set[str]:
    """The fonts the PDF's pages use, without the subset prefix (`ABCDEF+Sarabun`)."""
    fonts = set()
    for page in PdfReader(pdf).pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]).split("+")[-1])
    return fonts


def test_agenda_pdf_has_the_thai_title_date_and_sections(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = context(tmp_path)
    data["agenda"][0]["entries"][0]["text"] = "ย่อหน้าแรกของเรื่อง\n\nย่อหน้าที่สองของเรื่อง"

    rendered = render_files("agenda", data, tmp_path, TEMPLATES)

    text = folded(pdf_text(rendered.pdf))
    assert folded("ระเบียบวาระการประชุมผู้บริหารสถานศึกษา ครั้งที่ ๑๑/๒๕๖๙") in text
    assert folded("วันพุธที่ ๒๕ พฤศจิกายน ๒๕๖๙ เวลา ๐๙.๐๐ น.") in text
    assert folded("ณ ห้องประชุมดอยสุเทพ ชั้น ๒") in text
    for number, title in enumerate(SECTION_TITLES, start=1):
        assert folded(f"ระเบียบวาระที่ {thai_digits(number)} {title}".replace("10/2569", "๑๐/๒๕๖๙")) in text
    assert folded("๔.๑ กลุ่มอำนวยการ") in text and folded("๔.๔.๒ การดำเนินงานของกลุ่มส่งเสริมการจัดการศึกษา") in text
    assert text.count(folded("- ไม่มี -")) == 3  # sections 2, 3 and 6 are empty
    assert not re.search(r"[0-9]", re.sub(r"[\d-]+\.pdf", "", text)), "Arabic digits outside file names"
    assert folded("ย่อหน้าแรกของเรื่อง ย่อหน้าที่สองของเรื่อง") in text
    assert ink(page_image(rendered.pdf, "agenda-page-1")) > 0.01
    assert embedded_fonts(rendered.pdf) == {"Sarabun", "Sarabun-Bold"}  # the templates' own font, no fallback
    assert not [record for record in caplog.records if ".notdef" in record.getMessage()]


def test_arabic_digits_when_the_office_does_not_use_thai_digits(tmp_path: Path) -> None:
    rendered = render_files("agenda", context(tmp_path, thai_digits=False), tmp_path, TEMPLATES)

    text = folded(pdf_text(rendered.pdf))
    assert folded("ครั้งที่ 11/2569") in text and folded("วันพุธที่ 25 พฤศจิกายน 2569 เวลา 09.00 น.") in text


def test_agenda_docx_has_the_texts_in_the_thai_font(tmp_path: Path) -> None:
    rendered = render_files("agenda", context(tmp_path), tmp_path, TEMPLATES)

    text = docx_text(rendered.docx)
    assert "ระเบียบวาระการประชุมผู้บริหารสถานศึกษา ครั้งที่ ๑๑/๒๕๖๙" in text
    assert "วันพุธที่ ๒๕ พฤศจิกายน ๒๕๖๙ เวลา ๐๙.๐๐ น." in text
    assert "ระเบียบวาระที่ ๔\u00a0\u00a0เรื่องเพื่อทราบ" in text
    assert "๔.๓.๑\u00a0\u00a0การดำเนินงานของกลุ่มนโยบายและแผน เรื่องที่ ๑" in text
    defaults = Document(str(rendered.docx)).styles.element.find(f"{qn('w:docDefaults')}/{qn('w:rPrDefault')}/{qn('w:rPr')}")
    fonts = defaults.find(qn("w:rFonts"))
    assert {fonts.get(qn(f"w:{kind}")) for kind in ("ascii", "hAnsi", "eastAsia", "cs")} == {"TH SarabunPSK"}
    assert defaults.find(qn("w:sz")).get(qn("w:val")) == defaults.find(qn("w:szCs")).get(qn("w:val")) == "32"
    title = Document(str(rendered.docx)).paragraphs[0]
    assert title.alignment == 1 and title.runs[0].font.bold and title.runs[0].font.cs_bold


def test_invitation_letter_in_the_official_layout(tmp_path: Path) -> None:
    rendered = render_files("invitation", context(tmp_path), tmp_path, TEMPLATES)

    text = folded(pdf_text(rendered.pdf))
    for expected in [
        "ที่ ศธ ๐๔๐๙๙/ว ๑๒๓",
        "สำนักงานเขตพื้นที่การศึกษาประถมศึกษาเชียงใหม่ เขต ๑",
        "๑๗ พฤศจิกายน ๒๕๖๙",
        "เรื่อง ขอเชิญประชุมผู้บริหารสถานศึกษา ครั้งที่ ๑๑/๒๕๖๙",
        "เรียน ผู้บริหารสถานศึกษาทุกแห่ง",
        "อ้างถึง",
        "สิ่งที่ส่งมาด้วย",
        "๒. แบบตอบรับการเข้าร่วมประชุม",
        "ในวันพุธที่ ๒๕ พฤศจิกายน ๒๕๖๙ เวลา ๐๙.๐๐ น.",
        "ขอแสดงความนับถือ",
        "(นายสมชาย ใจดี)",
        "โทร. ๐ ๕๓๑๑ ๒๓๓๓ ต่อ ๑๐๑",
        "ไปรษณีย์อิเล็กทรอนิกส์ saraban@cmarea1.go.th",
    ]:
        assert folded(expected) in text, expected
    assert ink(page_image(rendered.pdf, "invitation-page-1")) > 0.01

    document = Document(str(rendered.docx))
    assert len(document.inline_shapes) == 1  # the emblem
    date_line = next(paragraph for paragraph in document.paragraphs if paragraph.text == "๑๗ พฤศจิกายน ๒๕๖๙")
    assert round(date_line.paragraph_format.left_indent.cm, 2) == 7.5  # from document.css, as in the PDF
    text = docx_text(rendered.docx)
    assert "เรื่อง\u00a0\u00a0ขอเชิญประชุมผู้บริหารสถานศึกษา ครั้งที่ ๑๑/๒๕๖๙" in text
    assert "ที่ ศธ ๐๔๐๙๙/ว ๑๒๓" in text and "(นายสมชาย ใจดี)" in text


def test_letter_without_number_or_emblem_leaves_the_space(tmp_path: Path) -> None:
    data = context(tmp_path)
    data["letter"]["number"] = ""
    data["letter"]["reference"] = None
    del data["office"]["emblem"]

    rendered = render_files("invitation", data, tmp_path, TEMPLATES)

    text = pdf_text(rendered.pdf)
    assert re.search(r"ที่ ศธ ๐๔๐๙๙/\s", text)
    assert folded("อ้างถึง") not in folded(text)
    assert len(Document(str(rendered.docx)).inline_shapes) == 0


def one_page_pdfs(folder: Path, count: int) -> list[tuple[str, Path]]:
    """Attachments as departments send them: one A4 page each, some landscape, some
    scanned sideways and turned upright by the viewer (/Rotate 90)."""
    attachments = []
    for n in range(1, count + 1):
        path = folder / f"attachment-{n}.pdf"
        size = "A4 landscape" if n % 3 == 0 else "A4"
        HTML(string=f"<style>@page{{size:{size}}}</style><h1>Attachment {n}</h1>").write_pdf(path)
        if n % 3 == 2:
            writer = PdfWriter(clone_from=path)
            writer.pages[0].rotate(90)
            writer.write(path)
        attachments.append((f"เอกสารประกอบ {n}", path))
    return attachments


def test_pack_numbers_every_page_and_bookmarks_each_part(tmp_path: Path) -> None:
    agenda = render_files("agenda", context(tmp_path, items_per_group=8), tmp_path, TEMPLATES).pdf
    agenda_pages = len(PdfReader(agenda).pages)
    attachments = one_page_pdfs(tmp_path, 3)

    pack = pack_file(agenda, attachments, tmp_path / "pack.pdf", templates=TEMPLATES, thai_digits=True)

    reader = PdfReader(pack)
    assert agenda_pages > 1 and len(reader.pages) == agenda_pages + 3
    for number in range(1, len(reader.pages) + 1):
        assert bottom_line(pdf_text(pack, number)) == f"-{thai_digits(number)}-", number
    assert "Attachment 3" in pdf_text(pack, agenda_pages + 3)
    titles = [entry.title for entry in reader.outline]
    assert titles == ["ระเบียบวาระการประชุมผู้บริหารสถานศึกษา ครั้งที่ ๑๑/๒๕๖๙"] + [title for title, _ in attachments]
    assert ink(page_image(pack, "pack-last-page", len(reader.pages))) > 0.001


def test_pack_with_arabic_numbers(tmp_path: Path) -> None:
    agenda = render_files("agenda", context(tmp_path, thai_digits=False), tmp_path, TEMPLATES).pdf
    pack = pack_file(agenda, one_page_pdfs(tmp_path, 1), tmp_path / "pack.pdf", templates=TEMPLATES)

    last = len(PdfReader(pack).pages)
    assert bottom_line(pdf_text(pack, last)) == f"-{last}-"


def test_forty_items_and_a_forty_attachment_pack_render_in_seconds(tmp_path: Path) -> None:
    """Timing of the largest meeting we expect; printed for the record (pytest -s)."""
    data = context(tmp_path, items_per_group=10)
    started = time.perf_counter()
    agenda = render_files("agenda", data, tmp_path, TEMPLATES).pdf
    rendered = time.perf_counter()
    attachments = one_page_pdfs(tmp_path, 40)
    prepared = time.perf_counter()
    pack = pack_file(agenda, attachments, tmp_path / "pack.pdf", templates=TEMPLATES, thai_digits=True)
    packed = time.perf_counter()

    pages = len(PdfReader(pack).pages)
    print(f"\nagenda with 42 items (PDF+DOCX): {rendered - started:.2f} s; "
          f"pack of {pages} pages: {packed - prepared:.2f} s")
    assert rendered - started < 30 and packed - prepared < 30

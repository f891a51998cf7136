"""How long the papers take: an agenda of N items and a pack with N one-page PDF attachments.

Run on demand: `python3 bench/render_papers.py [N]` (default 40). Prints the
median of five runs of each step and the process's peak memory. WeasyPrint
is loaded before timing, so the figures are rendering, not imports.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

from service.config import PROJECT_ROOT
from service.documents.render import render_document, render_pack

TEMPLATES = PROJECT_ROOT / "templates"
SAMPLE_PDF = PROJECT_ROOT / "service" / "demo" / "attachments" / "แผนปฏิบัติการ.pdf"


def context(items: int) -> dict:
    start = datetime(2026, 12, 16, 9, tzinfo=ZoneInfo("Asia/Bangkok"))
    groups = [
        {"number": f"4.{g + 1}", "title": f"กลุ่มที่ {g + 1}", "entries": [
            {"number": f"4.{g + 1}.{n + 1}", "title": f"เรื่องที่ {n + 1} ของกลุ่มที่ {g + 1} รายงานผลการดำเนินงาน",
             "text": "รายละเอียดตามเอกสารแนบ", "presenter": f"กลุ่มที่ {g + 1}", "attachments": ["เอกสาร.pdf"]}
            for n in range(items // 8)
        ]}
        for g in range(8)
    ]
    return {
        "office": {"name": "สำนักงานเขตพื้นที่การศึกษาประถมศึกษาตัวอย่าง เขต ๑", "address": "ถนนราชดำเนิน", "code": "ศธ ๐๔๐๙๙",
                   "unit": "กลุ่มอำนวยการ", "phone": "๐ ๒๑๒๓ ๔๕๖๗", "fax": "", "email": "meeting@office.go.th", "thai_digits": True},
        "meeting": {"title": "การประชุมผู้บริหารสถานศึกษา", "number": 11, "year_be": 2569, "start": start, "end": start,
                    "place": "ห้องประชุมใหญ่", "chair": {"name": "นายประเสริฐ วงศ์ใหญ่", "position": "ผู้อำนวยการ"},
                    "secretary": {"name": "นางวิไลวรรณ ศรีสุข", "position": "รองผู้อำนวยการ"}},
        "agenda": [{"number": 1, "title": "เรื่องที่ประธานแจ้งให้ที่ประชุมทราบ", "entries": []},
                   {"number": 4, "title": "เรื่องเพื่อทราบ", "entries": groups}],
        "letter": {"number": "", "date": date(2026, 12, 9), "subject": "ขอเชิญประชุม", "to": "ผู้บริหารสถานศึกษาทุกแห่ง",
                   "enclosures": ["ระเบียบวาระการประชุม"], "body": ["ด้วย…", "จึงเรียนมาเพื่อโปรดทราบ"],
                   "signer": {"name": "นายประเสริฐ วงศ์ใหญ่", "position": "ผู้อำนวยการ"}, "contact": {"unit": "กลุ่มอำนวยการ"}},
        "thai": True,
    }


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def main(items: int) -> None:
    papers = context(items)
    agenda_times, letter_times, pack_times = [], [], []
    for _ in range(5):
        agenda_times.append(timed(lambda: render_document("agenda", papers, TEMPLATES)))
        letter_times.append(timed(lambda: render_document("invitation", papers, TEMPLATES)))
    agenda_pdf = render_document("agenda", papers, TEMPLATES).pdf
    attachments = [(f"4.{n}", SAMPLE_PDF.read_bytes()) for n in range(items)]
    for _ in range(5):
        pack_times.append(timed(lambda: render_pack(agenda_pdf, attachments, templates=TEMPLATES, thai_digits=True)))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"agenda of {items} items, PDF + DOCX: median {statistics.median(agenda_times):.2f} s")
    print(f"invitation letter, PDF + DOCX:      median {statistics.median(letter_times):.2f} s")
    print(f"pack: agenda + {items} PDFs:          median {statistics.median(pack_times):.2f} s")
    print(f"peak memory of the process:         {peak_mb:.0f} MB")

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)

"""The meeting's documents as PDF (to read and sign) and DOCX (to edit in Word).

Each document is one jinja2 HTML template in `templates/documents/`: WeasyPrint
lays it out as PDF, and the same HTML is turned into a DOCX paragraph by
paragraph, with formats from the same stylesheet (`document.css`), so an office
changes wording and layout in one place and both files always say the same.

The meeting pack (`render_pack`) is the agenda followed by each item's PDF
attachment, every page numbered and each part bookmarked.

Rendering gives bytes; keeping them, each call a new version, is the store's
(`documents.filing`), so that every machine running the office has them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import tinycss2
from docx import Document
from docx.document import Document as WordDocument
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_ROW_HEIGHT_RULE
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Length, Mm, Pt
from docx.text.paragraph import Paragraph
from lxml import html
from pypdf import PageObject, PdfReader, PdfWriter, Transformation
from weasyprint import HTML

from .environment import environment


@dataclass(frozen=True)
class Rendered:
    """One document, both ways."""

    pdf: bytes
    docx: bytes


def render_document(name: str, context: dict, templates: Path) -> Rendered:
    """The template `documents/<name>.html.j2` (ระเบียบวาระ, หนังสือเชิญ, minutes, sign-in sheet …) as PDF and DOCX."""
    markup = environment(templates).get_template(f"documents/{name}.html.j2").render(context)
    base = templates / "documents"
    pdf = HTML(string=markup, base_url=str(base) + "/").write_pdf()
    docx = BytesIO()
    _Docx(_stylesheet(base / "document.css"), base).build(markup).save(docx)
    return Rendered(pdf=pdf, docx=docx.getvalue())


def render_pack(agenda_pdf: bytes, attachments: list[tuple[str, bytes]], *, templates: Path, thai_digits: bool = False) -> bytes:
    """The agenda, then each (bookmark title, PDF) attachment in order, pages numbered.

    The numbers run through the whole pack ("- ๓ -" with Thai digits), so people at
    the meeting can say which page they mean. The agenda's bookmark is its PDF title.
    """
    writer = PdfWriter()
    agenda = PdfReader(BytesIO(agenda_pdf))
    writer.append(agenda, outline_item=agenda.metadata.title if agenda.metadata else None, import_outline=False)
    for title, data in attachments:
        writer.append(BytesIO(data), outline_item=title, import_outline=False)
    stamps = PdfReader(BytesIO(_page_number_stamps(len(writer.pages), templates, thai_digits))).pages
    for page, stamp in zip(writer.pages, stamps):
        _stamp_bottom_centre(page, stamp)
    output = BytesIO()
    writer.write(output)
    return output.getvalue()


def _page_number_stamps(count: int, templates: Path, thai_digits: bool) -> bytes:
    """One small PDF page per page number, rendered in one go with the documents' font."""
    markup = environment(templates).get_template("documents/page_numbers.html.j2").render(
        numbers=range(1, count + 1), thai=thai_digits
    )
    return HTML(string=markup, base_url=str(templates / "documents") + "/").write_pdf()


STAMP_RISE = 0.7 / 2.54 * 72  # points: the number sits 1–1.7 cm above the bottom edge, below the 2 cm margin


def _stamp_bottom_centre(page: PageObject, stamp: PageObject) -> None:
    """Lay the stamp over the page's bottom centre, whatever the page's size and rotation."""
    if page.rotation:
        page.transfer_rotation_to_content()
    box, size = page.cropbox, stamp.mediabox  # the crop box is the part a viewer shows
    x = float(box.left) + (float(box.width) - float(size.width)) / 2
    y = float(box.bottom) + STAMP_RISE
    page.merge_transformed_page(stamp, Transformation().translate(x, y))


# --- DOCX -------------------------------------------------------------------------------

BLOCKS = {"div", "p", "h1", "h2", "h3", "table"}
INHERITED = {"text-align", "font-weight", "font-size"}
ALIGNMENTS = {
    "left": WD_ALIGN_PARAGRAPH.LEFT,
    "center": WD_ALIGN_PARAGRAPH.CENTER,
    "right": WD_ALIGN_PARAGRAPH.RIGHT,
    "justify": WD_ALIGN_PARAGRAPH.THAI_JUSTIFY,  # Thai has few spaces to stretch: Word spreads the letters
}
PARAGRAPH_LENGTHS = {
    "margin-left": "left_indent",
    "margin-right": "right_indent",
    "text-indent": "first_line_indent",
    "margin-top": "space_before",
    "margin-bottom": "space_after",
}


def _stylesheet(path: Path) -> dict[str, dict[str, str]]:
    """The declarations of each simple selector (`h1`, `.date`, `@page`) in the CSS file."""
    rules: dict[str, dict[str, str]] = {}
    for rule in tinycss2.parse_stylesheet(path.read_text(encoding="utf-8"), skip_comments=True, skip_whitespace=True):
        prelude = tinycss2.serialize(rule.prelude).strip()
        if rule.type == "qualified-rule":
            selectors = [selector.strip() for selector in prelude.split(",")]
        elif rule.type == "at-rule" and rule.lower_at_keyword == "page" and not prelude:
            selectors = ["@page"]
        else:
            continue
        declarations: dict[str, str] = {}
        for item in tinycss2.parse_blocks_contents(rule.content, skip_comments=True, skip_whitespace=True):
            if item.type == "declaration":
                declarations |= _longhand(item.lower_name, tinycss2.serialize(item.value).strip())
        for selector in selectors:
            rules.setdefault(selector, {}).update(declarations)
    return rules


def _longhand(name: str, value: str) -> dict[str, str]:
    """`margin: 2.5cm 2cm` spelt out per side, as CSS reads it; other declarations as they are."""
    if name != "margin":
        return {name: value}
    parts = value.split()
    top = parts[0]
    right = parts[1] if len(parts) > 1 else top
    bottom = parts[2] if len(parts) > 2 else top
    left = parts[3] if len(parts) > 3 else right
    return dict(zip(("margin-top", "margin-right", "margin-bottom", "margin-left"), (top, right, bottom, left)))


def _length(value: str) -> Length | None:
    """A CSS length in cm, mm or pt (or 0); None for anything else, which Word leaves alone."""
    match = re.fullmatch(r"(-?[\d.]+)(cm|mm|pt)?", value)
    if not match or (match[2] is None and float(match[1]) != 0):
        return None
    return {"cm": Cm, "mm": Mm, "pt": Pt, None: Pt}[match[2]](float(match[1]))


def _size(run_properties, size: Length) -> None:
    """Font size for Latin (`w:sz`) and for complex scripts such as Thai (`w:szCs`)."""
    half_points = str(round(size.pt * 2))
    for tag in ("w:sz", "w:szCs"):
        element = run_properties.find(qn(tag))
        if element is None:
            element = OxmlElement(tag)
            run_properties.append(element)
        element.set(qn("w:val"), half_points)


class _Docx:
    """Builds a Word document from a rendered document's HTML and its stylesheet.

    It knows the few elements the document templates use (p, h1–h3, div, table,
    br, b/strong, span, img) and gives each the formats of the rules for its tag
    and its classes, so the DOCX follows the same template as the PDF.
    """

    def __init__(self, rules: dict[str, dict[str, str]], base: Path):
        self.rules = rules
        self.base = base

    def build(self, markup: str) -> WordDocument:
        document = Document()
        body = html.document_fromstring(markup).find("body")
        self._page(document, self.style(body))
        self._thai_defaults(document)
        self._blocks(body, document, self.style(body))  # the `html` rule went into the defaults
        return document

    def style(self, element, inherited: dict[str, str] | None = None) -> dict[str, str]:
        """The inherited declarations, then those for the element's tag and each of its classes."""
        style = {key: value for key, value in (inherited or {}).items() if key in INHERITED}
        style |= self.rules.get(element.tag, {})
        for name in element.get("class", "").split():
            style |= self.rules.get(f".{name}", {})
        return style

    def _page(self, document: WordDocument, body: dict[str, str]) -> None:
        """A4 (the regulation's paper) with the stylesheet's `@page` margins, on its side
        when the body's rules say `--docx-orientation: landscape` (a wide table)."""
        section = document.sections[0]
        section.page_width, section.page_height = Mm(210), Mm(297)
        if body.get("--docx-orientation") == "landscape":
            section.orientation = WD_ORIENT.LANDSCAPE
            section.page_width, section.page_height = Mm(297), Mm(210)
        page = self.rules.get("@page", {})
        for side in ("top", "right", "bottom", "left"):
            if (length := _length(page.get(f"margin-{side}", ""))) is not None:
                setattr(section, f"{side}_margin", length)

    def _thai_defaults(self, document: WordDocument) -> None:
        """The document's default font for every script, single spacing, Thai language.

        Word draws Thai with the complex-script font (`w:cs`) at the complex-script size
        (`w:szCs`): setting only the Latin font leaves Thai in Word's own default font.
        """
        page_font = self.rules.get("html", {})
        font = page_font.get("--docx-font", "TH SarabunPSK").strip("\"'")
        defaults = document.styles.element.find(qn("w:docDefaults"))
        run_defaults = defaults.find(f"{qn('w:rPrDefault')}/{qn('w:rPr')}")
        run_defaults.clear()
        scripts = ("ascii", "hAnsi", "eastAsia", "cs")
        run_defaults.append(OxmlElement("w:rFonts", {qn(f"w:{script}"): font for script in scripts}))
        _size(run_defaults, _length(page_font.get("font-size", "16pt")) or Pt(16))
        language = {qn("w:val"): "th-TH", qn("w:eastAsia"): "en-US", qn("w:bidi"): "th-TH"}
        run_defaults.append(OxmlElement("w:lang", language))
        spacing = defaults.find(f"{qn('w:pPrDefault')}/{qn('w:pPr')}/{qn('w:spacing')}")
        spacing.attrib.clear()
        spacing.attrib.update({qn("w:after"): "0", qn("w:line"): "240", qn("w:lineRule"): "auto"})

    def _blocks(self, element, container, inherited: dict[str, str]) -> None:
        """Each block child as a paragraph or a table of the container (document or cell)."""
        for child in element:
            if child.tag not in BLOCKS:
                continue
            style = self.style(child, inherited)
            if child.tag == "table":
                self._table(child, container, style)
            elif _has_blocks(child):
                self._blocks(child, container, style)
            else:
                self._paragraph(child, container.add_paragraph(), style)

    def _paragraph(self, element, paragraph: Paragraph, style: dict[str, str]) -> None:
        if alignment := ALIGNMENTS.get(style.get("text-align", "")):
            paragraph.alignment = alignment
        for css, attribute in PARAGRAPH_LENGTHS.items():
            if (length := _length(style.get(css, ""))) is not None:
                setattr(paragraph.paragraph_format, attribute, length)
        runs = _Runs(self, paragraph)
        runs.add(element, style)
        runs.trim_end()

    def _table(self, element, container, style: dict[str, str]) -> None:
        """A borderless table (the letterhead, the enclosures): rows of cells with widths.

        Its cells have no inner margins, like the stylesheet's `td`, so that text in the
        first column lines up with the paragraphs above and below. A table whose rules set
        `--docx-borders` (a width) is ruled like the PDF's, with `--docx-cell-padding`
        inside its cells; a cell's `--docx-row-height` makes its row at least that tall
        (room to write in); rows in `thead` repeat at the top of each page.
        """
        trs = list(element.iter("tr"))
        rows = [row.findall("td") for row in trs]
        table = container.add_table(rows=len(rows), cols=max(len(cells) for cells in rows))
        padding = str((_length(style.get("--docx-cell-padding", "")) or Pt(0)).twips)
        margins = OxmlElement("w:tblCellMar")
        for side in ("left", "right"):
            margins.append(OxmlElement(f"w:{side}", {qn("w:w"): padding, qn("w:type"): "dxa"}))
        table._tbl.tblPr.find(qn("w:tblLook")).addprevious(margins)  # Word wants them in schema order
        if rule := _length(style.get("--docx-borders", "")):
            line = {qn("w:val"): "single", qn("w:sz"): str(round(rule.pt * 8)), qn("w:space"): "0", qn("w:color"): "000000"}
            borders = OxmlElement("w:tblBorders")
            for side in ("top", "left", "bottom", "right", "insideH", "insideV"):
                borders.append(OxmlElement(f"w:{side}", line))
            margins.addprevious(borders)
        for tr, cells, row in zip(trs, rows, table.rows):
            for td, cell, column in zip(cells, row.cells, table.columns):
                cell_style = self.style(td, style)
                if width := _length(cell_style.get("width", "")):
                    cell.width = column.width = width  # Word reads the cell's, LibreOffice the column's
                if height := _length(cell_style.get("--docx-row-height", "")):
                    row.height, row.height_rule = max(height, row.height or 0), WD_ROW_HEIGHT_RULE.AT_LEAST
                if _has_blocks(td):
                    self._blocks(td, cell, cell_style)
                    cell._element.remove(cell.paragraphs[0]._element)  # the empty one every new cell has
                else:
                    self._paragraph(td, cell.paragraphs[0], cell_style)
            if tr.getparent().tag == "thead":
                row._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))


def _has_blocks(element) -> bool:
    return any(child.tag in BLOCKS for child in element)


class _Runs:
    """The inline content of one paragraph as Word runs, with HTML's whitespace rules."""

    def __init__(self, builder: _Docx, paragraph: Paragraph):
        self.builder = builder
        self.paragraph = paragraph
        self.line_start = True

    def add(self, element, style: dict[str, str]) -> None:
        """The element's text and inline children; b/strong and classes may make text bold."""
        self._text(element.text, style)
        for child in element:
            if child.tag == "br":
                self.paragraph.add_run().add_break()
                self.line_start = True
            elif child.tag == "img":
                self._image(child)
            elif isinstance(child.tag, str):
                child_style = self.builder.style(child, style)
                if child.tag in ("b", "strong"):
                    child_style["font-weight"] = "bold"
                self.add(child, child_style)
            self._text(child.tail, style)

    def trim_end(self) -> None:
        if self.paragraph.runs and self.paragraph.runs[-1].text.endswith(" "):
            self.paragraph.runs[-1].text = self.paragraph.runs[-1].text.rstrip(" ")

    def _text(self, text: str | None, style: dict[str, str]) -> None:
        text = re.sub(r"[ \t\r\n]+", " ", text or "")
        if self.line_start:
            text = text.lstrip(" ")
        if not text:
            return
        self.line_start = False
        run = self.paragraph.add_run(text)
        if style.get("font-weight") in ("bold", "700"):
            run.font.bold = True
            run.font.cs_bold = True
        if size := _length(style.get("font-size", "")):
            _size(run._element.get_or_add_rPr(), size)

    def _image(self, img) -> None:
        height = _length(self.builder.style(img).get("height", ""))
        self.paragraph.add_run().add_picture(str(self.builder.base / img.get("src")), height=height)
        self.line_start = False

"""Rendered documents as files, for the tools that read files (pdftotext, pdftoppm, python-docx by path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.documents.render import render_document, render_pack


@dataclass(frozen=True)
class Files:
    pdf: Path
    docx: Path


def render_files(name: str, context: dict, folder: Path, templates: Path) -> Files:
    """The document `name` rendered and written into `folder` as `<name>.pdf` and `<name>.docx`."""
    rendered = render_document(name, context, templates)
    folder.mkdir(parents=True, exist_ok=True)
    files = Files(pdf=folder / f"{name}.pdf", docx=folder / f"{name}.docx")
    files.pdf.write_bytes(rendered.pdf)
    files.docx.write_bytes(rendered.docx)
    return files


def pack_file(agenda: Path, attachments: list[tuple[str, Path]], output: Path, *, templates: Path, thai_digits: bool = False) -> Path:
    """The agenda pack of files, written to `output`."""
    parts = [(title, path.read_bytes()) for title, path in attachments]
    output.write_bytes(render_pack(agenda.read_bytes(), parts, templates=templates, thai_digits=thai_digits))
    return output

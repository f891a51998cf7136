"""The jinja2 environment every e-mail and document is rendered with.

Templates live in the office's `templates/` folder, so an office changes
wording and layout by editing files, not code. HTML templates (`*.html.j2`)
are autoescaped; text templates are not.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import nh3
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from .thai import digits, english_date, thai_date, thai_digits


@lru_cache(maxsize=8)
def environment(templates: Path) -> Environment:
    """One shared environment per templates folder (jinja2 caches compiled templates in it)."""
    env = Environment(
        loader=FileSystemLoader(str(templates)),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(thai_date=thai_date, thai_digits=thai_digits, digits=digits, english_date=english_date, clean=clean)
    return env


def note(templates: Path, language: str, name: str, /, **values: object) -> str:
    """One line for the clerk (the digest, `secretary status`), worded by the macro `name` of `email/<language>/notes.j2`."""
    macros = environment(templates).get_template(f"email/{language}/notes.j2").module
    return " ".join(str(getattr(macros, name)(**values)).split())


def clean(value: object) -> Markup:
    """What a sender wrote, made safe to show in our HTML: every tag and script removed by nh3, the text kept."""
    return Markup(nh3.clean(str(value), tags=set()))

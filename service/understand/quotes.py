"""What the sender wrote in this message: no quoted history, no signature.

Everything that reads free text (answers to invitations, approvals, agenda
submissions) reads only this. A reply quotes our own invitation, and the
invitation's words ("ขอเชิญเข้าร่วมประชุม", "กรุณายืนยันเข้าร่วม") would
otherwise read as the sender's answer.

mail-parser-reply splits a body at the headers mail clients write above
quoted history ("On … wrote:", Outlook's "From: … Sent: …" block) in many
languages, but not Thai; the Thai headers, and separators it lacks, come from
the `quotes:` section of each rules/replies-<language>.yaml. Its signature
removal is not used: it drops everything after any line starting "Thanks,"
or "- ", which can be the answer itself. Ours cuts only at a signature marker
("-- ", "Sent from my iPhone") or at a closing followed by nothing but a short
name block.

The rules files are read here, once each, for every reader of free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from inscriptis import Inscriptis
from lxml import etree, html as lxml_html
from mailparser_reply import EmailMessage

from ..config import PROJECT_ROOT
from ..mail.message import InboundMessage, decode_text
from ..rulefiles import RuleError, read_rule_file

RULES = PROJECT_ROOT / "rules"

#: HTML elements that hold quoted history and nothing else (Gmail, Apple Mail, Thunderbird, Yahoo).
QUOTE_CONTAINERS = (
    "//blockquote",
    "//div[contains(@class, 'gmail_quote')]",
    "//div[contains(@class, 'yahoo_quoted')]",
)

#: Outlook on the web and new Outlook put the quoted header and the quoted
#: message *after* these markers as siblings, not inside them.
HISTORY_MARKERS = ("//*[@id='appendonsend']", "//*[@id='divRplyFwdMsg']")

#: A closing ("ขอแสดงความนับถือ", "Best regards,") ends the text only when at
#: most this many short lines follow it: a name, a position, a school, a phone.
NAME_BLOCK_LINES = 6
NAME_BLOCK_WIDTH = 80


@dataclass(frozen=True)
class QuoteMarkers:
    """How mail clients, in all our languages, mark quoted history and signatures."""

    headers: str
    signatures: tuple[re.Pattern[str], ...]
    closings: tuple[re.Pattern[str], ...]


def new_text(message: InboundMessage, rules: Path = RULES) -> str:
    """Only what the sender wrote in this message."""
    if message.html and not _has_plain_body(message):
        return strip_quoted(_text_without_quoted_html(message.html), rules)
    return strip_quoted(message.text, rules)


def strip_quoted(text: str, rules: Path = RULES) -> str:
    """Plain text without the history it quotes and without the signature.

    Top-posted replies (nearly all Thai office mail) keep what comes before
    the first quote header. When the text starts with a header followed by
    '>' lines, the sender answered below or between the quotes, so the
    unquoted lines after it are the answer. A header with no text before it
    and no '>' lines after it (an Outlook reply with an empty body) means the
    sender wrote nothing.
    """
    markers = quote_markers(rules)
    splitter = _Splitter(text=text, more_headers=markers.headers)
    first = splitter.read().replies[0]
    if not first.headers:
        written = first.content
    else:
        after = splitter.text[splitter.text.find(first.headers) + len(first.headers):]
        written = strip_quoted(_unquoted(after), rules) if _starts_quoted(after) else ""
    kept = _without_signature(_unquoted(written), markers)
    return re.sub(r"\n\s*\n(?:\s*\n)+", "\n\n", kept).strip()


@dataclass
class _Splitter(EmailMessage):
    """mail-parser-reply's splitter, also splitting at our own headers."""

    more_headers: str = ""

    @property
    def HEADER_REGEX(self) -> re.Pattern[str]:
        theirs = EmailMessage.HEADER_REGEX.fget(self)
        if not self.more_headers:
            return theirs
        return re.compile(f"{theirs.pattern}|{self.more_headers}", theirs.flags)


def _unquoted(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))


def _starts_quoted(text: str) -> bool:
    lines = [line for line in text.split("\n") if line.strip()]
    return bool(lines) and lines[0].lstrip().startswith(">")


def _without_signature(text: str, markers: QuoteMarkers) -> str:
    lines = text.split("\n")
    for number, line in enumerate(lines):
        bare = line.strip()
        if any(pattern.fullmatch(bare) for pattern in markers.signatures) or (
            any(pattern.fullmatch(bare) for pattern in markers.closings) and _is_name_block(lines[number + 1 :])
        ):
            return "\n".join(lines[:number])
    return text


def _is_name_block(lines: list[str]) -> bool:
    filled = [line for line in lines if line.strip()]
    return len(filled) <= NAME_BLOCK_LINES and all(len(line) <= NAME_BLOCK_WIDTH for line in filled)


def _has_plain_body(message: InboundMessage) -> bool:
    plain = message.message.get_body(preferencelist=("plain",))
    return plain is not None and bool((decode_text(plain) or "").strip())


def _text_without_quoted_html(html: str) -> str:
    """The HTML body as text, after removing the elements that hold quoted history."""
    try:
        tree = lxml_html.document_fromstring(re.sub(r"^\s*<\?xml[^>]*>", "", html))
    except (etree.ParserError, ValueError):
        return ""
    for path in QUOTE_CONTAINERS:
        for element in tree.xpath(path):
            if element.getparent() is not None:
                element.drop_tree()
    for path in HISTORY_MARKERS:
        for element in tree.xpath(path)[:1]:
            _drop_from(element)
    return Inscriptis(tree).get_text()


def _drop_from(element: lxml_html.HtmlElement) -> None:
    """Remove `element` and everything after it in document order."""
    for node in (element, *element.iterancestors()):
        for sibling in list(node.itersiblings()):
            node.getparent().remove(sibling)
    element.getparent().remove(element)


@lru_cache(maxsize=None)
def quote_markers(rules: Path) -> QuoteMarkers:
    """The `quotes:` sections of all rules/replies-<language>.yaml, read once."""
    headers: list[str] = []
    signatures: list[re.Pattern[str]] = []
    closings: list[re.Pattern[str]] = []
    for path in language_files(rules):
        section = read_rule_file(path).get("quotes") or {}
        if not isinstance(section, dict):
            raise RuleError(f"{path}: `quotes` must map headers, signatures and closings to lists of patterns")
        for number, pattern in enumerate(_patterns(path, section, "headers")):
            if pattern.groups:
                raise RuleError(f"{path}: quotes.headers[{number}]: use (?:…) groups, not capturing ones")
            headers.append(f"({pattern.pattern})")
        signatures += _patterns(path, section, "signatures")
        closings += _patterns(path, section, "closings")
    return QuoteMarkers("|".join(headers), tuple(signatures), tuple(closings))


def _patterns(path: Path, section: dict[str, Any], key: str) -> list[re.Pattern[str]]:
    values = section.get(key) or []
    if not isinstance(values, list):
        raise RuleError(f"{path}: quotes.{key} must be a list of patterns")
    return [compile_rule(path, f"quotes.{key}[{number}]", value) for number, value in enumerate(values)]


def language_files(rules: Path) -> tuple[Path, ...]:
    """One rules file per language, rules/replies-<language>.yaml; adding a language adds a file."""
    files = tuple(sorted(rules.glob("replies-*.yaml")))
    if not files:
        raise RuleError(f"{rules}: no replies-<language>.yaml rules files")
    return files




def compile_rule(path: Path, where: str, pattern: Any) -> re.Pattern[str]:
    """A rule's regular expression (case-insensitive, multi-line), or an error naming the file and the entry."""
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(f"{path}: {where}: a pattern must be a non-empty string")
    try:
        return re.compile(pattern, re.IGNORECASE | re.MULTILINE)
    except re.error as error:
        raise RuleError(f"{path}: {where}: not a valid pattern: {error}") from error

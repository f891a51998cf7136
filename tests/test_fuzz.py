"""Fuzzing: hostile and broken mail never crashes parsing, understanding or filing, and what cannot be read is quarantined.

Hypothesis builds messages the way real mail goes wrong: headers with bad
encoded words and control characters, charsets that lie or do not exist,
transfer encodings that do not decode, multiparts whose boundary is missing
or never closed, iCalendar parts cut short or with nonsense values, reply
keys genuine and forged, and bytes flipped in a good message. Bounded
(`max_examples`, no deadline, no example database) so it runs with the
normal suite.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from helpers import ENV, MAILBOX, SECRET, write_config
from service.config import load
from service.daemon import build
from service.mail.message import InboundMessage, MalformedMessage
from service.pipeline import PROCESSED, QUARANTINED, log_shard
from service.reply_keys import ReplyKey, office_secret
from service.understand import Context, Verdict, understand

# On a developer's machine every run draws new examples, and finds new bugs; under CI (CI=true) the
# examples are derived from the test itself, so a submission's verdict does not depend on the draw.
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=bool(os.environ.get("CI")))
KINDS = {"bounce", "auto_reply", "attendance", "approval", "notes", "progress", "objection", "agenda_item", "unknown"}

SENDERS = ["somchai@school001.example.ac.th", "john.carter@eis.example.ac.th", "policy@office.example.go.th",
           "director@office.example.go.th", "clerk@office.test", "MAILER-DAEMON@mail.example.go.th", "stranger@elsewhere.example.com"]
CHARSETS = ["utf-8", "tis-620", "windows-874", "iso-8859-11", "us-ascii", "latin-1", "utf-16", "utf-7", "gb2312",
            "x-no-such-charset", "", "utf-8\"; x=\"y", "cp874"]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "bogus", ""]
THAI = ["ยืนยันเข้าร่วมประชุมครับ", "ขอลาประชุม ติดราชการ", "เห็นชอบ", "ส่งคืนแก้ไข", "ขอเสนอเรื่องเพื่อพิจารณา",
        "ติดราชการ จึงมอบหมาย นายสมศักดิ์ รักเรียน เข้าร่วมประชุมแทน", "ไม่มีเรื่องเสนอ", "ขอแก้ไขมติวาระที่ 5.1.1"]
KEYS = [ReplyKey(purpose, "sa2569_11", person).token(office_secret(SECRET.encode(), MAILBOX))
        for purpose in ("inv", "conf", "call", "appr", "notes", "circ", "decide", "prog")
        for person in ("p_school_001", "g_policy", "p_director")] + ["inv-sa2569_11-p_school_001-aaaaaaaa"]

words = st.one_of(st.sampled_from(THAI), st.sampled_from(KEYS), st.text(max_size=40),
                  st.sampled_from(["I will attend.", "Cannot attend, sorry.", "On Mon wrote:", "> quoted", "-- ", "=?utf-8?B?", "\x00", "\r"]))
text = st.lists(words, max_size=8).map(" ".join)


@st.composite
def encoded_word(draw) -> str:
    charset = draw(st.sampled_from(CHARSETS)) or "utf-8"
    payload = draw(st.one_of(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_?", max_size=30),
                             st.sampled_from(["4Lii4Li34LiZ4Lii4Lix4LiZ", "=E0=B8=A2", "%%%", ""])))
    return f"=?{charset}?{draw(st.sampled_from(['B', 'Q', 'b', 'x']))}?{payload}?="


header_value = st.one_of(text, encoded_word(), st.lists(st.one_of(text, encoded_word()), max_size=4).map(" ".join),
                         st.text(min_size=200, max_size=2000))


@st.composite
def calendar(draw) -> str:
    lines = ["BEGIN:VCALENDAR", f"METHOD:{draw(st.sampled_from(['REPLY', 'REQUEST', 'COUNTER', 'CANCEL', '', 'X-WHAT']))}",
             "VERSION:2.0", "BEGIN:VEVENT",
             f"UID:{draw(st.sampled_from(['sa2569-11@office.test', 'meeting-m2569-11@office.example.go.th', '', 'x' * 300]))}",
             f"ATTENDEE;PARTSTAT={draw(st.sampled_from(['ACCEPTED', 'DECLINED', 'TENTATIVE', 'DELEGATED', 'NEEDS-ACTION', 'GARBAGE', '']))}"
             f";CN={draw(st.text(max_size=20))}:mailto:{draw(st.sampled_from(SENDERS + ['', 'not an address']))}",
             f"DTSTART;TZID={draw(st.sampled_from(['Asia/Bangkok', 'Mars/Olympus', '']))}:{draw(st.sampled_from(['20261216T090000', '2026', 'nonsense', '']))}",
             f"SEQUENCE:{draw(st.sampled_from(['0', '-1', 'x', '99999999999999999999']))}",
             f"COMMENT:{draw(text)}", "END:VEVENT", "END:VCALENDAR"]
    cut = draw(st.integers(min_value=1, max_value=len(lines)))  # calendars cut short, or whole
    separator = draw(st.sampled_from(["\r\n", "\n", "\r\n "]))  # a folded line in the wrong place, too
    return separator.join(lines[:cut])


def body(draw, charset: str, encoding: str, content: str) -> str:
    """A leaf's body as it goes on the wire: encoded (or not, or wrongly) by its declared encoding."""
    import base64
    import quopri

    try:
        data = content.encode(charset or "utf-8")
    except (LookupError, UnicodeEncodeError):
        data = content.encode("utf-8")
    if draw(st.booleans()):
        data = draw(st.binary(max_size=60)) + data  # bytes no charset expects
    if encoding == "base64":
        wire = base64.b64encode(data).decode()
        return draw(st.sampled_from([wire, wire[:-3], wire + "!!", "not base64 at all"]))
    if encoding == "quoted-printable":
        return quopri.encodestring(data).decode("ascii") + draw(st.sampled_from(["", "=", "=ZZ"]))
    return data.decode("latin-1")


@st.composite
def part(draw, depth: int = 0) -> str:
    """One MIME entity (headers, blank line, body), possibly a multipart holding more."""
    kind = draw(st.sampled_from(["text/plain", "text/html", "text/calendar", "application/pdf", "application/ics",
                                 "message/delivery-status", "message/rfc822", "multipart/mixed", "multipart/alternative",
                                 "multipart/report", "image/png", "garbage"]))
    if kind.startswith("multipart") and depth >= 2:
        kind = "text/plain"
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    headers = [f"Content-Type: {kind}" + (f"; charset=\"{charset}\"" if charset else "")]
    if kind == "text/calendar":
        headers[0] += f"; method={draw(st.sampled_from(['REPLY', 'REQUEST', 'COUNTER', '']))}"
    if draw(st.booleans()):
        name = draw(st.one_of(st.sampled_from(["invite.ics", "แผน.pdf", "notes.txt", "x.docx"]), encoded_word(), st.text(max_size=20)))
        headers.append(f"Content-Disposition: {draw(st.sampled_from(['attachment', 'inline', 'bogus']))}; filename=\"{name}\"")
    if kind.startswith("multipart"):
        boundary = draw(st.sampled_from(["b1", "b2", "=_x", "", "a" * 80]))
        headers[0] = f'Content-Type: {kind}; boundary="{boundary}"'
        children = draw(st.lists(part(depth + 1), max_size=3))
        used = draw(st.sampled_from([boundary, boundary, "other"]))  # sometimes the parts use another boundary
        closed = draw(st.booleans())
        inner = "".join(f"--{used}\r\n{child}\r\n" for child in children) + (f"--{used}--\r\n" if closed else "")
        return "\r\n".join(headers) + "\r\n\r\n" + draw(st.sampled_from(["", "preamble\r\n"])) + inner
    headers.append(f"Content-Transfer-Encoding: {encoding}")
    if kind == "message/rfc822":
        content = draw(message_text(depth + 1)) if depth < 2 else "From: x@y\r\n\r\nbody"
    elif kind in ("text/calendar", "application/ics"):
        content = draw(calendar())
    elif kind == "message/delivery-status":
        content = (f"Reporting-MTA: dns; mail.example\r\n\r\nFinal-Recipient: rfc822; {draw(st.sampled_from(SENDERS + ['', '<>']))}\r\n"
                   f"Action: {draw(st.sampled_from(['failed', 'delayed', 'delivered', 'nonsense']))}\r\n"
                   f"Status: {draw(st.sampled_from(['5.1.1', '4.2.2', '2.0.0', 'x.y.z', '']))}\r\n")
    elif kind == "application/pdf":
        content = draw(st.sampled_from(["%PDF-1.4 broken", "", "not a pdf"]))
    else:
        content = draw(text)
    return "\r\n".join(headers) + "\r\n\r\n" + body(draw, charset, encoding, content)


@st.composite
def message_text(draw, depth: int = 0) -> str:
    """A whole message: its headers (any may be missing or broken) and a body entity."""
    headers = []
    if draw(st.integers(0, 9)):
        sender = draw(st.sampled_from(SENDERS))
        headers.append(f"From: {draw(st.sampled_from(['', 'นายสมชาย ใจดี ', '=?utf-8?B?broken?= ']))}<{sender}>"
                       if draw(st.booleans()) else f"From: {draw(st.one_of(st.sampled_from(SENDERS), header_value))}")
    headers.append(f"To: {draw(st.sampled_from(['meeting@office.test', 'meeting+' + KEYS[0] + '@office.test', 'undisclosed-recipients:;', '']))}")
    if draw(st.integers(0, 5)):
        identity = st.uuids().map(lambda u: u.hex)
        headers.append(f"Message-ID: {draw(st.one_of(identity.map(lambda h: f'<{h}@fuzz.test>'), identity, st.sampled_from(['<>', '<a b@c>', ''])))}")
    headers.append(f"Subject: {draw(header_value)}")
    headers.append(f"Date: {draw(st.sampled_from(['Tue, 24 Nov 2026 09:00:00 +0700', 'yesterday', '', 'Tue, 99 Foo 2026 99:99:99 +9999']))}")
    for name in draw(st.lists(st.sampled_from(["In-Reply-To", "References", "Auto-Submitted", "Reply-To", "List-Id",
                                               "X-Auto-Response-Suppress", "Precedence", "Return-Path", "Cc"]), max_size=4)):
        headers.append(f"{name}: {draw(st.one_of(st.sampled_from(['<' + k + '@office.test>' for k in KEYS] + ['auto-replied', 'bulk', '<>']), header_value))}")
    if draw(st.booleans()):
        headers.append("MIME-Version: 1.0")
    entity = draw(part(depth))
    # Real mail separates lines with CRLF, but not always; a header may be cut by a stray newline.
    head = "\r\n".join(h.replace("\n", draw(st.sampled_from(["\n", " ", "\r\n\t"]))) for h in headers)
    return head + "\r\n" + entity


raw_messages = st.one_of(
    message_text().map(lambda m: m.encode("utf-8", "surrogateescape")),
    st.tuples(message_text(), st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=4)), max_size=6)).map(
        lambda found: _mutate(found[0].encode("utf-8", "surrogateescape"), found[1])),
    st.binary(max_size=300),
)


def _mutate(raw: bytes, edits: list[tuple[int, bytes]]) -> bytes:
    """A good message with a few bytes replaced, as a broken relay or disk leaves it."""
    data = bytearray(raw)
    for position, replacement in edits:
        at = position % (len(data) + 1)
        data[at:at + len(replacement)] = replacement
    return bytes(data)


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    config = write_config(folder, 'kind = "maildir"\npath = "mailbox"', 'kind = "file"\npath = "outgoing"')
    settings = load(config, {**os.environ, **ENV})
    now = datetime(2026, 11, 24, 2, tzinfo=timezone.utc)
    service = build(settings, clock=lambda: now)
    context = Context(directory=service.pipeline.context.directory, reply_key_secret=settings.reply_key_secret, rules=settings.rules)
    yield service, context
    service.office.store.close()


def parsed(raw: bytes) -> InboundMessage | MalformedMessage:
    """The parse, or the MalformedMessage it raised; anything else it raises fails the test."""
    try:
        return InboundMessage.parse(raw)
    except MalformedMessage as error:
        assert str(error), "a refusal says why"
        return error


@FUZZ
@given(raw=raw_messages)
def test_parsing_never_fails_except_with_a_reason(raw):
    parsed(raw)


@FUZZ
@given(raw=raw_messages)
def test_understanding_never_fails_and_always_names_its_rule(office, raw):
    _, context = office
    message = parsed(raw)
    if isinstance(message, MalformedMessage):
        return
    verdict = understand(message, context)
    assert isinstance(verdict, Verdict) and verdict.kind in KINDS and verdict.rule
    assert verdict.to_dict()["kind"] == verdict.kind, "a verdict can always be stored"


@FUZZ
@given(raw=raw_messages)
def test_filing_never_fails_and_what_cannot_be_read_is_quarantined_with_the_reason(office, raw):
    service, context = office
    message = parsed(raw)
    handled = service.pipeline.handle(raw, "fuzz")
    store = service.office.store
    entry = store.get(log_shard(handled.identity), "messages", handled.identity)
    assert entry is not None and entry["status"] == handled.status, "every message is filed"
    event(f"{handled.status} {handled.kind or '-'}{' (duplicate)' if handled.duplicate else ''}")
    if handled.duplicate:
        return  # the same identity came before (the same Message-ID, or the same bytes): already filed, only moved
    assert store.read_file(entry["raw"]) == raw, "nothing is lost: the raw message is kept"
    assert "internal error" not in handled.reason, f"handling crashed: {handled.reason}"
    if isinstance(message, MalformedMessage):
        assert (handled.status, handled.reason) == (QUARANTINED, str(message))
        return
    verdict = understand(message, context)
    if message.problems and not verdict.automatic:
        assert handled.status == QUARANTINED and all(problem in handled.reason for problem in message.problems)
    else:
        assert (handled.status, handled.reason) == (PROCESSED, "")
    if handled.status == QUARANTINED:
        assert handled.reason.strip() and entry["reason"] == handled.reason

"""Automatic mail: real bounces from many mail servers found with their failed address; no person's mail taken for a robot's.

The corpus is sisimai's set of real bounces (shared/corpus/bounces, BSD
licence). Every file is read twice, as the email package parses it with the
compat32 policy and with the default one, since callers use both.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from email.message import Message
from email.policy import Policy
from email.utils import parseaddr
from pathlib import Path

import pytest

from helpers import MAILBOX, message
from service.understand.automated import RULES_FILE, Bounce, detect_auto_reply, detect_bounce, load_rules
from service.understand.rules import RuleError

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
BOUNCES = CORPUS / "bounces" / "sisimai"
NOT_BOUNCES = CORPUS / "bounces" / "sisimai-not-bounces"
POLICIES = pytest.mark.parametrize("policy", [email.policy.compat32, email.policy.default], ids=["compat32", "default"])
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared corpus is not at {CORPUS}")

# Corpus files that do not meet the general expectation, and what we do with
# them instead (asserted below, so the list cannot go stale).
NOT_A_FAILURE = {
    "lhost-amazonses-11.eml": "an Amazon SES complaint notification (a recipient marked the mail as spam)",
    "lhost-amazonses-12.eml": "an Amazon SES notification of a successful delivery",
    "lhost-amazonses-13.eml": "an Amazon SES notification of a successful delivery",
    "rfc3464-28.eml": "a delivery status notification of success (Action: deliverable, Status: 2.1.5)",
}
FORWARDED_BY_A_PERSON = {
    "lhost-sendmail-14.eml": "a person forwarded a bounce (From a person, 'Fwd:', quoted): a person's message",
}
NO_USABLE_ADDRESS = {
    "lhost-sendmail-25.eml": "the failed address is an RFC 2047 encoded word (=?utf-8?B?...?=@example.org)",
    "lhost-exim-61.eml": "the failed address is the one the bounce is addressed to (anonymised to xxxx@xxxx.net)",
    "lhost-qmail-08.eml": "the failed address is the one the bounce is addressed to (mail sent to oneself)",
    "lhost-sendmail-54.eml": "the failed address is the one the bounce is addressed to (mail sent to oneself)",
}
# Filed as a not-bounce by sisimai, but it says plainly that delivery to an
# address failed ("reject reason: Mailbox full", "target mail address: ..."),
# which is what the clerk needs to know: we read it as a temporary bounce.
READ_AS_BOUNCE = {"rb-issue-368-bug.eml": ("xxxx@yyyyyy.net",)}
EXCEPTIONS = NOT_A_FAILURE | FORWARDED_BY_A_PERSON | NO_USABLE_ADDRESS

STATUS = re.compile(rb"^Status:[ \t]*([245])\.\d{1,3}\.\d{1,3}", re.IGNORECASE | re.MULTILINE)


def emails(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


AUTO_REPLIES = [path for path in emails(BOUNCES) if path.name.startswith("rfc3834-")]
ABUSE_REPORTS = [path for path in emails(BOUNCES) if path.name.startswith("arf-")]
REAL_BOUNCES = [path for path in emails(BOUNCES) if path not in AUTO_REPLIES + ABUSE_REPORTS]


def parse(source: Path | bytes, policy: Policy) -> Message:
    raw = source.read_bytes() if isinstance(source, Path) else source
    return email.message_from_bytes(raw, policy=policy)


def is_address(text: str) -> bool:
    """Syntactically an addr-spec: what a directory of people could hold."""
    return parseaddr(text)[1] == text and bool(re.fullmatch(r"[^@\s<>()\[\],;:\"]+@[a-z0-9-]+(\.[a-z0-9-]+)+", text))


def assert_well_formed(bounce: Bounce) -> None:
    assert bounce.recipients == tuple(dict.fromkeys(address.lower() for address in bounce.recipients))
    assert bounce.reasons and all(bounce.reasons)
    assert bounce.detector == "dsn" or bounce.detector.startswith("flufl:") or bounce.detector in rule_names("bounce")


def rule_names(section: str) -> set[str]:
    return {rule.name for rule in getattr(load_rules(), section)}


# --- the real corpus ---


@needs_corpus
@POLICIES
@pytest.mark.parametrize("path", [path for path in REAL_BOUNCES if path.name not in EXCEPTIONS], ids=lambda path: path.name)
def test_a_bounce_names_a_failed_address_and_whether_it_is_permanent(path, policy):
    bounce = detect_bounce(parse(path, policy))
    assert bounce is not None, "not recognised as a bounce"
    assert_well_formed(bounce)
    assert bounce.recipients and all(map(is_address, bounce.recipients)), f"no valid failed address in {bounce}"
    statuses = {digit for digit in STATUS.findall(path.read_bytes()) if digit != b"2"}
    if statuses:
        assert bounce.permanent == (b"5" in statuses), f"Status {statuses} but {bounce}"


@needs_corpus
@POLICIES
@pytest.mark.parametrize("name", sorted(NOT_A_FAILURE), ids=str)
def test_a_report_of_success_or_a_complaint_is_automatic_but_no_bounce(name, policy):
    msg = parse(BOUNCES / name, policy)
    assert detect_bounce(msg) is None
    assert detect_auto_reply(msg) is not None


@needs_corpus
@POLICIES
@pytest.mark.parametrize("name", sorted(FORWARDED_BY_A_PERSON), ids=str)
def test_a_bounce_a_person_forwards_is_a_persons_message(name, policy):
    msg = parse(BOUNCES / name, policy)
    assert detect_bounce(msg) is None
    assert detect_auto_reply(msg) is None


@needs_corpus
@POLICIES
@pytest.mark.parametrize("name", sorted(NO_USABLE_ADDRESS), ids=str)
def test_a_bounce_without_a_usable_address_is_still_a_bounce(name, policy):
    bounce = detect_bounce(parse(BOUNCES / name, policy))
    assert bounce is not None and bounce.recipients == ()
    assert "no failed address found" in bounce.reasons


@needs_corpus
@POLICIES
@pytest.mark.parametrize("path", AUTO_REPLIES, ids=lambda path: path.name)
def test_an_rfc3834_auto_reply_is_automatic_and_no_bounce(path, policy):
    msg = parse(path, policy)
    assert detect_bounce(msg) is None
    reply = detect_auto_reply(msg)
    assert reply is not None and reply.rule in rule_names("auto_reply") and reply.reasons


@needs_corpus
@POLICIES
@pytest.mark.parametrize("path", ABUSE_REPORTS, ids=lambda path: path.name)
def test_an_abuse_report_is_automatic_and_no_bounce(path, policy):
    """ARF reports (and Outlook.com's own format) complain about mail we sent; no delivery failed."""
    msg = parse(path, policy)
    assert detect_bounce(msg) is None
    reply = detect_auto_reply(msg)
    assert reply is not None
    if msg.get_content_type() == "multipart/report":
        assert reply.rule == "feedback-report"


@needs_corpus
@POLICIES
@pytest.mark.parametrize("path", emails(NOT_BOUNCES), ids=lambda path: path.name)
def test_a_message_that_is_no_bounce_is_not_taken_for_one(path, policy):
    bounce = detect_bounce(parse(path, policy))
    if path.name in READ_AS_BOUNCE:
        assert bounce is not None and bounce.recipients == READ_AS_BOUNCE[path.name] and not bounce.permanent
    else:
        assert bounce is None


# --- hand-written messages ---


def thai_outlook_out_of_office() -> bytes:
    return message(
        sender="นายวิชัย แสงทอง <wichai@school001.example.ac.th>",
        subject="ตอบกลับอัตโนมัติ: ขอเชิญประชุมผู้บริหารสถานศึกษา ครั้งที่ ๑๑/๒๕๖๙",
        text="ขณะนี้ผมเดินทางไปราชการต่างจังหวัด จะกลับวันที่ ๒๘ พฤศจิกายน ๒๕๖๙",
        headers=(("X-Auto-Response-Suppress", "All"), ("Thread-Topic", "ขอเชิญประชุมผู้บริหารสถานศึกษา")),
    )


def gmail_vacation() -> bytes:
    return message(
        sender="Somsri Jaidee <somsri.school002@gmail.com>",
        subject="ลาพักผ่อน 24-28 พ.ย.",
        text="ดิฉันลาพักผ่อนถึงวันที่ 28 พฤศจิกายน จะตอบกลับเมื่อกลับมาค่ะ",
        headers=(("Auto-Submitted", "auto-replied"),),
    )


def test_a_thai_outlook_out_of_office_note_is_automatic_by_its_subject():
    for policy in (email.policy.compat32, email.policy.default):
        reply = detect_auto_reply(parse(thai_outlook_out_of_office(), policy))
        assert reply is not None and reply.rule == "out-of-office-subject"
        assert "subject contains 'ตอบกลับอัตโนมัติ'" in reply.reasons
        assert detect_bounce(parse(thai_outlook_out_of_office(), policy)) is None


def test_a_gmail_vacation_reply_is_automatic_by_auto_submitted():
    for policy in (email.policy.compat32, email.policy.default):
        reply = detect_auto_reply(parse(gmail_vacation(), policy))
        assert reply is not None and reply.rule == "auto-submitted"
        assert "Auto-Submitted: auto-replied" in reply.reasons


@pytest.mark.parametrize(
    "headers",
    [(), (("Auto-Submitted", "no"),), (("Auto-Submitted", "No (a person wrote this)"),), (("X-Auto-Response-Suppress", "All"),)],
    ids=["plain", "auto-submitted-no", "auto-submitted-no-comment", "outlook-suppress-header"],
)
def test_a_persons_reply_is_not_automatic(headers):
    """Outlook puts X-Auto-Response-Suppress on mail people write too, so alone it proves nothing."""
    raw = message(text="ยืนยันเข้าร่วมประชุมครับ\n\nนายสมชาย ใจดี", headers=headers)
    for policy in (email.policy.compat32, email.policy.default):
        assert detect_auto_reply(parse(raw, policy)) is None
        assert detect_bounce(parse(raw, policy)) is None


def test_a_postmasters_question_is_a_persons_message_not_a_bounce():
    raw = message(
        sender="Postmaster <postmaster@school003.example.ac.th>",
        subject="สอบถามเรื่องการประชุมวันที่ 24 พ.ย.",
        text="เรียนฝ่ายเลขานุการ\nขอสอบถามว่าการประชุมครั้งนี้ต้องส่งเอกสารล่วงหน้าหรือไม่ครับ\nผู้ดูแลระบบอีเมลโรงเรียน",
    )
    for policy in (email.policy.compat32, email.policy.default):
        assert detect_bounce(parse(raw, policy)) is None
        assert detect_auto_reply(parse(raw, policy)) is None


def delivery_report(*recipients: tuple[str, str, str]) -> bytes:
    """A multipart/report DSN with one (address, action, status) block per recipient."""
    blocks = "".join(f"\nFinal-Recipient: rfc822; {a}\nAction: {action}\nStatus: {status}\n" for a, action, status in recipients)
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example.go.th>\nTo: {MAILBOX}\nSubject: Delivery Status Notification\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        "--b\nContent-Type: text/plain\n\nSee the report.\n\n"
        f"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.go.th\n{blocks}\n--b--\n"
    ).encode()


def test_a_dsn_mixing_failures_lists_the_permanent_ones_only():
    """The delayed one may still arrive; a later report will say if it does not."""
    raw = delivery_report(
        ("Somchai@School001.example.ac.th", "failed", "5.1.1"),
        ("wichai@school002.example.ac.th", "delayed", "4.4.1"),
        ("office@school003.example.ac.th", "delivered", "2.0.0"),
    )
    for policy in (email.policy.compat32, email.policy.default):
        bounce = detect_bounce(parse(raw, policy))
        assert bounce == Bounce(
            recipients=("somchai@school001.example.ac.th",),
            permanent=True,
            reasons=(
                "a delivery status notification (RFC 3464)",
                "somchai@school001.example.ac.th: Action: failed, Status: 5.1.1",
                "wichai@school002.example.ac.th: Action: delayed, Status: 4.4.1",
            ),
            detector="dsn",
        )


def test_a_dsn_of_delay_only_is_a_temporary_bounce():
    bounce = detect_bounce(parse(delivery_report(("wichai@school002.example.ac.th", "delayed", "4.4.1")), email.policy.default))
    assert bounce is not None and bounce.recipients == ("wichai@school002.example.ac.th",) and not bounce.permanent


def test_a_dsn_of_success_is_automatic_but_no_bounce():
    raw = delivery_report(("somchai@school001.example.ac.th", "delivered", "2.0.0"))
    assert detect_bounce(parse(raw, email.policy.default)) is None
    reply = detect_auto_reply(parse(raw, email.policy.default))
    assert reply is not None and reply.rule == "delivery-report"


# --- malformed and hostile input ---

MALFORMED = {
    "empty": b"",
    "headers only": b"From: MAILER-DAEMON@example.org\r\nSubject: Undeliverable: x\r\n",
    "bad charset in a header": b"Subject: =?x-unknown?Q?Undeliverable?=\r\nFrom: =?iso-8\xff59-1?B?AAA?= <postmaster@x.org>\r\n\r\nhi",
    "undecodable body": b"From: postmaster@x.org\r\nReturn-Path: <>\r\nSubject: failure notice\r\n"
    b"Content-Type: text/plain; charset=x-unknown\r\n\r\n\xff\xfe<\xe0\xb8@\xff>: user unknown\r\n",
    "broken boundary": b"From: MAILER-DAEMON@x.org\r\nSubject: Returned mail\r\nContent-Type: multipart/report; "
    b"report-type=delivery-status; boundary=zz\r\n\r\n--yy\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n",
    "empty delivery status": b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: message/delivery-status\r\n\r\n--b--\r\n",
    "base64 garbage": b"From: MAILER-DAEMON@x.org\r\nSubject: Undelivered Mail\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!*\r\n",
    "nested rfc822 without body": b"From: MAILER-DAEMON@x.org\r\nSubject: Undeliverable\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\n--b--\r\n",
}


@POLICIES
@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_mail_never_raises(raw, policy):
    msg = parse(raw, policy)
    detect_bounce(msg)
    detect_auto_reply(msg)


@needs_corpus
def test_damaged_corpus_files_never_raise():
    """Cut short or with bytes overwritten, as mail arrives from sloppy servers."""
    for path in REAL_BOUNCES[::7]:
        raw = path.read_bytes()
        for damaged in (raw[: len(raw) // 3], raw[: len(raw) * 2 // 3], bytes(b ^ 0x80 if i % 97 == 0 else b for i, b in enumerate(raw))):
            for policy in (email.policy.compat32, email.policy.default):
                msg = parse(damaged, policy)
                detect_bounce(msg)
                detect_auto_reply(msg)


def test_hostile_text_is_read_in_linear_time():
    """A pattern that backtracks (\\s* after ^, unbounded repeats) would take minutes on these."""
    head = b"From: MAILER-DAEMON@example.org\r\nReturn-Path: <>\r\nSubject: Undelivered Mail\r\nContent-Type: text/plain\r\n\r\n"
    for body in (b"\r\n" * 50_000, b"a" * 200_000, b"Message-ID: " + b"@" * 50_000, b">\r\n" * 50_000, b"a@b." * 50_000):
        msg = parse(head + body, email.policy.compat32)
        started = time.monotonic()
        detect_bounce(msg)
        assert time.monotonic() - started < 10


# --- the rules file ---

VALID_RULES = RULES_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("    description: marked by an autoresponder (X-Autoreply)\n", ""), "rule x-autoreply: missing description"),
        (("X-Autorespond: ''", "X-Autorespond: '('"), "rule x-autorespond: header X-Autorespond: not a valid pattern"),
        (("when: {header: {X-Loop: ''}}", "when: {from: x}"), "rule x-loop: unknown condition 'from'"),
        (("name: x-autorespond\n", "name: x-autoreply\n"), "rule x-autoreply: two rules have this name"),
        (("pattern: 'rcpt to:", "pattern: 'rcpt to:<?' #"), "recipients smtp-recipient: .*{address}"),
        (("permanent: false\n", "permanent: maybe\n"), "permanence temporary status code: permanent must be true or false"),
    ],
    ids=["no-description", "bad-pattern", "unknown-condition", "duplicate-name", "no-address", "bad-permanence"],
)
def test_a_mistake_in_the_rules_is_reported_with_the_rule_name(tmp_path, change, error):
    old, new = change
    assert old in VALID_RULES
    path = tmp_path / "automated.yaml"
    path.write_text(VALID_RULES.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RuleError, match=error):
        load_rules(path)


def test_the_rules_are_read_once():
    assert load_rules() is load_rules()

"""The pipeline on the embedded default: handled once, acknowledged once, bad mail quarantined."""

from __future__ import annotations

import email
import email.policy
import json
import re
import subprocess
import sys

import pytest

from helpers import ENV, MAILBOX, message, write_config
from service import pipeline as pipeline_module
from service.commands import apply
from service.mail import compose
from service.mail.message import InboundMessage
from service.meetings import steps
from service.meetings.clerk import HANDLERS
from service.ticks import run_due_steps
from service.config import load
from service.daemon import Daemon, build, make_sender, make_source
from service.mail.maildir import deliver
from service.pipeline import QUARANTINED, log_shard


@pytest.fixture
def office(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = write_config(tmp_path, 'kind = "maildir"\npath = "mailbox"', 'kind = "file"\npath = "outgoing"')
    return load(config)


def run_once(settings):
    daemon = Daemon(build(settings), make_source(settings), make_sender(settings))
    daemon.run(once=True)
    return daemon.handled


def sent(settings):
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted(settings.sender.path.glob("*.eml"))]


def test_a_reply_is_filed_moved_and_acknowledged_once(office):
    raw = message(text="ยืนยันเข้าร่วมประชุมครับ\n\nนายสมชาย")
    deliver(office.source.path, raw, "a")
    [handled] = run_once(office)
    assert (handled.status, handled.kind) == ("processed", "attendance")
    [ack] = sent(office)
    assert ack["To"] == "somchai@school001.example.ac.th"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == f"<{email.message_from_bytes(raw)['Message-ID'].strip('<>')}>"
    assert "เข้าร่วมประชุม" in ack.get_body(("plain",)).get_content()
    assert len(list((office.source.path / ".Processed" / "cur").iterdir())) == 1
    # The same message delivered again (a client resending, or a crash before the move): moved, not handled.
    deliver(office.source.path, raw, "again")
    [again] = run_once(office)
    assert again.duplicate and again.status == "processed"
    assert len(sent(office)) == 1


def test_a_crash_between_the_store_write_and_the_move_handles_nothing_twice(office):
    raw = message()
    deliver(office.source.path, raw, "a")
    service = build(office)
    service.pipeline.handle(raw, "new/a")  # filed and queued; the process dies before moving it
    service.office.store.close()
    [handled] = run_once(office)
    assert handled.duplicate
    assert len(sent(office)) == 1


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "empty message"),
        (b"\r\n\r\n", "empty message"),
        (message(message_id=None), "no Message-ID"),
        (message(sender="", subject="เสนอวาระ"), "no usable From address"),
        (
            b"From: a@school001.example.ac.th\r\nMessage-ID: <b1@x>\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="nothere"\r\n\r\nno parts at all\r\n',
            "broken MIME",
        ),
        (
            b"From: somchai@school001.example.ac.th\r\nMessage-ID: <c1@x>\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\x81\x8d\xfe\xff\xdb\r\n",
            "cannot be decoded",
        ),
    ],
)
def test_broken_messages_go_to_quarantine_with_the_reason(office, raw, reason):
    deliver(office.source.path, raw, "bad")
    deliver(office.source.path, message(), "good")
    handled = run_once(office)
    assert [h.status for h in handled] == [QUARANTINED, "processed"], "the daemon goes on after a bad message"
    assert reason in handled[0].reason
    assert re.search("[\u0e00-\u0e7f]", handled[0].reason.partition(" / ")[0]), "the clerk reads why in Thai first"
    assert len(list((office.source.path / ".Quarantine" / "cur").iterdir())) == 1
    service = build(office, exclusive=False)
    entry = service.office.store.get(log_shard(handled[0].identity), "messages", handled[0].identity)
    assert entry["status"] == QUARANTINED and reason in entry["reason"]
    assert service.office.store.read_file(entry["raw"]) == raw, "nothing is lost: the raw message is kept"


def test_a_message_over_the_size_limit_is_quarantined(office):
    big = message(attachments=(("big.pdf", b"%PDF" + b"0" * (30 * 1024 * 1024)),))
    deliver(office.source.path, big, "big")
    [handled] = run_once(office)
    assert handled.status == QUARANTINED and "over the 25 MB limit" in handled.reason


def test_a_bug_while_understanding_costs_only_that_message(office, monkeypatch):
    def broken(message, context):
        raise KeyError("rule table")

    monkeypatch.setattr(pipeline_module, "understand", broken)
    deliver(office.source.path, message(), "a")
    [handled] = run_once(office)
    assert handled.status == QUARANTINED and "internal error" in handled.reason and "KeyError" in handled.reason


def test_automatic_mail_and_unknown_senders_are_never_answered(office):
    deliver(office.source.path, message(headers=(("Auto-Submitted", "auto-replied"),)), "ooo")
    deliver(office.source.path, message(sender="Stranger <who@elsewhere.example.com>"), "stranger")
    deliver(office.source.path, message(sender=f"Us <{MAILBOX}>", subject="วาระ"), "loop")
    deliver(office.source.path, message(headers=(("List-Id", "<admins.school.example>"),)), "list")  # a known sender, via a list
    handled = run_once(office)
    assert handled[3].kind == "attendance" and handled[3].queued == (), "a list post is never answered"
    assert [h.kind for h in handled][:2] == ["auto_reply", "attendance"]
    assert sent(office) == []
    service = build(office, exclusive=False)
    entry = service.office.store.get(log_shard(handled[1].identity), "messages", handled[1].identity)
    assert "ไม่อยู่ในทำเนียบ" in entry["for_clerk"]


def test_explain_prints_the_verdict_as_json(tmp_path):
    path = tmp_path / "m.eml"
    path.write_bytes(message(text="ติดราชการ จึงมอบหมาย นายสมศักดิ์ รักเรียน รองผู้อำนวยการโรงเรียน เข้าร่วมประชุมแทน"))
    result = subprocess.run(
        [sys.executable, "-m", "service", "-c", str(tmp_path / "none.toml"), "explain", str(path)],
        capture_output=True, text=True, check=True,
    )
    verdict = json.loads(result.stdout)
    assert verdict["kind"] == "attendance" and verdict["attendance"] == "delegated"
    assert "สมศักดิ์" in verdict["delegate"]
    assert verdict["rule"] and verdict["reasons"]


def test_the_demo_runs_on_the_embedded_default(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "service", "demo", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "outgoing").glob("*.eml"))) >= 4
    assert len(list((tmp_path / "mailbox" / ".Quarantine" / "cur").iterdir())) == 1
    assert "what the service understood" in result.stderr
    assert "Draft 2 of the agenda: approved by p-admin-director, p-director" in result.stderr
    assert "accepted: 1, declined: 1, delegated: 1, no_answer: 1, tentative: 1 (of 5)" in result.stderr


def test_a_broken_template_quarantines_that_message_and_nothing_half_written(office, monkeypatch):
    real_render = compose.Composer.render

    def broken(self, outgoing, now):
        if "เสียหาย" in outgoing.context.get("subject", ""):
            raise KeyError("a template that asks for a missing value")
        return real_render(self, outgoing, now)

    monkeypatch.setattr(compose.Composer, "render", broken)
    deliver(office.source.path, message(subject="เสียหาย"), "bad")
    deliver(office.source.path, message(), "good")
    handled = run_once(office)
    assert [h.status for h in handled] == [QUARANTINED, "processed"]
    assert "KeyError" in handled[0].reason and handled[0].queued == ()
    assert len(sent(office)) == 1


def test_a_broken_timeline_step_leaves_it_due_and_the_daemon_going(office, monkeypatch):
    service = build(office)
    apply(service.office, service.outbox, HANDLERS, "meeting_new", {
        "kind": "internal_staff", "title": "การประชุมบุคลากร", "number": 1, "year_be": 2569,
        "start": "2026-12-21T13:30:00+07:00", "end": "2026-12-21T16:00:00+07:00", "place": "ห้องประชุมเล็ก",
        "chair": "p-director", "secretary": "p-admin-director", "attendees": ["group:g-admin"],
    }, service.clock())

    def broken(meeting, context):
        raise RuntimeError("a bug in a step")

    monkeypatch.setitem(steps.ACTIONS, "call_for_items", broken)
    late = service.clock().replace(year=2026, month=12, day=15)
    assert run_due_steps(service.office, service.outbox, late) == []
    monkeypatch.undo()
    assert "st2569-1:call_for_items" in run_due_steps(service.office, service.outbox, late)


def test_a_reply_to_that_is_no_address_is_not_answered_to(tmp_path):
    """An encoded word with no address in Reply-To (found by tests/test_fuzz.py) must not become the acknowledgement's To."""
    raw = message(headers=(("Reply-To", "=?windows-874?b?NULL?= I will attend."),))
    assert InboundMessage.parse(raw).reply_to == ""


def test_an_address_with_control_characters_is_not_answered_to(office):
    """A mangled Reply-To whose "address" holds a vertical tab (found by tests/test_fuzz.py): no header can carry it,
    so the acknowledgement goes to the sender, and the message is handled, not an internal error."""
    raw = b"Reply-To: circ ok \x0b junk\x0bx@school.test\r\n" + message(text="ยืนยันเข้าร่วมประชุมครับ")
    assert InboundMessage.parse(raw).reply_to == ""
    deliver(office.source.path, raw, "a")
    [handled] = run_once(office)
    assert handled.status == "processed", handled.reason
    [ack] = sent(office)
    assert ack["To"] == "somchai@school001.example.ac.th"

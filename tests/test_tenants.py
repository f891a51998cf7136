"""Offices as tenants of one PostgreSQL database: nothing of office A is ever visible to office B.

The two offices are as alike as two offices can be: the same directory (the
same ids, the same people, the same shard names), the same mail domain (so a
message they both acknowledge gets the same Message-ID at both) and rounds
started on the same day (so with the same id). Only the office and its
reply-key secret tell them apart, as the README's *Many offices* asks. Each
test also shows the thing reaching its own office, so none of them passes
because nothing happened.
"""

from __future__ import annotations

import smtplib
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import pytest

from helpers import ENV, MAILBOX, message
from postgres import PASSWORD, use_postgres
from service.cli import main
from service.commands import SPOOL
from service.config import Settings, load
from service.daemon import Daemon, build, make_sender, make_source
from service.directory.verification import pending
from service.mail.message import InboundMessage
from service.mail.outbox import SENT_LOG
from service.meetings import Office
from service.pipeline import log_shard
from service.rounds import asks_of, rounds
from service.store import open_store
from worlds import Clock, Embedded, Servers, clerk, outgoing, run

BANGKOK = ZoneInfo("Asia/Bangkok")
DAY = datetime(2026, 12, 1, 8, tzinfo=BANGKOK)
SUBJECT = "ตรวจสอบข้อมูลพื้นฐาน"
OFFICE_B = "meeting-b@office.test"  # the same domain as office A's MAILBOX
B_SECRET = "SECRETARY_REPLY_KEY_OFFICE_B"
HEADER = "kind,id,name,emails,position,organisation,group,role,phone,address,administrator\n"


def tenant(config: Path, dsn: str, mailbox: str, new_mailbox: str = "", secret_env: str = "") -> Settings:
    """An office configuration made a tenant of the database `dsn`: its own mailbox (and so office) and secret."""
    text = config.read_text(encoding="utf-8")
    if new_mailbox:
        text = text.replace(mailbox, new_mailbox)
    if secret_env:
        text += f'[security]\nreply_key_secret_env = "{secret_env}"\n'
    config.write_text(text, encoding="utf-8")
    use_postgres(config, dsn, new_mailbox or mailbox)
    return load(config)


def folder(tmp_path: Path, name: str) -> Path:
    """An office's own folder (its configuration, mailbox, outgoing mail and store folder)."""
    (tmp_path / name).mkdir()
    return tmp_path / name


@pytest.fixture
def secrets(monkeypatch):
    for name, value in {**ENV, B_SECRET: "office-b-reply-key-secret", "SECRETARY_DATABASE_PASSWORD": PASSWORD}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def offices(tmp_path, secrets, postgres, request):
    """Offices A and B on the embedded mail (a Maildir in, .eml files out), their stores in one database.

    B has a reply-key secret of its own, or (parameter "one secret") the same as A's.
    """
    dsn = postgres.database()
    worlds = Embedded(folder(tmp_path, "a")), Embedded(folder(tmp_path, "b"))
    a = tenant(worlds[0].config, dsn, MAILBOX)
    b = tenant(worlds[1].config, dsn, MAILBOX, OFFICE_B, "" if getattr(request, "param", "") == "one secret" else B_SECRET)
    return (a, worlds[0]), (b, worlds[1])


def logged(settings: Settings, raw: bytes) -> dict | None:
    """What the office's message log says of a message, or None."""
    identity = InboundMessage.parse(raw).identity
    return at(settings, lambda o: o.store.get(log_shard(identity), "messages", identity))


def at(settings: Settings, read: Callable[[Office], Any]) -> Any:
    """What `read` finds in an office, as a command that only reads sees it (its store opened and closed again)."""
    service = build(settings, clock=lambda: DAY, exclusive=False)
    try:
        return read(service.office)
    finally:
        service.office.store.close()


def replies(to_mail, sender: str, to: str, text: str = "เบอร์โทรใหม่ 042-999-001") -> tuple[bytes, bytes]:
    """A correction sent in reply to a round's request (quoting its key), and the same mail as it would come with no key."""
    subject = f"Re: {to_mail['Subject']}"
    keyed = message(sender=sender, subject=subject, to=to, text=f"{text}\n\n> รหัสอ้างอิง: {to_mail['Message-ID'].strip('<>').partition('.')[0]}",
                    headers=(("In-Reply-To", to_mail["Message-ID"]), ("References", to_mail["Message-ID"])))
    return keyed, message(sender=sender, subject=subject, to=to, text=text)


def filed_as_unknown(a: Settings, b: Settings, keyed: bytes, unkeyed: bytes) -> dict:
    """B filed A's keyed reply in no round (its own round of the same id, or A's) and as it files the reply without a key."""
    [head] = at(b, rounds)
    for settings in (a, b):
        assert all(not ask["answers"] for ask in at(settings, lambda o: asks_of(o, head["id"])))
    assert at(b, pending) == []
    at_b, as_unknown = logged(b, keyed), logged(b, unkeyed)
    assert at_b["verdict"]["reply_key"] is None and at_b["kind"] != "round_reply"
    assert [at_b[f] for f in ("status", "kind", "rule", "for_clerk")] == [as_unknown[f] for f in ("status", "kind", "rule", "for_clerk")]
    return at_b


def test_a_directory_change_at_one_office_is_not_seen_at_the_other(offices, tmp_path, capsys):
    (a, _), (b, _) = offices
    changes = tmp_path / "a-changes.csv"
    changes.write_text(HEADER + "school,s-001,โรงเรียนบ้านหนองบัว,school001@example.ac.th,,,,,042-999-001,,นายสมหมาย ดีมาก\n"
                                "agency,a-new,สำนักงานของเอเท่านั้น,only-a@agency.go.th,,,,,,,\n", encoding="utf-8-sig")
    own = tmp_path / "b-changes.csv"
    own.write_text(HEADER + "school,s-001,โรงเรียนบ้านหนองบัว,school001@example.ac.th,,,,,042-555-555,,\n", encoding="utf-8-sig")
    assert main(["-c", str(a.path), "directory", "import", str(changes)]) == 0
    assert main(["-c", str(b.path), "directory", "import", str(own)]) == 0
    capsys.readouterr()

    for settings, phone, has_new in ((a, "042-999-001", True), (b, "042-555-555", False)):
        exported = tmp_path / f"{settings.office.mailbox}.csv"
        assert main(["-c", str(settings.path), "directory", "export", "--format", "csv", "--out", str(exported)]) == 0
        table = exported.read_text(encoding="utf-8-sig")
        assert (f",{phone}," in table, "a-new" in table, "สำนักงานของเอเท่านั้น" in table) == (True, has_new, has_new)
        looked_up = at(settings, lambda o: (o.directory.who("school001@example.ac.th").phone, o.directory.get("a-new") is not None,
                                            o.directory.who("only-a@agency.go.th") is not None))
        assert looked_up == (phone, has_new, has_new)

    assert main(["-c", str(b.path), "directory", "history", "s-001"]) == 0
    shown = capsys.readouterr().out
    assert "import b-changes.csv" in shown and "import a-changes.csv" not in shown and "042-999-001" not in shown
    assert main(["-c", str(b.path), "directory", "history", "a-new"]) == 2
    assert "no a-new in the directory" in capsys.readouterr().err
    assert main(["-c", str(a.path), "directory", "history", "s-001"]) == 0
    shown = capsys.readouterr().out
    assert "import a-changes.csv" in shown and "042-555-555" not in shown


def test_a_round_started_at_one_office_is_not_listed_at_the_other(offices, capsys):
    (a, _), (b, _) = offices
    clock = Clock(DAY)
    clerk(a, clock, "directory_verify", {"deadline": "2026-12-15"})
    assert [r["id"] for r in at(a, rounds)] == ["verify-20261201"]
    assert at(b, rounds) == []
    assert main(["-c", str(b.path), "status"]) == 0
    assert "verify-" not in capsys.readouterr().out
    assert main(["-c", str(b.path), "directory", "verify", "--deadline", "2099-01-31"]) == 0  # A's round does not block B's
    assert [r["deadline"] for r in at(b, rounds)] == ["2099-01-31"]
    assert [r["deadline"] for r in at(a, rounds)] == ["2026-12-15"]


@pytest.mark.parametrize("offices", ["own secrets", "one secret"], indirect=True)
def test_a_reply_to_a_round_that_reaches_the_other_office_is_mail_without_a_key_there(offices):
    (a, world_a), (b, world_b) = offices
    clock = Clock(DAY)
    for settings in (a, b):  # the same day, so the same round id, the same recipients, the same shard
        clerk(settings, clock, "directory_verify", {"deadline": "2026-12-15"})
    run(a, clock)
    [to_school] = outgoing(world_a, a, "school001@example.ac.th", SUBJECT)
    answer, unkeyed = replies(to_school, "ธุรการโรงเรียน <school001@example.ac.th>", OFFICE_B)
    for raw in (answer, unkeyed):
        world_b.deliver(b, raw)
    run(b, clock, DAY.replace(hour=9))

    assert [r["id"] for r in at(b, rounds)] == ["verify-20261201"]
    filed_as_unknown(a, b, answer, unkeyed)

    world_a.deliver(a, answer)  # the same reply at the office that asked is filed there
    run(a, clock, DAY.replace(hour=10))
    assert logged(a, answer)["kind"] == "round_reply"
    assert [c["record"] for c in at(a, pending)] == ["s-001"] and at(b, pending) == []


class Killed(BaseException):
    """The daemon killed while sending: nothing after the send runs (as with SIGKILL)."""


class DiesAfterSending:
    """A sender that hands everything to the real one, then takes its daemon down before the sends are folded."""

    def __init__(self, sender) -> None:
        self.sender = sender

    def send_batch(self, envelopes, committing=None):
        yield from self.sender.send_batch(envelopes, committing)
        raise Killed


def test_the_clerks_spool_and_the_sent_log_stay_with_their_office(offices):
    (a, world_a), (b, world_b) = offices
    clock = Clock(DAY)
    running_a = build(a, clock=clock)  # A's daemon holds its store: A's clerk's command is queued
    assert main(["-c", str(a.path), "directory", "verify", "--deadline", "2026-12-15"]) == 0
    assert len(running_a.office.store.spooled(SPOOL)) == 1
    assert at(b, lambda o: o.store.spooled(SPOOL)) == []
    run(b, clock)
    assert at(b, rounds) == []  # B's daemon did not apply A's command
    running_a.office.store.close()
    run(a, clock)
    assert [r["status"] for r in at(a, rounds)] == ["open"] and at(a, lambda o: o.store.spooled(SPOOL)) == []

    # One message written to both offices at once: each acknowledges it, under the same Message-ID.
    both = message(sender="ธุรการโรงเรียน <school001@example.ac.th>", subject="สอบถามเรื่องการประชุม", text="ขอทราบกำหนดการค่ะ",
                   to=f"{MAILBOX}, {OFFICE_B}")
    world_a.deliver(a, both)
    daemon = Daemon(build(a, clock=clock), make_source(a), DiesAfterSending(make_sender(a)))
    with pytest.raises(Killed):
        daemon.run(once=True)
    store_a = open_store(a, exclusive=False)
    [(ack_id, status, *_)] = [line.split("\t") for line in store_a.read_lines(SENT_LOG)]
    assert status == "sent" and store_a.get("outbox", "mail", ack_id) is not None  # sent, and not yet folded
    assert at(b, lambda o: o.store.read_lines(SENT_LOG)) == []

    world_b.deliver(b, both)
    run(b, clock, DAY.replace(hour=9))
    assert logged(b, both)["status"] == "processed"  # A's log of the message is not B's
    [ack_at_b] = outgoing(world_b, b, "school001@example.ac.th", "ได้รับ")
    assert ack_at_b["Message-ID"].strip("<>") == ack_id  # B sent its own, though A's sent log names the same Message-ID
    store_b = open_store(b, exclusive=False)
    assert store_b.get("outbox", "mail", ack_id) is None and store_b.read_lines(SENT_LOG) == []
    assert len(store_a.read_lines(SENT_LOG)) == 1  # B's fold emptied its own log only
    run(a, clock, DAY.replace(hour=10))
    assert store_a.get("outbox", "mail", ack_id) is None and store_a.read_lines(SENT_LOG) == []
    store_a.close()
    store_b.close()


def test_a_reply_sent_to_the_wrong_office_over_the_mail_servers_is_not_filed_there(tmp_path, secrets, postgres, mail_servers):
    dovecot, postfix = mail_servers
    dsn = postgres.database()
    world = Servers(folder(tmp_path, "a"), mail_servers)
    other = world.mailbox.replace("meeting-", "meeting-b-")
    dovecot.add_user(other)
    config_b = folder(tmp_path, "b") / "secretary.toml"
    config_b.write_text(world.config.read_text(encoding="utf-8"), encoding="utf-8")
    a = tenant(world.config, dsn, world.mailbox)
    b = tenant(config_b, dsn, world.mailbox, other, B_SECRET)
    clock = Clock(DAY)
    for settings in (a, b):
        clerk(settings, clock, "directory_verify", {"deadline": "2026-12-15"})
    run(a, clock)
    school = world.address("school001")
    [to_school] = [m for m in outgoing(world, a, school, SUBJECT) if world.mailbox in m["From"]]

    # The school answers A's request, but to B's address (a forward, an address book's wrong guess), through Postfix.
    answer, unkeyed = replies(to_school, f"ธุรการโรงเรียน <{school}>", other)
    with smtplib.SMTP(postfix.host, postfix.smtp_port) as smtp:
        for raw in (answer, unkeyed):
            smtp.sendmail(school, [other], raw)
    postfix.wait_for_queue_empty()
    run(b, clock, DAY.replace(hour=9))

    at_b = filed_as_unknown(a, b, answer, unkeyed)
    assert len(dovecot.messages(other, "Processed" if at_b["status"] == "processed" else "Quarantine")) == 2
    acks = [m for m in outgoing(world, b, school, "ได้รับ") if other in m["From"]]
    assert len(acks) == 2 and all(world.mailbox not in m["From"] for m in acks)

"""The mail loop on real servers: Dovecot (IMAP IDLE, LMTP) and Postfix (SMTP).

The daemon runs as its own process, exactly as `secretary run` runs in
production; mail reaches the shared mailbox by IMAP APPEND and its
acknowledgements travel through Postfix into the senders' Dovecot mailboxes,
where the tests read them over IMAP.
"""

from __future__ import annotations

import email
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from helpers import ENV, message, write_config

ROOT = Path(__file__).resolve().parents[1]


class Office:
    """A shared mailbox, a directory of senders with their own mailboxes, and a daemon to start and kill."""

    def __init__(self, tmp_path: Path, dovecot, postfix, senders: int = 3) -> None:
        self.dovecot = dovecot
        self.postfix = postfix
        tag = uuid.uuid4().hex[:8]
        self.mailbox = f"meeting-{tag}@office.test"
        self.senders = [f"school{n}-{tag}@school.test" for n in range(senders)]
        for address in (self.mailbox, *self.senders):
            dovecot.add_user(address)
        directory = tmp_path / "directory.toml"
        directory.write_text(
            "".join(
                f'[[people]]\nid = "p{n}"\nname = "ผู้อำนวยการโรงเรียนทดสอบ {n}"\nemails = ["{a}"]\nrole = "school_director"\n'
                for n, a in enumerate(self.senders)
            ),
            encoding="utf-8",
        )
        self.config = write_config(
            tmp_path,
            f'kind = "imap"\nhost = "{dovecot.host}"\nport = {dovecot.imap_port}\nsecurity = "none"\n'
            f'username = "{self.mailbox}"\npoll_interval = 1',
            f'kind = "smtp"\nhost = "{postfix.host}"\nport = {postfix.smtp_port}\nsecurity = "none"',
            directory=directory,
        )
        self.config.write_text(self.config.read_text().replace("meeting@office.test", self.mailbox))
        self.log = tmp_path / "daemon.log"
        self.process: subprocess.Popen | None = None

    def start(self, *extra: str) -> None:
        environment = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", "-c", str(self.config), "run", *extra],
                stdout=log, stderr=log, env=environment, cwd=ROOT,
            )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def wait_for(self, condition, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; daemon log:\n{self.log.read_text()[-4000:]}")

    def acknowledgements(self, sender: str) -> list[email.message.Message]:
        return [email.message_from_bytes(raw) for raw in self.dovecot.messages(sender)]


@pytest.fixture
def office(tmp_path, mail_servers):
    office = Office(tmp_path, mail_servers.dovecot, mail_servers.postfix)
    yield office
    office.stop()


def test_an_appended_message_is_handled_by_idle_and_acknowledged(office):
    office.start()
    office.wait_for(lambda: "secretary started" in office.log.read_text(), 30, "the daemon to start")
    time.sleep(1)  # let it reach IDLE
    latencies = []
    for n in range(5):
        sender = office.senders[n % len(office.senders)]
        before = len(office.acknowledgements(sender))
        raw = message(sender=f"ผู้อำนวยการ <{sender}>", text="ยืนยันเข้าร่วมประชุมครับ")
        started = time.monotonic()
        office.dovecot.append(office.mailbox, raw)
        office.wait_for(lambda: len(office.acknowledgements(sender)) > before, 30, "the acknowledgement")
        latencies.append(time.monotonic() - started)
    ack = office.acknowledgements(office.senders[0])[0]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert office.dovecot.messages(office.mailbox) == [], "the inbox is empty"
    assert len(office.dovecot.messages(office.mailbox, "Processed")) == 5
    print(f"\nAPPEND → acknowledgement in the sender's mailbox: median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s")


def test_a_dovecot_restart_during_idle_loses_nothing(office):
    office.start()
    office.wait_for(lambda: "secretary started" in office.log.read_text(), 30, "the daemon to start")
    time.sleep(1)
    office.dovecot.restart()
    sender = office.senders[0]
    office.dovecot.append(office.mailbox, message(sender=sender))
    office.wait_for(lambda: office.acknowledgements(sender), 60, "the acknowledgement after the restart")
    office.dovecot.restart()
    office.dovecot.append(office.mailbox, message(sender=sender, text="ขอลาครับ ติดราชการ"))
    office.wait_for(lambda: len(office.acknowledgements(sender)) == 2, 60, "the second acknowledgement")
    assert office.dovecot.messages(office.mailbox) == []


def test_malformed_messages_end_in_quarantine_while_the_daemon_goes_on(office):
    sender = office.senders[0]
    bad = [
        b"",
        message(sender=sender, message_id=None),
        b"From: " + sender.encode() + b"\r\nMessage-ID: <broken-1@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="gone"\r\n\r\nnothing\r\n',
        b"From: " + sender.encode() + b"\r\nMessage-ID: <charset-1@x>\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\x81\x8d\xfe\xff\r\n",
        message(sender=sender, attachments=(("big.pdf", b"%PDF" + os.urandom(30 * 1024 * 1024)),)),
    ]
    for raw in bad:
        office.dovecot.append(office.mailbox, raw or b"\r\n")
    office.dovecot.append(office.mailbox, message(sender=sender))
    office.start()
    office.wait_for(lambda: office.acknowledgements(sender), 120, "the good message's acknowledgement")
    office.wait_for(lambda: len(office.dovecot.messages(office.mailbox, "Quarantine")) == len(bad), 60, "the quarantine")
    assert len(office.dovecot.messages(office.mailbox, "Processed")) == 1
    assert len(office.acknowledgements(sender)) == 1


def test_sigkill_at_random_points_handles_and_acknowledges_each_message_exactly_once(office):
    total = 200
    for n in range(total):
        sender = office.senders[n % len(office.senders)]
        office.dovecot.append(office.mailbox, message(sender=sender, message_id=f"<kill-{n}@school.test>", text=f"ยืนยันเข้าร่วมประชุม ({n})"))
    rng = random.Random(int(os.environ.get("KILL_SEED", "2569")))
    kills, waiting_at_kill = 0, []
    for _ in range(8):
        office.start()
        time.sleep(rng.uniform(0.7, 1.5))
        if office.process.poll() is None:
            office.kill()
            kills += 1
            waiting_at_kill.append(len(office.dovecot.messages(office.mailbox)))
    office.start("--once")
    office.process.wait(timeout=300)
    office.postfix.wait_for_queue_empty(timeout=120)
    acks = [ack for sender in office.senders for ack in office.acknowledgements(sender)]
    answered = [ack["In-Reply-To"] for ack in acks]
    processed = [email.message_from_bytes(raw)["Message-ID"] for raw in office.dovecot.messages(office.mailbox, "Processed")]
    lost = total - len(set(processed))
    duplicated_moves = len(processed) - len(set(processed))
    duplicated_acks = len(answered) - len(set(answered))
    in_doubt = sum(text.count("counted as sent") for text in (p.read_text() for p in (office.config.parent / "store" / "sent").glob("*.json")))
    print(f"\nkill test: {total} messages, {kills} SIGKILLs (inbox left at each: {waiting_at_kill}), lost {lost}, "
          f"handled twice {duplicated_moves}, acknowledgements {len(set(answered))} distinct / {len(answered)} sent, "
          f"{in_doubt} killed while the server was accepting them")
    assert sum(1 for waiting in waiting_at_kill if 0 < waiting < total) >= 3, "at least three kills hit the daemon mid-backlog"
    assert office.dovecot.messages(office.mailbox) == []
    assert (lost, duplicated_moves) == (0, 0)
    assert (len(set(answered)), duplicated_acks) == (total, 0)

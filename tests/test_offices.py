"""Many offices in one process (service/offices.py): each office's mail, keys and files stay its own.

The isolation and the folder-following tests run on the real servers: the
offices' shared mailboxes are Dovecot users read over IMAP IDLE, their mail
goes out through Postfix into the recipients' Dovecot mailboxes. The
supervisor runs in a thread of the test (to look at its offices) or, to
prove that adding and removing offices needs no restart, as `secretary run
--offices DIR` in a process of its own.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from helpers import ENV, MAILBOX, message, write_config
from worlds import Servers, clerk
from service.config import load
from service.mail.message import InboundMessage
from service.offices import OfficeThread, Supervisor, claims
from service.pipeline import log_shard

ROOT = Path(__file__).resolve().parents[1]
BANGKOK = ZoneInfo("Asia/Bangkok")
SECRET_B = "office-b-has-a-secret-of-its-own"
ENVIRON = {**os.environ, **ENV, "SECRETARY_REPLY_KEY_B": SECRET_B}


def wait_for(condition, what: str, timeout: float = 60.0, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" + (f"; log:\n{log.read_text()[-4000:]}" if log else ""))


def into_folder(config: Path, offices: Path, name: str, extra: str = "") -> Path:
    """An office's configuration moved into the offices' folder, its store kept where it was (paths made absolute)."""
    text = config.read_text(encoding="utf-8").replace('path = "store"', f'path = "{config.parent / "store"}"', 1)
    path = offices / f"{name}.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def small_office(tmp_path: Path, offices: Path, name: str, dovecot, postfix) -> tuple[Path, str, str]:
    """An office whose directory has one school director; returns its file, its shared mailbox and the director."""
    home = tmp_path / name
    home.mkdir()
    tag = uuid.uuid4().hex[:8]
    mailbox, director = f"meeting-{name}-{tag}@office.test", f"director-{name}-{tag}@school.test"
    for address in (mailbox, director):
        dovecot.add_user(address)
    (home / "directory.toml").write_text(
        f'[[people]]\nid = "p1"\nname = "ผู้อำนวยการโรงเรียน {name}"\nemails = ["{director}"]\nrole = "school_director"\n', encoding="utf-8")
    config = write_config(
        home,
        f'kind = "imap"\nhost = "{dovecot.host}"\nport = {dovecot.imap_port}\nsecurity = "none"\nusername = "{mailbox}"',
        f'kind = "smtp"\nhost = "{postfix.host}"\nport = {postfix.smtp_port}\nsecurity = "none"',
        directory=home / "directory.toml",
    )
    config.write_text(config.read_text(encoding="utf-8").replace(MAILBOX, mailbox), encoding="utf-8")
    return into_folder(config, offices, name), mailbox, director


def logged(store: Path, raw: bytes) -> dict | None:
    """The store's log entry for a message, read from its shard file as another process would."""
    identity = InboundMessage.parse(raw).identity
    shard = store / f"{log_shard(identity)}.json"
    if not shard.exists():
        return None
    return next((doc for doc in json.loads(shard.read_text(encoding="utf-8")).get("messages", {}).values()
                 if doc["identity"] == identity), None)


def mail_files(store: Path) -> set[str]:
    """The content-addressed names of every message an office's store keeps, in and out."""
    return {path.name for path in (store / "mail").rglob("*") if path.is_file()}


def acknowledged(dovecot, address: str) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(raw, policy=email.policy.default) for raw in dovecot.messages(address)]


@pytest.fixture
def supervised():
    """Start a Supervisor on a folder in a thread; everything started is stopped at the end."""
    started: list[tuple[Supervisor, threading.Thread]] = []

    def start(folder: Path) -> Supervisor:
        supervisor = Supervisor(folder, ENVIRON, rescan_seconds=0.3)
        thread = threading.Thread(target=supervisor.run, name="supervisor")
        thread.start()
        started.append((supervisor, thread))
        return supervisor

    yield start
    for supervisor, thread in started:
        supervisor.stop()
        thread.join(60)
        assert not thread.is_alive(), "the supervisor stopped"


def test_a_reply_key_of_office_a_sent_to_office_b_is_not_taken_as_an_answer_to_a(tmp_path, mail_servers, supervised):
    dovecot, postfix = mail_servers
    offices = tmp_path / "offices"
    offices.mkdir()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a, b = Servers(tmp_path / "a", mail_servers), Servers(tmp_path / "b", mail_servers)
    # B knows the same people as A, so A's group is a known sender at B too: only the key and the store can tell.
    b.config.write_text(b.config.read_text(encoding="utf-8").replace(str(tmp_path / "b" / "directory.toml"), str(tmp_path / "a" / "directory.toml")))
    into_folder(a.config, offices, "a")
    into_folder(b.config, offices, "b", '[security]\nreply_key_secret_env = "SECRETARY_REPLY_KEY_B"\n')
    settings_a, settings_b = load(offices / "a.toml", ENVIRON), load(offices / "b.toml", ENVIRON)
    start = (datetime.now(BANGKOK) + timedelta(days=20)).replace(hour=9, minute=0, second=0, microsecond=0)
    said = clerk(settings_a, lambda: datetime.now(BANGKOK), "meeting_new", {
        "kind": "school_administrators", "title": "การประชุมผู้บริหารสถานศึกษา", "number": 11, "year_be": start.year + 543,
        "start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat(), "place": "ห้องประชุมใหญ่",
        "chair": "p-director", "secretary": "p-deputy", "attendees": ["role:school_director"],
    })
    meeting = f"sa{start.year + 543}-11"
    assert f"opened meeting {meeting}" in said

    supervisor = supervised(offices)
    group = a.address("admin")
    call = wait_for(lambda: acknowledged(dovecot, group), "A's call for items in the group's mailbox")[0]
    assert sorted(supervisor.offices) == ["a", "b"]
    assert len(supervisor.scheduler.get_jobs()) == 6, "one shared scheduler with each office's three jobs"

    def answer(to: str) -> bytes:
        return message(sender=f"กลุ่มอำนวยการ <{group}>", to=to, subject=f"Re: {call['Subject']}",
                       text="เรื่องเพื่อทราบ: รายงานผลการดำเนินงาน รายละเอียดตามเอกสารแนบ",
                       headers=(("In-Reply-To", call["Message-ID"]), ("References", call["Message-ID"])))

    misdirected, meant = answer(b.mailbox), answer(a.mailbox)
    dovecot.append(b.mailbox, misdirected)
    at_b = wait_for(lambda: logged(settings_b.store, misdirected), "B to file the misdirected reply")
    dovecot.append(a.mailbox, meant)
    at_a = wait_for(lambda: logged(settings_a.store, meant), "A to file the reply meant for it")

    assert at_a["meetings"] == [meeting] and at_a["verdict"]["reply_key"]["meeting"], "A ties its own key to its meeting"
    assert at_b["meetings"] == [] and at_b["verdict"]["reply_key"] is None, "B does not read A's key"
    assert not (settings_b.store / "meetings").exists() or meeting not in os.listdir(settings_b.store / "meetings")
    assert logged(settings_a.store, misdirected) is None, "B's message never reaches A's store"
    assert logged(settings_b.store, meant) is None, "A's message never reaches B's store"
    assert mail_files(settings_a.store) and mail_files(settings_b.store)
    assert not mail_files(settings_a.store) & mail_files(settings_b.store), "no message of one office is kept by the other"


def test_offices_follow_the_folder_without_a_restart_and_a_broken_file_stops_no_one(tmp_path, mail_servers):
    dovecot, postfix = mail_servers
    offices = tmp_path / "offices"
    offices.mkdir()
    _, mailbox_a, director_a = small_office(tmp_path, offices, "a", dovecot, postfix)
    log = tmp_path / "supervisor.log"
    with log.open("ab") as output:
        process = subprocess.Popen([sys.executable, "-m", "service", "run", "--offices", str(offices)], stdout=output, stderr=output,
                                   env={**ENVIRON, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        def answered(mailbox: str, director: str) -> None:
            before = len(acknowledged(dovecot, director))
            dovecot.append(mailbox, message(sender=director, to=mailbox))
            wait_for(lambda: len(acknowledged(dovecot, director)) > before, f"{mailbox} to answer", log=log)

        wait_for(lambda: "office a started" in log.read_text(), "office a to start", log=log)
        answered(mailbox_a, director_a)

        (offices / "broken.toml").write_text('[office]\nname = "ไม่ครบ"\n', encoding="utf-8")
        _, mailbox_c, director_c = small_office(tmp_path, offices, "c", dovecot, postfix)
        wait_for(lambda: "office broken not started" in log.read_text(), "the broken file to be reported", log=log)
        answered(mailbox_c, director_c)
        answered(mailbox_a, director_a)

        with (offices / "a.toml").open("a", encoding="utf-8") as changed:
            changed.write("# changed\n")
        wait_for(lambda: log.read_text().count("office a started") == 2, "office a to start again from its changed file", log=log)
        answered(mailbox_a, director_a)

        (offices / "c.toml").unlink()
        wait_for(lambda: "office c stopped" in log.read_text(), "office c to stop", log=log)
        dovecot.append(mailbox_c, message(sender=director_c, to=mailbox_c))
        answered(mailbox_a, director_a)  # a's answer comes after c's message arrived: had c run, it would have been handled
        assert len(dovecot.messages(mailbox_c)) == 1, "a removed office's mailbox is no longer read"
        assert process.poll() is None
        assert log.read_text().count("office broken not started") == 1, "a broken file is reported once, not at every look"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    assert code == 0
    assert log.read_text().rstrip().endswith("secretary stopped")


def test_an_office_that_fails_is_started_again_and_the_others_go_on(tmp_path, supervised, monkeypatch):
    offices = tmp_path / "offices"
    offices.mkdir()
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        config = write_config(home, f'kind = "maildir"\npath = "{home / "mailbox"}"', f'kind = "file"\npath = "{home / "outgoing"}"')
        config.write_text(config.read_text(encoding="utf-8").replace(MAILBOX, f"meeting@{name}.test"), encoding="utf-8")
        into_folder(config, offices, name)
    failures = {"a": 1}
    run_daemon = OfficeThread._run_daemon

    def failing_once(self: OfficeThread) -> None:
        if failures.get(self.name):
            failures[self.name] -= 1
            raise RuntimeError("a bug in office a")
        run_daemon(self)

    monkeypatch.setattr(OfficeThread, "_run_daemon", failing_once)
    supervisor = supervised(offices)
    wait_for(lambda: len(supervisor.offices) == 2, "both offices to start")
    from service.mail.maildir import deliver

    for name in ("a", "b"):
        deliver(tmp_path / name / "mailbox", message(to=f"meeting@{name}.test"), "reply")
    for name in ("a", "b"):
        wait_for(lambda: list((tmp_path / name / "outgoing").glob("*.eml")), f"office {name} to answer")
    assert supervisor.offices["a"].restarts == 1 and supervisor.offices["b"].restarts == 0

    (offices / "b-again.toml").write_text((offices / "b.toml").read_text(encoding="utf-8"), encoding="utf-8")
    wait_for(lambda: "b-again" in supervisor.rejected, "the copy of b's file to be refused")
    assert "already belong(s) to office b" in supervisor.rejected["b-again"].problem
    assert sorted(supervisor.offices) == ["a", "b"]


def test_the_deploy_examples_are_offices_one_supervisor_takes_together():
    files = sorted((ROOT / "deploy" / "offices").glob("*.toml"))
    texts = [path.read_text(encoding="utf-8") for path in files]
    environ = {name: f"{name}-a-secret-of-its-own" for text in texts for name in re.findall(r'_env = "(\w+)"', text)}
    first, second = (load(path, environ) for path in files)
    assert type(first.source) is not type(second.source), "the examples show two kinds of mailbox"
    assert not claims(first) & claims(second)
    assert first.reply_key_secret != second.reply_key_secret, "each office signs its reply keys with a secret of its own"

"""Offices on IMAP, Exchange Server and Microsoft 365 in one `secretary run --offices DIR`, each its own, each stopped at once.

One office reads its shared mailbox over IMAP IDLE from the real Dovecot and
sends through Postfix; one is on the EWS double, one on the Graph double.
All three share one directory, so only each office's reply-key secret and
store tell them apart. Their poll_interval and tick are 30 seconds, so a stop
that waited for the sleep in hand would take that long: removing an office's
file, or SIGTERM, must end its wait within a second or two (`interrupt()`).
"""

from __future__ import annotations

import email
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from exchange_double import ExchangeDouble
from graph_double import CLIENT_ID, SECRET, TENANT, GraphDouble
from helpers import MAILBOX, message, write_config
from test_offices import BANGKOK, ENVIRON, ROOT, acknowledged, into_folder, logged, mail_files, wait_for
from worlds import Servers, clerk, run
from service.config import load
from service.offices import RESCAN_SECONDS

SLOW = 30  # seconds: every office's poll_interval and tick_seconds
SECRETS = {"SECRETARY_REPLY_KEY_EWS": "the-exchange-office-has-its-own-secret", "SECRETARY_REPLY_KEY_GRAPH": "so-has-the-graph-office"}


def slow(config: Path, mailbox: str | None = None, secret_env: str | None = None) -> None:
    """An office's file made slow to poll and tick, with a shared mailbox and a reply-key secret of its own."""
    text = config.read_text(encoding="utf-8").replace("tick_seconds = 1\n", f"tick_seconds = {SLOW}\n", 1)
    text = text.replace("[sender]\n", f"poll_interval = {SLOW}\n[sender]\n", 1)
    if mailbox:
        text = text.replace(MAILBOX, mailbox)
    if secret_env:
        text += f'[security]\nreply_key_secret_env = "{secret_env}"\n'
    config.write_text(text, encoding="utf-8")


def microsoft_office(home: Path, offices: Path, name: str, table: str, directory: Path) -> Path:
    home.mkdir()
    config = write_config(home, table, table, directory=directory)
    slow(config, f"meeting-{name}@office.test", f"SECRETARY_REPLY_KEY_{name.upper()}")
    return into_folder(config, offices, name)


def answers_to(raws: list[bytes], message_id: str) -> int:
    return sum(email.message_from_bytes(raw)["In-Reply-To"] == message_id for raw in raws)


def test_imap_exchange_and_graph_offices_run_side_by_side_and_stop_within_seconds(tmp_path, mail_servers):
    dovecot, postfix = mail_servers
    offices = tmp_path / "offices"
    offices.mkdir()
    (tmp_path / "imap").mkdir()
    world = Servers(tmp_path / "imap", mail_servers)
    slow(world.config)
    into_folder(world.config, offices, "imap")
    directory = tmp_path / "imap" / "directory.toml"
    ews, graph = ExchangeDouble().start(), GraphDouble("meeting-graph@office.test").start()
    try:
        microsoft_office(tmp_path / "ews", offices, "ews",
                         f'kind = "exchange"\nurl = "{ews.url}"\nusername = \'{ews.username}\'', directory)
        microsoft_office(tmp_path / "graph", offices, "graph",
                         f'kind = "graph"\ntenant = "{TENANT}"\nclient_id = "{CLIENT_ID}"\nauthority = "{graph.authority}"\n'
                         f'graph_url = "{graph.graph_url}"', directory)
        environ = {**ENVIRON, **SECRETS, "SECRETARY_EXCHANGE_PASSWORD": ews.password, "SECRETARY_GRAPH_CLIENT_SECRET": SECRET,
                   "REQUESTS_CA_BUNDLE": str(graph.ca_file)}
        settings = {name: load(offices / f"{name}.toml", environ) for name in ("imap", "ews", "graph")}

        # The IMAP office opens a meeting and sends its call for items before the process starts.
        start = (datetime.now(BANGKOK) + timedelta(days=20)).replace(hour=9, minute=0, second=0, microsecond=0)
        clock = lambda: datetime.now(BANGKOK)  # noqa: E731
        said = clerk(settings["imap"], clock, "meeting_new", {
            "kind": "school_administrators", "title": "การประชุมผู้บริหารสถานศึกษา", "number": 12, "year_be": start.year + 543,
            "start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat(), "place": "ห้องประชุมใหญ่",
            "chair": "p-director", "secretary": "p-deputy", "attendees": ["role:school_director"],
        })
        meeting = f"sa{start.year + 543}-12"
        assert f"opened meeting {meeting}" in said
        handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            run(settings["imap"], clock)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        group = world.address("admin")
        call = wait_for(lambda: acknowledged(dovecot, group), "the call for items in the group's mailbox")[0]

        def answer(to: str) -> bytes:
            return message(sender=f"กลุ่มอำนวยการ <{group}>", to=to, subject=f"Re: {call['Subject']}",
                           text="เรื่องเพื่อทราบ: รายงานผลการดำเนินงาน รายละเอียดตามเอกสารแนบ",
                           headers=(("In-Reply-To", call["Message-ID"]), ("References", call["Message-ID"])))

        # The group answers its own office, and by mistake the other two: each already waiting when the process starts.
        sent = {name: answer(settings[name].office.mailbox) for name in settings}
        dovecot.append(settings["imap"].office.mailbox, sent["imap"])
        ews.deliver(sent["ews"])
        graph.deliver(sent["graph"])

        log = tmp_path / "supervisor.log"
        with log.open("ab") as output:
            process = subprocess.Popen([sys.executable, "-m", "service", "run", "--offices", str(offices)], stdout=output,
                                       stderr=output, env={**environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
        try:
            at = {name: wait_for(lambda: logged(settings[name].store, sent[name]), f"office {name} to file its answer", log=log)
                  for name in settings}
            assert at["imap"]["meetings"] == [meeting] and at["imap"]["verdict"]["reply_key"]["meeting"], "its own key, its meeting"
            for name in ("ews", "graph"):
                assert at[name]["meetings"] == [] and at[name]["verdict"]["reply_key"] is None, f"{name} does not read the IMAP office's key"
                assert not (settings[name].store / "meetings").exists() or meeting not in [p.name for p in (settings[name].store / "meetings").iterdir()]
            for name in settings:
                for other in settings:
                    if other != name:
                        assert logged(settings[name].store, sent[other]) is None, f"{other}'s message never reaches {name}'s store"
                        assert not mail_files(settings[name].store) & mail_files(settings[other].store)

            acks = {
                "imap": lambda: [raw for raw in dovecot.messages(group)],
                "ews": lambda: [s.mime for s in ews.sent],
                "graph": lambda: list(graph.sent),
            }
            for name in settings:
                wait_for(lambda: answers_to(acks[name](), email.message_from_bytes(sent[name])["Message-ID"]),
                         f"office {name} to acknowledge its answer", log=log)
            assert dovecot.messages(settings["imap"].office.mailbox, "Processed") == [sent["imap"]]
            assert ews.messages("Processed") == [sent["ews"]] and ews.messages() == []
            assert [m.raw for m in graph.mailbox.in_folder("Processed")] == [sent["graph"]]

            # The Graph office's file goes: it stops within seconds, though it sleeps 30 between polls.
            (offices / "graph.toml").unlink()
            removed = time.monotonic()
            later = {name: message(sender=group, to=settings[name].office.mailbox) for name in settings}
            ews.deliver(later["ews"])
            dovecot.append(settings["imap"].office.mailbox, later["imap"])
            wait_for(lambda: "office graph: its file is gone; stopping it" in log.read_text(), "graph to be told to stop", log=log)
            stopping = time.monotonic()
            wait_for(lambda: "office graph stopped" in log.read_text(), "graph to stop", log=log)
            stopped = time.monotonic()
            assert stopped - stopping < 2.0, f"graph took {stopped - stopping:.1f} s to end its {SLOW}-second wait"
            assert stopped - removed < RESCAN_SECONDS + 2.0
            asked = len(graph.seen)
            graph.deliver(later["graph"])

            # The other two run on: the IMAP office at once by IDLE, the Exchange office at its next GetEvents.
            for name in ("imap", "ews"):
                wait_for(lambda: logged(settings[name].store, later[name]), f"office {name} to go on after graph stopped",
                         timeout=SLOW + 20, log=log)
            assert process.poll() is None
            assert len(graph.seen) == asked, "a stopped office asks Graph nothing more"
            assert [m.raw for m in graph.mailbox.in_folder("Inbox")] == [later["graph"]]
        finally:
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(60)
            took = time.monotonic() - signalled
        assert code == 0
        assert took < 5.0, f"SIGTERM took {took:.1f} s with a {SLOW}-second poll_interval and tick"
        assert log.read_text().rstrip().endswith("secretary stopped")
        for name in settings:
            assert answers_to(acks[name](), email.message_from_bytes(sent[name])["Message-ID"]) == 1, f"{name} acknowledged once"
        assert ews.operations[-1] == "Unsubscribe", "the Exchange office stopped cleanly"
    finally:
        ews.stop()
        graph.stop()

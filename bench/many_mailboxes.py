"""Many mailboxes: one `secretary run --offices DIR` watching 245 offices' mailboxes with IMAP IDLE.

A private Dovecot holds one shared mailbox per office (its limits raised for
that many IDLE sessions) and the mailbox of the school director who writes
to every office; a private Postfix delivers the offices' acknowledgements
into that director's Maildir by LMTP, as in latency.py. Each office has a
configuration of its own (lab.py's office_config: its own store, a small
directory) in one folder, which the supervisor follows.

Measured: the process's RSS with no office, with one, and with all of them
in IDLE (memory per mailbox: the growth from one office to all, over the
offices added), again after every office has handled one message (the
warm-up round), and its thread count. Then, round after round, one message
is APPENDed into each of `--burst` offices chosen at random, all at once
(one IMAP client per office, released together), and each is timed from
its APPEND to its acknowledgement's file in the director's Maildir (matched
by In-Reply-To): p50/p95/p99 over every round.

    python3 bench/many_mailboxes.py --offices 20 --rounds 3     # develop
    python3 bench/many_mailboxes.py                              # 245 offices, 12 rounds of 20 (240 samples)
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from lab import (CLERK, ENV, HOST, MAILBOX, OFFICE_DOMAIN, ROOT, SCHOOL_DOMAIN, Backlog, Dovecot, Postfix, Row, Staff, arguments,
                 office_config, percentile, report, start, workdir)
ACK_TIMEOUT = 60.0
START_TIMEOUT = 600.0
SETTLE_SECONDS = 3.0  # after the last office connected: every one into IDLE
#: The default: each office's timeline is looked at, and its IDLE renewed, once a minute (tests/helpers.py's 1 s would
#: make 245 offices poll 245 times a second).
TICK_SECONDS = 60.0
#: A SIGTERM cuts every office's IDLE short within a second; this leaves room for the batch in hand.
STOPPED_WITHIN = 10.0


def status(pid: int) -> dict[str, int]:
    """VmRSS (kB) and Threads of a process, from /proc."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            found[key] = int(value.split()[0])
    return found


def mailbox_of(office: int) -> str:
    return f"meeting{office:03d}@{OFFICE_DOMAIN}"


def add_office(root: Path, offices: Path, office: int, dovecot: Dovecot, postfix: Postfix) -> Staff:
    """An office: its Dovecot user, its own folder (store, one-school directory) and its file in the offices' folder."""
    home = root / "homes" / f"{office:03d}"
    config, staff = office_config(home, f"{HOST}:{dovecot.imap_port}", f"{HOST}:{postfix.smtp_port}", schools=1, store=home / "store")
    dovecot.add_user(mailbox_of(office))
    text = config.read_text(encoding="utf-8").replace(MAILBOX, mailbox_of(office))
    text = text.replace("tick_seconds = 1\n", f"tick_seconds = {TICK_SECONDS:g}\n", 1)
    partial = offices / f".office{office:03d}.part"
    partial.write_text(text, encoding="utf-8")
    partial.replace(offices / f"office{office:03d}.toml")  # the supervisor never reads half a file
    return staff


class Supervisor:
    """`secretary run --offices DIR` as its own process, as systemd runs it; its log tells when offices are connected."""

    def __init__(self, root: Path, offices: Path) -> None:
        self.log = root / "supervisor.log"
        with self.log.open("wb") as output:
            self.process = subprocess.Popen([sys.executable, "-m", "service", "run", "--offices", str(offices)], cwd=ROOT,
                                            stdout=output, stderr=output, env={**os.environ, **ENV, "PYTHONPATH": str(ROOT)})

    def wait_for(self, text: str, count: int, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while (seen := self.log.read_text(errors="replace").count(text)) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{seen} of {count} × {text!r} in the supervisor's log:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        time.sleep(SETTLE_SECONDS)

    def status(self) -> dict[str, int]:
        return status(self.process.pid)

    def stop(self) -> float:
        """SIGTERM; how long it took every office to stop."""
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.perf_counter() - started


class Acknowledgements:
    """The director's Maildir, watched for new files; each is matched to the message it answers by In-Reply-To."""

    def __init__(self, dovecot: Dovecot, address: str) -> None:
        self.maildir = dovecot.mail / address / "Maildir"
        self.seen: set[str] = set()

    def new(self) -> list[tuple[str, float]]:
        """(In-Reply-To, when seen) of each file not seen before."""
        found = []
        for sub in ("new", "cur"):
            folder = self.maildir / sub
            if not folder.is_dir():
                continue
            for name in os.listdir(folder):
                if name in self.seen:
                    continue
                seen_at = time.perf_counter()
                try:
                    with open(folder / name, "rb") as file:
                        headers = email.message_from_binary_file(file, policy=email.policy.default, _class=email.message.EmailMessage)
                except FileNotFoundError:
                    continue  # moved from new/ to cur/ meanwhile: seen under its new name next time
                self.seen.add(name)
                found.append((str(headers.get("In-Reply-To", "")).strip(), seen_at))
        return found


def burst(dovecot: Dovecot, chosen: list[int], maker: Backlog) -> dict[str, float]:
    """APPEND one reply into each chosen office's mailbox at once, each from a client of its own logged in beforehand.

    Returns when each APPEND began, by the message's Message-ID.
    """
    mails = [maker.one("reply") for _ in chosen]
    clients = [dovecot.client(mailbox_of(office)) for office in chosen]
    ready = threading.Barrier(len(chosen))
    sent: dict[str, float] = {}

    def append(client, raw: bytes, message_id: str) -> None:
        ready.wait()
        sent[f"<{message_id}>"] = time.perf_counter()
        client.append("INBOX", raw)

    threads = [threading.Thread(target=append, args=(client, mail.raw, mail.message_id)) for client, mail in zip(clients, mails)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.logout()
    return sent


def collect(acks: Acknowledgements, sent: dict[str, float]) -> tuple[list[float], int]:
    """Each message's APPEND → acknowledgement, and how many were not acknowledged within ACK_TIMEOUT."""
    waiting = dict(sent)
    latencies = []
    deadline = time.perf_counter() + ACK_TIMEOUT
    while waiting and time.perf_counter() < deadline:
        for answered, seen_at in acks.new():
            if answered in waiting:
                latencies.append(seen_at - waiting.pop(answered))
        time.sleep(0.005)
    return latencies, len(waiting)


def main() -> None:
    def add(parser):
        parser.add_argument("--offices", type=int, default=245, help="offices, each with its own mailbox, in one process")
        parser.add_argument("--burst", type=int, default=20, help="offices that get a message at the same moment")
        parser.add_argument("--rounds", type=int, default=12, help="bursts measured (≥ 200 samples: rounds × burst)")

    args = arguments(__doc__.splitlines()[0], add)
    rng = random.Random(args.seed)
    with workdir("many", args.keep) as root:
        dovecot = Dovecot(root / "dovecot", connections=2 * args.offices)
        start(dovecot)
        postfix = Postfix(root / "postfix", dovecot.lmtp_port, [OFFICE_DOMAIN, SCHOOL_DOMAIN])
        supervisor = None
        try:
            start(postfix)
            dovecot.add_user(CLERK)
            offices = root / "offices"
            offices.mkdir()
            supervisor = Supervisor(root, offices)
            supervisor.wait_for("secretary started for the offices", 1)
            empty = supervisor.status()
            staff = add_office(root, offices, 0, dovecot, postfix)
            director = staff.directors[0].email  # every office's directory has the same one, who writes to them all
            dovecot.add_user(director)
            supervisor.wait_for("connected to", 1)
            one = supervisor.status()
            started = time.perf_counter()
            for office in range(1, args.offices):
                add_office(root, offices, office, dovecot, postfix)
            supervisor.wait_for("connected to", args.offices)
            all_started = time.perf_counter() - started
            idle = supervisor.status()

            acks = Acknowledgements(dovecot, director)
            maker = Backlog(staff, seed=args.seed)
            warm, missed_warm = [], 0
            everyone = list(range(args.offices))
            for first in range(0, args.offices, args.burst):  # every office handles its first message (templates, rules)
                latencies, missed = collect(acks, burst(dovecot, everyone[first:first + args.burst], maker))
                warm += latencies
                missed_warm += missed
            time.sleep(SETTLE_SECONDS)
            warmed = supervisor.status()
            latencies, missed = [], 0
            for _ in range(args.rounds):
                got, lost = collect(acks, burst(dovecot, rng.sample(everyone, min(args.burst, args.offices)), maker))
                latencies += got
                missed += lost
                time.sleep(rng.uniform(0.5, 1.5))
            stopping = supervisor.stop()
            supervisor = None
        finally:
            if supervisor is not None:
                supervisor.stop()
            postfix.stop()
            dovecot.stop()

    per_mailbox_idle = (idle["VmRSS"] - one["VmRSS"]) / max(1, args.offices - 1) / 1024
    per_mailbox_warm = (warmed["VmRSS"] - one["VmRSS"]) / max(1, args.offices - 1) / 1024
    fixed = idle["Threads"] - args.offices
    rows = [
        Row("RSS of the supervisor with no office", empty["VmRSS"] / 1024, "MB", note=f"with one office: {one['VmRSS'] / 1024:.0f} MB"),
        Row(f"RSS with {args.offices} offices in IDLE", idle["VmRSS"] / 1024, "MB",
            note=f"all {args.offices} offices, added at once, connected and settled in {all_started:.0f} s ({SETTLE_SECONDS:g} s of it settling)"),
        Row("memory per mailbox (IDLE, no mail yet)", per_mailbox_idle, "MB", note="(RSS with all − RSS with one) / the offices added"),
        Row("memory per mailbox (after each office handled a message)", per_mailbox_warm, "MB",
            note=f"warm-up: one message into every office, {args.burst} at a time; {len(warm)} acknowledged, {missed_warm} not"),
        Row(f"threads with {args.offices} offices", idle["Threads"], "", target=f"≤ {args.offices} + 5", ok=fixed <= 5,
            note=f"one per office's mailbox + {fixed} (main, the shared scheduler and its workers)"),
    ]
    note = f"{len(latencies)} samples, {args.rounds} rounds of {args.burst} offices at once out of {args.offices}" + (
        f"; {missed} not acknowledged within {ACK_TIMEOUT:.0f} s" if missed else "")
    for p in (50, 95, 99):
        value = percentile(latencies, p) if latencies else 0.0
        target = "< 2 s" if p == 99 else ""
        rows.append(Row(f"APPEND → acknowledgement p{p} ({args.burst} of {args.offices} at once)", value, "s", target=target,
                        ok=(bool(latencies) and value < 2.0 and not missed) if target else None, note=note if p == 99 else ""))
    rows.append(Row(f"SIGTERM → all {args.offices} offices stopped", stopping, "s", target=f"< {STOPPED_WITHIN:g} s",
                    ok=stopping < STOPPED_WITHIN, note="each office's IDLE wait is cut short within a second (Source.interrupt)"))
    report(rows, args)


if __name__ == "__main__":
    main()

"""Latency: a reply APPENDed to the shared mailbox → its acknowledgement delivered into the sender's own mailbox.

The whole loop is real: the daemon (bench/daemon_worker.py, `secretary run`
with a polling switch) watches a private Dovecot over IMAP, sends through a
private Postfix, which delivers by LMTP into the sender's Dovecot mailbox;
the clock stops when the acknowledgement's file appears in that Maildir. One
trial at a time, with a short random pause between, first with IDLE and then
with polling every second (the smallest `poll_interval` the configuration
allows). As the peer, the floor IDLE puts under any client: another IMAP
client's APPEND → the EXISTS that IDLE reports (Dovecot's own notify delay).

    python3 bench/latency.py --trials 20       # develop
    python3 bench/latency.py                   # 200 trials in each mode (the target: p99 < 2 s with IDLE)
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab import (CLERK, HOST, MAILBOX, OFFICE_DOMAIN, SCHOOL_DOMAIN, Backlog, Dovecot, Postfix, Row, Staff, arguments,
                 office_config, percentile, report, start, workdir)

HERE = Path(__file__).resolve().parent
ACK_TIMEOUT = 30.0


def delivered(dovecot: Dovecot, address: str) -> int:
    """How many messages LMTP has delivered into a mailbox (files in its Maildir's new/ and cur/)."""
    maildir = dovecot.mail / address / "Maildir"
    return sum(len(os.listdir(maildir / sub)) for sub in ("new", "cur") if (maildir / sub).is_dir())


def idle_floor(dovecot: Dovecot, trials: int, rng: random.Random) -> list[float]:
    """APPEND by one client → EXISTS seen by another one in IDLE: what IDLE costs any client."""
    watcher = dovecot.client(MAILBOX)
    writer = dovecot.client(MAILBOX)
    watcher.create_folder("Floor")
    watcher.select_folder("Floor")
    seen: list[float] = []
    try:
        for n in range(trials):
            watcher.idle()
            started = time.perf_counter()
            writer.append("Floor", b"From: a@school.test\r\nSubject: floor %d\r\n\r\nx\r\n" % n)
            while time.perf_counter() - started < ACK_TIMEOUT:
                if any(len(r) > 1 and r[1] == b"EXISTS" for r in watcher.idle_check(timeout=1)):
                    seen.append(time.perf_counter() - started)
                    break
            watcher.idle_done()
            time.sleep(rng.uniform(0.05, 0.2))
    finally:
        watcher.logout()
        writer.logout()
    return seen


def trials_of(mode: str, root: Path, dovecot: Dovecot, postfix: Postfix, senders: list, trials: int,
              rng: random.Random, seed: int) -> tuple[list[float], int, str]:
    """Run the daemon in one mode and time `trials` round trips; return the latencies, the timeouts and the log's tail."""
    config, _ = office_config(root / mode, f"{HOST}:{dovecot.imap_port}", f"{HOST}:{postfix.smtp_port}", schools=len(senders))
    log = root / f"daemon-{mode}.log"
    command = [sys.executable, str(HERE / "daemon_worker.py"), "-c", str(config)] + (["--no-idle"] if mode == "polling" else [])
    with log.open("wb") as output:
        daemon = subprocess.Popen(command, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 60
        while "secretary started" not in log.read_text(errors="replace"):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the daemon did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        time.sleep(1.5)  # into IDLE (or its first poll)
        maker = Backlog(Staff([], [], senders), seed=seed)
        appender = dovecot.client(MAILBOX)
        latencies, timeouts = [], 0
        try:
            for n in range(trials + 2):  # the first two warm the daemon up (imports, first connections)
                mail = maker.one("reply")
                sender = mail.sender
                before = delivered(dovecot, sender)
                started = time.perf_counter()
                appender.append("INBOX", mail.raw)
                while delivered(dovecot, sender) == before and time.perf_counter() - started < ACK_TIMEOUT:
                    time.sleep(0.005)
                took = time.perf_counter() - started
                if delivered(dovecot, sender) == before:
                    timeouts += 1
                elif n >= 2:
                    latencies.append(took)
                time.sleep(rng.uniform(0.05, 0.3))
        finally:
            appender.logout()
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    return latencies, timeouts, log.read_text(errors="replace")[-2000:]


def main() -> None:
    def add(parser):
        parser.add_argument("--trials", type=int, default=200, help="round trips in each mode (≥ 200 for the figure)")
        parser.add_argument("--senders", type=int, default=5, help="directors writing in turn (each a real mailbox)")

    args = arguments(__doc__.splitlines()[0], add)
    rng = random.Random(args.seed)
    rows: list[Row] = []
    with workdir("latency", args.keep) as root:
        dovecot = Dovecot(root / "dovecot")
        start(dovecot)
        postfix = Postfix(root / "postfix", dovecot.lmtp_port, [OFFICE_DOMAIN, SCHOOL_DOMAIN])
        try:
            start(postfix)
            _, staff = office_config(root / "directory", "maildir", "file", schools=args.senders)
            for address in (MAILBOX, CLERK, *(p.email for p in staff.directors)):
                dovecot.add_user(address)
            floor = idle_floor(dovecot, max(10, args.trials // 4), rng)
            results = {mode: trials_of(mode, root, dovecot, postfix, staff.directors, args.trials, rng, args.seed + k)
                       for k, mode in enumerate(("idle", "polling"))}
        finally:
            postfix.stop()
            dovecot.stop()
    for mode, (latencies, timeouts, tail) in results.items():
        if not latencies:
            rows.append(Row(f"latency ({mode}): no acknowledgement arrived", 0, "s", ok=False, note=tail[-500:]))
            continue
        note = f"{len(latencies)} trials" + (f", {timeouts} acknowledgements not seen within {ACK_TIMEOUT:.0f} s" if timeouts else "")
        for p in (50, 95, 99):
            value = percentile(latencies, p)
            peer = percentile(floor, p) if mode == "idle" and floor else None
            target = "< 2 s" if (mode, p) == ("idle", 99) else ""
            ok = (value < 2.0 and not timeouts) if target else None
            rows.append(Row(f"latency ({mode}) p{p}", value, "s", peer, None, target, ok, note if p == 99 else ""))
    if floor:
        rows[0].note = f"peer: Dovecot's IDLE notification alone (another client's APPEND → EXISTS), {len(floor)} trials"
    report(rows, args)


if __name__ == "__main__":
    main()

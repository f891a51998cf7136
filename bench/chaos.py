"""Chaos: an N-message run through `secretary run` while everything around it fails, then count what went wrong.

The daemon is the real command (`python3 -m service run`), against a private
Dovecot and Postfix, with its store on a filesystem of its own (a small tmpfs,
else a loop-mounted ext4 image) so the disk can really fill up. The messages
(bench/lab.py `Backlog`, from senders who are real mailboxes) arrive in
rounds; after each round one fault, in a shuffled order that has every kind:
SIGKILL of the daemon (at a random moment, mostly mid-backlog), a Dovecot
restart, a Postfix stop and start, the store's disk filled to the last byte
for a few seconds (what the daemon logs meanwhile is kept). Like systemd's
Restart=on-failure, a daemon that exits by itself is started again (and
counted). Then it is left to settle (inbox, outbox and Postfix's queue
empty), and the mailboxes are read back:

- lost: generated messages in neither Processed nor Quarantine;
- handled twice: a message in those folders twice, or filed twice in the store;
- acknowledgements lost / sent twice: by In-Reply-To, in the senders' own mailboxes.

All four must be 0.

    python3 bench/chaos.py --count 200         # develop
    python3 bench/chaos.py --count 2000        # the full run
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lab import (CLERK, ENV, HOST, MAILBOX, OFFICE_DOMAIN, ROOT, SCHOOL_DOMAIN, Backlog, Dovecot, Postfix, Row, append_all,
                 arguments, office_config, report, start, workdir)

EVENTS = ("kill", "dovecot", "postfix", "disk")


@contextmanager
def own_filesystem(folder: Path, size_mb: int) -> Iterator[str]:
    """Mount a filesystem of `size_mb` at `folder` for the store: tmpfs, else an ext4 image on a loop device.

    Yields how (or "" when neither could be mounted: then the disk-full fault is skipped, and the report says so).
    """
    folder.mkdir(parents=True)
    attempts = [
        (f"tmpfs of {size_mb} MB", [["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=755", "tmpfs", str(folder)]]),
        (f"ext4 image of {size_mb} MB on a loop device", [
            ["truncate", "-s", f"{size_mb}M", str(folder) + ".img"],
            ["mkfs.ext4", "-q", "-F", str(folder) + ".img"],
            ["mount", "-o", "loop", str(folder) + ".img", str(folder)],
        ]),
    ]
    how, failures = "", []
    for name, commands in attempts:
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                failures.append(f"{name}: `{' '.join(command)}` failed: {result.stderr.strip()}")
                break
        else:
            how = name
            break
    if not how:
        print("could not mount a filesystem for the store:\n  " + "\n  ".join(failures), file=sys.stderr)
    try:
        yield how
    finally:
        if how:
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        Path(str(folder) + ".img").unlink(missing_ok=True)


def fill(folder: Path) -> Path:
    """Write a ballast file until the filesystem has not one byte left."""
    ballast = folder / "ballast"
    descriptor = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            chunk = b"\0" * size
            for _ in range(1 << 20):  # bounded: 1 TiB at most in 1 MiB chunks
                try:
                    os.write(descriptor, chunk)
                except OSError:
                    break
    finally:
        os.close(descriptor)
    return ballast


class Daemon:
    """`secretary run` as a child process, appending to one log across restarts."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.exits: list[str] = []

    def start(self) -> None:
        environment = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "service", "-c", str(self.config), "run"],
                                            stdout=log, stderr=log, env=environment, cwd=ROOT, start_new_session=True)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def supervise(self) -> None:
        """Restart=on-failure: a daemon that exited by itself is noted and started again."""
        if self.process is not None and self.process.poll() is not None:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-40:]
            where = [line.strip() for line in tail if line.strip().startswith('File "')]
            self.exits.append(f"exit {self.process.returncode} at {where[-1] if where else '?'}: {tail[-1] if tail else ''}")
            self.start()

    def offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def since(self, offset: int) -> str:
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")


def ids_in(dovecot: Dovecot, address: str, folder: str, header: str = "Message-ID") -> list[str]:
    """The values of one header (angle brackets stripped) of every message in a folder."""
    found = []
    for raw in dovecot.messages(address, folder):
        head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        value = email.message_from_bytes(head, policy=email.policy.compat32)[header]
        found.append((value or "").strip().strip("<>"))
    return found


def unsent(store: Path) -> int:
    """Messages still in the outbox (read from its file: the daemon writes it atomically)."""
    try:
        outbox = json.loads((store / "outbox.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return len(outbox.get("mail", {}))


def main() -> None:
    def add(parser):
        parser.add_argument("--count", type=int, default=2000)
        parser.add_argument("--senders", type=int, default=20, help="directors who write (each a real mailbox)")
        parser.add_argument("--rounds", type=int, help="rounds of mail, each followed by a fault (default: count/100, at least 12)")
        parser.add_argument("--disk-mb", type=int, help="size of the store's filesystem (default: 0.25 MB a message + 48 MB)")
        parser.add_argument("--settle", type=float, default=900, help="seconds allowed, after the last fault, to finish")

    args = arguments(__doc__.splitlines()[0], add)
    rng = random.Random(args.seed)
    rounds = args.rounds or max(12, args.count // 100)
    schedule = [EVENTS[n % len(EVENTS)] for n in range(rounds)]
    rng.shuffle(schedule)
    disk_mb = args.disk_mb or int(args.count * 0.25 + 48)
    events: Counter[str] = Counter()
    kill_points: list[int] = []
    disk_logs: list[str] = []
    with workdir("chaos", args.keep) as root, own_filesystem(root / "storefs", disk_mb) as filesystem:
        dovecot = Dovecot(root / "dovecot")
        start(dovecot)
        postfix = Postfix(root / "postfix", dovecot.lmtp_port, [OFFICE_DOMAIN, SCHOOL_DOMAIN])
        daemon: Daemon | None = None
        try:
            start(postfix)
            store = root / "storefs" / "store"
            config, staff = office_config(root / "office", f"{HOST}:{dovecot.imap_port}", f"{HOST}:{postfix.smtp_port}",
                                          schools=args.senders, store=store)
            senders = [p.email for p in (*staff.groups, *staff.directors)]
            for address in (MAILBOX, CLERK, *(p.email for p in staff.officials), *senders):
                dovecot.add_user(address)
            mails = Backlog(staff, seed=args.seed).take(args.count)
            chunks = [mails[n * len(mails) // (rounds + 1):(n + 1) * len(mails) // (rounds + 1)] for n in range(rounds + 1)]
            daemon = Daemon(config, root / "daemon.log")
            append_all(dovecot, MAILBOX, (m.raw for m in chunks[0]))
            daemon.start()
            chaos_started = time.monotonic()
            for number, event in enumerate(schedule, start=1):
                daemon.supervise()
                if event == "disk" and not filesystem:
                    event = "kill"
                events[event] += 1
                print(f"round {number}/{rounds}: {len(chunks[number])} more messages, then {event}", flush=True)
                if event == "disk":  # full before the round's mail comes, so the daemon meets it with work in hand
                    offset = daemon.offset()
                    ballast = fill(root / "storefs")
                    free = os.statvfs(root / "storefs").f_bavail
                    append_all(dovecot, MAILBOX, (m.raw for m in chunks[number]))
                    time.sleep(rng.uniform(3, 6))
                    ballast.unlink()
                    disk_logs.append(f"(free blocks while full: {free})\n" + daemon.since(offset))
                    continue
                append_all(dovecot, MAILBOX, (m.raw for m in chunks[number]))
                time.sleep(rng.uniform(0.5, 2.5))
                if event == "kill":
                    kill_points.append(len(dovecot.messages(MAILBOX)))
                    daemon.kill()
                    time.sleep(rng.uniform(0.2, 1.0))
                    daemon.start()
                elif event == "dovecot":
                    dovecot.restart()
                else:
                    postfix.stop()
                    time.sleep(rng.uniform(1, 3))
                    start(postfix)
            chaos_seconds = time.monotonic() - chaos_started

            settle_started = time.monotonic()
            expected_acks = {m.message_id for m in mails if m.acknowledged}
            acks: list[str] = []
            while time.monotonic() - settle_started < args.settle:
                daemon.supervise()
                if not dovecot.messages(MAILBOX) and not unsent(store) and "Mail queue is empty" in postfix.queue():
                    acks = [a for address in senders for a in ids_in(dovecot, address, "INBOX", "In-Reply-To")]
                    if expected_acks <= set(acks):
                        break
                time.sleep(2)
            settled = time.monotonic() - settle_started
            daemon.stop()
            acks = [a for address in senders for a in ids_in(dovecot, address, "INBOX", "In-Reply-To")]
            moved = ids_in(dovecot, MAILBOX, "Processed") + ids_in(dovecot, MAILBOX, "Quarantine")
            inbox_left = len(dovecot.messages(MAILBOX))
            log_text = daemon.log.read_text(errors="replace")
            filed = Counter(entry["identity"] for path in (store / "log").glob("*.json")
                            for entry in json.loads(path.read_text(encoding="utf-8")).get("messages", {}).values())
            counted_as_sent = sum(path.read_text(encoding="utf-8").count("counted as sent") for path in (store / "sent").glob("*.json"))
        finally:
            if daemon:
                daemon.stop()
            postfix.stop()
            dovecot.stop()

    generated = {m.message_id for m in mails}
    moved_counts = Counter(moved)
    lost = len(generated - set(moved))
    twice = sum(c - 1 for c in moved_counts.values() if c > 1) + sum(c - 1 for c in filed.values() if c > 1)
    ack_counts = Counter(a for a in acks if a in generated)
    acks_lost = len(expected_acks - set(ack_counts))
    acks_twice = sum(c - 1 for c in ack_counts.values() if c > 1)
    unexpected_acks = sum(c for a, c in ack_counts.items() if a not in expected_acks)
    recognised = log_text.count("already handled")
    postponed = sum(1 for line in log_text.splitlines() if "will retry" in line and "Connection refused" in line)
    mid_backlog = sum(1 for waiting in kill_points if waiting > 0)
    summary = (f"{args.count} msgs in {rounds} rounds over {chaos_seconds:.0f} s; faults {dict(events)}; "
               f"{mid_backlog}/{len(kill_points)} kills mid-backlog (inbox at each: {kill_points}); store on {filesystem or 'the main disk'}; "
               f"{recognised} re-fetched and recognised as already handled; {counted_as_sent} killed mid-send, counted as sent; "
               f"{postponed} acknowledgements put off a minute or more because Postfix was down; "
               f"inbox left {inbox_left}; settled {settled:.0f} s after the last fault")
    rows = [
        Row("chaos: messages lost", lost, "", target="= 0", ok=lost == 0 and inbox_left == 0, note=summary),
        Row("chaos: messages handled twice", twice, "", target="= 0", ok=twice == 0),
        Row("chaos: acknowledgements lost", acks_lost, "", target="= 0", ok=acks_lost == 0,
            note=f"{len(expected_acks)} expected, {len(ack_counts)} distinct received" + (f", {unexpected_acks} unexpected" if unexpected_acks else "")),
        Row("chaos: acknowledgements sent twice", acks_twice, "", target="= 0", ok=acks_twice == 0),
        Row("chaos: daemon exits it did not choose", len(daemon.exits), "", target="= 0", ok=not daemon.exits,
            note=" || ".join(daemon.exits)[:1500]),
    ]
    said = [line for text in disk_logs for line in text.splitlines()
            if line.startswith(("ERROR", "WARNING", "CRITICAL")) and "No space left" in line]
    crashed = sum(text.count("Traceback (most recent call last)") for text in disk_logs)
    if filesystem:
        rows.append(Row("chaos: disk full: said plainly, no traceback", len(said), "lines", target="ENOSPC named, 0 crashes",
                        ok=bool(said) and not crashed,
                        note=(said[0][:300] if said else "nothing about the disk in the log while it was full")
                        + (f"; {crashed} traceback(s) while the disk was full" if crashed else "")))
    else:
        rows.append(Row("chaos: disk full", 0, "", ok=None, note="no filesystem could be mounted for the store: not tested"))
    for number, text in enumerate(disk_logs, start=1):
        lines = [line for line in text.strip().splitlines() if "apscheduler" not in line]
        print(f"\n--- what the daemon logged while the disk was full ({number}/{len(disk_logs)}; apscheduler's lines left out) ---")
        print("\n".join(lines[:20]) + ("\n…" if len(lines) > 20 else ""))
    print()
    report(rows, args)


if __name__ == "__main__":
    main()

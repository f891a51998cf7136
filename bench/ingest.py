"""Ingest throughput: how fast the daemon works through a backlog, against mbsync pulling the same backlog.

A backlog of N realistic messages (bench/lab.py `Backlog`) is APPENDed to a
private Dovecot's shared mailbox, into an office whose meeting has sent its
invitations and whose next meeting is collecting items, so replies are
counted and submissions filed as in real life. Then, on that same mailbox:
`mbsync` pulls it into a Maildir (median of a few runs: the peer, which only
copies), and the daemon (`Daemon(...).run(once=True)` in a child process,
bench/daemon_worker.py) fetches, understands, files, moves every message and
queues its acknowledgement, sending to nowhere (or to smtp-sink with
`--sink`). Printed: both rates, their ratio (target ≥ 0.5), the daemon's
peak memory, and its rate over the last tenth of the backlog against the
first (a cost that grows with the backlog shows here).

    python3 bench/ingest.py --count 200        # develop
    python3 bench/ingest.py --count 5000       # the full figure
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from lab import (BACKLOG_TIME, HOST, MAILBOX, Backlog, Dovecot, RecordingSender, Row, SmtpSink, append_all, arguments, binary,
                 judge, keys_from, median, office_config, open_meetings, report, settings_of, start, workdir)

HERE = Path(__file__).resolve().parent


def mbsync(dovecot: Dovecot, folder: Path, expected: int) -> float:
    """Seconds for mbsync to pull the shared inbox into a new Maildir (read-only on the server)."""
    folder.mkdir(parents=True)
    config = folder / "mbsyncrc"
    config.write_text(
        f"IMAPAccount bench\nHost {HOST}\nPort {dovecot.imap_port}\nUser {MAILBOX}\nPass secret\nSSLType None\nAuthMechs LOGIN\n\n"
        f"IMAPStore far\nAccount bench\n\nMaildirStore near\nPath {folder}/\nInbox {folder}/INBOX\n\n"
        f"Channel pull\nFar :far:\nNear :near:\nPatterns INBOX\nSync Pull\nCreate Near\nExpunge None\nSyncState *\n",
        encoding="utf-8",
    )
    started = time.perf_counter()
    result = subprocess.run([binary("mbsync", "isync"), "-c", str(config), "-q", "pull"], capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - started
    pulled = sum(1 for sub in ("new", "cur") for _ in (folder / "INBOX" / sub).iterdir())
    if result.returncode != 0 or pulled != expected:
        raise SystemExit(f"mbsync pulled {pulled} of {expected} (exit {result.returncode}): {result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    def add(parser):
        parser.add_argument("--count", type=int, default=2000, help="messages in the backlog")
        parser.add_argument("--schools", type=int, default=300, help="school directors in the directory")
        parser.add_argument("--mbsync-runs", type=int, default=3)
        parser.add_argument("--sink", action="store_true", help="send the acknowledgements to smtp-sink instead of nowhere")
        parser.add_argument("--profile", type=Path, help="profile the daemon (cProfile statistics into this file)")

    args = arguments(__doc__.splitlines()[0], add)
    with workdir("ingest", args.keep) as root:
        dovecot = Dovecot(root / "dovecot")
        start(dovecot)
        sink = SmtpSink(root / "sink") if args.sink else None
        try:
            if sink:
                start(sink)
            dovecot.add_user(MAILBOX)
            config, staff = office_config(root / "office", f"{HOST}:{dovecot.imap_port}",
                                          f"{HOST}:{sink.port}" if sink else "file", args.schools)
            opened = open_meetings(settings_of(config), staff, seed=args.seed)
            invitations = RecordingSender()
            opened.service.outbox.drain(invitations, opened.clock())
            opened.service.office.store.close()
            mails = Backlog(staff, keys_from(invitations, staff), seed=args.seed).take(args.count)
            size = sum(len(m.raw) for m in mails)
            started = time.perf_counter()
            append_all(dovecot, MAILBOX, (m.raw for m in mails))
            appended = time.perf_counter() - started
            print(f"backlog: {args.count} messages, {size / 1e6:.0f} MB, APPENDed at {args.count / appended:.0f} msg/s", flush=True)

            pulls = [mbsync(dovecot, root / f"mbsync-{run}", args.count) for run in range(args.mbsync_runs)]
            peer = args.count / median(pulls)
            print(f"mbsync: {', '.join(f'{p:.2f}' for p in pulls)} s", flush=True)

            stats_file = root / "daemon-stats.json"
            log = root / "daemon.log"
            command = [sys.executable, str(HERE / "daemon_worker.py"), "-c", str(config), "--once",
                       "--clock", BACKLOG_TIME.isoformat(), "--stats", str(stats_file)]
            if not sink:
                command.append("--null-sender")
            if args.profile:
                command += ["--profile", str(args.profile.resolve())]
            with log.open("wb") as output:
                finished = subprocess.run(command, stdout=output, stderr=output, timeout=7200)
            if finished.returncode != 0:
                raise SystemExit(f"the daemon failed (exit {finished.returncode}):\n{log.read_text()[-3000:]}")
            stats = json.loads(stats_file.read_text())
            left = dovecot.count(MAILBOX)
            moved = sum(dovecot.count(MAILBOX, folder) for folder in ("Processed", "Quarantine"))
            expected_acks = sum(m.acknowledged for m in mails)
            problems = []
            if left or moved != args.count or stats["handled"] != args.count:
                problems.append(f"{left} left in the inbox, {moved} moved, {stats['handled']} handled of {args.count}")
            if stats["answered"] != expected_acks:
                problems.append(f"{stats['answered']} messages acknowledged, {expected_acks} expected")
            rate = stats["handled"] / stats["elapsed"]
            times = stats["times"]
            tenth = max(1, len(times) // 10)
            first = tenth / times[tenth - 1]
            last = tenth / (times[-1] - times[-tenth - 1]) if len(times) > tenth else first
        finally:
            if sink:
                sink.stop()
            dovecot.stop()
    note = f"{args.count} msgs, {size / 1e6:.0f} MB; {stats['statuses']}; acknowledgements queued {stats['queued']}"
    rows = [
        Row("ingest: daemon end-to-end", rate, "msg/s", peer, rate / peer, "≥ 0.5", judge(rate / peer, at_least=0.5),
            note + ("; PROBLEMS: " + "; ".join(problems) if problems else "")),
        Row("ingest: daemon peak memory (ru_maxrss)", stats["maxrss_mb"], "MB"),
        Row("ingest: rate over the last 10 % / the first 10 %", last / first, "", None, None, "", None,
            f"first tenth {first:.1f} msg/s, last tenth {last:.1f} msg/s"),
    ]
    if problems:
        rows[0].ok = False
    report(rows, args)


if __name__ == "__main__":
    main()

"""Fan-out: a meeting's invitations to N attendees through the SMTP sender, against smtp-source sending the same.

The meeting is made the way a clerk makes it (bench/lab.py `open_meetings`):
a directory of N school directors, the call for items, two groups' items
with ~200 KB PDFs (so the agenda pack is a real size), the agenda assembled
and approved on paper, then the invitations step, which renders each
attendee's e-mail (letter and pack PDFs, its own .ics) into the outbox.
Timed: `Outbox.drain` through `SmtpSender` to smtp-sink, one connection,
each result recorded as it comes (what the daemon does); and as the peer,
Postfix's `smtp-source` sending the same number of messages of the same
average size to the same smtp-sink over one session. Ratio target ≥ 0.5.

    python3 bench/fanout.py --attendees 30     # develop
    python3 bench/fanout.py                    # 300 attendees
"""

from __future__ import annotations

import subprocess
import time

from lab import (HOST, MAILBOX, Row, SmtpSink, arguments, binary, judge, median, office_config, open_meetings, report,
                 settings_of, start, workdir)
from service.mail.smtp import SmtpSender


def smtp_source(sink: SmtpSink, count: int, size: int) -> float:
    """Seconds for smtp-source to send `count` messages of `size` bytes over one session."""
    command = [binary("smtp-source", "postfix"), "-m", str(count), "-l", str(size), "-s", "1",
               "-f", MAILBOX, "-t", "director0001@school.test", f"{HOST}:{sink.port}"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def main() -> None:
    def add(parser):
        parser.add_argument("--attendees", type=int, default=300)
        parser.add_argument("--items", type=int, default=2, help="agenda items with a ~200 KB PDF each, in the pack")
        parser.add_argument("--peer-runs", type=int, default=3)

    args = arguments(__doc__.splitlines()[0], add)
    with workdir("fanout", args.keep) as root:
        sink = SmtpSink(root / "sink")
        start(sink)
        try:
            config, staff = office_config(root / "office", "maildir", f"{HOST}:{sink.port}", args.attendees)
            opened = open_meetings(settings_of(config), staff, submissions=args.items, collecting=False, seed=args.seed)
            outbox, clock = opened.service.outbox, opened.clock
            pending = outbox.pending()
            count = len(pending)
            invitations = sum(1 for d in pending if d["template"] == "invitation")
            size = sum((opened.service.office.store.root / d["file"]).stat().st_size for d in pending) // count
            sender = SmtpSender(HOST, sink.port, security="none", timeout=60)
            started = time.perf_counter()
            drained = outbox.drain(sender, clock())
            ours = time.perf_counter() - started
            left = len(outbox.pending())
            opened.service.office.store.close()
            peer = median(smtp_source(sink, count, size) for _ in range(args.peer_runs))
        finally:
            sink.stop()
    problems = "" if drained.sent == count and not left else f"; PROBLEMS: sent {drained.sent} of {count}, {left} left in the outbox"
    ratio = peer / ours
    rows = [
        Row("fan-out: Outbox.drain → smtp-sink", count / ours, "msg/s", count / peer, ratio, "≥ 0.5",
            judge(ratio, at_least=0.5) and not problems,
            f"{invitations} invitations (+{count - invitations} other) of {size / 1e3:.0f} KB on average, "
            f"{count * size / 1e6:.0f} MB in {ours:.2f} s; smtp-source {peer:.2f} s{problems}"),
        Row("fan-out: invitations step (render into the outbox)", invitations / opened.invitations_seconds, "msg/s",
            note=f"{opened.invitations_seconds:.1f} s for {invitations} invitations"),
    ]
    report(rows, args)


if __name__ == "__main__":
    main()

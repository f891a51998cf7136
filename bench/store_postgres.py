"""The PostgreSQL store: filing a backlog, against the TinyDB store; and an office taken over after a SIGKILL.

Both on a private PostgreSQL (`tests/postgres.py`) that fsyncs as a
production server does, in a fresh folder under /tmp:

- `filing`: the realistic backlog (`lab.Backlog`: submissions with ~200 KB
  PDFs, Thai and English replies, calendar answers, bounces, auto-replies)
  through `Pipeline.handle` on the PostgreSQL store, messages a second; the
  peer is the same backlog on the TinyDB store in the same run, the two taken
  in turns (the median of three each). Target: ratio ≥ 0.5.
- `takeover`: 2 and 3 instances wait for one office's lock; the one working
  it is SIGKILLed a quarter of the way through its batch; messages lost and
  handled twice (target 0) and the time from the kill until another instance
  works the office (target < 30 s).

    python3 bench/store_postgres.py --quick     # 100 messages filed; 200 in the take-over batch
    python3 bench/store_postgres.py             # 500; 1,000
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from lab import MAILBOX, Backlog, Row, Staff, arguments, judge, median, office_config, report, settings_of, workdir
from postgres import PASSWORD, Postgres, kill_mid_batch, use_postgres
from service.daemon import build


ROUNDS = 3


def filing_rate(config: Path, staff: Staff, count: int, seed: int) -> float:
    """Messages a second through the pipeline, the first (which loads the libraries) not counted."""
    service = build(settings_of(config))
    mails = Backlog(staff, seed=seed).take(count + 1)
    service.pipeline.handle(mails[0].raw, "warm-up")
    started = time.perf_counter()
    for number, mail in enumerate(mails[1:]):
        service.pipeline.handle(mail.raw, f"run/{number}")
    took = time.perf_counter() - started
    service.office.store.close()
    return count / took


def main() -> None:
    args = arguments(__doc__.splitlines()[0], lambda parser: (
        parser.add_argument("--count", type=int, default=None, help="messages filed on each store"),
        parser.add_argument("--batch", type=int, default=None, help="messages in the take-over batch"),
        parser.add_argument("--quick", action="store_true", help="small sizes"),
    ))
    count = args.count or (100 if args.quick else 500)
    batch = args.batch or (200 if args.quick else 1000)
    os.environ["SECRETARY_DATABASE_PASSWORD"] = PASSWORD
    rows = []
    with workdir("postgres", args.keep) as root:
        server = Postgres(root / "cluster", durable=True)
        server.start()
        try:
            tinydb, staff = office_config(root / "tinydb", "maildir", "file", schools=50)
            postgresql, _ = office_config(root / "postgresql", "maildir", "file", schools=50)
            use_postgres(postgresql, server.database(), MAILBOX)
            rates: dict[Path, list[float]] = {tinydb: [], postgresql: []}
            for turn in range(ROUNDS):  # taken in turns, so a busy moment of the machine costs both alike
                for config in rates:
                    rates[config].append(filing_rate(config, staff, count, args.seed + turn))
            peer, ours = median(rates[tinydb]), median(rates[postgresql])
            rows.append(Row(f"filing {count} messages (PostgreSQL)", ours, "msg/s", peer, ours / peer, "≥ 0.5",
                            judge(ours / peer, at_least=0.5), f"peer: the same backlog on the TinyDB store; median of {ROUNDS} turns each"))
            for instances in (2, 3):
                handover = kill_mid_batch(f"{server.database()} password={PASSWORD}", root / f"takeover-{instances}",
                                          MAILBOX, instances, batch)
                rows.append(Row(f"{instances} instances, one SIGKILLed: lost + doubled", handover.lost + handover.doubled,
                                "messages", target="0", ok=handover.lost + handover.doubled == 0))
                rows.append(Row(f"{instances} instances: taken over after the SIGKILL", handover.seconds, "s",
                                target="< 30 s", ok=handover.seconds < 30))
        finally:
            server.stop()
    report(rows, args)


if __name__ == "__main__":
    main()

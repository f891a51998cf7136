"""The daemon as its own process, as `secretary run` runs it, with the knobs a benchmark needs and the CLI has not.

`--clock` pins the time (so the meetings' timeline does not move while a
backlog is handled), `--no-idle` makes the IMAP source poll, `--null-sender`
accepts every message without sending it. It logs to stderr like the CLI and,
with `--stats FILE`, writes what it did as JSON: how many messages in how
long, the time each one was handled at, and its peak memory (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import lab  # noqa: F401  (puts the project and tests/ on sys.path)
from lab import NullSender, settings_of
from service.daemon import Daemon, build, make_sender, make_source


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-c", "--config", type=Path, required=True)
    parser.add_argument("--clock", help="a fixed ISO time for the daemon's clock")
    parser.add_argument("--no-idle", action="store_true", help="poll every poll_interval instead of IDLE")
    parser.add_argument("--null-sender", action="store_true", help="accept every outgoing message without sending it")
    parser.add_argument("--once", action="store_true", help="stop when the inbox and the outbox are empty")
    parser.add_argument("--stats", type=Path)
    parser.add_argument("--profile", type=Path, help="run under cProfile and write its statistics here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    settings = settings_of(args.config)
    fixed = datetime.fromisoformat(args.clock) if args.clock else None
    service = build(settings, clock=(lambda: fixed) if fixed else None)
    source = make_source(settings)
    if args.no_idle:
        source.use_idle = False
    sender = NullSender() if args.null_sender else make_sender(settings)
    daemon = Daemon(service, source, sender)

    times: list[float] = []
    handle = service.pipeline.handle

    def timed_handle(*arguments, **keywords):
        handled = handle(*arguments, **keywords)
        times.append(time.perf_counter())  # handled, its batch's write still to come: the rate's shape, not its end
        return handled

    service.pipeline.handle = timed_handle
    started = time.perf_counter()
    if args.profile:
        import cProfile

        cProfile.runctx("daemon.run(once=args.once)", globals(), locals(), str(args.profile))
    else:
        daemon.run(once=args.once)
    elapsed = time.perf_counter() - started
    if args.stats:
        args.stats.write_text(json.dumps({
            "handled": len(daemon.handled),
            "elapsed": elapsed,
            "times": [t - started for t in times],
            "statuses": Counter(h.status for h in daemon.handled),
            "kinds": Counter(h.kind for h in daemon.handled),
            "queued": sum(len(h.queued) for h in daemon.handled),
            "answered": sum(1 for h in daemon.handled if h.queued),
            "duplicates": sum(1 for h in daemon.handled if h.duplicate),
            "sent_null": getattr(sender, "count", None),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Store scaling: does filing one message cost more as the office's files grow?

Three cases, each at a small and a large size, each in a fresh child process
(so its peak memory is its own). The store is pre-filled directly, in the
files' own format, from documents the service itself wrote for a real
message (so the filler is as big as real entries), then the service is
built on it afresh and every shard the case touches is read once (a daemon
that has been running a while), and R new messages are timed:

- `log`: one director's reply filed (Pipeline.handle) when the message log
  already holds 1,000 vs 100,000 messages;
- `items`: a group's submission filed into the collecting meeting when it
  already has 5 vs 500 items (a small PDF, so the store's cost shows);
- `sent`: a reply filed and its acknowledgement sent (handle + Outbox.drain
  to a sender that writes nowhere) when this month's sent mail holds 1,000
  vs 10,000 messages.

The ratio is the large store's median cost over the small one's; target < 1.5.

    python3 bench/store_scaling.py --quick     # 1,000 vs 10,000 messages in the log; 5 vs 100 items; 1,000 vs 5,000 sent
    python3 bench/store_scaling.py             # the full sizes above
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

from lab import (COLLECTING_START, INVITE_DAY, Backlog, Keys, NullSender, RecordingSender, Row, arguments, judge,
                 keys_from, median, office_config, report, settings_of, workdir)
from service.commands import apply
from service.daemon import build
from service.meetings.clerk import HANDLERS
from service.meetings.meeting import shard as meeting_shard
from service.mail.outbox import sent_shard
from service.pipeline import log_shard
from service.store import doc_id
from service.ticks import run_due_steps
from worlds import Clock

HERE = Path(__file__).resolve()
MEETING = "sa2569-12"


def prefill(root: Path, shard: str, table: str, documents: dict[str, dict]) -> None:
    """Add documents to a shard's file the way the store writes them (TinyDB JSON, ids from the keys)."""
    path = root / f"{shard}.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    rows = data.setdefault(table, {})
    for key, document in documents.items():
        rows[str(doc_id(key))] = {**document, "_key": key}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def run_case(case: str, size: int, runs: int, seed: int) -> dict:
    """Build an office, fill its store to `size`, and time `runs` messages; return the timings and peak memory."""
    import resource

    with workdir(f"store-{case}") as root:
        config, staff = office_config(root / "office", "maildir", "file", schools=50)
        settings = settings_of(config)
        clock = Clock(INVITE_DAY)
        service = build(settings, clock=clock)
        keys = Keys()
        if case == "items":
            apply(service.office, service.outbox, HANDLERS, "meeting_new", {
                "kind": "school_administrators", "title": "การประชุมผู้บริหารสถานศึกษา", "number": 12, "year_be": 2569,
                "start": COLLECTING_START.isoformat(), "end": COLLECTING_START.replace(hour=12).isoformat(),
                "place": "ห้องประชุมใหญ่", "chair": "p-director", "secretary": "p-deputy", "attendees": ["role:school_director"],
            }, clock())
            run_due_steps(service.office, service.outbox, clock())
            recorder = RecordingSender()
            service.outbox.drain(recorder, clock())
            keys = keys_from(recorder, staff)
        maker = Backlog(staff, keys, seed=seed, pdf_size=20_000)
        kind = "submission" if case == "items" else "reply"
        sample = service.pipeline.handle(maker.one(kind).raw, "sample")
        store = service.office.store
        entry = store.get(log_shard(sample.identity), "messages", sample.identity)
        item = store.find(meeting_shard(MEETING), "items")[0] if case == "items" else None
        service.outbox.drain(NullSender(), clock())
        sent = next(d for shard in store.shards("sent/2026-12") for d in store.find(shard, "mail"))
        store.close()

        root_dir = settings.store
        rng = random.Random(seed)
        if case == "log":
            shards: dict[str, dict[str, dict]] = {}
            for n in range(size):
                identity = f"mid:filler-{n}-{rng.getrandbits(32):08x}@mail.school.test"
                shards.setdefault(log_shard(identity), {})[identity] = {**entry, "identity": identity}
            for name, documents in shards.items():
                prefill(root_dir, name, "messages", documents)
        elif case == "items":
            group = item["group"]
            prefill(root_dir, meeting_shard(MEETING), "items", {
                f"{group}-f{n}": {**item, "id": f"{group}-f{n}", "title": f"{item['title']} (เรื่องที่ {n})"} for n in range(size - 1)
            })
        else:
            by_shard: dict[str, dict[str, dict]] = {}
            for n in range(size - 1):
                message_id = f"filler-{n}@office.test"
                by_shard.setdefault(sent_shard(message_id, sent["sent_at"]), {})[message_id] = {**sent, "message_id": message_id}
            for name, documents in by_shard.items():
                prefill(root_dir, name, "mail", documents)

        service = build(settings, clock=clock)
        store = service.office.store
        for name in store.shards("log") + ["outbox", *store.shards("sent/2026-12"), meeting_shard(MEETING)]:
            store.find(name, "messages" if name.startswith("log/") else "mail")  # read every shard once, as a running daemon has
        if case == "items":  # each a new item, as a new title makes one (the same title would revise an item)
            mails = [maker.submission(f"timed-{n}@mail.school.test", topic=f"โครงการใหม่ที่ {n}").raw for n in range(runs + 1)]
        else:
            mails = [maker.one(kind).raw for _ in range(runs + 1)]
        times = []
        for number, raw in enumerate(mails):
            started = time.perf_counter()
            handled = service.pipeline.handle(raw, f"run/{number}")
            if case == "sent":
                service.outbox.drain(NullSender(), clock())
            took = time.perf_counter() - started
            assert handled.status == "processed" and handled.queued, handled
            if number:  # the first one warms the caches this case does not measure
                times.append(took)
        if case == "items":
            assert len(store.find(meeting_shard(MEETING), "items")) == size + runs + 1, "every submission became an item"
        store.close()
    return {"median_ms": median(times) * 1000, "max_ms": max(times) * 1000,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


SIZES = {"log": (1_000, 100_000), "items": (5, 500), "sent": (1_000, 10_000)}
QUICK = {"log": (1_000, 10_000), "items": (5, 100), "sent": (1_000, 5_000)}
WHAT = {"log": "file a reply; the log holds {big:,} vs {small:,} messages",
        "items": "file a submission; the meeting has {big:,} vs {small:,} items",
        "sent": "file a reply + send its ack; this month's sent mail {big:,} vs {small:,}"}


def main() -> None:
    def add(parser):
        parser.add_argument("--runs", type=int, default=30, help="messages timed in each store")
        parser.add_argument("--quick", action="store_true", help="smaller large sizes")
        parser.add_argument("--case", choices=sorted(SIZES), help="(internal) run one case in this process")
        parser.add_argument("--size", type=int, help="(internal) the case's size")

    args = arguments(__doc__.splitlines()[0], add)
    if args.case:
        print(json.dumps(run_case(args.case, args.size, args.runs, args.seed)))
        return
    rows = []
    for case, (small, big) in (QUICK if args.quick else SIZES).items():
        measured = {}
        for size in (small, big):
            result = subprocess.run([sys.executable, str(HERE), "--case", case, "--size", str(size), "--runs", str(args.runs),
                                     "--seed", str(args.seed)], capture_output=True, text=True, timeout=3600)
            if result.returncode != 0:
                raise SystemExit(f"case {case} at {size} failed:\n{result.stderr[-3000:]}")
            measured[size] = json.loads(result.stdout.strip().splitlines()[-1])
        ratio = measured[big]["median_ms"] / measured[small]["median_ms"]
        rows.append(Row(f"store: {WHAT[case].format(big=big, small=small)}", measured[big]["median_ms"], "ms",
                        measured[small]["median_ms"], ratio, "< 1.5", judge(ratio, below=1.5),
                        f"median of {args.runs}; peak memory {measured[big]['maxrss_mb']:.0f} MB vs {measured[small]['maxrss_mb']:.0f} MB"))
    report(rows, args)


if __name__ == "__main__":
    main()

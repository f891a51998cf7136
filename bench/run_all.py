"""Every benchmark, chaos run and the fuzz tests, one after another, and one table of what they found.

Each script runs as its own process (its servers, memory and failures stay
its own) and hands its rows back as JSON; the table at the end has one line
per figure: value, peer, ratio, target, ok. The exit status is 1 when any
figure misses its target (or a script failed), so it can gate a release.

    python3 bench/run_all.py --quick           # small sizes, a few minutes
    python3 bench/run_all.py                   # the full sizes (the brief's: 300 attendees, 200 trials, 2,000 chaos messages …)
    python3 bench/run_all.py --only ingest,fanout --count 1000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab import ROOT, Row, table

HERE = Path(__file__).resolve().parent
FULL = {"count": 5000, "trials": 200, "attendees": 300, "chaos_count": 2000, "offices": 245}
QUICK = {"count": 200, "trials": 20, "attendees": 30, "chaos_count": 200, "offices": 30}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a try-out")
    parser.add_argument("--count", type=int, help="ingest backlog (messages)")
    parser.add_argument("--trials", type=int, help="latency round trips in each mode")
    parser.add_argument("--attendees", type=int, help="fan-out invitations")
    parser.add_argument("--chaos-count", type=int, help="messages in the chaos run")
    parser.add_argument("--offices", type=int, help="offices (mailboxes) watched by one process")
    parser.add_argument("--only", help="comma-separated: ingest,latency,fanout,store,postgres,many,chaos,fuzz")
    parser.add_argument("--seed", type=int, default=2569)
    args = parser.parse_args()
    sizes = {**(QUICK if args.quick else FULL), **{k: v for k, v in vars(args).items() if k in FULL and v is not None}}
    runs = {
        "ingest": ["ingest.py", "--count", str(sizes["count"])] + (["--mbsync-runs", "2"] if args.quick else []),
        "latency": ["latency.py", "--trials", str(sizes["trials"])],
        "fanout": ["fanout.py", "--attendees", str(sizes["attendees"])],
        "store": ["store_scaling.py"] + (["--quick", "--runs", "15"] if args.quick else []),
        "postgres": ["store_postgres.py"] + (["--quick"] if args.quick else []),
        "many": ["many_mailboxes.py", "--offices", str(sizes["offices"])] + (["--rounds", "3"] if args.quick else []),
        "chaos": ["chaos.py", "--count", str(sizes["chaos_count"])],
    }
    chosen = args.only.split(",") if args.only else [*runs, "fuzz"]
    rows: list[Row] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="secretary-bench-rows-") as folder:
        for name in chosen:
            started = time.monotonic()
            print(f"\n=== {name} ===", flush=True)
            if name == "fuzz":
                result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py"], cwd=ROOT)
                seconds = time.monotonic() - started
                rows.append(Row("fuzz: tests/test_fuzz.py (hypothesis, 3 × 200 examples)", seconds, "s", target="pass, < 60 s",
                                ok=result.returncode == 0 and seconds < 60, note="" if result.returncode == 0 else "FAILED: see above"))
                continue
            out = Path(folder) / f"{name}.json"
            result = subprocess.run([sys.executable, str(HERE / runs[name][0]), *runs[name][1:], "--seed", str(args.seed), "--json", str(out)])
            if result.returncode != 0 or not out.exists():
                rows.append(Row(f"{name}: the script failed (exit {result.returncode})", 0, "", ok=False))
                continue
            rows += [Row(**row) for row in json.loads(out.read_text(encoding="utf-8"))]
            print(f"({name}: {time.monotonic() - started:.0f} s)", flush=True)
    failed = any(row.ok is False for row in rows)
    shown = ", ".join(f"{key} {value}" for key, value in sizes.items())
    print(f"\n=== all figures ({'quick' if args.quick else 'full'} sizes: {shown}) ===")
    print(table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

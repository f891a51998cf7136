"""How long and how big a meeting's archive is: the demo's meeting, exported with and without its ISO image.

Run on demand: `python3 bench/archive_export.py`. It builds the demo's store
once (not timed), exports once to load the libraries, then prints the median
of five runs of each step. As a peer, measured in the same run on the same
store folder: a plain copy (`shutil.copytree`) and a `tar -cf`, which check
nothing and name nothing, so the ratios say what the checks, the index and
the image cost on any machine.
"""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from rich.console import Console

from service.archive import export_meeting
from service.config import DEFAULT_CONFIG, load
from service.demo import run_demo
from service.directory import Directory
from service.meetings.meeting import all_meetings
from service.store import Store

RUNS = 5


def median_seconds(step) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def folder_size(folder: Path) -> tuple[int, int]:
    files = [path for path in folder.rglob("*") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        run_demo(work / "office", Console(file=io.StringIO()))
        settings = load(work / "office" / DEFAULT_CONFIG)
        store = Store(settings.store).open(exclusive=False)
        directory = Directory.load(settings.directory)
        [meeting] = all_meetings(store)
        out = work / "archive"
        export_meeting(store, meeting["id"], out, iso=True, directory=directory)  # imports and first reads, not timed

        plain = median_seconds(lambda: export_meeting(store, meeting["id"], out, directory=directory))
        with_iso = median_seconds(lambda: export_meeting(store, meeting["id"], out, iso=True, directory=directory))
        result = export_meeting(store, meeting["id"], out, iso=True, directory=directory)
        assert not result.problems, result.problems

        def copy() -> None:
            shutil.rmtree(work / "copy", ignore_errors=True)
            shutil.copytree(settings.store, work / "copy")

        tar_file = work / "store.tar"
        copied = median_seconds(copy)
        tarred = median_seconds(lambda: subprocess.run(["tar", "-cf", str(tar_file), "-C", str(settings.store.parent), settings.store.name], check=True))
        files, size = folder_size(result.folder)
        store_files, store_size = folder_size(settings.store)
        print(f"meeting {meeting['id']}: archive of {files} files, {size / 1e6:.2f} MB; ISO {result.iso.stat().st_size / 1e6:.2f} MB")
        print("  counts: " + ", ".join(f"{section} {count}" for section, count in result.counts.items()))
        print(f"export, folder only:                 median {plain:.3f} s")
        print(f"export, folder + ISO, read back:     median {with_iso:.3f} s")
        print(f"peer: copytree of the store folder:  median {copied:.3f} s ({store_files} files, {store_size / 1e6:.2f} MB)")
        print(f"peer: tar -cf of the store folder:   median {tarred:.3f} s ({tar_file.stat().st_size / 1e6:.2f} MB)")
        print(f"ratios: export / copytree {plain / copied:.1f}; export with ISO / tar {with_iso / tarred:.1f}")
        store.close()


if __name__ == "__main__":
    main()

"""`secretary demo`: the whole service on the embedded default, with realistic sample mail.

It writes a starter configuration into a folder, delivers the sample
messages in `messages/` (Thai and English: an agenda item with a PDF, free-text
and calendar answers, a delegation, an out-of-office reply, a bounce, an
unknown sender, a broken message) into a local Maildir, runs the daemon until
everything is handled and sent, and shows what it understood and where the
store, the outgoing mail and the quarantine are.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..config import DEFAULT_CONFIG, load, write_starter
from ..daemon import Daemon, build, make_sender, make_source
from ..mail.maildir import deliver

MESSAGES = Path(__file__).parent / "messages"


def run_demo(folder: Path | None, console: Console) -> int:
    folder = Path(folder or tempfile.mkdtemp(prefix="secretary-demo-")).resolve()
    write_starter(folder, "สำนักงานเขตพื้นที่การศึกษาประถมศึกษาตัวอย่าง เขต ๑", "meeting@office.example.go.th", "clerk@office.example.go.th")
    os.environ.setdefault("SECRETARY_REPLY_KEY", secrets.token_hex(32))
    settings = load(folder / DEFAULT_CONFIG)
    samples = sorted(MESSAGES.glob("*.eml"))
    for sample in samples:
        deliver(settings.source.path, sample.read_bytes(), sample.stem)
    console.print(f"Delivered {len(samples)} sample messages into {settings.source.path}")

    daemon = Daemon(build(settings), make_source(settings), make_sender(settings))
    with console.status("The daemon is working through the mailbox…"):
        daemon.run(once=True)

    table = Table(title="What the service understood")
    for column in ("message", "kind", "rule", "went to", "why / note"):
        table.add_column(column)
    for sample, handled in zip(samples, daemon.handled):
        note = handled.reason or (f"{len(handled.queued)} acknowledgement(s) queued" if handled.queued else "")
        table.add_row(sample.stem, handled.kind or "-", handled.rule or "-", handled.status, note)
    console.print(table)
    outgoing = sorted(settings.sender.path.glob("*.eml"))
    console.print(
        f"\nThe office folder:      {folder}\n"
        f"The store (แฟ้ม):        {settings.store}\n"
        f"Outgoing mail ({len(outgoing)} .eml): {settings.sender.path}\n"
        f"Handled messages:       {settings.source.path / '.Processed' / 'cur'}\n"
        f"Quarantine:             {settings.source.path / '.Quarantine' / 'cur'}\n"
        f"Try: secretary explain {MESSAGES / '03-attendance-thai-delegate.eml'}"
    )
    return 0


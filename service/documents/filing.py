"""Rendered papers kept in the store, each rendering a new version.

A paper's files are store files (`put_file`) in its meeting's or round's
`documents` folder, named `<name>-vN.<ext>` after their content address:
`meetings/<id>/documents/3f/3f…-agenda-v2.pdf`. So every machine that may
run the office (a PostgreSQL store) reads the same papers, the SHA-256 in
each path proves its bytes (the archive checks it), and drafts that were sent
for approval stay on file as they were sent. Nothing here loads WeasyPrint.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..store import Store, original_name

if TYPE_CHECKING:  # psycopg is needed only where PostgreSQL is configured
    from ..store.postgres import PostgresStore


def keep(store: Store | PostgresStore, folder: str, name: str, **files: bytes) -> dict[str, str]:
    """Keep one version of a paper (`pdf=…, docx=…`), the next after those in `folder`; its paths by extension.

    The files are written with the transaction that names them (on
    PostgreSQL) or before it (TinyDB): a rendering whose transaction never
    commits leaves no version on PostgreSQL and an unnamed one on disk, and
    either way the next rendering takes the next free number.
    """
    version = next_version(store, folder, name)
    return {extension: store.put_file(folder, data, f"{name}-v{version}.{extension}") for extension, data in files.items()}


def next_version(store: Store | PostgresStore, folder: str, name: str) -> int:
    """One more than the highest version of `name` (in any format) kept in `folder`."""
    pattern = re.compile(rf"{re.escape(name)}-v(\d+)\.\w+")
    taken = [int(match[1]) for path in store.files(folder) if (match := pattern.fullmatch(original_name(path)))]
    return max(taken, default=0) + 1


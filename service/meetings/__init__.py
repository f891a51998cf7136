"""The meeting workflow: what the seed manual's steps mean, independent of mail protocols.

Everything here takes understood messages or due timeline steps and returns
an `Outcome`: the documents to store and the mail to send. The caller writes
both in one store transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import OfficeSettings
from ..directory import Directory
from ..documents.environment import note
from ..mail.compose import Outgoing
from ..store import Store


@dataclass
class Outcome:
    """What a message or a step changes: documents to store, mail to send, and a word for the clerk.

    A timeline step whose outcome is not `done` has its effects written (a
    reminder, say) but stays due: it waits for something, such as the clerk's notes.
    """

    documents: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    for_clerk: str = ""
    done: bool = True

    def meetings(self) -> set[str]:
        """The meetings whose shards this outcome writes: what its mail and its message belong to."""
        return {shard.split("/")[1] for shard, *_ in self.documents if shard.startswith("meetings/") and shard.count("/") >= 2}


@dataclass(frozen=True)
class Office:
    """The office the workflow runs for: its mailbox, store (read here, written by the caller), directory and rules."""

    details: OfficeSettings
    store: Store
    directory: Directory
    rules: Path
    templates: Path
    reply_key_secret: bytes

    @property
    def mailbox(self) -> str:
        return self.details.mailbox

    @property
    def clerk(self) -> str:
        return self.details.clerk

    def note(self, name: str, /, **values: Any) -> str:
        """A line for the clerk in the office's language, worded by its templates (`email/<language>/notes.j2`)."""
        return note(self.templates, self.details.language, name, **values)

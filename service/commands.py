"""The clerk's commands that change the store, applied by whoever holds the store.

Only one process may write the store (the daemon keeps shards in memory and
holds the lock). So a command from the command line is applied at once when
no daemon is running, and otherwise left in the store's `commands` spool (a
small file in `store/commands/`; with PostgreSQL a row, so it reaches the
daemon whichever machine runs the office), which the running daemon applies
on its next pass. Each command has an id recorded in the same transaction as
its effect, so a crash between applying it and taking it from the spool
never applies it twice.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any, Callable

from .config import Settings
from .meetings import Office, Outcome
from .pipeline import write_outcome
from .store import StoreError, StoreLocked, open_store

log = logging.getLogger(__name__)

SPOOL = "commands"

#: name → function(office, arguments, now) → (outcome, message for the clerk)
Handler = Callable[[Office, dict[str, Any], datetime], tuple[Outcome, str]]


def submit(settings: Settings, name: str, arguments: dict[str, Any], run_now: Callable[[], str]) -> str:
    """Apply a command now if no daemon holds the store, else queue it for the daemon; say which."""
    try:
        probe = open_store(settings)
    except StoreLocked:
        command = {"id": uuid.uuid4().hex, "name": name, "arguments": arguments}
        store = open_store(settings, exclusive=False)
        try:
            store.spool(SPOOL, command["id"], json.dumps(command, ensure_ascii=False).encode("utf-8"))
        finally:
            store.close()
        return "the daemon is running: the command is queued and will be applied within a tick"
    probe.close()
    return run_now()


def apply(office: Office, outbox, handlers: dict[str, Handler], name: str, arguments: dict[str, Any], now: datetime, command_id: str = "") -> str:
    """Run one command and write its outcome (and its id) in one transaction."""
    command_id = command_id or uuid.uuid4().hex
    if office.store.get("commands", "applied", command_id):
        return "already applied"
    outcome, said = handlers[name](office, arguments, now)
    with office.store.transaction() as transaction:
        write_outcome(transaction, outbox, outcome, now)
        transaction.put("commands", "applied", command_id, {"name": name, "arguments": arguments, "at": now.isoformat(), "result": said})
    return said


def apply_spooled(office: Office, outbox, handlers: dict[str, Handler], now: datetime) -> None:
    """Apply the commands queued while the daemon runs, oldest first; a bad one is reported and set aside."""
    for key, data in office.store.spooled(SPOOL):
        try:
            command = json.loads(data)
            said = apply(office, outbox, handlers, command["name"], command["arguments"], now, command["id"])
            log.info("command %s: %s", command["name"], said)
        except StoreError:
            raise
        except Exception as error:  # a bad command is set aside; it must never stop the daemon
            log.error("command %s could not be applied: %s", key, error)
            with office.store.transaction() as transaction:
                transaction.put("commands", "failed", key, {"file": data.decode("utf-8", errors="replace"), "error": str(error), "at": now.isoformat()})
        office.store.unspool(SPOOL, key)

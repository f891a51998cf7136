"""The clerk's commands: applied at once without a daemon, queued for it while it runs, never applied twice."""

import os
import subprocess
import sys

from helpers import ENV, MAILBOX, write_config
from service.commands import apply_spooled
from service.config import load
from service.daemon import build
from service.meetings.clerk import HANDLERS
from service.meetings.meeting import all_meetings

NEW = ["meeting", "new", "--kind", "internal_staff", "--title", "การประชุมบุคลากร", "--number", "3",
       "--start", "2026-12-21T13:30", "--end", "2026-12-21T16:00", "--place", "ห้องประชุมเล็ก",
       "--chair", "p-director", "--secretary", "p-admin-director", "--attendees", "group:g-admin"]


def secretary(config, *arguments):
    return subprocess.run([sys.executable, "-m", "service", "-c", str(config), *arguments],
                          capture_output=True, text=True, env={**os.environ, **ENV})


def test_a_command_waits_for_the_running_daemon_and_is_applied_once(tmp_path):
    config = write_config(tmp_path, 'kind = "maildir"\npath = "mailbox"', 'kind = "file"\npath = "outgoing"')
    for name, value in ENV.items():
        os.environ.setdefault(name, value)
    daemon = build(load(config))  # holds the store, as `secretary run` does
    result = secretary(config, *NEW)
    assert result.returncode == 0 and "queued" in result.stderr
    assert all_meetings(daemon.office.store) == []
    apply_spooled(daemon.office, daemon.outbox, HANDLERS, daemon.clock())
    apply_spooled(daemon.office, daemon.outbox, HANDLERS, daemon.clock())
    assert [m["id"] for m in all_meetings(daemon.office.store)] == ["st2569-3"]
    daemon.office.store.close()

    again = secretary(config, *NEW)  # no daemon now: applied at once, and refused because it exists
    assert again.returncode == 2 and "exists already" in again.stderr
    shown = secretary(config, "meeting", "show", "st2569-3")
    assert "การประชุมบุคลากร" in shown.stdout and "วันจันทร์ที่ 21 ธันวาคม 2569" in shown.stdout
    assert "วันหยุดสุดสัปดาห์" in shown.stdout, "a step moved off a weekend says why"


def test_a_command_given_on_another_machine_reaches_the_daemon_through_postgresql(tmp_path, postgres, monkeypatch):
    """With the store in PostgreSQL the spool is in the database: the machine the clerk types on need not run the office."""
    from postgres import PASSWORD, use_postgres  # psycopg loads only for the tests that use PostgreSQL

    dsn = postgres.database()
    configs = []
    for machine in ("a", "b"):
        (tmp_path / machine).mkdir()
        config = write_config(tmp_path / machine, f'kind = "maildir"\npath = "{tmp_path / "mailbox"}"', f'kind = "file"\npath = "{tmp_path / "outgoing"}"')
        use_postgres(config, dsn, MAILBOX)
        configs.append(config)
    for name, value in {**ENV, "SECRETARY_DATABASE_PASSWORD": PASSWORD}.items():
        monkeypatch.setenv(name, value)
    daemon = build(load(configs[0]))  # machine a runs the office
    try:
        result = secretary(configs[1], *NEW)
        assert result.returncode == 0 and "queued" in result.stderr
        assert not (tmp_path / "b" / "store" / "commands").exists(), "nothing is left on machine b"
        apply_spooled(daemon.office, daemon.outbox, HANDLERS, daemon.clock())
        assert [m["id"] for m in all_meetings(daemon.office.store)] == ["st2569-3"]
        assert daemon.office.store.spooled("commands") == []
    finally:
        daemon.office.store.close()

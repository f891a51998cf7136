"""A machine running offices loses power or its network: another takes its offices over within 30 s.

tests/test_takeover.py kills the process; its kernel lives on and closes
its connections, so PostgreSQL frees the office's lock at once. Here the
whole machine goes: the instance runs inside a network namespace of its own
(tests/netns.py), reaching PostgreSQL, Dovecot and Postfix over a veth, and
the plug is pulled before the process is SIGKILLed, so no FIN or RST ever
reaches the servers. Only the server's own probing of a silent connection
(postgres.py's `_NOTICE_A_DEAD_PEER`: keepalives after 5 s, a 20 s user
timeout) can free the lock.

- The store: a process on the machine holds an office's lock, the plug is
  pulled and the process killed; an opener on this host, trying every
  second, gets the lock within 30 s. Beside it, a session that never asked
  for those probes, cut at the same moment, still holds its lock after the
  window: the lock goes by the probes, not by anything the machine said.
- The daemon: `secretary run --offices` on the machine runs an office while
  another on this host stands by; mail arrives in a stream, and while sends
  are being noted the plug is pulled and the process killed. The standby
  must take the office over within 30 s of the cut, and then every message
  is filed once and acknowledged once.
- A partition that heals: the plug is pulled with the instance left alive,
  the standby takes over, the plug goes back in; the first instance finds
  its session gone and the office held, stands by, and does nothing twice.

The servers are the module's own, listening on loopback and on the veth's
host address only (a /30 that exists on this machine alone).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import psycopg
import pytest

from conftest import DOMAINS, running
from helpers import message
from netns import Machine, MachineError
from postgres import PASSWORD, Postgres, use_postgres
from servers import HOST, Dovecot, Postfix
from test_offices import ENVIRON, ROOT, small_office, wait_for
from test_takeover import deliver
from service.store import StoreLocked, doc_id
from service.store.postgres import _HOLDER, PostgresStore

TAKEOVER_LIMIT = 30.0
#: The soonest the server may give up a silent peer: probes from 5 s of silence, a 20 s user timeout (timer slop below).
SOONEST = 15.0
TESTS = Path(__file__).resolve().parent
CLERK = "clerk@office.test"  # helpers.write_config's


class Servers(NamedTuple):
    dovecot: Dovecot
    postfix: Postfix
    postgres: Postgres


@pytest.fixture(scope="module")
def machine() -> Iterator[Machine]:
    """A throwaway machine; a host that cannot make one fails the tests (CI can), it never skips them."""
    made = Machine()
    try:
        made.create()
    except MachineError as error:
        made.remove()
        problem = f"cannot make a network namespace for a machine that loses power: {error}"
    else:
        try:
            yield made
        finally:
            made.remove()
        return
    pytest.fail(problem, pytrace=False)


@pytest.fixture(autouse=True)
def plugged_in_again(machine: Machine) -> Iterator[None]:
    """The machine is shared by the module's tests: each starts with its cable in, whatever the last one did."""
    yield
    machine.restore()


@pytest.fixture(scope="module")
def servers(machine: Machine) -> Iterator[Servers]:
    """Dovecot, Postfix and PostgreSQL on loopback and on the machine's veth (after the veth exists, to bind to it)."""
    root = Path(tempfile.mkdtemp(prefix="secretary-power-loss-"))
    root.chmod(0o755)
    serving = contextlib.contextmanager(running)
    try:
        with contextlib.ExitStack() as stack:
            dovecot = stack.enter_context(serving(Dovecot(root / "dovecot", also_listen=[machine.host_address])))
            postfix = stack.enter_context(serving(Postfix(root / "postfix", dovecot.lmtp_port, DOMAINS, sasl_port=dovecot.auth_port,
                                                          also_listen=[machine.host_address])))
            postgres = stack.enter_context(serving(Postgres(root / "postgres", also_listen=[machine.host_interface])))
            dovecot.add_user(CLERK)  # the daily digest goes to the clerk: were it bounced, the bounce would be one more message
            yield Servers(dovecot, postfix, postgres)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def from_machine(text: str, machine: Machine) -> str:
    """A DSN or an office file as the machine sees the servers: at the veth's host address."""
    return text.replace(f"host={HOST}", f"host={machine.host_address}").replace(f'host = "{HOST}"', f'host = "{machine.host_address}"')


def hold(dsn: str, folder: str, office: str, unprobed: str) -> None:
    """Run on the machine until killed: hold `office` as a daemon does, and `unprobed`'s lock on a plain session.

    The plain session never asks the server to probe it, so the server
    keeps it until the system's keepalive time (two hours by default) or a
    FIN or RST from the machine.
    """
    store = PostgresStore(Path(folder), dsn, office).open(exclusive=True)
    plain = psycopg.connect(dsn, autocommit=True)
    plain.execute("SELECT pg_advisory_lock(%s)", (doc_id(f"office {unprobed}"),))
    print("holding", flush=True)
    time.sleep(3600)
    store.close()  # kept referenced until then: a store collected closes its session and frees the lock
    plain.close()


def test_a_dead_machine_frees_its_office_within_30_s_by_the_servers_probes_alone(tmp_path, machine, servers):
    dsn = servers.postgres.database() + f" password={PASSWORD}"
    office, unprobed = "power-loss@office.test", "unprobed@office.test"
    arguments = (from_machine(dsn, machine), str(tmp_path / "there"), office, unprobed)
    process = machine.start([sys.executable, "-c", f"from test_power_loss import hold; hold(*{arguments!r})"],
                            cwd=TESTS, env={**ENVIRON, "PYTHONPATH": f"{TESTS}:{ROOT}"}, stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline() == b"holding\n", "the machine's process took both locks"
    with pytest.raises(StoreLocked):
        PostgresStore(tmp_path / "here", dsn, office).open(exclusive=True)

    machine.pull_plug()
    cut = time.monotonic()
    process.send_signal(signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL
    taken: dict[str, float] = {}
    while time.monotonic() - cut < TAKEOVER_LIMIT + 5 and len(taken) < 2:
        for name in {office, unprobed} - set(taken):
            try:
                PostgresStore(tmp_path / "here", dsn, name).open(exclusive=True).close()
            except StoreLocked:
                continue
            taken[name] = time.monotonic() - cut
        time.sleep(1)
    with psycopg.connect(dsn, autocommit=True) as database:
        database.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()")

    print(f"office taken {taken.get(office, float('inf')):.1f} s after the plug was pulled; "
          f"the unprobed session's lock {'went after %.1f s' % taken[unprobed] if unprobed in taken else 'still held after the window'}")
    assert office in taken and taken[office] < TAKEOVER_LIMIT, "the dead machine's office is free within 30 s"
    assert unprobed not in taken, "the cut is silent: a session without the server's probes keeps its lock (no FIN or RST got out)"
    assert taken[office] >= SOONEST, "the lock went by the server's probes giving up, not by anything the machine sent"


def holder(database: psycopg.Connection, office: str) -> int | None:
    """The pid of the instance holding the office's lock."""
    row = database.execute(_HOLDER, (doc_id(f"office {office}"),)).fetchone()
    found = re.match(r"secretary pid (\d+) ", row[0]) if row else None
    return int(found.group(1)) if found else None


@dataclass
class Instances:
    """One office, run by `secretary run --offices` on the machine, and stood by for by another on this host."""

    mailbox: str
    director: str
    database: psycopg.Connection
    first: subprocess.Popen[bytes]
    first_log: Path
    standby: subprocess.Popen[bytes]
    standby_log: Path

    def holder(self) -> int | None:
        return holder(self.database, self.mailbox)

    def handled(self) -> int:
        return self.database.execute("SELECT count(*) FROM documents WHERE office = %s AND shard LIKE 'log/%%' AND table_name = 'messages'",
                                     (self.mailbox,)).fetchone()[0]

    def noting_sends(self) -> bool:
        """Sends noted in the sent log and not yet folded: a cut now falls in the middle of sending."""
        return self.database.execute("SELECT 1 FROM lines WHERE office = %s", (self.mailbox,)).fetchone() is not None

    def settled(self) -> bool:
        return not self.database.execute("SELECT 1 FROM documents WHERE office = %s AND shard = 'outbox'", (self.mailbox,)).fetchone()


@pytest.fixture
def instances(tmp_path, machine, servers) -> Iterator[Instances]:
    """The first instance started on the machine and holding the office, then the standby here, saying it waits."""
    first, second = tmp_path / "machine-1" / "offices", tmp_path / "machine-2" / "offices"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    office_file, mailbox, director = small_office(tmp_path, first, "a", servers.dovecot, servers.postfix)
    dsn = servers.postgres.database()
    use_postgres(office_file, dsn, mailbox)
    text = office_file.read_text(encoding="utf-8")
    (second / "a.toml").write_text(text.replace(str(tmp_path / "a" / "store"), str(tmp_path / "machine-2" / "store")), encoding="utf-8")
    office_file.write_text(from_machine(text, machine), encoding="utf-8")
    argv = [sys.executable, "-m", "service", "run", "--offices"]
    environ = {**ENVIRON, "SECRETARY_DATABASE_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    first_log, standby_log = first.parent / "secretary.log", second.parent / "secretary.log"
    database = psycopg.connect(f"{dsn} password={PASSWORD}", autocommit=True)
    started: list[subprocess.Popen[bytes]] = []
    try:
        with first_log.open("ab") as output:
            started.append(machine.start([*argv, str(first)], stdout=output, stderr=output, env=environ, cwd=ROOT))
        wait_for(lambda: holder(database, mailbox) == started[0].pid, "the machine's instance to take the office", log=first_log)
        with standby_log.open("ab") as output:
            started.append(subprocess.Popen([*argv, str(second)], stdout=output, stderr=output, env=environ, cwd=ROOT))
        wait_for(lambda: "waiting to take it over" in standby_log.read_text(), "the other instance to stand by", log=standby_log)
        yield Instances(mailbox, director, database, started[0], first_log, started[1], standby_log)
    finally:
        for process in started:
            process.kill()
            process.wait()
        database.close()


def test_when_the_machine_running_an_office_loses_power_the_standby_takes_it_over_within_30_s(instances, machine, servers):
    dovecot, postfix = servers.dovecot, servers.postfix
    count = 120
    sent = [message(sender=instances.director, to=instances.mailbox, subject=f"เรื่องที่ {n}") for n in range(count)]
    arriving = threading.Thread(target=deliver, args=(dovecot, instances.mailbox, sent), name="arriving", daemon=True)
    arriving.start()
    wait_for(lambda: instances.handled() >= count // 4, "a quarter of the mail to be handled", log=instances.first_log)
    wait_for(instances.noting_sends, "the machine's instance to note a send", timeout=60, log=instances.first_log)
    machine.pull_plug()
    cut = time.monotonic()
    instances.first.send_signal(signal.SIGKILL)  # its kernel's FIN and RST cannot get out any more
    assert instances.first.wait(10) == -signal.SIGKILL
    wait_for(lambda: instances.holder() == instances.standby.pid, "the standby to take the office over", timeout=TAKEOVER_LIMIT,
             log=instances.standby_log)
    taken_over = time.monotonic() - cut
    handled_at_cut = instances.handled()
    arriving.join(60)
    wait_for(lambda: instances.handled() == count, "every message to be handled", log=instances.standby_log)
    wait_for(instances.settled, "the outbox to be empty", log=instances.standby_log)
    postfix.wait_for_queue_empty()
    standby_log = instances.standby_log.read_text()

    ids = [email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"] for raw in sent]
    filed = [email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"] for raw in dovecot.messages(instances.mailbox, "Processed")]
    acknowledgements = [email.message_from_bytes(raw, policy=email.policy.default) for raw in dovecot.messages(instances.director)]
    replies = [ack["In-Reply-To"] for ack in acknowledgements]
    in_doubt = re.findall(r"(\S+) was in the server's hands when the daemon stopped", standby_log)
    delivered = {ack["Message-ID"].strip("<>") for ack in acknowledgements}
    print(f"taken over {taken_over:.1f} s after the plug was pulled ({handled_at_cut} of {count} handled by then); {len(filed)} filed, "
          f"{len(replies)} acknowledgements; {len(in_doubt)} send(s) in doubt at the cut, counted as sent, "
          f"{len(delivered & {mid.strip('<>') for mid in in_doubt})} of them delivered")
    assert dovecot.messages(instances.mailbox) == [], "nothing left in the inbox"
    assert sorted(filed) == sorted(ids), "each message filed once: none lost, none doubled"
    assert len(replies) == len(set(replies)), "no message acknowledged twice"
    assert len(set(ids) - set(replies)) <= len(in_doubt), "only a send noted as handed over when the machine died may be missing"
    assert taken_over < TAKEOVER_LIMIT
    assert "starting it again" not in standby_log and "failed" not in standby_log, "standing by is not a failure"


def test_after_a_partition_heals_the_first_instance_finds_its_office_taken_and_stands_by(instances, machine, servers):
    dovecot, postfix = servers.dovecot, servers.postfix
    batches = [[message(sender=instances.director, to=instances.mailbox, subject=f"ชุด {b} เรื่องที่ {n}") for n in range(10)]
               for b in range(3)]

    def arrive(batch: list[bytes], by: Path) -> None:
        before = instances.handled()
        deliver(dovecot, instances.mailbox, batch)
        wait_for(lambda: instances.handled() == before + len(batch), "the batch to be handled", log=by)
        wait_for(instances.settled, "its acknowledgements to go out", log=by)

    arrive(batches[0], instances.first_log)
    machine.pull_plug()
    cut = time.monotonic()
    wait_for(lambda: instances.holder() == instances.standby.pid, "the standby to take the office over", timeout=TAKEOVER_LIMIT,
             log=instances.standby_log)
    taken_over = time.monotonic() - cut
    arrive(batches[1], instances.standby_log)
    machine.restore()
    healed = time.monotonic()
    arrive(batches[2], instances.standby_log)
    wait_for(lambda: "waiting to take it over" in instances.first_log.read_text(), "the first instance to stand by", timeout=300,
             log=instances.first_log)
    noticed = time.monotonic() - healed
    postfix.wait_for_queue_empty()
    first_log = instances.first_log.read_text()

    ids = [email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"] for batch in batches for raw in batch]
    filed = [email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"] for raw in dovecot.messages(instances.mailbox, "Processed")]
    replies = [email.message_from_bytes(raw, policy=email.policy.default)["In-Reply-To"] for raw in dovecot.messages(instances.director)]
    print(f"taken over {taken_over:.1f} s after the plug was pulled; the first instance stood by {noticed:.1f} s after the network came back")
    assert instances.first.poll() is None, "the first instance lives on, standing by"
    assert instances.holder() == instances.standby.pid
    assert sorted(filed) == sorted(ids), "each message filed once"
    assert sorted(replies) == sorted(ids), "each message acknowledged once: nothing the first instance had in hand went out again"
    assert first_log.count("waiting to take it over") == 1

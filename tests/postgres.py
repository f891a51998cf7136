"""A private PostgreSQL for tests, on 127.0.0.1 and a free port, like the mail servers in `servers.py`.

The cluster is made with initdb under a directory the caller gives and runs
in the foreground as a child of the test process. PostgreSQL refuses to run
as root, so under root (as in CI) it runs as the `postgres` user the Debian
package creates, or else as `vmail`. Logins need a password, so the tests
go through the same path as a deployment: the password from the environment.
"""

from __future__ import annotations

import contextlib
import glob
import ipaddress
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import psycopg

from servers import HOST, START_TIMEOUT, STOP_TIMEOUT, ServerError, end, free_port, make_traversable, tail

USER = "secretary"
PASSWORD = "test-database-password"


def program(name: str) -> str:
    """A PostgreSQL program from Debian's versioned folder (newest first), else from PATH."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(Path(f).parent.name), reverse=True):
        if os.access(Path(folder) / name, os.X_OK):
            return str(Path(folder) / name)
    found = shutil.which(name)
    if found is None:
        raise ServerError(f"{name} not found: install the Debian package postgresql (.ci/run does)")
    return found


class Postgres:
    """A PostgreSQL cluster of the test session's own; `database()` makes a fresh database in it.

    `also_listen` adds interfaces such as "10.231.7.1/30" (a test's private
    veth, see netns.py): the server listens on the address too and takes
    logins (with the password) from that network.
    """

    def __init__(self, root: Path, durable: bool = False, also_listen: Sequence[str] = ()) -> None:
        self.root = root.resolve()
        self.durable = durable  # fsync as a production server does (for benchmarks); tests need not survive a power cut
        self.also_listen = [ipaddress.ip_interface(interface) for interface in also_listen]
        self.port = free_port()
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._account = self._run_as()

    def start(self) -> None:
        """initdb (once), then start the server and wait until it takes logins."""
        self.root.mkdir(parents=True, exist_ok=True)
        make_traversable(self.root)
        if self._account is not None:
            os.chown(self.root, self._account.pw_uid, self._account.pw_gid)
        if not self.data.exists():
            password_file = self.root / "password"
            password_file.write_text(PASSWORD + "\n", encoding="utf-8")
            if self._account is not None:
                os.chown(password_file, self._account.pw_uid, self._account.pw_gid)
            done = subprocess.run(
                [program("initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={password_file}", "--auth=scram-sha-256",
                 "--encoding=UTF8", "--locale=C.UTF-8"],
                capture_output=True, text=True, **self._as_user(),
            )
            password_file.unlink()
            if done.returncode != 0:
                raise ServerError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        self._allow_networks()
        addresses = ",".join([HOST, *(str(interface.ip) for interface in self.also_listen)])
        argv = [program("postgres"), "-D", str(self.data), "-p", str(self.port), "-c", f"listen_addresses={addresses}",
                "-c", f"unix_socket_directories={self.root}", "-c", f"fsync={'on' if self.durable else 'off'}", "-c", "max_connections=50"]
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True, **self._as_user())
        self._wait_until_ready()

    def stop(self) -> None:
        """A fast shutdown (SIGINT: clients are cut off, not waited for); SIGKILL if it hangs."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(STOP_TIMEOUT)
        end(self._process)
        self._process = None

    def dsn(self, database: str = "postgres") -> str:
        """Connection settings without the password (which, as in a deployment, comes from the environment)."""
        return f"host={HOST} port={self.port} dbname={database} user={USER}"

    def database(self) -> str:
        """A new empty database; its DSN."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), password=PASSWORD, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def _allow_networks(self) -> None:
        """Logins from the `also_listen` networks, as initdb allows them from loopback."""
        hba = self.data / "pg_hba.conf"
        text = hba.read_text(encoding="utf-8")
        lines = [f"host all all {interface.network} scram-sha-256\n" for interface in self.also_listen]
        if missing := [line for line in lines if line not in text]:
            hba.write_text(text + "".join(missing), encoding="utf-8")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ServerError(f"postgres exited with {self._process.returncode} while starting\n{tail(self.log)}")
            try:
                psycopg.connect(self.dsn(), password=PASSWORD, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"PostgreSQL on {HOST}:{self.port} took no login within {START_TIMEOUT}s\n{tail(self.log)}")
            time.sleep(0.1)

    @staticmethod
    def _run_as() -> pwd.struct_passwd | None:
        if os.getuid() != 0:
            return None
        for name in ("postgres", "vmail"):
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
        raise ServerError("PostgreSQL will not run as root, and there is no 'postgres' or 'vmail' user to run it as")

    def _as_user(self) -> dict:
        if self._account is None:
            return {}
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}


def use_postgres(config: Path, dsn: str, office: str) -> None:
    """Switch an office configuration's [store] to PostgreSQL (its folder stays, for rendered papers)."""
    text = config.read_text(encoding="utf-8")
    if text.count("[store]\n") != 1:
        raise ValueError(f"{config} has no single [store] table to switch")
    config.write_text(text.replace("[store]\n", f'[store]\nkind = "postgresql"\ndsn = "{dsn}"\noffice = "{office}"\n'), encoding="utf-8")


@dataclass
class Handover:
    """What a SIGKILL mid-batch cost: messages lost and handled twice, and how soon another instance worked the office."""

    lost: int
    doubled: int
    seconds: float
    exits: dict[str, int]  # each instance's exit status (the killed one's is -SIGKILL)
    handlers: set[str]  # the instances that handled messages


def kill_mid_batch(conninfo: str, root: Path, office: str, instances: int, messages: int) -> Handover:
    """Start `instances` stand-in daemons on one office; SIGKILL the one working it a quarter of the way through."""
    from service.store.postgres import PostgresStore

    store = PostgresStore(root, conninfo, office).open(exclusive=False)
    tests = Path(__file__).resolve().parent
    workers = {
        f"instance-{n}": subprocess.Popen(
            [sys.executable, "-c", f"from postgres import work_office; work_office({conninfo!r}, {str(root)!r}, {office!r}, 'instance-{n}', {messages})"],
            cwd=tests, env={**os.environ, "PYTHONPATH": str(tests.parent)})
        for n in range(instances)
    }
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while len(store.find("log/00", "messages")) < messages // 4:
            if time.monotonic() > deadline:
                raise ServerError(f"no instance handled {messages // 4} messages within {START_TIMEOUT}s")
            time.sleep(0.02)
        [first] = store.find("takeovers", "taken")
        workers[first["_key"]].send_signal(signal.SIGKILL)
        killed_at = time.time()
        exits = {name: worker.wait(120) for name, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.kill()
            worker.wait()
    handled = store.find("log/00", "messages")
    acknowledged = [d["acknowledges"] for d in store.find("outbox", "mail")]
    taken = [d["at"] for d in store.find("takeovers", "taken") if d["_key"] != first["_key"]]
    store.close()
    return Handover(lost=messages - len(handled), doubled=len(acknowledged) - len(set(acknowledged)),
                    seconds=min(taken) - killed_at if taken else float("inf"), exits=exits, handlers={d["by"] for d in handled})


def work_office(conninfo: str, root: str, office: str, name: str, messages: int) -> None:
    """A stand-in for a daemon (run in a process of its own): wait for the office, then handle what is not yet handled.

    Handling a message is what the pipeline does in one transaction: its log
    entry and the acknowledgement it queues, under a key of its own (as a
    new Message-ID would be), so a message handled twice shows as two.
    """
    from service.store import StoreLocked
    from service.store.postgres import PostgresStore

    while True:
        try:
            store = PostgresStore(Path(root), conninfo, office).open()
            break
        except StoreLocked:
            time.sleep(0.05)
    with store.transaction() as transaction:
        transaction.put("takeovers", "taken", name, {"at": time.time()})
    for number in range(messages):
        if store.get("log/00", "messages", f"m{number}") is None:
            with store.transaction() as transaction:
                transaction.put("log/00", "messages", f"m{number}", {"by": name})
                transaction.put("outbox", "mail", uuid.uuid4().hex, {"acknowledges": f"m{number}", "by": name})
            time.sleep(0.005)
    store.close()

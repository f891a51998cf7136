"""Many offices in one process: `secretary run --offices DIR`.

DIR holds one ordinary office configuration (`*.toml`, the format of
`secretary.toml`) per office; the file's name without `.toml` names the
office. Each office gets a daemon of its own, in a thread of its own, built
from its own file: its own mailbox, sender, directory, rules, templates,
reply-key secret and store. The offices share nothing but the process and
one apscheduler scheduler that wakes their timelines, so the threads are one
per office (one per mailbox connection) plus a fixed few.

The folder is looked at again every few seconds: an office whose file
appeared is started, one whose file went is stopped, one whose file changed
(its content, not only its time) is stopped and started again from the new
file. A file that cannot be read as a configuration is reported and left
out until it changes; the other offices carry on. An office whose daemon
fails (an exception escaping it, or a store that cannot be opened) is
reported and started again after a pause that doubles up to five minutes.
Offices whose stores are in PostgreSQL are shared with the other instances
that run them (other machines given the same files): at every look at the
folder, and every second in between, the instances count each other and
take, or hand back, offices towards a fair share each, and take those of an
instance that died (see service/members.py). An office's thread then runs its daemon only while it
is this instance's turn: handed back, its daemon stops after the batch in
hand and the thread waits. A TinyDB office always runs.
SIGTERM and SIGINT stop every office, each after the batch of messages in
hand, as they stop one daemon.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from .config import ConfigError, Settings, load
from .daemon import Daemon, build, make_sender, make_source
from .members import LOOK_SECONDS, Sharing
from .store import StoreLocked

log = logging.getLogger(__name__)

RESCAN_SECONDS = 5.0
RESTART_FIRST = 1.0
RESTART_CAP = 300.0
#: How often an office whose store another process holds is tried again, when it is not shared (a PostgreSQL
#: office is given its turn again by the sharing, at the next look at the folder): its lock goes when that
#: process dies, and the office must be taken over within 30 s (see postgres.py for a dead machine).
TAKEOVER_SECONDS = 5.0
#: A stopped daemon ends its wait for mail within a second, whatever its source (IMAP, Maildir, Exchange, Graph);
#: this much more is allowed for the batch in hand.
STOP_GRACE = 30.0
#: The shared scheduler's jobs only set an event, so two threads run them all.
SCHEDULER_THREADS = 2


def fingerprint(path: Path) -> str | None:
    """What tells a changed office file from an unchanged one: its content's hash (None: the file is gone)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"unreadable: {error}"  # load() reports it; a new fingerprint once it can be read


def claims(settings: Settings) -> set[str]:
    """What no two offices may share: a store (its folder, or its rows in PostgreSQL) and a shared mailbox."""
    found = {f"the store {settings.store}", f"the mailbox {settings.office.mailbox}"}
    if settings.postgres is not None:
        found.add(f"the PostgreSQL office {settings.postgres.office!r} at {settings.postgres.dsn!r}")
    return found


class OfficeThread:
    """One office's daemon in a thread of its own, started again with back-off whenever it fails, until stopped.

    A shared office (its store in PostgreSQL) runs only while it is this
    instance's turn (`take`, `release`: the supervisor's sharing decides);
    any other office always has its turn.
    """

    def __init__(self, name: str, settings: Settings, fingerprint: str, scheduler: BackgroundScheduler, shared: bool = False) -> None:
        self.name = name
        self.settings = settings
        self.fingerprint = fingerprint
        self.scheduler = scheduler
        self.shared = shared
        self.restarts = 0
        self._stopped = threading.Event()
        self._turn = threading.Event()
        if not shared:
            self._turn.set()
        self._daemon: Daemon | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Ask the office to stop; it does once the wait or the batch in hand ends."""
        self._stopped.set()
        self._turn.set()  # so that a thread waiting for its turn sees the stop
        self._stop_daemon()

    def take(self) -> None:
        """Give the office its turn: its daemon starts (and takes the office's lock, if no one else has it)."""
        self._turn.set()

    def release(self) -> None:
        """Hand the office back: its daemon stops after the batch in hand (freeing the lock), and the thread waits for its turn."""
        self._turn.clear()
        self._stop_daemon()

    def wants(self) -> bool:
        """Whether it is the office's turn (its daemon runs, or is starting or waiting to start again)."""
        return self._turn.is_set()

    def alive(self) -> bool:
        return self.thread.is_alive()

    def _stop_daemon(self) -> None:
        daemon = self._daemon
        if daemon is not None:
            daemon.stop()

    def _run(self) -> None:
        delay = 0.0
        waiting = False
        while not self._stopped.is_set():
            self._turn.wait()
            if self._stopped.is_set():
                break
            started = time.monotonic()
            try:
                self._run_daemon()
            except StoreLocked as error:  # not a failure: another instance runs the office, and this one stands by
                if self.shared:  # another instance took it first: the supervisor gives it back its turn when it is free
                    log.debug("office %s: %s", self.name, error)
                    self._turn.clear()
                    continue
                if not waiting:
                    log.info("office %s: %s; waiting to take it over", self.name, error)
                waiting = True
                delay = 0.0
                self._stopped.wait(TAKEOVER_SECONDS)
                continue
            except Exception:
                log.exception("office %s failed", self.name)
            waiting = False
            if self._stopped.is_set():
                break
            if not self._turn.is_set():  # handed back: not a failure
                delay = 0.0
                continue
            ran_well = time.monotonic() - started > RESTART_CAP  # a failure after a long good run starts the doubling afresh
            delay = RESTART_FIRST if not delay or ran_well else min(2 * delay, RESTART_CAP)
            log.error("office %s: starting it again in %.0f s", self.name, delay)
            self.restarts += 1
            self._stopped.wait(delay)
        log.info("office %s stopped", self.name)

    def _run_daemon(self) -> None:
        service = build(self.settings)
        try:
            daemon = Daemon(service, make_source(self.settings), make_sender(self.settings), self.scheduler)
        except BaseException:
            service.office.store.close()
            raise
        self._daemon = daemon
        if self._stopped.is_set() or not self._turn.is_set():  # stop() or release() came while the daemon was being built
            daemon.stop()
        try:
            daemon.run()
        finally:
            self._daemon = None


@dataclass(frozen=True)
class Rejected:
    """An office file that was not started, and why; reported once, not at every look at the folder.

    A file that is not a good configuration waits until it changes; one that
    claims what another office has (`retry`) is tried again at every look,
    as that office may go.
    """

    fingerprint: str
    problem: str
    retry: bool = False


class Supervisor:
    """Keeps one OfficeThread per configuration file in `folder` running, in step with the folder."""

    def __init__(self, folder: Path, environ: dict[str, str] | None = None, rescan_seconds: float = RESCAN_SECONDS) -> None:
        self.folder = Path(folder)
        self.environ = environ
        self.rescan_seconds = rescan_seconds
        self.offices: dict[str, OfficeThread] = {}
        self.rejected: dict[str, Rejected] = {}
        self._ending: dict[str, OfficeThread] = {}  # asked to stop, thread not yet ended (it still holds its store)
        self._stop = threading.Event()
        self.sharing = Sharing()
        self.scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(SCHEDULER_THREADS)})

    def run(self) -> None:
        """Work until a signal, or until `stop()` from another thread."""
        if not self.folder.is_dir():
            raise ConfigError(f"{self.folder}: no such folder of office configurations")
        self._install_signal_handlers()
        self.scheduler.start()
        log.info("secretary started for the offices in %s", self.folder)
        looks = max(1, round(self.rescan_seconds / LOOK_SECONDS))  # at the folder (and the sharing), then at the sharing only
        try:
            for look in itertools.count():
                if look % looks == 0:
                    self.rescan()
                else:
                    self.sharing.balance(self.offices.values())
                if self._stop.wait(self.rescan_seconds / looks):
                    break
        finally:
            self._stop_all()
            self.scheduler.shutdown(wait=False)
            log.info("secretary stopped")

    def stop(self) -> None:
        self._stop.set()

    def rescan(self) -> None:
        """Start the offices whose files appeared, stop those whose files went, restart those whose files changed; share."""
        found = {path.stem: fingerprint(path) for path in sorted(self.folder.glob("*.toml"))}
        found = {name: value for name, value in found.items() if value is not None}
        for name, office in list(self.offices.items()):
            if found.get(name) != office.fingerprint:
                log.info("office %s: its file %s; stopping it", name, "changed" if name in found else "is gone")
                office.stop()
                self._ending[name] = self.offices.pop(name)
        self._ending = {name: office for name, office in self._ending.items() if office.alive()}
        self.rejected = {name: bad for name, bad in self.rejected.items() if found.get(name) == bad.fingerprint}
        for name, value in found.items():
            waiting = name in self.offices or name in self._ending
            if not waiting and (name not in self.rejected or self.rejected[name].retry):
                self._start(name, value)
        self.sharing.balance(self.offices.values())

    def _start(self, name: str, value: str) -> None:
        path = self.folder / f"{name}.toml"
        try:
            settings = load(path, self.environ)
        except (ConfigError, OSError) as error:
            self._reject(name, Rejected(value, str(error)))
            return
        mine = claims(settings)
        if any(mine & claims(office.settings) for office in self._ending.values()):
            return  # an office on its way out still holds it: next time
        for other in self.offices.values():
            if shared := mine & claims(other.settings):
                problem = f"{path}: {' and '.join(sorted(shared))} already belong(s) to office {other.name}; each office needs its own"
                self._reject(name, Rejected(value, problem, retry=True))
                return
        self.rejected.pop(name, None)
        office = OfficeThread(name, settings, value, self.scheduler, shared=settings.postgres is not None)
        self.offices[name] = office
        office.start()
        log.info("office %s started from %s", name, path)

    def _reject(self, name: str, rejected: Rejected) -> None:
        if self.rejected.get(name) != rejected:
            log.error("office %s not started: %s", name, rejected.problem)
        self.rejected[name] = rejected

    def _stop_all(self) -> None:
        everyone = [*self.offices.values(), *self._ending.values()]
        for office in everyone:
            office.stop()
        deadline = time.monotonic() + max((o.settings.tick_seconds for o in everyone), default=0) + STOP_GRACE
        for office in everyone:
            office.thread.join(max(0.0, deadline - time.monotonic()))
        if stuck := [office.name for office in everyone if office.alive()]:
            log.warning("offices still busy at exit, left to the next start to finish: %s", ", ".join(stuck))
        self.offices.clear()
        self._ending.clear()
        self.sharing.close()

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, frame: object) -> None:
            log.info("signal %s: stopping every office after its batch in hand", signal.Signals(signum).name)
            self._stop.set()

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, stop)

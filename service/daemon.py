"""The daemon: wires a source, the pipeline, the outbox and a sender, and keeps them going.

It never stops on a bad message (the pipeline quarantines it) nor on a lost
connection or a full disk (it says what is wrong, waits, and tries again);
only a signal stops it, and then between two messages, never inside one.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from .config import ExchangeSettings, FileSenderSettings, GraphSettings, ImapSettings, MaildirSettings, Settings, SmtpSettings
from .directory.records import office_directory
from .meetings import Office
from .mail.compose import Composer
from .mail.maildir import FileSender, MaildirSource
from .mail.outbox import Outbox
from .mail.sender import Sender
from .mail.source import Source, SourceError
from .pipeline import Handled, Pipeline
from .commands import apply_spooled
from .meetings.clerk import HANDLERS
from .store import StoreError, StoreLocked, open_store
from .ticks import run_due_steps
from .understand import Context

log = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_CAP = 300.0
#: A backlog is handled in batches of up to so many messages or seconds, each one store write (a group commit);
#: what a batch queued is sent before the next begins.
BATCH_MESSAGES = 50
BATCH_SECONDS = 0.5


class Shutdown(Exception):
    """A signal asked the daemon to stop while it was waiting for mail."""


@dataclass
class Service:
    """Everything the daemon and the one-off commands share, built from the settings."""

    settings: Settings
    office: Office
    pipeline: Pipeline
    outbox: Outbox
    clock: Callable[[], datetime]


def build(settings: Settings, clock: Callable[[], datetime] | None = None, exclusive: bool = True) -> Service:
    """Open the store and build the pipeline for a configuration."""
    zone = ZoneInfo(settings.office.timezone)
    clock = clock or (lambda: datetime.now(zone))
    store = open_store(settings, exclusive=exclusive)
    try:
        directory = office_directory(store, settings.directory)
        composer = Composer(settings.templates, settings.office.name, settings.office.mailbox, settings.office.language)
        outbox = Outbox(store, composer, envelope_sender=settings.office.mailbox)
        context = Context(directory=directory, reply_key_secret=settings.reply_key_secret, rules=settings.rules)
        office = Office(settings.office, store, directory, settings.rules, settings.templates, settings.reply_key_secret)
        pipeline = Pipeline(office, context, outbox, clock, size_limit=int(settings.max_message_mb * 1024 * 1024))
    except BaseException:
        store.close()  # its lock, so that a process that tries again (service/offices.py) is not locked out by itself
        raise
    return Service(settings, office, pipeline, outbox, clock)


def make_source(settings: Settings) -> Source:
    source = settings.source
    if isinstance(source, GraphSettings):
        from .mail.graph import GraphSource

        return GraphSource(
            **_graph_app(source),
            state=source.state,
            processed=source.processed,
            quarantine=source.quarantine,
            poll_interval=source.poll_interval,
        )
    if isinstance(source, MaildirSettings):
        return MaildirSource(source.path)
    if isinstance(source, ExchangeSettings):
        from .mail.exchange import ExchangeSource

        return ExchangeSource(
            **_ews_account(source),
            notifications=source.notifications,
            processed=source.processed,
            quarantine=source.quarantine,
            poll_interval=source.poll_interval,
        )
    assert isinstance(source, ImapSettings)
    from .mail.imap import ImapSource

    return ImapSource(
        host=source.host,
        port=source.port,
        username=source.username,
        password=source.password,
        security=source.security,
        verify_tls=source.verify_tls,
        inbox=source.inbox,
        processed=source.processed,
        quarantine=source.quarantine,
        timeout=source.timeout,
        poll_interval=source.poll_interval,
    )


def _graph_app(settings: GraphSettings) -> dict[str, Any]:
    """What a Graph source and sender both need: the app's sign-in and the mailbox."""
    return {
        "tenant": settings.tenant, "client_id": settings.client_id, "client_secret": settings.client_secret,
        "mailbox": settings.mailbox, "authority": settings.authority, "graph_url": settings.graph_url,
        "timeout": settings.timeout,
    }


def _ews_account(settings: ExchangeSettings) -> dict[str, Any]:
    """What an EWS source and sender both need: the server, the sign-in and the mailbox."""
    from .mail.exchange import app_sign_in

    return {
        "url": settings.url, "username": settings.username, "password": settings.password, "app": app_sign_in(settings),
        "mailbox": settings.mailbox, "access": settings.access, "verify_tls": settings.verify_tls, "timeout": settings.timeout,
    }


def make_sender(settings: Settings) -> Sender:
    sender = settings.sender
    if isinstance(sender, GraphSettings):
        from .mail.graph import GraphSender

        return GraphSender(**_graph_app(sender))
    if isinstance(sender, FileSenderSettings):
        return FileSender(sender.path)
    if isinstance(sender, ExchangeSettings):
        from .mail.exchange import ExchangeSender

        return ExchangeSender(**_ews_account(sender), save_copy=sender.save_copy)
    assert isinstance(sender, SmtpSettings)
    from .mail.smtp import SmtpSender

    return SmtpSender(
        host=sender.host,
        port=sender.port,
        security=sender.security,
        username=sender.username or None,
        password=sender.password or None,
        verify_tls=sender.verify_tls,
        timeout=sender.timeout,
    )


class Daemon:
    """The main loop: fetch and handle, drain the outbox, wait for more."""

    def __init__(self, service: Service, source: Source, sender: Sender, scheduler: BaseScheduler | None = None) -> None:
        """`scheduler`: a running one shared by many daemons (see service/offices.py); else the daemon starts its own."""
        self.service = service
        self.source = source
        self.sender = sender
        self.scheduler = scheduler
        self.stopping = False
        self._waiting = False
        self._failures = 0
        self._steps_due = threading.Event()
        self.handled: list[Handled] = []

    def run(self, once: bool = False) -> None:
        """Work until a signal (or, with `once`, until the inbox and the outbox are empty)."""
        self._install_signal_handlers()
        unschedule = self._start_scheduler()
        log.info("secretary started for %s (store %s)", self.service.settings.office.mailbox, self.service.office.store.root)
        try:
            while not self.stopping:
                worked = self.step()
                if once and not worked and self._idle():
                    break
                self._wait(0 if worked else self.service.settings.tick_seconds)
        except Shutdown:
            pass
        finally:
            unschedule()
            self.source.close()
            self.service.office.store.close()
            log.info("secretary stopped")

    def step(self) -> bool:
        """One pass: handle every waiting message, then send what is due. True if any message was handled."""
        worked = False
        try:
            fetched, most = self.source.fetch_new(), 1
            while batch := self.service.pipeline.process(self.source, fetched, most, BATCH_SECONDS):
                self.handled.extend(batch)
                worked = True
                most = min(2 * most, BATCH_MESSAGES)  # the first message of a backlog is answered at once, the rest in growing batches
                if self.stopping:
                    break
                # In a backlog, answers go out batch by batch as it is worked through, and the outbox stays small.
                self.service.outbox.drain(self.sender, self.service.clock())
            apply_spooled(self.service.office, self.service.outbox, HANDLERS, self.service.clock())
            if self._steps_due.is_set():
                self._steps_due.clear()
                run_due_steps(self.service.office, self.service.outbox, self.service.clock())
            self.service.outbox.drain(self.sender, self.service.clock())
            self._failures = 0
        except SourceError as error:
            log.error("the mailbox is not reachable: %s; the source tries again with backoff", error)
        except StoreLocked:
            raise  # another instance took the office over (its lease ran out here): stand by, not retry
        except StoreError as error:
            self._back_off(f"the store cannot be written ({error}); messages stay in the inbox until it can")
        return worked

    def stop(self) -> None:
        """Ask the loop to end, from another thread: after the batch in hand, or at once if it is waiting for mail.

        An IMAP IDLE ends within a second; a Maildir, Exchange or Graph
        wait (between polls, or a back-off) at once.
        """
        self.stopping = True
        self.source.interrupt()

    def _start_scheduler(self) -> Callable[[], None]:
        """apscheduler only says when to look at the timeline; what is due is worked out from the store.

        It wakes the timeline at the start of each day (when new steps fall
        due), at the digest's time, and every tick (retries, and anything a
        restart missed), and once at start-up. Returns what undoes it: the
        daemon's own scheduler is shut down; on a shared one only this
        daemon's jobs are removed.
        """
        zone = self.service.settings.office.timezone
        scheduler = self.scheduler or BackgroundScheduler(timezone=zone)
        digest = self.service.settings.office.digest.at
        jobs = [
            scheduler.add_job(self._steps_due.set, "cron", hour=0, minute=0, second=30, timezone=zone, name="new-day"),
            scheduler.add_job(self._steps_due.set, "interval", seconds=self.service.settings.tick_seconds, name="tick"),
            scheduler.add_job(self._steps_due.set, "cron", hour=digest.hour, minute=digest.minute, second=5, timezone=zone, name="digest"),
        ]
        self._steps_due.set()
        if self.scheduler is None:
            scheduler.start()
            return lambda: scheduler.shutdown(wait=False)
        return lambda: [job.remove() for job in jobs]

    def _idle(self) -> bool:
        return not any(d["next_attempt_at"] <= self.service.clock().isoformat() for d in self.service.outbox.pending())

    def _wait(self, seconds: float) -> None:
        if seconds <= 0 or self.stopping:
            return
        self._waiting = True
        try:
            self.source.wait(seconds)
        except SourceError as error:
            log.error("the mailbox is not reachable: %s; the source tries again with backoff", error)
        finally:
            self._waiting = False

    def _back_off(self, problem: str) -> None:
        self._failures += 1
        delay = min(BACKOFF_FIRST * 2 ** (self._failures - 1), BACKOFF_CAP)
        log.error("%s; trying again in %.0f s", problem, delay)
        self._waiting = True
        try:
            time.sleep(delay)
        finally:
            self._waiting = False

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, frame: object) -> None:
            log.info("signal %s: stopping after the current batch of messages", signal.Signals(signum).name)
            self.stopping = True
            if self._waiting:
                raise Shutdown

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, stop)

"""Fixtures for tests on real mail servers: one Dovecot and one Postfix per session.

The servers are shared, so each test adds the users it needs under unique
names (`servers.unique_address`) and never sees another test's mail. When a
server cannot start, the fixture fails with the reason: a test that needs a
mail server must not pass quietly where there is none.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, TypeVar

import pytest

from servers import Dovecot, Postfix, ServerError, SmtpSink

DOMAINS = ["office.test", "school.test", "example.test"]

Server = TypeVar("Server", Dovecot, Postfix, SmtpSink)


class MailServers(NamedTuple):
    dovecot: Dovecot
    postfix: Postfix


def start(server: Dovecot | Postfix | SmtpSink) -> None:
    """Start a server, or fail the test with the reason (outside the except, so without a chained traceback)."""
    try:
        server.start()
    except ServerError as error:
        problem = f"{type(server).__name__} could not start: {error}"
    else:
        return
    pytest.fail(problem, pytrace=False)


def running(server: Server) -> Iterator[Server]:
    """A started server for a fixture to yield; stopped when the fixture ends."""
    start(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mail_root() -> Iterator[Path]:
    """A directory of the session's own in /tmp for the shared servers, removed at the end.

    Not under pytest's base directory: Dovecot's and Postfix's unprivileged
    processes need to traverse every directory above their files, and any
    pytest session that starts meanwhile resets that base to mode 0700.
    """
    root = Path(tempfile.mkdtemp(prefix="secretary-mail-servers-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot(mail_root: Path) -> Iterator[Dovecot]:
    yield from running(Dovecot(mail_root / "dovecot"))


@pytest.fixture(scope="session")
def postfix(mail_root: Path, dovecot: Dovecot) -> Iterator[Postfix]:
    yield from running(Postfix(mail_root / "postfix", dovecot.lmtp_port, DOMAINS, sasl_port=dovecot.auth_port))


@pytest.fixture(scope="session")
def mail_servers(dovecot: Dovecot, postfix: Postfix) -> MailServers:
    return MailServers(dovecot, postfix)


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    yield from running(SmtpSink(tmp_path / "smtp-sink"))


@pytest.fixture
def make_smtp_sink(tmp_path: Path) -> Iterator[Callable[..., SmtpSink]]:
    """Start smtp-sinks with extra options (see `SmtpSink`); all are stopped after the test."""
    started: list[SmtpSink] = []

    def make(*options: str) -> SmtpSink:
        sink = SmtpSink(tmp_path / f"smtp-sink-{len(started)}", options)
        started.append(sink)
        start(sink)
        return sink

    yield make
    for sink in started:
        sink.stop()


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL for the session (a `postgres.Postgres`), in a directory of its own in /tmp (it may run as another user)."""
    from postgres import Postgres  # psycopg loads only for the tests that use PostgreSQL

    root = Path(tempfile.mkdtemp(prefix="secretary-postgres-"))
    root.chmod(0o755)
    try:
        yield from running(Postgres(root / "cluster"))
    finally:
        shutil.rmtree(root, ignore_errors=True)

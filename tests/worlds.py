"""The two worlds a meeting's life is tested in: the embedded default and the real servers.

The same story runs in both: on the embedded default (a Maildir and a folder of
.eml files) and on the real servers (the daemon reads the shared mailbox over
IMAP from Dovecot and sends through Postfix, which delivers into each person's
Dovecot mailbox, where the test reads what they received).

A story can also be told with the shared mailbox on Microsoft's servers:
"exchange" (EWS) and "graph" (Microsoft 365) run the daemon against the test
doubles of Exchange Server and Microsoft Graph, which keep what it sent.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path

import email
import email.policy

from exchange_double import ExchangeDouble
from graph_double import CLIENT_ID, SECRET, TENANT, GraphDouble
from helpers import DIRECTORY, ENV, MAILBOX, message, write_config
from service.config import Settings, load
from service.daemon import Daemon, build, make_sender, make_source
from service.mail.maildir import deliver


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Embedded:
    """The embedded default: mail in through a Maildir, out into .eml files."""

    def __init__(self, tmp_path: Path) -> None:
        self.config = write_config(tmp_path, 'kind = "maildir"\npath = "mailbox"', 'kind = "file"\npath = "outgoing"', digest=True)

    def address(self, local: str) -> str:
        """The sample directory's address for a local part (policy → policy@office.example.go.th)."""
        return next(a for a in re.findall(r'"([^"@]+@[^"]+)"', DIRECTORY.read_text(encoding="utf-8")) if a.startswith(local + "@"))

    def clerk(self) -> str:
        return "clerk@office.test"

    def deliver(self, settings, raw: bytes) -> None:
        deliver(settings.source.path, raw, "reply")

    def received(self, settings, address: str) -> list[bytes]:
        return [path.read_bytes() for path in sorted(settings.sender.path.glob("*.eml"))]


class Servers:
    """Real servers: the sample directory moved to the test domains, every address a Dovecot user."""

    def __init__(self, tmp_path: Path, mail_servers) -> None:
        self.dovecot, self.postfix = mail_servers
        tag = uuid.uuid4().hex[:6]
        text = DIRECTORY.read_text(encoding="utf-8")
        self.addresses = {}
        for address in set(re.findall(r'"([^"@]+@[^"]+)"', text)):
            local, domain = address.split("@")
            moved = f"{local}-{tag}@{'office.test' if 'office' in domain else 'school.test'}"
            self.addresses[local] = moved
            text = text.replace(f'"{address}"', f'"{moved}"')
        self.mailbox, self._clerk = f"meeting-{tag}@office.test", f"clerk-{tag}@office.test"
        for address in (*self.addresses.values(), self.mailbox, self._clerk):
            self.dovecot.add_user(address)
        directory = tmp_path / "directory.toml"
        directory.write_text(text, encoding="utf-8")
        self.config = write_config(
            tmp_path,
            f'kind = "imap"\nhost = "{self.dovecot.host}"\nport = {self.dovecot.imap_port}\nsecurity = "none"\nusername = "{self.mailbox}"',
            f'kind = "smtp"\nhost = "{self.postfix.host}"\nport = {self.postfix.smtp_port}\nsecurity = "none"',
            directory=directory,
            digest=True,
        )
        self.config.write_text(self.config.read_text().replace("meeting@office.test", self.mailbox).replace("clerk@office.test", self._clerk))

    def address(self, local: str) -> str:
        return self.addresses[local]

    def clerk(self) -> str:
        return self._clerk

    def deliver(self, settings, raw: bytes) -> None:
        self.dovecot.append(self.mailbox, raw)

    def received(self, settings, address: str) -> list[bytes]:
        self.postfix.wait_for_queue_empty()
        return self.dovecot.messages(address)

    def filed(self, folder: str) -> list[bytes]:
        """The shared mailbox's folder ("INBOX", "Processed", "Quarantine")."""
        return self.dovecot.messages(self.mailbox, folder)


class OnExchange(Embedded):
    """The shared mailbox on an Exchange Server (the EWS double), read and sent through EWS; outgoing mail is what it sent."""

    def __init__(self, tmp_path: Path, monkeypatch) -> None:
        self.double = ExchangeDouble().start()
        monkeypatch.setenv("SECRETARY_EXCHANGE_PASSWORD", self.double.password)
        table = f'kind = "exchange"\nurl = "{self.double.url}"\nusername = \'{self.double.username}\'\npoll_interval = 1'
        self.config = write_config(tmp_path, table, table, digest=True)

    def deliver(self, settings, raw: bytes) -> None:
        self.double.deliver(raw)

    def received(self, settings, address: str) -> list[bytes]:
        return [sent.mime for sent in self.double.sent]

    def filed(self, folder: str) -> list[bytes]:
        return self.double.messages("Inbox" if folder == "INBOX" else folder)


class OnMicrosoft365(Embedded):
    """The shared mailbox in Microsoft 365 (the Graph double), read and sent through Graph."""

    def __init__(self, tmp_path: Path, monkeypatch) -> None:
        self.double = GraphDouble(MAILBOX).start()
        monkeypatch.setenv("SECRETARY_GRAPH_CLIENT_SECRET", SECRET)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(self.double.ca_file))
        table = (f'kind = "graph"\ntenant = "{TENANT}"\nclient_id = "{CLIENT_ID}"\nauthority = "{self.double.authority}"\n'
                 f'graph_url = "{self.double.graph_url}"\npoll_interval = 1')
        self.config = write_config(tmp_path, table, table, digest=True)

    def deliver(self, settings, raw: bytes) -> None:
        self.double.deliver(raw)

    def received(self, settings, address: str) -> list[bytes]:
        return list(self.double.sent)

    def filed(self, folder: str) -> list[bytes]:
        return [m.raw for m in self.double.mailbox.in_folder("Inbox" if folder == "INBOX" else folder)]


def run(settings, clock, day: datetime | None = None):
    if day:
        clock.now = day
    daemon = Daemon(build(settings, clock=clock), make_source(settings), make_sender(settings))
    daemon.run(once=True)
    return daemon.handled


def outgoing(world, settings, to: str, subject_part: str = ""):
    """What `to` received from the service (the embedded default keeps all outgoing mail in one folder)."""
    found = []
    for raw in world.received(settings, to):
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        if to in mail["To"] and subject_part in mail["Subject"]:
            found.append(mail)
    return found


def reply(world, settings, to_mail, sender: str, text: str, subject: str | None = None, attachments=()):
    raw = message(sender=sender, subject=subject or f"Re: {to_mail['Subject']}", text=text, attachments=attachments,
                  headers=(("In-Reply-To", to_mail["Message-ID"]), ("References", to_mail["Message-ID"])))
    world.deliver(settings, raw)


def make_world(request, tmp_path: Path, monkeypatch) -> tuple[Settings, Embedded | Servers]:
    """For a fixture parametrised by "embedded" / "servers" / "postgresql" (the embedded world with its store in
    PostgreSQL): the office's settings and the world it runs in."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    if request.param in ("exchange", "graph"):  # the shared mailbox on a Microsoft server double
        on_microsoft = (OnExchange if request.param == "exchange" else OnMicrosoft365)(tmp_path, monkeypatch)
        request.addfinalizer(on_microsoft.double.stop)
        return load(on_microsoft.config), on_microsoft
    if request.param == "servers":
        world = Servers(tmp_path, request.getfixturevalue("mail_servers"))
    else:
        world = Embedded(tmp_path)
    if request.param == "postgresql":
        from postgres import PASSWORD, use_postgres

        use_postgres(world.config, request.getfixturevalue("postgres").database(), MAILBOX)
        monkeypatch.setenv("SECRETARY_DATABASE_PASSWORD", PASSWORD)
    return load(world.config), world


def clerk(settings, clock, command: str, arguments: dict) -> str:
    """A clerk's command applied at the clock's time, as `secretary …` does when no daemon runs."""
    from service.commands import apply
    from service.meetings.clerk import HANDLERS

    service = build(settings, clock=clock)
    try:
        return apply(service.office, service.outbox, HANDLERS, command, arguments, clock())
    finally:
        service.office.store.close()

"""The IMAP source against a real Dovecot: order, moves, IDLE, polling, and surviving failures.

Each test has a mailbox of its own. Sleeps between reconnections are
recorded instead of slept, so the backoff can be checked without waiting
for it; IDLE waits are real.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time

import pytest
from imapclient import DELETED, SEEN, IMAPClient

from helpers import message
from servers import unique_address
from service.mail.imap import ImapSource
from service.mail.source import SourceError


@pytest.fixture
def address(dovecot) -> str:
    mailbox = unique_address("meeting")
    dovecot.add_user(mailbox)
    return mailbox


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def open_source(dovecot, sleeps):
    """Makes sources for a mailbox on the test Dovecot, and closes them after the test."""
    made: list[ImapSource] = []

    def make(address: str, **settings) -> ImapSource:
        settings = {
            "host": dovecot.host, "port": dovecot.imap_port, "username": address, "password": "secret",
            "security": "none", "timeout": 10, "sleep": sleeps.append, **settings,
        }
        made.append(ImapSource(**settings))
        return made[-1]

    yield make
    for source in made:
        source.close()


class Relay:
    """A TCP relay in front of Dovecot that can cut its connections and turn new ones away, as a bad network does.

    With a TLS context it also terminates TLS, standing in for an IMAPS port.
    """

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self.target = (host, port)
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refusing = False
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            sockets, self._open = self._open, []
        for connection in sockets:
            _shut(connection)

    def close(self) -> None:
        _shut(self.listener)
        self.cut()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                _shut(near)
                continue
            if self.tls:
                try:
                    near = self.tls.wrap_socket(near, server_side=True)
                except OSError:
                    continue  # the client did not like our certificate
            far = socket.create_connection(self.target)
            with self._lock:
                self._open += [near, far]
            for source, destination in ((near, far), (far, near)):
                threading.Thread(target=_pipe, args=(source, destination), daemon=True).start()


def _pipe(source: socket.socket, destination: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            destination.sendall(data)
    except OSError:
        pass
    _shut(destination)


def _shut(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()


@pytest.fixture
def relay(dovecot):
    relay = Relay(dovecot.host, dovecot.imap_port)
    yield relay
    relay.close()


@pytest.fixture
def imaps(dovecot, tmp_path):
    """An implicit-TLS port for the test Dovecot, with a self-signed certificate."""
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    relay = Relay(dovecot.host, dovecot.imap_port, tls=context)
    yield relay
    relay.close()


def flag_deleted(dovecot, address: str, raw: bytes, deleted: bool = True) -> None:
    """What a person does in a mail client that only flags a deleted message (or takes the flag off)."""
    client = dovecot.client(address)
    try:
        client.select_folder("INBOX")
        found = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
        uids = [uid for uid, item in found.items() if item[b"BODY[]"] == raw]
        (client.add_flags if deleted else client.remove_flags)(uids, [DELETED])
    finally:
        client.logout()


@pytest.mark.parametrize(
    "names",
    [{}, {"processed": "ดำเนินการแล้ว", "quarantine": "รอตรวจสอบ"}],
    ids=["default folders", "Thai folder names"],
)
def test_fetches_oldest_first_and_moves_to_processed_and_quarantine(dovecot, address, open_source, names):
    processed, quarantine = names.get("processed", "Processed"), names.get("quarantine", "Quarantine")
    sent = [message(subject=f"item {n}") for n in range(5)]
    for raw in sent:
        dovecot.append(address, raw)
    source = open_source(address, batch_size=2, **names)

    fetched = list(source.fetch_new())
    assert [f.raw for f in fetched] == sent
    for n, item in enumerate(fetched):
        (source.mark_quarantined if n == 1 else source.mark_processed)(item.ref)

    assert dovecot.messages(address) == []
    assert dovecot.messages(address, processed) == [sent[0], *sent[2:]]
    assert dovecot.messages(address, quarantine) == [sent[1]]
    client = dovecot.client(address)
    try:
        assert {processed, quarantine} <= {name for _, _, name in client.list_sub_folders()}
    finally:
        client.logout()
    assert list(source.fetch_new()) == []


def test_implicit_tls_verifies_the_certificate_unless_told_not_to(dovecot, address, imaps, open_source):
    raw = message()
    dovecot.append(address, raw)
    with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED"):
        list(open_source(address, port=imaps.port, security="tls").fetch_new())
    trusting = open_source(address, port=imaps.port, security="tls", verify_tls=False)
    assert [f.raw for f in trusting.fetch_new()] == [raw]


def test_fetching_leaves_messages_unseen(dovecot, address, open_source):
    raw = message()
    dovecot.append(address, raw)
    source = open_source(address)
    [fetched] = source.fetch_new()
    assert fetched.raw == raw
    source.mark_processed(fetched.ref)

    client = dovecot.client(address)
    try:
        client.select_folder("Processed", readonly=True)
        flags = client.get_flags(client.search("ALL"))
    finally:
        client.logout()
    assert len(flags) == 1 and SEEN not in next(iter(flags.values()))


def test_without_move_copies_then_expunges_only_its_own_message(dovecot, address, open_source, monkeypatch):
    expunged: list[list[int]] = []
    uid_expunge = IMAPClient.uid_expunge
    monkeypatch.setattr(IMAPClient, "move", lambda *args: pytest.fail("MOVE used although use_move=False"))
    monkeypatch.setattr(IMAPClient, "uid_expunge", lambda client, uids: (expunged.append(list(uids)), uid_expunge(client, uids))[1])
    theirs, ours = message(subject="deleted by a person"), message(subject="ours")
    dovecot.append(address, theirs)
    flag_deleted(dovecot, address, theirs)
    dovecot.append(address, ours)
    source = open_source(address, use_move=False)

    [fetched] = source.fetch_new()
    assert fetched.raw == ours
    source.mark_processed(fetched.ref)

    assert expunged == [[int(fetched.ref.split(":")[1])]]
    assert dovecot.messages(address, "Processed") == [ours]
    assert dovecot.messages(address) == [theirs]


def test_without_uidplus_expunges_only_when_nothing_else_is_flagged_deleted(dovecot, address, open_source):
    first, second, theirs = message(subject="first"), message(subject="second"), message(subject="a person's")
    source = open_source(address, use_move=False, use_uidplus=False)

    dovecot.append(address, first)
    [fetched] = source.fetch_new()
    source.mark_processed(fetched.ref)
    assert dovecot.messages(address) == []

    dovecot.append(address, theirs)
    flag_deleted(dovecot, address, theirs)
    dovecot.append(address, second)
    [fetched] = source.fetch_new()
    assert fetched.raw == second
    source.mark_processed(fetched.ref)
    assert dovecot.messages(address) == [theirs, second], "a plain EXPUNGE would have removed the person's message"
    assert list(source.fetch_new()) == [], "a copied message waiting for EXPUNGE is not fetched again"

    flag_deleted(dovecot, address, theirs, deleted=False)
    [fetched] = source.fetch_new()
    assert fetched.raw == theirs
    source.mark_processed(fetched.ref)
    assert dovecot.messages(address) == []
    assert dovecot.messages(address, "Processed") == [first, second, theirs]


def test_idle_wakes_promptly_when_another_client_appends(dovecot, address, open_source, sleeps):
    raw = message()
    source = open_source(address)
    assert list(source.fetch_new()) == []

    arrival = threading.Timer(1.0, dovecot.append, (address, raw))
    started = time.monotonic()
    arrival.start()
    source.wait(30)
    waited = time.monotonic() - started
    arrival.join()

    assert 0.5 < waited < 5
    assert sleeps == []
    assert [f.raw for f in source.fetch_new()] == [raw]


def test_wait_returns_at_once_for_mail_that_arrived_since_the_last_fetch(dovecot, address, open_source):
    """IDLE does not announce mail that came in before it started, e.g. while the last fetch was being handled."""
    raw = message()
    source = open_source(address)
    assert list(source.fetch_new()) == []
    dovecot.append(address, raw)

    started = time.monotonic()
    source.wait(30)
    assert time.monotonic() - started < 5
    assert [f.raw for f in source.fetch_new()] == [raw]


def test_idle_is_renewed_so_the_caller_polls_again(address, open_source):
    source = open_source(address, idle_renew=1)
    assert list(source.fetch_new()) == []
    started = time.monotonic()
    source.wait(30)
    assert 0.9 < time.monotonic() - started < 5


def test_polling_finds_new_mail_when_idle_is_not_used(dovecot, address, open_source, sleeps):
    raw = message()
    source = open_source(address, use_idle=False, poll_interval=7)
    assert list(source.fetch_new()) == []

    source.wait(30)
    dovecot.append(address, raw)
    assert [f.raw for f in source.fetch_new()] == [raw]
    source.wait(2)
    assert sleeps == [7, 2]


def test_an_interrupted_idle_ends_within_a_second_and_the_source_waits_no_more(dovecot, address, open_source):
    source = open_source(address)
    assert list(source.fetch_new()) == []
    idle = threading.Thread(target=source.wait, args=(60,))
    idle.start()
    time.sleep(0.5)
    asked = time.monotonic()
    source.interrupt()  # a stopping daemon, from its supervisor's thread
    idle.join(10)
    assert not idle.is_alive() and time.monotonic() - asked < 2.5
    started = time.monotonic()
    source.wait(60)
    assert time.monotonic() - started < 0.5, "once interrupted, a wait returns at once"
    raw = message(subject="after the interruption")
    dovecot.append(address, raw)
    [fetched] = source.fetch_new()
    assert fetched.raw == raw, "the connection is still good for the batch in hand"


def test_a_dovecot_restart_during_idle_fails_one_call_and_misses_nothing(dovecot, address, open_source, sleeps):
    source = open_source(address, backoff_base=4)
    assert list(source.fetch_new()) == []
    outcome: list[object] = []

    def waiting() -> None:
        try:
            source.wait(60)
            outcome.append("returned")
        except SourceError as error:
            outcome.append(error)

    idle = threading.Thread(target=waiting)
    idle.start()
    time.sleep(0.5)
    dovecot.restart()
    idle.join(45)
    assert not idle.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], SourceError)
    assert "BYE" in str(outcome[0]), "the server's reason for hanging up is what the log should say"

    raw = message(subject="sent while the source was cut off")
    dovecot.append(address, raw)
    [fetched] = source.fetch_new()
    assert fetched.raw == raw
    source.mark_processed(fetched.ref)
    assert dovecot.messages(address, "Processed") == [raw]
    assert len(sleeps) == 1 and 2 <= sleeps[0] <= 4


def test_a_connection_lost_mid_fetch_loses_nothing(dovecot, address, relay, open_source):
    sent = [message(subject=f"item {n}") for n in range(5)]
    for raw in sent:
        dovecot.append(address, raw)
    source = open_source(address, port=relay.port, batch_size=2)

    fetching = source.fetch_new()
    for _ in range(2):
        source.mark_processed(next(fetching).ref)
    relay.cut()
    with pytest.raises(SourceError):
        next(fetching)  # the second batch

    fetching = source.fetch_new()
    source.mark_processed(next(fetching).ref)
    held = next(fetching)  # already fetched with the first, in the same batch
    relay.cut()
    with pytest.raises(SourceError):
        source.mark_processed(held.ref)

    rest = list(source.fetch_new())
    assert [f.raw for f in rest] == sent[3:]
    for item in rest:
        source.mark_processed(item.ref)
    assert dovecot.messages(address) == []
    assert dovecot.messages(address, "Processed") == sent


def test_reconnection_backs_off_exponentially_up_to_the_cap_then_starts_over(dovecot, address, relay, open_source, sleeps):
    source = open_source(address, port=relay.port, backoff_base=1, backoff_cap=3)
    assert list(source.fetch_new()) == []
    relay.refusing = True
    relay.cut()
    for _ in range(4):
        with pytest.raises(SourceError):
            source.wait(1)
    ceilings = [1, 2, 3]
    assert len(sleeps) == 3 and all(ceiling / 2 <= s <= ceiling for s, ceiling in zip(sleeps, ceilings))

    relay.refusing = False
    assert list(source.fetch_new()) == []
    relay.cut()
    with pytest.raises(SourceError):
        list(source.fetch_new())
    list(source.fetch_new())
    assert len(sleeps) == 5 and 1.5 <= sleeps[3] <= 3 and 0.5 <= sleeps[4] <= 1


def test_a_refused_login_waits_the_whole_cap_before_trying_again(dovecot, address, open_source, sleeps, caplog):
    source = open_source(address, password="changed", backoff_cap=40)
    with pytest.raises(SourceError):
        list(source.fetch_new())
    assert "refused the login" in caplog.text

    dovecot.add_user(address, "changed")  # the administrator catches up
    assert list(source.fetch_new()) == []
    assert len(sleeps) == 1 and 20 <= sleeps[0] <= 40


def test_a_recreated_inbox_is_fetched_again_under_new_uids(dovecot, address, open_source):
    raw = message()
    dovecot.append(address, raw, "Meetings")
    source = open_source(address, inbox="Meetings")
    [before] = source.fetch_new()

    person = dovecot.client(address)
    try:
        person.delete_folder("Meetings")
        person.create_folder("Meetings")
        person.append("Meetings", raw)
    finally:
        person.logout()

    source.mark_processed(before.ref)
    assert dovecot.messages(address, "Meetings") == [raw], "the old ref's UID must not touch the new mailbox"
    assert dovecot.messages(address, "Processed") == []

    [after] = source.fetch_new()
    assert after.raw == raw
    assert after.ref.split(":")[0] != before.ref.split(":")[0]
    source.mark_processed(after.ref)
    assert dovecot.messages(address, "Meetings") == []
    assert dovecot.messages(address, "Processed") == [raw]


@pytest.mark.parametrize("use_move", [True, False], ids=["MOVE", "COPY"])
def test_marking_an_already_moved_ref_does_nothing(dovecot, address, open_source, use_move):
    raw = message()
    dovecot.append(address, raw)
    source = open_source(address, use_move=use_move)
    [fetched] = source.fetch_new()
    source.mark_processed(fetched.ref)

    source.mark_processed(fetched.ref)
    source.mark_quarantined(fetched.ref)
    assert dovecot.messages(address, "Processed") == [raw]
    assert dovecot.messages(address, "Quarantine") == []
    assert dovecot.messages(address) == []


def test_a_server_that_fails_every_command_is_backed_off_like_one_that_is_down(address, open_source, sleeps, caplog):
    source = open_source(address, inbox="No such folder", backoff_base=1, backoff_cap=3)
    for _ in range(4):
        with pytest.raises(SourceError):
            list(source.fetch_new())
    assert len(sleeps) == 3 and all(ceiling / 2 <= s <= ceiling for s, ceiling in zip(sleeps, [1, 2, 3]))
    assert "No such folder" in caplog.text

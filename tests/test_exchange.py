"""The Exchange (EWS) source and sender, and the daemon over them, against a local EWS double.

No Exchange Server can run here, so `exchange_double.py` speaks EWS SOAP over
HTTP on 127.0.0.1 in the documented shapes, and exchangelib talks to it
unmodified. Sleeps of the source (back-off, reconnection delays) are
recorded instead of slept where a test checks them.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import os
import signal
import threading
import time

import pytest

from exchange_double import ExchangeDouble
from graph_double import CLIENT_ID, SECRET, TENANT
from helpers import ENV, MAILBOX, message, write_config
from service.config import ConfigError, ExchangeSettings, load
from service.daemon import Daemon, build, make_sender, make_source
from service.mail.exchange import AppSignIn, ExchangeSender, ExchangeSource
from service.mail.sender import Envelope
from service.mail.source import SourceError


@pytest.fixture
def double():
    server = ExchangeDouble().start()
    yield server
    server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def source(double, sleeps):
    made = ExchangeSource(
        url=double.url, username=double.username, password=double.password, mailbox=MAILBOX,
        timeout=10, batch_size=2, sleep=sleeps.append,
    )
    yield made
    made.close()


def sender_for(double, **settings) -> ExchangeSender:
    return ExchangeSender(url=double.url, username=double.username, password=double.password, mailbox=MAILBOX, timeout=10, **settings)


def odd_messages() -> list[bytes]:
    """Messages whose bytes a careless fetch would change: 8-bit text, binary attachments, bare LF."""
    return [
        message(text="ยืนยันเข้าร่วมประชุมครับ (1)"),
        message(text="ขอลาครับ (2)", attachments=(("a.pdf", b"%PDF-1.4\x00\xff\xfe" + os.urandom(5000)),)),
        b"From: somchai@school001.example.ac.th\nTo: meeting@office.test\nSubject: lf only\nMessage-ID: <lf@x>\n\nbody\n",
        message(text="(4)"),
        message(text="(5)"),
    ]


def test_the_inbox_is_fetched_oldest_first_byte_for_byte(double, source):
    raws = odd_messages()
    for raw in raws:
        double.deliver(raw)
    fetched = list(source.fetch_new())
    assert [f.raw for f in fetched] == raws  # the double lists newest first unless asked to sort
    assert len({f.ref for f in fetched}) == len(raws)
    assert double.operations.count("FindItem") == 1 and double.operations.count("GetItem") == 3  # pages of two
    assert double.messages() == raws, "fetching leaves the inbox as it was"


def test_moves_make_the_folders_and_a_repeated_move_is_harmless(double, source):
    first, second, third = message(text="1"), message(text="2"), message(text="3")
    for raw in (first, second, third):
        double.deliver(raw)
    a, b, c = source.fetch_new()
    assert "Processed" not in double.folder_names()
    source.mark_processed(a.ref)
    source.mark_quarantined(b.ref)
    source.mark_processed(a.ref)  # moved before a crash, moved again after it: nothing happens
    assert double.messages("Processed") == [first]
    assert double.messages("Quarantine") == [second]
    assert double.messages() == [third]
    assert double.folder_names().count("Processed") == 1
    # A new source (a restart) finds the folders instead of making them again.
    again = ExchangeSource(url=double.url, username=double.username, password=double.password, mailbox=MAILBOX)
    [left] = again.fetch_new()
    again.mark_processed(left.ref)
    assert double.messages("Processed") == [first, third]
    assert double.folder_names().count("Processed") == 1 and double.operations.count("CreateFolder") == 2


def test_throttling_is_obeyed_then_fetching_carries_on(double, source, sleeps):
    raws = [message(text=str(n)) for n in range(3)]
    for raw in raws:
        double.deliver(raw)
    double.busy(1, back_off_ms=2500)
    with pytest.raises(SourceError, match="busy"):
        list(source.fetch_new())
    assert sleeps == [2.5], "the back-off the server asked for is waited out"
    assert [f.raw for f in source.fetch_new()] == raws
    assert sleeps == [2.5], "no further delay once the server answers"


def test_a_long_back_off_is_capped(double, source, sleeps):
    double.deliver(message())
    double.busy(1, back_off_ms=900_000)
    with pytest.raises(SourceError):
        list(source.fetch_new())
    assert sleeps == [source.backoff_cap]


def test_dropped_connections_become_source_errors_and_nothing_is_lost_or_moved_twice(double, source, sleeps):
    raws = [message(text=f"ข้อความ {n}") for n in range(7)]
    for raw in raws:
        double.deliver(raw)
    double.drop(1)
    with pytest.raises(SourceError):
        list(source.fetch_new())
    failures, rounds = 1, 0
    while double.messages() and rounds < 20:
        rounds += 1
        try:
            for n, fetched in enumerate(source.fetch_new()):
                if n == 1 and rounds < 4:
                    double.drop(1)  # the connection goes while the message is being moved
                source.mark_processed(fetched.ref)
        except SourceError:
            failures += 1
    assert double.messages() == []
    processed = double.messages("Processed")
    assert sorted(processed) == sorted(raws) and len(processed) == len(raws), "each message moved exactly once"
    assert failures >= 3
    assert sleeps and all(0 < s <= source.backoff_cap for s in sleeps), "reconnections wait"


def test_a_refused_login_waits_the_whole_cap(double, sleeps):
    bad = ExchangeSource(url=double.url, username=double.username, password="wrong", mailbox=MAILBOX, sleep=sleeps.append, backoff_cap=90)
    with pytest.raises(SourceError):
        list(bad.fetch_new())
    with pytest.raises(SourceError):
        list(bad.fetch_new())
    assert sleeps == [90]


def watching(double, sleeps, **settings) -> ExchangeSource:
    return ExchangeSource(
        url=double.url, username=double.username, password=double.password, mailbox=MAILBOX,
        timeout=10, poll_interval=10, sleep=sleeps.append, **settings,
    )


def test_a_pull_subscription_ends_the_wait_on_new_mail_and_not_on_our_own_moves(double, sleeps):
    source = watching(double, sleeps)
    double.deliver(message(text="1"))
    [first] = source.fetch_new()
    assert double.operations.index("Subscribe") < double.operations.index("FindItem"), "subscribed before listing"
    source.mark_processed(first.ref)
    source.wait(30)
    assert sleeps == [10, 10, 10], "the move out of the inbox is no reason to wake"
    assert double.operations.count("GetEvents") == 4
    double.deliver(message(text="2"))  # arrives while the pipeline works, before the next wait
    source.wait(30)
    assert sleeps == [10, 10, 10], "the queued event ends the wait at once"
    [second] = source.fetch_new()
    assert double.operations.count("Subscribe") == 1
    source.close()
    assert double.operations[-1] == "Unsubscribe" and double.subscriptions == {}


def test_an_expired_subscription_is_renewed_and_the_inbox_listed_so_nothing_in_between_is_lost(double, sleeps):
    source = watching(double, sleeps)
    assert list(source.fetch_new()) == []
    source.wait(10)
    double.expire_subscriptions()
    arrived = message(text="arrived while the subscription was gone")
    double.deliver(arrived)  # no subscription hears of it
    source.wait(30)
    assert sleeps == [10], "ErrorExpiredSubscription ends the wait: the inbox must be looked at"
    assert [f.raw for f in source.fetch_new()] == [arrived]
    assert double.operations[-4:] == ["GetEvents", "Subscribe", "FindItem", "GetItem"], "a new subscription before the catch-up listing"
    assert len(double.subscriptions) == 1
    source.wait(10)
    assert sleeps == [10, 10], "the new subscription is used"
    assert source.notifications == "pull"


def test_a_server_that_loses_every_new_subscription_is_polled_by_sync_state(double, sleeps):
    source = watching(double, sleeps)
    assert list(source.fetch_new()) == []
    double.expire_subscriptions()  # before it has answered once, as behind a balancer without affinity
    source.wait(30)
    assert sleeps == [] and source.notifications == "sync"
    assert list(source.fetch_new()) == []
    assert double.operations[-2:] == ["SyncFolderItems", "FindItem"] and double.operations.count("Subscribe") == 1
    source.wait(10)
    assert sleeps == [10]


def test_a_failure_while_waiting_is_a_source_error_and_the_subscription_survives_it(double, sleeps):
    source = watching(double, sleeps)
    assert list(source.fetch_new()) == []
    double.drop(1)
    with pytest.raises(SourceError):
        source.wait(30)
    double.busy(1, back_off_ms=4000)
    with pytest.raises(SourceError, match="busy"):
        source.wait(30)
    assert sleeps[-1] == 4.0, "the server's back-off is waited out"
    arrived = message()
    double.deliver(arrived)
    source.wait(30)
    assert [f.raw for f in source.fetch_new()] == [arrived]
    assert double.operations.count("Subscribe") == 1, "the subscription lives on the server, not in the connection"


def test_interrupt_ends_a_wait_between_polls_at_once_and_every_later_one(double):
    source = ExchangeSource(url=double.url, username=double.username, password=double.password, mailbox=MAILBOX,
                            timeout=10, poll_interval=30)  # sleeps for real
    assert list(source.fetch_new()) == []
    threading.Timer(0.3, source.interrupt).start()  # a stopping daemon, from its supervisor's thread
    began = time.monotonic()
    source.wait(60)
    assert time.monotonic() - began < 1.5, "not the 30-second poll_interval"
    asked = double.operations.count("GetEvents")
    began = time.monotonic()
    source.wait(60)
    assert time.monotonic() - began < 0.1 and double.operations.count("GetEvents") == asked, "no wait, no question after a stop"
    source.close()


def test_interrupt_ends_the_quiet_a_busy_server_asked_for(double):
    source = ExchangeSource(url=double.url, username=double.username, password=double.password, mailbox=MAILBOX,
                            timeout=10, poll_interval=30, backoff_cap=120)
    assert list(source.fetch_new()) == []
    double.busy(1, back_off_ms=60_000)
    threading.Timer(0.3, source.interrupt).start()
    began = time.monotonic()
    with pytest.raises(SourceError, match="busy"):
        source.wait(60)
    assert time.monotonic() - began < 1.5, "not the 60 seconds ErrorServerBusy asked for"
    source.close()


def test_without_subscriptions_the_inbox_is_polled_by_sync_state(double, sleeps):
    double.refuse_subscriptions()
    source = watching(double, sleeps)
    double.deliver(message(text="1"))
    [first] = source.fetch_new()
    assert source.notifications == "sync"
    source.mark_processed(first.ref)
    source.wait(20)
    assert sleeps == [10, 10], "a Delete change (our move) is no reason to wake"
    double.deliver(message(text="2"))
    source.wait(20)
    assert sleeps == [10, 10]
    [second] = source.fetch_new()
    double.forget_sync_states()
    source.wait(20)
    assert sleeps == [10, 10], "an invalid sync state ends the wait"
    assert [f.raw for f in source.fetch_new()] == [second.raw]
    assert double.operations[-3:] == ["SyncFolderItems", "FindItem", "GetItem"], "a new sync state, then the listing"
    source.wait(10)
    assert sleeps == [10, 10, 10], "the new sync state is good: the wait is quiet again"
    assert double.operations.count("Subscribe") == 1, "asked once, not on every fetch"


def test_sync_notifications_can_be_chosen_and_page_through_a_large_inbox(double, sleeps):
    for n in range(150):  # more than one SyncFolderItems answer (exchangelib asks for 100 at a time)
        double.deliver(message(text=str(n)))
    source = watching(double, sleeps, notifications="sync")
    assert len(list(source.fetch_new())) == 150
    assert double.operations.count("SyncFolderItems") == 2 and "Subscribe" not in double.operations
    source.wait(10)
    assert sleeps == [10]


def test_an_app_signs_in_with_a_bearer_token_from_the_authority(monkeypatch, sleeps):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the double speaks plain HTTP on loopback
    server = ExchangeDouble(oauth=True).start()
    try:
        app = AppSignIn(TENANT, CLIENT_ID, SECRET, authority=server.authority)
        source = ExchangeSource(url=server.url, app=app, mailbox=MAILBOX, access="impersonation", timeout=10, sleep=sleeps.append)
        raw = message()
        server.deliver(raw)
        [fetched] = source.fetch_new()
        assert fetched.raw == raw
        [token] = server.tokens
        assert set(server.authorizations) == {f"Bearer {token}"}, "every EWS request carries the token"
        [delivery] = ExchangeSender(url=server.url, app=app, mailbox=MAILBOX, access="impersonation", timeout=10).send_batch(
            [Envelope("<a@x>", MAILBOX, ("a@b.test",), message(to="a@b.test"))]
        )
        assert delivery.ok and len(server.sent) == 1
        wrong = ExchangeSource(
            url=server.url, app=AppSignIn(TENANT, CLIENT_ID, "wrong", authority=server.authority), mailbox=MAILBOX,
            access="impersonation", timeout=10, backoff_cap=90, sleep=sleeps.append,
        )
        for _ in range(2):
            with pytest.raises(SourceError, match="invalid_client"):
                list(wrong.fetch_new())
        assert sleeps == [90], "a refused secret waits the whole cap"
    finally:
        server.stop()


def test_the_sender_sends_raw_mime_and_notes_the_commit_first(double):
    data = message(to="somchai@school001.example.ac.th", text="รับทราบครับ")
    notes: list[tuple[str, int]] = []
    deliveries = list(sender_for(double).send_batch(
        [Envelope("<ack-1@office.test>", MAILBOX, ("somchai@school001.example.ac.th", "hidden@school.test"), data)],
        committing=lambda mid: notes.append((mid, len(double.sent))),
    ))
    assert [(d.ok, d.message_id) for d in deliveries] == [(True, "<ack-1@office.test>")]
    assert notes == [("<ack-1@office.test>", 0)], "noted before the server had it"
    [sent] = double.sent
    assert (sent.disposition, sent.mime, sent.bcc) == ("SendOnly", data, ["hidden@school.test"])
    assert double.messages("Sent Items") == []


def test_save_copy_keeps_the_message_in_sent_items(double):
    data = message(to="somchai@school001.example.ac.th")
    [delivery] = sender_for(double, save_copy=True).send_batch([Envelope("<a@x>", MAILBOX, ("somchai@school001.example.ac.th",), data)])
    assert delivery.ok
    assert double.sent[0].disposition == "SendAndSaveCopy" and double.sent[0].saved_in == "Sent Items"
    assert double.messages("Sent Items") == [data]


def test_send_failures_are_classed_and_a_busy_server_stops_the_batch(double):
    envelopes = [Envelope(f"<m{n}@x>", MAILBOX, ("a@b.test",), message(to="a@b.test")) for n in range(3)]
    double.refuse_sends("ErrorInvalidRecipients")
    refused = list(sender_for(double).send_batch(envelopes))
    assert [(d.ok, d.permanent) for d in refused] == [(False, True)] * 3 and "ErrorInvalidRecipients" in refused[0].error
    double.refuse_sends(None)
    double.busy(1, back_off_ms=100)
    busy = list(sender_for(double).send_batch(envelopes))
    assert [(d.ok, d.permanent) for d in busy] == [(False, False)], "temporary, and the rest waits"
    double.drop(1)
    dropped = list(sender_for(double).send_batch(envelopes))
    assert [(d.ok, d.permanent) for d in dropped] == [(False, False)]
    assert [d.ok for d in sender_for(double).send_batch(envelopes)] == [True] * 3
    assert len(double.sent) == 3


def exchange_office(tmp_path, double, monkeypatch, source_extra: str = "", sender_extra: str = ""):
    for name, value in {**ENV, "SECRETARY_EXCHANGE_PASSWORD": double.password}.items():
        monkeypatch.setenv(name, value)
    config = write_config(
        tmp_path,
        f'kind = "exchange"\nurl = "{double.url}"\nusername = \'{double.username}\'\npoll_interval = 1\n{source_extra}',
        f'kind = "exchange"\nurl = "{double.url}"\nusername = \'{double.username}\'\n{sender_extra}',
    )
    return load(config)


def test_the_configuration_reads_exchange_tables_and_names_the_key(tmp_path, double, monkeypatch):
    settings = exchange_office(tmp_path, double, monkeypatch, sender_extra="save_copy = true")
    assert isinstance(settings.source, ExchangeSettings) and settings.source.mailbox == MAILBOX
    assert settings.source.verify_tls and settings.source.poll_interval == 1
    assert settings.sender.save_copy is True
    assert isinstance(make_source(settings), ExchangeSource) and isinstance(make_sender(settings), ExchangeSender)
    config = settings.path
    config.write_text(config.read_text().replace(f'url = "{double.url}"\nusername', 'url = "mail.office.go.th"\nusername', 1))
    with pytest.raises(ConfigError, match=r"\[source\] url: must be the EWS address"):
        load(config)
    config.write_text(config.read_text().replace('url = "mail.office.go.th"\n', "", 1))
    with pytest.raises(ConfigError, match=r"\[source\] url: missing"):
        load(config)
    monkeypatch.delenv("SECRETARY_EXCHANGE_PASSWORD")
    config.write_text(config.read_text().replace("[source]\n", f'[source]\nurl = "{double.url}"\n', 1))
    with pytest.raises(ConfigError, match=r"\[source\] password_env: the environment variable SECRETARY_EXCHANGE_PASSWORD"):
        load(config)


def test_the_configuration_reads_an_app_sign_in(tmp_path, double, monkeypatch):
    monkeypatch.setenv("SECRETARY_EXCHANGE_CLIENT_SECRET", SECRET)
    oauth = f'auth = "oauth"\ntenant = "{TENANT}"\nclient_id = "{CLIENT_ID}"\nnotifications = "sync"'
    settings = exchange_office(tmp_path, double, monkeypatch, source_extra=oauth, sender_extra=oauth)
    source = settings.source
    assert (source.auth, source.access, source.username, source.password) == ("oauth", "impersonation", "", "")
    assert (source.tenant, source.client_id, source.client_secret) == (TENANT, CLIENT_ID, SECRET)
    assert source.authority == "https://login.microsoftonline.com" and source.notifications == "sync"
    made = make_source(settings)
    assert made.notifications == "sync" and made._connection.credentials.token_url == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert made._connection.credentials.scope == ["https://127.0.0.1/.default"], "the server's own address, for hybrid modern auth"
    assert make_sender(settings)._connection.credentials.client_secret == SECRET
    config = settings.path
    text = config.read_text()
    for broken, problem in (
        (text.replace(oauth, oauth + '\naccess = "delegate"', 1), r"\[source\] access: must be one of 'impersonation'"),
        (text.replace(f'tenant = "{TENANT}"\n', "", 1), r"\[source\] tenant: missing"),
        (text.replace(oauth, oauth + '\nauthority = "http://login.example"', 1), r"\[source\] authority: must be an https address"),
        (text.replace('notifications = "sync"', 'notifications = "push"', 1), r"\[source\] notifications: must be one of 'pull', 'sync'"),
        (text.replace('auth = "oauth"', 'auth = "kerberos"', 1), r"\[source\] auth: must be one of 'password', 'oauth'"),
    ):
        config.write_text(broken)
        with pytest.raises(ConfigError, match=problem):
            load(config)
    config.write_text(text)
    monkeypatch.delenv("SECRETARY_EXCHANGE_CLIENT_SECRET")
    with pytest.raises(ConfigError, match=r"\[source\] client_secret_env: the environment variable SECRETARY_EXCHANGE_CLIENT_SECRET"):
        load(config)


def answers(double) -> list:
    """What the daemon sent to people who wrote, not the clerk's daily digest (due whenever the test runs after its hour)."""
    return [sent for sent in double.sent if email.message_from_bytes(sent.mime)["To"] != "clerk@office.test"]


def run_until_empty(settings, double, rounds: int = 6) -> list:
    handled = []
    for _ in range(rounds):
        daemon = Daemon(build(settings), make_source(settings), make_sender(settings))
        daemon.run(once=True)
        handled += daemon.handled
        if not double.messages() and daemon.service.outbox.pending() == []:
            break
    return handled


def test_the_daemon_files_a_reply_and_acknowledges_it_through_exchange(tmp_path, double, monkeypatch):
    settings = exchange_office(tmp_path, double, monkeypatch)
    raw = message(text="ยืนยันเข้าร่วมประชุมครับ\n\nนายสมชาย")
    double.deliver(raw)
    [handled] = run_until_empty(settings, double)
    assert (handled.status, handled.kind) == ("processed", "attendance")
    assert double.messages() == [] and double.messages("Processed") == [raw]
    [sent] = answers(double)
    ack = email.message_from_bytes(sent.mime, policy=email.policy.default)
    assert ack["To"] == "somchai@school001.example.ac.th"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == email.message_from_bytes(raw)["Message-ID"]
    assert sent.disposition == "SendOnly"


def test_the_daemon_over_a_throttling_and_dropping_server_handles_each_message_once(tmp_path, double, monkeypatch):
    settings = exchange_office(tmp_path, double, monkeypatch)
    raws = [message(text=f"ยืนยันเข้าร่วมประชุมครับ ({n})", message_id=f"<flaky-{n}@school001.example.ac.th>") for n in range(4)]
    for raw in raws:
        double.deliver(raw)
    double.busy(1, back_off_ms=200)
    double.drop(1)
    bad = message(message_id=None)
    double.deliver(bad)
    handled = run_until_empty(settings, double)
    assert double.messages() == []
    assert sorted(double.messages("Processed")) == sorted(raws)
    assert double.messages("Quarantine") == [bad]
    answered = [email.message_from_bytes(s.mime)["In-Reply-To"] for s in answers(double)]
    assert sorted(answered) == sorted(email.message_from_bytes(r)["Message-ID"] for r in raws), "one acknowledgement each"
    assert len([h for h in handled if not h.duplicate]) == len(raws) + 1


def test_the_running_daemon_answers_within_seconds_by_its_subscription_not_its_tick(tmp_path, double, monkeypatch):
    settings = dataclasses.replace(exchange_office(tmp_path, double, monkeypatch), tick_seconds=60)
    daemon = Daemon(build(settings), make_source(settings), make_sender(settings))
    latency: list[float] = []

    def an_answer_arrives() -> None:
        while "GetEvents" not in double.operations:  # the daemon has handled the (empty) inbox and is waiting
            time.sleep(0.05)
        double.deliver(message(text="ยืนยันเข้าร่วมประชุมครับ"))
        arrived = time.monotonic()
        while not answers(double) and time.monotonic() - arrived < 30:
            time.sleep(0.05)
        latency.append(time.monotonic() - arrived)
        os.kill(os.getpid(), signal.SIGTERM)  # as systemd stops the service

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    office = threading.Thread(target=an_answer_arrives, daemon=True)
    office.start()
    try:
        daemon.run()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    office.join(timeout=10)
    assert len(answers(double)) == 1 and latency[0] < 10, "noticed by GetEvents, not after the 60-second tick"
    assert double.messages() == [] and len(double.messages("Processed")) == 1
    assert double.operations[-1] == "Unsubscribe", "a clean stop lets go of the subscription"

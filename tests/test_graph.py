"""The Microsoft Graph source and sender against a local double of Graph and the identity platform.

MSAL and requests run unchanged over HTTPS to `graph_double`; only the
addresses differ. Backoff sleeps are recorded instead of slept, except where
a test checks that a Retry-After was really waited for.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from graph_double import CLIENT_ID, SECRET, TENANT, GraphDouble
from helpers import ENV, MAILBOX, message, write_config
from service.config import ConfigError, GraphSettings, load
from service.daemon import Daemon, build, make_sender, make_source
from service.mail import graph as graph_module
from service.mail.graph import GraphSender, GraphSource
from service.mail.sender import Envelope
from service.mail.source import SourceError


@pytest.fixture
def double():
    server = GraphDouble(MAILBOX).start()
    yield server
    server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def settings(double: GraphDouble, **extra) -> dict:
    return {
        "tenant": TENANT, "client_id": CLIENT_ID, "client_secret": SECRET, "mailbox": MAILBOX,
        "authority": double.authority, "graph_url": double.graph_url, "timeout": 5, "verify": str(double.ca_file), **extra,
    }


@pytest.fixture
def source(double, sleeps):
    made = GraphSource(**settings(double), sleep=sleeps.append)
    yield made
    made.close()


@pytest.fixture
def sender(double):
    made = GraphSender(**settings(double))
    yield made
    made.close()


AT = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


def raw(n: int) -> bytes:
    """A message with CRLF and bare LF line ends and 8-bit Thai text: only a byte-exact path keeps it."""
    return (
        f"From: school{n}@school.test\r\nTo: {MAILBOX}\r\nSubject: {n}\r\nMessage-ID: <m{n}@school.test>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nยืนยันเข้าร่วมประชุม {n}\n\r\n"
    ).encode()


def test_messages_come_oldest_first_byte_exact_over_several_pages(double, source, monkeypatch):
    monkeypatch.setattr(graph_module, "PAGE_SIZE", 3)
    order = [5, 0, 6, 2, 1, 4, 3]  # delivered in this order, received at these minutes
    for n in order:
        double.deliver(raw(n), AT + timedelta(minutes=n))
    fetched = list(source.fetch_new())
    assert [f.raw for f in fetched] == [raw(n) for n in range(7)]
    assert len(double.requests("GET", r"/messages/delta$")) == 3, "followed @odata.nextLink to the end"
    assert len({f.ref for f in fetched}) == 7
    assert len(double.mailbox.in_folder("Inbox")) == 7, "fetching moves nothing"


def test_moves_file_messages_creating_the_folders_once(double, source, sleeps):
    for n in range(3):
        double.deliver(raw(n), AT + timedelta(minutes=n))
    first, second, third = source.fetch_new()
    assert double.mailbox.folder_named("Processed") is None
    source.mark_processed(first.ref)
    source.mark_quarantined(second.ref)
    source.mark_processed(first.ref)  # moved already (a crash before the store knew): ignored
    assert [m.raw for m in double.mailbox.in_folder("Processed")] == [raw(0)]
    assert [m.raw for m in double.mailbox.in_folder("Quarantine")] == [raw(1)]
    assert [f.raw for f in source.fetch_new()] == [raw(2)]
    # A new process finds the folders and does not make them again.
    again = GraphSource(**settings(double), sleep=sleeps.append)
    [left] = again.fetch_new()
    again.mark_processed(left.ref)
    again.close()
    assert len(double.requests("POST", r"/mailFolders$")) == 2
    assert [m.raw for m in double.mailbox.in_folder("Processed")] == [raw(0), raw(2)]
    assert double.mailbox.in_folder("Inbox") == []
    assert sleeps == []


def test_a_folder_someone_made_meanwhile_is_used(double, source):
    double.deliver(raw(0))
    [fetched] = source.fetch_new()
    double.mailbox.folders["made-by-a-person"] = "Processed"
    source.mark_processed(fetched.ref)
    assert [m.raw for m in double.mailbox.in_folder("Processed")] == [raw(0)]
    assert double.requests("POST", r"/mailFolders$") == []


def test_a_429_is_retried_after_the_time_it_asks_for(double, sleeps):
    real = GraphSource(**settings(double))  # sleeps for real
    double.deliver(raw(0))
    double.fail("GET", r"/\$value$", "429", retry_after=1)
    [fetched] = real.fetch_new()
    real.close()
    assert fetched.raw == raw(0)
    throttled, retried = double.requests("GET", r"/\$value$")
    assert (throttled.status, retried.status) == (429, 200)
    assert retried.at - throttled.at >= 1.0


def test_a_long_retry_after_becomes_a_source_error_and_the_next_call_waits(double, source, sleeps):
    double.deliver(raw(0))
    double.fail("GET", r"/messages/delta$", "429", retry_after=3600)
    with pytest.raises(SourceError, match="429"):
        list(source.fetch_new())
    assert sleeps == []
    [fetched] = source.fetch_new()
    assert fetched.raw == raw(0)
    assert len(sleeps) == 1 and sleeps[0] >= source.backoff_cap / 2


def test_a_dropped_connection_is_a_source_error_then_nothing_is_lost(double, source, sleeps):
    for n in range(3):
        double.deliver(raw(n), AT + timedelta(minutes=n))
    double.fail("GET", r"/messages/delta$", "drop", count=2)
    for _ in range(2):
        with pytest.raises(SourceError):
            list(source.fetch_new())
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0, "the second try waited"
    # Dropped halfway through: what was yielded is handled, the rest comes next time.
    double.fail("GET", r"/\$value$", "drop", count=1)
    handled = []
    with pytest.raises(SourceError):
        for fetched in source.fetch_new():
            handled.append(fetched.raw)
    assert handled == []
    assert 1.0 <= sleeps[1] <= 2.0, "after two failures in a row, twice as long"
    for attempt in range(3):
        try:
            for fetched in source.fetch_new():
                handled.append(fetched.raw)
                source.mark_processed(fetched.ref)
                if len(handled) == 1:
                    double.fail("POST", r"/move$", "drop")
        except SourceError:
            continue
        break
    assert handled == [raw(0), raw(1), raw(1), raw(2)], "the message whose move was lost comes again"
    assert [m.raw for m in double.mailbox.in_folder("Processed")] == [raw(0), raw(1), raw(2)]
    assert double.mailbox.in_folder("Inbox") == []
    assert len(sleeps) == 4 and all(0.5 <= s <= 1.0 for s in sleeps[2:]), "a success ends the doubling"


def test_a_revoked_token_is_replaced_once(double, source):
    double.deliver(raw(0))
    assert [f.raw for f in source.fetch_new()] == [raw(0)]
    assert double.tokens_issued == 1, "MSAL keeps its token"
    double.revoke_tokens()
    [fetched] = source.fetch_new()
    source.mark_processed(fetched.ref)
    assert double.tokens_issued == 2
    assert len([s for s in double.seen if s.status == 401]) == 1
    assert [m.raw for m in double.mailbox.in_folder("Processed")] == [raw(0)]


def test_a_wrong_secret_is_a_source_error_that_waits_the_whole_cap(double, sleeps):
    wrong = GraphSource(**settings(double, client_secret="wrong"), sleep=sleeps.append)
    with pytest.raises(SourceError, match="invalid_client"):
        list(wrong.fetch_new())
    with pytest.raises(SourceError):
        list(wrong.fetch_new())
    assert sleeps and sleeps[0] >= wrong.backoff_cap / 2
    wrong.close()


def test_a_quiet_inbox_costs_one_delta_request_and_a_restart_resumes_from_the_delta_link(double, sleeps, tmp_path):
    state = tmp_path / "delta.json"
    first = GraphSource(**settings(double), state=state, sleep=sleeps.append)
    for n in range(3):
        double.deliver(raw(n), AT + timedelta(minutes=n))
    a, b, c = first.fetch_new()
    first.mark_processed(a.ref)
    # The process dies here: b and c were fetched but never moved.
    first.close()
    double.deliver(raw(3), AT + timedelta(minutes=3))
    again = GraphSource(**settings(double), state=state, sleep=sleeps.append)
    assert [f.raw for f in again.fetch_new()] == [raw(1), raw(2), raw(3)], "what was pending, then what arrived"
    rounds = double.requests("GET", r"/messages/delta$")
    assert len(rounds) == 2 and "$deltatoken=" in rounds[1].query, "resumed from the saved delta link, no full listing"
    for fetched in again.fetch_new():
        again.mark_processed(fetched.ref)
    assert list(again.fetch_new()) == []
    assert len(double.requests("GET", r"/messages/delta$")) == 4, "one request a round on a quiet inbox"
    assert len(double.requests("GET", r"/\$value$")) == 3 + 3 + 3, "nothing moved is fetched again"
    again.close()


def test_a_forgotten_delta_link_starts_afresh_without_refetching_what_was_moved(double, source):
    for n in range(3):
        double.deliver(raw(n), AT + timedelta(minutes=n))
    first, second, third = source.fetch_new()
    source.mark_processed(first.ref)
    source.mark_quarantined(second.ref)
    double.forget_delta_tokens()
    double.deliver(raw(3), AT + timedelta(minutes=3))
    assert [f.raw for f in source.fetch_new()] == [raw(2), raw(3)]
    statuses = [s.status for s in double.requests("GET", r"/messages/delta$")]
    assert statuses == [200, 410, 200], "410 Gone, then a round without a token"
    assert len(double.requests("GET", r"/\$value$")) == 3 + 2


def test_a_delta_round_cut_short_keeps_the_old_link(double, source, monkeypatch):
    monkeypatch.setattr(graph_module, "PAGE_SIZE", 2)
    for n in range(5):
        double.deliver(raw(n), AT + timedelta(minutes=n))
    followed = r"\('inbox'\)/messages/delta$"  # the links Graph hands out, not the first request of a first round
    double.fail("GET", followed, "drop")
    with pytest.raises(SourceError):
        list(source.fetch_new())
    assert [f.raw for f in source.fetch_new()] == [raw(n) for n in range(5)], "the whole round again, oldest first"
    for n in range(5, 7):
        double.deliver(raw(n), AT + timedelta(minutes=n))
    double.fail("GET", followed, "drop")  # the saved delta link itself
    with pytest.raises(SourceError):
        list(source.fetch_new())
    assert [f.raw for f in source.fetch_new()] == [raw(n) for n in range(7)], "pending and new, nothing skipped"


def test_a_message_someone_removes_from_the_inbox_is_not_fetched(double, source):
    for n in range(2):
        double.deliver(raw(n), AT + timedelta(minutes=n))
    assert [f.raw for f in source.fetch_new()] == [raw(0), raw(1)]
    gone = next(m for m in double.mailbox.messages.values() if m.raw == raw(0))
    gone.folder = double.mailbox.folder_named("Deleted Items")
    assert [f.raw for f in source.fetch_new()] == [raw(1)]
    last = double.requests("GET", r"/messages/delta$")[-1]
    assert "$deltatoken=" in last.query
    assert len(double.requests("GET", r"/\$value$")) == 3


def test_wait_polls_every_poll_interval(double, sleeps):
    polling = GraphSource(**settings(double, poll_interval=7), sleep=sleeps.append)
    polling.wait(60)
    polling.wait(3)
    polling.wait(0)
    assert sleeps == [7, 3]


def test_interrupt_ends_a_wait_between_polls_at_once_and_every_later_one(double):
    polling = GraphSource(**settings(double, poll_interval=30))  # sleeps for real
    threading.Timer(0.3, polling.interrupt).start()  # a stopping daemon, from its supervisor's thread
    began = time.monotonic()
    polling.wait(60)
    assert time.monotonic() - began < 1.5, "not the 30-second poll_interval"
    began = time.monotonic()
    polling.wait(60)
    assert time.monotonic() - began < 0.1
    polling.close()


def test_interrupt_ends_a_retry_after_wait(double):
    throttled = GraphSource(**settings(double, poll_interval=30))
    double.deliver(raw(0))
    double.fail("GET", r"/\$value$", "429", retry_after=60)
    threading.Timer(0.3, throttled.interrupt).start()
    began = time.monotonic()
    [fetched] = throttled.fetch_new()
    assert time.monotonic() - began < 1.5, "not the 60 seconds Retry-After asked for"
    assert fetched.raw == raw(0), "the request is made again, as after a Retry-After waited out"
    throttled.close()


def envelope(n: int, to: str = "somchai@school.test", data: bytes | None = None) -> Envelope:
    data = data or f"From: {MAILBOX}\r\nTo: {to}\r\nSubject: ตอบรับ {n}\r\nMessage-ID: <ack{n}@office.test>\r\n\r\nรับทราบ\r\n".encode()
    return Envelope(f"<ack{n}@office.test>", MAILBOX, (to,), data)


def test_send_mail_posts_the_mime_as_base64_and_commits_just_before(double, sender):
    notes = []
    committing = lambda mid: notes.append((mid, len(double.sent)))
    bcc = envelope(1, data=f"From: {MAILBOX}\r\nTo: someone@else.test\r\nSubject: x\r\n\r\nbody\r\n".encode())
    deliveries = list(sender.send_batch([envelope(0), bcc], committing=committing))
    assert [d.ok for d in deliveries] == [True, True]
    assert double.sent[0] == envelope(0).data, "byte for byte"
    assert double.sent[1] == b"Bcc: somchai@school.test\r\n" + bcc.data, "an envelope recipient the headers lack goes as Bcc"
    assert notes == [("<ack0@office.test>", 0), ("<ack1@office.test>", 1)]


def test_send_failures_are_classed_permanent_or_temporary(double, sender):
    double.fail("POST", r"/sendMail$", "400")
    double.fail("POST", r"/sendMail$", "429", retry_after=3600)
    first = list(sender.send_batch([envelope(0), envelope(1), envelope(2)]))
    assert [(d.ok, d.permanent) for d in first] == [(False, True), (False, False)], "a 4xx is the message's; a long 429 stops the batch"
    double.fail("POST", r"/sendMail$", "drop")
    [dropped] = sender.send_batch([envelope(2), envelope(3)])
    assert (dropped.ok, dropped.permanent) == (False, False)
    double.fail("POST", r"/sendMail$", "500")
    [unwell] = sender.send_batch([envelope(2)])
    assert (unwell.ok, unwell.permanent) == (False, False)
    double.fail("POST", r"/sendMail$", "503", retry_after=1)
    double.revoke_tokens()
    assert [d.ok for d in sender.send_batch([envelope(2), envelope(3)])] == [True, True]
    assert double.sent == [envelope(2).data, envelope(3).data]


# The configuration and the daemon.

GRAPH = 'kind = "graph"\ntenant = "{tenant}"\nclient_id = "{client}"\nauthority = "{authority}"\ngraph_url = "{graph}"\npoll_interval = 1'


def graph_config(tmp_path, double: GraphDouble) -> str:
    return GRAPH.format(tenant=TENANT, client=CLIENT_ID, authority=double.authority, graph=double.graph_url)


def test_the_configuration_reads_and_names_its_keys(tmp_path, double):
    environ = {**ENV, "SECRETARY_GRAPH_CLIENT_SECRET": SECRET}
    table = graph_config(tmp_path, double)
    loaded = load(write_config(tmp_path, table, table), environ)
    assert loaded.source == loaded.sender == GraphSettings(
        tenant=TENANT, client_id=CLIENT_ID, client_secret=SECRET, mailbox=MAILBOX,
        authority=double.authority, graph_url=double.graph_url, poll_interval=1.0,
        state=tmp_path / "store" / "mailbox" / "graph-delta.json",
    )
    with pytest.raises(ConfigError, match=r"\[source\] client_secret_env: the environment variable SECRETARY_GRAPH_CLIENT_SECRET"):
        load(write_config(tmp_path, table, table), ENV)
    with pytest.raises(ConfigError, match=r"\[source\] tenant: missing"):
        load(write_config(tmp_path, 'kind = "graph"\nclient_id = "x"', table), environ)
    with pytest.raises(ConfigError, match=r"\[sender\] authority: must be an https address"):
        load(write_config(tmp_path, table, table.replace("https://", "http://", 1)), environ)


def test_the_daemon_files_and_acknowledges_over_graph_losing_nothing(tmp_path, double, monkeypatch):
    for name, value in {**ENV, "SECRETARY_GRAPH_CLIENT_SECRET": SECRET, "REQUESTS_CA_BUNDLE": str(double.ca_file)}.items():
        monkeypatch.setenv(name, value)
    table = graph_config(tmp_path, double)
    office = load(write_config(tmp_path, table, table))
    senders = [f"school{n}@school.test" for n in range(4)]
    raws = [message(sender=address, message_id=f"<in{n}@school.test>", text=f"ยืนยันเข้าร่วมประชุมครับ ({n})") for n, address in enumerate(senders)]
    raws.insert(0, message(message_id="<in-known@school.test>"))  # from someone in the directory
    for n, data in enumerate(raws):
        double.deliver(data, AT + timedelta(minutes=n))
    double.fail("GET", r"/\$value$", "drop", count=1)  # on the first message
    double.fail("POST", r"/sendMail$", "429", retry_after=1)

    def run_once():
        daemon = Daemon(build(office, exclusive=False), make_source(office), make_sender(office))
        daemon.run(once=True)
        return daemon.handled

    handled = []
    for _ in range(4):
        handled += run_once()
        if not double.mailbox.in_folder("Inbox"):
            break
    assert double.mailbox.in_folder("Inbox") == []
    processed = [m.raw for m in double.mailbox.in_folder("Processed")] + [m.raw for m in double.mailbox.in_folder("Quarantine")]
    assert sorted(processed) == sorted(raws), "every message filed once"
    assert [m.raw for m in double.mailbox.in_folder("Processed")][0] == raws[0]
    acks = [email.message_from_bytes(data, policy=email.policy.default) for data in double.sent]
    known = [a for a in acks if a["In-Reply-To"] == "<in-known@school.test>"]
    assert len(known) == 1
    assert known[0]["To"] == "somchai@school001.example.ac.th"
    assert known[0]["Auto-Submitted"] == "auto-replied"
    assert "เข้าร่วมประชุม" in known[0].get_body(("plain",)).get_content()
    assert len({a["In-Reply-To"] for a in acks}) == len(acks), "no acknowledgement twice"
    assert any(s.status == 429 for s in double.requests("POST", r"/sendMail$"))
    # The same message again (a client resending): filed, not answered again.
    double.deliver(raws[0], AT + timedelta(hours=1))
    [again] = run_once()
    assert again.duplicate
    assert len(double.sent) == len(acks)
    assert double.mailbox.in_folder("Inbox") == []

"""The SMTP sender against a real Postfix (delivering into Dovecot) and smtp-sink."""

from __future__ import annotations

import dataclasses
import time
import uuid
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, default
from typing import Callable, Iterator

import pytest

from conftest import MailServers
from servers import SmtpSink, free_port, unique_address
from service.mail.sender import Delivery, Envelope
from service.mail.smtp import SmtpSender

CLERK = "clerk@office.test"
MakeSink = Callable[..., SmtpSink]


def envelope(*recipients: str, sender: str = CLERK, subject: str = "ขอเชิญประชุมผู้บริหารสถานศึกษา") -> Envelope:
    """A message as the composer builds it, with a unique Message-ID."""
    message_id = f"<{uuid.uuid4().hex}@office.test>"
    mail = EmailMessage(policy=SMTP)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    mail.set_content("เรียน ผู้อำนวยการโรงเรียน\nขอเชิญประชุมในวันที่ 1 ธันวาคม 2569\n")
    return Envelope(message_id, sender, recipients, mail.as_bytes())


def on_sink(sink: SmtpSink, **settings: object) -> SmtpSender:
    return SmtpSender(sink.host, sink.port, security="none", timeout=10, **settings)  # type: ignore[arg-type]


def failed(delivery: Delivery, permanent: bool) -> bool:
    return not delivery.ok and delivery.permanent == permanent and bool(delivery.error)


def sessions(sink: SmtpSink) -> int:
    """SMTP sessions smtp-sink (-v) has seen end, the harness's start-up probe included."""
    return sink.log_text().count(": disconnect")


def wait_for_sessions(sink: SmtpSink, count: int) -> None:
    deadline = time.monotonic() + 5
    while sessions(sink) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_batch_goes_over_starttls_through_postfix_into_dovecot(mail_servers: MailServers) -> None:
    dovecot, postfix = mail_servers
    director, teacher = unique_address("director", "school.test"), unique_address("teacher", "school.test")
    for user in (director, teacher):
        dovecot.add_user(user)
    batch = [envelope(director), envelope(director, teacher), envelope(teacher)]
    sender = SmtpSender(postfix.host, postfix.smtp_port, security="starttls", verify_tls=False, timeout=10)

    deliveries = list(sender.send_batch(batch))

    assert deliveries == [Delivery(e.message_id, ok=True) for e in batch]
    postfix.wait_for_queue_empty()
    for user, sent in ((director, batch[:2]), (teacher, batch[1:])):
        received = [message_from_bytes(raw, policy=default) for raw in dovecot.messages(user)]
        # Postfix delivers in parallel, so the order in the mailbox is not the sending order.
        assert sorted(m["Message-ID"] for m in received) == sorted(e.message_id for e in sent)
        assert all(isinstance(m, EmailMessage) and "ผู้อำนวยการ" in m.get_content() for m in received)


def test_one_connection_carries_the_batch_and_each_delivery_comes_before_the_next_envelope(make_smtp_sink: MakeSink) -> None:
    sink = make_smtp_sink("-v")
    wait_for_sessions(sink, 1)
    batch = [envelope(f"person{n}@school.test") for n in range(5)]
    events: list[str] = []

    def pulled() -> Iterator[Envelope]:
        for item in batch:
            events.append(f"pull {item.message_id}")
            yield item

    for delivery in on_sink(sink).send_batch(pulled()):
        assert delivery.ok
        events.append(f"done {delivery.message_id}")

    assert events == [f"{step} {e.message_id}" for e in batch for step in ("pull", "done")]
    wait_for_sessions(sink, 2)
    log = sink.log_text()
    assert sessions(sink) == 2 and log.count(": connect (") == 2
    assert log.count(": mail FROM:") == 5 and log.count(": quit") == 1


def test_an_empty_batch_opens_no_connection(make_smtp_sink: MakeSink) -> None:
    sink = make_smtp_sink("-v")
    wait_for_sessions(sink, 1)
    assert list(on_sink(sink).send_batch([])) == []
    assert sink.log_text().count(": connect (") == 1


def test_implicit_tls_with_a_trusted_certificate(mail_servers: MailServers, monkeypatch: pytest.MonkeyPatch) -> None:
    dovecot, postfix = mail_servers
    user = unique_address()
    dovecot.add_user(user)
    monkeypatch.setenv("SSL_CERT_FILE", str(postfix.cert_file))  # read when the sender makes its TLS context
    sender = SmtpSender(postfix.host, postfix.smtps_port, security="tls", timeout=10)

    (delivery,) = sender.send_batch([envelope(user)])

    assert delivery.ok, delivery.error


def test_an_unverifiable_certificate_is_a_temporary_failure_that_stops_the_batch(mail_servers: MailServers) -> None:
    postfix = mail_servers.postfix
    sender = SmtpSender(postfix.host, postfix.smtp_port, security="starttls", timeout=10)

    deliveries = list(sender.send_batch([envelope(unique_address()), envelope(unique_address())]))

    assert len(deliveries) == 1 and failed(deliveries[0], permanent=False)
    assert "CERTIFICATE_VERIFY_FAILED" in deliveries[0].error


def test_login_with_the_mailbox_password(mail_servers: MailServers) -> None:
    dovecot, postfix = mail_servers
    clerk = unique_address("clerk")
    dovecot.add_user(clerk, "clerk-password")

    def send(password: str) -> list[Delivery]:
        sender = SmtpSender(
            postfix.host, postfix.smtp_port, security="starttls", username=clerk, password=password, verify_tls=False, timeout=10
        )
        return list(sender.send_batch([envelope(clerk, sender=clerk), envelope(clerk, sender=clerk)]))

    assert [d.ok for d in send("clerk-password")] == [True, True]
    refused = send("wrong")
    assert len(refused) == 1 and failed(refused[0], permanent=False) and "535" in refused[0].error


def test_a_refused_domain_is_permanent_and_the_batch_goes_on(mail_servers: MailServers) -> None:
    dovecot, postfix = mail_servers
    user = unique_address()
    dovecot.add_user(user)
    sender = SmtpSender(postfix.host, postfix.smtp_port, security="none", timeout=10)

    outside, inside = envelope("someone@elsewhere.test"), envelope(user)
    refused, sent = sender.send_batch([outside, inside])

    assert failed(refused, permanent=True) and "554" in refused.error
    assert sent == Delivery(inside.message_id, ok=True)


def test_a_partly_refused_message_is_sent_and_names_who_was_refused(mail_servers: MailServers) -> None:
    dovecot, postfix = mail_servers
    user = unique_address()
    dovecot.add_user(user)
    sender = SmtpSender(postfix.host, postfix.smtp_port, security="none", timeout=10)

    (delivery,) = sender.send_batch([envelope(user, "someone@elsewhere.test")])

    assert delivery.ok and "someone@elsewhere.test" in delivery.error and "554" in delivery.error
    postfix.wait_for_queue_empty()
    assert len(dovecot.messages(user)) == 1


@pytest.mark.parametrize(
    ("options", "permanent"),
    [(("-f", "RCPT"), True), (("-f", "MAIL"), True), (("-f", "."), True), (("-r", "RCPT"), False), (("-r", "."), False)],
)
def test_refusals_by_reply_code_and_the_batch_goes_on(
    make_smtp_sink: MakeSink, options: tuple[str, ...], permanent: bool
) -> None:
    sink = make_smtp_sink(*options)
    deliveries = list(on_sink(sink).send_batch([envelope("a@school.test"), envelope("b@school.test")]))
    assert len(deliveries) == 2 and all(failed(d, permanent) for d in deliveries)


def test_a_server_that_is_down_gives_one_temporary_failure() -> None:
    sender = SmtpSender("127.0.0.1", free_port(), security="starttls", timeout=5)
    deliveries = list(sender.send_batch([envelope("a@school.test"), envelope("b@school.test")]))
    assert len(deliveries) == 1 and failed(deliveries[0], permanent=False)
    assert "Connection refused" in deliveries[0].error or "ConnectionRefusedError" in deliveries[0].error


def test_a_connection_dropped_during_a_message_stops_the_batch(make_smtp_sink: MakeSink) -> None:
    sink = make_smtp_sink("-q", "DATA")
    deliveries = list(on_sink(sink).send_batch([envelope("a@school.test"), envelope("b@school.test")]))
    assert len(deliveries) == 1 and failed(deliveries[0], permanent=False)


def test_an_idle_connection_closed_by_the_server_is_replaced_once(make_smtp_sink: MakeSink) -> None:
    sink = make_smtp_sink("-v", "-t", "1")  # smtp-sink drops a client silent for a second
    wait_for_sessions(sink, 1)

    def slowly() -> Iterator[Envelope]:
        yield envelope("a@school.test")
        time.sleep(1.5)
        yield envelope("b@school.test")

    deliveries = list(on_sink(sink).send_batch(slowly()))

    assert [d.ok for d in deliveries] == [True, True]
    assert sink.log_text().count(": connect (") == 3


def test_addresses_that_need_smtputf8(mail_servers: MailServers, make_smtp_sink: MakeSink) -> None:
    postfix = mail_servers.postfix
    thai = envelope("ผู้อำนวยการ@school.test")
    postfix_sender = SmtpSender(postfix.host, postfix.smtp_port, security="none", timeout=10)
    (accepted,) = postfix_sender.send_batch([thai])
    assert accepted.ok, accepted.error

    (refused,) = on_sink(make_smtp_sink()).send_batch([thai])  # smtp-sink does not offer SMTPUTF8
    assert failed(refused, permanent=True) and "SMTPUTF8" in refused.error


def test_a_line_break_in_an_address_is_never_sent(make_smtp_sink: MakeSink) -> None:
    sink = make_smtp_sink("-v")
    bad = dataclasses.replace(envelope("a@school.test"), recipients=("a@school.test>\r\nRCPT TO:<b@school.test",))
    good = envelope("c@school.test")
    refused, sent = on_sink(sink).send_batch([bad, good])
    assert failed(refused, permanent=True) and sent.ok
    wait_for_sessions(sink, 2)
    assert "b@school.test" not in sink.log_text()

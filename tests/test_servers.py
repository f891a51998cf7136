"""The test harness's own tests: the private mail servers do what other tests rely on."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
import uuid

import pytest

from conftest import MailServers
from servers import Dovecot, SmtpSink, unique_address


def raw_message(to: str, subject: str = "ขอเชิญประชุม") -> tuple[str, bytes]:
    """A small message with a unique Message-ID and a raw UTF-8 subject."""
    message_id = f"<{uuid.uuid4().hex}@office.test>"
    raw = f"From: clerk@office.test\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n\r\nสวัสดีครับ\r\n"
    return message_id, raw.encode()


def test_mail_sent_through_postfix_arrives_in_the_dovecot_inbox(mail_servers: MailServers) -> None:
    dovecot, postfix = mail_servers
    recipient = unique_address("director", "school.test")
    dovecot.add_user(recipient)
    message_id, raw = raw_message(recipient)

    with smtplib.SMTP(postfix.host, postfix.smtp_port, timeout=10) as smtp:
        assert smtp.sendmail("clerk@office.test", [recipient], raw) == {}
    postfix.wait_for_queue_empty()

    (delivered,) = dovecot.messages(recipient)
    assert message_id.encode() in delivered
    assert "สวัสดีครับ".encode() in delivered


def test_postfix_offers_tls_with_its_certificate_and_refuses_other_domains(mail_servers: MailServers) -> None:
    postfix = mail_servers.postfix
    trusting = ssl.create_default_context(cafile=str(postfix.cert_file))
    with smtplib.SMTP_SSL(postfix.host, postfix.smtps_port, context=trusting, timeout=10) as smtp:
        assert smtp.noop()[0] == 250
    with smtplib.SMTP(postfix.host, postfix.smtp_port, timeout=10) as smtp:
        smtp.starttls(context=trusting)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail("clerk@office.test", ["someone@elsewhere.test"], b"Subject: x\r\n\r\nx\r\n")
    assert refused.value.recipients["someone@elsewhere.test"][0] == 554


def test_append_then_read_back_oldest_first(dovecot: Dovecot) -> None:
    user = unique_address()
    dovecot.add_user(user, "another-secret")
    first_id, first = raw_message(user, "first")
    second_id, second = raw_message(user, "second")

    dovecot.append(user, first, "Processed")
    dovecot.append(user, second, "Processed")

    processed = dovecot.messages(user, "Processed")
    assert len(processed) == 2 and first_id.encode() in processed[0] and second_id.encode() in processed[1]
    assert dovecot.messages(user) == []
    assert dovecot.messages(user, "No such folder") == []


def test_restart_breaks_open_sessions_and_a_new_login_works(dovecot: Dovecot) -> None:
    user = unique_address()
    dovecot.add_user(user)
    message_id, raw = raw_message(user)
    dovecot.append(user, raw)
    session = dovecot.client(user)
    session.select_folder("INBOX")

    dovecot.restart()

    with pytest.raises((imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError)):
        session.noop()
    fresh = dovecot.client(user)
    try:
        assert fresh.select_folder("INBOX")[b"EXISTS"] == 1
    finally:
        fresh.logout()
    assert message_id.encode() in dovecot.messages(user)[0]


def test_unknown_user_cannot_log_in(dovecot: Dovecot) -> None:
    with pytest.raises(imaplib.IMAP4.error):
        dovecot.client(unique_address())


def test_smtp_sink_accepts_a_message(smtp_sink: SmtpSink) -> None:
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as smtp:
        assert smtp.sendmail("a@office.test", ["b@school.test"], raw_message("b@school.test")[1]) == {}

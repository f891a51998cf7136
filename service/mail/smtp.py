"""The SMTP sender: hands the outbox's envelopes to a mail server.

One connection carries a whole batch, because a connection costs a TCP and
TLS handshake and a login, and office relays limit how often a client may
make one. Each envelope's `Delivery` is yielded the moment the server has
answered for it, so the outbox records it before the next one goes out.

How a failure is classed decides whether the outbox tries again:
- the server refuses (5xx: every recipient, the sender or the data), or the
  message cannot be put into SMTP at all: permanent, never retried;
- the server defers (4xx): temporary; the connection stays usable, so the
  batch goes on;
- the connection cannot be made, secured or logged into, or it drops:
  temporary, and the batch stops there; what was not tried waits for the
  next batch. A connection that already carried mail and is found closed
  (servers drop idle clients) is replaced once before giving up.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from typing import Callable, Iterable, Iterator

from .sender import Delivery, Envelope

log = logging.getLogger(__name__)

SECURITY = ("starttls", "tls", "none")
# Connection-level failures: the socket (OSError covers timeouts and TLS) or the
# session (smtplib raises SMTPException subclasses for greeting, STARTTLS,
# login and disconnection) is unusable, whatever the message.
CONNECTION_ERRORS = (OSError, smtplib.SMTPException)
CLOSING = 421  # the server is closing the connection (RFC 5321 4.2.3)


END_OF_DATA = b"\r\n.\r\n"


class _Committing:
    """Calls `committing` between a message's content and the end-of-data line that commits it.

    smtplib sends the message and its final "." in one write; splitting that
    write is the only way to know the moment after which the server has the
    whole message (see `sender.py`).
    """

    committing: Callable[[], None] | None = None

    def send(self, s: bytes | str) -> None:
        if self.committing is not None and isinstance(s, bytes) and s.endswith(END_OF_DATA):
            super().send(s[:-3])
            self.committing()
            super().send(s[-3:])
        else:
            super().send(s)


class _SMTP(_Committing, smtplib.SMTP):
    pass


class _SMTP_SSL(_Committing, smtplib.SMTP_SSL):
    pass


class SmtpSender:
    """Sends envelopes through one SMTP server.

    `security` is "starttls" (upgrade a plain connection, never falling back
    to plain text), "tls" (implicit TLS, usually port 465) or "none". The
    server's certificate is verified unless `verify_tls` is turned off, which
    is for a trial server with a self-signed certificate only. A login is
    made only when a username is given.
    """

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
        local_hostname: str | None = None,
        verify_tls: bool = True,
    ) -> None:
        if security not in SECURITY:
            raise ValueError(f"security must be one of {', '.join(SECURITY)}, not {security!r}")
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.tls_context = ssl.create_default_context()
        if not verify_tls:
            self.tls_context.check_hostname = False
            self.tls_context.verify_mode = ssl.CERT_NONE

    def send_batch(
        self, envelopes: Iterable[Envelope], committing: Callable[[str], None] | None = None
    ) -> Iterator[Delivery]:
        """Send each envelope over one connection, yielding its delivery before the next."""
        smtp: smtplib.SMTP | None = None
        try:
            for envelope in envelopes:
                delivery: Delivery | None = None
                while delivery is None:
                    reused = smtp is not None
                    try:
                        if smtp is None:
                            smtp = self._connect()
                        delivery = self._send(smtp, envelope, committing)
                    except CONNECTION_ERRORS as error:
                        close(smtp)
                        smtp = None
                        if not reused:
                            yield Delivery(envelope.message_id, ok=False, error=f"{self.host}:{self.port}: {describe(error)}")
                            return
                        log.info(
                            "%s:%s dropped the connection kept from the last message (%s); reconnecting once",
                            self.host,
                            self.port,
                            describe(error),
                        )
                yield delivery
        finally:
            if smtp is not None:
                quit_politely(smtp)

    def _connect(self) -> _SMTP | _SMTP_SSL:
        """A connection ready for MAIL FROM: secured and logged in as configured."""
        smtp: _SMTP | _SMTP_SSL
        if self.security == "tls":
            smtp = _SMTP_SSL(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout, context=self.tls_context
            )
        else:
            smtp = _SMTP(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout)
        try:
            if self.security == "starttls":
                smtp.starttls(context=self.tls_context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.ehlo_or_helo_if_needed()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, smtp: _SMTP | _SMTP_SSL, envelope: Envelope, committing: Callable[[str], None] | None) -> Delivery:
        """One mail transaction; the server's refusals become deliveries, a lost connection raises."""
        addresses = (envelope.sender, *envelope.recipients)
        if any("\r" in address or "\n" in address for address in addresses):
            # smtplib would put the line break into the command stream.
            return Delivery(envelope.message_id, ok=False, permanent=True, error="malformed address (line break)")
        options = []
        if not all(address.isascii() for address in addresses):
            # Only when the addresses need it: a message marked SMTPUTF8 is
            # bounced by any later hop without it (Dovecot's LMTP, for one).
            options.append("SMTPUTF8")
        if not envelope.data.isascii() and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        smtp.committing = (lambda: committing(envelope.message_id)) if committing else None
        try:
            refused = smtp.sendmail(envelope.sender, list(envelope.recipients), envelope.data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            if CLOSING in codes:
                raise smtplib.SMTPServerDisconnected(f"closing: {refusals(error.recipients)}") from error
            permanent = all(code >= 500 for code in codes)
            return Delivery(envelope.message_id, ok=False, permanent=permanent, error=f"refused: {refusals(error.recipients)}")
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            if error.smtp_code == CLOSING:
                raise smtplib.SMTPServerDisconnected(f"closing: {describe(error)}") from error
            return Delivery(envelope.message_id, ok=False, permanent=error.smtp_code >= 500, error=describe(error))
        except smtplib.SMTPNotSupportedError as error:
            # The addresses need SMTPUTF8 and this server does not offer it.
            return Delivery(envelope.message_id, ok=False, permanent=True, error=str(error))
        return Delivery(envelope.message_id, ok=True, error=f"refused: {refusals(refused)}" if refused else "")


def refusals(recipients: dict[str, tuple[int, bytes]]) -> str:
    """Refused recipients with the server's reply to each, for a log or an error."""
    return "; ".join(f"{address} ({code} {reply.decode(errors='replace')})" for address, (code, reply) in recipients.items())


def describe(error: BaseException) -> str:
    """An error as one readable line, with the server's reply when there was one."""
    if isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error
        return f"{error.smtp_code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    return f"{type(error).__name__}: {error}"


def close(smtp: smtplib.SMTP | None) -> None:
    """Drop a connection that is broken or no longer wanted, without a word to the server."""
    if smtp is not None:
        smtp.close()


def quit_politely(smtp: smtplib.SMTP) -> None:
    """End the session with QUIT; a server that has already gone is no error."""
    try:
        smtp.quit()
    except CONNECTION_ERRORS:
        smtp.close()

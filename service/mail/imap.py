"""The shared mailbox on an IMAP server: IDLE with a polling fallback, reconnection with backoff.

A message is named by its inbox's UIDVALIDITY and its UID ("1700000000:42"),
so a ref can never be applied to the wrong message: when the inbox is
deleted and recreated its UIDVALIDITY changes, old refs are left alone, and
the messages are simply fetched again under their new UIDs (the pipeline
recognises them by Message-ID). Nothing is marked \\Seen, so people who
read the shared mailbox see it as they left it.

Every failure of the network or the server drops the connection and comes
out as `SourceError`; the next call reconnects, after a capped exponential
backoff, so the daemon's loop simply carries on. Messages leave the inbox
only through `mark_processed` and `mark_quarantined`, so a connection lost
halfway through a fetch loses nothing: what was not handled is fetched
again.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from imapclient import DELETED, IMAPClient
from imapclient.exceptions import LoginError

from .source import PROCESSED, QUARANTINE, Backoff, Fetched, SourceError

log = logging.getLogger(__name__)

SECURITY = ("tls", "starttls", "none")
# What a lost connection or an unhappy server raises: socket and TLS errors
# are OSError; NO/BAD answers, BYE and protocol errors are imaplib.IMAP4.error
# (imapclient's exceptions derive from it).
CONNECTION_ERRORS = (OSError, imaplib.IMAP4.error)
# RFC 5530 response codes that say a refused login may succeed later.
TEMPORARY_LOGIN_FAILURE = re.compile(r"\[(UNAVAILABLE|SERVERBUG|INUSE|LIMIT)[\] ]")
#: Seconds between an IDLE's looks at whether it was interrupted: how long a stopping daemon may wait for it.
WAKE_CHECK = 1.0


class ImapSource:
    """An IMAP folder as a source: UID SEARCH, BODY.PEEK fetches, UID MOVE (or COPY + EXPUNGE).

    `use_idle`, `use_move` and `use_uidplus` can only turn an extension off:
    each is used when the server advertises it and the flag is true. Turning
    one off exercises the fallback (polling; COPY, \\Deleted and EXPUNGE) on
    a server that has everything, or avoids an extension a server gets wrong.
    """

    def __init__(
        self,
        *,
        host: str,
        username: str,
        password: str,
        port: int = 993,
        security: str = "tls",
        verify_tls: bool = True,
        inbox: str = "INBOX",
        processed: str = PROCESSED,
        quarantine: str = QUARANTINE,
        timeout: float = 60.0,
        idle_renew: float = 25 * 60,
        poll_interval: float = 60.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 120.0,
        batch_size: int = 100,
        use_idle: bool = True,
        use_move: bool = True,
        use_uidplus: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if security not in SECURITY:
            raise ValueError(f"security must be one of {', '.join(SECURITY)}, not {security!r}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.security = security
        self.verify_tls = verify_tls
        self.inbox = inbox
        self.processed = processed
        self.quarantine = quarantine
        self.timeout = timeout
        self.idle_renew = idle_renew
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.batch_size = batch_size
        self.use_idle = use_idle
        self.use_move = use_move
        self.use_uidplus = use_uidplus
        self._sleep = sleep
        self._client: IMAPClient | None = None
        self._backoff = Backoff(backoff_base, backoff_cap, sleep)
        self._uidvalidity: int | None = None
        self._uidnext: int | None = None
        self._fetched_at: tuple[int | None, int | None] = (None, None)
        self._deleted_by_us: set[int] = set()
        self._interrupted = threading.Event()

    # The source protocol.

    def fetch_new(self) -> Iterator[Fetched]:
        """Yield the inbox's messages by UID, which is arrival order, in batches of `batch_size`.

        Messages flagged \\Deleted are left out: they are on their way out of
        the inbox, either copied by us already (without UIDPLUS the EXPUNGE
        may have to wait) or deleted by a person.
        """
        with self._talking(f"fetching new mail from {self.inbox}"):
            client = self._open()
            uidvalidity = self._uidvalidity
            self._fetched_at = (uidvalidity, self._uidnext)
            uids = sorted(client.search(["UNDELETED"]))
        for start in range(0, len(uids), self.batch_size):
            if self._client is not client or self._uidvalidity != uidvalidity:
                return  # reconnected or recreated meanwhile: these UIDs may mean nothing now; the next fetch starts over
            batch = uids[start : start + self.batch_size]
            with self._talking(f"fetching UIDs {batch[0]}–{batch[-1]} from {self.inbox}"):
                found = client.fetch(batch, ["BODY.PEEK[]", "INTERNALDATE"])
            for uid in batch:
                item = found.get(uid, {})
                raw = item.get(b"BODY[]")
                if raw is None:
                    log.info("UID %s left %s before it could be fetched", uid, self.inbox)
                    continue
                log.debug("fetched %s:%s, %d bytes, arrived %s", uidvalidity, uid, len(raw), item.get(b"INTERNALDATE"))
                yield Fetched(ref=f"{uidvalidity}:{uid}", raw=raw)

    def mark_processed(self, ref: str) -> None:
        self._move(ref, self.processed)

    def mark_quarantined(self, ref: str) -> None:
        self._move(ref, self.quarantine)

    def wait(self, timeout: float) -> None:
        """IDLE until the server announces mail, or sleep `poll_interval` where IDLE is not to be had.

        Mail that arrived since the last fetch (while it was being handled)
        would not be announced by IDLE, so it makes wait return at once.
        IDLE never lasts longer than `idle_renew`: RFC 2177 lets a server
        drop a client idle for 29 minutes.
        """
        if timeout <= 0 or self._interrupted.is_set():
            return
        with self._talking(f"waiting for new mail in {self.inbox}"):
            client = self._open()
            if (self._uidvalidity, self._uidnext) != self._fetched_at:
                return
            if self.use_idle and client.has_capability("IDLE"):
                self._idle(client, min(timeout, self.idle_renew))
            else:
                self._sleep(min(self.poll_interval, timeout))

    def interrupt(self) -> None:
        """End an IDLE within `WAKE_CHECK` seconds (a poll's sleep runs out), and wait no more."""
        self._interrupted.set()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except CONNECTION_ERRORS:
            pass  # imaplib closes the socket whatever the server answered

    # The connection.

    @contextmanager
    def _talking(self, doing: str) -> Iterator[None]:
        """Turn any failure of the connection or the server into SourceError, dropping the connection.

        The next call reconnects after a pause that doubles with each failure
        up to `backoff_cap`, and only a call that goes through ends the
        doubling: a server that takes connections but fails every command is
        given the same room as one that refuses them. A login the server
        refuses for good (a wrong password, say) waits the whole cap at
        once: it will not get better by itself, and repeated failures can get
        the account locked.
        """
        try:
            yield
        except CONNECTION_ERRORS as error:
            self._drop()
            refused = isinstance(error, LoginError) and not TEMPORARY_LOGIN_FAILURE.search(str(error))
            if refused:
                self._backoff.refused()
                log.error("%s: %s refused the login for %s (%s); check the username and password", doing, self.host, self.username, error)
            else:
                self._backoff.failed()
                log.warning("%s: %s (%s): %s", doing, self.host, type(error).__name__, error)
            raise SourceError(f"{doing} on {self.host}: {error}") from error
        else:
            self._backoff.succeeded()

    def _open(self) -> IMAPClient:
        """The connection, with the inbox freshly SELECTed.

        Dovecot lets a session whose selected mailbox was deleted and
        recreated carry on: STATUS still answers with the old UIDVALIDITY
        and UIDs are applied to the new mailbox's messages. Only a new
        SELECT tells the truth, so every operation starts with one; it also
        empties imaplib's store of untagged responses, which would otherwise
        grow with every EXPUNGE for as long as the connection lives.
        """
        client = self._connected()
        selected = client.select_folder(self.inbox)
        uidvalidity = selected[b"UIDVALIDITY"]
        if self._uidvalidity is not None and uidvalidity != self._uidvalidity:
            log.warning(
                "%s was recreated (UIDVALIDITY %s, was %s): its messages will be fetched again under new UIDs",
                self.inbox, uidvalidity, self._uidvalidity,
            )
            self._deleted_by_us.clear()
        self._uidvalidity = uidvalidity
        self._uidnext = selected[b"UIDNEXT"]
        return client

    def _connected(self) -> IMAPClient:
        if self._client is None:
            self._backoff.pause()
            self._client = self._connect()
            try:
                self._prepare(self._client)
            except BaseException:
                self._drop()
                raise
        return self._client

    def _connect(self) -> IMAPClient:
        """A new connection; its `ssl_context` also serves STARTTLS."""
        context = None
        if self.security != "none":
            context = ssl.create_default_context()
            if not self.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return IMAPClient(self.host, port=self.port, use_uid=True, ssl=self.security == "tls", ssl_context=context, timeout=self.timeout)

    def _prepare(self, client: IMAPClient) -> None:
        """Log in and make sure the folders messages are moved to exist."""
        if self.security == "starttls":
            client.starttls(client.ssl_context)
        client.login(self.username, self.password)
        for folder in (self.processed, self.quarantine):
            if not client.folder_exists(folder):
                client.create_folder(folder)
                client.subscribe_folder(folder)
                log.info("created and subscribed %s on %s", folder, self.host)
        log.info("connected to %s:%s as %s", self.host, self.port, self.username)

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.shutdown()
        except OSError:
            pass  # the socket is already gone

    def _idle(self, client: IMAPClient, seconds: float) -> None:
        """IDLE for up to `seconds`, ending as soon as the server reports new mail (EXISTS or RECENT).

        It listens in slices of `WAKE_CHECK` seconds, between which it looks
        whether it was interrupted; that costs no traffic. An empty answer
        from idle_check long before the slice is up means the server closed
        the connection; idle_done then fails, which is how a dead connection
        shows itself.
        """
        client.idle()
        try:
            deadline = time.monotonic() + seconds
            while (remaining := deadline - time.monotonic()) > 0 and not self._interrupted.is_set():
                listen = min(remaining, WAKE_CHECK)
                asked = time.monotonic()
                responses = client.idle_check(timeout=listen)
                for response in responses:
                    if response[0] == b"BYE":
                        words = b" ".join(part for part in response[1:] if isinstance(part, bytes))
                        raise imaplib.IMAP4.abort(f"BYE {words.decode('utf-8', 'replace')}")
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    break
                if not responses and time.monotonic() - asked < listen / 2:
                    break
        except BaseException:
            self._drop()  # the session is stuck in IDLE; only a new one is any use
            raise
        client.idle_done()

    # Moving messages out of the inbox.

    def _move(self, ref: str, folder: str) -> None:
        uidvalidity, uid = _parse_ref(ref)
        with self._talking(f"moving {ref} to {folder}"):
            client = self._open()
            if uidvalidity != self._uidvalidity:
                log.warning(
                    "not moving %s to %s: %s has been recreated since it was fetched (UIDVALIDITY now %s); "
                    "the message will be fetched again under its new UID",
                    ref, folder, self.inbox, self._uidvalidity,
                )
                return
            # A UID no longer in the inbox (moved before a crash) is ignored by
            # the server without an error (RFC 3501 6.4.8), which is what we want.
            if self.use_move and client.has_capability("MOVE"):
                client.move([uid], folder)
            else:
                self._copy_and_expunge(client, uid, folder)
            log.debug("moved %s to %s", ref, folder)

    def _copy_and_expunge(self, client: IMAPClient, uid: int, folder: str) -> None:
        """MOVE by hand: COPY, flag \\Deleted, then EXPUNGE only what we flagged.

        With UIDPLUS, UID EXPUNGE removes just this message. Without it a
        plain EXPUNGE would also remove messages other people flagged
        \\Deleted, so it is only sent when every flagged message is one we
        copied; otherwise ours stay flagged (and are no longer fetched) until
        a later move, or someone else, expunges them. A message someone flags
        between our SEARCH and EXPUNGE is the one race left; UIDPLUS has none.
        """
        client.copy([uid], folder)
        client.add_flags([uid], [DELETED], silent=True)
        if self.use_uidplus and client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])
            return
        self._deleted_by_us.add(uid)
        others = set(client.search(["DELETED"])) - self._deleted_by_us
        if others:
            log.info(
                "UID %s stays flagged \\Deleted in %s: the server cannot expunge single messages (no UIDPLUS) "
                "and %d other message(s) there are flagged \\Deleted by someone else",
                uid, self.inbox, len(others),
            )
            return
        client.expunge()
        self._deleted_by_us.clear()


def _parse_ref(ref: str) -> tuple[int, int]:
    """Split a ref ("UIDVALIDITY:UID") back into numbers; anything else is not an IMAP ref."""
    uidvalidity, separator, uid = ref.partition(":")
    if not separator or not uidvalidity.isdigit() or not uid.isdigit():
        raise ValueError(f"not an IMAP message ref: {ref!r}")
    return int(uidvalidity), int(uid)

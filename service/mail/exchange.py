"""The shared mailbox on an on-premises Exchange Server, through EWS (exchangelib).

The server is named by its EWS URL (`https://mail.office.go.th/EWS/Exchange.asmx`);
autodiscover is never used, because offices' autodiscover records are often
missing or point somewhere else. exchangelib finds the authentication method
the server offers (NTLM is preferred over Basic) and the server's version by
itself, on the first request.

A message is named by its EWS item id and change key ("<id> <changekey>",
space separated: neither contains a space). Exchange keeps the id when an item
changes, so a ref stays usable; a message that left the inbox (moved before a
crash) answers ErrorItemNotFound, which a move treats as done, as the IMAP
source does for a UID no longer there. Nothing is marked read.

`Processed` and `Quarantine` are made next to the inbox, under the mailbox's
top folder (msgfolderroot), the first time they are needed.

Waiting for mail is a poll: `wait` sleeps `poll_interval` seconds (or less
when the daemon asks for less) and the next `fetch_new` asks the server with
one FindItem. Pull or streaming notifications would react faster, but they
add a subscription that expires and must be renewed, and the daemon's tick
already bounds the delay; this is the IMAP source's fallback too.

Failures come out as `SourceError`:
- the server is throttling (ErrorServerBusy, with the back-off it asks for):
  the source waits exactly that long (up to `backoff_cap`) before its next
  request, then carries on;
- the connection fails, times out or the server answers nonsense: the next
  request waits a capped exponential backoff, as the IMAP source does;
- the login is refused: the next request waits the whole cap, so that
  repeated failures do not lock the account.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import requests
from exchangelib import (
    DELEGATE,
    IMPERSONATION,
    Account,
    Configuration,
    Credentials,
    FailFast,
    Folder,
    Message,
)
from exchangelib.errors import (
    EWSError,
    ErrorFolderNotFound,
    ErrorInvalidIdMalformed,
    ErrorItemNotFound,
    ErrorServerBusy,
    ResponseMessageError,
    UnauthorizedError,
)
from exchangelib.folders import FolderCollection
from exchangelib.protocol import BaseProtocol, NoVerifyHTTPAdapter
from exchangelib.queryset import Q

from .sender import Delivery, Envelope
from .source import PROCESSED, QUARANTINE, Backoff, Fetched, PollingSource, SourceError

log = logging.getLogger(__name__)

ACCESS = {"delegate": DELEGATE, "impersonation": IMPERSONATION}
# What a lost connection or an unhappy server raises: exchangelib's own errors
# (it turns connection errors into ErrorTimeoutExpired or ErrorServerBusy),
# and whatever requests or the socket raise before exchangelib sees it.
CONNECTION_ERRORS = (EWSError, requests.RequestException, OSError)
# EWS response codes that say "later", not "never", for a message being sent.
TEMPORARY_SEND_ERRORS = {
    "ErrorServerBusy",
    "ErrorTimeoutExpired",
    "ErrorInternalServerTransientError",
    "ErrorInternalServerError",
    "ErrorMailboxStoreUnavailable",
    "ErrorMailboxMoveInProgress",
    "ErrorConnectionFailed",
    "ErrorTooManyObjectsOpened",
    "ErrorInsufficientResources",
    "ErrorBatchProcessingStopped",
    "ErrorQuotaExceeded",
    "ErrorADUnavailable",
    "ErrorExceededConnectionCount",
}


def _tls(verify_tls: bool, url: str) -> None:
    """Turn certificate checks off for exchangelib, which can only do it for the whole process."""
    if verify_tls:
        return
    if url.startswith("https:"):
        log.warning(
            "TLS certificate verification is OFF for EWS at %s (and every other EWS connection of this process); "
            "use this only for a trial server with a self-signed certificate",
            url,
        )
    BaseProtocol.HTTP_ADAPTER_CLS = NoVerifyHTTPAdapter


class _Connection:
    """One exchangelib Account, made on first use and dropped after a failure."""

    def __init__(
        self,
        *,
        url: str,
        username: str,
        password: str,
        mailbox: str,
        access: str,
        verify_tls: bool,
        timeout: float,
    ) -> None:
        if access not in ACCESS:
            raise ValueError(f"access must be one of {', '.join(ACCESS)}, not {access!r}")
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"url must be the EWS endpoint, like https://mail.office.go.th/EWS/Exchange.asmx, not {url!r}")
        self.url = url
        self.username = username
        self.password = password
        self.mailbox = mailbox
        self.access = access
        self.verify_tls = verify_tls
        self.timeout = timeout
        self._account: Account | None = None

    def account(self) -> Account:
        if self._account is None:
            _tls(self.verify_tls, self.url)
            config = Configuration(
                service_endpoint=self.url,
                credentials=Credentials(self.username, self.password),
                retry_policy=FailFast(),
                max_connections=1,
            )
            account = Account(
                primary_smtp_address=self.mailbox,
                config=config,
                autodiscover=False,
                access_type=ACCESS[self.access],
            )
            account.protocol.TIMEOUT = self.timeout
            self._account = account
        return self._account

    def drop(self) -> None:
        account, self._account = self._account, None
        if account is None:
            return
        try:
            account.protocol.close()
        except Exception:  # noqa: BLE001 - the sessions are being thrown away anyway
            pass


class ExchangeSource(PollingSource):
    """The inbox of a mailbox on Exchange Server, read through EWS."""

    def __init__(
        self,
        *,
        url: str,
        username: str,
        password: str,
        mailbox: str,
        access: str = "delegate",
        verify_tls: bool = True,
        processed: str = PROCESSED,
        quarantine: str = QUARANTINE,
        timeout: float = 60.0,
        poll_interval: float = 60.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 120.0,
        batch_size: int = 100,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._connection = _Connection(
            url=url, username=username, password=password, mailbox=mailbox,
            access=access, verify_tls=verify_tls, timeout=timeout,
        )
        self.url = url
        self.username = username
        self.processed = processed
        self.quarantine = quarantine
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.batch_size = batch_size
        self._sleep = sleep
        self._backoff = Backoff(backoff_base, backoff_cap, sleep)
        self._folders: dict[str, Folder] = {}

    # The source protocol.

    def fetch_new(self) -> Iterator[Fetched]:
        """Yield the inbox's messages by the time they were received, oldest first, as raw MIME.

        FindItem lists the ids (in pages of `batch_size`); GetItem fetches the
        MIME content of each page. The ids are listed once, before anything is
        yielded, so moving messages out while the pipeline works does not
        shift the pages.
        """
        with self._talking("listing the inbox"):
            account = self._account()
            ids = [
                (item_id, changekey)
                for item_id, changekey in account.inbox.all()
                .order_by("datetime_received")
                .values_list("id", "changekey")
            ]
        for start in range(0, len(ids), self.batch_size):
            batch = ids[start : start + self.batch_size]
            with self._talking(f"fetching {len(batch)} message(s) from the inbox"):
                account = self._account()
                found = list(account.fetch(ids=batch, only_fields=["mime_content"]))
            for (item_id, changekey), item in zip(batch, found):
                if isinstance(item, ErrorItemNotFound):
                    log.info("item %s left the inbox before it could be fetched", item_id)
                    continue
                if isinstance(item, Exception):
                    raise SourceError(f"fetching {item_id} on {self.url}: {item}") from item
                raw = item.mime_content
                if raw is None:
                    log.info("item %s has no MIME content (not a message?); skipped", item_id)
                    continue
                if isinstance(raw, str):
                    raw = raw.encode("utf-8")
                yield Fetched(ref=f"{item_id} {changekey}", raw=raw)

    def close(self) -> None:
        self._connection.drop()
        self._folders.clear()

    # The connection.

    def _account(self) -> Account:
        if self._connection._account is None:
            self._backoff.pause()
        return self._connection.account()

    @contextmanager
    def _talking(self, doing: str) -> Iterator[None]:
        """Turn any failure into SourceError and decide how long the next attempt waits."""
        try:
            yield
        except ErrorServerBusy as error:
            back_off = error.back_off or self.backoff_base
            wait = min(back_off, self.backoff_cap)
            log.warning("%s: %s is busy and asks for %.1f s of quiet; waiting %.1f s", doing, self.url, back_off, wait)
            self._sleep(wait)  # honoured here, then the daemon calls again
            self._backoff.succeeded()
            raise SourceError(f"{doing} on {self.url}: the server is busy (asked to back off {back_off:.1f} s)") from error
        except UnauthorizedError as error:
            self._connection.drop()
            self._folders.clear()
            self._backoff.refused(exact=True)
            log.error("%s: %s refused the login for %s (%s); check the username and password", doing, self.url, self.username, error)
            raise SourceError(f"{doing} on {self.url}: {error}") from error
        except CONNECTION_ERRORS as error:
            self._connection.drop()
            self._folders.clear()
            self._backoff.failed()
            log.warning("%s: %s (%s): %s", doing, self.url, type(error).__name__, error)
            raise SourceError(f"{doing} on {self.url}: {type(error).__name__}: {error}") from error
        else:
            self._backoff.succeeded()

    # Folders and moves.

    def _folder(self, name: str) -> Folder:
        """The folder `name` next to the inbox (under msgfolderroot), made if it is not there."""
        if name not in self._folders:
            account = self._account()
            root = account.msg_folder_root
            found = list(FolderCollection(account=account, folders=[root]).find_folders(q=Q(name=name), depth="Shallow"))
            found = [f for f in found if isinstance(f, Folder) and f.name == name]
            if found:
                self._folders[name] = found[0]
            else:
                folder = Folder(parent=root, name=name)
                folder.save()
                log.info("created the folder %s on %s", name, self.url)
                self._folders[name] = folder
        return self._folders[name]

    def _move(self, ref: str, name: str) -> None:
        item_id, changekey = _parse_ref(ref)
        with self._talking(f"moving {item_id} to {name}"):
            account = self._account()
            folder = self._folder(name)
            [result] = account.bulk_move(ids=[(item_id, changekey)], to_folder=folder)
            if isinstance(result, (ErrorItemNotFound, ErrorInvalidIdMalformed)):
                log.info("item %s is no longer in the inbox (moved already?); nothing to move", item_id)
                return
            if isinstance(result, ErrorFolderNotFound):
                self._folders.pop(name, None)  # deleted by someone: made again next time
                raise result
            if isinstance(result, Exception):
                raise result
            log.debug("moved %s to %s", item_id, name)


class ExchangeSender:
    """Sends envelopes as raw MIME through EWS (CreateItem, SendOnly or SendAndSaveCopy).

    Exchange takes the recipients from the message's To, Cc and Bcc headers;
    envelope recipients that the headers do not name are added as Bcc, so the
    message goes exactly where the envelope says. `save_copy` keeps a copy
    in Sent Items.
    """

    def __init__(
        self,
        *,
        url: str,
        username: str,
        password: str,
        mailbox: str,
        access: str = "delegate",
        verify_tls: bool = True,
        timeout: float = 60.0,
        save_copy: bool = False,
    ) -> None:
        self._connection = _Connection(
            url=url, username=username, password=password, mailbox=mailbox,
            access=access, verify_tls=verify_tls, timeout=timeout,
        )
        self.url = url
        self.save_copy = save_copy

    def send_batch(
        self, envelopes: Iterable[Envelope], committing: Callable[[str], None] | None = None
    ) -> Iterator[Delivery]:
        for envelope in envelopes:
            delivery = self._send(envelope, committing)
            yield delivery
            if not delivery.ok and not delivery.permanent:
                self._connection.drop()
                return  # the server or the network is unwell: the rest waits for the next batch

    def _send(self, envelope: Envelope, committing: Callable[[str], None] | None) -> Delivery:
        try:
            account = self._connection.account()
            extra = _unnamed_recipients(envelope)
            message = Message(
                account=account,
                folder=account.sent if self.save_copy else None,
                mime_content=envelope.data,
                **({"bcc_recipients": extra} if extra else {}),
            )
            if committing is not None:
                committing(envelope.message_id)
            message.send(save_copy=self.save_copy)
        except ResponseMessageError as error:
            code = type(error).__name__
            permanent = code not in TEMPORARY_SEND_ERRORS
            if not permanent:
                self._connection.drop()
            return Delivery(envelope.message_id, ok=False, permanent=permanent, error=f"{self.url}: {code}: {error}")
        except CONNECTION_ERRORS as error:
            self._connection.drop()
            return Delivery(envelope.message_id, ok=False, error=f"{self.url}: {type(error).__name__}: {error}")
        return Delivery(envelope.message_id, ok=True)


def _unnamed_recipients(envelope: Envelope) -> list[str]:
    """Envelope recipients that the message's own To, Cc and Bcc headers do not name."""
    from email.parser import BytesHeaderParser
    from email.utils import getaddresses

    headers = BytesHeaderParser().parsebytes(envelope.data)
    named = {address.lower() for _, address in getaddresses([v for h in ("to", "cc", "bcc") for v in headers.get_all(h, [])])}
    return [r for r in envelope.recipients if r.lower() not in named]


def _parse_ref(ref: str) -> tuple[str, str | None]:
    item_id, _, changekey = ref.partition(" ")
    if not item_id:
        raise ValueError(f"not an Exchange message ref: {ref!r}")
    return item_id, changekey or None


__all__ = ["ExchangeSource", "ExchangeSender"]

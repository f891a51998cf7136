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

Waiting for mail asks the server what changed, never what to fetch: `wait`
returns as soon as the inbox may hold something new, and `fetch_new` then
lists the whole inbox with FindItem. So a lost notification, an expired
subscription or a reset sync state can delay a message, never lose it.
- `notifications = "pull"` (the default): a pull subscription on the inbox
  (Subscribe, then GetEvents every `poll_interval` seconds, which is cheap:
  it answers only with what happened since the last watermark). It is made
  before the inbox is listed, so mail arriving while the pipeline works is
  reported. When the server says the subscription has expired or is unknown
  (it times out after SUBSCRIPTION_MINUTES without a GetEvents, or the
  server restarted), `wait` returns at once and the next fetch subscribes
  again before it lists the inbox: that listing is the catch-up.
- `notifications = "sync"`, and the fallback when the server refuses
  subscriptions for this account (Exchange refuses them to some delegates)
  or loses each one before it has answered once: SyncFolderItems with the
  last sync state every `poll_interval` seconds; an invalid sync state is
  dropped and made anew by the next fetch.
Streaming notifications (not built) would answer faster still, but each of
their requests stays open for a whole number of minutes, which a shorter
wait of the daemon could not cut short.

With `app`, the service signs in as an application instead of with a
password: an OAuth access token from Entra ID (client credentials, for a
server with hybrid modern authentication), which exchangelib fetches and
renews itself.

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
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlparse

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
    OAuth2Credentials,
)
from exchangelib.credentials import BaseCredentials
from exchangelib.errors import (
    EWSError,
    ErrorAccessDenied,
    ErrorExpiredSubscription,
    ErrorFolderNotFound,
    ErrorInvalidIdMalformed,
    ErrorInvalidSubscription,
    ErrorInvalidSubscriptionRequest,
    ErrorInvalidSyncStateData,
    ErrorInvalidWatermark,
    ErrorItemNotFound,
    ErrorReadEventsFailed,
    ErrorServerBusy,
    ErrorSubscriptionAccessDenied,
    ErrorSubscriptionDelegateAccessNotSupported,
    ErrorSubscriptionNotFound,
    ResponseMessageError,
    UnauthorizedError,
)
from exchangelib.folders import FolderCollection
from exchangelib.properties import CreatedEvent, MovedEvent, NewMailEvent
from exchangelib.protocol import BaseProtocol, NoVerifyHTTPAdapter
from exchangelib.queryset import Q
from oauthlib.oauth2 import OAuth2Error

from .sender import Delivery, Envelope
from .source import PROCESSED, QUARANTINE, Backoff, Fetched, PollingSource, SourceError

log = logging.getLogger(__name__)

ACCESS = {"delegate": DELEGATE, "impersonation": IMPERSONATION}
NOTIFICATIONS = ("pull", "sync")
AUTHORITY = "https://login.microsoftonline.com"
# A pull subscription lives this long without a GetEvents; a long backlog can outlast it, which costs a resubscription.
SUBSCRIPTION_MINUTES = 30
EVENT_TYPES = ("NewMailEvent", "CreatedEvent", "MovedEvent")
# Subscribe answers that say this account or server will not have pull subscriptions; the sync-state poll needs only read access.
NO_SUBSCRIPTIONS = (
    ErrorSubscriptionDelegateAccessNotSupported,
    ErrorSubscriptionAccessDenied,
    ErrorInvalidSubscriptionRequest,
    ErrorAccessDenied,
)
# GetEvents answers that say the subscription is gone (expired, unknown to a restarted server, or its queue lost).
LOST_SUBSCRIPTION = (
    ErrorSubscriptionNotFound,
    ErrorExpiredSubscription,
    ErrorInvalidSubscription,
    ErrorInvalidWatermark,
    ErrorReadEventsFailed,
)
# A login the server refused, or a token the identity platform would not issue (a wrong secret, client or tenant).
REFUSED = (UnauthorizedError, OAuth2Error)
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


@dataclass(frozen=True)
class AppSignIn:
    """An app registration in Entra ID that signs in as itself (client credentials) instead of a password.

    `scope` is the resource the token is for: for an Exchange Server under
    hybrid modern authentication, its own address (`https://mail.office.go.th/.default`,
    the default, taken from the EWS URL).
    """

    tenant: str
    client_id: str
    client_secret: str
    authority: str = AUTHORITY
    scope: str = ""


def app_sign_in(settings: Any) -> AppSignIn | None:
    """The app sign-in an Exchange configuration table describes (`auth = "oauth"`), or None for a password."""
    if settings.auth != "oauth":
        return None
    return AppSignIn(settings.tenant, settings.client_id, settings.client_secret, settings.authority, settings.oauth_scope)


class _AppCredentials(OAuth2Credentials):
    """exchangelib's client-credentials flow, asking the office's authority for a token for its server.

    exchangelib itself only knows Exchange Online's token URL and scope.
    """

    def __init__(self, app: AppSignIn, url: str) -> None:
        super().__init__(client_id=app.client_id, client_secret=app.client_secret, tenant_id=app.tenant)
        self._token_url = f"{app.authority.rstrip('/')}/{app.tenant}/oauth2/v2.0/token"
        self._scope = app.scope or f"https://{urlparse(url).hostname}/.default"

    @property
    def token_url(self) -> str:
        return self._token_url

    @property
    def scope(self) -> list[str]:
        return [self._scope]


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
        app: AppSignIn | None,
    ) -> None:
        if access not in ACCESS:
            raise ValueError(f"access must be one of {', '.join(ACCESS)}, not {access!r}")
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"url must be the EWS endpoint, like https://mail.office.go.th/EWS/Exchange.asmx, not {url!r}")
        self.url = url
        self.credentials: BaseCredentials = _AppCredentials(app, url) if app else Credentials(username, password)
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
                credentials=self.credentials,
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
        mailbox: str,
        username: str = "",
        password: str = "",
        app: AppSignIn | None = None,
        access: str = "delegate",
        verify_tls: bool = True,
        processed: str = PROCESSED,
        quarantine: str = QUARANTINE,
        timeout: float = 60.0,
        poll_interval: float = 60.0,
        notifications: str = "pull",
        backoff_base: float = 1.0,
        backoff_cap: float = 120.0,
        batch_size: int = 100,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        super().__init__(sleep)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if notifications not in NOTIFICATIONS:
            raise ValueError(f"notifications must be one of {', '.join(NOTIFICATIONS)}, not {notifications!r}")
        self._connection = _Connection(
            url=url, username=username, password=password, mailbox=mailbox,
            access=access, verify_tls=verify_tls, timeout=timeout, app=app,
        )
        self.url = url
        self.username = username or (app.client_id if app else "")
        self.processed = processed
        self.quarantine = quarantine
        self.poll_interval = poll_interval
        self.notifications = notifications
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.batch_size = batch_size
        self._backoff = Backoff(backoff_base, backoff_cap, self._sleep)
        self._folders: dict[str, Folder] = {}
        self._subscription: tuple[str, str] | None = None  # (id, watermark of the last event read)
        self._heard = False  # whether GetEvents has answered for the current subscription
        self._sync_state: str | None = None

    # The source protocol.

    def fetch_new(self) -> Iterator[Fetched]:
        """Yield the inbox's messages by the time they were received, oldest first, as raw MIME.

        The watch on the inbox (subscription or sync state) is set up first,
        so that whatever arrives after the listing is reported to `wait`.
        FindItem lists the ids (in pages of `batch_size`); GetItem fetches the
        MIME content of each page. The ids are listed once, before anything is
        yielded, so moving messages out while the pipeline works does not
        shift the pages.
        """
        with self._talking("listing the inbox"):
            account = self._account()
            self._watch(account)
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

    def wait(self, timeout: float) -> None:
        """Ask the server every `poll_interval` seconds whether the inbox changed; return when it may have, or after `timeout`.

        Without a watch (no fetch yet, or the last one failed) there is
        nothing to ask: the next fetch looks at the whole inbox anyway.
        `interrupt()` ends the sleep in hand at once, without another question.
        """
        if timeout <= 0 or self._interrupted.is_set():
            return
        with self._talking("waiting for new mail"):
            if self._unwatched() or self._new_mail():
                return
            left = timeout
            while left > 0:
                step = min(self.poll_interval, left)
                self._sleep(step)
                left -= step
                if self._interrupted.is_set() or self._new_mail():
                    return

    def close(self) -> None:
        """Unsubscribe (a courtesy: a forgotten subscription expires by itself) and let go of the connection."""
        if self._subscription and self._connection._account is not None:
            try:
                self._connection.account().inbox.unsubscribe(self._subscription[0])
            except (*CONNECTION_ERRORS, OAuth2Error) as error:
                log.info("could not unsubscribe from %s (%s); the subscription will expire by itself", self.url, error)
        self._subscription = None
        self._connection.drop()
        self._folders.clear()

    # Watching the inbox.

    def _watch(self, account: Account) -> None:
        """Subscribe to the inbox's events, or take its sync state, unless that is done already."""
        if self.notifications == "pull" and self._subscription is None:
            try:
                self._subscription = account.inbox.subscribe_to_pull(event_types=EVENT_TYPES, timeout=SUBSCRIPTION_MINUTES)
                self._heard = False
                log.debug("subscribed to the inbox of %s on %s", self._connection.mailbox, self.url)
            except NO_SUBSCRIPTIONS as error:
                log.warning("%s will not have pull notifications for this account (%s); polling with SyncFolderItems instead", self.url, error)
                self.notifications = "sync"
        if self.notifications == "sync" and self._sync_state is None:
            self._sync(account)

    def _unwatched(self) -> bool:
        return self._subscription is None if self.notifications == "pull" else self._sync_state is None

    def _new_mail(self) -> bool:
        account = self._account()
        return self._events(account) if self.notifications == "pull" else self._sync(account)

    def _events(self, account: Account) -> bool:
        """GetEvents since the last watermark: did anything arrive in the inbox?"""
        assert self._subscription is not None
        subscription, watermark = self._subscription
        arrived = False
        try:
            for notification in account.inbox.get_events(subscription, watermark):
                for event in notification.events:
                    watermark = event.watermark or watermark
                    if isinstance(event, (NewMailEvent, CreatedEvent)) or (
                        isinstance(event, MovedEvent) and event.parent_folder_id and event.parent_folder_id.id == account.inbox.id
                    ):
                        arrived = True
        except LOST_SUBSCRIPTION as error:
            self._subscription = None
            if not self._heard:
                # Lost before it answered once (servers behind a balancer without affinity do this):
                # subscribing again would only go round in circles.
                log.warning("%s lost a new subscription at once (%s); polling with SyncFolderItems instead", self.url, type(error).__name__)
                self.notifications = "sync"
            else:
                log.info("the subscription to the inbox on %s is gone (%s); subscribing again and listing the inbox", self.url, type(error).__name__)
            return True
        self._subscription, self._heard = (subscription, watermark), True
        return arrived

    def _sync(self, account: Account) -> bool:
        """SyncFolderItems from the last sync state: did anything arrive in the inbox?"""
        inbox = account.inbox
        inbox.item_sync_state = self._sync_state  # exchangelib would otherwise start from the state it remembers, even a rejected one
        try:
            changes = [kind for kind, _ in inbox.sync_items(only_fields=["id"])]
        except ErrorInvalidSyncStateData:
            log.info("%s no longer knows the inbox's sync state; starting a new one and listing the inbox", self.url)
            self._sync_state = None
            return True
        self._sync_state = inbox.item_sync_state
        return "create" in changes

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
        except REFUSED as error:
            self._connection.drop()
            self._folders.clear()
            self._backoff.refused(exact=True)
            log.error("%s: %s refused the login for %s (%s); check the credentials", doing, self.url, self.username, error)
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
        mailbox: str,
        username: str = "",
        password: str = "",
        app: AppSignIn | None = None,
        access: str = "delegate",
        verify_tls: bool = True,
        timeout: float = 60.0,
        save_copy: bool = False,
    ) -> None:
        self._connection = _Connection(
            url=url, username=username, password=password, mailbox=mailbox,
            access=access, verify_tls=verify_tls, timeout=timeout, app=app,
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
        except (*CONNECTION_ERRORS, OAuth2Error) as error:
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


__all__ = ["AppSignIn", "ExchangeSource", "ExchangeSender", "app_sign_in"]

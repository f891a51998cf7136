"""The shared mailbox in Microsoft 365, through Microsoft Graph: a source and a sender.

Exchange Online stops taking EWS from applications other than Microsoft's in
October 2026; Graph is what is left. The service signs in as itself (app-only
OAuth, the client-credentials grant through MSAL) with an app registration's
client secret, and needs the *application* permissions Mail.ReadWrite (read
and move messages, create the two folders) and Mail.Send, which an
ApplicationAccessPolicy or RBAC for Applications should restrict to the
shared mailbox.

The source follows the inbox with a delta query
(`…/mailFolders/inbox/messages/delta`, every `@odata.nextLink` of a round,
then the round's `@odata.deltaLink` next time), so a quiet inbox costs one
small request a poll. It keeps the ids the inbox holds and has not yet
moved (*pending*, with their receivedDateTime, since a delta cannot be
ordered oldest first) and the delta link, in one small file written whole
after every round and every move: a restart resumes from the link and
still yields what was pending when it stopped. When Graph no longer knows
the link (410 Gone, or `syncStateNotFound` / `resyncRequired`), the next
round starts afresh without one; such a full round lists exactly what is in
the inbox now, so it replaces *pending*: what was moved is not fetched
again, and what arrived meanwhile is not lost. Each message's MIME comes
byte for byte from `…/messages/{id}/$value`; it is moved (`…/move`) to the
*Processed* and *Quarantine* folders under the mailbox root, which are
created when missing. Graph has no push a daemon without a public web
address can take, so `wait` sleeps `poll_interval`; `interrupt()` ends that
sleep, and a back-off or Retry-After wait of the source, at once.

Every request carries a bearer token that MSAL caches until it expires. A
401 gets one new token and one more try (a token can be revoked before its
time); a 429 or 503 with `Retry-After` is retried after that many seconds
(up to `retry_after_cap`, a few times). What still fails comes out of the
source as `SourceError`, after which the next call waits, doubling up to
`backoff_cap` (at least as long as a `Retry-After` asked for); the sender
classes it as a `Delivery`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from contextlib import contextmanager
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import quote, urlparse

import msal
import requests

from .sender import Delivery, Envelope
from .source import PROCESSED, QUARANTINE, Backoff, Fetched, PollingSource, SourceError

log = logging.getLogger(__name__)

AUTHORITY = "https://login.microsoftonline.com"
GRAPH_URL = "https://graph.microsoft.com/v1.0"
SCOPES = ["https://graph.microsoft.com/.default"]
PAGE_SIZE = 100
THROTTLED = (429, 503)
# How Graph says it no longer knows a delta link: start a new round without one.
RESYNC_CODES = {"syncstatenotfound", "resyncrequired", "syncstateinvalid"}
# Token errors that will not go away by themselves: a wrong secret, client or tenant.
REFUSED = ("invalid_client", "unauthorized_client", "invalid_request", "invalid_tenant", "tenant_not_found")


class GraphError(Exception):
    """Graph answered with an error status."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}" if code else f"HTTP {status}")
        self.status = status
        self.code = code
        self.retry_after = retry_after


class GraphAuthError(Exception):
    """No token could be had from the identity platform."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


# What a lost connection, an unhappy server or a refused sign-in raises.
FAILURES = (requests.RequestException, GraphError, GraphAuthError)


class _Session(requests.Session):
    """A session whose every request has a timeout and the configured TLS verification.

    A `verify` given per request is needed: requests lets REQUESTS_CA_BUNDLE
    in the environment override the session's own. MSAL is handed this
    session too, so the sign-in goes the same way.
    """

    def __init__(self, timeout: float, verify: bool | str) -> None:
        super().__init__()
        self.timeout = timeout
        self.tls_verify = verify

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        if self.tls_verify is not True:
            kwargs.setdefault("verify", self.tls_verify)
        return super().request(method, url, **kwargs)


class GraphClient:
    """HTTP to Graph with an app-only token: the part the source and the sender share."""

    def __init__(
        self,
        *,
        tenant: str,
        client_id: str,
        client_secret: str,
        mailbox: str,
        authority: str = AUTHORITY,
        graph_url: str = GRAPH_URL,
        timeout: float = 60.0,
        verify: bool | str = True,
        retry_after_cap: float = 120.0,
        throttle_retries: int = 3,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.mailbox = mailbox
        self.authority = authority.rstrip("/")
        self.graph_url = graph_url.rstrip("/")
        self.timeout = timeout
        self.verify = verify
        self.retry_after_cap = retry_after_cap
        self.throttle_retries = throttle_retries
        self._sleep = sleep
        self.session = _Session(timeout, verify)
        self._app: msal.ConfidentialClientApplication | None = None

    @property
    def user(self) -> str:
        return f"/users/{quote(self.mailbox, safe='@')}"

    def token(self, fresh: bool = False) -> str:
        app = self._application()
        if fresh:
            app.remove_tokens_for_client()
        result = app.acquire_token_for_client(scopes=SCOPES)
        if "access_token" not in result:
            raise GraphAuthError(result.get("error", "no_token"), " ".join(str(result.get("error_description", "")).split()))
        return result["access_token"]

    def _application(self) -> msal.ConfidentialClientApplication:
        """MSAL's client, made on first use: making it fetches the tenant's OpenID configuration."""
        if self._app is None:
            host = urlparse(self.authority).hostname or ""
            # Authority validation and instance discovery only know Microsoft's own hosts.
            known = host in msal.authority.WELL_KNOWN_AUTHORITY_HOSTS
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id,
                    authority=f"{self.authority}/{self.tenant}",
                    client_credential=self.client_secret,
                    validate_authority=known,
                    instance_discovery=None if known else False,
                    http_client=self.session,
                )
            except ValueError as error:  # MSAL's word for an authority or tenant it cannot use
                raise GraphAuthError("invalid_tenant", str(error)) from error
        return self._app

    def request(
        self, method: str, path: str, *, before_send: Callable[[], None] | None = None, **kwargs: Any
    ) -> requests.Response:
        """One Graph call, with one new token after a 401 and waits for short Retry-Afters.

        `path` is under the Graph URL, or a whole URL (an `@odata.nextLink`).
        Network errors are raised; any other answer is returned.
        """
        url = path if path.startswith("https://") else self.graph_url + path
        headers = dict(kwargs.pop("headers", None) or {})
        refreshed = fresh = False
        throttled = 0
        while True:
            headers["Authorization"] = f"Bearer {self.token(fresh)}"
            fresh = False
            if before_send is not None:
                before_send()
            response = self.session.request(method, url, headers=headers, **kwargs)
            if response.status_code == 401 and not refreshed:
                log.info("%s %s: token refused (%s); getting a new one", method, url, _error_code(response))
                refreshed = fresh = True
                continue
            if response.status_code in THROTTLED:
                delay = retry_after(response)
                if delay is not None and delay <= self.retry_after_cap and throttled < self.throttle_retries:
                    throttled += 1
                    log.info("%s %s: HTTP %s, retrying after %s s as asked", method, url, response.status_code, delay)
                    self._sleep(delay)
                    continue
            return response

    def check(self, response: requests.Response, *expected: int) -> requests.Response:
        if response.status_code not in expected:
            raise GraphError(response.status_code, _error_code(response), _error_message(response), retry_after(response))
        return response

    def close(self) -> None:
        self.session.close()


class GraphSource(PollingSource):
    """The inbox of a Microsoft 365 mailbox as a source."""

    def __init__(
        self,
        *,
        tenant: str,
        client_id: str,
        client_secret: str,
        mailbox: str,
        authority: str = AUTHORITY,
        graph_url: str = GRAPH_URL,
        state: Path | None = None,
        processed: str = PROCESSED,
        quarantine: str = QUARANTINE,
        timeout: float = 60.0,
        poll_interval: float = 60.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 120.0,
        verify: bool | str = True,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        super().__init__(sleep)
        self.graph = GraphClient(
            tenant=tenant, client_id=client_id, client_secret=client_secret, mailbox=mailbox,
            authority=authority, graph_url=graph_url, timeout=timeout, verify=verify,
            retry_after_cap=backoff_cap, sleep=self._sleep,
        )
        self.processed = processed
        self.quarantine = quarantine
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._backoff = Backoff(backoff_base, backoff_cap, self._sleep)
        self._folders: dict[str, str] = {}
        self._state = DeltaState.load(state)

    # The source protocol.

    def fetch_new(self) -> Iterator[Fetched]:
        """Yield the inbox's unmoved messages by receivedDateTime, oldest first, each with its MIME as stored."""
        with self._talking("reading the inbox's changes"):
            self._delta()
        for message_id in self._state.oldest_first():
            with self._talking(f"fetching message {message_id}"):
                response = self.graph.request("GET", f"{self.graph.user}/messages/{quote(message_id, safe='')}/$value")
                if response.status_code == 404:
                    log.info("message %s left the inbox before it could be fetched", message_id)
                    self._state.moved(message_id)
                    continue
                raw = self.graph.check(response, 200).content
            yield Fetched(ref=message_id, raw=raw)

    def close(self) -> None:
        self.graph.close()

    # Talking to Graph.

    @contextmanager
    def _talking(self, doing: str) -> Iterator[None]:
        """Turn every failure into SourceError; after one, the next call first waits (capped, doubling)."""
        self._backoff.pause()
        try:
            yield
        except FAILURES as error:
            if isinstance(error, GraphAuthError) and error.code in REFUSED:
                self._backoff.refused()
                log.error("%s: the identity platform refused the sign-in (%s); check tenant, client_id and the secret", doing, error)
            else:
                asked = error.retry_after if isinstance(error, GraphError) else None
                self._backoff.failed(at_least=asked or 0.0)
                log.warning("%s in %s: %s: %s", doing, self.graph.mailbox, type(error).__name__, error)
            raise SourceError(f"{doing} in {self.graph.mailbox}: {error}") from error
        else:
            self._backoff.succeeded()

    def _delta(self) -> None:
        """One round of the inbox's delta query, from the saved delta link; afresh if Graph no longer knows it."""
        resuming = self._state.delta_link is not None
        try:
            arrived, removed, link = self._delta_round(self._state.delta_link)
        except GraphError as error:
            if not resuming or not (error.status == 410 or error.code.lower() in RESYNC_CODES):
                raise
            log.info("Graph no longer knows the inbox's delta link (%s); listing the inbox afresh", error)
            resuming = False
            arrived, removed, link = self._delta_round(None)
        self._state.advance(arrived, removed, link, full=not resuming)

    def _delta_round(self, link: str | None) -> tuple[dict[str, str], set[str], str]:
        """Every page of a delta round: what is (still) there with its receivedDateTime, what left, and the next delta link."""
        arrived: dict[str, str] = {}
        removed: set[str] = set()
        url = link or f"{self.graph.user}/mailFolders/inbox/messages/delta"
        params: dict[str, str] | None = None if link else {"$select": "id,receivedDateTime"}
        while True:
            response = self.graph.request("GET", url, params=params, headers={"Prefer": f"odata.maxpagesize={PAGE_SIZE}"})
            page = self.graph.check(response, 200).json()
            for item in page.get("value", []):
                if "@removed" in item:
                    arrived.pop(item["id"], None)
                    removed.add(item["id"])
                else:
                    arrived[item["id"]] = item.get("receivedDateTime") or ""
                    removed.discard(item["id"])
            if "@odata.deltaLink" in page:
                return arrived, removed, page["@odata.deltaLink"]
            url, params = page["@odata.nextLink"], None

    def _folder(self, name: str) -> str:
        """The id of the folder `name` under the mailbox root, made if missing."""
        if name not in self._folders:
            found = self._find_folder(name)
            if found is None:
                response = self.graph.request("POST", f"{self.graph.user}/mailFolders", json={"displayName": name})
                if response.status_code == 409:  # made meanwhile by someone else
                    found = self._find_folder(name)
                else:
                    found = self.graph.check(response, 201, 200).json()["id"]
                    log.info("created the folder %s in %s", name, self.graph.mailbox)
            if found is None:
                raise GraphError(409, "ErrorFolderExists", f"{name} exists but cannot be found")
            self._folders[name] = found
        return self._folders[name]

    def _find_folder(self, name: str) -> str | None:
        literal = name.replace("'", "''")
        response = self.graph.request(
            "GET", f"{self.graph.user}/mailFolders",
            params={"$filter": f"displayName eq '{literal}'", "$select": "id,displayName"},
        )
        found = [f for f in self.graph.check(response, 200).json().get("value", []) if f.get("displayName") == name]
        return found[0]["id"] if found else None

    def _move(self, ref: str, folder: str) -> None:
        with self._talking(f"moving {ref} to {folder}"):
            destination = self._folder(folder)
            response = self.graph.request(
                "POST", f"{self.graph.user}/messages/{quote(ref, safe='')}/move", json={"destinationId": destination}
            )
            if response.status_code == 404:
                # The message is gone (moved before a crash) or the folder is (deleted by someone):
                # forget the folder; the message stays pending, so the next fetch finds out which.
                self._folders.pop(folder, None)
                log.warning("not moving %s to %s: %s", ref, folder, _error_message(response))
                return
            self.graph.check(response, 201, 200)
            log.debug("moved %s to %s", ref, folder)
            self._state.moved(ref)


class DeltaState:
    """What the source knows of the inbox between delta rounds: the delta link, and the ids it holds that were not moved yet.

    Saved whole (to a temporary file, then renamed over the old one) after
    every change, so a crash leaves the old state or the new, never half.
    """

    def __init__(self, path: Path | None, delta_link: str | None = None, pending: dict[str, str] | None = None) -> None:
        self.path = path
        self.delta_link = delta_link
        self.pending = pending or {}

    @classmethod
    def load(cls, path: Path | None) -> "DeltaState":
        if path is None or not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, data["delta_link"], dict(data["pending"]))
        except (ValueError, KeyError, TypeError) as error:
            log.warning("%s is unreadable (%s); the inbox will be listed afresh", path, error)
            return cls(path)

    def oldest_first(self) -> list[str]:
        return sorted(self.pending, key=lambda message_id: self.pending[message_id])

    def advance(self, arrived: dict[str, str], removed: set[str], link: str, full: bool) -> None:
        """A delta round ended; a full one lists the whole inbox, so it replaces what was pending."""
        pending = {} if full else {k: v for k, v in self.pending.items() if k not in removed}
        pending.update(arrived)
        self.pending, self.delta_link = pending, link
        self._save()

    def moved(self, message_id: str) -> None:
        if self.pending.pop(message_id, None) is not None:
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")  # the store's own naming, which its tools pass over
        with temporary.open("w", encoding="utf-8") as file:
            json.dump({"delta_link": self.delta_link, "pending": self.pending}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)


class GraphSender:
    """Sends envelopes as the shared mailbox with `sendMail`, the MIME as base64 text.

    Graph takes the recipients from the message's headers; an envelope
    recipient missing from To, Cc and Bcc is added as Bcc. A copy is saved to
    Sent Items, as Outlook would. Graph refuses requests over 4 MB, so a
    message over about 3 MB fails permanently.
    """

    def __init__(
        self,
        *,
        tenant: str,
        client_id: str,
        client_secret: str,
        mailbox: str,
        authority: str = AUTHORITY,
        graph_url: str = GRAPH_URL,
        timeout: float = 60.0,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.graph = GraphClient(
            tenant=tenant, client_id=client_id, client_secret=client_secret, mailbox=mailbox,
            authority=authority, graph_url=graph_url, timeout=timeout, verify=verify, sleep=sleep,
        )

    def send_batch(
        self, envelopes: Iterable[Envelope], committing: Callable[[str], None] | None = None
    ) -> Iterator[Delivery]:
        """Send each envelope, stopping the batch at the first failure that is not the message's own."""
        for envelope in envelopes:
            delivery, go_on = self._send(envelope, committing)
            yield delivery
            if not go_on:
                return

    def _send(self, envelope: Envelope, committing: Callable[[str], None] | None) -> tuple[Delivery, bool]:
        mid = envelope.message_id
        body = base64.b64encode(with_bcc(envelope.data, envelope.recipients)).decode("ascii")
        try:
            response = self.graph.request(
                "POST", f"{self.graph.user}/sendMail", data=body, headers={"Content-Type": "text/plain"},
                before_send=(lambda: committing(mid)) if committing else None,
            )
        except requests.RequestException as error:
            return Delivery(mid, ok=False, error=f"{self.graph.graph_url}: {type(error).__name__}: {error}"), False
        except GraphAuthError as error:
            return Delivery(mid, ok=False, error=f"no token: {error}"), False
        status = response.status_code
        if status in (200, 202):
            return Delivery(mid, ok=True), True
        problem = f"HTTP {status} {_error_code(response)}: {_error_message(response)}"
        if status in (401, 403) or status == 429 or status >= 500:
            # Throttled, unwell, or not (yet) allowed to send: nothing about this message; the next ones would fare the same.
            return Delivery(mid, ok=False, error=problem), False
        return Delivery(mid, ok=False, permanent=True, error=problem), True

    def close(self) -> None:
        self.graph.close()


def with_bcc(data: bytes, recipients: tuple[str, ...]) -> bytes:
    """The message, with a Bcc header for any recipient its headers do not name."""
    headers = BytesHeaderParser().parsebytes(data)
    named = {address.lower() for _, address in getaddresses([str(v) for k in ("To", "Cc", "Bcc") for v in headers.get_all(k, [])])}
    missing = [r for r in recipients if r.lower() not in named]
    if not missing:
        return data
    return b"Bcc: " + ", ".join(missing).encode() + b"\r\n" + data


def retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds (Graph sends seconds; an HTTP date is understood too)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _error(response: requests.Response) -> dict:
    try:
        found = response.json().get("error", {})
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {"code": str(found)}


def _error_code(response: requests.Response) -> str:
    return str(_error(response).get("code", ""))


def _error_message(response: requests.Response) -> str:
    return " ".join(str(_error(response).get("message", response.reason or "")).split())

"""A small Exchange Server for the tests: EWS SOAP over HTTP on 127.0.0.1, one mailbox.

It answers the operations the EWS source and sender use, in the shapes the
EWS reference documents (messages namespace for the response envelope,
types namespace for items and folders, a SOAP fault with BackOffMilliseconds
for throttling), so that exchangelib talks to it unmodified:

- ConvertId (exchangelib's version probe: answered with an error, as a real
  server does for a dummy id; the version is in the ServerVersionInfo header
  of every response),
- GetFolder (distinguished ids root, msgfolderroot, inbox, sentitems, or a FolderId),
- FindFolder (shallow, with an IsEqualTo restriction on folder:DisplayName),
- CreateFolder,
- FindItem (IndexedPageItemView paging; SortOrder on item:DateTimeReceived; without
  one, newest first as Exchange does),
- GetItem with MimeContent (base64),
- MoveItem (the moved item gets a new id, as in Exchange),
- CreateItem with MessageDisposition SendOnly / SendAndSaveCopy (recorded in `sent`),
- Subscribe (PullSubscriptionRequest), GetEvents and Unsubscribe: each
  subscription queues the events of its folders (CreatedEvent and
  NewMailEvent on delivery, MovedEvent on MoveItem) under increasing
  watermarks; GetEvents returns those after the watermark it is given (50 at
  most, MoreEvents if there are more) or a StatusEvent when there are none,
- SyncFolderItems: a sync state names what the client has seen; the answer
  lists Create and Delete changes since (MaxChangesReturned at a time,
  IncludesLastItemInRange false while there are more).

Authentication is HTTP Basic: a request without credentials gets a 401 with
`WWW-Authenticate: Basic`, wrong credentials a 401. With `oauth=True` it is
a bearer token instead, issued by the identity platform's v2.0 token
endpoint, which the double also serves (`authority`), for the scope
`https://127.0.0.1/.default`; `authorizations` records what each request
carried.

Faults on demand: `busy(count, back_off_ms)` answers the next requests with
ErrorServerBusy; `drop(count)` reads the next requests and closes the
connection without a word (both spare exchangelib's ConvertId version
probe, which swallows errors); `refuse_sends(code)` answers CreateItem with an
error response message; `expire_subscriptions()` makes the next GetEvents of
every subscription answer ErrorExpiredSubscription (and later ones
ErrorSubscriptionNotFound: the server has forgotten it); `refuse_subscriptions()`
answers Subscribe as Exchange does for a delegate it will not notify;
`forget_sync_states()` makes the next SyncFolderItems answer ErrorInvalidSyncStateData.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from graph_double import TENANT, token_answer

S = "http://schemas.xmlsoap.org/soap/envelope/"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"

HEADER = (
    f'<s:Header><h:ServerVersionInfo xmlns:h="{T}" MajorVersion="15" MinorVersion="1" '
    'MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"/></s:Header>'
)


@dataclass
class FolderRecord:
    id: str
    name: str
    parent: str | None
    distinguished: str | None = None
    folder_class: str | None = "IPF.Note"
    changekey: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


@dataclass
class ItemRecord:
    id: str
    folder: str
    mime: bytes
    received: int
    changekey: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


@dataclass
class Subscription:
    id: str
    folders: set[str]
    event_types: set[str]
    events: list[tuple[int, str]] = field(default_factory=list)  # (watermark number, the event's XML)
    expired: bool = False


@dataclass
class Sent:
    disposition: str
    mime: bytes
    bcc: list[str]
    saved_in: str | None


class ExchangeDouble:
    """One mailbox behind an EWS endpoint; start it with `start()`, stop it with `stop()`."""

    def __init__(self, username: str = "OFFICE\\meeting", password: str = "secret", oauth: bool = False) -> None:
        self.username = username
        self.password = password
        self.oauth = oauth
        self.tokens: set[str] = set()
        self.authorizations: list[str] = []
        self.lock = threading.RLock()
        self.folders: dict[str, FolderRecord] = {}
        self.items: dict[str, ItemRecord] = {}
        self.sent: list[Sent] = []
        self.operations: list[str] = []
        self._clock = itertools.count(1)
        self._busy: list[int] = []  # back-off milliseconds, one per request to refuse
        self._drops = 0
        self._refuse_sends: str | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self._watermarks = itertools.count(1)
        self._refuse_subscriptions = False
        self.sync_states: dict[str, frozenset[str]] = {}
        root = self._add_folder("Root", None, "root", None)
        top = self._add_folder("Top of Information Store", root.id, "msgfolderroot", None)
        self._add_folder("Inbox", top.id, "inbox")
        self._add_folder("Sent Items", top.id, "sentitems")
        self._add_folder("Drafts", top.id, "drafts")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.authority = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.authority}/EWS/Exchange.asmx"

    # Control from the tests.

    def start(self) -> "ExchangeDouble":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def deliver(self, raw: bytes) -> str:
        """A message arrives in the inbox; returns its item id."""
        with self.lock:
            item = ItemRecord(id=_new_id(), folder=self.distinguished("inbox").id, mime=raw, received=next(self._clock))
            self.items[item.id] = item
            for event_type in ("CreatedEvent", "NewMailEvent"):
                self._event(event_type, item)
            return item.id

    def messages(self, folder: str = "Inbox") -> list[bytes]:
        """The raw messages in a folder (by display name), oldest first."""
        with self.lock:
            found = [f for f in self.folders.values() if f.name == folder]
            if not found:
                return []
            return [i.mime for i in sorted(self.items.values(), key=lambda i: i.received) if i.folder == found[0].id]

    def folder_names(self) -> list[str]:
        with self.lock:
            return [f.name for f in self.folders.values()]

    def busy(self, count: int = 1, back_off_ms: int = 1500) -> None:
        with self.lock:
            self._busy += [back_off_ms] * count

    def drop(self, count: int = 1) -> None:
        with self.lock:
            self._drops += count

    def refuse_sends(self, code: str | None) -> None:
        with self.lock:
            self._refuse_sends = code

    def expire_subscriptions(self) -> None:
        with self.lock:
            for subscription in self.subscriptions.values():
                subscription.expired = True

    def refuse_subscriptions(self) -> None:
        with self.lock:
            self._refuse_subscriptions = True

    def forget_sync_states(self) -> None:
        with self.lock:
            self.sync_states.clear()

    def distinguished(self, name: str) -> FolderRecord:
        return next(f for f in self.folders.values() if f.distinguished == name)

    # The mailbox.

    def _add_folder(self, name: str, parent: str | None, distinguished: str | None = None, folder_class: str | None = "IPF.Note") -> FolderRecord:
        folder = FolderRecord(id=_new_id(), name=name, parent=parent, distinguished=distinguished, folder_class=folder_class)
        self.folders[folder.id] = folder
        return folder

    def _event(self, event_type: str, item: ItemRecord, old: ItemRecord | None = None) -> None:
        """Queue an event for every subscription that watches the item's folder (or, for a move, the one it left)."""
        folders = {item.folder} | ({old.folder} if old else set())
        for subscription in self.subscriptions.values():
            if subscription.folders & folders and event_type in subscription.event_types and not subscription.expired:
                number = next(self._watermarks)
                parent = self.folders[item.folder]
                xml = (
                    f"<t:{event_type}><t:Watermark>{_watermark(number)}</t:Watermark><t:TimeStamp>2026-12-01T02:00:00Z</t:TimeStamp>"
                    f'<t:ItemId Id="{item.id}" ChangeKey="{item.changekey}"/><t:ParentFolderId Id="{parent.id}" ChangeKey="{parent.changekey}"/>'
                )
                if old:
                    left = self.folders[old.folder]
                    xml += f'<t:OldItemId Id="{old.id}" ChangeKey="{old.changekey}"/><t:OldParentFolderId Id="{left.id}" ChangeKey="{left.changekey}"/>'
                subscription.events.append((number, xml + f"</t:{event_type}>"))

    def _resolve_folder(self, element: ET.Element) -> FolderRecord | None:
        if element.tag == f"{{{T}}}DistinguishedFolderId":
            return next((f for f in self.folders.values() if f.distinguished == element.get("Id")), None)
        return self.folders.get(element.get("Id", ""))

    # HTTP.

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if double.oauth and self.path == f"/{TENANT}/oauth2/v2.0/token":
                    with double.lock:
                        status, answer = token_answer(parse_qs(body.decode()), "https://127.0.0.1/.default", double.tokens)
                    self._reply(status, json.dumps(answer).encode(), {"Content-Type": "application/json"})
                    return
                given = self.headers.get("Authorization", "")
                double.authorizations.append(given)
                if double.oauth:
                    if given.removeprefix("Bearer ") not in double.tokens:
                        self._reply(401, b"", {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
                        return
                elif given != "Basic " + base64.b64encode(f"{double.username}:{double.password}".encode()).decode():
                    self._reply(401, b"", {"WWW-Authenticate": 'Basic realm="127.0.0.1"'})
                    return
                probe = b"ConvertId" in body  # exchangelib's version probe; faults are kept for mailbox operations
                with double.lock:
                    if double._drops and not probe:
                        double._drops -= 1
                        self.close_connection = True
                        try:
                            self.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        return
                    busy = double._busy.pop(0) if double._busy and not probe else None
                if busy is not None:
                    self._reply(500, _server_busy(busy))
                    return
                status, text = double.answer(body)
                self._reply(status, text.encode("utf-8"))

            def _reply(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                headers = headers or {}
                if data and "Content-Type" not in headers:
                    self.send_header("Content-Type", "text/xml; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    # SOAP.

    def answer(self, body: bytes) -> tuple[int, str]:
        envelope = ET.fromstring(body)
        request = envelope.find(f"{{{S}}}Body")[0]
        operation = request.tag.rpartition("}")[2]
        with self.lock:
            self.operations.append(operation)
            handler = getattr(self, f"_op_{operation}", None)
            if handler is None:
                return 500, _fault("a:ErrorInvalidRequest", f"the test double does not implement {operation}")
            messages = handler(request)
        return 200, _envelope(
            f'<m:{operation}Response xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages>{"".join(messages)}'
            f"</m:ResponseMessages></m:{operation}Response>"
        )

    def _op_ConvertId(self, request: ET.Element) -> list[str]:
        return [_error("ConvertId", "ErrorInvalidIdMalformed", "Id is malformed.")]

    def _op_GetFolder(self, request: ET.Element) -> list[str]:
        out = []
        for element in request.find(f"{{{M}}}FolderIds"):
            folder = self._resolve_folder(element)
            if folder is None:
                out.append(_error("GetFolder", "ErrorFolderNotFound", "The specified folder could not be found in the store."))
            else:
                out.append(_success("GetFolder", f"<m:Folders>{self._folder_xml(folder)}</m:Folders>"))
        return out

    def _op_FindFolder(self, request: ET.Element) -> list[str]:
        out = []
        wanted = None
        constant = request.find(f"{{{M}}}Restriction/{{{T}}}IsEqualTo/{{{T}}}FieldURIOrConstant/{{{T}}}Constant")
        uri = request.find(f"{{{M}}}Restriction/{{{T}}}IsEqualTo/{{{T}}}FieldURI")
        if constant is not None and uri is not None and uri.get("FieldURI") == "folder:DisplayName":
            wanted = constant.get("Value")
        for element in request.find(f"{{{M}}}ParentFolderIds"):
            parent = self._resolve_folder(element)
            if parent is None:
                out.append(_error("FindFolder", "ErrorFolderNotFound", "The specified folder could not be found in the store."))
                continue
            children = [f for f in self.folders.values() if f.parent == parent.id and (wanted is None or f.name == wanted)]
            out.append(_success(
                "FindFolder",
                f'<m:RootFolder IndexedPagingOffset="{len(children)}" TotalItemsInView="{len(children)}" IncludesLastItemInRange="true">'
                f"<t:Folders>{''.join(self._folder_xml(f) for f in children)}</t:Folders></m:RootFolder>",
            ))
        return out

    def _op_CreateFolder(self, request: ET.Element) -> list[str]:
        parent = self._resolve_folder(request.find(f"{{{M}}}ParentFolderId")[0])
        out = []
        for element in request.find(f"{{{M}}}Folders"):
            name = element.findtext(f"{{{T}}}DisplayName", "")
            if parent is None:
                out.append(_error("CreateFolder", "ErrorParentFolderNotFound", "The parent folder could not be found."))
            elif any(f.parent == parent.id and f.name == name for f in self.folders.values()):
                out.append(_error("CreateFolder", "ErrorFolderExists", "A folder with the specified name already exists."))
            else:
                folder = self._add_folder(name, parent.id, folder_class=element.findtext(f"{{{T}}}FolderClass") or "IPF.Note")
                out.append(_success(
                    "CreateFolder",
                    f'<m:Folders><t:Folder><t:FolderId Id="{folder.id}" ChangeKey="{folder.changekey}"/></t:Folder></m:Folders>',
                ))
        return out

    def _op_FindItem(self, request: ET.Element) -> list[str]:
        view = request.find(f"{{{M}}}IndexedPageItemView")
        limit = int(view.get("MaxEntriesReturned", "1000")) if view is not None else 1000
        offset = int(view.get("Offset", "0")) if view is not None else 0
        order = request.find(f"{{{M}}}SortOrder/{{{T}}}FieldOrder")
        ascending = (
            order is not None
            and order.get("Order") == "Ascending"
            and order.find(f"{{{T}}}FieldURI").get("FieldURI") == "item:DateTimeReceived"
        )
        out = []
        for element in request.find(f"{{{M}}}ParentFolderIds"):
            folder = self._resolve_folder(element)
            if folder is None:
                out.append(_error("FindItem", "ErrorFolderNotFound", "The specified folder could not be found in the store."))
                continue
            items = sorted((i for i in self.items.values() if i.folder == folder.id), key=lambda i: i.received, reverse=not ascending)
            page = items[offset : offset + limit]
            last = offset + len(page) >= len(items)
            out.append(_success(
                "FindItem",
                f'<m:RootFolder IndexedPagingOffset="{offset + len(page)}" TotalItemsInView="{len(items)}" '
                f'IncludesLastItemInRange="{"true" if last else "false"}"><t:Items>'
                + "".join(f'<t:Message><t:ItemId Id="{i.id}" ChangeKey="{i.changekey}"/></t:Message>' for i in page)
                + "</t:Items></m:RootFolder>",
            ))
        return out

    def _op_GetItem(self, request: ET.Element) -> list[str]:
        fields = {f.get("FieldURI") for f in request.iter(f"{{{T}}}FieldURI")}
        out = []
        for element in request.find(f"{{{M}}}ItemIds"):
            item = self.items.get(element.get("Id", ""))
            if item is None:
                out.append(_error("GetItem", "ErrorItemNotFound", "The specified object was not found in the store."))
                continue
            mime = ""
            if "item:MimeContent" in fields:
                mime = f'<t:MimeContent CharacterSet="UTF-8">{base64.b64encode(item.mime).decode()}</t:MimeContent>'
            out.append(_success(
                "GetItem",
                f'<m:Items><t:Message>{mime}<t:ItemId Id="{item.id}" ChangeKey="{item.changekey}"/></t:Message></m:Items>',
            ))
        return out

    def _op_MoveItem(self, request: ET.Element) -> list[str]:
        target = self._resolve_folder(request.find(f"{{{M}}}ToFolderId")[0])
        out = []
        for element in request.find(f"{{{M}}}ItemIds"):
            item = self.items.get(element.get("Id", ""))
            if target is None:
                out.append(_error("MoveItem", "ErrorFolderNotFound", "The specified folder could not be found in the store."))
            elif item is None:
                out.append(_error("MoveItem", "ErrorItemNotFound", "The specified object was not found in the store."))
            else:
                del self.items[item.id]
                moved = ItemRecord(id=_new_id(), folder=target.id, mime=item.mime, received=item.received)
                self.items[moved.id] = moved
                self._event("MovedEvent", moved, old=item)
                out.append(_success("MoveItem", f'<m:Items><t:Message><t:ItemId Id="{moved.id}" ChangeKey="{moved.changekey}"/></t:Message></m:Items>'))
        return out

    def _op_CreateItem(self, request: ET.Element) -> list[str]:
        disposition = request.get("MessageDisposition", "SaveOnly")
        saved = request.find(f"{{{M}}}SavedItemFolderId")
        saved_in = self._resolve_folder(saved[0]) if saved is not None else None
        out = []
        for element in request.find(f"{{{M}}}Items"):
            mime = base64.b64decode(element.findtext(f"{{{T}}}MimeContent", ""))
            bcc = [a.text or "" for a in element.iterfind(f"{{{T}}}BccRecipients/{{{T}}}Mailbox/{{{T}}}EmailAddress")]
            if self._refuse_sends:
                out.append(_error("CreateItem", self._refuse_sends, "The message was refused."))
                continue
            if disposition not in ("SendOnly", "SendAndSaveCopy"):
                out.append(_error("CreateItem", "ErrorInvalidRequest", "this double only sends"))
                continue
            self.sent.append(Sent(disposition, mime, bcc, saved_in.name if saved_in else None))
            if disposition == "SendAndSaveCopy":
                folder = saved_in or self.distinguished("sentitems")
                copy = ItemRecord(id=_new_id(), folder=folder.id, mime=mime, received=next(self._clock))
                self.items[copy.id] = copy
            out.append(_success("CreateItem", "<m:Items/>"))
        return out

    def _op_Subscribe(self, request: ET.Element) -> list[str]:
        pull = request.find(f"{{{M}}}PullSubscriptionRequest")
        if self._refuse_subscriptions:
            return [_error("Subscribe", "ErrorSubscriptionDelegateAccessNotSupported", "Subscriptions are not supported for delegate user access.")]
        if pull is None:
            return [_error("Subscribe", "ErrorInvalidSubscriptionRequest", "this double only has pull subscriptions")]
        folders = [self._resolve_folder(element) for element in pull.find(f"{{{T}}}FolderIds")]
        if None in folders:
            return [_error("Subscribe", "ErrorFolderNotFound", "The specified folder could not be found in the store.")]
        subscription = Subscription(
            id=str(uuid.uuid4()),
            folders={f.id for f in folders},
            event_types={e.text or "" for e in pull.iter(f"{{{T}}}EventType")},
        )
        self.subscriptions[subscription.id] = subscription
        number = next(self._watermarks)
        return [_success("Subscribe", f"<m:SubscriptionId>{subscription.id}</m:SubscriptionId><m:Watermark>{_watermark(number)}</m:Watermark>")]

    def _op_GetEvents(self, request: ET.Element) -> list[str]:
        subscription = self.subscriptions.get(request.findtext(f"{{{M}}}SubscriptionId", ""))
        after = _watermark_number(request.findtext(f"{{{M}}}Watermark", ""))
        if subscription is None:
            return [_error("GetEvents", "ErrorSubscriptionNotFound", "The specified subscription was not found.")]
        if subscription.expired:
            del self.subscriptions[subscription.id]
            return [_error("GetEvents", "ErrorExpiredSubscription", "The subscription has expired.")]
        if after is None:
            return [_error("GetEvents", "ErrorInvalidWatermark", "The watermark used for creating this subscription was not recognized.")]
        waiting = [(number, xml) for number, xml in subscription.events if number > after]
        events = "".join(xml for _, xml in waiting[:50]) or f"<t:StatusEvent><t:Watermark>{_watermark(after)}</t:Watermark></t:StatusEvent>"
        return [_success(
            "GetEvents",
            f"<m:Notification><t:SubscriptionId>{subscription.id}</t:SubscriptionId><t:PreviousWatermark>{_watermark(after)}</t:PreviousWatermark>"
            f"<t:MoreEvents>{'true' if len(waiting) > 50 else 'false'}</t:MoreEvents>{events}</m:Notification>",
        )]

    def _op_Unsubscribe(self, request: ET.Element) -> list[str]:
        if self.subscriptions.pop(request.findtext(f"{{{M}}}SubscriptionId", ""), None) is None:
            return [_error("Unsubscribe", "ErrorSubscriptionNotFound", "The specified subscription was not found.")]
        return [_success("Unsubscribe", "")]

    def _op_SyncFolderItems(self, request: ET.Element) -> list[str]:
        folder = self._resolve_folder(request.find(f"{{{M}}}SyncFolderId")[0])
        state = request.findtext(f"{{{M}}}SyncState")
        if folder is None:
            return [_error("SyncFolderItems", "ErrorFolderNotFound", "The specified folder could not be found in the store.")]
        if state is not None and state not in self.sync_states:
            return [_error(
                "SyncFolderItems", "ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid.",
                "<m:SyncState /><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>",
            )]
        seen = set(self.sync_states.get(state or "", frozenset()))
        now = sorted((i for i in self.items.values() if i.folder == folder.id), key=lambda i: i.received)
        changes = [("Delete", item_id) for item_id in sorted(seen - {i.id for i in now})] + [("Create", i.id) for i in now if i.id not in seen]
        limit = int(request.findtext(f"{{{M}}}MaxChangesReturned", "512"))
        xml = []
        for kind, item_id in changes[:limit]:
            if kind == "Delete":
                seen.discard(item_id)
                xml.append(f'<t:Delete><t:ItemId Id="{item_id}"/></t:Delete>')
            else:
                seen.add(item_id)
                xml.append(f'<t:Create><t:Message><t:ItemId Id="{item_id}" ChangeKey="{self.items[item_id].changekey}"/></t:Message></t:Create>')
        token = base64.b64encode(uuid.uuid4().bytes).decode()
        self.sync_states[token] = frozenset(seen)
        return [_success(
            "SyncFolderItems",
            f"<m:SyncState>{token}</m:SyncState><m:IncludesLastItemInRange>{'true' if len(changes) <= limit else 'false'}"
            f"</m:IncludesLastItemInRange><m:Changes>{''.join(xml)}</m:Changes>",
        )]

    def _folder_xml(self, folder: FolderRecord) -> str:
        parent = self.folders.get(folder.parent or "")
        children = sum(1 for f in self.folders.values() if f.parent == folder.id)
        total = sum(1 for i in self.items.values() if i.folder == folder.id)
        return (
            f'<t:Folder><t:FolderId Id="{folder.id}" ChangeKey="{folder.changekey}"/>'
            + (f'<t:ParentFolderId Id="{parent.id}" ChangeKey="{parent.changekey}"/>' if parent else "")
            + (f"<t:FolderClass>{folder.folder_class}</t:FolderClass>" if folder.folder_class else "")
            + f"<t:DisplayName>{escape(folder.name)}</t:DisplayName><t:TotalCount>{total}</t:TotalCount>"
            f"<t:ChildFolderCount>{children}</t:ChildFolderCount><t:UnreadCount>0</t:UnreadCount></t:Folder>"
        )


def _new_id() -> str:
    return base64.b64encode(b"AAMk" + uuid.uuid4().bytes).decode()


def _watermark(number: int) -> str:
    return base64.b64encode(number.to_bytes(8, "little") + b"\x01").decode()


def _watermark_number(text: str) -> int | None:
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return int.from_bytes(data[:8], "little") if len(data) == 9 else None


def _envelope(body: str) -> str:
    return f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}">{HEADER}<s:Body>{body}</s:Body></s:Envelope>'


def _success(operation: str, content: str) -> str:
    return (
        f'<m:{operation}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
        f"{content}</m:{operation}ResponseMessage>"
    )


def _error(operation: str, code: str, text: str, extra: str = "") -> str:
    return (
        f'<m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>{escape(text)}</m:MessageText>'
        f"<m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{extra}"
        f"</m:{operation}ResponseMessage>"
    )


def _fault(code: str, text: str, detail: str = "") -> str:
    return _envelope(
        f'<s:Fault><faultcode xmlns:a="{T}">{code}</faultcode><faultstring xml:lang="en-US">{escape(text)}</faultstring>'
        f"<detail>{detail}</detail></s:Fault>"
    )


def _server_busy(back_off_ms: int) -> bytes:
    text = "The server cannot service this request right now. Try again later."
    return _fault(
        "a:ErrorServerBusy",
        text,
        f'<e:ResponseCode xmlns:e="{E}">ErrorServerBusy</e:ResponseCode><e:Message xmlns:e="{E}">{text}</e:Message>'
        f'<t:MessageXml xmlns:t="{T}"><t:Value Name="BackOffMilliseconds">{back_off_ms}</t:Value></t:MessageXml>',
    ).encode("utf-8")


__all__ = ["ExchangeDouble", "Sent"]

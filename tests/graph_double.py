"""A stand-in for Microsoft's identity platform and Microsoft Graph, on 127.0.0.1 over HTTPS.

It speaks the wire formats Microsoft documents, for the calls the service
makes: the tenant's OpenID configuration and the v2.0 token endpoint
(client-credentials grant), and the Graph mail calls: a folder's message
delta (pages of `Prefer: odata.maxpagesize` through `@odata.nextLink` with a
`$skiptoken`, then `@odata.deltaLink` with a `$deltatoken`; `@removed` entries
for what left; newest first, since Graph guarantees no order; 410 Gone
`SyncStateNotFound` for a token it no longer knows), a message's
MIME (`$value`), `move`, listing (`$filter=displayName eq '…'`) and creating
mail folders, and `sendMail` with a base64 MIME body. It keeps a mailbox in
memory, records every request, and can be told to misbehave: answer 429 with
Retry-After, drop the connection, revoke every token it issued so the next
call gets 401 InvalidAuthenticationToken, or forget its delta tokens.

MSAL insists on an https authority, so the server has a self-signed
certificate made at start; `ca_file` is the file to trust.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import itertools
import json
import re
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "66666666-7777-8888-9999-000000000000"
SECRET = "double-client-secret"


@dataclass
class Message:
    id: str
    folder: str
    raw: bytes
    received: dt.datetime


@dataclass
class Fault:
    method: str
    pattern: re.Pattern
    kind: str  # "429", "503", "drop", "500", "400"
    count: int
    retry_after: int = 1


@dataclass
class Seen:
    at: float
    method: str
    path: str
    status: int
    query: str = ""


@dataclass
class Mailbox:
    address: str
    folders: dict[str, str] = field(default_factory=dict)  # id → displayName, children of the root
    messages: dict[str, Message] = field(default_factory=dict)

    def folder_named(self, name: str) -> str | None:
        return next((fid for fid, n in self.folders.items() if n == name), None)

    def in_folder(self, name: str) -> list[Message]:
        fid = self.folder_named(name)
        return sorted((m for m in self.messages.values() if m.folder == fid), key=lambda m: m.received)


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graph-double")])
    now = dt.datetime.now(dt.timezone.utc)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "double.pem", folder / "double.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_file, key_file


class GraphDouble:
    def __init__(self, mailbox: str) -> None:
        self.mailbox = Mailbox(mailbox)
        self.inbox_id = self._id()
        self.mailbox.folders[self.inbox_id] = "Inbox"
        for name in ("Drafts", "Sent Items", "Deleted Items"):
            self.mailbox.folders[self._id()] = name
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self.tokens_issued = 0
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.sent: list[bytes] = []
        self._clock = itertools.count()
        self.delta_tokens: dict[str, frozenset[str]] = {}  # deltatoken → the folder's ids when it was issued
        self.rounds: dict[str, tuple[list[dict], frozenset[str]]] = {}  # skiptoken → the changes still to page through
        self._folder = tempfile.TemporaryDirectory()
        self.ca_file, key_file = _certificate(Path(self._folder.name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.base = f"https://127.0.0.1:{self.port}"
        self.authority = self.base
        self.graph_url = f"{self.base}/v1.0"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _id(self) -> str:
        return "AAMk" + base64.urlsafe_b64encode(uuid.uuid4().bytes + b"/+").decode()

    def start(self) -> "GraphDouble":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._folder.cleanup()

    # What a test does to the mailbox.

    def deliver(self, raw: bytes, received: dt.datetime | None = None) -> str:
        with self.lock:
            received = received or dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=next(self._clock))
            message = Message(self._id(), self.inbox_id, raw, received)
            self.mailbox.messages[message.id] = message
            return message.id

    def fail(self, method: str, path: str, kind: str, count: int = 1, retry_after: int = 1) -> None:
        """The next `count` requests whose path matches the regex `path` misbehave as `kind`."""
        with self.lock:
            self.faults.append(Fault(method, re.compile(path), kind, count, retry_after))

    def start_round(self, folder: str, seen: frozenset[str]) -> tuple[list[dict], frozenset[str]]:
        """The changes since `seen` (the folder's ids when a delta link was issued), newest first: a delta's order is not guaranteed."""
        now = sorted((m for m in self.mailbox.messages.values() if m.folder == folder), key=lambda m: m.received, reverse=True)
        ids = frozenset(m.id for m in now)
        changes = [{"@odata.type": "#microsoft.graph.message", "id": gone, "@removed": {"reason": "deleted"}} for gone in sorted(seen - ids)]
        changes += [
            {"@odata.type": "#microsoft.graph.message", "@odata.etag": 'W/"CQAAABYAAAB"', "id": m.id,
             "receivedDateTime": m.received.strftime("%Y-%m-%dT%H:%M:%SZ")}
            for m in now if m.id not in seen
        ]
        return changes, ids

    def forget_delta_tokens(self) -> None:
        """Every delta link issued so far answers 410 Gone, as after Exchange Online drops its sync state."""
        with self.lock:
            self.delta_tokens.clear()

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def requests(self, method: str, path: str) -> list[Seen]:
        pattern = re.compile(path)
        return [s for s in self.seen if s.method == method and pattern.search(s.path)]

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.pattern.search(path) and fault.count > 0:
                    fault.count -= 1
                    return fault
        return None


def token_answer(form: dict[str, list[str]], scope: str, tokens: set[str]) -> tuple[int, dict]:
    """The v2.0 token endpoint's answer to a client-credentials request for `scope`, as the identity platform words it.

    A token it issues is added to `tokens`, which the resource server then accepts.
    """
    value = {k: v[0] for k, v in form.items()}
    if value.get("grant_type") != "client_credentials" or value.get("scope") != scope:
        return 400, {"error": "invalid_request", "error_description": "AADSTS900144: The request body must contain the grant_type and scope.", "error_codes": [900144]}
    if value.get("client_id") != CLIENT_ID or value.get("client_secret") != SECRET:
        return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]}
    token = "eyJ0eXAiOiJKV1QiLCJub25jZSI6" + uuid.uuid4().hex
    tokens.add(token)
    return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "innerError": {"date": dt.datetime.now(dt.timezone.utc).isoformat(), "request-id": str(uuid.uuid4())}}}


def _handler(double: GraphDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _reply(self, status: int, body: bytes | dict | None = None, content_type: str = "application/json", headers: dict | None = None) -> None:
            data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
            split = urlsplit(self.path)
            double.seen.append(Seen(time.monotonic(), self.command, unquote(split.path), status, unquote(split.query)))  # before the client can see it
            self.send_response(status)
            if data:
                self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            split = urlsplit(self.path)
            path = unquote(split.path)
            query = {k: v[0] for k, v in parse_qs(split.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fault = double._fault(method, path)
            if fault and fault.kind == "drop":
                double.seen.append(Seen(time.monotonic(), method, path, 0))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault:
                status = int(fault.kind)
                headers = {"Retry-After": str(fault.retry_after)} if status in (429, 503) else {}
                code = {429: "TooManyRequests", 503: "ServiceNotAvailable", 500: "generalException"}.get(status, "ErrorInvalidRequest")
                return self._reply(status, _error(code, "Please retry after the time given." if headers else "The double was told to fail."), headers=headers)
            self._route(method, path, query, body)

        def _route(self, method: str, path: str, query: dict, body: bytes) -> None:
            if path == f"/{TENANT}/v2.0/.well-known/openid-configuration" and method == "GET":
                return self._reply(200, {
                    "issuer": f"{double.base}/{TENANT}/v2.0",
                    "authorization_endpoint": f"{double.base}/{TENANT}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{double.base}/{TENANT}/oauth2/v2.0/token",
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "tenant_region_scope": "AS",
                })
            if path.endswith("/v2.0/.well-known/openid-configuration"):
                return self._reply(400, {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."})
            if path == f"/{TENANT}/oauth2/v2.0/token" and method == "POST":
                return self._token(parse_qs(body.decode()))
            if path.startswith("/v1.0/"):
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token not in double.tokens:
                    return self._reply(401, _error("InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."),
                                       headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
                return self._graph(method, path.removeprefix("/v1.0"), query, body)
            return self._reply(404, _error("UnknownError", "No such endpoint."))

        def _token(self, form: dict) -> None:
            with double.lock:
                status, answer = token_answer(form, "https://graph.microsoft.com/.default", double.tokens)
                double.tokens_issued += status == 200
            return self._reply(status, answer)

        def _delta(self, name: str, query: dict) -> None:
            """A page of a delta round: the first request of a round works out its changes, the rest page through them."""
            box = double.mailbox
            folder = double.inbox_id if name.lower() == "inbox" else name
            if folder not in box.folders:
                return self._reply(404, _error("ErrorItemNotFound", "The specified object was not found in the store."))
            if "$skiptoken" in query:
                round_ = double.rounds.get(query["$skiptoken"])
            elif "$deltatoken" in query:
                seen = double.delta_tokens.get(query["$deltatoken"])
                round_ = None if seen is None else double.start_round(folder, seen)
            else:
                round_ = double.start_round(folder, frozenset())
            if round_ is None:
                return self._reply(410, _error("SyncStateNotFound", "The sync state generation is not found."))
            changes, now = round_
            prefer = re.search(r"odata\.maxpagesize=(\d+)", self.headers.get("Prefer", ""))
            size = int(prefer.group(1)) if prefer else 10
            page, rest = changes[:size], changes[size:]
            link = f"{double.graph_url}/users/{box.address}/mailFolders('{name}')/messages/delta"
            answer = {"@odata.context": f"{double.graph_url}/$metadata#Collection(message)", "value": page}
            token = uuid.uuid4().hex
            if rest:
                double.rounds[token] = (rest, now)
                answer["@odata.nextLink"] = f"{link}?$skiptoken={token}"
            else:
                double.delta_tokens[token] = now
                answer["@odata.deltaLink"] = f"{link}?$deltatoken={token}"
            return self._reply(200, answer)

        def _graph(self, method: str, path: str, query: dict, body: bytes) -> None:
            box = double.mailbox
            user, _, rest = path.removeprefix("/users/").partition("/")
            rest = re.sub(r"^mailFolders\('([^']*)'\)", r"mailFolders/\1", rest)  # the form Graph's own links use
            if user.lower() != box.address.lower():
                return self._reply(404, _error("ErrorInvalidUser", f"The requested user '{user}' is invalid."))
            parts = rest.split("/")
            with double.lock:
                if parts[:1] == ["mailFolders"] and parts[2:] == ["messages", "delta"] and method == "GET":
                    return self._delta(parts[1], query)
                if parts[:1] == ["messages"] and len(parts) == 3 and parts[2] == "$value" and method == "GET":
                    message = box.messages.get(parts[1])
                    if message is None:
                        return self._reply(404, _error("ErrorItemNotFound", "The specified object was not found in the store."))
                    return self._reply(200, message.raw, content_type="text/plain")
                if parts[:1] == ["messages"] and len(parts) == 3 and parts[2] == "move" and method == "POST":
                    message = box.messages.get(parts[1])
                    destination = json.loads(body or b"{}").get("destinationId", "")
                    if message is None or destination not in box.folders:
                        return self._reply(404, _error("ErrorItemNotFound", "The specified object was not found in the store."))
                    del box.messages[message.id]
                    moved = Message(double._id(), destination, message.raw, message.received)
                    box.messages[moved.id] = moved
                    return self._reply(201, {"id": moved.id, "parentFolderId": destination})
                if rest == "mailFolders" and method == "GET":
                    match = re.fullmatch(r"displayName eq '((?:[^']|'')*)'", query.get("$filter", ""))
                    wanted = match.group(1).replace("''", "'") if match else None
                    value = [{"id": fid, "displayName": name, "parentFolderId": "root", "childFolderCount": 0}
                             for fid, name in box.folders.items() if wanted is None or name == wanted]
                    return self._reply(200, {"value": value})
                if rest == "mailFolders" and method == "POST":
                    name = json.loads(body).get("displayName", "")
                    if box.folder_named(name):
                        return self._reply(409, _error("ErrorFolderExists", "A folder with the specified name already exists."))
                    fid = double._id()
                    box.folders[fid] = name
                    return self._reply(201, {"id": fid, "displayName": name, "parentFolderId": "root", "childFolderCount": 0})
                if rest == "sendMail" and method == "POST":
                    if not self.headers.get("Content-Type", "").startswith("text/plain"):
                        return self._reply(400, _error("ErrorInvalidRequest", "Cannot process input of the given Content-Type."))
                    try:
                        mime = base64.b64decode(body, validate=True)
                    except binascii.Error:
                        return self._reply(400, _error("ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."))
                    double.sent.append(mime)
                    return self._reply(202)
            return self._reply(400, _error("BadRequest", f"Unsupported request {method} {path}"))

    return Handler

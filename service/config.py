"""The configuration: one TOML file, secrets from the environment.

Everything is checked when the service starts, and a mistake is reported
with the key's full name and what is wrong with it, because the person
reading the error is an office's IT contact, not the author of this code.
Passwords, tokens and the reply-key secret never live in the file: the file
names the environment variable that holds each one.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from .reply_keys import office_secret

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = "secretary.toml"


class ConfigError(ValueError):
    """The configuration is wrong; the message names the key."""


@dataclass(frozen=True)
class DigestSettings:
    """The clerk's daily digest: when it goes, and whether a quiet day still gets a short one."""

    at: time = time(7, 30)
    when_quiet: str = "short"  # "short": a one-line "all quiet" digest; "none": no digest
    send: bool = True  # False: never mailed (the clerk uses `secretary status`); `digest --preview` still shows it


@dataclass(frozen=True)
class OfficeSettings:
    name: str
    mailbox: str
    clerk: str
    short_name: str = ""
    language: str = "th"
    timezone: str = "Asia/Bangkok"
    thai_digits: bool = True
    address: str = ""
    code: str = ""
    unit: str = ""
    phone: str = ""
    fax: str = ""
    emblem: str = ""
    digest: DigestSettings = DigestSettings()


@dataclass(frozen=True)
class ImapSettings:
    host: str
    username: str
    password: str
    port: int = 993
    security: str = "tls"
    verify_tls: bool = True
    inbox: str = "INBOX"
    processed: str = "Processed"
    quarantine: str = "Quarantine"
    timeout: float = 60.0
    poll_interval: float = 60.0


@dataclass(frozen=True)
class MaildirSettings:
    path: Path


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = ""
    verify_tls: bool = True
    timeout: float = 60.0


@dataclass(frozen=True)
class FileSenderSettings:
    path: Path


@dataclass(frozen=True)
class ExchangeSettings:
    """An on-premises Exchange Server through EWS; the same table shape serves [source] and [sender].

    `auth` is "password" (username and password) or "oauth" (an app
    registration's client credentials: tenant, client_id, client_secret).
    """

    url: str
    username: str
    password: str
    mailbox: str
    access: str = "delegate"
    verify_tls: bool = True
    timeout: float = 60.0
    processed: str = "Processed"
    quarantine: str = "Quarantine"
    poll_interval: float = 60.0
    save_copy: bool = False
    notifications: str = "pull"
    auth: str = "password"
    tenant: str = ""
    client_id: str = ""
    client_secret: str = ""
    authority: str = "https://login.microsoftonline.com"
    oauth_scope: str = ""


@dataclass(frozen=True)
class GraphSettings:
    """A Microsoft 365 mailbox through Microsoft Graph, signed in as an app; one table shape for [source] and [sender]."""

    tenant: str
    client_id: str
    client_secret: str
    mailbox: str
    authority: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    timeout: float = 60.0
    processed: str = "Processed"
    quarantine: str = "Quarantine"
    poll_interval: float = 60.0
    state: Path | None = None  # where the source keeps its delta link; None: in memory only


@dataclass(frozen=True)
class PostgresSettings:
    """[store] with kind = "postgresql": where the database is, and which office's rows are this configuration's."""

    dsn: str  # libpq connection settings, without the password
    password: str = field(repr=False)  # from the environment; "" when the server needs none (a local socket, a .pgpass)
    office: str  # the key of this office's rows: offices sharing a database must each have their own

    def conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.dsn, password=self.password) if self.password else self.dsn


@dataclass(frozen=True)
class Settings:
    """The whole configuration, checked."""

    path: Path
    office: OfficeSettings
    store: Path
    source: ImapSettings | MaildirSettings
    sender: SmtpSettings | FileSenderSettings
    directory: Path | None
    reply_key_secret: bytes
    rules: Path = PROJECT_ROOT / "rules"
    templates: Path = PROJECT_ROOT / "templates"
    max_message_mb: float = 25.0
    tick_seconds: float = 60.0
    postgres: PostgresSettings | None = None  # None: the store is TinyDB in `store`; else `store` holds rendered papers


def load(path: str | Path, environ: dict[str, str] | None = None) -> Settings:
    """Read and check a configuration file."""
    path = Path(path)
    environ = dict(os.environ if environ is None else environ)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file (make one with `secretary init`)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    reader = _Reader(path, data, environ)
    return reader.settings()


class _Reader:
    """Reads typed values out of the parsed TOML, naming the key in every error."""

    def __init__(self, path: Path, data: dict[str, Any], environ: dict[str, str]) -> None:
        self.path = path
        self.data = data
        self.environ = environ
        self.base = path.parent

    def settings(self) -> Settings:
        office = OfficeSettings(
            name=self.text("office.name"),
            mailbox=self.address("office.mailbox"),
            clerk=self.address("office.clerk"),
            short_name=self.text("office.short_name", ""),
            language=self.choice("office.language", ("th", "en"), "th"),
            timezone=self.text("office.timezone", "Asia/Bangkok"),
            thai_digits=self.boolean("office.thai_digits", True),
            address=self.text("office.address", ""),
            code=self.text("office.code", ""),
            unit=self.text("office.unit", "กลุ่มอำนวยการ"),
            phone=self.text("office.phone", ""),
            fax=self.text("office.fax", ""),
            emblem=str(self.folder("office.emblem")) if self.get("office.emblem") else "",
            digest=DigestSettings(at=self.clock_time("digest.time", "07:30"), when_quiet=self.choice("digest.when_quiet", ("short", "none"), "short"),
                                  send=self.boolean("digest.send", True)),
        )
        return Settings(
            path=self.path,
            office=office,
            store=self.folder("store.path"),
            source=self.source(),
            sender=self.sender(),
            directory=self.folder("directory.path") if self.get("directory.path") is not None else None,
            reply_key_secret=office_secret(self.reply_key_secret(), office.mailbox),
            rules=self.folder("paths.rules", PROJECT_ROOT / "rules"),
            templates=self.folder("paths.templates", PROJECT_ROOT / "templates"),
            max_message_mb=self.number("limits.max_message_mb", 25.0, minimum=1),
            tick_seconds=self.number("daemon.tick_seconds", 60.0, minimum=1),
            postgres=self.postgres(office.mailbox),
        )

    def postgres(self, mailbox: str) -> PostgresSettings | None:
        """[store] dsn, password_env and office when kind = "postgresql"; None for the embedded TinyDB store."""
        if self.choice("store.kind", ("tinydb", "postgresql"), "tinydb") == "tinydb":
            return None
        try:
            from psycopg import Error as PsycopgError
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise self.fail("store.kind", "postgresql needs psycopg: pip install 'secretary[postgresql]'") from None
        dsn = self.text("store.dsn")
        try:
            parsed = conninfo_to_dict(dsn)
        except PsycopgError as error:
            raise self.fail("store.dsn", f"not a PostgreSQL connection string ({error}), e.g. \"host=db.office.go.th dbname=secretary user=secretary\"") from None
        if "password" in parsed:
            raise self.fail("store.dsn", "must not hold the password: name its environment variable in store.password_env")
        named = self.get("store.password_env") is not None
        variable = self.text("store.password_env", "SECRETARY_DATABASE_PASSWORD")
        password = self.environ.get(variable, "")
        if named and not password:
            raise self.fail("store.password_env", f"the environment variable {variable} is not set (it holds a secret, kept out of this file)")
        office = self.text("store.office", mailbox)
        if not office.strip():
            raise self.fail("store.office", "must name the office (its rows in the shared database carry this name)")
        return PostgresSettings(dsn=dsn, password=password, office=office)

    def source(self) -> ImapSettings | MaildirSettings:
        kind = self.choice("source.kind", ("imap", "maildir", "exchange", "graph"))
        if kind == "graph":
            return self.graph("source")
        if kind == "exchange":
            return self.exchange("source")
        if kind == "maildir":
            return MaildirSettings(path=self.folder("source.path"))
        security = self.choice("source.security", ("tls", "starttls", "none"), "tls")
        return ImapSettings(
            host=self.text("source.host"),
            port=self.port("source.port", 993 if security == "tls" else 143),
            security=security,
            username=self.text("source.username"),
            password=self.secret("source.password_env", "SECRETARY_IMAP_PASSWORD"),
            verify_tls=self.boolean("source.verify_tls", True),
            inbox=self.text("source.inbox", "INBOX"),
            processed=self.text("source.processed", "Processed"),
            quarantine=self.text("source.quarantine", "Quarantine"),
            timeout=self.number("source.timeout", 60.0, minimum=1),
            poll_interval=self.number("source.poll_interval", 60.0, minimum=1),
        )

    def sender(self) -> SmtpSettings | FileSenderSettings:
        kind = self.choice("sender.kind", ("smtp", "file", "exchange", "graph"))
        if kind == "graph":
            return self.graph("sender")
        if kind == "exchange":
            return self.exchange("sender")
        if kind == "file":
            return FileSenderSettings(path=self.folder("sender.path"))
        security = self.choice("sender.security", ("tls", "starttls", "none"), "starttls")
        username = self.text("sender.username", "")
        return SmtpSettings(
            host=self.text("sender.host"),
            port=self.port("sender.port", 465 if security == "tls" else 587),
            security=security,
            username=username,
            password=self.secret("sender.password_env", "SECRETARY_SMTP_PASSWORD") if username else "",
            verify_tls=self.boolean("sender.verify_tls", True),
            timeout=self.number("sender.timeout", 60.0, minimum=1),
        )

    def exchange(self, table: str) -> ExchangeSettings:
        """[source] or [sender] with kind = "exchange": the EWS URL, the account (or app) and the mailbox it serves."""
        url = self.text(f"{table}.url")
        if not url.startswith(("https://", "http://")) or "://" == url[-3:]:
            raise self.fail(f"{table}.url", f"must be the EWS address, like https://mail.office.go.th/EWS/Exchange.asmx, got {url!r}")
        auth = self.choice(f"{table}.auth", ("password", "oauth"), "password")
        if auth == "oauth":
            # An app signs in as itself and reaches the shared mailbox only by impersonating it.
            access = self.choice(f"{table}.access", ("impersonation",), "impersonation")
            app = {
                "tenant": self.text(f"{table}.tenant"),
                "client_id": self.text(f"{table}.client_id"),
                "client_secret": self.secret(f"{table}.client_secret_env", "SECRETARY_EXCHANGE_CLIENT_SECRET"),
                "authority": self.https(f"{table}.authority", "https://login.microsoftonline.com"),
                "oauth_scope": self.text(f"{table}.oauth_scope", ""),
            }
            username, password = "", ""
        else:
            access = self.choice(f"{table}.access", ("delegate", "impersonation"), "delegate")
            app = {}
            username = self.text(f"{table}.username")
            password = self.secret(f"{table}.password_env", "SECRETARY_EXCHANGE_PASSWORD")
        return ExchangeSettings(
            url=url,
            username=username,
            password=password,
            mailbox=self.address(f"{table}.mailbox") if self.get(f"{table}.mailbox") is not None else self.address("office.mailbox"),
            access=access,
            auth=auth,
            notifications=self.choice(f"{table}.notifications", ("pull", "sync"), "pull"),
            **app,
            verify_tls=self.boolean(f"{table}.verify_tls", True),
            timeout=self.number(f"{table}.timeout", 60.0, minimum=1),
            processed=self.text(f"{table}.processed", "Processed"),
            quarantine=self.text(f"{table}.quarantine", "Quarantine"),
            poll_interval=self.number(f"{table}.poll_interval", 60.0, minimum=1),
            save_copy=self.boolean(f"{table}.save_copy", False),
        )

    def graph(self, table: str) -> GraphSettings:
        """[source] or [sender] with kind = "graph": the tenant, the app registration and the mailbox."""
        urls = {
            key: self.https(f"{table}.{key}", default)
            for key, default in (("authority", "https://login.microsoftonline.com"), ("graph_url", "https://graph.microsoft.com/v1.0"))
        }
        return GraphSettings(
            tenant=self.text(f"{table}.tenant"),
            client_id=self.text(f"{table}.client_id"),
            client_secret=self.secret(f"{table}.client_secret_env", "SECRETARY_GRAPH_CLIENT_SECRET"),
            mailbox=self.address(f"{table}.mailbox") if self.get(f"{table}.mailbox") is not None else self.address("office.mailbox"),
            authority=urls["authority"],
            graph_url=urls["graph_url"],
            timeout=self.number(f"{table}.timeout", 60.0, minimum=1),
            processed=self.text(f"{table}.processed", "Processed"),
            quarantine=self.text(f"{table}.quarantine", "Quarantine"),
            poll_interval=self.number(f"{table}.poll_interval", 60.0, minimum=1),
            state=self.folder(f"{table}.state", self.folder("store.path") / "mailbox" / "graph-delta.json"),
        )

    def https(self, key: str, default: str) -> str:
        url = self.text(key, default).rstrip("/")
        if not url.startswith("https://") or len(url) <= len("https://"):
            raise self.fail(key, f"must be an https address like {default}, got {url!r}")
        return url

    _MISSING = object()

    def get(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: [{key.rsplit('.', 1)[0]}] {key.rsplit('.', 1)[-1]}: {problem}")

    def value(self, key: str, default: Any, kind: type | tuple[type, ...], description: str) -> Any:
        found = self.get(key)
        if found is None:
            if default is self._MISSING:
                raise self.fail(key, f"missing; {description} is required")
            return default
        if not isinstance(found, kind) or isinstance(found, bool) and kind is not bool:
            raise self.fail(key, f"must be {description}, got {found!r}")
        return found

    def text(self, key: str, default: Any = _MISSING) -> str:
        found = self.value(key, default, str, "a text")
        if default is self._MISSING and not found.strip():
            raise self.fail(key, "must not be empty")
        return found

    def address(self, key: str) -> str:
        found = self.text(key)
        local, _, domain = found.partition("@")
        if not local or "." not in domain or " " in found:
            raise self.fail(key, f"must be an e-mail address like meeting@office.go.th, got {found!r}")
        return found.lower()

    def boolean(self, key: str, default: bool) -> bool:
        return self.value(key, default, bool, "true or false")

    def number(self, key: str, default: float, minimum: float) -> float:
        found = self.value(key, default, (int, float), "a number")
        if found < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {found}")
        return float(found)

    def clock_time(self, key: str, default: str) -> time:
        text = self.text(key, default)
        try:
            return time.fromisoformat(text)
        except ValueError:
            raise self.fail(key, f"must be a time of day like \"07:30\", got {text!r}") from None

    def port(self, key: str, default: int) -> int:
        found = self.value(key, default, int, "a port number")
        if not 0 < found < 65536:
            raise self.fail(key, f"must be a port number between 1 and 65535, got {found}")
        return found

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> str:
        found = self.value(key, default, str, "one of " + ", ".join(repr(c) for c in choices))
        if found not in choices:
            raise self.fail(key, f"must be one of {', '.join(repr(c) for c in choices)}, got {found!r}")
        return found

    def folder(self, key: str, default: Any = _MISSING) -> Path:
        found = self.value(key, default, (str, Path), "a path")
        path = Path(found).expanduser()
        return path if path.is_absolute() else (self.base / path).resolve()

    def reply_key_secret(self) -> bytes:
        """From a file only the service's user can read (`reply_key_secret_file`), or from the environment."""
        if self.get("security.reply_key_secret_file") is None:
            return self.secret("security.reply_key_secret_env", "SECRETARY_REPLY_KEY").encode()
        path = self.folder("security.reply_key_secret_file")
        try:
            found = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise self.fail("security.reply_key_secret_file", f"cannot read {path}: {error.strerror}") from None
        if len(found) < 16:
            raise self.fail("security.reply_key_secret_file", f"{path} must hold a secret of at least 16 characters")
        return found.encode()

    def secret(self, key: str, default_variable: str) -> str:
        """A secret's value, read from the environment variable the key names."""
        variable = self.text(key, default_variable)
        found = self.environ.get(variable, "")
        if not found:
            raise self.fail(key, f"the environment variable {variable} is not set (it holds a secret, kept out of this file)")
        return found


def write_starter(folder: Path, office: str, mailbox: str, clerk: str) -> list[tuple[Path, bool]]:
    """Write a commented starter configuration and a sample directory; never overwrite.

    Returns each path with whether it was written.
    """
    from .documents.environment import environment

    folder.mkdir(parents=True, exist_ok=True)
    templates = PROJECT_ROOT / "templates"
    contents = {
        folder / "reply-key.secret": secrets.token_hex(32) + "\n",
        folder / DEFAULT_CONFIG: environment(templates).get_template("config/secretary.toml.j2").render(
            office_name=office, short_name="", mailbox=mailbox, clerk=clerk
        ),
        folder / "directory.toml": (templates / "config" / "directory.toml").read_text(encoding="utf-8"),
    }
    results = []
    for path, text in contents.items():
        written = not path.exists()
        if written:
            path.touch(mode=0o600)
            path.write_text(text, encoding="utf-8")
        results.append((path, written))
    return results

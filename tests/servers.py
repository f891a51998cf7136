"""Private mail servers for tests: Dovecot, Postfix and smtp-sink on 127.0.0.1.

Each server runs in the foreground as a child of the test process, from
configuration written under a directory the caller gives, on ports chosen at
run time. So it never touches a system instance, two test runs never clash,
and stopping it reaps it (a daemonised server would be left to the
container's init, which may never reap it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Sequence

import imapclient

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
# Dovecot's unix sockets live under its base_dir; their paths must fit in
# sun_path (108 bytes), so a long test directory gets a short run dir instead.
LONGEST_RUN_DIR = 60


class ServerError(RuntimeError):
    """A test server could not be set up, started or used."""


def unique_address(name: str = "user", domain: str = "office.test") -> str:
    """A mailbox address no other test uses, so tests never see each other's mail."""
    return f"{name}-{uuid.uuid4().hex[:12]}@{domain}"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, and never one this process handed out before.

    The kernel may give the same free port to two probes in a row, and a
    server given it twice (Dovecot's IMAP and LMTP) refuses to start.
    """
    while True:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, to put in an error message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return f"--- last lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:])


def binary(name: str, package: str) -> str:
    """The full path of a server program; sbin is searched too, as PATH may lack it."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if found is None:
        raise ServerError(f"{name} not found: install the Debian package {package} (.ci/run does)")
    return found


def make_traversable(path: Path) -> None:
    """Let unprivileged server processes reach files under `path`.

    Dovecot's mail and auth processes (as vmail and dovecot) and Postfix's
    master (as postfix, for its lock file) open files by absolute path, so
    every directory above them must be searchable by others. Only the search
    bit is added, and only to directories this process owns. A directory
    under pytest's base directory works only until another pytest session
    starts and resets that base to 0700, which is why the shared fixtures use
    a directory of their own in /tmp.
    """
    for directory in [path, *path.parents]:
        mode = directory.stat()
        if mode.st_mode & stat.S_IXOTH:
            continue
        if mode.st_uid != os.getuid():
            raise ServerError(f"{directory} is not searchable by other users and not ours to change")
        directory.chmod(stat.S_IMODE(mode.st_mode) | stat.S_IXOTH)


def spawn(argv: Sequence[str], output: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own session, so its signals never reach pytest."""
    with open(output, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_greeting(port: int, greeting: bytes, process: subprocess.Popen[bytes], logs: Sequence[Path]) -> None:
    """Wait until a server on `port` answers with `greeting`, or fail with its logs."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            command = " ".join(map(str, process.args)) if isinstance(process.args, list) else str(process.args)
            raise ServerError(f"`{command}` exited with {process.returncode} while starting\n" + "\n".join(map(tail, logs)))
        try:
            with socket.create_connection((HOST, port), timeout=2) as connection:
                if connection.recv(512).startswith(greeting):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerError(
                f"nothing answered {greeting!r} on {HOST}:{port} within {START_TIMEOUT}s\n" + "\n".join(map(tail, logs))
            )
        time.sleep(0.05)


def end(process: subprocess.Popen[bytes] | None) -> None:
    """Terminate a server we started, and every process it started, and reap it.

    The whole process group goes: Dovecot's master leaves its log, stats and
    IMAP processes running when it exits, and an IMAP session that outlived
    its server would hide what a restart does to clients.
    """
    if process is None:
        return
    for kill in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, kill)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT)


class Dovecot:
    """A private Dovecot: IMAP and LMTP on loopback, users from a passwd-file.

    Each user has a passwd-file of its own, so a user added while the server
    runs is seen at once (Dovecot checks a file it has read for changes at
    most once a second); LMTP only accepts recipients that have one.
    Its authentication service also listens on `auth_port`, so a Postfix can
    check SMTP logins against the same users. `connections` raises Dovecot's
    process and client limits (100 processes a service by default) for that
    many IMAP sessions open at once, e.g. one IDLE per office's mailbox.
    `also_listen` adds addresses IMAP is served on besides 127.0.0.1 (a
    test's private veth, see netns.py).
    """

    def __init__(self, root: Path, connections: int | None = None, also_listen: Sequence[str] = ()) -> None:
        self.root = root.resolve()
        self.connections = connections
        self.also_listen = tuple(also_listen)
        self.host = HOST
        self.imap_port = free_port()
        self.lmtp_port = free_port()
        self.auth_port = free_port()
        self.config = self.root / "dovecot.conf"
        self.users = self.root / "users"
        self.mail = self.root / "mail"
        self.log = self.root / "dovecot.log"
        self.output = self.root / "dovecot.out"
        self.run_dir = self.root / "run"
        if len(str(self.run_dir)) > LONGEST_RUN_DIR:
            self.run_dir = Path(tempfile.mkdtemp(prefix="dovecot-run-"))
        self._passwords: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start Dovecot and wait until both IMAP and LMTP answer."""
        program = binary("dovecot", "dovecot-imapd")
        try:
            vmail = pwd.getpwnam("vmail")
        except KeyError:
            raise ServerError("no 'vmail' user to own test mail: create one with `useradd -r vmail` (.ci/run does)") from None
        self.mail.mkdir(parents=True, exist_ok=True)
        os.chown(self.mail, vmail.pw_uid, vmail.pw_gid)
        self.mail.chmod(0o700)
        make_traversable(self.root)
        self.users.mkdir(exist_ok=True)
        self.config.write_text(self._configuration(vmail.pw_uid), encoding="utf-8")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "master.pid").unlink(missing_ok=True)
        self._process = spawn([program, "-F", "-c", str(self.config)], self.output)
        try:
            wait_for_greeting(self.imap_port, b"* OK", self._process, [self.log, self.output])
            wait_for_greeting(self.lmtp_port, b"220", self._process, [self.log, self.output])
        except ServerError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop Dovecot, which also drops every open IMAP session."""
        end(self._process)
        self._process = None
        (self.run_dir / "master.pid").unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop and start again on the same ports with the same mail."""
        self.stop()
        self.start()

    def add_user(self, address: str, password: str = "secret") -> None:
        """Add a mailbox whose login is its full address, or change its password.

        A changed password takes up to a second to be seen, so this waits.
        """
        if ":" in address + password or "\n" in address + password or "/" in address:
            raise ValueError("an address or password with ':', '/' or a newline cannot go in a passwd-file")
        changed = self._passwords.get(address, password) != password
        self._passwords[address] = password
        self.users.mkdir(parents=True, exist_ok=True)
        partial = self.users / f".{address}"
        partial.write_text(f"{address}:{{PLAIN}}{password}\n", encoding="utf-8")
        partial.chmod(0o644)
        partial.replace(self.users / address)
        if changed:
            time.sleep(1.1)

    def client(self, address: str, password: str = "secret") -> imapclient.IMAPClient:
        """An IMAP session logged in as `address`; the caller logs out."""
        client = imapclient.IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=30)
        try:
            client.login(address, password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def append(self, address: str, raw: bytes, folder: str = "INBOX") -> None:
        """Put a message into a mailbox folder, creating the folder if needed."""
        client = self.client(address, self._passwords.get(address, "secret"))
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)
        finally:
            client.logout()

    def count(self, address: str, folder: str = "INBOX") -> int:
        """How many messages a folder holds, without fetching them (a 20,000-message folder is 1.6 GB)."""
        client = self.client(address, self._passwords.get(address, "secret"))
        try:
            return client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"] if client.folder_exists(folder) else 0
        finally:
            client.logout()

    def messages(self, address: str, folder: str = "INBOX") -> list[bytes]:
        """The raw messages in a folder, oldest (lowest UID) first."""
        client = self.client(address, self._passwords.get(address, "secret"))
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
            return [fetched[uid][b"BODY[]"] for uid in sorted(fetched)]
        finally:
            client.logout()

    def _configuration(self, vmail_uid: int) -> str:
        imap_addresses = ", ".join((HOST, *self.also_listen))
        return f"""\
protocols = imap lmtp
listen = {imap_addresses}
base_dir = {self.run_dir}
state_dir = {self.run_dir}/state
log_path = {self.log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = {vmail_uid}
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users}/%u
}}
userdb {{
  driver = static
  args = uid=vmail gid=vmail home={self.mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {imap_addresses}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
# No authentication penalty: one test's wrong password must not slow down
# every later login from 127.0.0.1 (Dovecot's documented way to turn it off).
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  inet_listener auth {{
    address = {HOST}
    port = {self.auth_port}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {HOST}
    port = {self.lmtp_port}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@localhost
}}
{self._limits()}"""

    def _limits(self) -> str:
        """Room for `connections` IMAP sessions (each one imap process) and the logins that open them at once.

        An IDLE session learns of new mail through inotify, but all sessions
        run as vmail and Linux gives one user 128 inotify instances by default
        (fs.inotify.max_user_instances); the sessions beyond those fall back to
        looking at the mailbox every mailbox_idle_check_interval (30 s by
        default), here made 1 s rather than changing the machine's sysctl.
        """
        if self.connections is None:
            return ""
        return f"""\
mailbox_idle_check_interval = 1 secs
default_process_limit = {self.connections + 100}
default_client_limit = {4 * self.connections + 1000}
service imap {{
  process_limit = {self.connections + 100}
}}
"""


class Postfix:
    """A whole private Postfix that takes mail for `domains` and hands it to Dovecot by LMTP.

    Its configuration, queue and data directories are all under `root`, so it
    shares nothing with a system Postfix or another test run. It refuses
    (554, relay access denied) any recipient outside `domains`, which gives
    tests a real permanent refusal. It also offers STARTTLS on `smtp_port`
    and implicit TLS on `smtps_port`, with a self-signed certificate
    (`cert_file`) for 127.0.0.1, and, given the `sasl_port` of a Dovecot's
    authentication service, AUTH (after TLS only) for that Dovecot's users.
    `also_listen` adds addresses SMTP (on `smtp_port`) is served on besides
    127.0.0.1 (a test's private veth, see netns.py).
    """

    def __init__(self, root: Path, lmtp_port: int, domains: list[str], sasl_port: int | None = None,
                 also_listen: Sequence[str] = ()) -> None:
        self.root = root.resolve()
        self.also_listen = tuple(also_listen)
        self.host = HOST
        self.smtp_port = free_port()
        self.smtps_port = free_port()
        self.lmtp_port = lmtp_port
        self.domains = list(domains)
        self.sasl_port = sasl_port
        self.config_dir = self.root / "config"
        self.queue_dir = self.root / "queue"
        self.data_dir = self.root / "data"
        self.log = self.root / "postfix.log"
        self.output = self.root / "postfix.out"
        self.cert_file = self.root / "cert.pem"
        self.key_file = self.root / "key.pem"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Write the configuration, create the queue, start, and wait for the SMTP greeting."""
        program = binary("postfix", "postfix")
        self.config_dir.mkdir(parents=True, exist_ok=True)
        make_traversable(self.root)
        self.queue_dir.mkdir(mode=0o755, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.chown(self.data_dir, "postfix")
        if not self.cert_file.exists():
            self._make_certificate()
        for name, text in (("main.cf", self._main_cf()), ("master.cf", self._master_cf())):
            path = self.config_dir / name
            path.write_text(text, encoding="utf-8")
            # Postfix waits (up to seconds) for a file changed in the last second to settle.
            settled = time.time() - 10
            os.utime(path, (settled, settled))
        checked = self._run("postfix", "-c", str(self.config_dir), "check")
        if checked.returncode != 0:
            raise ServerError(f"postfix check failed: {checked.stdout}{checked.stderr}\n{tail(self.log)}")
        self._process = spawn([program, "-c", str(self.config_dir), "start-fg"], self.output)
        try:
            wait_for_greeting(self.smtp_port, b"220", self._process, [self.log, self.output])
        except ServerError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the master (which stops its children) and reap it."""
        if self._process is not None and self._process.poll() is None:
            # The clean way first: the master stops its children and releases its lock.
            self._run("postfix", "-c", str(self.config_dir), "stop")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(STOP_TIMEOUT)
        end(self._process)
        self._process = None

    def queue(self) -> str:
        """What `postqueue -p` says about this instance's queue."""
        return self._run("postqueue", "-c", str(self.config_dir), "-p").stdout

    def wait_for_queue_empty(self, timeout: float = 30) -> None:
        """Wait until every queued message has been handed on (delivered or bounced)."""
        deadline = time.monotonic() + timeout
        while "Mail queue is empty" not in (listing := self.queue()):
            if time.monotonic() > deadline:
                raise ServerError(f"Postfix queue not empty after {timeout}s:\n{listing}\n{tail(self.log)}")
            time.sleep(0.1)

    def _run(self, program: str, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary(program, "postfix"), *arguments],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=STOP_TIMEOUT,
        )

    def _make_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1 and localhost (openssl comes with Debian's postfix)."""
        result = subprocess.run(
            [
                binary("openssl", "openssl"),
                "req",
                "-x509",
                "-nodes",
                "-days",
                "2",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-subj",
                "/CN=localhost",
                "-addext",
                f"subjectAltName=IP:{HOST},DNS:localhost",
                "-keyout",
                str(self.key_file),
                "-out",
                str(self.cert_file),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServerError(f"openssl could not make a test certificate: {result.stderr}")

    def _main_cf(self) -> str:
        sasl = (
            f"smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n"
            f"smtpd_sasl_path = inet:{HOST}:{self.sasl_port}\nsmtpd_tls_auth_only = yes\n"
            if self.sasl_port
            else ""
        )
        return f"""\
compatibility_level = 3.6
queue_directory = {self.queue_dir}
data_directory = {self.data_dir}
maillog_file = {self.log}
maillog_file_prefixes = {self.root}
myhostname = mail.test.invalid
inet_interfaces = {", ".join((HOST, *self.also_listen))}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:no local delivery in tests
default_transport = error:no delivery outside the test domains
relay_transport = error:no relaying in tests
virtual_mailbox_domains = {" ".join(self.domains)}
virtual_transport = lmtp:inet:{HOST}:{self.lmtp_port}
smtpd_relay_restrictions = reject_unauth_destination
smtputf8_enable = yes
message_size_limit = 104857600
mailbox_size_limit = 0
virtual_mailbox_limit = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
notify_classes =
biff = no
smtpd_tls_security_level = may
smtpd_tls_cert_file = {self.cert_file}
smtpd_tls_key_file = {self.key_file}
{sasl}"""

    def _master_cf(self) -> str:
        # No pickup (nothing from a local sendmail) and no listener on port 25.
        also = "".join(f"{address}:{self.smtp_port} inet n - n - - smtpd\n" for address in self.also_listen)
        return f"""\
{HOST}:{self.smtp_port} inet n - n - - smtpd
{also}{HOST}:{self.smtps_port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
tlsmgr unix - - n 1000? 1 tlsmgr
postlog unix-dgram n - n - 1 postlogd
"""


class SmtpSink:
    """Postfix's smtp-sink: accepts (and throws away) whatever it is sent, fast.

    `options` are extra smtp-sink flags, e.g. ("-v",) to log each session's
    commands (see `log_text`), ("-f", "RCPT") to refuse recipients with a
    5xx, ("-r", "RCPT") with a 4xx, ("-t", "1") to drop idle clients.
    """

    def __init__(self, root: Path, options: Sequence[str] = ()) -> None:
        self.root = root.resolve()
        self.host = HOST
        self.port = free_port()
        self.options = tuple(options)
        self.log = self.root / "smtp-sink.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start listening and wait for the greeting (that probe counts as one session)."""
        program = binary("smtp-sink", "postfix")
        self.root.mkdir(parents=True, exist_ok=True)
        self._process = spawn([program, "-u", "nobody", *self.options, f"{self.host}:{self.port}", "256"], self.log)
        try:
            wait_for_greeting(self.port, b"220", self._process, [self.log])
        except ServerError:
            self.stop()
            raise

    def stop(self) -> None:
        end(self._process)
        self._process = None

    def log_text(self) -> str:
        """What smtp-sink has printed so far (with -v: one line per command)."""
        return self.log.read_text(encoding="utf-8", errors="replace")

"""The PostgreSQL store: the TinyDB store's contract, the office's lock, offices apart, and moving a store.

Every test here runs on a real PostgreSQL the session starts on 127.0.0.1
(`postgres.Postgres`); the contract tests run the same steps on both stores
and expect the same answers.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from postgres import PASSWORD, kill_mid_batch, use_postgres
from service.archive import export_meeting
from service.cli import main
from service.commands import SPOOL
from service.config import ConfigError, DEFAULT_CONFIG, load
from service.demo import run_demo
from service.documents.filing import keep
from service.mail.outbox import SENT_LOG
from service.meetings.meeting import all_meetings, shard
from service.store import Store, StoreError, StoreLocked, content_address, open_store, original_name
from service.store.postgres import PostgresStore
from service.store.transfer import inventory, verify

OFFICE = "meeting@office-a.test"


@pytest.fixture
def database(postgres) -> str:
    """A fresh database's DSN, without the password."""
    return postgres.database()


def conninfo(dsn: str) -> str:
    return f"{dsn} password={PASSWORD}"


@pytest.fixture(params=["tinydb", "postgresql"])
def make_store(request, tmp_path):
    """Opens a store of the parametrised kind in this test's folder (and database); all are closed after the test."""
    opened = []
    dsn = request.getfixturevalue("postgres").database() if request.param == "postgresql" else ""

    def make(exclusive: bool = True):
        store = Store(tmp_path / "store") if not dsn else PostgresStore(tmp_path / "store", conninfo(dsn), OFFICE)
        opened.append(store.open(exclusive=exclusive))
        return store

    yield make
    for store in opened:
        store.close()


# The contract, on both stores.

def test_a_transaction_writes_every_shard_or_none(make_store):
    store = make_store()
    with store.transaction() as tx:
        tx.put("log/ab", "messages", "mid:1", {"subject": "ประชุม"})
        tx.put("outbox", "mail", "m1", {"to": ["a@b.c"]})
    assert store.get("log/ab", "messages", "mid:1") == {"subject": "ประชุม", "_key": "mid:1"}
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.put("outbox", "mail", "m2", {})
            tx.delete("log/ab", "messages", "mid:1")
            raise RuntimeError("the handler failed")
    assert store.get("outbox", "mail", "m2") is None
    assert store.get("log/ab", "messages", "mid:1") is not None


def test_a_batch_commits_its_transactions_together_at_its_end_or_none(make_store):
    store, reader = make_store(), make_store(exclusive=False)
    with store.batch():
        with store.transaction() as tx:
            tx.put("log/00", "messages", "m1", {"n": 1})
            tx.put("outbox", "mail", "a1", {"for": "m1"})
        with pytest.raises(RuntimeError):
            with store.transaction() as tx:
                tx.put("log/00", "messages", "m2", {"n": 2})
                raise RuntimeError("one message's handler failed; the batch goes on")
        with store.transaction() as tx:
            tx.put("log/01", "messages", "m3", {"seen": store.get("log/00", "messages", "m1")["n"]})
        assert store.shards("log") == ["log/00", "log/01"]  # the batch reads what it wrote
        assert reader.get("log/00", "messages", "m1") is None  # nobody else does, yet
    reader = make_store(exclusive=False)  # TinyDB's reader keeps what it read: a fresh one
    assert [reader.get("log/00", "messages", k) for k in ("m1", "m2")] == [{"n": 1, "_key": "m1"}, None]
    assert reader.get("log/01", "messages", "m3")["seen"] == 1
    with pytest.raises(KeyError):
        with store.batch():
            with store.transaction() as tx:
                tx.put("log/02", "messages", "m4", {})
            raise KeyError("the batch itself failed")
    assert make_store(exclusive=False).shards("log") == ["log/00", "log/01"] and store.get("log/02", "messages", "m4") is None


def test_find_keeps_the_order_of_first_puts_and_filters_in_python(make_store):
    store = make_store()
    for key in ("c", "a", "b"):
        with store.transaction() as tx:
            tx.put("meetings/m1/meeting", "items", key, {"n": key})
    with store.transaction() as tx:
        tx.put("meetings/m1/meeting", "items", "c", {"n": "c2"})  # an update stays where it was
        tx.delete("meetings/m1/meeting", "items", "a")
        tx.put("meetings/m1/meeting", "items", "a", {"n": "a2"})  # deleted and put again: now the last
    assert [d["n"] for d in store.find("meetings/m1/meeting", "items")] == ["c2", "b", "a2"]
    assert [d["_key"] for d in store.find("meetings/m1/meeting", "items", where=lambda d: d["n"] < "c")] == ["b", "a"]
    assert store.find("meetings/m1/meeting", "nothing") == []


def test_shards_lists_what_was_ever_written_under_a_folder(make_store):
    store = make_store()
    with store.transaction() as tx:
        tx.put("log/2026-11", "messages", "1", {})
        tx.put("log/2026-12", "messages", "1", {})
        tx.put("logbook", "x", "1", {})  # not under log/
        tx.put("meetings/m1/meeting", "meeting", "meeting", {})
        tx.delete("sent/2026-11", "mail", "never-there")  # a delete alone makes no shard
    with store.transaction() as tx:
        tx.delete("log/2026-12", "messages", "1")  # emptied, but it exists (as its TinyDB file does)
    assert store.shards("log") == ["log/2026-11", "log/2026-12"]
    assert store.shards("meetings") == ["meetings/m1/meeting"]
    assert store.shards("sent") == []


def test_files_are_content_addressed_and_read_back(make_store):
    store = make_store()
    first = store.put_file("files", b"%PDF-1.4 ...", "งบประมาณ ไตรมาส 1.pdf")
    assert store.put_file("files", b"%PDF-1.4 ...", "งบประมาณ ไตรมาส 1.pdf") == first
    digest = hashlib.sha256(b"%PDF-1.4 ...").hexdigest()
    assert first == f"files/{digest[:2]}/{digest}-งบประมาณ_ไตรมาส_1.pdf"
    assert store.read_file(first) == b"%PDF-1.4 ..."
    store.put_file("files/below", b"elsewhere", "x.pdf")
    assert store.files("files") == [first] and store.files("fil") == [] and store.files("f_les") == []
    with store.transaction() as tx:  # PostgreSQL writes the files with the transaction that names them
        tx.put("meetings/m1/meeting", "meeting", "meeting", {"file": first})
    assert store.files("files") == [first] and store.read_file(first) == b"%PDF-1.4 ..."
    with pytest.raises(OSError):
        store.read_file(f"files/00/{'0' * 64}-gone.pdf")


def test_every_rendering_of_a_paper_is_a_new_version_that_every_machine_reads(make_store, tmp_path):
    """Papers are store files, not files of the machine that rendered them: another instance taking the office over has them."""
    store = make_store()
    folder = "meetings/m1/documents"
    first = keep(store, folder, "agenda", pdf=b"%PDF one", docx=b"PK one")
    second = keep(store, folder, "agenda", pdf=b"%PDF two", docx=b"PK two")
    letter = keep(store, folder, "invitation", pdf=b"%PDF one")  # the same bytes as another paper: still its own file
    assert [original_name(first["pdf"]), original_name(first["docx"]), original_name(second["pdf"])] == \
        ["agenda-v1.pdf", "agenda-v1.docx", "agenda-v2.pdf"]
    assert original_name(letter["pdf"]) == "invitation-v1.pdf" and content_address(letter["pdf"]) == content_address(first["pdf"])
    with store.transaction() as tx:
        tx.put("meetings/m1/meeting", "meeting", "meeting", {"papers": [first, second, letter]})
    store.close()
    if isinstance(store, PostgresStore):  # another machine: its own, empty folder
        shutil.rmtree(store.root)
        other = PostgresStore(tmp_path / "machine-2", store._conninfo, OFFICE).open()
    else:
        other = Store(store.root).open()
    try:
        assert other.read_file(second["docx"]) == b"PK two"
        assert original_name(keep(other, folder, "agenda", pdf=b"%PDF three")["pdf"]) == "agenda-v3.pdf"
    finally:
        other.close()


def test_what_json_holds_and_jsonb_cannot_reads_back_as_it_was(make_store):
    """Lone surrogates (undecodable header bytes), NUL and NaN: the TinyDB store keeps them, so must this one."""
    sender = b"\xc2\x80\xff <x@school.test>".decode("utf-8", "surrogateescape")
    document = {"from": sender, "nul": "a\x00b", "ratio": float("inf"), "big": 10**30, "ไทย": [1.5, None, True]}
    store = make_store()
    with store.transaction() as tx:
        tx.put("log/00", "messages", "m1", document)
    assert store.get("log/00", "messages", "m1") == {**document, "_key": "m1"}


def test_documents_read_back_with_their_keys_in_the_order_written(make_store):
    """Python reads a dict in the order it was written (the papers an approval mail attaches): JSONB alone would sort them."""
    store = make_store()
    with store.transaction() as tx:
        tx.put("meetings/m1/meeting", "meeting", "meeting", {"papers": {"invitation_pdf": "i", "agenda_pdf": "a", "pack_pdf": "p"}})
    assert list(store.get("meetings/m1/meeting", "meeting", "meeting")["papers"]) == ["invitation_pdf", "agenda_pdf", "pack_pdf"]


def test_a_bad_shard_name_is_refused_before_anything_is_written(make_store):
    store = make_store()
    with pytest.raises(ValueError, match="not a valid shard name"):
        store.get("../etc", "t", "k")
    with pytest.raises(ValueError):
        with store.transaction() as tx:
            tx.put("Log", "messages", "1", {})


def test_a_log_of_lines_is_on_record_at_once_in_order_until_emptied(make_store):
    """What the outbox notes of a send is read by anyone at once, not only after a transaction: no batch, no commit to wait for."""
    store, reader = make_store(), make_store(exclusive=False)
    assert reader.read_lines("outbox-sent.log") == []
    store.append_line("outbox-sent.log", "m1\tcommitting\t2026-11-24T09:00:00+07:00\t", durable=False)
    store.append_line("outbox-sent.log", "m1\tsent\t2026-11-24T09:00:01+07:00\t")
    store.append_line("other.log", "ไม่ใช่บันทึกเดียวกัน")
    assert reader.read_lines("outbox-sent.log") == ["m1\tcommitting\t2026-11-24T09:00:00+07:00\t", "m1\tsent\t2026-11-24T09:00:01+07:00\t"]
    store.clear_lines("outbox-sent.log")
    assert reader.read_lines("outbox-sent.log") == [] and reader.read_lines("other.log") == ["ไม่ใช่บันทึกเดียวกัน"]


def test_a_spool_takes_entries_from_any_process_in_order_and_gives_each_up_once_handled(make_store):
    """The clerk's commands reach the process that holds the store, whichever process (or machine) gave them."""
    store, elsewhere = make_store(), make_store(exclusive=False)
    assert store.spooled("commands") == []
    elsewhere.spool("commands", "c1", '{"name": "ประชุม"}'.encode("utf-8"))
    time.sleep(0.01)  # the TinyDB store orders its files by their time
    elsewhere.spool("commands", "c2", b"{}")
    assert store.spooled("commands") == [("c1", '{"name": "ประชุม"}'.encode("utf-8")), ("c2", b"{}")]
    store.unspool("commands", "c1")
    assert elsewhere.spooled("commands") == [("c2", b"{}")]


def test_a_second_daemon_on_the_same_store_is_refused(make_store):
    make_store()
    make_store(exclusive=False)  # a one-off command reads beside the daemon
    with pytest.raises(StoreLocked, match=str(os.getpid())):
        make_store()


# PostgreSQL only.

def test_the_postgresql_store_has_every_method_the_tinydb_store_has():
    """The service calls whichever store it was given: a method added to one must be added to the other."""
    def public(kind: type) -> set[str]:
        return {name for name in dir(kind) if not name.startswith("_")}

    assert public(Store) - public(PostgresStore) == set()


def test_documents_are_jsonb_for_sql_too(database, tmp_path):
    """Operators query the rows in SQL (a report, a repair); what JSONB cannot hold is NULL there and whole in the body."""
    store = PostgresStore(tmp_path, conninfo(database), OFFICE).open()
    with store.transaction() as tx:
        tx.put("outbox", "mail", "m1", {"status": "pending", "to": ["a@school.test"]})
        tx.put("outbox", "mail", "m2", {"status": "sent", "note": "a\x00b"})
    with psycopg.connect(conninfo(database), autocommit=True) as admin:
        rows = admin.execute("SELECT key, document->>'status' FROM documents WHERE office = %s ORDER BY key", (OFFICE,)).fetchall()
        pending = admin.execute("""SELECT key FROM documents WHERE document @> '{"status": "pending"}'""").fetchall()
    assert rows == [("m1", "pending"), ("m2", None)] and pending == [("m1",)]
    assert store.get("outbox", "mail", "m2")["note"] == "a\x00b"


def test_a_failure_inside_postgresql_mid_transaction_writes_nothing(database, tmp_path):
    store = PostgresStore(tmp_path, conninfo(database), OFFICE).open()
    with store.transaction() as tx:
        tx.put("outbox", "mail", "m1", {"n": 1})
    with pytest.raises(StoreError, match="cannot write the store of meeting@office-a.test in PostgreSQL: index row"):
        with store.transaction() as tx:
            tx.put("outbox", "mail", "m1", {"n": 2})
            tx.put("log/00", "messages", os.urandom(8000).hex(), {})  # a key too long for the index: refused by the server
    assert store.get("outbox", "mail", "m1")["n"] == 1
    assert store.shards("log") == []


def test_offices_in_one_database_never_see_each_others_documents_or_files(database, tmp_path):
    a = PostgresStore(tmp_path / "a", conninfo(database), "office-a").open()
    b = PostgresStore(tmp_path / "b", conninfo(database), "office-b").open()  # each office has a lock of its own
    only_a = a.put_file("files", b"office A's secret", "a.pdf")
    for store, name in ((a, "A"), (b, "B")):
        with store.transaction() as tx:
            tx.put("meetings/m1/meeting", "meeting", "meeting", {"office": name, "file": only_a})
    assert a.get("meetings/m1/meeting", "meeting", "meeting")["office"] == "A"
    assert [d["office"] for d in b.find("meetings/m1/meeting", "meeting")] == ["B"]
    with b.transaction() as tx:
        tx.put("log/b", "messages", "1", {})
        tx.delete("meetings/m1/meeting", "meeting", "meeting")
    assert a.shards("log") == [] and a.get("meetings/m1/meeting", "meeting", "meeting") is not None
    assert a.read_file(only_a) == b"office A's secret" and a.file_paths() == [only_a]
    with pytest.raises(FileNotFoundError):
        b.read_file(only_a)
    assert b.file_paths() == []
    paper = keep(a, "meetings/m1/documents", "agenda", pdf=b"%PDF A's agenda")["pdf"]
    with a.transaction() as tx:
        tx.put("meetings/m1/meeting", "meeting", "meeting", {"office": "A", "papers": [paper]})
    assert b.files("meetings/m1/documents") == [] and original_name(keep(b, "meetings/m1/documents", "agenda", pdf=b"x")["pdf"]) == "agenda-v1.pdf"
    with pytest.raises(FileNotFoundError):
        b.read_file(paper)
    a.append_line("outbox-sent.log", "sent by A")
    assert b.read_lines("outbox-sent.log") == []
    b.clear_lines("outbox-sent.log")
    assert a.read_lines("outbox-sent.log") == ["sent by A"]


def test_a_file_reaches_the_database_with_the_transaction_that_names_it(database, tmp_path):
    store = PostgresStore(tmp_path, conninfo(database), OFFICE).open()
    reader = PostgresStore(tmp_path / "elsewhere", conninfo(database), OFFICE).open(exclusive=False)
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            path = store.put_file("mail/in", b"raw mail", "message.eml")
            tx.put("log/00", "messages", "m1", {"raw": path})
            raise RuntimeError("the handler failed")
    with pytest.raises(FileNotFoundError):
        reader.read_file(path)
    with store.transaction() as tx:
        tx.put("log/00", "messages", "m1", {"raw": path})
    assert reader.read_file(path) == b"raw mail" and reader.get("log/00", "messages", "m1")["raw"] == path


def test_a_killed_daemon_frees_its_office_at_once(database, tmp_path):
    code = (f"import sys, time; from service.store.postgres import PostgresStore; "
            f"store = PostgresStore({str(tmp_path)!r}, {conninfo(database)!r}, {OFFICE!r}).open(); print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLocked, match=f"pid {holder.pid}"):
            PostgresStore(tmp_path, conninfo(database), OFFICE).open()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10  # the server ends the dead session, and its lock, as soon as it reads the closed socket
        while True:
            try:
                PostgresStore(tmp_path, conninfo(database), OFFICE).open().close()
                break
            except StoreLocked:
                assert time.monotonic() < deadline, "the killed daemon's lock outlived it"
                time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait()


def test_the_server_gives_up_on_a_silent_daemon_soon_enough_for_a_takeover_within_30_s(database, tmp_path):
    """A machine that dies (power, network) closes no connection: the server's probes must end its session, and free the lock."""
    store = PostgresStore(tmp_path, conninfo(database), OFFICE).open()
    settings = store._db().execute("SELECT current_setting('tcp_keepalives_idle')::int + current_setting('tcp_keepalives_interval')::int"
                                   " * current_setting('tcp_keepalives_count')::int, current_setting('tcp_user_timeout')::int").fetchone()
    silent, unacknowledged = settings[0], settings[1] / 1000
    assert 0 < silent <= 20 and 0 < unacknowledged <= 20, "20 s to notice, and the other instance's look every 5 s, within 30 s"


def test_a_lost_connection_is_an_error_once_then_made_again_with_the_lock(database, tmp_path):
    store = PostgresStore(tmp_path, conninfo(database), OFFICE).open()
    with psycopg.connect(conninfo(database), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'secretary pid%%' AND datname = current_database()")
    with pytest.raises(StoreError, match="in PostgreSQL"):
        store.get("outbox", "mail", "m1")
    assert store.get("outbox", "mail", "m1") is None
    with pytest.raises(StoreLocked):
        PostgresStore(tmp_path, conninfo(database), OFFICE).open()


def test_a_connection_lost_in_a_batch_loses_the_whole_batch_and_says_so(database, tmp_path):
    store = PostgresStore(tmp_path, conninfo(database), OFFICE).open()
    with pytest.raises(StoreError, match="lost in the middle of a batch"):
        with store.batch():
            with store.transaction() as tx:
                tx.put("log/00", "messages", "m1", {})
            with psycopg.connect(conninfo(database), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'secretary pid%%' AND datname = current_database()")
            with pytest.raises(StoreError):
                store.get("log/00", "messages", "m1")
            store.get("log/00", "messages", "m1")  # the batch's transaction is gone: no new session may carry on as if not
    assert store.get("log/00", "messages", "m1") is None


def test_the_schema_is_migrated_once_and_a_newer_one_is_refused(database, tmp_path):
    PostgresStore(tmp_path, conninfo(database), OFFICE).open().close()
    PostgresStore(tmp_path, conninfo(database), "another office").open().close()
    with psycopg.connect(conninfo(database), autocommit=True) as admin:
        assert admin.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall() == [(1, "0001_documents_and_files"), (2, "0002_lines_and_spool")]
        admin.execute("INSERT INTO schema_version (version, name) VALUES (999, 'from the future')")
    with pytest.raises(StoreError, match="schema version 999.*upgrade secretary"):
        PostgresStore(tmp_path, conninfo(database), OFFICE).open()


def test_the_configuration_names_the_database_and_takes_the_password_from_the_environment(tmp_path):
    config = tmp_path / "secretary.toml"
    base = ('[office]\nname = "x"\nmailbox = "meeting@office.test"\nclerk = "clerk@office.test"\n'
            '[source]\nkind = "maildir"\npath = "mail"\n[sender]\nkind = "file"\npath = "out"\n'
            '[security]\nreply_key_secret_env = "KEY"\n[store]\npath = "store"\n')
    environ = {"KEY": "k" * 32}
    config.write_text(base, encoding="utf-8")
    assert load(config, environ).postgres is None
    config.write_text(base + 'kind = "postgresql"\ndsn = "host=db.test dbname=secretary"\npassword_env = "DB"\n', encoding="utf-8")
    settings = load(config, {**environ, "DB": "s3cret"})
    assert (settings.postgres.office, settings.postgres.password) == ("meeting@office.test", "s3cret")
    assert "s3cret" not in repr(settings)
    with pytest.raises(ConfigError, match=r"\[store\] password_env: the environment variable DB is not set"):
        load(config, environ)
    config.write_text(base + 'kind = "postgresql"\ndsn = "host=db.test password=oops"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[store\] dsn: must not hold the password"):
        load(config, environ)


# Moving a store: the demo's whole meeting, written by the daemon on TinyDB.

@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("office")
    run_demo(folder, Console(file=io.StringIO()))
    return folder


@pytest.fixture
def office(demo, tmp_path, database, monkeypatch) -> Path:
    """A copy of the demo's office folder, its configuration switched to PostgreSQL."""
    subprocess.run(["cp", "-a", f"{demo}/.", str(tmp_path / "office")], check=True)
    folder = tmp_path / "office"
    use_postgres(folder / DEFAULT_CONFIG, database, OFFICE)
    monkeypatch.setenv("SECRETARY_DATABASE_PASSWORD", PASSWORD)
    return folder


def migrate(office: Path, *arguments: str) -> int:
    return main(["-c", str(office / DEFAULT_CONFIG), "store", "migrate", *arguments])


def test_the_demo_moves_to_postgresql_and_back_without_loss(office, tmp_path, capsys):
    assert migrate(office, "--from", "tinydb", "--to", "postgresql") == 0
    said = capsys.readouterr().out
    assert "every document and file is the same in both" in said
    assert migrate(office, "--from", "tinydb", "--to", "postgresql") == 0  # again: nothing changes, nothing doubles
    settings = load(office / DEFAULT_CONFIG)
    tinydb, database = Store(settings.store).open(), open_store(settings)
    try:
        found = inventory(tinydb)
        assert len(found.shards) > 5 and len(found.files) > 50
        assert inventory(database).shards == found.shards and inventory(database).files == found.files
        assert f"{sum(len(database.find(s, t)) for s, tables in found.shards.items() for t in tables)} documents, {len(found.files)} files" in said
        meeting_id = all_meetings(database)[0]["id"]
        assert database.find(shard(meeting_id), "items") == tinydb.find(shard(meeting_id), "items")
        # The archive reads the PostgreSQL store as it reads TinyDB: the same files, each checked.
        exports = [export_meeting(store, meeting_id, tmp_path / name) for store, name in ((tinydb, "from-tinydb"), (database, "from-postgresql"))]
        assert [e.problems for e in exports] == [[], []]
        listed = [{(f.path, f.sha256) for f in e.listed if f.section != "records"} for e in exports]
        assert listed[0] == listed[1] and len(listed[0]) > 20
    finally:
        tinydb.close()
        database.close()
    back = tmp_path / "back"
    assert migrate(office, "--from", "postgresql", "--to", "tinydb", "--path", str(back)) == 0
    with Store(settings.store) as original, Store(back) as returned:
        report = verify(original, returned)
    assert report.problems == [] and report.files == len(found.files) and report.documents > 100


def test_the_sent_log_and_the_command_spool_move_with_the_store(office, capsys):
    settings = load(office / DEFAULT_CONFIG)
    with Store(settings.store) as tinydb:
        tinydb.append_line(SENT_LOG, "s.abc@office.test\tcommitting\t2026-12-01T08:00:00+07:00\t")
        tinydb.spool(SPOOL, "c-1", b'{"id": "c-1", "name": "approve"}')
    assert migrate(office, "--from", "tinydb", "--to", "postgresql") == 0
    with open_store(settings) as database:
        assert database.read_lines(SENT_LOG) == ["s.abc@office.test\tcommitting\t2026-12-01T08:00:00+07:00\t"]
        assert database.spooled(SPOOL) == [("c-1", b'{"id": "c-1", "name": "approve"}')]
        assert not any(f == SENT_LOG or f.startswith(f"{SPOOL}/") for f in database.file_paths()), "kept as lines and entries, not files"
        database.append_line(SENT_LOG, "s.def@office.test\tsent\t2026-12-01T08:01:00+07:00\t")
    capsys.readouterr()
    assert migrate(office, "--from", "tinydb", "--to", "postgresql") == 0, "a rerun makes the log the source's again"
    with open_store(settings) as database:
        assert len(database.read_lines(SENT_LOG)) == 1


def test_a_damaged_copy_is_found_and_a_second_run_repairs_it(office, capsys):
    assert migrate(office, "--from", "tinydb", "--to", "postgresql") == 0
    settings = load(office / DEFAULT_CONFIG)
    with psycopg.connect(settings.postgres.conninfo(), autocommit=True) as admin:
        [damaged] = admin.execute("UPDATE contents SET data = 'not the mail' WHERE sha256 = "
                                  "(SELECT sha256 FROM files WHERE path LIKE 'mail/in/%%' ORDER BY path LIMIT 1) RETURNING sha256").fetchone()
        [lost] = admin.execute("DELETE FROM documents WHERE key = (SELECT min(key) FROM documents WHERE shard LIKE 'log/%%') RETURNING key").fetchone()
        [changed] = admin.execute("UPDATE documents SET body = (document || '{\"status\": \"forged\"}')::text "
                                  "WHERE key = 'meeting' RETURNING shard").fetchone()
    with Store(settings.store) as tinydb, open_store(settings) as database:
        problems = verify(tinydb, database).problems
    assert len(problems) == 4, problems
    assert any(damaged in p and "SHA-256" in p for p in problems)
    assert any(lost in p and "differs" in p for p in problems) and any("documents in the source" in p for p in problems)
    assert any(p.startswith(f"{changed} meeting meeting") for p in problems)
    capsys.readouterr()
    assert main(["-c", str(office / DEFAULT_CONFIG), "store", "migrate", "--from", "tinydb", "--to", "postgresql"]) == 0


def test_moving_needs_the_database_settings_and_two_kinds(office, capsys):
    assert migrate(office, "--from", "postgresql", "--to", "postgresql") == 2
    assert "nothing to move" in capsys.readouterr().err
    copy_config = office / "tinydb.toml"
    copy_config.write_text((office / DEFAULT_CONFIG).read_text(encoding="utf-8").replace('kind = "postgresql"\n', ""), encoding="utf-8")
    assert main(["-c", str(copy_config), "store", "migrate", "--from", "tinydb", "--to", "postgresql"]) == 2
    assert 'kind = "postgresql" and its dsn first' in capsys.readouterr().err


def test_a_running_daemon_stops_a_move(office, capsys):
    """Both stores are opened as a daemon would: a move never races the daemon's writes."""
    settings = load(office / DEFAULT_CONFIG)
    with open_store(settings):
        assert migrate(office, "--from", "tinydb", "--to", "postgresql") == 2
    assert "is already working" in capsys.readouterr().err


@pytest.mark.parametrize("instances", [2, 3])
def test_instances_share_an_office_and_one_killed_mid_batch_loses_and_doubles_nothing(instances, database, tmp_path):
    """Each waits for the office's lock; the one working is SIGKILLed; the next takes over and finishes."""
    handover = kill_mid_batch(conninfo(database), tmp_path, OFFICE, instances, messages=400)
    print(f"{instances} instances: lost {handover.lost}, doubled {handover.doubled}, "
          f"taken over {handover.seconds * 1000:.0f} ms after SIGKILL")
    assert (handover.lost, handover.doubled) == (0, 0)
    assert sorted(handover.exits.values()) == [-signal.SIGKILL] + [0] * (instances - 1)
    assert len(handover.handlers) == 2  # the killed one and the one that took over; a third found nothing left
    assert 0 < handover.seconds < 30

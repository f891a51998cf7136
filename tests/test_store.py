"""The store: transactions across shards, crash recovery from the journal, the lock, files."""

import errno
import json
import os
import subprocess
import sys

import pytest

from service.store import JOURNAL, Store, StoreError, StoreLocked, storage


def test_transaction_writes_every_shard_or_none(tmp_path):
    store = Store(tmp_path).open()
    with store.transaction() as tx:
        tx.put("log/ab", "messages", "mid:1", {"subject": "ประชุม"})
        tx.put("outbox", "mail", "m1", {"to": ["a@b.c"]})
    assert store.get("log/ab", "messages", "mid:1")["subject"] == "ประชุม"
    assert [d["_key"] for d in store.find("outbox", "mail")] == ["m1"]
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.put("outbox", "mail", "m2", {})
            raise RuntimeError("the handler failed")
    assert store.get("outbox", "mail", "m2") is None
    assert not (tmp_path / JOURNAL).exists()


def test_a_journal_left_by_a_crash_is_applied_on_the_next_open(tmp_path):
    store = Store(tmp_path).open()
    with store.transaction() as tx:
        tx.put("outbox", "mail", "m1", {"n": 1})
    store.close()
    # A crash after the journal was written but before the shards were: replay it.
    records = [["outbox", "mail", "m1", None], ["meetings/m1/meeting", "items", "i1", {"title": "x", "_key": "i1"}]]
    (tmp_path / JOURNAL).write_text(json.dumps(records))
    store = Store(tmp_path).open()
    assert store.get("outbox", "mail", "m1") is None
    assert store.get("meetings/m1/meeting", "items", "i1")["title"] == "x"
    assert not (tmp_path / JOURNAL).exists()


def test_a_second_daemon_on_the_same_store_is_refused(tmp_path):
    Store(tmp_path).open()
    code = f"from service.store import Store; Store({str(tmp_path)!r}).open()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "StoreLocked" in result.stderr and str(os.getpid()) in result.stderr
    with pytest.raises(StoreLocked):
        Store(tmp_path).open()


def test_files_are_content_addressed_and_written_once(tmp_path):
    store = Store(tmp_path).open()
    first = store.put_file("files", b"%PDF-1.4 ...", "งบประมาณ ไตรมาส 1.pdf")
    second = store.put_file("files", b"%PDF-1.4 ...", "งบประมาณ ไตรมาส 1.pdf")
    assert first == second and first.endswith("งบประมาณ_ไตรมาส_1.pdf")
    assert store.read_file(first) == b"%PDF-1.4 ..."


def test_a_full_disk_leaves_every_shard_as_it_was(tmp_path, monkeypatch):
    store = Store(tmp_path).open()
    with store.transaction() as tx:
        tx.put("outbox", "mail", "m1", {"n": 1})
        tx.put("log/00", "messages", "mid:1", {"n": 1})
    real_write = storage.write_atomically

    def full_disk_on_the_log(path, data):
        if path.name == "00.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(storage, "write_atomically", full_disk_on_the_log)
    with pytest.raises(StoreError, match="No space left"):
        with store.transaction() as tx:
            tx.put("outbox", "mail", "m1", {"n": 2})
            tx.put("log/00", "messages", "mid:1", {"n": 2})
    with pytest.raises(StoreError, match="No space left"):
        store.get("log/00", "messages", "mid:1")
    # The journal kept the whole transaction: once the disk has room, the next read finishes it.
    monkeypatch.setattr(storage, "write_atomically", real_write)
    assert store.get("outbox", "mail", "m1")["n"] == 2
    assert store.get("log/00", "messages", "mid:1")["n"] == 2


def test_text_with_undecodable_bytes_is_stored_and_read_back_as_it_was(tmp_path):
    """A header with bytes no charset reads parses to lone surrogates; the store must keep them, not fail on them."""
    sender = b"\xc2\x80\xff <x@school.test>".decode("utf-8", "surrogateescape")
    with Store(tmp_path) as store:
        with store.transaction() as transaction:
            transaction.put("log/00", "messages", "m1", {"from": sender, "subject": "ไทย"})
    with Store(tmp_path) as store:
        assert store.get("log/00", "messages", "m1")["from"] == sender

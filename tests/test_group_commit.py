"""Group commit: a backlog's messages share one store write, and nothing of a batch is moved or sent before it."""

from __future__ import annotations

import errno

import pytest

from helpers import ENV, message, write_config
from service.config import load
from service.daemon import Daemon, build, make_sender, make_source
from service.mail.maildir import deliver
import service.store
from service.store import JOURNAL, Store, StoreError, storage


def test_a_batch_reads_its_own_writes_and_writes_nothing_until_it_ends(tmp_path):
    store = Store(tmp_path).open()
    with store.batch():
        with store.transaction() as tx:
            tx.put("log/ab", "messages", "mid:1", {"subject": "ประชุม"})
        with store.transaction() as tx:
            tx.put("log/ab", "messages", "mid:2", {"subject": "วาระ"})
            tx.put("meetings/m1/meeting", "meeting", "m1", {"stage": "collecting"})
        assert store.get("log/ab", "messages", "mid:1")["subject"] == "ประชุม"
        assert store.shards("meetings") == ["meetings/m1/meeting"], "a shard the batch made is listed before it is written"
        assert not (tmp_path / "log").exists() and not (tmp_path / JOURNAL).exists()
    reader = Store(tmp_path).open(exclusive=False)
    assert [d["_key"] for d in reader.find("log/ab", "messages")] == ["mid:1", "mid:2"]
    assert reader.get("meetings/m1/meeting", "meeting", "m1")["stage"] == "collecting"
    assert not (tmp_path / JOURNAL).exists()


def test_a_failed_batch_writes_none_of_its_transactions(tmp_path):
    store = Store(tmp_path).open()
    with store.transaction() as tx:
        tx.put("outbox", "mail", "m0", {"n": 0})
    with pytest.raises(RuntimeError):
        with store.batch():
            with store.transaction() as tx:
                tx.put("outbox", "mail", "m0", {"n": 1})
                tx.put("outbox", "mail", "m1", {"n": 1})
            raise RuntimeError("the daemon failed mid-batch")
    assert store.get("outbox", "mail", "m0")["n"] == 0, "memory went back to what the disk holds"
    assert store.get("outbox", "mail", "m1") is None
    assert Store(tmp_path).open(exclusive=False).get("outbox", "mail", "m1") is None


def test_a_full_disk_at_the_batch_write_loses_the_batch_and_nothing_else(tmp_path, monkeypatch):
    store = Store(tmp_path).open()

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(service.store, "write_atomically", full_disk)
        with pytest.raises(StoreError, match="No space left"):
            with store.batch():
                with store.transaction() as tx:
                    tx.put("log/00", "messages", "mid:1", {"n": 1})
    assert store.get("log/00", "messages", "mid:1") is None
    with store.batch():
        with store.transaction() as tx:
            tx.put("log/00", "messages", "mid:1", {"n": 2})
    assert Store(tmp_path).open(exclusive=False).get("log/00", "messages", "mid:1")["n"] == 2


def test_a_journal_that_could_not_be_applied_is_applied_by_the_next_read(tmp_path, monkeypatch):
    store = Store(tmp_path).open()

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:  # the journal is written; the shards are not
        patch.setattr(storage, "write_atomically", full_disk)
        with pytest.raises(StoreError):
            with store.batch():
                with store.transaction() as tx:
                    tx.put("log/00", "messages", "mid:1", {"n": 1})
                    tx.put("outbox", "mail", "a1", {"to": ["a@b.c"]})
    assert (tmp_path / JOURNAL).exists(), "the batch is journalled whole"
    assert store.get("outbox", "mail", "a1") == {"to": ["a@b.c"], "_key": "a1"}
    assert store.get("log/00", "messages", "mid:1")["n"] == 1
    assert not (tmp_path / JOURNAL).exists()


@pytest.fixture
def office(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return load(write_config(tmp_path, 'kind = "maildir"\npath = "mailbox"', 'kind = "file"\npath = "outgoing"'))


def test_a_batch_that_cannot_be_written_moves_and_answers_none_of_its_messages(office, monkeypatch):
    for n in range(5):
        deliver(office.source.path, message(message_id=f"<batch-{n}@school001.example.ac.th>", text=f"ยืนยันเข้าร่วมประชุมครับ ({n})"), f"m{n}")
    secretary, source = build(office), make_source(office)
    real_write = service.store.write_atomically

    def full_disk_at_the_commit(path, data):
        if path.name == JOURNAL:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    with monkeypatch.context() as patch:
        patch.setattr(service.store, "write_atomically", full_disk_at_the_commit)
        with pytest.raises(StoreError):
            secretary.pipeline.process(source, source.fetch_new(), most=5, seconds=60)
    assert len(list((office.source.path / "new").iterdir())) == 5, "every message of the batch is still in the inbox"
    secretary.outbox.drain(make_sender(office), secretary.clock())
    assert not office.sender.path.exists() or not list(office.sender.path.iterdir()), "nothing of the batch was sent"
    secretary.office.store.close()

    daemon = Daemon(build(office), make_source(office), make_sender(office))
    daemon.run(once=True)
    assert sorted(h.status for h in daemon.handled) == ["processed"] * 5
    assert not any(h.duplicate for h in daemon.handled)
    assert len(list(office.sender.path.glob("*.eml"))) == 5
    assert len(list((office.source.path / ".Processed" / "cur").iterdir())) == 5

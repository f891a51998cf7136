"""The outbox: queued with the change that causes it, sent once, retried when the server says later."""

from datetime import datetime, timedelta, timezone

import pytest

from service.config import PROJECT_ROOT
from service.mail.compose import Composer, Outgoing
from service.mail.outbox import Outbox
from service.mail.sender import Delivery
from service.store import Store

NOW = datetime(2026, 11, 24, 9, tzinfo=timezone(timedelta(hours=7)))


class Server:
    """A sender that answers as told, and remembers what it was given."""

    def __init__(self, answers=(), die_while_committing=False):
        self.answers = list(answers)
        self.die_while_committing = die_while_committing
        self.received = []

    def send_batch(self, envelopes, committing=None):
        for envelope in envelopes:
            if committing:
                committing(envelope.message_id)
            if self.die_while_committing:
                raise SystemExit("killed after the last byte, before the reply")
            self.received.append(envelope.message_id)
            ok, permanent = self.answers.pop(0) if self.answers else (True, False)
            yield Delivery(envelope.message_id, ok=ok, permanent=permanent, error="" if ok else "451 try later")


@pytest.fixture
def outbox(tmp_path):
    return three_queued(Store(tmp_path).open())


def three_queued(store) -> Outbox:
    """An outbox on `store` with three acknowledgements queued."""
    composer = Composer(PROJECT_ROOT / "templates", "สพป.ทดสอบ", "meeting@office.test")
    box = Outbox(store, composer, "meeting@office.test")
    with store.transaction() as transaction:
        for n in range(3):
            box.queue(transaction, Outgoing("acknowledgement", (f"p{n}@school.test",), {
                "kind": "unknown", "sender_name": "ผู้ส่ง", "subject": "ทดสอบ", "received": NOW, "attachments": [],
                "attendance": "", "delegate": "", "delegate_position": "", "reason": "", "approved": False,
                "meeting_title": "", "agenda_result": "", "section_title": "", "item_title": "ทดสอบ",
            }, cause=f"ack:{n}"), NOW)
    return box


def test_each_message_is_sent_once_and_leaves_the_outbox(outbox):
    server = Server()
    assert outbox.drain(server, NOW).sent == 3
    assert outbox.drain(server, NOW).sent == 0
    assert len(server.received) == 3 and outbox.pending() == []
    assert len(settled(outbox.store, "2026-11")) == 3


def test_a_message_the_server_had_when_the_daemon_died_is_not_sent_again(outbox):
    with pytest.raises(SystemExit):
        outbox.drain(Server(die_while_committing=True), NOW)
    server = Server()
    assert outbox.drain(server, NOW).sent == 2
    assert len(server.received) == 2, "the one in the server's hands is counted as sent"
    [in_doubt] = [d for d in settled(outbox.store, "2026-11") if d["last_error"]]
    assert "counted as sent" in in_doubt["last_error"]


def test_a_sent_log_an_older_secretary_wrote_is_still_read(outbox):
    """The TinyDB store keeps the log as it always did: one file, one tab-separated line per note."""
    [first, *_] = outbox.pending()
    (outbox.store.root / "outbox-sent.log").write_text(f"{first['message_id']}\tsent\t{NOW.isoformat()}\t\n", encoding="utf-8")
    server = Server()
    assert outbox.drain(server, NOW).sent == 2
    assert first["message_id"] not in server.received
    assert (outbox.store.root / "outbox-sent.log").read_text(encoding="utf-8") == ""
    assert len(settled(outbox.store, "2026-11")) == 3


def test_an_instance_on_another_machine_taking_the_office_over_sends_nothing_twice(postgres, tmp_path):
    """With PostgreSQL the sent log is in the database: an instance elsewhere (another folder) knows what the dead one sent."""
    from postgres import PASSWORD  # psycopg loads only for the tests that use PostgreSQL
    from service.store.postgres import PostgresStore

    conninfo = f"{postgres.database()} password={PASSWORD}"
    dead = three_queued(PostgresStore(tmp_path / "machine-a", conninfo, "meeting@office.test").open())
    with pytest.raises(SystemExit):
        dead.drain(Server(die_while_committing=True), NOW)
    dead.store.close()  # what its death does to its connection: the office's lock goes
    taker = Outbox(PostgresStore(tmp_path / "machine-b", conninfo, "meeting@office.test").open(), dead.composer, dead.envelope_sender)
    server = Server()
    assert taker.drain(server, NOW).sent == 2
    assert len(server.received) == 2 and taker.pending() == []
    [in_doubt] = [d for d in settled(taker.store, "2026-11") if d["last_error"]]
    assert "counted as sent" in in_doubt["last_error"]
    assert not (tmp_path / "machine-b" / "outbox-sent.log").exists()
    taker.store.close()


def test_later_means_retry_with_backoff_and_refused_means_never(outbox):
    server = Server(answers=[(False, False), (False, True), (True, False)])
    drained = outbox.drain(server, NOW)
    assert (drained.sent, drained.failed, drained.deferred) == (1, 1, 1)
    assert outbox.drain(server, NOW).sent == 0, "not before its retry time"
    assert outbox.drain(server, NOW + timedelta(minutes=2)).sent == 1
    assert len(server.received) == 4


def settled(store, month: str) -> list[dict]:
    """The month's settled mail, from all its shards."""
    return [d for shard in store.shards(f"sent/{month}") for d in store.find(shard, "mail")]

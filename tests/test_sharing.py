"""Instances running the same offices share them (service/members.py), and rebalance when one dies or joins.

The decision is a pure function (`plan`), tested first on its own and then
by simulating members that look at the same locks round after round. The
end-to-end test runs `secretary run --offices DIR` processes, each with a
folder and store folders of its own (as separate machines have), on the same
six offices: their stores in the session's PostgreSQL, their shared mailboxes
on Dovecot, their acknowledgements out through Postfix into each office's
director's Dovecot mailbox. Three share the six; one is SIGKILLed in the
middle of sending; the two others take its offices; a fourth joins and gets
a share; mail arrives all along, and each message must be handled, filed and
acknowledged exactly once.
"""

from __future__ import annotations

import email
import email.policy
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from helpers import message
from postgres import PASSWORD, use_postgres
from test_offices import ENVIRON, ROOT, small_office, wait_for
from service.members import View, fair_share, plan, weight
from service.store.postgres import lock_key

OFFICES = 6
FIRST_WAVE = 12  # messages per office while three instances run, one of them killed
SECOND_WAVE = 6  # per office while a fourth instance joins
TAKEOVER_LIMIT = 30.0
SHARE_LIMIT = 90.0  # from start (or a join) to a fair share each: one office handed back every 5 s by each instance

NAMES = [f"office-{n}" for n in range(OFFICES)]


def view(me: str, members: set[str], holders: dict[str, str] | None = None, **others) -> View:
    sets = {key: frozenset(value) for key, value in others.items() if key != "hand_back"}
    return View(me=me, offices=frozenset(NAMES), members=frozenset(members), holders=holders or {},
                hand_back=others.get("hand_back", True), **sets)


def test_the_share_is_the_offices_over_the_members_rounded_up():
    assert [fair_share(6, members) for members in (1, 2, 3, 4, 5, 6, 7)] == [6, 3, 2, 2, 2, 1, 1]
    assert fair_share(7, 3) == 3 and fair_share(0, 2) == 0 and fair_share(3, 0) == 3


def test_an_instance_alone_takes_every_office_and_hands_none_back():
    decided = plan(view("a", {"a"}))
    assert sorted(decided.take) == NAMES and decided.release is None
    assert (decided.share, decided.holding, decided.members) == (6, 6, 1)


def test_members_reading_the_same_locks_take_disjoint_fair_shares_of_the_free_offices():
    members = {"a", "b", "c"}
    taken = {me: set(plan(view(me, members)).take) for me in sorted(members)}
    assert [len(offices) for offices in taken.values()] == [2, 2, 2]
    assert set().union(*taken.values()) == set(NAMES), "every office taken, none by two"


def test_an_instance_over_its_share_hands_back_its_lowest_ranked_office_one_at_a_time():
    everything = dict.fromkeys(NAMES, "a")
    decided = plan(view("a", {"a", "b"}, everything))
    assert decided.take == () and decided.release == min(NAMES, key=lambda office: weight(office, "a"))
    assert (decided.share, decided.holding) == (3, 5)
    assert plan(view("a", {"a", "b"}, everything, hand_back=False)).release is None, "calm: an office handed back went unrun"
    # one already on its way out counts as gone, and as going to the others
    releasing = plan(view("a", {"a", "b"}, everything, releasing={decided.release}))
    assert releasing.release is not None and releasing.release != decided.release
    assert plan(view("a", {"a", "b"}, everything, releasing=set(NAMES[:3]))).release is None


def test_at_its_share_an_instance_takes_a_free_office_only_once_nobody_has_held_it_for_the_grace():
    holders = {**dict.fromkeys(NAMES[:3], "a"), **dict.fromkeys(NAMES[3:5], "b")}
    assert plan(view("a", {"a", "b"}, holders)).take == (), "b has the room: a leaves it to b"
    orphan = plan(view("a", {"a", "b"}, holders, orphans={NAMES[5]}))
    assert orphan.take == (NAMES[5],) and orphan.release is None, "taken whatever the share, and nothing handed back at once"
    assert plan(view("a", {"a", "b"}, {**holders, NAMES[5]: "a"})).release is not None, "over its share at the next look: one back"
    assert plan(view("b", {"a", "b"}, holders)).take == (NAMES[5],)


def test_an_office_being_started_here_counts_as_held_here():
    decided = plan(view("a", {"a"}, {}, taking=set(NAMES[:4])))
    assert sorted(decided.take) == NAMES[4:] and decided.holding == 6


@pytest.mark.parametrize("seed", range(30))
def test_members_converge_to_fair_shares_with_every_office_held_and_then_stay_put(seed):
    """Members join and die at random; each round every member plans on the same locks; a lock has one holder."""
    rng = random.Random(seed)
    offices = [f"office-{n}" for n in range(rng.randint(1, 12))]
    members = {f"m{n}" for n in range(rng.randint(1, 4))}
    holders: dict[str, str] = {office: rng.choice(sorted(members)) for office in offices if rng.random() < 0.5}
    free_for: Counter[str] = Counter()
    changes = 0
    for round_ in range(60):
        if round_ < 20 and rng.random() < 0.15:  # one dies (its locks go with it) or one joins
            if len(members) > 1 and rng.random() < 0.5:
                dead = rng.choice(sorted(members))
                members.discard(dead)
                holders = {office: holder for office, holder in holders.items() if holder != dead}
            else:
                members.add(f"m{len(members) + round_ + 10}")
        orphans = frozenset(office for office in offices if free_for[office] >= 2)
        plans = {me: plan(View(me=me, offices=frozenset(offices), members=frozenset(members), holders=dict(holders),
                               orphans=orphans)) for me in sorted(members)}
        for me in rng.sample(sorted(plans), len(plans)):
            for office in plans[me].take:
                holders.setdefault(office, me)  # the first to ask gets the lock; the others are refused
            if plans[me].release is not None:
                del holders[plans[me].release]
        changes += sum(len(p.take) + (p.release is not None) for p in plans.values()) if round_ >= 40 else 0
        for office in offices:
            free_for[office] = free_for[office] + 1 if office not in holders else 0
    share = fair_share(len(offices), len(members))
    counts = Counter(holders.values())
    assert set(holders) == set(offices), "every office held"
    assert max(counts.values(), default=0) <= share, f"no member over its share: {counts}, share {share}"
    assert changes == 0, "once fair, nothing moves"


def test_instances_share_the_offices_take_over_from_one_killed_and_give_a_share_to_one_joining(tmp_path, mail_servers, postgres):
    dovecot, postfix = mail_servers
    dsn = postgres.database()
    machines = [tmp_path / f"machine-{n}" for n in range(1, 5)]
    for machine in machines:
        (machine / "offices").mkdir(parents=True)
    offices: dict[str, tuple[str, str]] = {}  # name → (mailbox, director)
    for name in NAMES:
        office_file, mailbox, director = small_office(tmp_path, machines[0] / "offices", name, dovecot, postfix)
        use_postgres(office_file, dsn, mailbox)
        offices[name] = (mailbox, director)
        text = office_file.read_text(encoding="utf-8")
        for machine in machines:
            (machine / "offices" / f"{name}.toml").write_text(text.replace(str(tmp_path / name / "store"), str(machine / "store" / name)),
                                                             encoding="utf-8")
    mailboxes = [mailbox for mailbox, _ in offices.values()]
    database = psycopg.connect(f"{dsn} password={PASSWORD}", autocommit=True)

    def holders() -> dict[str, int]:
        """Mailbox → the pid of the instance holding the office's lock (from pg_locks and the sessions' names)."""
        keys = {lock_key(mailbox): mailbox for mailbox in mailboxes}
        rows = database.execute(
            "SELECT (l.classid::bigint << 32) | l.objid::bigint, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = ANY(%s)",
            (list(keys),)).fetchall()
        found = {keys[key]: re.match(r"secretary pid (\d+) ", name) for key, name in rows}
        return {mailbox: int(match.group(1)) for mailbox, match in found.items() if match}

    def shares() -> list[int]:
        return sorted(Counter(holders().values()).values())

    def handled() -> int:
        return database.execute("SELECT count(*) FROM documents WHERE office = ANY(%s) AND shard LIKE 'log/%%' AND table_name = 'messages'",
                                (mailboxes,)).fetchone()[0]

    instances: dict[int, tuple[subprocess.Popen, Path]] = {}

    def start(machine: Path) -> int:
        log = machine / "secretary.log"
        with log.open("ab") as output:
            process = subprocess.Popen([sys.executable, "-m", "service", "run", "--offices", str(machine / "offices")],
                                       stdout=output, stderr=output, cwd=ROOT,
                                       env={**ENVIRON, "SECRETARY_DATABASE_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)})
        instances[process.pid] = (process, log)
        return process.pid

    def logs() -> str:
        return "".join(f"--- {log}\n{log.read_text()[-3000:]}\n" for _, log in instances.values())

    sent = {name: [message(sender=director, to=mailbox, subject=f"เรื่องที่ {n} ของ {name}")
                   for n in range(FIRST_WAVE + SECOND_WAVE)] for name, (mailbox, director) in offices.items()}
    first_wave = threading.Thread(target=deliver, args=(dovecot, offices, sent, 0, FIRST_WAVE), name="first-wave", daemon=True)
    second_wave = threading.Thread(target=deliver, args=(dovecot, offices, sent, FIRST_WAVE, FIRST_WAVE + SECOND_WAVE),
                                   name="second-wave", daemon=True)
    try:
        began = time.monotonic()
        for machine in machines[:3]:
            start(machine)
        wait_for(lambda: shares() == [2, 2, 2], "three instances to hold two offices each", timeout=SHARE_LIMIT)
        shared_in = time.monotonic() - began
        first_wave.start()
        wait_for(lambda: handled() >= OFFICES * FIRST_WAVE // 4, "a quarter of the first wave to be handled")
        victim = holders()[mailboxes[0]]
        theirs = [mailbox for mailbox, pid in holders().items() if pid == victim]
        deadline = time.monotonic() + 60
        while not database.execute("SELECT 1 FROM lines WHERE office = ANY(%s)", (theirs,)).fetchone():  # sends noted, not folded
            assert time.monotonic() < deadline, "the instance to be killed never noted a send"
            time.sleep(0.002)
        since_kill = {pid: log.stat().st_size for pid, (_, log) in instances.items() if pid != victim}  # where their logs were then
        held_at_kill = [mailbox for mailbox, pid in holders().items() if pid == victim]  # it may have handed one back meanwhile
        instances[victim][0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        assert instances[victim][0].wait(10) == -signal.SIGKILL
        wait_for(lambda: shares() == [3, 3] and victim not in holders().values(), "the two others to take the killed one's offices",
                 timeout=TAKEOVER_LIMIT)
        taken_over = time.monotonic() - killed
        first_wave.join(120)
        joined_at = time.monotonic()
        newcomer = start(machines[3])
        second_wave.start()
        wait_for(lambda: shares() == [2, 2, 2] and newcomer in holders().values(), "the new instance to get its share",
                 timeout=SHARE_LIMIT)
        rebalanced = time.monotonic() - joined_at
        second_wave.join(120)
        total = OFFICES * (FIRST_WAVE + SECOND_WAVE)
        wait_for(lambda: handled() == total, "every message to be handled", timeout=120)
        outbox = "SELECT 1 FROM documents WHERE office = ANY(%s) AND shard = 'outbox'"
        wait_for(lambda: not database.execute(outbox, (mailboxes,)).fetchone(), "every outbox to be empty", timeout=60)
        postfix.wait_for_queue_empty()
        final = holders()
        texts = {pid: log.read_text() for pid, (_, log) in instances.items()}
    except AssertionError as error:
        raise AssertionError(f"{error}\n{logs()}") from None
    finally:
        for process, _ in instances.values():
            process.kill()
            process.wait()
        database.close()

    in_doubt = sum(text.count("was in the server's hands when the daemon stopped") for text in texts.values())
    missing, doubled_acks = 0, 0
    for name, (mailbox, director) in offices.items():
        ids = sorted(header(raw, "Message-ID") for raw in sent[name])
        filed = sorted(header(raw, "Message-ID") for raw in dovecot.messages(mailbox, "Processed"))
        replies = [header(raw, "In-Reply-To") for raw in dovecot.messages(director)]
        assert dovecot.messages(mailbox) == [], f"nothing left in {name}'s inbox"
        assert filed == ids, f"each of {name}'s messages filed once: none lost, none doubled"
        doubled_acks += len(replies) - len(set(replies))
        missing += len(set(ids) - set(replies))
    released = sum(text.count("handing it back to rebalance") for text in texts.values())
    took_over = {name for pid, offset in since_kill.items()
                 for name in re.findall(rf"office (\S+): taking it over from secretary pid {victim} ",
                                        instances[pid][1].read_bytes()[offset:].decode("utf-8", "replace"))}
    print(f"shared 2/2/2 {shared_in:.1f} s after three started; the killed one's offices taken over {taken_over:.1f} s after SIGKILL; "
          f"a fourth got its share {rebalanced:.1f} s after it started; {released} offices handed back in all; "
          f"{in_doubt} sends in the server's hands at the kill")
    assert doubled_acks == 0, "no message acknowledged twice"
    assert missing <= in_doubt, "only a send the server may not have taken when the instance died may be missing"
    assert taken_over < TAKEOVER_LIMIT
    assert sorted(Counter(final.values()).values()) == [2, 2, 2], "still fair at the end: nothing thrashed"
    killed_ones = {name for name, (mailbox, _) in offices.items() if mailbox in held_at_kill}
    assert killed_ones and killed_ones <= took_over, "the offices the killed one held taken over, and said so"
    for pid, text in texts.items():
        assert "starting it again" not in text and "Traceback" not in text, f"sharing is not a failure:\n{text[-3000:]}"


def header(raw: bytes, name: str) -> str:
    return email.message_from_bytes(raw, policy=email.policy.default)[name]


def deliver(dovecot, offices: dict[str, tuple[str, str]], sent: dict[str, list[bytes]], start: int, end: int) -> None:
    """Mail arriving in every office in turn, as fast as one IMAP session per mailbox appends it, while the instances work."""
    clients = {name: dovecot.client(mailbox) for name, (mailbox, _) in offices.items()}
    try:
        for n in range(start, end):
            for name, client in clients.items():
                client.append("INBOX", sent[name][n])
    finally:
        for client in clients.values():
            client.logout()


def test_when_the_members_cannot_be_counted_every_office_is_tried_as_if_alone_at_a_pace(caplog):
    from types import SimpleNamespace

    from service.members import Sharing

    class Office:
        def __init__(self, name: str) -> None:
            self.name, self.taken = name, 0
            self.settings = SimpleNamespace(postgres=SimpleNamespace(dsn="host=127.0.0.1 port=1", office=f"{name}@office.test",
                                                                     conninfo=lambda: "host=127.0.0.1 port=1 connect_timeout=2"))

        def take(self) -> None:
            self.taken += 1

        def release(self) -> None:
            raise AssertionError("nothing is handed back when the members cannot be counted")

        def wants(self) -> bool:
            return False

    offices = [Office("a"), Office("b")]
    sharing = Sharing(pace_seconds=0.5)
    with caplog.at_level("INFO", logger="service.members"):
        for _ in range(3):
            sharing.balance(offices)  # three looks in quick succession: tried at the first only
        time.sleep(0.6)
        sharing.balance(offices)
    sharing.close()
    assert [office.taken for office in offices] == [2, 2]
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 1 and "cannot count the instances sharing the offices in PostgreSQL host=127.0.0.1 port=1" in said[0], said

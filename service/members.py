"""Instances that run the same offices share them: who is alive, and which offices each one takes or hands back.

Every `secretary run --offices` instance whose offices keep their stores in
PostgreSQL is a member of each database they use: it holds a shared session
advisory lock there (`MEMBERS_LOCK`, in the two-number key space, where no
office's lock is) on a connection of its own, so the server counts it as
long as it lives and forgets it the moment its session ends, as it frees an
office's lock. Every `LOOK_SECONDS` an instance reads, in one query, which
instances are members and which holds each of its offices (the sessions'
application names, "secretary pid … on host"), and `plan` decides:

- the fair share is ceil(offices / members);
- an office nobody holds goes to the member that ranks highest for it
  (rendezvous hashing of the office and the member) among those holding
  fewer than their share, so every member, reading the same locks, agrees
  who takes which, and none takes more than its share;
- an office nobody has held for `ORPHAN_SECONDS` is taken by anyone,
  whatever its share, so none is left unrun when the members disagree (one
  joining or leaving, folders that differ);
- an instance over its share hands back one office every `PACE_SECONDS`
  (not at a look at which it takes any), the one it ranks lowest: it stops
  the office's daemon after the batch in hand, which closes the store and
  frees the lock, and does not take it again while it holds its share. If
  an office it handed back is left unrun (the others lack its file), it
  takes it back and hands nothing back for `CALM_SECONDS`.

So a new instance gets its share within a few hand-backs, and the offices
of one that died are taken by the others at the next look after the server
frees its locks. The lock of each office still guarantees that one daemon
at a time runs it. When the members cannot be counted (the database cannot
be reached), every office is tried every `PACE_SECONDS` as if this instance
were alone, as before.
Offices are grouped by their `[store] dsn` as written: give every office of
one database the same dsn.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping, Protocol

if TYPE_CHECKING:
    import psycopg

    from .config import Settings

log = logging.getLogger(__name__)

#: The members' shared lock: pg_try_advisory_lock_shared(int, int), two numbers ("SECR", 1), never an office's one.
MEMBERS_LOCK = (0x53454352, 1)
#: How often the members and the offices' holders are looked at: an office whose holder died is taken this soon.
LOOK_SECONDS = 1.0
#: An instance over its share hands back one office this often at the most (the supervisor's look at its folder);
#: when the members cannot be counted, every office is tried this often.
PACE_SECONDS = 5.0
#: An office nobody holds for this long is taken by any member, whatever its share.
ORPHAN_SECONDS = 10.0
#: How long an instance hands nothing back after an office it handed back was left unrun.
CALM_SECONDS = 300.0

_LOOK = """
    SELECT l.objsubid = 2, (l.classid::bigint << 32) | l.objid::bigint, coalesce(nullif(a.application_name, ''), 'backend ' || l.pid)
    FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((l.objsubid = 2 AND l.classid = %s::oid AND l.objid = %s::oid)
           OR (l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = ANY(%s)))
"""


def fair_share(offices: int, members: int) -> int:
    """How many offices one member should run: ceil(offices / members)."""
    return math.ceil(offices / max(members, 1))


def weight(office: str, member: str) -> int:
    """The rendezvous weight of a member for an office: the member with the highest takes it, when it has room."""
    return int.from_bytes(hashlib.sha256(f"{office}\0{member}".encode("utf-8")).digest()[:8], "big")


@dataclass(frozen=True)
class View:
    """What one instance knows of one database's offices at a look: the locks, and what it is doing itself."""

    me: str  # this instance's sessions' application name
    offices: frozenset[str]  # the PostgreSQL offices this instance runs from the database
    members: frozenset[str]  # the live instances, as the members' lock counts them
    holders: Mapping[str, str] = field(default_factory=dict)  # office → the instance holding its lock (absent: nobody)
    taking: frozenset[str] = frozenset()  # given to its daemon here, lock not yet taken
    releasing: frozenset[str] = frozenset()  # handed back, its daemon finishing the batch in hand (still holds the lock)
    orphans: frozenset[str] = frozenset()  # held by nobody for ORPHAN_SECONDS or longer
    hand_back: bool = True  # False just after handing one back, and for a while after one handed back was left unrun


@dataclass(frozen=True)
class Plan:
    """What to do at this look: the offices to take, at most one to hand back, and the counts that decided it."""

    take: tuple[str, ...]
    release: str | None
    share: int
    holding: int  # after the plan
    members: int


def plan(view: View) -> Plan:
    """Decide which free offices this instance takes and whether it hands one back (see the module's docstring)."""
    members = view.members | {view.me}
    share = fair_share(len(view.offices), len(members))
    holders = {office: holder for office, holder in view.holders.items() if office in view.offices}
    mine = ({office for office, holder in holders.items() if holder == view.me} - view.releasing) | view.taking
    free = view.offices - holders.keys() - view.taking
    held = Counter(holder for holder in holders.values() if holder in members)
    room = {member: share - held[member] for member in members}
    room[view.me] = share - len(mine)
    take = [office for office in sorted(free) if office in view.orphans]
    room[view.me] -= len(take)
    for office in sorted(free - view.orphans):
        candidates = [member for member in members if room[member] > 0]
        if not candidates:
            break
        winner = max(candidates, key=lambda member: (weight(office, member), member))
        room[winner] -= 1
        if winner == view.me:
            take.append(office)
    kept = mine - view.taking
    release = None
    if view.hand_back and not take and len(mine) > share and kept:  # then another member has room, as the counts agree
        release = min(kept, key=lambda office: (weight(office, view.me), office))
    holding = len(mine) + len(take) - (release is not None)
    return Plan(tuple(take), release, share, holding, len(members))


class Office(Protocol):
    """What the sharing needs of an office's thread (service.offices.OfficeThread)."""

    name: str
    settings: Settings

    def take(self) -> None: ...
    def release(self) -> None: ...
    def wants(self) -> bool: ...


class Membership:
    """This instance as a member of one database: its connection, holding the members' lock, and what it last saw."""

    def __init__(self, dsn: str, conninfo: str) -> None:
        self.dsn = dsn
        self._conninfo = conninfo
        self._connection: psycopg.Connection | None = None
        self.me = ""
        self.members = 0
        self.trouble: str | None = None  # why the members cannot be counted, once said
        self.last_holder: dict[str, str] = {}  # office → the last instance seen holding it
        self.free_since: dict[str, float] = {}  # office → when it was first seen held by nobody
        self.handed_back: set[str] = set()  # offices this instance handed back that no one has been seen to take yet
        self.calm_until = 0.0  # hand nothing back before this (time.monotonic())
        self.handed_back_at = float("-inf")
        self.tried_all_at = float("-inf")  # when the members could not be counted, every office was tried then

    def look(self, keys: Mapping[str, int]) -> tuple[frozenset[str], dict[str, str]]:
        """The live members and the holder of each office (by its lock key) that someone holds; psycopg.Error if unreachable."""
        import psycopg

        connection = self._connect()
        try:
            rows = connection.execute(_LOOK, (*MEMBERS_LOCK, list(keys.values()))).fetchall()
        except psycopg.Error:
            self.close()
            raise
        office_of = {key: office for office, key in keys.items()}
        members = frozenset(holder for member, _, holder in rows if member)
        holders = {office_of[key]: holder for member, key, holder in rows if not member and key in office_of}
        return members | {self.me}, holders

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> psycopg.Connection:
        import psycopg

        from .store.postgres import _NOTICE_A_DEAD_PEER, session_name

        if self._connection is not None and not self._connection.closed:
            return self._connection
        self.me = session_name()
        connection = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10, application_name=self.me)
        try:
            connection.execute(_NOTICE_A_DEAD_PEER)  # so that a dead machine stops counting as soon as its offices go
            connection.execute("SELECT pg_try_advisory_lock_shared(%s::int, %s::int)", MEMBERS_LOCK)
        except psycopg.Error:
            connection.close()
            raise
        self._connection = connection
        return connection


class Sharing:
    """Keeps this instance's share of the offices of each database it uses, looking every LOOK_SECONDS."""

    def __init__(self, orphan_seconds: float = ORPHAN_SECONDS, calm_seconds: float = CALM_SECONDS,
                 pace_seconds: float = PACE_SECONDS) -> None:
        self.orphan_seconds = orphan_seconds
        self.pace_seconds = pace_seconds
        self.calm_seconds = calm_seconds
        self.memberships: dict[str, Membership] = {}

    def balance(self, offices: Iterable[Office]) -> None:
        """Take, hand back and stand by for the PostgreSQL offices, database by database; others are left alone."""
        groups: dict[str, list[Office]] = {}
        for office in offices:
            if office.settings.postgres is not None:
                groups.setdefault(office.settings.postgres.dsn, []).append(office)
        for dsn in set(self.memberships) - set(groups):
            self.memberships.pop(dsn).close()
        for dsn, group in groups.items():
            membership = self.memberships.get(dsn)
            if membership is None:
                membership = self.memberships[dsn] = Membership(dsn, group[0].settings.postgres.conninfo())
            self._balance(membership, {office.settings.postgres.office: office for office in group})

    def close(self) -> None:
        for membership in self.memberships.values():
            membership.close()
        self.memberships.clear()

    def _balance(self, membership: Membership, offices: dict[str, Office]) -> None:
        import psycopg

        from .store.postgres import lock_key

        if membership.trouble is not None and time.monotonic() - membership.tried_all_at < self.pace_seconds:
            return  # out of reach a moment ago: tried again at the pace, not at every look
        try:
            members, holders = membership.look({key: lock_key(key) for key in offices})
        except psycopg.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if membership.trouble != reason:
                log.error("cannot count the instances sharing the offices in PostgreSQL %s: %s; trying every office as if alone",
                          membership.dsn, reason)
            membership.trouble = reason
            membership.tried_all_at = time.monotonic()
            for office in offices.values():
                office.take()  # the office's lock still decides who runs it, as when one instance stood by for another
            return
        if membership.trouble is not None:
            log.info("the instances sharing the offices in PostgreSQL %s can be counted again", membership.dsn)
            membership.trouble = None
        me, now = membership.me, time.monotonic()
        for key in offices:
            if key in holders:
                membership.free_since.pop(key, None)
            else:
                membership.free_since.setdefault(key, now)
        view = View(
            me=me, offices=frozenset(offices), members=members, holders=holders,
            taking=frozenset(key for key, office in offices.items() if office.wants() and holders.get(key) != me),
            releasing=frozenset(key for key, office in offices.items() if not office.wants() and holders.get(key) == me),
            orphans=frozenset(key for key, since in membership.free_since.items() if key in offices and now - since >= self.orphan_seconds),
            hand_back=now >= membership.calm_until and now - membership.handed_back_at >= self.pace_seconds,
        )
        decided = plan(view)
        counts = f"holding {decided.holding} of {len(offices)}, share {decided.share}, {decided.members} instance(s)"
        if decided.members != membership.members:
            log.info("%d instance(s) share the %d offices in PostgreSQL %s: %d each at most",
                     decided.members, len(offices), membership.dsn, decided.share)
            membership.members = decided.members
        for key in decided.take:
            before = membership.last_holder.get(key)
            if before is not None and before != me:  # it handed the office back, or it is gone (its lock went first)
                log.info("office %s: taking it over from %s (%s)", offices[key].name, before, counts)
            elif key in view.orphans:
                log.info("office %s: nobody has run it for %.0f s; taking it (%s)",
                         offices[key].name, now - membership.free_since[key], counts)
                if key in membership.handed_back:
                    log.warning("office %s was handed back but no other instance ran it (do they all have its file?): "
                                "handing nothing back for %.0f s", offices[key].name, self.calm_seconds)
                    membership.calm_until = now + self.calm_seconds
            else:
                log.debug("office %s: taking it (%s)", offices[key].name, counts)
            offices[key].take()
        if decided.release is not None:
            log.info("office %s: handing it back to rebalance, after the batch in hand (%s)", offices[decided.release].name, counts)
            offices[decided.release].release()
            membership.handed_back.add(decided.release)
            membership.handed_back_at = now
        for key, office in offices.items():
            holder = holders.get(key)
            if holder is not None and holder != me and holder != membership.last_holder.get(key):
                log.info("office %s: run by another secretary (%s); waiting to take it over if it goes", office.name, holder)
            if holder is not None:
                membership.last_holder[key] = holder
            if holder is not None and holder != me:
                membership.handed_back.discard(key)

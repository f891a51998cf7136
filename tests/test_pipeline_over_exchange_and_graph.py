"""The office's own stories, told over each mailbox a real office has: IMAP, Exchange Server (EWS) and Microsoft 365 (Graph).

The protocols differ; what the office sees must not. The meeting flow's own
test (call for items, submissions by reply, acknowledgements, reminders,
assembly, the approval chain) runs unchanged over the EWS and Graph doubles,
and a mail-loop story runs over all three: answers acknowledged, a malformed
message quarantined, and a daemon that dies between the store write and the
move handling nothing twice after its restart.
"""

from __future__ import annotations

import email

import pytest

import test_meeting_flow as meeting_flow
from helpers import message
from test_meeting_flow import office  # noqa: F401 - the meeting flow's own fixture, parametrised here by mailbox kind
from worlds import run
from service.daemon import Daemon, build, make_sender, make_source
from service.mail.source import Source

MICROSOFT = ["exchange", "graph"]


@pytest.mark.parametrize("office", MICROSOFT, indirect=True)
def test_the_meeting_flow_over_a_microsoft_mailbox(office):
    meeting_flow.test_call_intake_reminders_assembly_and_the_approval_chain(office)


class Crash(BaseException):
    """The process dying: nothing in the daemon catches it."""


class DiesBeforeMoving:
    """A source whose process dies after the store has recorded the `fatal`-th message, before it is moved."""

    def __init__(self, source: Source, fatal: int) -> None:
        self.source, self.left = source, fatal

    def __getattr__(self, name: str) -> object:
        return getattr(self.source, name)

    def mark_processed(self, ref: str) -> None:
        self.left -= 1
        if not self.left:
            raise Crash
        self.source.mark_processed(ref)


@pytest.mark.parametrize("office", ["servers", *MICROSOFT], indirect=True)
def test_answers_are_acknowledged_once_and_junk_quarantined_across_a_crash(office):
    settings, clock, world = office
    senders = [world.address(local) for local in ("somchai", "wichai", "policy")]
    answers = [
        message(sender=address, message_id=f"<answer-{n}@school.test>", text="ยืนยันเข้าร่วมประชุมครับ")
        for n, address in enumerate(senders)
    ]
    malformed = message(sender=senders[0], message_id=None)
    for raw in (answers[0], malformed, *answers[1:]):
        world.deliver(settings, raw)
    daemon = Daemon(build(settings, clock=clock), DiesBeforeMoving(make_source(settings), fatal=2), make_sender(settings))
    with pytest.raises(Crash):
        daemon.run(once=True)
    assert sorted(world.filed("INBOX")) == sorted(answers[1:]), "the one it died on, and the one after it, are still in the inbox"

    handled = run(settings, clock)
    assert len(handled) == 2 and handled[0].duplicate, "the one it died on is recognised, not handled again"
    assert world.filed("INBOX") == []
    assert sorted(world.filed("Processed")) == sorted(answers)
    assert world.filed("Quarantine") == [malformed]
    acknowledged = [
        email.message_from_bytes(raw)["In-Reply-To"]
        for address in senders
        for raw in world.received(settings, address)
        if address in email.message_from_bytes(raw)["To"]
    ]
    assert sorted(acknowledged) == sorted(f"<answer-{n}@school.test>" for n in range(3)), "each answer acknowledged once"

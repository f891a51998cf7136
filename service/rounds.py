"""Rounds: one request to a set of people, with a deadline, reminders, replies filed against each, and a result.

The office does three jobs in this one shape. The call for agenda items asks
every group for its items by the submission deadline: a meeting's round, its
answers kept in the meeting's shard and its reminders steps of the meeting's
timeline. The directory's verification round asks every school and agency to
check its record, and the PMQA round asks each category's champion for the
category's report and evidence: office-wide rounds, each in its own shard
(`rounds/<id>`), reminded on the days in rules/rounds.yaml and closed on
their deadline.

What differs between the uses is only what a reply means and what the result
is; each office-wide use is a `Use` with those two and the words of its mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from .directory import Entry
from .mail.compose import OutboundAttachment, Outgoing
from .mail.message import InboundMessage
from .meetings import Office, Outcome
from .reply_keys import ReplyKey, safe_id
from .rulefiles import RuleError, read_rule_file
from .understand import Verdict

PREFIX = "rounds"
RULE_FILE = "rounds.yaml"
#: How an ask stands, in the words the clerk reads.
STATES = {"asked": "ส่งคำขอแล้ว", "reminded": "แจ้งเตือนแล้ว", "answered": "ตอบแล้ว", "late": "ตอบหลังกำหนด", "overdue": "เลยกำหนด ยังไม่ตอบ"}


class RoundError(ValueError):
    """A round cannot be started or found; the message says why."""


@dataclass(frozen=True)
class RoundSettings:
    """One use's days and words, from rules/rounds.yaml."""

    title: str
    purpose: str
    template: str
    deadline_days: int
    remind_before_days: tuple[int, ...]
    overdue_every_days: int
    extra: dict[str, Any]


@lru_cache(maxsize=None)
def round_settings(rules: Path, use: str) -> RoundSettings:
    path = rules / RULE_FILE
    data = (read_rule_file(path).get("uses") or {}).get(use)
    if not isinstance(data, dict):
        raise RuleError(f"{path}: uses: no {use!r}")
    try:
        return RoundSettings(
            title=str(data["title"]), purpose=str(data["purpose"]), template=str(data["template"]),
            deadline_days=int(data["deadline_days"]), remind_before_days=tuple(int(d) for d in data.get("remind_before_days", ())),
            overdue_every_days=int(data.get("overdue_every_days", 7)),
            extra={k: v for k, v in data.items() if k not in RoundSettings.__dataclass_fields__})
    except (KeyError, TypeError, ValueError) as error:
        raise RuleError(f"{path}: uses: {use}: {error}") from error


# --- what every round does, the meeting's call for items included ------------------------


def reply_key(office: Office, purpose: str, round_id: str, recipient: str, topic: str = "") -> str:
    """The key of one ask: the purpose (with its topic), the round and the recipient."""
    return ReplyKey(f"{purpose}_{topic}" if topic else purpose, safe_id(round_id), safe_id(recipient)).token(office.reply_key_secret)


def request(office: Office, recipient: Entry, *, purpose: str, round_id: str, template: str, cause: str,
            context: dict[str, Any], topic: str = "", attachments: tuple[OutboundAttachment, ...] = ()) -> Outgoing:
    """The request (or its reminder) to one recipient, carrying the key its reply will quote."""
    return Outgoing(template=template, to=recipient.emails[:1], cause=cause, attachments=attachments,
                    reply_key=reply_key(office, purpose, round_id, recipient.id, topic), context=context)


def silent(asked: Iterable[str], answered: Iterable[str]) -> list[str]:
    """Those asked who have not answered, in the order they were asked."""
    done = set(answered)
    return [recipient for recipient in asked if recipient not in done]


def answer_record(recipient: str, result: str, now: datetime, **more: Any) -> dict[str, Any]:
    """What is filed against a recipient when they answer."""
    return {"recipient": recipient, "result": result, "at": now.isoformat(), **more}


def state(ask: dict[str, Any], deadline: date, today: date) -> str:
    """How one ask stands: answered (or late), overdue, reminded, asked."""
    if ask["answers"]:
        return "late" if ask["answers"][0]["at"][:10] > deadline.isoformat() else "answered"
    if today > deadline:
        return "overdue"
    return "reminded" if ask["reminded"] else "asked"


def latest_reminder(deadline: date, before: tuple[int, ...], every: int, today: date) -> date | None:
    """The latest reminder day not after today: before the deadline, then every `every` days after it."""
    points = [deadline - timedelta(days=d) for d in before]
    points += [deadline + timedelta(days=every * k) for k in range(1, 1 + max(0, (today - deadline).days) // max(every, 1))]
    return max((p for p in points if p <= today), default=None)


# --- office-wide rounds -----------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A reply to one ask, as the use reads it."""

    message: InboundMessage
    verdict: Verdict
    files: list[dict[str, str]]
    topic: str


@dataclass(frozen=True)
class Use:
    """What makes one kind of round: the words of its mail, what a reply means, what its result is.

    `mail` gives an ask's template context and attachments; `reply` returns the
    outcome, the answer to file against the ask and what the acknowledgement
    says; `close` compiles the result on the deadline; `summary` adds what the
    clerk's digest shows of a running round besides who has answered;
    `may_answer` says whether a sender may answer an ask besides the recipient.
    """

    name: str
    mail: Callable[[Office, dict[str, Any], dict[str, Any]], tuple[dict[str, Any], tuple[OutboundAttachment, ...]]]
    reply: Callable[[Office, dict[str, Any], dict[str, Any], Reply, datetime], tuple[Outcome, dict[str, Any], dict[str, Any]]]
    close: Callable[[Office, dict[str, Any], list[dict[str, Any]], datetime], Outcome]
    summary: Callable[[Office, dict[str, Any], list[dict[str, Any]]], dict[str, Any]]
    may_answer: Callable[[Office, dict[str, Any], Entry], bool] = lambda office, ask, sender: False


def _uses() -> dict[str, Use]:
    from .directory.verification import VERIFICATION
    from .pmqa import PMQA

    return {use.name: use for use in (VERIFICATION, PMQA)}


def shard(round_id: str) -> str:
    return f"{PREFIX}/{round_id}"


def ask_key(recipient: str, topic: str = "") -> str:
    return f"{recipient}:{topic}"


def open_round(office: Office, use: str, round_id: str, asks: list[tuple[str, str]], deadline: date, now: datetime,
               **head: Any) -> Outcome:
    """A new office-wide round: its head, one ask per (recipient, topic), and the requests."""
    if office.store.get(shard(round_id), "round", "round"):
        raise RoundError(f"the round {round_id} exists already")
    settings = round_settings(office.rules, use)
    record = {"id": round_id, "use": use, "title": settings.title, "purpose": settings.purpose, "deadline": deadline.isoformat(),
              "started_at": now.isoformat(), "status": "open", **head}
    outcome = Outcome(documents=[(shard(round_id), "round", "round", record)])
    for recipient, topic in asks:
        ask = {"recipient": recipient, "topic": topic, "asked_at": now.isoformat(), "reminded": [], "answers": []}
        outcome.documents.append((shard(round_id), "asks", ask_key(recipient, topic), ask))
        outcome.outgoing.append(_mail(office, record, ask, f"round:{round_id}:{ask_key(recipient, topic)}", reminder=False))
    return outcome


def rounds(office: Office, use: str | None = None) -> list[dict[str, Any]]:
    """Every office-wide round (of one use), oldest first."""
    heads = [office.store.get(name, "round", "round") for name in office.store.shards(PREFIX)]
    return sorted((h for h in heads if h and (use is None or h["use"] == use)), key=lambda h: h["started_at"])


def asks_of(office: Office, round_id: str) -> list[dict[str, Any]]:
    return office.store.find(shard(round_id), "asks")


def progress(office: Office, head: dict[str, Any], today: date) -> dict[str, Any]:
    """A round at a glance, for the digest and `status`: counts per state, and each ask with its state."""
    deadline = date.fromisoformat(head["deadline"])
    rows = []
    for ask in asks_of(office, head["id"]):
        entry = office.directory.get(ask["recipient"])
        rows.append({**ask, "name": entry.name if entry else ask["recipient"], "state": state(ask, deadline, today)})
    counts = {name: sum(1 for r in rows if r["state"] == name) for name in STATES}
    return {**head, "deadline": deadline, "asks": rows, "counts": counts, "answered": counts["answered"] + counts["late"], "total": len(rows)}


def running(office: Office, today: date, since: datetime) -> list[dict[str, Any]]:
    """Every open round, and those closed since `since`, as the digest shows them: who has answered, who not, what its use adds."""
    shown = []
    for head in rounds(office):
        if head["status"] == "open" or head.get("closed_at", "") > since.isoformat():
            summary = progress(office, head, today)
            silent_names = [a["name"] for a in summary["asks"] if a["state"] in ("asked", "reminded", "overdue")]
            shown.append({**summary, "silent": sorted(set(silent_names)), "pending_corrections": 0, "topics": [],
                          **_uses()[head["use"]].summary(office, head, summary["asks"])})
    return shown


def reminders_due(office: Office, today: date) -> list[Outcome]:
    """One outcome per reminder due in an open round: the reminder and the ask marked, so each goes once."""
    due = []
    for head in rounds(office):
        if head["status"] != "open":
            continue
        settings = round_settings(office.rules, head["use"])
        deadline = date.fromisoformat(head["deadline"])
        point = latest_reminder(deadline, settings.remind_before_days, settings.overdue_every_days, today)
        if point is None:
            continue
        for ask in asks_of(office, head["id"]):
            if ask["answers"] or point.isoformat() in ask["reminded"] or ask["asked_at"][:10] >= point.isoformat():
                continue
            marked = {**ask, "reminded": [*ask["reminded"], point.isoformat()]}
            key = ask_key(ask["recipient"], ask["topic"])
            due.append(Outcome(documents=[(shard(head["id"]), "asks", key, marked)],
                               outgoing=[_mail(office, head, marked, f"round-reminder:{head['id']}:{key}:{point}", reminder=True)]))
    return due


def closing_due(office: Office, now: datetime) -> list[Outcome]:
    """Each open round whose deadline has passed, closed with its use's compiled result."""
    closing = []
    for head in rounds(office):
        if head["status"] == "open" and now.date() > date.fromisoformat(head["deadline"]):
            closing.append(close(office, head, now))
    return closing


def close(office: Office, head: dict[str, Any], now: datetime) -> Outcome:
    """Close a round now: its use compiles the result; replies that come later are still filed."""
    outcome = _uses()[head["use"]].close(office, head, asks_of(office, head["id"]), now)
    closed = next((d for s, t, k, d in outcome.documents if (s, t, k) == (shard(head["id"]), "round", "round")), head)
    outcome.documents = [d for d in outcome.documents if d[:3] != (shard(head["id"]), "round", "round")]
    outcome.documents.append((shard(head["id"]), "round", "round",
                              {**closed, "status": "closed", "closed_at": now.isoformat(), "result": outcome.for_clerk}))
    return outcome


def receive(office: Office, message: InboundMessage, verdict: Verdict, files: list[dict[str, str]], now: datetime) -> tuple[Outcome, dict[str, Any]]:
    """A reply to a round's request: filed against the ask its key names, when it comes from that recipient."""
    key = verdict.reply_key
    head = next((h for h in rounds(office) if key and safe_id(h["id"]) == key.meeting), None)
    if head is None:
        return Outcome(for_clerk=office.note("round_unknown")), {"kind": "unknown"}
    topic = key.purpose.partition("_")[2]
    ask = next((a for a in asks_of(office, head["id"]) if safe_id(a["recipient"]) == key.person and a["topic"] == topic), None)
    recipient = office.directory.get(ask["recipient"]) if ask else None
    use = _uses()[head["use"]]
    if ask is None or recipient is None or not (speaks_for(verdict.sender, recipient) or (verdict.sender and use.may_answer(office, ask, verdict.sender))):
        who = verdict.sender.name if verdict.sender else message.sender
        return Outcome(for_clerk=office.note("round_not_from_recipient", round=head["id"], who=who)), {"kind": "unknown"}
    outcome, answer, understood = use.reply(office, head, ask, Reply(message, verdict, files, topic), now)
    filed = {**ask, "answers": [*ask["answers"], answer_record(ask["recipient"], answer.pop("result"), now, message=message.identity, **answer)]}
    outcome.documents.append((shard(head["id"]), "asks", ask_key(ask["recipient"], ask["topic"]), filed))
    return outcome, {"kind": "round_reply", "round_title": head["title"], "round_use": head["use"], **understood}


def speaks_for(sender: Entry | None, recipient: Entry) -> bool:
    """The recipient itself, a person of its group, or a person of the school or agency it is."""
    if sender is None:
        return False
    return sender.id == recipient.id or (bool(sender.group) and sender.group == recipient.id) or (
        bool(sender.organisation) and sender.organisation == recipient.name)


def _mail(office: Office, head: dict[str, Any], ask: dict[str, Any], cause: str, reminder: bool) -> Outgoing:
    settings = round_settings(office.rules, head["use"])
    recipient = office.directory.get(ask["recipient"])
    if recipient is None:
        raise RoundError(f"{ask['recipient']} of the round {head['id']} is no longer in the directory")
    context, attachments = _uses()[head["use"]].mail(office, head, ask)
    return request(office, recipient, purpose=head["purpose"], round_id=head["id"], template=settings.template, cause=cause,
                   topic=ask["topic"], attachments=attachments,
                   context={"round": head, "deadline": date.fromisoformat(head["deadline"]), "recipient_name": recipient.name,
                            "reminder": reminder, **context})

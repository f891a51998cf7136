"""The clerk's daily digest: one e-mail each morning with everything that needs the clerk.

Per open meeting: its stage, today's and overdue steps, new submissions,
drafts waiting for approval (and for how long), attendance with a small chart,
who has not answered, objections, follow-ups past due; for the office:
messages in Quarantine with their reasons, messages from unknown senders,
failed sends and bouncing addresses. It is worked out from the store, like
everything else, so `secretary status` and `secretary digest --preview` show
the same picture at any moment.

It is sent once a day at `[digest] time` (the store records the day it went,
in the same write as the mail), on weekends and holidays only when something
is urgent; a day with nothing new gets a short "all quiet" digest, or none.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .mail.compose import Outgoing
from .reply_keys import ReplyKey
from .meetings import Office, Outcome
from .meetings.approvals import AGENDA, drafts_of
from .meetings.followups import STATUS_WORDS, open_actions
from .meetings.intake import call_progress
from .meetings.invitations import ANSWERS
from .meetings.meeting import all_meetings, load, shard, title_of
from .meetings.timeline import Timeline, load_timeline
from .rounds import STATES, running

SENT = "digests"
ANSWER_ORDER = (*ANSWERS, "no_answer")


@dataclass
class Digest:
    """What the digest says, as plain data for its templates."""

    day: date
    since: datetime
    meetings: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, str]] = field(default_factory=list)
    strangers: list[dict[str, str]] = field(default_factory=list)
    for_clerk: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    bouncing: list[dict[str, Any]] = field(default_factory=list)
    overdue_followups: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # the running verification and PMQA rounds

    @property
    def urgent(self) -> bool:
        """What cannot wait for a working day: mail set aside or not delivered, steps overdue."""
        return bool(self.quarantined or self.failed or any(m["overdue"] for m in self.meetings))

    @property
    def quiet(self) -> bool:
        """Nothing new and nothing waiting on the clerk."""
        return not (self.urgent or self.strangers or self.for_clerk or self.bouncing or self.overdue_followups
                    or any(m["today"] or m["submissions"] or m["waiting"] or m["objections"] for m in self.meetings)
                    or any(r["status"] == "closed" for r in self.rounds))


def collect(office: Office, timeline: Timeline, now: datetime, since: datetime) -> Digest:
    """The digest as of `now`, with what is new since `since` (the last digest, which already told what came by then)."""
    today = now.date()
    digest = Digest(day=today, since=since)
    for summary in all_meetings(office.store):
        if summary["status"] == "open":
            digest.meetings.append(_meeting(office, timeline, load(office.store, summary["id"]), now, since))
    _messages(office, digest, since)
    for sent in (d for s in office.store.shards("sent") for d in office.store.find(s, "mail") if d["status"] == "failed"):
        if sent.get("sent_at", "") > since.isoformat():
            digest.failed.append({"to": ", ".join(sent["to"]), "template": sent["template"], "error": sent.get("last_error", "")})
    digest.bouncing = sorted((b for b in office.store.find("mailstatus", "bounces") if b["last_at"] > since.isoformat()), key=lambda b: b["address"])
    digest.overdue_followups = [
        {**a, "group_name": _name(office, a["group"]), "status_text": STATUS_WORDS[a["status"]], "days_late": (today - date.fromisoformat(a["due"])).days}
        for a in open_actions(office) if a["due"] and a["due"] < today.isoformat()
    ]
    digest.rounds = running(office, today, since)
    return digest


def _meeting(office: Office, timeline: Timeline, meeting: dict[str, Any], now: datetime, since: datetime) -> dict[str, Any]:
    today = now.date().isoformat()
    kind = timeline.kind(meeting["kind"])
    steps = [{"name": s.name, "title": s.title, "day": date.fromisoformat(meeting["schedule"][s.name]), "done": s.name in meeting["done"]}
             for s in kind.steps if s.name in meeting["schedule"]]
    done = [s for s in steps if s["done"]]
    upcoming = [s for s in steps if not s["done"]]
    store = office.store
    invitees = store.find(shard(meeting["id"]), "invitees")
    counts = Counter(i["status"] for i in invitees)
    items = store.find(shard(meeting["id"]), "items")
    return {
        "id": meeting["id"], "title": title_of(meeting), "start": datetime.fromisoformat(meeting["start"]), "place": meeting["place"],
        "stage": done[-1]["title"] if done else "ยังไม่เริ่ม",
        "next": upcoming[0] if upcoming else None,
        "today": [s for s in steps if s["day"].isoformat() == today],
        "overdue": [s for s in upcoming if s["day"].isoformat() < today],
        "submissions": [{"title": i["title"], "group": _name(office, i["group"]), "status": i["status"], "versions": len(i["versions"])}
                        for i in items if i["versions"][-1]["at"] > since.isoformat()],
        "waiting": _waiting(office, meeting, now),
        "call": call_progress(office, meeting),
        "invited": len(invitees),
        "attendance": [{"status": status, "count": counts.get(status, 0), "percent": round(100 * counts.get(status, 0) / len(invitees)) if invitees else 0}
                       for status in ANSWER_ORDER] if invitees else [],
        "silent": sorted(_name(office, i["person"]) for i in invitees if i["status"] == "no_answer"),
        "objections": [{"person": _name(office, o["person"]), "item": o["item"], "change": o["change"], "reason": o["reason"]}
                       for o in store.find(shard(meeting["id"]), "objections") if o["at"] > since.isoformat()],
    }


def _waiting(office: Office, meeting: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Each paper whose newest draft waits for an approver: who, and since when (the request went when the last answer came)."""
    waiting = []
    for paper in (AGENDA, *meeting.get("papers", {})):
        drafts = drafts_of(meeting, paper)
        if not drafts or drafts[-1].get("status") != "awaiting":
            continue
        draft = drafts[-1]
        answered = [a["by"] for a in draft["answers"]]
        person = next((p for p in draft["chain"] if p not in answered), None)
        asked = datetime.fromisoformat(draft["answers"][-1]["at"] if draft["answers"] else draft["at"])
        waiting.append({"paper": draft.get("title") or "ระเบียบวาระการประชุม", "version": draft["version"], "approver": _name(office, person),
                        "days": (now - asked).days})
    return waiting


def _messages(office: Office, digest: Digest, since: datetime) -> None:
    """From the message log: what went to Quarantine, who is unknown, and what the clerk must read."""
    for log in office.store.shards("log"):
        for entry in office.store.find(log, "messages", lambda e: e["received_at"] > since.isoformat()):
            seen = {"from": entry["from"], "subject": entry["subject"], "at": entry["received_at"][:16].replace("T", " ")}
            verdict = entry.get("verdict") or {}
            if entry["status"] == "quarantined":
                digest.quarantined.append({**seen, "reason": entry["reason"]})
            elif verdict and verdict.get("sender") is None and entry["kind"] not in ("bounce", "auto_reply"):
                digest.strangers.append(seen)
            elif entry.get("for_clerk") and entry["kind"] != "bounce":
                digest.for_clerk.append({**seen, "note": entry["for_clerk"]})
    for found in (digest.quarantined, digest.strangers, digest.for_clerk):
        found.sort(key=lambda m: m["at"])


def _name(office: Office, entry_id: str | None) -> str:
    entry = office.directory.get(entry_id or "")
    return entry.name if entry else (entry_id or "")


def last_sent(office: Office, before: datetime) -> datetime | None:
    """When the last digest before `before` went; a day skipped (a holiday, all quiet) does not count, so the next one covers it."""
    sent = office.store.find(SENT, "sent", lambda d: d["sent"] and d["at"] < before.isoformat())
    return max((datetime.fromisoformat(d["at"]) for d in sent), default=None)


def digest_mail(office: Office, digest: Digest, now: datetime) -> Outgoing:
    """The digest, with a reply key: what the clerk writes back to it is a note for the clerk, never an agenda item."""
    key = ReplyKey("digest", "office", "clerk").token(office.reply_key_secret)
    return Outgoing(template="digest", to=(office.clerk,), cause=f"digest:{digest.day.isoformat()}", reply_key=key,
                    context={"digest": digest, "now": now, "quiet": digest.quiet, "round_states": STATES})


def send_digest_if_due(office: Office, timeline: Timeline, now: datetime) -> Outcome | None:
    """Today's digest, once it is time and it was not sent yet; None when there is none to send today."""
    settings = office.details.digest
    if not settings.send or now.time() < settings.at or office.store.get(SENT, "sent", now.date().isoformat()):
        return None
    since = last_sent(office, now) or now - timedelta(days=1)
    digest = collect(office, timeline, now, since)
    record = {"day": now.date().isoformat(), "at": now.isoformat(), "quiet": digest.quiet, "urgent": digest.urgent}
    skip = (not timeline.working_days.is_working(now.date()) and not digest.urgent) or (digest.quiet and settings.when_quiet == "none")
    return Outcome(documents=[(SENT, "sent", record["day"], {**record, "sent": not skip})], outgoing=[] if skip else [digest_mail(office, digest, now)])


def preview(office: Office, now: datetime) -> tuple[Digest, Outgoing]:
    """The digest as it would go now, for `secretary digest --preview`."""
    timeline = load_timeline(office.rules / "timeline.yaml")
    digest = collect(office, timeline, now, last_sent(office, now) or now - timedelta(days=1))
    return digest, digest_mail(office, digest, now)

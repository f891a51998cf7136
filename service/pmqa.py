"""PMQA (seed ๒): the self-assessment round across the seven categories, and its compiled report.

Each topic of rules/pmqa.yaml (the organisational profile, then หมวด ๑–๗) is
asked of its champion by e-mail with the deadline, reminded and filed like
every round (service/rounds.py). A champion replies with the category's report
in the mail and the evidence attached; a later reply replaces the report and
every version stays on file. On the deadline (or when the clerk asks, `secretary
pmqa report`) the report is compiled: ลักษณะสำคัญขององค์การ followed by the
seven categories, each with its champion, team, evidence and what changed since
the previous round, rendered to PDF and DOCX and sent to the clerk. The two
committees meet on the meeting engine (`committee_meeting`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from .directory import Entry
from .documents.filing import keep
from .mail.compose import OutboundAttachment, Outgoing
from .meetings import Office, Outcome
from .rounds import Reply, RoundError, Use, asks_of, open_round, progress, round_settings, rounds, shard
from .rulefiles import RuleError, read_rule_file
from .store import original_name

USE = "pmqa"
RULE_FILE = "pmqa.yaml"
PROFILE = 0


@dataclass(frozen=True)
class Topic:
    number: int
    title: str
    champion: str
    team: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class PmqaRules:
    topics: tuple[Topic, ...]
    committees: dict[str, dict[str, Any]]

    def topic(self, number: int) -> Topic:
        return next(t for t in self.topics if t.number == number)


@lru_cache(maxsize=None)
def load_pmqa(rules: Path) -> PmqaRules:
    path = rules / RULE_FILE
    data = read_rule_file(path)
    try:
        topics = tuple(Topic(number=int(t["number"]), title=str(t["title"]), champion=str(t["champion"]),
                             team=tuple(str(m) for m in t.get("team", ())), note=str(t.get("note", ""))) for t in data["topics"])
    except (KeyError, TypeError, ValueError) as error:
        raise RuleError(f"{path}: topics: each needs number, title and champion ({error})") from error
    if sorted(t.number for t in topics) != list(range(8)):
        raise RuleError(f"{path}: topics: need the profile (0) and the seven categories (1–7), once each")
    return PmqaRules(topics=tuple(sorted(topics, key=lambda t: t.number)), committees=dict(data.get("committees") or {}))


def start(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """A new round: each topic asked of its champion, by the deadline."""
    book = load_pmqa(office.rules)
    missing = sorted({m for t in book.topics for m in (t.champion, *t.team) if office.directory.get(m) is None})
    if missing:
        raise RoundError(f"rules/pmqa.yaml names {', '.join(missing)}, who are not in the directory")
    if any(r["status"] == "open" for r in rounds(office, USE)):
        raise RoundError("a PMQA round is open already")
    settings = round_settings(office.rules, USE)
    deadline = date.fromisoformat(arguments["deadline"]) if arguments.get("deadline") else now.date() + timedelta(days=settings.deadline_days)
    year = int(arguments.get("year") or now.year + 543)
    taken = {r["id"] for r in rounds(office, USE)}
    round_id = arguments.get("id") or next(i for n in range(1, 100) if (i := f"pmqa-{year}" + (f"-{n}" if n > 1 else "")) not in taken)
    outcome = open_round(office, USE, round_id, [(t.champion, str(t.number)) for t in book.topics], deadline, now, year_be=year)
    return outcome, f"PMQA round {round_id} started: {len(book.topics)} topics asked of their champions by {deadline.isoformat()}"


def _mail(office: Office, head: dict[str, Any], ask: dict[str, Any]) -> tuple[dict[str, Any], tuple[OutboundAttachment, ...]]:
    topic = load_pmqa(office.rules).topic(int(ask["topic"]))
    return {"topic": topic, "team": [_name(office, m) for m in topic.team]}, ()


def _reply(office: Office, head: dict[str, Any], ask: dict[str, Any], reply: Reply, now: datetime) -> tuple[Outcome, dict[str, Any], dict[str, Any]]:
    """A champion's submission: the report is the mail's text, the evidence its attachments; the latest counts."""
    topic = load_pmqa(office.rules).topic(int(ask["topic"]))
    note = office.note("pmqa_answer", round=head["id"], topic=_label(topic), person=_name(office, ask["recipient"]), files=len(reply.files))
    return (Outcome(for_clerk=note), {"result": "submitted", "text": reply.verdict.new_text.strip(), "files": reply.files},
            {"pmqa_topic": _label(topic), "evidence": [f["name"] for f in reply.files], "version": len(ask["answers"]) + 1})


def _label(topic: Topic) -> str:
    return topic.title if topic.number == PROFILE else f"หมวด {topic.number} {topic.title}"


def _close(office: Office, head: dict[str, Any], asks: list[dict[str, Any]], now: datetime) -> Outcome:
    """On the deadline: the report compiled from what came in, to the clerk."""
    return compile_report(office, head, now)


def report(office: Office, arguments: dict[str, Any], now: datetime) -> tuple[Outcome, str]:
    """The compiled report now (of the round named, else the latest), to the clerk."""
    head = _round(office, arguments.get("round"))
    outcome = compile_report(office, head, now)
    return outcome, outcome.for_clerk


def _round(office: Office, round_id: str | None) -> dict[str, Any]:
    found = [r for r in rounds(office, USE) if round_id in (None, r["id"])]
    if not found:
        raise RoundError(f"no PMQA round {round_id}" if round_id else "no PMQA round has been started")
    return found[-1]


def compile_report(office: Office, head: dict[str, Any], now: datetime) -> Outcome:
    """Render the report (PDF and DOCX), keep it with the round's papers and send it to the clerk."""
    from .documents.render import render_document  # WeasyPrint loads only when rendering

    context = report_context(office, head, now)
    files = render_document("pmqa_report", context, office.templates)
    paths = keep(office.store, f"{shard(head['id'])}/documents", "pmqa_report", pdf=files.pdf, docx=files.docx)
    updated = {**head, "reports": [*head.get("reports", []), {**paths, "at": now.isoformat()}]}
    sent = sum(1 for c in context["categories"] if c["submitted"]) + (1 if context["profile"]["submitted"] else 0)
    mail = Outgoing(template="pmqa_report", to=(office.clerk,), cause=f"pmqa-report:{head['id']}:{len(updated['reports'])}",
                    context={"round": head, "categories": context["categories"], "profile": context["profile"], "now": now},
                    attachments=(OutboundAttachment(original_name(paths["pdf"]), "application/pdf", files.pdf),
                                 OutboundAttachment(original_name(paths["docx"]), "application/vnd.openxmlformats-officedocument.wordprocessingml.document", files.docx)))
    return Outcome(documents=[(shard(head["id"]), "round", "round", updated)], outgoing=[mail],
                   for_clerk=office.note("pmqa_compiled", round=head["id"], sent=sent, topics=len(context["categories"]) + 1, path=paths["pdf"]))


def report_context(office: Office, head: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What the report template shows: the profile, then each category with its evidence and its changes since the last round."""
    book = load_pmqa(office.rules)
    earlier = [r for r in rounds(office, USE) if r["started_at"] < head["started_at"]]
    previous = _latest(office, earlier[-1]["id"]) if earlier else None
    current = _latest(office, head["id"])
    today = now.date()
    states = {a["topic"]: a["state"] for a in progress(office, head, today)["asks"]}
    topics = []
    for topic in book.topics:
        answer = current.get(str(topic.number))
        before = previous.get(str(topic.number)) if previous is not None else None
        topics.append({
            "number": topic.number, "title": topic.title, "note": topic.note, "champion": _name(office, topic.champion),
            "team": [_name(office, m) for m in topic.team], "submitted": answer is not None, "state": states.get(str(topic.number), "asked"),
            "at": datetime.fromisoformat(answer["at"]) if answer else None, "text": answer["text"] if answer else "",
            "evidence": [f["name"] for f in answer["files"]] if answer else [],
            "changes": _changes(answer, before) if previous is not None else None,
        })
    return {"office": {"name": office.details.name, "thai_digits": office.details.thai_digits}, "round": head, "year_be": head.get("year_be", now.year + 543),
            "thai": office.details.thai_digits, "as_of": today, "previous": earlier[-1]["id"] if earlier else "",
            "profile": topics[0], "categories": topics[1:]}


def _latest(office: Office, round_id: str) -> dict[str, dict[str, Any]]:
    """Each topic's latest submission in a round."""
    return {a["topic"]: a["answers"][-1] for a in asks_of(office, round_id) if a["answers"]}


def _changes(answer: dict[str, Any] | None, before: dict[str, Any] | None) -> list[str]:
    """What changed since the previous round, in the words of the report."""
    if answer is None:
        return ["ยังไม่ได้รับรายงานในรอบนี้"] if before else []
    if before is None:
        return ["รายงานใหม่ (รอบก่อนไม่ได้ส่ง)"]
    said = [] if answer["text"] == before["text"] else ["ปรับปรุงรายงาน"]
    now_names, then_names = [f["name"] for f in answer["files"]], {f["name"] for f in before["files"]}
    added = [n for n in now_names if n not in then_names]
    removed = sorted(then_names - set(now_names))
    if added:
        said.append("หลักฐานใหม่: " + ", ".join(added))
    if removed:
        said.append("ไม่ได้แนบหลักฐานเดิม: " + ", ".join(removed))
    return said or ["ไม่มีการเปลี่ยนแปลง"]


def status_rows(office: Office, head: dict[str, Any], today: date) -> list[dict[str, Any]]:
    """Each topic of a round with its state, for `pmqa status`."""
    return _rows(office, progress(office, head, today)["asks"])


def _rows(office: Office, asks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Topic by topic, from the asks as `rounds.progress` gives them (with their state and champion's name)."""
    book = load_pmqa(office.rules)
    return [{"number": int(a["topic"]), "title": _label(book.topic(int(a["topic"]))), "champion": a["name"], "state": a["state"],
             "versions": len(a["answers"]), "evidence": len(a["answers"][-1]["files"]) if a["answers"] else 0}
            for a in sorted(asks, key=lambda a: int(a["topic"]))]


def committee_meeting(office: Office, arguments: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The arguments of `meeting_new` for a meeting of one of the two committees, its members from rules/pmqa.yaml."""
    committees = load_pmqa(office.rules).committees
    committee = committees.get(arguments["committee"])
    if committee is None:
        raise RoundError(f"no committee {arguments['committee']!r} in rules/pmqa.yaml ({', '.join(committees)})")
    members = list(dict.fromkeys([committee["chair"], committee["secretary"], *committee["members"]]))
    return {"kind": committee["kind"], "title": f"การประชุม{committee['title'].split(' (')[0]}", "number": arguments["number"],
            "year_be": arguments["year_be"], "start": arguments["start"], "end": arguments["end"], "place": arguments["place"],
            "chair": committee["chair"], "secretary": committee["secretary"], "attendees": members}


def _name(office: Office, entry_id: str) -> str:
    entry = office.directory.get(entry_id)
    return entry.name if entry else entry_id


def _summary(office: Office, head: dict[str, Any], asks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"topics": _rows(office, asks)}


def _team_member(office: Office, ask: dict[str, Any], sender: Entry) -> bool:
    """The category's team may send its report too: a person named in it, or a person of a group in it."""
    team = load_pmqa(office.rules).topic(int(ask["topic"])).team
    return sender.kind == "person" and (sender.id in team or (bool(sender.group) and sender.group in team))


PMQA = Use(name=USE, mail=_mail, reply=_reply, close=_close, summary=_summary, may_answer=_team_member)

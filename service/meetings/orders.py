"""Orders and announcements (คำสั่ง / ประกาศ) that come out of a meeting (seed step 12.3).

Each one the clerk's notes name is drafted once the brief resolutions are
approved, unnumbered, and goes up the `order` chain for signature. Signed, it
takes the next number of its kind in the office's Buddhist Era year
(ที่ ๑๒๓/๒๕๖๙: orders and announcements are numbered apart), is rendered again
with its number and date, and is sent to the groups concerned. The number is
taken in the same store write as the signature, so it is never given twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..mail.compose import OutboundAttachment, Outgoing
from . import Office, Outcome
from .approvals import chain, drafts_of, start_chain, with_drafts
from .meeting import shard, title_of
from .papers import new_draft, person, render_paper
from .timeline import Kind

NUMBERS = "orders"
WORDS = {"order": "คำสั่ง", "announcement": "ประกาศ"}


def draft_orders(office: Office, meeting: dict[str, Any], record: dict[str, Any], kind: Kind, now: datetime) -> tuple[dict[str, Any], list[Outgoing]]:
    """Draft every order the notes name and send each to its signer; the meeting with the drafts, and the requests."""
    requests: list[Outgoing] = []
    orders = [(item, order) for item in record["items"] for order in item["orders"]]
    for n, (item, order) in enumerate(orders, start=1):
        paper = f"order_{n}"
        if drafts_of(meeting, paper):
            continue
        meeting = new_draft(office, meeting, paper, "order", _context(office, meeting, {**order, "item": item["number"]}, "", None), now)
        meeting = with_drafts(meeting, paper, [{**drafts_of(meeting, paper)[-1], "order": {**order, "item": item["number"]}}])
        started = start_chain(office, meeting, chain(office.directory, kind.chain_for(paper)), paper)
        meeting = started.documents[0][3]
        requests += started.outgoing
    return meeting, requests


def issue_order(office: Office, meeting: dict[str, Any], paper: str, now: datetime) -> Outcome:
    """A signed order: its number, its final copy, and the mail to the groups concerned."""
    drafts = drafts_of(meeting, paper)
    order = drafts[-1]["order"]
    year = now.year + 543
    counter_key = f"{order['kind']}-{year}"
    number = (office.store.get(NUMBERS, "counters", counter_key) or {"last": 0})["last"] + 1
    final = render_paper(office, meeting, "order", _context(office, meeting, order, str(number), now.date()))
    signed = {**drafts[-1], "final": final, "number": f"{number}/{year}", "signed_at": now.isoformat()}
    updated = with_drafts(meeting, paper, [*drafts[:-1], signed])
    word = WORDS[order["kind"]]
    attachment = OutboundAttachment(f"{word}-{number}-{year}.pdf", "application/pdf", office.store.read_file(final["order_pdf"]))
    outgoing = []
    for group_id in order["groups"]:
        group = office.directory.get(group_id)
        if group is None:
            continue
        outgoing.append(Outgoing(
            template="order_issued", to=group.emails[:1], cause=f"order:{meeting['id']}:{paper}:{group_id}",
            context={"meeting": meeting, "meeting_title": title_of(meeting), "group_name": group.name, "word": word,
                     "number": f"{number}/{year}", "title": order["title"], "signed": now.date()},
            attachments=(attachment,),
        ))
    return Outcome(
        documents=[
            (shard(meeting["id"]), "meeting", "meeting", updated),
            (NUMBERS, "counters", counter_key, {"kind": order["kind"], "year_be": year, "last": number}),
            (NUMBERS, "issued", f"{counter_key}-{number}", {"kind": order["kind"], "number": number, "year_be": year, "title": order["title"],
                                                            "meeting": meeting["id"], "paper": paper, "file": final["order_pdf"], "at": now.isoformat()}),
        ],
        outgoing=outgoing,
        for_clerk=office.note("order_signed", word=word, number=number, year=year, title=order["title"], groups=len(outgoing)),
    )


def _context(office: Office, meeting: dict[str, Any], order: dict[str, Any], number: str, signed: date | None) -> dict[str, Any]:
    return {
        "paper_title": f"{WORDS[order['kind']]} เรื่อง {order['title']}",
        "draft": signed is None,
        "order": {"kind": order["kind"], "number": number, "year_be": (signed.year if signed else datetime.fromisoformat(meeting["start"]).year) + 543,
                  "title": order["title"], "body": order["body"], "date": signed,
                  "signer": person(office, meeting["chair"])},
    }

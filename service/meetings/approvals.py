"""The approval chain: a draft goes up the chain by email, and each approver answers by replying.

Every paper of a meeting goes up a chain the same way: the agenda (its drafts
in `meeting["drafts"]`), and after the meeting the brief resolutions, the
minutes and each order (their drafts in `meeting["papers"][<paper>]`). The
chain is data (`approvers`, and `chains` per paper, of the meeting's kind in
rules/timeline.yaml: directory roles, `role:group` where the role is per
group). A draft is sent to one approver at a time with a reply key bound to
that person and that paper; an answer counts only when it comes through that
key from that person. Approval sends the draft to the next approver; a return
sends it back to the clerk with the comments, and a new draft starts the chain again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..directory import Directory, Entry
from ..mail.compose import OutboundAttachment, Outgoing
from ..reply_keys import ReplyKey, safe_id
from ..store import original_name
from . import Office, Outcome
from .meeting import shard


class ApprovalError(ValueError):
    """An approval cannot be recorded; the message says why."""


def chain(directory: Directory, approvers: tuple[str, ...]) -> list[Entry]:
    """The people of an approval chain, in order, from role selectors."""
    people = []
    for selector in approvers:
        role, _, group = selector.partition(":")
        found = [e for e in directory.of_kind("person") if e.role == role and (not group or e.group == group)]
        if not found:
            raise ApprovalError(f"no one in the directory has the role {selector!r} of the approval chain")
        people.append(found[0])
    return people


AGENDA = "agenda"
PURPOSE = "appr"


def drafts_of(meeting: dict[str, Any], paper: str) -> list[dict[str, Any]]:
    """A paper's drafts, oldest first."""
    if paper == AGENDA:
        return meeting.get("drafts", [])
    return meeting.get("papers", {}).get(paper, {}).get("drafts", [])


def with_drafts(meeting: dict[str, Any], paper: str, drafts: list[dict[str, Any]]) -> dict[str, Any]:
    """The meeting with a paper's drafts replaced."""
    if paper == AGENDA:
        return {**meeting, "drafts": drafts}
    papers = meeting.get("papers", {})
    return {**meeting, "papers": {**papers, paper: {**papers.get(paper, {}), "drafts": drafts}}}


def purpose_of(paper: str) -> str:
    """The reply-key purpose of a paper's approval requests: `appr` for the agenda, `appr_<paper>` for the others."""
    return PURPOSE if paper == AGENDA else f"{PURPOSE}_{paper}"


def paper_of(purpose: str) -> str:
    return AGENDA if purpose == PURPOSE else purpose.removeprefix(PURPOSE + "_")


def request_approval(office: Office, meeting: dict[str, Any], approver: Entry, paper: str = AGENDA) -> Outgoing:
    """Ask one approver to approve the current draft, by replying; its PDFs go with it."""
    draft = drafts_of(meeting, paper)[-1]
    key = ReplyKey(purpose_of(paper), safe_id(meeting["id"]), safe_id(approver.id)).token(office.reply_key_secret)
    pdfs = [path for name, path in draft.get("papers", {}).items() if name.endswith("_pdf") and name != "pack_pdf"]
    version = f"v{draft['version']}" if paper == AGENDA else f"{paper}:v{draft['version']}"
    return Outgoing(
        template="approval_request" if paper == AGENDA else "paper_approval",
        to=approver.emails[:1],
        cause=f"approval:{meeting['id']}:{version}:{approver.id}",
        reply_key=key,
        context={"approver": approver.name, "meeting": meeting, "draft": draft, "paper": paper, "paper_title": draft.get("title", ""),
                 "start": datetime.fromisoformat(meeting["start"]), "clerk": office.clerk},
        attachments=tuple(
            OutboundAttachment(original_name(path), "application/pdf", office.store.read_file(path)) for path in pdfs
        ),
    )


def start_chain(office: Office, meeting: dict[str, Any], people: list[Entry], paper: str = AGENDA) -> Outcome:
    """Send the newest draft to the first approver."""
    drafts = drafts_of(meeting, paper)
    if not drafts:
        return Outcome(for_clerk=office.note("no_draft", paper=paper))
    draft = {**drafts[-1], "status": "awaiting", "chain": [p.id for p in people], "answers": []}
    updated = with_drafts(meeting, paper, [*drafts[:-1], draft])
    return Outcome(
        documents=[(shard(meeting["id"]), "meeting", "meeting", updated)],
        outgoing=[request_approval(office, updated, people[0], paper)],
    )


def record_answer(office: Office, meeting: dict[str, Any], approver_id: str, approved: bool, comments: str,
                  now: datetime, on_paper: bool = False, paper: str = AGENDA) -> Outcome:
    """Record one approver's answer on the paper's newest draft and move the chain on."""
    drafts = drafts_of(meeting, paper)
    if not drafts:
        raise ApprovalError(f"meeting {meeting['id']} has no draft of the {paper} to approve")
    draft = drafts[-1]
    if draft.get("status") != "awaiting":
        raise ApprovalError(f"draft {draft['version']} of the {paper} of {meeting['id']} is not waiting for approval (it is {draft.get('status', 'a draft')})")
    answered = [a["by"] for a in draft["answers"]]
    waiting_for = next((p for p in draft["chain"] if p not in answered), None)
    if approver_id != waiting_for:
        raise ApprovalError(f"draft {draft['version']} of the {paper} of {meeting['id']} is waiting for {waiting_for}, not {approver_id}")
    answer = {"by": approver_id, "approved": approved, "comments": comments, "at": now.isoformat(), "on_paper": on_paper}
    draft = {**draft, "answers": [*draft["answers"], answer]}
    next_approver = next((p for p in draft["chain"] if p not in [*answered, approver_id]), None)
    outcome = Outcome()
    if not approved:
        draft["status"] = "returned"
        outcome.outgoing.append(_to_clerk(meeting, paper, draft, answer, office.directory, office.clerk))
        outcome.for_clerk = office.note("draft_returned", approver=office.directory.get(approver_id).name, version=draft["version"],
                                        paper=paper, title=draft.get("title", ""), meeting=meeting["id"], comments=comments)
    elif next_approver is None:
        draft["status"] = "approved"
    updated = with_drafts(meeting, paper, [*drafts[:-1], draft])
    if approved and next_approver is not None:
        outcome.outgoing.append(request_approval(office, updated, office.directory.get(next_approver), paper))
    outcome.documents.append((shard(meeting["id"]), "meeting", "meeting", updated))
    return outcome


def _to_clerk(meeting: dict[str, Any], paper: str, draft: dict[str, Any], answer: dict[str, Any], directory: Directory, clerk: str) -> Outgoing:
    version = f"v{draft['version']}" if paper == AGENDA else f"{paper}:v{draft['version']}"
    return Outgoing(
        template="draft_returned",
        to=(clerk,),
        cause=f"returned:{meeting['id']}:{version}:{answer['by']}",
        context={"meeting": meeting, "draft": draft, "paper": paper, "paper_title": draft.get("title", ""),
                 "approver": directory.get(answer["by"]).name, "comments": answer["comments"]},
    )

"""A meeting's file (แฟ้ม) in one folder, and on a CD: `secretary archive MEETING`.

After a meeting the clerk files its agenda, papers, resolutions, minutes,
orders and every message in a folder, and a copy on CD. This writes that
folder from the store: the mail in and out as received and sent, the
attachments under their original names, every version of every rendered
document, the records (the whole meeting, attendance, approvals) and an index
(`index.html` to browse offline, `index.csv` for Excel). With `iso` it also
writes an ISO 9660 image with Joliet and Rock Ridge names (Thai names
survive on Windows, macOS and Linux) and reads it back.

Nothing is trusted: every file is checked against the hash the store recorded
when it was written (its content address: mail, attachments and papers are
all kept under their SHA-256), and the documents come with a `SHA256SUMS`
that `sha256sum -c` reads. A file that differs, has no recorded hash or is
missing is named in the result and in the index, never skipped quietly.
"""

from __future__ import annotations

import csv
import email.policy
import hashlib
import io
import json
import os
import re
import shutil
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pycdlib
from jinja2 import Environment

from .directory import Directory
from .documents.thai import thai_date
from .meetings.meeting import MeetingError, load, shard
from .store import Store, content_address, original_name

#: The documents' list of hashes in the archive, for `sha256sum -c`.
MANIFEST = "SHA256SUMS"
#: Joliet names may have 64 characters, and pycdlib counts them as UTF-8 bytes (a Thai letter is 3).
MAX_NAME_BYTES = 64
SECTIONS = {
    "documents": "เอกสารการประชุม (ทุกฉบับ)",
    "mail/in": "จดหมายเข้า",
    "mail/out": "จดหมายออก",
    "attachments": "ไฟล์แนบของจดหมายเข้า",
    "records": "บันทึกข้อมูล",
}
PAPERS = {
    "agenda": "ระเบียบวาระการประชุม", "invitation": "หนังสือเชิญประชุม", "pack": "ระเบียบวาระพร้อมเอกสารประกอบ",
    "signin": "บัญชีลงชื่อผู้เข้าประชุม", "name_tags": "ป้ายชื่อ", "catering": "อาหารและเครื่องดื่ม",
    "allowances": "เบี้ยประชุม", "resolutions": "มติการประชุมโดยย่อ", "minutes": "รายงานการประชุม", "order": "คำสั่ง/ประกาศ",
    "objection_form": "แบบแจ้งขอแก้ไขรายงานการประชุม", "objections": "สรุปข้อขอแก้ไขรายงานการประชุม", "followups": "แบบติดตามงานตามมติ",
}
_MEETING_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class Exported:
    """One file of the archive, as the index lists it."""

    section: str
    path: str  # relative to the archive folder, with "/"
    size: int
    sha256: str
    date: str
    description: str
    problem: str = ""


@dataclass(frozen=True)
class ArchiveResult:
    """What an export wrote: `files` and `bytes` count the listed files (the indexes aside), `listed` names them."""

    folder: Path
    iso: Path | None
    counts: dict[str, int]
    files: int
    bytes: int
    problems: list[str]
    seconds: float
    listed: list[Exported]


def export_meeting(store: Store, meeting_id: str, destination: Path, iso: bool = False,
                   directory: Directory | None = None) -> ArchiveResult:
    """Write `destination/<meeting_id>/` (and `<meeting_id>.iso`); every file checked, every problem reported.

    The folder is built beside its place and renamed into it, so a failed
    export never leaves a half folder that looks whole.
    """
    started = time.perf_counter()
    if not _MEETING_ID.fullmatch(meeting_id):
        raise MeetingError(f"not a meeting id: {meeting_id!r}")
    meeting = load(store, meeting_id)
    destination = Path(destination)
    target = destination / meeting_id
    building = destination / f".{meeting_id}.partial"
    shutil.rmtree(building, ignore_errors=True)
    archive = _Folder(building)
    inbound = _inbound(store, meeting_id)
    _mail_in(archive, store, inbound)
    _attachments(archive, store, inbound)
    _mail_out(archive, store, meeting_id, {entry["identity"] for entry in inbound})
    _documents(archive, store, meeting)
    _records(archive, store, meeting, directory)
    _index(archive, meeting)
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    image = None
    if iso:
        image = destination / f"{meeting_id}.iso"
        archive.problems += _write_iso(target, archive.files, image, re.sub(r"[^A-Z0-9_]", "_", meeting_id.upper())[:32])
    counts = {section: sum(f.section == section for f in archive.files) for section in SECTIONS}
    return ArchiveResult(
        folder=target, iso=image, counts=counts, files=len(archive.files), bytes=sum(f.size for f in archive.files),
        problems=archive.problems, seconds=time.perf_counter() - started, listed=archive.files,
    )


class _Folder:
    """The archive being written: every file goes through `write`, which names it safely, writes it and lists it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[Exported] = []
        self.problems: list[str] = []
        self._taken: dict[str, set[str]] = defaultdict(set)

    def copy(self, section: str, store: Store, relative: str, expected: str | None, name: str, suffix: str,
             date: str, description: str) -> Exported | None:
        """A store file, checked against the hash recorded for it (None: it is missing)."""
        try:
            data = store.read_file(relative)
        except OSError:
            self.problems.append(f"{section}: {relative} is missing from the store ({description})")
            return None
        digest = hashlib.sha256(data).hexdigest()
        problem = (
            "no recorded SHA-256 to check it against" if expected is None
            else f"SHA-256 {digest} differs from the recorded {expected}" if digest != expected else ""
        )
        return self.write(section, name, suffix, data, date, description, problem)

    def write(self, section: str, name: str, suffix: str, data: bytes, date: str, description: str, problem: str = "") -> Exported:
        file_name = _safe_name(name, suffix, self._taken[section])
        relative = f"{section}/{file_name}" if section else file_name
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        exported = Exported(section, relative, len(data), hashlib.sha256(data).hexdigest(), date, description, problem)
        if section:
            self.files.append(exported)
        if problem:
            self.problems.append(f"{relative}: {problem}")
        return exported


def _inbound(store: Store, meeting_id: str) -> list[dict[str, Any]]:
    """The message log's entries tagged with the meeting (entries older than the tag have none and are not found)."""
    entries = [entry for log in store.shards("log") for entry in store.find(log, "messages") if meeting_id in entry.get("meetings", [])]
    return sorted(entries, key=lambda e: (e["received_at"], e["identity"]))


def _mail_in(archive: _Folder, store: Store, inbound: list[dict[str, Any]]) -> None:
    for entry in inbound:
        description = f"{entry.get('from') or '(ไม่มีผู้ส่ง)'}: {entry.get('subject', '')} [{entry.get('kind') or '-'}, {entry.get('status', '')}]"
        archive.copy("mail/in", store, entry["raw"], content_address(entry["raw"]),
                     _mail_name(entry["received_at"], entry.get("from", ""), entry.get("subject") or entry["identity"]), ".eml",
                     entry["received_at"], description)


def _attachments(archive: _Folder, store: Store, inbound: list[dict[str, Any]]) -> None:
    """Each attachment once per (original name, content), under its original name."""
    seen: set[tuple[str, str]] = set()
    for entry in inbound:
        for attachment in entry.get("attachments", []):
            key = (attachment["name"], attachment["file"].rsplit("/", 1)[-1][:64])
            if key in seen:
                continue
            seen.add(key)
            original = Path(attachment["name"])
            archive.copy("attachments", store, attachment["file"], content_address(attachment["file"]),
                         original.stem, original.suffix, entry["received_at"],
                         f"{attachment['name']} ({attachment.get('type', '')}) จาก {entry.get('from', '')}: {entry.get('subject', '')}")


def _mail_out(archive: _Folder, store: Store, meeting_id: str, inbound: set[str]) -> None:
    """Outbound mail tagged with the meeting, or acknowledging its inbound mail (also when queued before the tag)."""
    entries: dict[str, dict[str, Any]] = {}
    for name in ("outbox", *store.shards("sent")):
        for entry in store.find(name, "mail"):
            cause = entry.get("cause", "")
            if meeting_id in entry.get("meetings", []) or (cause.startswith("ack:") and cause[4:] in inbound):
                entries[entry["message_id"]] = entry
    for entry in sorted(entries.values(), key=lambda e: (e["created_at"], e["message_id"])):
        when = entry.get("sent_at") or entry["created_at"]
        subject = _subject(store, entry["file"])
        description = f"ถึง {', '.join(entry['to'])}: {subject} [{entry.get('template', '')}, {entry.get('status', '')}]"
        archive.copy("mail/out", store, entry["file"], content_address(entry["file"]),
                     _mail_name(when, entry["to"][0] if entry["to"] else "", subject or entry["message_id"]), ".eml", when, description)


def _documents(archive: _Folder, store: Store, meeting: dict[str, Any]) -> None:
    """Every version of every paper the store keeps for the meeting, each checked against its content address, and their `SHA256SUMS`."""
    prefix = f"meetings/{meeting['id']}/documents"
    kept = store.files(prefix)
    rendered_at = _dates(meeting)
    sums = []
    for relative in kept:
        path, recorded = Path(original_name(relative)), content_address(relative)
        copied = archive.copy("documents", store, relative, recorded, path.stem, path.suffix, rendered_at.get(relative, ""), _paper(path.name))
        if copied is not None:  # the hash the store recorded, so `sha256sum -c` fails on a copy that differs from it
            sums.append(f"{recorded}  {copied.path.split('/', 1)[1]}\n")
    if sums:
        archive.write("documents", MANIFEST, "", "".join(sums).encode("utf-8"), _now(), "SHA-256 ของเอกสารแต่ละฉบับ (sha256sum -c)")
    named = {value for value in _strings(meeting) if value.startswith(prefix + "/")}
    archive.problems += [f"documents: {original_name(relative)} is named by the meeting but missing from the store ({relative})"
                         for relative in sorted(named - set(kept))]


def _records(archive: _Folder, store: Store, meeting: dict[str, Any], directory: Directory | None) -> None:
    """The meeting shard whole, and attendance and approvals as CSV for Excel."""
    now = _now()
    tables = _shard_tables(store, meeting["id"])
    archive.write("records", "meeting", ".json", json.dumps(tables, ensure_ascii=False, indent=2).encode("utf-8"), now,
                  "ข้อมูลการประชุมทั้งหมดในแฟ้มข้อมูล (ตาราง วาระ คำตอบ ผู้ได้รับเชิญ ร่างเอกสาร)")

    def name_of(person: str) -> str:
        entry = directory.get(person) if directory else None
        return entry.name if entry else ""

    invitees = {i["person"]: i for i in tables.get("invitees", [])}
    attendance = [["person", "name", "email", "status", "representative", "reason", "how", "answered_at"]]
    for person in [*meeting.get("attendees", []), *(p for p in invitees if p not in meeting.get("attendees", []))]:
        invitee = invitees.get(person, {"status": "not invited yet", "answers": []})
        last = invitee["answers"][-1] if invitee.get("answers") else {}
        representative = " ".join(x for x in (last.get("delegate"), last.get("delegate_position")) if x)
        attendance.append([person, name_of(person), invitee.get("email", ""), invitee.get("status", ""), representative,
                           last.get("reason") or "", last.get("via", ""), last.get("at", "")])
    archive.write("records", "attendance", ".csv", _csv(attendance), now, "การตอบรับเข้าประชุมของผู้ได้รับเชิญแต่ละคน")

    approvals = [["paper", "version", "status", "by", "name", "approved", "comments", "at", "on_paper", "drafted_at"]]
    papers = {"agenda": {"drafts": meeting.get("drafts", [])}, **meeting.get("papers", {})}
    for paper, record in papers.items():
        for draft in record.get("drafts", []):
            head = [paper, draft.get("version", ""), draft.get("status", "")]
            for answer in draft.get("answers") or [{}]:
                by = answer.get("by", "")
                approvals.append([*head, by, name_of(by), _yes_no(answer.get("approved")), answer.get("comments", ""),
                                  answer.get("at", ""), _yes_no(answer.get("on_paper")), draft.get("at", "")])
    archive.write("records", "approvals", ".csv", _csv(approvals), now, "ร่างเอกสารทุกฉบับและความเห็นของผู้ให้ความเห็นชอบแต่ละคน")


def _index(archive: _Folder, meeting: dict[str, Any]) -> None:
    """`index.csv` (UTF-8 with BOM, so Excel reads Thai) and `index.html`, both listing every file above."""
    rows = [["section", "path", "size", "sha256", "date", "description", "problem"]]
    rows += [[f.section, f.path, f.size, f.sha256, f.date, f.description, f.problem] for f in archive.files]
    now = _now()
    archive.write("", "index", ".csv", _csv(rows), now, "")
    start = datetime.fromisoformat(meeting["start"])
    page = _PAGE.render(
        meeting=meeting, when=thai_date(start, "datetime"), sections=SECTIONS, problems=archive.problems,
        files={section: [f for f in archive.files if f.section == section] for section in SECTIONS}, made=now,
    )
    archive.write("", "index", ".html", page.encode("utf-8"), now, "")


def _write_iso(folder: Path, files: list[Exported], image: Path, volume: str) -> list[str]:
    """The folder as an ISO 9660 image with Joliet and Rock Ridge names; then read back, every file compared."""
    expected = {f.path: f.sha256 for f in files}
    expected |= {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("index.html", "index.csv")}
    writing = image.with_name(f".{image.name}.partial")
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=volume, app_ident_str="secretary archive")
    iso_paths, taken = {"": ""}, defaultdict(set)
    try:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            parent = relative.rpartition("/")[0]
            short = iso_paths[parent] + "/" + _iso_name(path.name, path.is_dir(), taken[parent])
            if path.is_dir():
                iso_paths[relative] = short
                iso.add_directory(short, rr_name=path.name, joliet_path="/" + relative)
            else:
                iso.add_file(str(path), iso_path=short, rr_name=path.name, joliet_path="/" + relative)
        iso.write(str(writing))
    except (pycdlib.pycdlibexception.PyCdlibException, OSError) as error:
        writing.unlink(missing_ok=True)
        image.unlink(missing_ok=True)  # an earlier image is not of this folder
        return [f"ISO: could not write {image}: {error}"]
    finally:
        iso.close()
    os.replace(writing, image)
    return check_iso(image, expected)


def check_iso(image: Path, expected: dict[str, str]) -> list[str]:
    """What differs between an image, read back by its Joliet paths (what Windows shows), and the files' SHA-256 by path."""
    iso = pycdlib.PyCdlib()
    iso.open(str(image))
    try:
        found = {}
        for here, _, names in iso.walk(joliet_path="/"):
            for name in names:
                path = f"{here.rstrip('/')}/{name}"
                digest = _Hasher()
                iso.get_file_from_iso_fp(digest, joliet_path=path)
                found[path.lstrip("/")] = digest.sha256.hexdigest()
    finally:
        iso.close()
    return (
        [f"ISO: {path} differs from the folder" for path in sorted(expected) if path in found and found[path] != expected[path]]
        + [f"ISO: {path} is missing" for path in sorted(set(expected) - set(found))]
        + [f"ISO: {path} is not in the folder" for path in sorted(set(found) - set(expected))]
    )


class _Hasher:
    """A write-only file that hashes what pycdlib writes into it, so a file is checked without holding it."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return len(data)


def _iso_name(name: str, is_dir: bool, taken: set[str]) -> str:
    """A plain ISO 9660 name (A–Z, 0–9, _), for the rare reader that sees neither Joliet nor Rock Ridge."""
    stem, dot, suffix = name.rpartition(".") if not is_dir and "." in name else (name, "", "")
    stem = re.sub(r"[^A-Z0-9_]", "_", stem.upper())[:20] or "F"
    suffix = re.sub(r"[^A-Z0-9_]", "_", suffix.upper())[:8]
    for n in range(1, len(taken) + 2):
        candidate = stem if n == 1 else f"{stem[:16]}_{n}"
        if candidate not in taken:
            taken.add(candidate)
            return candidate if is_dir else f"{candidate}.{suffix};1"
    raise AssertionError("unreachable: one of len(taken) + 1 candidates is free")


def _safe_name(text: str, suffix: str, taken: set[str]) -> str:
    """A file name every CD reader and Windows keep: letters (Thai too), digits, `-_.()`; ≤ 64 UTF-8 bytes; unique."""
    def clean(part: str) -> str:
        kept = "".join(c if unicodedata.category(c)[0] in "LMN" or c in "-_.()" else "_" for c in part)
        return re.sub(r"_+", "_", kept).strip("._")

    stem = clean(text) or "file"
    extension = f".{clean(suffix)}"[:12] if clean(suffix) else ""
    for n in range(1, len(taken) + 2):
        tail = ("" if n == 1 else f"_{n}") + extension
        name = _fit(stem, MAX_NAME_BYTES - len(tail.encode("utf-8"))) + tail
        if name.casefold() not in taken:  # Windows and Joliet readers ignore case
            taken.add(name.casefold())
            return name
    raise AssertionError("unreachable: one of len(taken) + 1 candidates is free")


def _fit(text: str, limit: int) -> str:
    """The text cut to `limit` UTF-8 bytes after a whole word (Thai words too, by pythainlp), so a short name still reads.

    When whole words would leave less than half the room used, the next word is
    cut between Thai character clusters, never between a letter and its vowel.
    """
    from pythainlp.tokenize import subword_tokenize, word_tokenize  # loads a dictionary: only for a long name

    if len(text.encode("utf-8")) > limit:
        kept = ""
        for word in word_tokenize(text, engine="newmm"):
            if len((kept + word).encode("utf-8")) > limit:
                if len(kept.encode("utf-8")) < limit / 2:
                    for cluster in subword_tokenize(word, engine="tcc"):
                        if len((kept + cluster).encode("utf-8")) > limit:
                            break
                        kept += cluster
                break
            kept += word
        text = kept
    return text.rstrip("._") or "file"


def _shard_tables(store: Store, meeting_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every table of the meeting's shard (those to come too), each as a list of its documents."""
    content = json.loads(store.read_file(f"{shard(meeting_id)}.json"))
    return {table: list(documents.values()) for table, documents in content.items()}


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _dates(value: Any, at: str = "") -> dict[str, str]:
    """Every string of a nested document with the `at` of the innermost record holding it: when a paper was rendered."""
    if isinstance(value, str):
        return {value: at}
    if isinstance(value, dict):
        at = value["at"] if isinstance(value.get("at"), str) else at
        value = list(value.values())
    found: dict[str, str] = {}
    for item in value if isinstance(value, list) else ():
        found |= _dates(item, at)
    return found


def _strings(value: Any) -> Iterator[str]:
    """Every string in a nested document, to find the files it names."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings(item)


def _subject(store: Store, relative: str) -> str:
    try:
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(store.read_file(relative))
    except OSError:
        return ""
    return str(headers["Subject"] or "")


def _paper(name: str) -> str:
    match = re.fullmatch(r"(.+?)-v(\d+)\.(\w+)", name)
    if not match:
        return name
    return f"{PAPERS.get(match[1], match[1])} ฉบับที่ {match[2]} ({match[3].upper()})"


def _mail_name(moment: str, address: str, subject: str) -> str:
    """`2026-12-09_0930_<who>_<subject>`: sorted by time, then who wrote or got it; "Re:" dropped to leave room."""
    who = parseaddr(address)[1].split("@")[0]
    about = re.sub(r"^(\s*(re|fwd?|ตอบกลับ|ส่งต่อ)\s*:)+\s*", "", subject, flags=re.IGNORECASE)
    return "_".join(part for part in (datetime.fromisoformat(moment).strftime("%Y-%m-%d_%H%M"), who, about) if part)


def _yes_no(value: object) -> str:
    return "" if value is None else "yes" if value else "no"


def _csv(rows: list[list[Any]]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode("utf-8-sig")


def _size(value: int) -> str:
    return f"{value:,} B" if value < 1024 else f"{value / 1024:,.1f} KB" if value < 1024 * 1024 else f"{value / 1024 / 1024:,.2f} MB"


_ENVIRONMENT = Environment(autoescape=True)
_ENVIRONMENT.filters.update(link=quote, size=_size, when=lambda value: value[:16].replace("T", " "))
_PAGE = _ENVIRONMENT.from_string("""<!DOCTYPE html>
<html lang="th">
<head>
<meta charset="utf-8">
<title>แฟ้ม {{ meeting.title }} ครั้งที่ {{ meeting.number }}/{{ meeting.year_be }}</title>
<style>
body { font-family: "TH Sarabun New", "Sarabun", "Tahoma", sans-serif; margin: 2em; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2em; }
th, td { border: 1px solid #999; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
td.hash { font-family: monospace; font-size: 0.75em; word-break: break-all; }
td.size { text-align: right; white-space: nowrap; }
.problem { color: #b00; font-weight: bold; }
</style>
</head>
<body>
<h1>{{ meeting.title }} ครั้งที่ {{ meeting.number }}/{{ meeting.year_be }}</h1>
<p>{{ when }} ณ {{ meeting.place }}<br>รหัสการประชุม {{ meeting.id }} · จัดทำแฟ้มเมื่อ {{ made | when }}</p>
{% if problems %}
<h2 class="problem">ปัญหาที่พบ ({{ problems | length }})</h2>
<ul>{% for problem in problems %}<li class="problem">{{ problem }}</li>{% endfor %}</ul>
{% else %}
<p>ตรวจสอบ SHA-256 ของทุกไฟล์กับค่าที่บันทึกไว้แล้ว ถูกต้องทุกไฟล์</p>
{% endif %}
<p><a href="index.csv">index.csv</a> (รายการไฟล์ทั้งหมด สำหรับ Excel)</p>
{% for section, title in sections.items() %}
<h2>{{ title }} ({{ files[section] | length }})</h2>
<table>
<tr><th>ไฟล์</th><th>รายละเอียด</th><th>วันที่</th><th>ขนาด</th><th>SHA-256</th></tr>
{% for file in files[section] %}
<tr{% if file.problem %} class="problem"{% endif %}>
<td><a href="{{ file.path | link }}">{{ file.path.rsplit("/", 1)[-1] }}</a></td>
<td>{{ file.description }}{% if file.problem %}<br>ปัญหา: {{ file.problem }}{% endif %}</td>
<td>{{ file.date | when }}</td><td class="size">{{ file.size | size }}</td><td class="hash">{{ file.sha256 }}</td>
</tr>
{% endfor %}
</table>
{% endfor %}
</body>
</html>
""")

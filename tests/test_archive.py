"""`secretary archive`: a meeting's file (แฟ้ม) in one folder and on a CD, every file checked.

The store is a real one: the demo's whole meeting, written by the daemon. The
export is compared with the store itself (the message log, the outbox, the
documents folder), the ISO image is read back with pycdlib, and a store with
tampered and missing files must make the command fail and say which.
"""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pycdlib
import pytest
from rich.console import Console

from service.archive import ArchiveResult, check_iso, export_meeting
from service.cli import main
from service.config import DEFAULT_CONFIG, load
from service.demo import run_demo
from service.directory import Directory
from service.meetings.meeting import all_meetings, load as load_meeting
from service.store import Store, original_name

UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's office folder: configuration, directory and a store holding one whole meeting."""
    folder = tmp_path_factory.mktemp("office")
    run_demo(folder, Console(file=io.StringIO()))
    return folder


@pytest.fixture(scope="module")
def store(office: Path):
    store = Store(office / "store").open(exclusive=False)
    yield store
    store.close()


@pytest.fixture(scope="module")
def meeting(store: Store) -> dict:
    [summary] = all_meetings(store)
    return load_meeting(store, summary["id"])


@pytest.fixture(scope="module")
def exported(office: Path, store: Store, meeting: dict, tmp_path_factory: pytest.TempPathFactory) -> ArchiveResult:
    directory = Directory.load(load(office / DEFAULT_CONFIG).directory)
    return export_meeting(store, meeting["id"], tmp_path_factory.mktemp("archive"), iso=True, directory=directory)


def files_of(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def tagged_log_entries(store: Store, meeting_id: str) -> list[dict]:
    return [e for log in store.shards("log") for e in store.find(log, "messages") if meeting_id in e.get("meetings", [])]


def test_a_clean_store_exports_without_problems(exported: ArchiveResult, meeting: dict) -> None:
    assert exported.problems == []
    assert exported.folder.name == meeting["id"]
    assert exported.iso == exported.folder.with_suffix(".iso") and exported.iso.stat().st_size > exported.bytes
    assert all(count > 0 for count in exported.counts.values()), exported.counts
    on_disk = files_of(exported.folder)
    assert exported.files == sum(exported.counts.values()) == len(exported.listed) == len(on_disk) - 2  # all but the indexes
    assert exported.bytes == sum(len(data) for path, data in on_disk.items() if not path.startswith("index."))


def test_inbound_mail_is_the_meetings_messages_as_received(exported: ArchiveResult, store: Store, meeting: dict) -> None:
    entries = tagged_log_entries(store, meeting["id"])
    archived = files_of(exported.folder / "mail" / "in")
    assert len(archived) == len(entries) > 0
    assert {sha256(data) for data in archived.values()} == {sha256(store.read_file(e["raw"])) for e in entries}
    senders = {parse(data)["From"].addresses[0].addr_spec for data in archived.values()}
    assert "offer@printing-shop.example.com" not in senders  # the demo's first act is about no meeting
    assert all(name.endswith(".eml") and re.match(r"\d{4}-\d\d-\d\d_\d{4}_", name) for name in archived)


def test_outbound_mail_has_the_invitations_and_the_acknowledgements(exported: ArchiveResult, meeting: dict) -> None:
    sent = [parse(data) for data in files_of(exported.folder / "mail" / "out").values()]
    invitations = [m for m in sent if "หนังสือเชิญประชุม.pdf" in [p.get_filename() for p in m.iter_attachments()]]
    assert len(invitations) == len(meeting["attendees"])
    inbound_ids = {parse(data)["Message-ID"] for data in files_of(exported.folder / "mail" / "in").values()}
    acknowledgements = [m for m in sent if m["In-Reply-To"] in inbound_ids]
    assert len(acknowledgements) >= 5
    assert all(m["In-Reply-To"] in inbound_ids for m in sent if m["In-Reply-To"])  # none answers another meeting's mail


def test_every_version_of_every_document_is_there_and_checks(exported: ArchiveResult, store: Store, meeting: dict) -> None:
    kept = {original_name(path): store.read_file(path) for path in store.files(f"meetings/{meeting['id']}/documents")}
    archived = files_of(exported.folder / "documents")
    assert archived.pop("SHA256SUMS") and archived == kept
    assert {"agenda-v1.pdf", "agenda-v2.pdf", "invitation-v2.docx", "pack-v2.pdf", "signin-v1.pdf"} <= set(archived)
    check = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=exported.folder / "documents", capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == len(archived)


def test_attachments_keep_their_original_thai_names(exported: ArchiveResult, store: Store, meeting: dict) -> None:
    archived = files_of(exported.folder / "attachments")
    filed = {(a["name"], a["file"]) for e in tagged_log_entries(store, meeting["id"]) for a in e["attachments"]}
    assert {"แผนปฏิบัติการ-2570.pdf", "แผนปฏิบัติการ-2570-แก้ไข.pdf"} <= set(archived)
    assert {name: sha256(data) for name, data in archived.items()} == {name: sha256(store.read_file(file)) for name, file in filed}


def test_records_are_readable_with_thai_names(exported: ArchiveResult, meeting: dict) -> None:
    records = exported.folder / "records"
    with (records / "attendance.csv").open(encoding="utf-8-sig", newline="") as file:
        attendance = {row["person"]: row for row in csv.DictReader(file)}
    assert list(attendance) == meeting["attendees"]
    assert attendance["p-school-002"]["name"] == "นางมาลี พรหมมา"
    assert attendance["p-school-002"]["status"] == "delegated"
    assert attendance["p-school-002"]["representative"].startswith("นางสาวจันทร์เพ็ญ ดวงดี")
    assert attendance["p-school-001"]["answered_at"]
    with (records / "approvals.csv").open(encoding="utf-8-sig", newline="") as file:
        approvals = list(csv.DictReader(file))
    papers = {"agenda": meeting["drafts"], **{name: paper["drafts"] for name, paper in meeting.get("papers", {}).items()}}
    assert [(a["paper"], a["version"], a["status"], a["by"], a["approved"]) for a in approvals] == [
        (name, str(d["version"]), d["status"], answer.get("by", ""), {True: "yes", False: "no"}.get(answer.get("approved"), ""))
        for name, drafts in papers.items() for d in drafts for answer in d.get("answers") or [{}]  # a draft nobody answered: one row
    ]
    assert {"agenda", "resolutions", "minutes"} <= {a["paper"] for a in approvals}
    assert approvals[0]["status"] == "returned" and "ส่งคืนแก้ไข" in approvals[0]["comments"]
    assert approvals[-1]["name"] == "นายประเสริฐ วงศ์ใหญ่"
    whole = json.loads((records / "meeting.json").read_text(encoding="utf-8"))
    assert whole["meeting"][0]["drafts"] == meeting["drafts"]
    assert len(whole["invitees"]) == len(meeting["attendees"])


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if tag == "a" and name == "href" and value]


def test_index_html_links_every_file_and_each_link_resolves(exported: ArchiveResult, meeting: dict) -> None:
    page = (exported.folder / "index.html").read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in page and meeting["title"] in page and meeting["place"] in page
    links = Links()
    links.feed(page)
    targets = [unquote(href) for href in links.hrefs]
    assert all((exported.folder / target).is_file() for target in targets), [t for t in targets if not (exported.folder / t).is_file()]
    assert set(targets) == set(files_of(exported.folder)) - {"index.html"}
    assert "ปัญหาที่พบ" not in page


def test_index_csv_lists_every_file_with_its_size_and_hash(exported: ArchiveResult) -> None:
    raw = (exported.folder / "index.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads Thai only with the BOM
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    on_disk = files_of(exported.folder)
    assert {row["path"] for row in rows} == set(on_disk) - {"index.html", "index.csv"}
    for row in rows:
        assert int(row["size"]) == len(on_disk[row["path"]]) and row["sha256"] == sha256(on_disk[row["path"]]), row["path"]
        assert row["section"] == row["path"].rsplit("/", 1)[0] and row["date"] and not row["problem"]


def test_names_are_safe_unique_and_fit_a_cd(exported: ArchiveResult) -> None:
    for path in files_of(exported.folder):
        for part in path.split("/"):
            assert len(part.encode("utf-8")) <= 64 and not UNSAFE.search(part) and not part.startswith("."), part
    names = list(files_of(exported.folder / "mail" / "out"))
    assert len({n.casefold() for n in names}) == len(names)
    assert any(re.search(r"[\u0e00-\u0e7f]", name) for name in names)


def test_the_iso_image_holds_every_file_byte_for_byte_under_thai_names(exported: ArchiveResult, meeting: dict) -> None:
    folder = files_of(exported.folder)
    iso = pycdlib.PyCdlib()
    iso.open(str(exported.iso))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == meeting["id"].upper().replace("-", "_")
        for kind in ("joliet_path", "rr_path"):
            found = {}
            for here, _, names in iso.walk(**{kind: "/"}):
                for name in names:
                    path = f"{here.rstrip('/')}/{name}"
                    data = io.BytesIO()
                    iso.get_file_from_iso_fp(data, **{kind: path})
                    found[path.lstrip("/")] = data.getvalue()
            assert found == folder, kind
    finally:
        iso.close()
    assert "attachments/แผนปฏิบัติการ-2570-แก้ไข.pdf" in found


def test_a_damaged_image_is_caught_when_read_back(exported: ArchiveResult, tmp_path: Path) -> None:
    image = tmp_path / "damaged.iso"
    shutil.copy(exported.iso, image)
    expected = {path: sha256(data) for path, data in files_of(exported.folder).items()}
    assert check_iso(image, expected) == []
    iso = pycdlib.PyCdlib()
    iso.open(str(image))
    offset = iso.get_record(joliet_path="/records/attendance.csv").extent_location() * 2048
    iso.close()
    data = bytearray(image.read_bytes())
    data[offset] ^= 0xFF
    image.write_bytes(bytes(data))
    assert check_iso(image, expected) == ["ISO: records/attendance.csv differs from the folder"]


def test_the_command_files_the_meeting_into_the_store_by_default(office: Path, meeting: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(office / DEFAULT_CONFIG), "archive", meeting["id"], "--iso"]) == 0
    out = capsys.readouterr().out
    folder = office / "store" / "archive" / meeting["id"]
    assert str(folder) in out and f"{meeting['id']}.iso" in out and "problem" not in out
    assert (folder / "index.html").is_file() and folder.with_suffix(".iso").is_file()
    assert main(["-c", str(office / DEFAULT_CONFIG), "archive", "no-such-meeting"]) == 2


def test_tampered_and_missing_files_are_reported_and_fail_the_command(office: Path, meeting: dict, tmp_path: Path) -> None:
    copy = tmp_path / "office"
    shutil.copytree(office, copy)
    store = Store(copy / "store").open(exclusive=False)
    entries = tagged_log_entries(store, meeting["id"])
    raw = copy / "store" / entries[0]["raw"]
    raw.write_bytes(raw.read_bytes().replace(b"Subject:", b"Subject: (changed)", 1))
    attachment = next(a for e in entries for a in e["attachments"])
    (copy / "store" / attachment["file"]).unlink()
    papers = meeting["drafts"][0]["papers"]
    agenda = copy / "store" / papers["agenda_pdf"]
    agenda.write_bytes(agenda.read_bytes() + b"%")
    (copy / "store" / papers["invitation_docx"]).unlink()
    store.close()

    out = tmp_path / "out"
    assert main(["-c", str(copy / DEFAULT_CONFIG), "archive", meeting["id"], "--out", str(out)]) == 1
    page = (out / meeting["id"] / "index.html").read_text(encoding="utf-8")
    assert "ปัญหาที่พบ (4)" in page
    for named in (attachment["file"], "documents/agenda-v1.pdf: SHA-256", "invitation-v1.docx is named by the meeting but missing", "differs from the recorded"):
        assert named in page, named
    with (out / meeting["id"] / "index.csv").open(encoding="utf-8-sig", newline="") as file:
        flagged = {row["path"] for row in csv.DictReader(file) if row["problem"]}
    assert "documents/agenda-v1.pdf" in flagged and any(path.startswith("mail/in/") for path in flagged)


def test_acknowledgements_queued_before_the_meeting_tag_are_still_found(office: Path, meeting: dict, exported: ArchiveResult, tmp_path: Path) -> None:
    copy = tmp_path / "office"
    shutil.copytree(office / "store", copy / "store")
    for shard in [copy / "store" / "outbox.json", *(copy / "store" / "sent").rglob("*.json")]:
        content = json.loads(shard.read_text(encoding="utf-8"))
        for table in content.values():
            for document in table.values():
                document.pop("meetings", None)  # as the outbox wrote it before it knew meetings
        shard.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    store = Store(copy / "store").open(exclusive=False)
    inbound = {e["identity"] for e in tagged_log_entries(store, meeting["id"])}
    acknowledgements = {
        sha256(store.read_file(m["file"])) for shard in ["outbox", *store.shards("sent")] for m in store.find(shard, "mail")
        if m["cause"].startswith("ack:") and m["cause"][4:] in inbound
    }
    older = export_meeting(store, meeting["id"], tmp_path / "out")
    store.close()
    assert older.problems == [] and acknowledgements
    assert {f.sha256 for f in older.listed if f.section == "mail/out"} == acknowledgements
    assert acknowledgements < {f.sha256 for f in exported.listed if f.section == "mail/out"}

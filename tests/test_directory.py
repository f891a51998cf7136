"""The directory: who a sender is, from the office's TOML or CSV file, with clear errors."""

import pytest

from service.config import PROJECT_ROOT
from service.directory import Directory, DirectoryError


def test_the_sample_directory_knows_people_groups_and_schools():
    directory = Directory.load(PROJECT_ROOT / "templates" / "config" / "directory.toml")
    assert directory.who("Wichai@Office.Example.go.th").id == "p-policy-director"
    assert directory.who("policy@office.example.go.th").kind == "group"
    assert directory.who("school001@example.ac.th").name == "โรงเรียนบ้านหนองบัว"
    assert directory.who("stranger@example.com") is None


def test_a_csv_directory_with_several_addresses(tmp_path):
    path = tmp_path / "directory.csv"
    path.write_text(
        "kind,id,name,emails,position,organisation,group,role\n"
        "group,g-admin,กลุ่มอำนวยการ,admin@office.go.th,,,,\n"
        'person,p1,นายสมชาย ใจดี,"somchai@school.ac.th; director@school.ac.th",ผู้อำนวยการโรงเรียน,โรงเรียนบ้านหนองบัว,,school_director\n',
        encoding="utf-8-sig",
    )
    directory = Directory.load(path)
    assert directory.who("director@school.ac.th").id == "p1"
    assert directory.get("p1").role == "school_director"


@pytest.mark.parametrize(
    "row, problem",
    [
        ("person,p1,นายสมชาย,not-an-address,,,,", "'not-an-address' is not an e-mail address"),
        ("person,p1,นายสมชาย,,,,,", "no e-mail address"),
        ("robot,p1,R2,r2@x.org,,,,", "kind must be one of group, person, school"),
        ("person,,นายสมชาย,a@b.org,,,,", "id is missing"),
    ],
)
def test_a_bad_record_is_named(tmp_path, row, problem):
    path = tmp_path / "directory.csv"
    path.write_text("kind,id,name,emails,position,organisation,group,role\n" + row + "\n", encoding="utf-8")
    with pytest.raises(DirectoryError, match=f"record 1.*{problem}"):
        Directory.load(path)

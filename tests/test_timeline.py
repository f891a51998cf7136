"""The timeline: steps on working days (Thai holidays included), and what is due."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from service.config import PROJECT_ROOT
from service.directory import Directory
from service.meetings.meeting import MeetingError, NewMeeting, all_meetings, create, load
from service.meetings.timeline import WorkingDays, load_timeline
from service.store import Store

TIMELINE = load_timeline(PROJECT_ROOT / "rules" / "timeline.yaml")
BANGKOK = ZoneInfo("Asia/Bangkok")


def test_a_step_on_a_weekend_or_holiday_moves_to_the_previous_working_day():
    days = TIMELINE.working_days
    assert not days.is_working(date(2026, 12, 7)), "the substitution day for 5 December is a holiday"
    assert "ชดเชย" in days.why_closed(date(2026, 12, 7))
    assert days.on_or_before(date(2026, 12, 7)) == date(2026, 12, 4)  # Monday holiday → Friday
    assert days.on_or_before(date(2026, 12, 13)) == date(2026, 12, 11)  # Sunday → Friday (10 Dec is Constitution Day)
    office = WorkingDays(closed=frozenset({date(2026, 11, 25)}))
    assert office.on_or_before(date(2026, 11, 25)) == date(2026, 11, 24)


def test_the_schedule_of_a_meeting_and_what_is_due():
    meeting_day = date(2026, 12, 21)  # Monday; T−14 is Monday 7 December, a substitution holiday
    schedule = dict((step.name, day) for step, day in TIMELINE.schedule("school_administrators", meeting_day))
    assert schedule["call_for_items"] == date(2026, 11, 30)
    assert schedule["submission_deadline"] == date(2026, 12, 4)
    assert schedule["meeting"] == meeting_day
    assert all(TIMELINE.working_days.is_working(day) for day in schedule.values())
    due = TIMELINE.due("school_administrators", meeting_day, date(2026, 12, 4), done={"call_for_items", "reminder_1"})
    assert [step.name for step in due] == ["reminder_2", "submission_deadline", "assemble_agenda"]


def _directory():
    return Directory.load(PROJECT_ROOT / "templates" / "config" / "directory.toml")


def _new(**changes):
    values = dict(
        kind="school_administrators", title="การประชุมผู้บริหารสถานศึกษา", number=11, year_be=2569,
        start=datetime(2026, 12, 16, 9, tzinfo=BANGKOK), end=datetime(2026, 12, 16, 12, tzinfo=BANGKOK),
        place="ห้องประชุมใหญ่", chair="p-director", secretary="p-deputy", attendees=("role:school_director", "role:group_director"),
    )
    return NewMeeting(**{**values, **changes})


def test_a_meeting_is_created_with_its_schedule_and_attendees(tmp_path):
    store = Store(tmp_path).open()
    outcome = create(store, TIMELINE, _directory(), _new(), datetime(2026, 11, 20, tzinfo=BANGKOK))
    with store.transaction() as transaction:
        for document in outcome.documents:
            transaction.put(*document)
    meeting = outcome.documents[0][3]
    assert meeting["id"] == "sa2569-11"
    assert "p-school-001" in meeting["attendees"] and "p-admin-director" in meeting["attendees"]
    assert load(store, "sa2569-11")["schedule"]["invitations"] == "2026-12-09"
    assert [m["id"] for m in all_meetings(store)] == ["sa2569-11"]
    with pytest.raises(MeetingError, match="exists already"):
        create(store, TIMELINE, _directory(), _new(), datetime(2026, 11, 20, tzinfo=BANGKOK))


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"attendees": ("role:astronaut",)}, "no one in the directory matches"),
        ({"chair": "p-nobody"}, "chair 'p-nobody' is not in the directory"),
        ({"end": datetime(2026, 12, 16, 8, tzinfo=BANGKOK)}, "must end after it starts"),
        ({"kind": "picnic"}, "no meeting kind 'picnic'"),
    ],
)
def test_a_meeting_that_cannot_be_is_refused_with_the_reason(tmp_path, changes, problem):
    with pytest.raises(ValueError, match=problem):
        create(Store(tmp_path).open(), TIMELINE, _directory(), _new(number=12, **changes), datetime(2026, 11, 20, tzinfo=BANGKOK))

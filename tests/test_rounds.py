"""The meeting's call for agenda items is a round like the office-wide ones: same keys, same tally of who has answered."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.daemon import build
from service.digest import preview
from service.reply_keys import find_keys
from service.rounds import reply_key
from worlds import Clock, clerk, make_world, outgoing, reply, run

BANGKOK = ZoneInfo("Asia/Bangkok")
START = datetime(2026, 12, 16, 9, tzinfo=BANGKOK)


@pytest.fixture(params=["embedded", "postgresql"])
def office(request, tmp_path, monkeypatch):
    return make_world(request, tmp_path, monkeypatch)


def test_the_call_for_items_asks_reminds_and_tallies_through_the_round(office):
    settings, world = office
    clock = Clock(datetime(2026, 11, 20, 8, tzinfo=BANGKOK))
    said = clerk(settings, clock, "meeting_new", {
        "kind": "school_administrators", "title": "การประชุมผู้บริหารสถานศึกษา", "number": 11, "year_be": 2569,
        "start": START.isoformat(), "end": (START + timedelta(hours=3)).isoformat(), "place": "ห้องประชุมใหญ่",
        "chair": "p-director", "secretary": "p-deputy", "attendees": ["role:school_director"]})
    meeting_id = said.split()[2]
    run(settings, clock, datetime(2026, 11, 25, 8, tzinfo=BANGKOK))  # T−21
    service = build(settings, clock=clock, exclusive=False)
    groups = [g.id for g in service.office.directory.of_kind("group")]
    [call] = outgoing(world, settings, world.address("finance"), "ขอเรื่อง")
    assert call["Message-ID"].strip(" <").startswith(reply_key(service.office, "call", meeting_id, "g-finance"))
    service.office.store.close()

    reply(world, settings, call, f"กลุ่มการเงิน <{world.address('finance')}>", "ไม่มีเรื่องเสนอครับ")
    run(settings, clock, datetime(2026, 11, 26, 8, tzinfo=BANGKOK))
    service = build(settings, clock=clock, exclusive=False)
    digest, _ = preview(service.office, datetime(2026, 11, 27, 7, 30, tzinfo=BANGKOK))
    [shown] = digest.meetings
    assert (shown["call"]["answered"], shown["call"]["total"]) == (1, len(groups))
    assert "กลุ่มบริหารงานการเงินและสินทรัพย์" not in shown["call"]["silent"] and "กลุ่มนโยบายและแผน" in shown["call"]["silent"]
    service.office.store.close()

    run(settings, clock, datetime(2026, 11, 30, 8, tzinfo=BANGKOK))  # T−16, past the first reminder's day
    assert outgoing(world, settings, world.address("finance"), "แจ้งเตือน") == []
    [reminder] = outgoing(world, settings, world.address("policy"), "แจ้งเตือน")
    service = build(settings, clock=clock, exclusive=False)
    [key] = find_keys(reminder["Message-ID"], service.office.reply_key_secret)
    assert (key.purpose, key.person) == ("call", "g_policy")
    service.office.store.close()
    run(settings, clock, datetime(2026, 12, 2, 8, tzinfo=BANGKOK))  # the deadline: the call closes
    service = build(settings, clock=clock, exclusive=False)
    digest, _ = preview(service.office, datetime(2026, 12, 3, 7, 30, tzinfo=BANGKOK))
    assert digest.meetings[0]["call"] is None
    service.office.store.close()

"""Attacks on issue 23 from the handheld: an appeal dated before the courier could have seen its violation."""
from datetime import datetime, timedelta, timezone

from server.extensions import db
from server.models import ViolationAppeal
from tests.sync.conftest import SHANGHAI
from tests.sync.test_checklists import conduct_answers, submit
from tests.sync.test_appeals import QUALITY, _appeal, _failed_check, _mine, _results


def test_an_appeal_dated_before_its_violation_was_recorded_is_kept_and_flagged(client, make, courier, device,
                                                                               templates):
    """A pre-shift check made offline five hours ago is pushed now: its violation is recorded now. An appeal whose device time is three hours earlier (a clock the batch cannot
    catch: device_now agrees with it) could not have been made then, since the handheld learns of a violation only
    once the server has recorded it. It is applied (what happened in the field is kept) and flagged for review,
    so quality's suspect list shows it; an appeal dated after the violation stays unflagged."""
    now = datetime.now(timezone.utc)
    check = submit(device, templates["conduct.pre_shift"], conduct_answers(uniform={"value": False}))
    check["device_time"] = (now - timedelta(hours=5)).astimezone(SHANGHAI).isoformat()  # made offline at 5 h ago
    assert _results(device, [check], device_now=now.astimezone(SHANGHAI).isoformat()) == [("applied", None)]
    [violation] = _mine(device)  # recorded now, occurred five hours ago
    early = (now - timedelta(hours=3)).astimezone(SHANGHAI).isoformat()
    op = dict(_appeal(device, violation["id"]), device_time=early)
    assert _results(device, [op], device_now=now.astimezone(SHANGHAI).isoformat()) == [("applied", None)]
    appeal = db.session.get(ViolationAppeal, op["entity_id"])
    assert appeal.device_time < now - timedelta(hours=2)  # dated as the handheld said
    assert appeal.clock_suspect is True
    listed = client.get(QUALITY, query_string={"status": "appealed"}, headers=make.headers("quality")).json
    assert [(v["id"], v["appeal"]["clock_suspect"]) for v in listed["items"]] == [(violation["id"], True)]


def test_an_appeal_dated_after_its_violation_is_not_flagged(client, make, courier, device, templates):
    """The control: made a minute after the violation was recorded, pushed now, no flag."""
    [violation] = _failed_check(device, templates, "uniform")
    op = _appeal(device, violation["id"])
    assert _results(device, [op]) == [("applied", None)]
    assert db.session.get(ViolationAppeal, op["entity_id"]).clock_suspect is False

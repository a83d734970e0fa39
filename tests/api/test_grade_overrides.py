"""Grade overrides (issue 23): quality staff set a courier's grade by hand with a reason, until a time; the job leaves
it; lifting or its end gives the rules' grade back; the history says why each grade changed; the grade shows its
consequences (GRADE_CONSEQUENCES)."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from server import jobs
from server.extensions import db
from server.models import AuditEntry, Courier, GradeChange, GradeOverride
from tests.sync.conftest import Device

CONSEQUENCES = {"A": {}, "B": {"warning": True}, "C": {"retraining_required": True}}


def _url(courier: dict, tail: str = "") -> str:
    """The courier's grade route."""
    return f"/api/v1/dispatch/couriers/{courier['id']}/grade{tail}"


def _override(client, make, courier: dict, role: str = "quality", **body):
    """POST an override."""
    return client.post(_url(courier, "/override"), json=body, headers=make.headers(role))


def _history(client, make, courier: dict) -> list[dict]:
    """The grade history, newest first."""
    return client.get(_url(courier, "/history"), headers=make.headers("dispatcher")).json["items"]


def test_an_override_holds_against_the_job_and_its_history_says_why(app, client, make):
    """A spotless courier (100, A) set to C by quality: a GradeChange A->C by the staff member with the override as
    its first reason (C's retraining gate reads it), the courier's record C, the consequences of C shown, the
    grades job leaving it (counted as overridden), a recompute answering the rules' A and keeping C."""
    app.config["GRADE_CONSEQUENCES"] = CONSEQUENCES
    courier = make.courier()
    until = (datetime.now(timezone.utc) + timedelta(days=7)).replace(microsecond=0)
    response = _override(client, make, courier, grade="C", reason="caught charging for stairs on camera",
                         until=until.isoformat())
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["recorded_grade"], body["grade"], body["score"]) == ("C", "A", 100)
    assert body["override"]["grade"] == "C" and body["override"]["until"] == until.isoformat()
    assert body["consequences"] == {"retraining_required": True}
    [change] = db.session.scalars(select(GradeChange))
    staff_id = body["override"]["created_by"]
    assert (change.from_grade, change.to_grade, change.computed_by) == ("A", "C", staff_id)
    assert change.reasons[0] == {"code": "override", "grade": "C", "reason": "caught charging for stairs on camera",
                                 "by": staff_id, "until": until.isoformat(), "override_id": body["override"]["id"],
                                 "rules_grade": "A", "points": 0}
    [shown] = _history(client, make, courier)
    assert shown["why"] == (f"override to C by {staff_id} until {until.isoformat()}: caught charging for stairs on "
                            "camera — rules alone: A, 100")
    assert jobs.run("grades") == {"couriers": 1, "changed": 0, "overridden": 1}
    db.session.expire_all()
    assert db.session.get(Courier, courier["id"]).grade == "C"
    again = client.post(_url(courier, "/recompute"), headers=make.headers("quality")).json
    assert (again["grade"], again["recorded_grade"]) == ("A", "C")
    assert db.session.query(GradeChange).count() == 1
    device = Device(client, make.device(courier))
    store, _, _ = device.pull_all()
    record = store[("courier", courier["id"])]["data"]
    assert record["grade"] == "C" and record["grade_reasons"][0]["code"] == "override"
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "grade.override"))


def test_an_override_to_the_same_grade_is_still_history(client, make):
    """An override to C of a courier already C still writes its row: since then the retraining is due."""
    courier = make.courier()
    _override(client, make, courier, grade="C", reason="first")
    second = _override(client, make, courier, grade="C", reason="caught again")
    assert second.status_code == 200
    rows = list(db.session.scalars(select(GradeChange).order_by(GradeChange.id)))
    assert [(r.from_grade, r.to_grade, r.reasons[0]["reason"]) for r in rows] == [
        ("A", "C", "first"), ("C", "C", "caught again")]
    overrides = list(db.session.scalars(select(GradeOverride).order_by(GradeOverride.id)))
    assert overrides[0].lifted_at is not None and overrides[0].lift_reason == f"replaced by override {overrides[1].id}"
    assert overrides[1].lifted_at is None


def test_the_default_until_is_one_grade_window(app, client, make):
    """No until: GRADE_WINDOW_DAYS from now."""
    courier = make.courier()
    before = datetime.now(timezone.utc)
    body = _override(client, make, courier, grade="B", reason="probation").json
    until = datetime.fromisoformat(body["override"]["until"])
    window = timedelta(days=app.config["GRADE_WINDOW_DAYS"])
    assert before + window <= until <= datetime.now(timezone.utc) + window


def test_lifting_gives_the_rules_grade_back_and_says_so(client, make):
    """Lifted: the rules' A at once, a history row C->A led by the lifting; a second lift is a conflict."""
    courier = make.courier()
    _override(client, make, courier, grade="C", reason="investigation")
    lifted = client.post(_url(courier, "/override/lift"), json={"reason": "investigation cleared him"},
                         headers=make.headers("admin"))
    assert lifted.status_code == 200, lifted.json
    assert (lifted.json["recorded_grade"], lifted.json["override"]) == ("A", None)
    newest = _history(client, make, courier)[0]
    assert (newest["from_grade"], newest["to_grade"]) == ("C", "A")
    assert newest["reasons"][0]["code"] == "override_lifted" and "investigation cleared him" in newest["why"]
    again = client.post(_url(courier, "/override/lift"), json={"reason": "again"}, headers=make.headers("quality"))
    assert again.status_code == 409 and again.json["code"] == "no_override"


def test_an_override_ends_by_itself_and_the_job_takes_over(client, make):
    """After `until` the job keeps the rules' grade again; the history says the override ended."""
    courier = make.courier()
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    _override(client, make, courier, grade="B", reason="a week's probation", until=until.isoformat())
    assert jobs.run("grades", now=until + timedelta(minutes=1)) == {"couriers": 1, "changed": 1}
    newest = _history(client, make, courier)[0]
    assert (newest["from_grade"], newest["to_grade"], newest["reasons"][0]["code"]) == ("B", "A", "override_ended")
    assert "override to B ended" in newest["why"]


def test_who_may_override_and_bad_input(client, make):
    """Quality and admins only (a dispatcher, maintenance, a courier: 403); a grade not A-C, no reason, an until in
    the past: 422 naming each field; an unknown courier 404."""
    courier = make.courier()
    for role in ("dispatcher", "maintenance"):
        refused = _override(client, make, courier, role=role, grade="C", reason="x")
        assert refused.status_code == 403 and refused.json["code"] == "forbidden"
    device = Device(client, make.device(courier))
    assert client.post(_url(courier, "/override"), json={"grade": "A", "reason": "me"},
                       headers=device.headers).status_code == 403
    bad = _override(client, make, courier, grade="D", reason="")
    assert bad.status_code == 422 and set(bad.json["fields"]) == {"grade", "reason"}
    past = _override(client, make, courier, grade="C", reason="x",
                     until=(datetime.now(timezone.utc) - timedelta(days=1)).isoformat())
    assert past.status_code == 422 and set(past.json["fields"]) == {"until"}
    assert _override(client, make, {"id": "c-nobody"}, grade="C", reason="x").status_code == 404
    assert db.session.query(GradeChange).count() == 0


def test_under_an_override_the_history_marks_the_rules_part(client, make):
    """An upheld complaint (a major violation, 8 points: 92, A) and an override to C: the row's why says the
    override, then what the rules alone gave (A, 92) and counted."""
    courier = make.courier()
    headers = make.headers("quality")
    complaint = client.post("/api/v1/dispatch/complaints", json={
        "courier_id": courier["id"], "channel": "phone", "category": "impolite", "text": "Rude at the door."},
        headers=headers).json
    client.post(f"/api/v1/dispatch/complaints/{complaint['id']}/respond", json={"text": "Called back."},
                headers=headers)
    resolved = client.post(f"/api/v1/dispatch/complaints/{complaint['id']}/resolve",
                           json={"outcome": "upheld", "note": "Confirmed."}, headers=headers)
    assert resolved.status_code == 200, resolved.json
    [violation] = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/violations", headers=headers).json["items"]
    assert violation["severity"] == "major"
    body = _override(client, make, courier, grade="C", reason="second warning").json
    assert (body["grade"], body["score"], body["recorded_grade"]) == ("A", 92, "C")
    newest = _history(client, make, courier)[0]
    assert newest["why"] == (f"override to C by {body['override']['created_by']} until {body['override']['until']}: "
                             f"second warning — rules alone: A, 92; 1 x {violation['code']} (major): -8")

"""Attacks on issue 23 from the office's side: who may decide a leak incident that names them; whom a spot check of
a stop may name."""
from sqlalchemy import func, select

from server.extensions import db
from server.models import AuditEntry, LeakIncident, Violation
from server.config import FailureLimit
from server.services import staff
from tests.api.test_customer_page import issue, path_of

BASE = "/api/v1/quality/leak-incidents"


def _export_past_the_limit(app, client, make, headers: dict) -> dict:
    """The staff member behind `headers` lists more customer rows than allowed: the incident naming them."""
    app.config["LEAK_EXPORT_MAX_ROWS"] = 1
    make.task()
    make.task()
    listed = client.get("/api/v1/dispatch/tasks", headers=headers)
    assert listed.status_code == 200 and len(listed.json["items"]) == 2, listed.json
    (incident,) = client.get(BASE, query_string={"source": "auto"}, headers=make.headers("admin")).json["items"]
    return incident


def test_a_quality_officer_cannot_dismiss_the_incident_that_names_them(app, client, make):
    """The quality officer who exported the data is the one the automatic incident names: they neither dismiss it
    (which would keep leak_incidents at 0), nor confirm, correct, notify or move the responsibility off themselves;
    another quality officer decides it, audited."""
    exporter = make.headers("quality")
    incident = _export_past_the_limit(app, client, make, exporter)
    url = f"{BASE}/{incident['id']}"
    for path, body in (("/dismiss", {"note": "Just my usual work."}), ("/confirm", {})):
        refused = client.post(url + path, json=body, headers=exporter)
        assert (refused.status_code, refused.json["code"]) == (403, "leak_own_incident"), refused.json
    moved = client.patch(url, json={"responsible_staff_id": None}, headers=exporter)
    assert (moved.status_code, moved.json["code"]) == (403, "leak_own_incident")
    told = client.post(url + "/notifications", json={"audience": "management", "channel": "email",
                                                     "notified_at": incident["discovered_at"]}, headers=exporter)
    assert (told.status_code, told.json["code"]) == (403, "leak_own_incident")
    assert db.session.get(LeakIncident, incident["id"]).status == "review"
    assert db.session.get(LeakIncident, incident["id"]).responsible_staff_id == incident["responsible_staff_id"]
    colleague = make.headers(staff.create(username="quality-colleague", role="quality")[1])
    decided = client.post(url + "/dismiss", json={"note": "A planned route review, signed off."}, headers=colleague)
    assert decided.status_code == 200 and decided.json["status"] == "dismissed", decided.json
    assert db.session.scalar(select(AuditEntry.staff_id).where(AuditEntry.action == "leak.dismiss")) != \
        incident["responsible_staff_id"]


def test_an_admin_named_by_a_report_cannot_decide_it_either(client, make):
    """An incident the office reports naming an admin: that admin cannot dismiss it; quality can."""
    user, token = staff.create(username="admin-named", role="admin")
    admin, named = make.headers(token), user.id
    reported = client.post(BASE, json={"source": "staff", "discovered_at": "2026-01-05T10:00:00+08:00",
                                       "data_kinds": ["phone"], "description": "A list left on a desk.",
                                       "responsible_staff_id": named}, headers=make.headers("dispatcher"))
    assert reported.status_code == 201, reported.json
    refused = client.post(f"{BASE}/{reported.json['id']}/dismiss", json={"note": "Nothing."}, headers=admin)
    assert (refused.status_code, refused.json["code"]) == (403, "leak_own_incident")
    confirmed = client.post(f"{BASE}/{reported.json['id']}/confirm", json={}, headers=make.headers("quality"))
    assert confirmed.status_code == 200 and confirmed.json["status"] == "confirmed"


def test_an_inspection_of_a_stop_cannot_name_a_courier_who_never_held_it(client, make):
    """A mystery-shopper visit at a stop is about who served it: naming another courier (who never held the task)
    would put a violation on them with a stranger's stop as evidence. 422 courier_not_on_task naming courier_id,
    nothing recorded (as a complaint about a task names only a courier who held it); the stop's own courier, or a
    courier it was reassigned from, may be named."""
    from server.services import checklists
    checklists.seed_defaults()
    [template] = client.get("/api/v1/dispatch/checklist-templates", query_string={"kind": "inspection"},
                            headers=make.headers("quality")).json["items"]
    served, stranger = make.courier(), make.courier()
    task = make.task(courier=served)
    body = {"kind": "mystery_shopper", "template_id": template["id"], "task_id": task["id"],
            "inspected_at": "2026-01-05T10:00:00+08:00", "answers": [
                {"item": item["code"], "value": item["code"] != "parcel_handling"}
                for item in template["items"] if item["type"] == "pass_fail"]}
    refused = client.post("/api/v1/quality/inspections", json=dict(body, courier_id=stranger["id"]),
                          headers=make.headers("quality"))
    assert (refused.status_code, refused.json["code"]) == (422, "courier_not_on_task"), refused.json
    assert set(refused.json["fields"]) == {"courier_id"}
    assert db.session.scalar(select(func.count()).select_from(Violation)) == 0
    named = client.post("/api/v1/quality/inspections", json=dict(body, courier_id=served["id"]),
                        headers=make.headers("quality"))
    assert named.status_code == 201 and named.json["courier_id"] == served["id"], named.json


def test_a_dismissed_link_flag_does_not_blind_detection_for_ever(client, app, make):
    """Six addresses, flagged, dismissed; then the link is opened from a hundred more addresses: past ten times the
    limit (50), a new incident; one per tenfold, not one per address."""
    app.config["LEAK_LINK_MAX_ADDRESSES"] = 5
    app.config["CUSTOMER_LINK_REQUESTS"] = FailureLimit(1000, 600)  # the page's own rate limit is not the subject
    link = issue(client, make, make.task(courier=make.courier())["id"])
    path = path_of(link)
    for n in range(1, 7):
        assert client.get(path, environ_base={"REMOTE_ADDR": f"198.51.100.{n}"}).status_code == 200
    (flag,) = client.get(BASE, query_string={"source": "auto"}, headers=make.headers("admin")).json["items"]
    assert client.post(f"{BASE}/{flag['id']}/dismiss", json={"note": "Shared in the family chat."},
                       headers=make.headers("quality")).status_code == 200
    for n in range(100):
        assert client.get(path, environ_base={"REMOTE_ADDR": f"10.{n // 250}.{n % 250}.9"}).status_code == 200
    flags = client.get(BASE, query_string={"source": "auto"}, headers=make.headers("admin")).json["items"]
    assert len(flags) == 2 and flags[0]["status"] == "review"

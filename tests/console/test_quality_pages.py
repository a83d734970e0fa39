"""The quality pages of the console: the complaints queue and a complaint's page (take, hand over, contacts,
resolve, the customer's photo), the claims queue and its decisions, the violations review with appeal decisions
and grade overrides, and the KPIs with their chart, CSV and rows. Everything is built through the API and the push
path; every action goes through the console's form and is read back through the API."""
import csv
import io
import re
from datetime import timedelta

from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry, Complaint, StaffUser
from tests.api.test_claims import open_claim, parcel
from tests.api.test_complaint_ownership import PNG, created, file
from tests.api.test_customer_page import issue, path_of
from tests.sync import conftest as sync
from tests.sync.test_appeals import _appeal, _failed_check, _results

COMPLAINTS = "/api/v1/dispatch/complaints"
# The handheld's fixtures: a courier with a van, their enrolled device, the default checklists.
courier, device, templates = sync.courier, sync.device, sync.templates


def staff_id(client) -> str:
    """The id of the staff member a console client is signed in as."""
    return db.session.scalar(select(StaffUser.id).where(StaffUser.username == client.username))


def _post(client, csrf_of, page: str, action: str, data: dict | None = None):
    """Post a form of the page (with its CSRF token)."""
    return client.post(action, data={"csrf_token": csrf_of(client, page), **(data or {})})


def _customer_complaint(client, make) -> Complaint:
    """A complaint the customer filed from their page with a photo: unowned, in the queue."""
    task = make.task(courier=make.courier())
    sent = file(client, path_of(issue(client, make, task["id"])), photo=(io.BytesIO(PNG), "door.png", "image/png"))
    assert sent.status_code == 303, sent.text
    return db.session.scalar(select(Complaint).where(Complaint.task_id == task["id"]))


def _complaint(client, make, complaint_id: int) -> dict:
    """The complaint as the API reads it."""
    return client.get(f"{COMPLAINTS}/{complaint_id}", headers=make.headers("quality")).json


def test_the_unowned_queue_is_taken_from_the_console_and_its_photo_shown(client, make, console_as, csrf_of):
    """A dispatcher's queue of nobody's complaints lists the customer's; they take it on its page (the API reads
    them as owner), and the page shows the photo, streamed by the console to staff only."""
    complaint = _customer_complaint(client, make)
    mine = created(client, make.headers("dispatcher"), subject="hotline")
    dispatcher = console_as("dispatcher")
    queue = dispatcher.get("/console/complaints?owner=none")
    assert queue.status_code == 200
    assert complaint.reference in queue.text and f"TS{mine['id']:08d}" not in queue.text
    page = f"/console/complaints/{complaint.id}"
    shown = dispatcher.get(page)
    assert shown.status_code == 200 and f"/console/complaints/{complaint.id}/photo" in shown.text
    waybill = client.get(f"/api/v1/dispatch/tasks/{complaint.task_id}", headers=make.headers("dispatcher")).json
    assert f'/console/tasks/{complaint.task_id}">{waybill["waybill_no"]}</a>' in shown.text  # by waybill (issue 24)
    photo = dispatcher.get(f"/console/complaints/{complaint.id}/photo")
    assert photo.status_code == 200 and photo.data == PNG and photo.mimetype == "image/png"
    assert photo.headers["X-Content-Type-Options"] == "nosniff" and photo.headers["Cache-Control"] == "no-store"
    assert console_as("maintenance").get(f"/console/complaints/{complaint.id}/photo").status_code == 403
    taken = _post(dispatcher, csrf_of, page, f"{page}/take")
    assert taken.status_code == 303 and "done=taken" in taken.headers["Location"]
    assert _complaint(client, make, complaint.id)["owner_id"] == staff_id(dispatcher)
    assert complaint.reference in dispatcher.get("/console/complaints?owner=me").text
    assert complaint.reference not in dispatcher.get("/console/complaints?owner=none").text
    without = dispatcher.get(f"/console/complaints/{mine['id']}/photo")
    assert without.status_code == 404


def test_a_complaint_is_answered_handed_over_and_resolved_from_its_page(client, make, console_as, csrf_of):
    """The owner records the first contact, hands the complaint to a quality colleague with the reason; the
    colleague resolves it upheld (a courier's violation) and records the customer's satisfaction."""
    courier_ = make.courier()
    dispatcher = console_as("dispatcher")
    quality = console_as("quality")
    complaint = _customer_complaint(client, make)
    page = f"/console/complaints/{complaint.id}"
    assert _post(dispatcher, csrf_of, page, f"{page}/take").status_code == 303
    contacted = _post(dispatcher, csrf_of, page, f"{page}/contacts", {"channel": "phone", "note": "Called back."})
    assert contacted.status_code == 303
    moved = _post(dispatcher, csrf_of, page, f"{page}/handover",
                  {"to_staff_id": staff_id(quality), "reason": "Needs a decision."})
    assert moved.status_code == 303, moved.text
    read = _complaint(client, make, complaint.id)
    assert read["owner_id"] == staff_id(quality) and read["status"] == "responded"
    assert [(h["to_staff_id"], h["reason"]) for h in read["handovers"]] == [(staff_id(quality), "Needs a decision.")]
    shown = quality.get(page).text
    assert "Called back." in shown and "Needs a decision." in shown and dispatcher.username in shown
    resolved = _post(quality, csrf_of, page, f"{page}/resolve", {"outcome": "upheld", "note": "Thrown, as seen."})
    assert resolved.status_code == 303
    rated = _post(quality, csrf_of, page, f"{page}/satisfaction", {"satisfaction": "satisfied"})
    assert rated.status_code == 303
    read = _complaint(client, make, complaint.id)
    assert (read["status"], read["outcome"], read["satisfaction"]) == ("resolved", "upheld", "satisfied")
    assert read["violation_id"] is not None and courier_  # the task's courier has the violation now


def test_a_dispatcher_may_not_act_on_anothers_complaint_nor_decide_one(client, make, console_as, csrf_of):
    """As in the API: another dispatcher's complaint is 403 not_complaint_owner; a dispatcher upholds none;
    bad input names the field; a complaint that does not exist is 404."""
    owner = console_as("dispatcher")
    complaint = _customer_complaint(client, make)
    page = f"/console/complaints/{complaint.id}"
    assert _post(owner, csrf_of, page, f"{page}/take").status_code == 303
    other = console_as("dispatcher")
    refused = _post(other, csrf_of, page, f"{page}/contacts", {"channel": "phone", "note": "Me too."})
    assert refused.status_code == 403 and "这条投诉由他人负责" in refused.text
    refused = _post(other, csrf_of, page, f"{page}/handover", {"to_staff_id": staff_id(other), "reason": "Mine."})
    assert refused.status_code == 403
    assert _post(owner, csrf_of, page, f"{page}/respond", {"text": "Sorry."}).status_code == 303
    decided = _post(owner, csrf_of, page, f"{page}/resolve", {"outcome": "upheld", "note": "Yes."})
    assert decided.status_code == 403 and "只有质控和管理员可以判定" in decided.text
    bad = _post(owner, csrf_of, page, f"{page}/contacts", {"channel": "pigeon"})
    assert bad.status_code == 422 and "channel: " in bad.text and "note: " in bad.text
    assert owner.get("/console/complaints/99999").status_code == 404
    assert _complaint(client, make, complaint.id)["contacts"][0]["note"] == "Sorry."


def test_forms_without_the_token_are_refused_and_change_nothing(client, make, console_as):
    """A post without the CSRF token, or with another session's, is 400; the complaint stays unowned."""
    complaint = _customer_complaint(client, make)
    dispatcher = console_as("dispatcher")
    assert dispatcher.post(f"/console/complaints/{complaint.id}/take").status_code == 400
    assert dispatcher.post(f"/console/complaints/{complaint.id}/take",
                           data={"csrf_token": "forged"}).status_code == 400
    assert _complaint(client, make, complaint.id)["owner_id"] is None


def test_the_queue_filters_overdue_with_reasons_and_refuses_unknown_filters(client, make, console_as, server_clock):
    """An old complaint never answered is overdue and says why; an unknown filter is a 422 naming it."""
    with server_clock.at(server_clock.now() - timedelta(days=5)):
        late = created(client, make.headers("dispatcher"), subject="depot")
    fresh = created(client, make.headers("dispatcher"), subject="hotline")
    quality = console_as("quality")
    overdue = quality.get("/console/complaints?overdue=true")
    assert f"TS{late['id']:08d}" in overdue.text and f"TS{fresh['id']:08d}" not in overdue.text
    assert re.search(r"首次回复超时", overdue.text)
    english = quality.get("/console/complaints?overdue=true&lang=en")
    assert "response late" in english.text
    unknown = quality.get("/console/complaints?q=Sun")
    assert unknown.status_code == 422 and "q: Unknown field." in unknown.text
    assert console_as("maintenance").get("/console/complaints").status_code == 403


def test_a_claim_is_assessed_approved_and_paid_from_the_console(client, make, console_as, csrf_of):
    """Quality assesses (the loss typed in yuan) and approves; only an admin records the payment; the queue
    filters by status."""
    task = make.task(parcels=[parcel("PC-1", value=20_000, insured=True)])
    claim = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "parcel_no": "PC-1",
                                      "kind": "loss", "description": "Never arrived.", "claimed_amount": 15_000})
    quality, admin, dispatcher = console_as("quality"), console_as("admin"), console_as("dispatcher")
    assert f"/console/claims/{claim['id']}" in dispatcher.get("/console/claims?status=opened").text
    assert f"/console/claims/{claim['id']}" not in dispatcher.get("/console/claims?status=paid").text
    page = f"/console/claims/{claim['id']}"
    refused = _post(dispatcher, csrf_of, page, f"{page}/assess", {"loss_amount": "120.00"})
    assert refused.status_code == 403
    bad = _post(quality, csrf_of, page, f"{page}/assess", {"loss_amount": "12.345"})
    assert bad.status_code == 422 and "loss_amount: " in bad.text
    assert _post(quality, csrf_of, page, f"{page}/assess", {"loss_amount": "120.50", "note": "Receipt seen."}
                 ).status_code == 303
    assert _post(quality, csrf_of, page, f"{page}/approve").status_code == 303
    assert _post(quality, csrf_of, page, f"{page}/pay", {"reference": "BANK-1"}).status_code == 403
    assert _post(admin, csrf_of, page, f"{page}/pay", {"reference": "BANK-1"}).status_code == 303
    read = client.get(f"/api/v1/dispatch/claims/{claim['id']}", headers=make.headers("quality")).json
    assert (read["status"], read["amount"], read["paid_amount"], read["payment_reference"]) == (
        "paid", 12_050, 12_050, "BANK-1")
    shown = quality.get(page).text
    assert "¥120.50" in shown and "Receipt seen." in shown and "BANK-1" in shown
    again = _post(admin, csrf_of, page, f"{page}/pay", {"reference": "BANK-2"})
    assert again.status_code == 409 and "这个理赔当前的状态不能进行这一步" in again.text
    paid = next(e for e in read["entries"] if e["kind"] == "paid")
    assert _post(quality, csrf_of, page, f"{page}/corrections",
                 {"entry_id": str(paid["id"]), "amount": "100", "reason": "Bank fee refunded."}).status_code == 403
    fixed = _post(admin, csrf_of, page, f"{page}/corrections",
                  {"entry_id": str(paid["id"]), "amount": "100", "reason": "Bank fee refunded."})
    assert fixed.status_code == 303
    read = client.get(f"/api/v1/dispatch/claims/{claim['id']}", headers=make.headers("quality")).json
    assert (read["paid_amount"], read["corrections"]) == (10_000, 1)
    bad = _post(admin, csrf_of, page, f"{page}/corrections", {"entry_id": "x", "amount": "1", "reason": "r"})
    assert bad.status_code == 422 and "entry_id: " in bad.text


def test_a_claim_is_rejected_with_its_reason(client, make, console_as, csrf_of):
    """Rejected with the reason (a reason is required)."""
    task = make.task()
    claim = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"],
                                      "parcel_no": task["parcels"][0]["parcel_no"], "kind": "damage",
                                      "description": "Dented.", "claimed_amount": 5_000})
    quality = console_as("quality")
    page = f"/console/claims/{claim['id']}"
    assert _post(quality, csrf_of, page, f"{page}/reject").status_code == 422
    assert _post(quality, csrf_of, page, f"{page}/reject", {"reason": "Damaged before pickup."}).status_code == 303
    assert "Damaged before pickup." in quality.get(page).text


def test_quality_decides_an_appeal_and_a_dispatcher_is_refused_the_review(client, make, console_as, csrf_of,
                                                                          device, templates, courier):
    """A violation from a pushed check, appealed from the handheld: quality finds it under appealed and voids it
    on appeal; another is confirmed; a dispatcher gets 403 on the review pages."""
    made = _failed_check(device, templates, "uniform", "id_badge")
    appealed, other = made[0]["id"], made[1]["id"]
    assert _results(device, [_appeal(device, appealed)]) == [("applied", None)]
    dispatcher, quality = console_as("dispatcher"), console_as("quality")
    assert dispatcher.get("/console/violations").status_code == 403
    assert dispatcher.get(f"/console/violations/{appealed}").status_code == 403
    listed = quality.get("/console/violations?status=appealed")
    assert f"/console/violations/{appealed}\"" in listed.text and f"/console/violations/{other}\"" not in listed.text
    # The courier by name and the code and severity in words (issue 24), on the list and the violation's page.
    assert f">{courier['name']}</a>" in listed.text and "<td>行为规范检查未通过</td>" in listed.text
    assert ">conduct_item_failed<" not in listed.text
    shown = quality.get(f"/console/violations/{appealed}").text
    assert f">{courier['name']}</a>" in shown and "行为规范检查未通过 · " in shown and ">{courier['id']}<" not in shown
    assert quality.get(f"/console/violations?courier_id={courier['id']}&clock_suspect=false").status_code == 200
    ours = quality.get(f"/console/violations?courier_id={courier['id']}&format=csv")
    api = client.get("/api/v1/quality/violations", query_string={"courier_id": courier["id"], "format": "csv"},
                     headers=make.headers("quality"))
    assert ours.status_code == 200 and ours.data == api.data and len(ours.text.strip().splitlines()) == 3
    page = f"/console/violations/{appealed}"
    assert "I wore it, see the photo" in quality.get(page).text
    refused = _post(dispatcher, csrf_of, "/console/complaints", f"{page}/appeal/decide",
                    {"outcome": "voided", "reason": "x"})
    assert refused.status_code == 403
    decided = _post(quality, csrf_of, page, f"{page}/appeal/decide", {"outcome": "voided", "reason": "Badge seen."})
    assert decided.status_code == 303
    read = client.get(f"/api/v1/quality/violations/{appealed}", headers=make.headers("quality")).json
    assert (read["status"], read["appeal"]["status"], read["appeal"]["decision_reason"]) == (
        "voided", "voided", "Badge seen.")
    again = _post(quality, csrf_of, page, f"{page}/appeal/decide", {"outcome": "upheld", "reason": "Oops."})
    assert again.status_code == 409 and "这个申诉已经裁定过了" in again.text
    confirm = f"/console/violations/{other}"
    assert _post(quality, csrf_of, confirm, f"{confirm}/confirm", {"reason": "Seen on camera."}).status_code == 303
    assert client.get(f"/api/v1/quality/violations/{other}", headers=make.headers("quality")).json["status"] == "upheld"


def test_a_grade_is_set_by_hand_and_lifted(client, make, console_as, csrf_of, app):
    """Quality overrides a courier's grade until a depot-local time, with a reason; the history says so; lifting
    gives the rules' grade back; a dispatcher is refused."""
    courier_ = make.courier()
    quality = console_as("quality")
    page = f"/console/couriers/{courier_['id']}/grade"
    assert quality.get(page).status_code == 200
    refused = _post(console_as("dispatcher"), csrf_of, "/console/complaints", f"{page}/override",
                    {"grade": "C", "reason": "x"})
    assert refused.status_code == 403
    set_ = _post(quality, csrf_of, page, f"{page}/override",
                 {"grade": "C", "reason": "Repeated rudeness.", "until": "2099-01-31T18:00"})
    assert set_.status_code == 303, set_.text
    grade = client.get(f"/api/v1/dispatch/couriers/{courier_['id']}/grade", headers=make.headers("quality")).json
    assert grade["recorded_grade"] == "C" and grade["override"]["reason"] == "Repeated rudeness."
    assert grade["override"]["until"].startswith("2099-01-31T10:00")  # 18:00 in Shanghai, the depot's zone
    shown = quality.get(page).text
    assert "Repeated rudeness." in shown
    # The courier by name, reasons and consequences in words (issue 24), in Chinese and English.
    assert f"· {courier_['name']}</h1>" in shown and 'id="grade-consequences">需要再培训：是<' in shown
    assert f"由 {quality.username} 人工设为 C" in shown and "retraining_required" not in shown
    english = quality.get(f"{page}?lang=en").text
    assert 'id="grade-consequences">Retraining required: Yes<' in english and f"set to C by {quality.username}" in english
    bad = _post(quality, csrf_of, page, f"{page}/override", {"grade": "Z", "reason": "x", "until": "soon"})
    assert bad.status_code == 422 and "until: " in bad.text
    lifted = _post(quality, csrf_of, page, f"{page}/override/lift", {"reason": "Retrained."})
    assert lifted.status_code == 303
    grade = client.get(f"/api/v1/dispatch/couriers/{courier_['id']}/grade", headers=make.headers("quality")).json
    assert grade["override"] is None and grade["recorded_grade"] == "A"
    assert f"{quality.username} 解除了人工等级 C：Retrained." in quality.get(f"{page}?lang=zh").text
    assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.staff_id == staff_id(quality))) is not None


def test_the_kpi_page_its_csv_chart_and_rows_agree_with_the_api(client, make, console_as):
    """The console's figures for a period are the API's: the CSV is the same bytes, the chart a PNG, each
    figure links to its rows, which list the complaint behind it; bad dates name the field; maintenance: 403."""
    complaint = created(client, make.headers("dispatcher"), subject="hotline")
    assert client.post(f"{COMPLAINTS}/{complaint['id']}/respond", json={"text": "On it."},
                       headers=make.headers("dispatcher")).status_code == 200
    dispatcher = console_as("dispatcher")
    shown = dispatcher.get("/console/kpis")
    assert shown.status_code == 200 and "投诉及时回复率" in shown.text
    start, end = re.search(r'name="from" id="kpi-from" value="([0-9-]+)"', shown.text).group(1), \
        re.search(r'name="to" id="kpi-to" value="([0-9-]+)"', shown.text).group(1)
    api = client.get("/api/v1/reports/kpis", query_string={"from": start, "to": end, "format": "csv"},
                     headers=make.headers("dispatcher"))
    ours = dispatcher.get(f"/console/kpis.csv?from={start}&to={end}")
    assert ours.status_code == 200 and ours.mimetype == "text/csv" and ours.data == api.data
    rows = {row["figure"]: row for row in csv.DictReader(io.StringIO(ours.text))}
    assert (rows["complaint_response_on_time"]["numerator"], rows["complaint_response_on_time"]["denominator"]) == (
        "1", "1")
    assert "100.0%" in shown.text
    chart = dispatcher.get(f"/console/kpis/chart.png?from={start}&to={end}")
    assert chart.status_code == 200 and chart.data.startswith(b"\x89PNG")
    link = f"/console/kpis/complaint_response_on_time?from={start}&amp;to={end}"
    assert link in shown.text
    behind = dispatcher.get(link.replace("&amp;", "&"))
    assert behind.status_code == 200 and f"/console/complaints/{complaint['id']}" in behind.text
    assert '<th scope="col">投诉</th>' in behind.text  # the column's subject in words (issue 24), not "complaint"
    bad = dispatcher.get("/console/kpis?from=2026-13-01&to=2026-12-01")
    assert bad.status_code == 422 and "from: " in bad.text
    assert dispatcher.get(f"/console/kpis/no_such_figure?from={start}&to={end}").status_code == 404
    assert console_as("maintenance").get("/console/kpis").status_code == 403
    english = dispatcher.get("/console/kpis?lang=en")
    assert "Complaints answered in time" in english.text

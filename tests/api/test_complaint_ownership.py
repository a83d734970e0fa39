"""Issue 23: a complaint is owned to the end (首问负责制), may name no courier, falls due for its response, its
resolution and each update, is filed by customers from their pages, and a low rating opens a follow-up."""
import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from server.config import FailureLimit
from server.extensions import db
from server.models import Attachment, AuditEntry, Complaint, StaffUser, Violation
from server.services import complaints as complaint_service, grades
from tests.api.test_claims import _receipt_path
from tests.api.test_customer_page import csrf_of, issue, path_of

URL = "/api/v1/dispatch/complaints"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 64


def staff_member(client, make, role: str) -> tuple[str, dict]:
    """Another staff member of the role through the admin API: (id, headers)."""
    answer = client.post("/api/v1/admin/staff", json={"username": f"{role}-{make._next()}x", "role": role},
                         headers=make.headers("admin"))
    assert answer.status_code == 201, answer.json
    return answer.json["staff"]["id"], make.headers(answer.json["token"])


def me(client, headers) -> str:
    """The staff id behind the headers (the recorder of a throwaway complaint is its owner)."""
    return created(client, headers, subject="hotline")["owner_id"]


def created(client, headers, **body) -> dict:
    """A complaint recorded with these headers."""
    body = {"channel": "phone", "category": "impolite", "text": "Rude on the phone.", **body}
    answer = client.post(URL, json=body, headers=headers)
    assert answer.status_code == 201, answer.json
    return answer.json


def act(client, headers, complaint: dict, action: str, body: dict | None = None):
    """POST one of the complaint's actions."""
    return client.post(f"{URL}/{complaint['id']}/{action}", json=body, headers=headers)


def listed(client, make, **query) -> list[int]:
    """Ids of the complaints the quality team lists with the query."""
    answer = client.get(URL, query_string=query, headers=make.headers("quality"))
    assert answer.status_code == 200, answer.json
    return [c["id"] for c in answer.json["items"]]


def events(client, make, complaint_id: int) -> list[tuple[str, dict]]:
    """(type, data) of the complaint's events in the feed, in order."""
    answer = client.get("/api/v1/integrations/events", query_string={
        "types": "complaint.opened,complaint.taken,complaint.handed_over", "limit": 500},
        headers=make.headers("integration"))
    assert answer.status_code == 200, answer.json
    return [(e["type"], e["data"]) for e in answer.json["items"] if e["subject_id"] == str(complaint_id)]


def test_the_recorder_owns_it_until_handed_over_with_a_reason(client, make):
    """The dispatcher who recorded it owns it; they hand it to a quality colleague with the reason: the owner
    changes, the handover is kept, audited and an event; the new owner hands it on; ?owner= lists by owner."""
    courier = make.courier()
    dispatcher = make.headers("dispatcher")
    complaint = created(client, dispatcher, courier_id=courier["id"])
    first = complaint["owner_id"]
    assert first == complaint["created_by"] and complaint["owned_since"] and complaint["handovers"] == []
    lead_id, lead = staff_member(client, make, "quality")
    moved = act(client, dispatcher, complaint, "handover", {"to_staff_id": lead_id, "reason": "Needs quality."})
    assert moved.status_code == 200, moved.json
    assert moved.json["owner_id"] == lead_id
    assert [(h["from_staff_id"], h["to_staff_id"], h["reason"], h["handed_over_by"]) for h in moved.json[
        "handovers"]] == [(first, lead_id, "Needs quality.", first)]
    other_id, _ = staff_member(client, make, "dispatcher")
    again = act(client, lead, complaint, "handover", {"to_staff_id": other_id, "reason": "Back to dispatch."})
    assert again.status_code == 200 and again.json["owner_id"] == other_id and len(again.json["handovers"]) == 2
    assert listed(client, make, owner=other_id) == [complaint["id"]] and listed(client, make, owner=first) == []
    assert [c["id"] for c in client.get(URL, query_string={"owner": "me"}, headers=lead).json["items"]] == []
    assert [t for t, _ in events(client, make, complaint["id"])] == [
        "complaint.opened", "complaint.handed_over", "complaint.handed_over"]
    assert events(client, make, complaint["id"])[1][1]["to_staff_id"] == lead_id
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity == "complaints", AuditEntry.entity_id == str(complaint["id"])).order_by(AuditEntry.id))
    assert list(actions) == ["complaint.create", "complaint.hand_over", "complaint.hand_over"]


def test_only_the_owner_or_an_admin_hands_over_and_only_to_an_active_office_member(client, make):
    """A non-owner (quality or another dispatcher) is 403 not_complaint_owner; an unknown, inactive or maintenance
    staff member, the owner themself or no reason is 422 naming the field; a resolved complaint is 409."""
    courier = make.courier()
    complaint = created(client, make.headers("dispatcher"), courier_id=courier["id"])
    target_id, _ = staff_member(client, make, "quality")
    body = {"to_staff_id": target_id, "reason": "Going on leave."}
    _, other_dispatcher = staff_member(client, make, "dispatcher")
    for headers in (make.headers("quality"), other_dispatcher):
        refused = act(client, headers, complaint, "handover", body)
        assert refused.status_code == 403 and refused.json["code"] == "not_complaint_owner", refused.json
    inactive_id, _ = staff_member(client, make, "dispatcher")
    db.session.get(StaffUser, inactive_id).active = False
    db.session.commit()
    maintenance_id, _ = staff_member(client, make, "maintenance")
    for bad, field in ((dict(body, to_staff_id="s_nobody"), "to_staff_id"),
                       (dict(body, to_staff_id=inactive_id), "to_staff_id"),
                       (dict(body, to_staff_id=maintenance_id), "to_staff_id"),
                       (dict(body, to_staff_id=complaint["owner_id"]), "to_staff_id"),
                       ({"to_staff_id": target_id}, "reason"), (dict(body, reason="  "), "reason")):
        answer = act(client, make.headers("dispatcher"), complaint, "handover", bad)
        assert answer.status_code == 422 and field in answer.json["fields"], (bad, answer.json)
    assert client.get(f"{URL}/{complaint['id']}", headers=make.headers("quality")).json["handovers"] == []
    by_admin = act(client, make.headers("admin"), complaint, "handover", body)
    assert by_admin.status_code == 200 and by_admin.json["owner_id"] == target_id
    act(client, make.headers("quality"), complaint, "respond", {"text": "We are sorry."})
    act(client, make.headers("quality"), complaint, "resolve", {"outcome": "rejected", "note": "n"})
    late = act(client, make.headers("admin"), complaint, "handover", dict(body, to_staff_id=inactive_id))
    assert late.status_code == 409 and late.json["code"] == "complaint_resolved"


def test_another_dispatcher_cannot_act_on_an_owned_complaint_but_quality_can(client, make):
    """Respond, contact, withdraw: the owner's (and quality's, admins'); another dispatcher is 403 and nothing
    is recorded. A dispatcher cannot decide (403 decision_not_allowed) even their own complaint."""
    courier = make.courier()
    owner = make.headers("dispatcher")
    complaint = created(client, owner, courier_id=courier["id"])
    _, stranger = staff_member(client, make, "dispatcher")
    for action, body in (("respond", {"text": "hi"}), ("contacts", {"channel": "phone", "note": "called"}),
                         ("resolve", {"outcome": "withdrawn", "note": "n"})):
        refused = act(client, stranger, complaint, action, body)
        assert refused.status_code == 403 and refused.json["code"] == "not_complaint_owner", (action, refused.json)
    assert client.get(f"{URL}/{complaint['id']}", headers=owner).json["contacts"] == []
    assert act(client, owner, complaint, "respond", {"text": "We are looking into it."}).status_code == 200
    decided = act(client, owner, complaint, "resolve", {"outcome": "upheld", "note": "n"})
    assert decided.status_code == 403 and decided.json["code"] == "decision_not_allowed"
    assert act(client, make.headers("quality"), complaint, "contacts", {"channel": "sms", "note": "update"}
               ).status_code == 201
    assert client.get(URL, headers={"Authorization": f"Bearer {make.device(courier)['token']}"}).status_code == 403


def test_the_unowned_queue_is_taken_by_the_first_who_takes_or_answers(client, make):
    """A complaint filed on the customer page has no owner and is in ?owner=none; the first to take it owns it
    (taking it again is the same answer, another taker 409 naming the owner); answering an unowned one takes it."""
    courier = make.courier()
    task = make.task(courier=courier)
    link = path_of(issue(client, make, task["id"]))
    filed = [file(client, link, text=text) for text in ("The courier threw my parcel.", "And was rude.")]
    assert all(answer.status_code == 303 for answer in filed)
    first, second = listed(client, make, owner="none", channel="customer_page")[::-1]
    dispatcher = make.headers("dispatcher")
    taken = act(client, dispatcher, {"id": first}, "take")
    assert taken.status_code == 200 and taken.json["owner_id"] is not None and taken.json["owned_since"]
    assert act(client, dispatcher, {"id": first}, "take").json == taken.json
    clash = act(client, make.headers("quality"), {"id": first}, "take")
    assert clash.status_code == 409 and clash.json["code"] == "complaint_owned"
    assert clash.json["owner_id"] == taken.json["owner_id"]
    answered = act(client, make.headers("quality"), {"id": second}, "contacts", {"channel": "phone", "note": "hi"})
    assert answered.status_code == 201
    read = client.get(f"{URL}/{second}", headers=dispatcher).json
    assert read["owner_id"] == me(client, make.headers("quality")) and read["status"] == "responded"
    assert listed(client, make, owner="none") == []
    assert [c["id"] for c in client.get(URL, query_string={"owner": "me"}, headers=dispatcher).json["items"]] == [
        first]
    assert [t for t, _ in events(client, make, first)] == ["complaint.opened", "complaint.taken"]
    assert [t for t, _ in events(client, make, second)] == ["complaint.opened", "complaint.taken"]


def test_a_complaint_about_a_depot_names_no_courier_and_upheld_records_no_violation(client, make):
    """subject depot without a courier; a courier subject still needs one; upheld: no violation; the KPI report
    counts it in the totals and under no courier; the grade job runs over it."""
    courier = make.courier()
    task = make.task(courier=courier)
    quality = make.headers("quality")
    depot = created(client, quality, subject="depot", task_id=task["id"], category="late")
    assert (depot["subject"], depot["courier_id"], depot["task_id"]) == ("depot", None, task["id"])
    bad = client.post(URL, json={"channel": "phone", "category": "late", "text": "x"}, headers=quality)
    assert bad.status_code == 422 and "courier_id" in bad.json["fields"]
    bad = client.post(URL, json={"channel": "rating", "category": "late", "text": "x", "subject": "hotline"},
                      headers=quality)
    assert bad.status_code == 422 and "channel" in bad.json["fields"]  # the customers' channels are not typed in
    about_courier = created(client, quality, task_id=task["id"])
    for complaint in (depot, about_courier):
        act(client, quality, complaint, "respond", {"text": "sorry"})
        assert act(client, quality, complaint, "resolve", {"outcome": "upheld", "note": "n"}).status_code == 200
    db.session.expire_all()
    assert [v.courier_id for v in db.session.scalars(select(Violation))] == [courier["id"]]
    assert client.get(f"{URL}/{depot['id']}", headers=quality).json["violation_id"] is None
    today = datetime.now(timezone.utc).date()
    span = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    total = client.get("/api/v1/reports/kpis", query_string=span, headers=quality)
    assert total.status_code == 200, total.json
    handling = total.json["total"]["figures"]["first_contact_resolution"]
    assert (handling["numerator"], handling["denominator"]) == (2, 2)
    by_courier = client.get("/api/v1/reports/kpis", query_string={**span, "group_by": "courier"}, headers=quality)
    assert by_courier.status_code == 200, by_courier.json
    groups = {g["group"]: g["figures"]["first_contact_resolution"]["denominator"] for g in by_courier.json["groups"]}
    assert groups[courier["id"]] == 1 and sum(groups.values()) == 2  # the depot's under no courier
    assert grades.evaluate(courier_id=courier["id"])["score"] < 100  # the courier's upheld complaint, one only


def test_overdue_for_a_response_a_resolution_or_an_update_says_why(client, make, app, server_clock):
    """Resolution due by category (fixed when received); an update due COMPLAINT_UPDATE_HOURS after each contact;
    ?overdue=true lists each with its reasons; a reopening sets the resolution and update due anew."""
    app.config["COMPLAINT_RESOLUTION_HOURS_BY_CATEGORY"] = {"damage": 168}
    courier = make.courier()
    quality = make.headers("quality")
    now = datetime.now(timezone.utc)
    late = created(client, quality, courier_id=courier["id"], category="late",
                   received_at=(now - timedelta(hours=80)).isoformat())
    damage = created(client, quality, courier_id=courier["id"], category="damage",
                     received_at=(now - timedelta(hours=80)).isoformat())
    for complaint, hours in ((late, 72), (damage, 168)):
        assert (datetime.fromisoformat(complaint["resolution_due_at"])
                - datetime.fromisoformat(complaint["received_at"])) == timedelta(hours=hours)
    assert (late["overdue_reasons"], damage["overdue_reasons"]) == (["response", "resolution"], ["response"])
    answered = act(client, quality, damage, "respond", {"text": "We are on it."}).json
    assert answered["overdue_reasons"] == [] and answered["overdue"] is False
    assert datetime.fromisoformat(answered["update_due_at"]) - datetime.fromisoformat(
        answered["first_response_at"]) == timedelta(hours=48)
    with server_clock.at(now + timedelta(hours=49)):
        items = client.get(URL, query_string={"overdue": "true"}, headers=quality).json["items"]
        assert {c["id"]: c["overdue_reasons"] for c in items} == {
            late["id"]: ["response", "resolution"], damage["id"]: ["update"]}
        act(client, quality, damage, "contacts", {"channel": "sms", "note": "Still checking with the depot."})
        assert listed(client, make, overdue="true") == [late["id"]]
        assert listed(client, make, overdue="false") == [damage["id"]]
    act(client, quality, late, "respond", {"text": "sorry"})
    act(client, quality, late, "resolve", {"outcome": "rejected", "note": "n"})
    assert listed(client, make, overdue="true") == []
    reopened = act(client, quality, late, "reopen", {"reason": "Not fixed."}).json
    assert datetime.fromisoformat(reopened["resolution_due_at"]) - datetime.fromisoformat(
        reopened["reopenings"][0]["reopened_at"]) == timedelta(hours=72)
    assert reopened["overdue"] is False


def file(client, path: str, *, csrf: str | None = None, photo: tuple | None = None, **form):
    """Post the complaint form of a customer or receipt page, with the page's CSRF token unless given."""
    data = {"csrf": csrf if csrf is not None else csrf_of(client.get(path)), "lang": "en", "category": "impolite",
            "subject": "courier", "text": "The courier threw my parcel.", **form}
    if photo is not None:
        data["photo"] = photo
    return client.post(path + "/complaint", data=data, content_type="multipart/form-data")


def page_complaints(task_id: str) -> list[Complaint]:
    """The task's complaints, fresh."""
    db.session.expire_all()
    return list(db.session.scalars(select(Complaint).where(Complaint.task_id == task_id).order_by(Complaint.id)))


def test_the_customer_files_from_the_customer_page_with_a_photo_and_sees_its_status(client, make, app):
    """Filed with a PNG: unowned, about the task's courier, the photo kept (and named for the collector); the page
    shows the reference and its status; the same post again is one complaint; another subject names no courier."""
    import io

    courier = make.courier()
    task = make.task(courier=courier)
    link = path_of(issue(client, make, task["id"]))
    sent = file(client, link, photo=(io.BytesIO(PNG), "door.png", "image/png"))
    assert sent.status_code == 303 and "done=complaint" in sent.headers["Location"], sent.text
    [complaint] = page_complaints(task["id"])
    assert (complaint.channel, complaint.subject, complaint.courier_id, complaint.owner_id) == (
        "customer_page", "courier", courier["id"], None)
    assert db.session.get(Attachment, complaint.photo_sha256).content_type == "image/png"
    reference, complaint_id = complaint.reference, complaint.id  # the page's view commits (its link-use note)
    shown = client.get(sent.headers["Location"]).text
    assert f'<strong id="complaint-ref">{reference}</strong>' in shown
    assert re.search(r'class="complaint-status">received<', shown)
    assert file(client, link).status_code == 303  # the same complaint again: a double submission
    assert len(page_complaints(task["id"])) == 1
    assert file(client, link, subject="hotline", text="Nobody answered.").status_code == 303
    hotline = page_complaints(task["id"])[-1]
    assert (hotline.subject, hotline.courier_id) == ("hotline", None)
    act(client, make.headers("quality"), {"id": complaint_id}, "respond", {"text": "We are sorry."})
    zh = client.get(link).text
    assert "处理中" in zh and "已受理" in zh and "提交投诉" in zh


def test_the_page_form_refuses_forgeries_bad_photos_and_floods(client, make, app):
    """CSRF missing or of another link: 400; a GIF or SVG: 422 and a friendly message; a photo over the limit:
    422, a body over the form's limit: 413; past COMPLAINT_PAGE_FILINGS per task: 429. Nothing is filed."""
    import io

    courier = make.courier()
    task, other = make.task(courier=courier), make.task(courier=courier)
    link, other_link = path_of(issue(client, make, task["id"])), path_of(issue(client, make, other["id"]))
    assert file(client, link, csrf="").status_code == 400
    assert file(client, link, csrf="0" * 64).status_code == 400
    assert file(client, link, csrf=csrf_of(client.get(other_link))).status_code == 400
    gif = file(client, link, photo=(io.BytesIO(GIF), "x.gif", "image/gif"))
    assert gif.status_code == 422 and "JPEG or PNG" in gif.text
    svg = file(client, link, photo=(io.BytesIO(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), "x.svg", "image/svg+xml"))
    assert svg.status_code == 422
    app.config["COMPLAINT_PHOTO_LIMIT"] = 32
    big = file(client, link, photo=(io.BytesIO(PNG), "door.png", "image/png"))
    assert big.status_code == 422 and "too large" in big.text
    app.config["COMPLAINT_FORM_BODY_LIMIT"] = 2048
    huge = file(client, link, photo=(io.BytesIO(PNG + b"\x00" * 4096), "door.png", "image/png"))
    assert huge.status_code == 413 and "照片太大了" in huge.text  # the form (and its lang) is never read
    assert file(client, link, category="rude").status_code == 422
    assert page_complaints(task["id"]) == []
    app.config["COMPLAINT_PAGE_FILINGS"] = FailureLimit(2, 600)  # refused posts count: this task's is spent
    assert file(client, link, text="one").status_code == 429
    assert file(client, other_link, text="one").status_code == 303  # another task's budget
    assert file(client, other_link, text="two").status_code == 303
    assert file(client, other_link, text="three").status_code == 429
    assert page_complaints(task["id"]) == [] and [c.text for c in page_complaints(other["id"])] == ["one", "two"]


def test_the_customer_files_from_the_receipt_page(client, make):
    """The receipt page's form files a complaint of channel receipt_page about the task's courier; CSRF of this
    receipt only; its reference and status are shown there."""
    path, task = _receipt_path(client, make)
    assert file(client, path, csrf="0" * 64).status_code == 400
    sent = file(client, path, category="late", text="Two days late.")
    assert sent.status_code == 303, sent.text
    [complaint] = page_complaints(task["id"])
    assert (complaint.channel, complaint.courier_id, complaint.owner_id) == ("receipt_page", task["courier_id"], None)
    reference, complaint_id = complaint.reference, complaint.id  # the page's view commits (its link-use note)
    shown = client.get(sent.headers["Location"]).text
    assert reference in shown and "Complaint received" in shown
    assert complaint_id in listed(client, make, owner="none", channel="receipt_page")


def test_a_low_rating_opens_one_unowned_follow_up_for_the_quality_team(client, make, app):
    """Rating 2 with a comment: a complaint of channel rating, unowned, with the comment, about the courier; a 3
    opens none; following up the same rating again is the same complaint."""
    from tests.api.test_ratings import deliver, post_rating
    from tests.sync.conftest import Device, start_shift

    courier = make.courier()
    device = Device(client, make.device(courier))
    start_shift(make, courier, device)
    low, fine = make.task(courier=courier), make.task(courier=courier)
    links = [path_of(issue(client, make, t["id"])) for t in (low, fine)]
    for task, link, score in ((low, links[0], "2"), (fine, links[1], "3")):
        deliver(device, task)
        assert post_rating(client, link, score=score, comment="Left at the wrong door.").status_code == 303
    queue = client.get(URL, query_string={"owner": "none", "channel": "rating"}, headers=make.headers("quality"))
    [follow_up] = queue.json["items"]
    assert (follow_up["task_id"], follow_up["courier_id"], follow_up["text"], follow_up["owner_id"]) == (
        low["id"], courier["id"], "Left at the wrong door.", None)
    assert [t for t, _ in events(client, make, follow_up["id"])] == ["complaint.opened"]
    rating = db.session.get(Complaint, follow_up["id"]).rating_id
    from server.models import Rating, Task
    again = complaint_service.follow_up_rating(rating=db.session.get(Rating, rating), task=db.session.get(
        Task, low["id"]))
    db.session.commit()
    assert again.id == follow_up["id"]
    assert db.session.scalar(select(func.count()).select_from(Complaint).where(Complaint.channel == "rating")) == 1
    assert page_complaints(fine["id"]) == []


def test_old_complaints_keep_working_without_resolution_or_update_times(client, make):
    """A complaint with no resolution or update due time (received before issue 23) is overdue only for its
    first response, and ?overdue=false lists it."""
    courier = make.courier()
    complaint = created(client, make.headers("quality"), courier_id=courier["id"])
    row = db.session.get(Complaint, complaint["id"])
    row.resolution_due_at = row.update_due_at = None
    db.session.commit()
    assert listed(client, make, overdue="false") == [complaint["id"]]
    assert client.get(f"{URL}/{complaint['id']}", headers=make.headers("quality")).json["overdue_reasons"] == []

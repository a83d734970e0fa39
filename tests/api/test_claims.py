"""Claims (理赔) through the handhelds' push path and the office's HTTP API: opening, the compensation rules, the
steps and who may take them, corrections, deadlines, the customer's form, the events and the figures."""
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.config import FailureLimit
from tests.api.test_customer_page import csrf_of
from tests.sync.conftest import Device
from tests.sync.test_handover import AT_DOOR, codes, sign, upload, verify

CLAIMS = "/api/v1/dispatch/claims"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x07" * 64
OK = ("applied", None)


def open_claim(client, make, body: dict, *, role: str = "dispatcher", expect: int = 201) -> dict:
    """POST /dispatch/claims as the role; the answer, its status checked."""
    answer = client.post(CLAIMS, json=body, headers=make.headers(role))
    assert answer.status_code == expect, answer.json
    return answer.json


def step(client, make, claim: dict, action: str, body: dict | None = None, *, role: str = "quality",
         expect: int = 200) -> dict:
    """POST one of the claim's steps."""
    answer = client.post(f"{CLAIMS}/{claim['id']}/{action}", json=body or {}, headers=make.headers(role))
    assert answer.status_code == expect, (action, answer.json)
    return answer.json


def parcel(no: str, *, value: int | None = None, insured: bool = False, count: int = 1) -> dict:
    """A parcel of a manifest, declared and insured as given."""
    return {"parcel_no": no, "description": "box", "count": count, "declared_value": value, "insured": insured}


def damaged_at_the_door(client, make, device: Device, task: dict, photo: str, signature: str) -> list:
    """The recipient is checked, finds the parcel damaged and accepts it anyway, and signs: delivered."""
    items = [{"parcel_no": p["parcel_no"], "counted": p["count"], "condition": "damaged"} for p in task["parcels"]]
    ops = [device.op("pod.verify_recipient", task["id"], verify()),
           device.op("pod.inspect", task["id"], {"items": items, "customer_accepted": True, "photos": [photo]}),
           device.op("pod.sign", task["id"], sign(signature))]
    return device.push(ops)["results"]


def exception_of(client, make, task: dict, kind: str) -> dict:
    """The task's handover exception of that kind, as dispatch lists the day's."""
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    answer = client.get("/api/v1/dispatch/exceptions", query_string={"date": day, "kind": kind},
                        headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    return next(item for item in answer.json["items"] if item["task_id"] == task["id"])


def events_of(client, make, claim_id: int) -> list[dict]:
    """The claim events in the feed for one claim, in order."""
    answer = client.get("/api/v1/integrations/events", query_string={
        "types": "claim.opened,claim.decided,claim.paid", "limit": 500}, headers=make.headers("integration"))
    assert answer.status_code == 200, answer.json
    return [e for e in answer.json["items"] if e["subject_id"] == str(claim_id)]


def report(client, make, start, end=None) -> dict:
    """{figure: (numerator, denominator)} of the claim figures over the dates."""
    answer = client.get("/api/v1/reports/kpis", query_string={"from": start.isoformat(),
                                                               "to": (end or start).isoformat()},
                        headers=make.headers("quality"))
    assert answer.status_code == 200, answer.json
    return {name: (f["numerator"], f["denominator"]) for name, f in answer.json["total"]["figures"].items()
            if name.startswith("claim_")}


def seconds(start: str, end: str) -> int:
    """Whole seconds between two times of a dump (rounded, as the report rounds each claim)."""
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


@pytest.fixture
def today(app):
    """The depot-local day claims opened now fall on."""
    return datetime.now(ZoneInfo(app.config["TIMEZONE"])).date()


# The parcel's journey as the claim shows it: the handover's own scans of the damaged parcel, in order.
SCANS_OF_DAMAGE = [("exception", "handover"), ("handed_over", "handover")]  # accepted damaged, then signed


def test_a_parcel_damaged_at_the_door_is_claimed_assessed_approved_and_paid(client, make, today):
    """Handheld: damage at the door -> exception -> claim -> assessed by the uninsured rule -> approved -> paid;
    the evidence, the entries, the events and the three figures, computed by hand."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    photo, signature = upload(device, PHOTO), upload(device)
    task = make.task(courier=courier, parcels=[parcel("PD-1", value=30_000)], cod_amount=0,
                     fees=[{"code": "delivery", "amount": 1200}])
    assert task["parcels"][0]["declared_value"] == 30_000 and task["parcels"][0]["insured"] is False
    results = damaged_at_the_door(client, make, device, task, photo, signature)
    assert codes(results) == [OK] * 3
    receipt = results[-1]["entity"]["data"]["handover"]["receipt"]
    damage = exception_of(client, make, task, "damage")

    claim = open_claim(client, make, {"origin": "exception", "origin_id": str(damage["id"]),
                                      "description": "The box was crushed, the vase inside broken.",
                                      "claimed_amount": 10_000})
    assert (claim["task_id"], claim["parcel_no"], claim["kind"], claim["status"]) == (
        task["id"], "PD-1", "damage", "opened")
    assert claim["evidence"]["inspection"]["photos"] == [photo]
    assert claim["evidence"]["exception"]["id"] == damage["id"]
    assert claim["evidence"]["receipt"]["number"] == receipt["number"]
    assert [(scan["event"], scan["source"]) for scan in claim["evidence"]["scans"]] == SCANS_OF_DAMAGE
    assert seconds(claim["opened_at"], claim["due_at"]) == 72 * 3600  # assess within 3 days

    # Uninsured: the loss found (80 yuan) capped at 3 x the fees paid (12 yuan) = 36 yuan; below the claim.
    assessed = step(client, make, claim, "assess", {"loss_amount": 8_000, "note": "photos checked"})
    assert (assessed["status"], assessed["rule"], assessed["amount"]) == ("assessed", "uninsured_fee_multiple", 3_600)
    inputs = assessed["entries"][-1]["data"]["inputs"]
    assert inputs == {"insured": False, "declared_value": 30_000, "fees_paid": 1200, "multiple": 3,
                      "claimed_amount": 10_000, "assessed_loss": 8_000, "cap": 3_600}
    approved = step(client, make, claim, "approve")  # quality may: 36 yuan is under the approval limit
    assert approved["status"] == "approved" and seconds(approved["approved_at"], approved["due_at"]) == 168 * 3600
    paid = step(client, make, claim, "pay", {"reference": "BANK-0001"}, role="admin")
    assert (paid["status"], paid["paid_amount"], paid["payment_reference"], paid["due_at"]) == (
        "paid", 3_600, "BANK-0001", None)
    assert [e["kind"] for e in paid["entries"]] == ["opened", "assessed", "approved", "paid"]
    assert [e["late"] for e in paid["entries"]] == [False] * 4
    assert [e["actor_id"] is not None for e in paid["entries"]] == [True] * 4

    feed = events_of(client, make, claim["id"])
    assert [(e["type"], e["data"].get("decision")) for e in feed] == [
        ("claim.opened", None), ("claim.decided", "assessed"), ("claim.decided", "approved"), ("claim.paid", None)]
    assert feed[-1]["data"]["amount"] == 3_600 and "description" not in feed[0]["data"]

    # One claim opened today: paid, every step in time -> claim_time 1/1; paid as first assessed -> accuracy 1/1;
    # time to pay = paid_at - opened_at, in whole seconds, over 1 claim paid.
    figures = report(client, make, today)
    assert figures["claim_time"] == (1, 1)
    assert figures["claim_accuracy"] == (1, 1)
    assert figures["claim_time_to_pay"] == (seconds(paid["opened_at"], paid["paid_at"]), 1)
    behind = client.get("/api/v1/reports/kpis/claim_time/tasks", query_string={
        "from": today.isoformat(), "to": today.isoformat()}, headers=make.headers("quality")).json
    assert behind["subject"] == "claim" and behind["items"] == [{"id": str(claim["id"]), "counted": True,
                                                                 "unknown": False}]


def test_an_insured_parcel_is_paid_up_to_its_declared_value(client, make):
    """Insured: the loss up to the declared value (not the fees' multiple); never more than claimed."""
    task = make.task(parcels=[parcel("PI-1", value=20_000, insured=True), parcel("PI-2", value=50_000,
                                                                                  insured=True)])
    over = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "parcel_no": "PI-1",
                                     "kind": "loss", "description": "Never arrived.", "claimed_amount": 50_000})
    assessed = step(client, make, over, "assess", {"loss_amount": 30_000})
    assert (assessed["rule"], assessed["amount"]) == ("insured_declared_value", 20_000)
    under = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "parcel_no": "PI-2",
                                      "kind": "damage", "description": "Scratched.", "claimed_amount": 12_000})
    assessed = step(client, make, under, "assess", {"loss_amount": 15_000})
    assert (assessed["rule"], assessed["amount"]) == ("insured_declared_value", 12_000)  # the claim caps it


def test_the_fees_of_a_task_are_shared_over_its_parcels(client, make, app):
    """Uninsured, two parcels, fees 12 + 3 yuan: 7.50 yuan paid per parcel, capped at 3 x = 22.50 yuan; the
    multiple is the company's setting."""
    task = make.task(parcels=[parcel("PF2-1"), parcel("PF2-2")], cod_amount=4990,
                     fees=[{"code": "delivery", "amount": 1200}, {"code": "cod_service", "amount": 300}])
    claim = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "parcel_no": "PF2-2",
                                      "kind": "loss", "description": "Missing.", "claimed_amount": 9_000})
    assessed = step(client, make, claim, "assess", {"loss_amount": 9_000})
    assert (assessed["amount"], assessed["entries"][-1]["data"]["inputs"]["fees_paid"]) == (2_250, 750)
    app.config["CLAIM_FEE_MULTIPLE"] = 10
    other = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "parcel_no": "PF2-1",
                                      "kind": "loss", "description": "Missing.", "claimed_amount": 9_000})
    assert step(client, make, other, "assess", {"loss_amount": 9_000})["amount"] == 7_500


def test_a_correction_is_a_new_entry_and_the_claim_is_no_longer_accurate(client, make, today):
    """A payment is never edited: an admin's correction is a new audited entry naming it; the figure sees it."""
    task = make.task(parcels=[parcel("PC-1")], fees=[{"code": "delivery", "amount": 1000}])
    claim = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "kind": "damage",
                                      "description": "Wet.", "claimed_amount": 2_000})
    step(client, make, claim, "assess", {"loss_amount": 2_000})
    step(client, make, claim, "approve")
    paid = step(client, make, claim, "pay", {"reference": "BANK-2"}, role="admin")
    payment = paid["entries"][-1]
    step(client, make, claim, "corrections", {"entry_id": payment["id"], "amount": 1_500, "reason": "typo"},
         role="quality", expect=403)
    corrected = step(client, make, claim, "corrections", {"entry_id": payment["id"], "amount": 1_500,
                                                          "reason": "Paid 15 yuan, not 20."}, role="admin",
                     expect=201)
    assert corrected["paid_amount"] == 1_500 and corrected["corrections"] == 1
    assert corrected["entries"][-2] == payment  # the payment entry as it was
    assert (corrected["entries"][-1]["kind"], corrected["entries"][-1]["corrects_id"],
            corrected["entries"][-1]["amount"]) == ("correction", payment["id"], 1_500)
    again = step(client, make, claim, "corrections", {"entry_id": payment["id"], "amount": 1_400, "reason": "x"},
                 role="admin", expect=409)
    assert again["code"] == "claim_entry_superseded"
    wrong = step(client, make, claim, "corrections", {"entry_id": claim["entries"][0]["id"], "amount": 1,
                                                      "reason": "x"}, role="admin", expect=422)
    assert list(wrong["fields"]) == ["entry_id"]
    feed = events_of(client, make, claim["id"])
    assert (feed[-1]["type"], feed[-1]["data"]["correction"], feed[-1]["data"]["was"]) == ("claim.paid", True, 2_000)
    audit = client.get("/api/v1/admin/audit", query_string={"entity": "claims", "entity_id": str(claim["id"])},
                       headers=make.headers("admin"))
    assert audit.status_code == 200, audit.json
    assert [row["action"] for row in audit.json["items"]][0] == "claim.correct"  # newest first
    # Paid, but not as first assessed and corrected: in claim_accuracy's denominator only.
    assert report(client, make, today)["claim_accuracy"] == (0, 1)


def test_overdue_claims_are_listed_and_a_late_step_fails_the_time_figure(client, make, server_clock):
    """A claim opened four days ago and not assessed is overdue; assessed now, the step is late, and the claim
    paid on time afterwards still fails 理赔时效 (one late step)."""
    opened_day = (server_clock.now() - timedelta(days=4))
    with server_clock.at(opened_day):
        task = make.task(parcels=[parcel("PO-1")])
        late = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "kind": "loss",
                                         "description": "Lost.", "claimed_amount": 500})
        fresh_task = make.task(parcels=[parcel("PO-2")])
    fresh = open_claim(client, make, {"origin": "dispatch", "task_id": fresh_task["id"], "kind": "loss",
                                      "description": "Lost too.", "claimed_amount": 500})
    overdue = client.get(CLAIMS, query_string={"overdue": "true"}, headers=make.headers("quality")).json["items"]
    assert [c["id"] for c in overdue] == [late["id"]] and overdue[0]["overdue"] is True
    on_time = client.get(CLAIMS, query_string={"overdue": "false"}, headers=make.headers("quality")).json["items"]
    assert [c["id"] for c in on_time] == [fresh["id"]]
    zone = ZoneInfo("Asia/Shanghai")
    first, last = opened_day.astimezone(zone).date(), server_clock.now().astimezone(zone).date()
    # Overdue and undecided: in claim_time's denominator, not its numerator; the fresh one is in neither.
    assert report(client, make, first, last)["claim_time"] == (0, 1)

    assessed = step(client, make, late, "assess", {"loss_amount": 500})
    assert assessed["late_steps"] == 1 and assessed["entries"][-1]["late"] is True
    step(client, make, late, "approve")
    paid = step(client, make, late, "pay", {"reference": "B-3"}, role="admin")
    assert [e["late"] for e in paid["entries"]] == [False, True, False, False]
    assert report(client, make, first, last)["claim_time"] == (0, 1)  # paid, one step late


def test_each_step_is_for_its_roles(client, make, app):
    """Dispatchers open but do not assess; quality approves up to the limit, above it only an admin; only an
    admin pays; maintenance staff do not see claims."""
    app.config["CLAIM_APPROVAL_LIMIT"] = 1_000
    task = make.task(parcels=[parcel("PR-1", value=9_000, insured=True)])
    claim = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "kind": "damage",
                                      "description": "Broken.", "claimed_amount": 5_000})
    assert step(client, make, claim, "assess", {"loss_amount": 5_000}, role="dispatcher",
                expect=403)["code"] == "forbidden"
    step(client, make, claim, "assess", {"loss_amount": 5_000})
    assert step(client, make, claim, "approve", expect=403)["code"] == "claim_above_approval_limit"
    step(client, make, claim, "approve", role="dispatcher", expect=403)
    step(client, make, claim, "approve", role="admin")
    assert step(client, make, claim, "pay", {"reference": "X"}, expect=403)["code"] == "forbidden"
    assert client.get(f"{CLAIMS}/{claim['id']}", headers=make.headers("maintenance")).status_code == 403
    assert client.get(f"{CLAIMS}/{claim['id']}", headers=make.headers("dispatcher")).json["status"] == "approved"


def test_a_step_out_of_order_is_409_with_a_stable_code(client, make):
    """approve before assessing, pay before approving, assess twice, reject once paid: claim_wrong_status."""
    task = make.task(parcels=[parcel("PW-1")])
    claim = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "kind": "other",
                                      "description": "Dented.", "claimed_amount": 300})
    refused = [step(client, make, claim, "approve", expect=409),
               step(client, make, claim, "pay", {"reference": "R"}, role="admin", expect=409)]
    step(client, make, claim, "assess", {"loss_amount": 300})
    refused.append(step(client, make, claim, "assess", {"loss_amount": 300}, expect=409))
    step(client, make, claim, "approve")
    refused.append(step(client, make, claim, "reject", {"reason": "late"}, expect=409))
    step(client, make, claim, "pay", {"reference": "R"}, role="admin")
    refused.append(step(client, make, claim, "reject", {"reason": "late"}, expect=409))
    assert [(r["code"], r["claim_status"], r["status"]) for r in refused] == [
        ("claim_wrong_status", "opened", 409), ("claim_wrong_status", "opened", 409),
        ("claim_wrong_status", "assessed", 409), ("claim_wrong_status", "approved", 409),
        ("claim_wrong_status", "paid", 409)]  # problem+json's own status stays the HTTP status
    assert step(client, make, {"id": 999_999}, "assess", {"loss_amount": 1}, expect=404)["code"] == "claim_not_found"


def test_rejected_from_opened_or_assessed(client, make, today):
    """A rejection ends the claim from opened or assessed; it counts as decided for 理赔时效, not as paid."""
    task = make.task(parcels=[parcel("PJ-1"), parcel("PJ-2")])
    first = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "parcel_no": "PJ-1",
                                      "kind": "other", "description": "?", "claimed_amount": 100})
    second = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "parcel_no": "PJ-2",
                                       "kind": "other", "description": "?", "claimed_amount": 100})
    rejected = step(client, make, first, "reject", {"reason": "No damage on the photos."})
    assert (rejected["status"], rejected["reject_reason"], rejected["due_at"]) == (
        "rejected", "No damage on the photos.", None)
    step(client, make, second, "assess", {"loss_amount": 100})
    step(client, make, second, "reject", {"reason": "Damage predates collection."}, role="admin")
    figures = report(client, make, today)
    assert figures["claim_time"] == (2, 2) and figures["claim_accuracy"] == (0, 0)
    assert "reason" not in events_of(client, make, first["id"])[-1]["data"]


@pytest.mark.parametrize(("body", "field"), [
    ({"claimed_amount": -1}, "claimed_amount"),
    ({"claimed_amount": 1.5}, "claimed_amount"),
    ({"origin": "customer"}, "origin"),
    ({"origin": "elsewhere"}, "origin"),
    ({"kind": "theft"}, "kind"),
    ({"description": "  "}, "description"),
    ({"origin_id": "12ab"}, "origin_id"),
    ({"task_id": None}, "task_id"),
    ({"parcel_no": "NOPE"}, "parcel_no"),
    ({"kind": None}, "kind"),
])
def test_bad_input_names_the_field(client, make, body, field):
    """Every refusal of a claim's body is a 422 naming the field."""
    task = make.task(parcels=[parcel("PB-1")])
    base = {"origin": "dispatch", "task_id": task["id"], "kind": "damage", "description": "Torn.",
            "claimed_amount": 100}
    answer = open_claim(client, make, {**base, **body}, expect=422)
    assert field in answer["fields"], answer


def test_bad_steps_and_manifests_name_the_field(client, make):
    """An assessment without its loss, a payment without a reference, an insured parcel without a value."""
    task = make.task(parcels=[parcel("PB-2")])
    claim = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "kind": "damage",
                                      "description": "Torn.", "claimed_amount": 100})
    assert "loss_amount" in step(client, make, claim, "assess", {}, expect=422)["fields"]
    assert "reason" in step(client, make, claim, "reject", {"reason": ""}, expect=422)["fields"]
    answer = client.post("/api/v1/dispatch/tasks", json=make.task_spec(parcels=[parcel("PB-3", insured=True)]),
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 422 and "parcels.0.declared_value" in answer.json["fields"], answer.json
    answer = client.post("/api/v1/dispatch/tasks", json=make.task_spec(parcels=[parcel("PB-4", value=-5)]),
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 422 and "parcels.0.declared_value" in answer.json["fields"], answer.json
    legacy = make.task(parcels=[{"parcel_no": "PB-5", "count": 1}])  # a manifest that says nothing of either
    assert (legacy["parcels"][0]["declared_value"], legacy["parcels"][0]["insured"]) == (None, False)


def test_one_open_claim_per_parcel_and_origin(client, make):
    """Opening the same claim again is 409 naming the open one; once it is rejected, a new one may open; another
    origin for the same parcel is its own claim."""
    task = make.task(courier=make.courier(), parcels=[parcel("PU-1")])
    body = {"origin": "dispatch", "task_id": task["id"], "kind": "damage", "description": "Torn.",
            "claimed_amount": 100}
    first = open_claim(client, make, body)
    again = open_claim(client, make, body, expect=409)
    assert (again["code"], again["claim_id"]) == ("claim_already_open", first["id"])
    complaint = client.post("/api/v1/dispatch/complaints", json={
        "task_id": task["id"], "channel": "phone", "category": "damage", "text": "Torn box."},
        headers=make.headers("dispatcher")).json
    from_complaint = open_claim(client, make, {"origin": "complaint", "origin_id": str(complaint["id"]),
                                               "description": "Torn.", "claimed_amount": 100})
    assert (from_complaint["kind"], from_complaint["evidence"]["complaint"]["id"]) == ("damage", complaint["id"])
    step(client, make, first, "reject", {"reason": "duplicate of the complaint's"})
    assert open_claim(client, make, body)["id"] not in (first["id"], from_complaint["id"])


def test_claims_from_a_refusal_and_a_count_short(client, make):
    """A refusal of a damaged parcel and a count short at the door each open their claim; an exception of the
    wrong kind for the origin is not found."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    photo, signature = upload(device, PHOTO), upload(device)
    refused = make.task(courier=courier, parcels=[parcel("PF-1")], cod_amount=0, fees=[])
    items = [{"parcel_no": "PF-1", "counted": 1, "condition": "damaged"}]
    assert codes(device.push([
        device.op("pod.verify_recipient", refused["id"], verify()),
        device.op("pod.inspect", refused["id"], {"items": items, "customer_accepted": False, "photos": [photo]}),
        device.op("pod.refuse", refused["id"], {"reason": "damaged", "note": None, "photos": [photo]})])["results"]) \
        == [OK] * 3
    refusal = exception_of(client, make, refused, "refusal")
    claim = open_claim(client, make, {"origin": "refusal", "origin_id": str(refusal["id"]),
                                      "description": "Refused, damaged.", "claimed_amount": 900})
    assert (claim["kind"], claim["parcel_no"], claim["evidence"]["receipt"]["kind"]) == ("damage", "PF-1", "refusal")
    assert open_claim(client, make, {"origin": "exception", "origin_id": str(refusal["id"]),
                                     "description": "x", "claimed_amount": 1}, expect=404)["code"] == "origin_not_found"

    short = make.task(courier=courier, parcels=[parcel("PS-1", count=2), parcel("PS-2")], cod_amount=0, fees=[])
    items = [{"parcel_no": "PS-1", "counted": 1, "condition": "ok"}, {"parcel_no": "PS-2", "counted": 1,
                                                                       "condition": "ok"}]
    assert codes(device.push([
        device.op("pod.verify_recipient", short["id"], verify()),
        device.op("pod.inspect", short["id"], {"items": items, "customer_accepted": True, "photos": []}),
        device.op("pod.sign", short["id"], sign(signature, **AT_DOOR))])["results"]) == [OK] * 3
    discrepancy = exception_of(client, make, short, "discrepancy")
    claim = open_claim(client, make, {"origin": "exception", "origin_id": str(discrepancy["id"]),
                                      "description": "One piece missing.", "claimed_amount": 900})
    assert (claim["kind"], claim["parcel_no"]) == ("loss", "PS-1")  # the exception names the parcel short


def _receipt_path(client, make) -> tuple[str, dict]:
    """A delivery handed over through a handheld: its receipt page's path, and the task."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    signature = upload(device)
    task = make.task(courier=courier, parcels=[parcel(f"PK-{courier['id'][-6:]}")], cod_amount=0)
    items = [{"parcel_no": task["parcels"][0]["parcel_no"], "counted": 1, "condition": "ok"}]
    results = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                           device.op("pod.inspect", task["id"], {"items": items, "customer_accepted": True}),
                           device.op("pod.sign", task["id"], sign(signature))])["results"]
    assert codes(results) == [OK] * 3
    return results[-1]["entity"]["data"]["handover"]["receipt"]["url"].removeprefix("http://localhost"), task


def test_the_customer_claims_from_the_receipt_page_and_sees_its_status(client, make, app):
    """The form (CSRF of this receipt and this browser), the claim in the office's list, its status on the page
    and nothing internal; a bad token, another receipt's token, and over the page's request budget refused."""
    path, task = _receipt_path(client, make)
    other_path, _ = _receipt_path(client, make)
    other_csrf = csrf_of(client.get(other_path))
    page = client.get(path + "?lang=en")
    assert page.status_code == 200 and 'id="send-claim"' in page.text
    form = {"csrf": csrf_of(page), "lang": "en", "kind": "loss", "description": "The box was empty.",
            "claimed_yuan": "88.50"}
    assert client.post(path + "/claim", data={**form, "csrf": "0" * 64}).status_code == 400
    assert client.post(other_path + "/claim", data=form).status_code == 400  # this receipt's token, not that one's
    bad = client.post(path + "/claim", data={**form, "claimed_yuan": "88.505"})
    assert bad.status_code == 422
    answer = client.post(path + "/claim", data=form)
    assert answer.status_code == 303 and "done=claim" in answer.headers["Location"]
    claims = client.get(CLAIMS, query_string={"task_id": task["id"]}, headers=make.headers("quality")).json["items"]
    assert [(c["origin"], c["opened_by_kind"], c["claimed_amount"], c["kind"]) for c in claims] == [
        ("customer", "customer", 8_850, "loss")]
    assert client.post(path + "/claim", data=form).status_code == 409  # the same parcel's claim is open

    step(client, make, claims[0], "reject", {"reason": "INTERNAL-NOTE-7"})
    shown = client.get(path + "?lang=en").text
    assert re.search(r'class="claim-status">not paid<', shown) and "INTERNAL-NOTE-7" not in shown
    assert "¥88.50" in shown and "claim-status" not in client.get(other_path + "?lang=en").text

    app.config["RECEIPT_PAGE_REQUESTS"] = FailureLimit(1, 600)  # the other page was opened three times already
    assert client.post(other_path + "/claim", data={**form, "csrf": other_csrf}).status_code == 429
    assert client.get(CLAIMS, query_string={"origin": "customer"}, headers=make.headers("quality")).json[
        "items"][0]["id"] == claims[0]["id"]  # nothing opened past the budget


def test_the_receipt_page_offers_the_tasks_parcels_and_shows_the_offices_claims(client, make):
    """The form offers every parcel of the delivery, inspected or not; a claim the office opened shows on the page,
    and the customer's claim for that parcel is the open one's (409), another parcel's goes in. A pickup's receipt
    has no form (its parcels are claimed on their delivery's receipt); a parcel not the task's is refused (422)."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    signature = upload(device)
    task = make.task(courier=courier, parcels=[parcel("RP-1"), parcel("RP-2")], cod_amount=0)
    items = [{"parcel_no": "RP-1", "counted": 1, "condition": "ok"}]  # the customer inspected one of the two
    results = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                           device.op("pod.inspect", task["id"], {"items": items, "customer_accepted": True}),
                           device.op("pod.sign", task["id"], sign(signature))])["results"]
    assert codes(results) == [OK] * 3
    path = results[-1]["entity"]["data"]["handover"]["receipt"]["url"].removeprefix("http://localhost")
    office = open_claim(client, make, {"origin": "dispatch", "task_id": task["id"], "parcel_no": "RP-1",
                                       "kind": "damage", "description": "Reported by phone.", "claimed_amount": 4_000})
    page = client.get(path + "?lang=en")
    parcels = re.search(r'<select id="claim-parcel".*?</select>', page.text, re.S).group(0)
    assert re.findall(r'<option value="([^"]+)">', parcels) == ["RP-1", "RP-2"]
    assert re.findall(r'class="parcel">([^<]+)<', page.text)[-1:] == ["RP-1"]  # the office's claim, listed
    assert re.search(r'class="claim-status">received<', page.text) and "Reported by phone" not in page.text
    form = {"csrf": csrf_of(page), "lang": "en", "kind": "damage", "description": "Crushed.", "claimed_yuan": "40"}
    assert client.post(path + "/claim", data={**form, "parcel_no": "RP-1"}).status_code == 409
    not_ours = client.post(path + "/claim", data={**form, "parcel_no": "PK-RP"})
    assert not_ours.status_code == 422 and "not right" in not_ours.text  # nothing opened: the list below
    assert client.post(path + "/claim", data={**form, "parcel_no": "RP-2"}).status_code == 303
    listed = client.get(CLAIMS, query_string={"task_id": task["id"]}, headers=make.headers("quality")).json["items"]
    assert sorted((c["parcel_no"], c["origin"]) for c in listed) == [("RP-1", "dispatch"), ("RP-2", "customer")]
    assert office["status"] == "opened"

    pickup = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[])
    body = {"parcels": [{"parcel_no": "PK-RP", "description": "books", "count": 1}],
            "fees": [{"code": "delivery", "amount": 1500}], "payment": {"amount": 1500, "method": "cash"},
            "signature": signature, "signer_name": "Sender", **AT_DOOR}
    collected = device.push([device.op("pickup.collect", pickup["id"], body)])["results"]
    assert codes(collected) == [OK]
    pickup_path = collected[0]["entity"]["data"]["handover"]["receipt"]["url"].removeprefix("http://localhost")
    pickup_page = client.get(pickup_path + "?lang=en")
    assert 'id="send-claim"' not in pickup_page.text and 'id="no-claim-form"' in pickup_page.text


def test_a_csv_manifest_declares_and_insures_its_parcels(client, make):
    """The CSV import's parcel_declared_value and parcel_insured columns (left out: a legacy manifest's parcel, not
    insured and no value); a bad cell names its line and column."""
    header = ("waybill_no,kind,recipient_name,recipient_phone,address,window_start,window_end,parcel_no,"
              "parcel_declared_value,parcel_insured\n")
    window = "2026-11-22T09:00:00+08:00,2026-11-22T11:00:00+08:00"
    body = header + (f"CSVC001,delivery,Ann,13900000001,1 Main St,{window},PV1,30000,true\n"
                     "CSVC001,,,,,,,PV2,,\n")
    answer = client.post("/api/v1/dispatch/tasks/import", data=body, content_type="text/csv",
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 201, answer.json
    task = client.get(f"/api/v1/dispatch/tasks/{answer.json['ids'][0]}", headers=make.headers("dispatcher")).json
    assert [(p["parcel_no"], p["declared_value"], p["insured"]) for p in task["parcels"]] == [
        ("PV1", 30_000, True), ("PV2", None, False)]
    bad = header + (f"CSVC002,delivery,Ann,13900000001,1 Main St,{window},PV3,lots,true\n"
                    f"CSVC003,delivery,Ann,13900000001,1 Main St,{window},PV4,,true\n")
    answer = client.post("/api/v1/dispatch/tasks/import", data=bad, content_type="text/csv",
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 422
    assert set(answer.json["fields"]) == {"rows.2.parcel_declared_value", "rows.3.parcel_declared_value"}

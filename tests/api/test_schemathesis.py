"""Schemathesis drives every operation of the spec, valid and invalid input, on both engines.

Each answer must not be a server error, and its status, content type and body must be
the ones the spec documents for that operation. Requests go in process to the WSGI app,
authenticated as a role the operation allows (its x-fieldops-roles), with the sync header.
Valid cases keep the rules the spec can only describe that most bodies would break (a window
ends after it starts, a task's amount due is one payment); for enrollment, task creation and
import nine in ten of them must get past validation to the service (docs/reliability.md, "Fuzzing").
"""
import hashlib
import os
import re
from datetime import datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                                status_code_conformance)
from sqlalchemy import select

from schemas.limits import MAX_MONEY
from server.extensions import db
from server.models import ApiToken

EXAMPLES = 5 if os.environ.get("FIELDOPS_TEST_TIER") == "short" else 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Operations whose valid cases must mostly get past validation, as many cases each (issue 20).
REACHING = ("POST /api/v1/devices/enroll", "POST /api/v1/dispatch/tasks", "POST /api/v1/dispatch/tasks/import")
REACHING_EXAMPLES = 20


@pytest.fixture
def world(make):
    """Real records for path parameters, so cases reach past 404; the courier's device is kept apart
    from the courier and device that cases may deactivate or revoke."""
    handheld_courier, office_courier = make.courier(), make.courier()
    device = make.device(handheld_courier)
    spare = make.device(office_courier, name="spare")
    enrollment = make.client.post(f"/api/v1/dispatch/couriers/{office_courier['id']}/enrollments",
                                  headers=make.headers("dispatcher")).json
    complaint = make.client.post("/api/v1/dispatch/complaints", headers=make.headers("quality"), json={
        "courier_id": office_courier["id"], "channel": "phone", "category": "late", "text": "late again"}).json
    spare_user = make.client.post("/api/v1/admin/staff", headers=make.headers("admin"),
                                  json={"username": "spare-staff", "role": "quality"}).json
    spare_token = db.session.scalar(select(ApiToken.id).where(ApiToken.staff_id == spare_user["staff"]["id"]))
    assert spare_token is not None
    webhook = make.client.post("/api/v1/admin/webhooks", headers=make.headers("admin"),
                               json={"url": "https://hooks.example.com/fieldops", "event_types": ["*"]}).json
    photo = b"\x89PNG\r\n\x1a\n" + b"schemathesis" * 8
    sha = hashlib.sha256(photo).hexdigest()
    assert make.client.put(f"/api/v1/attachments/{sha}", data=photo, headers={
        "Authorization": f"Bearer {device['token']}", "Fieldops-Protocol": "1"}).status_code == 201
    template = make.client.post("/api/v1/dispatch/checklist-templates", headers=make.headers("quality"), json={
        "kind": "vehicle.pre_trip", "name": "Lights", "items": [{
            "code": "lights", "label_zh": "灯光正常", "label_en": "Lights work", "type": "pass_fail",
            "severity": "major"}]}).json
    return {
        # A generated token id could be one of the tokens the cases use (they are small numbers):
        # revoking it would answer 401 to every later case of its role. Revoke cases get a spare.
        "token_id": spare_token,
        "token": lambda role: device["token"] if role == "courier" else make.token(role),
        "ids": {"task_id": make.task(courier=handheld_courier)["id"], "courier_id": office_courier["id"],
                "vehicle_id": make.vehicle()["id"], "device_id": spare["device_id"],
                "code": enrollment["code"], "complaint_id": complaint["id"],
                "subscription_id": webhook["webhook"]["id"], "template_id": template["id"], "sha256": sha,
                "staff_id": spare_user["staff"]["id"], "name": "grades", "figure": "on_time_delivery",
                "fmt": "png"},
    }


def _authenticate(case, world, mode) -> dict:
    """Swap generated ids for real ones (all of them for valid input, half for invalid);
    headers of a role the operation allows."""
    if "token_id" in (case.path_parameters or {}):
        case.path_parameters["token_id"] = world["token_id"]
    for name, real in world["ids"].items():
        # Which half is decided by the generated value itself, so Hypothesis can shrink and replay.
        if name in (case.path_parameters or {}) and (
                mode == GenerationMode.POSITIVE or len(str(case.path_parameters[name])) % 2 == 0):
            case.path_parameters[name] = real
    roles = case.operation.definition.raw.get("x-fieldops-roles")
    headers = {"Fieldops-Protocol": "1"}
    if roles:
        headers["Authorization"] = f"Bearer {world['token'](roles[0])}"
    return headers


def _keep_described_rules(body):
    """A valid case kept to the rules the spec can only describe and most drawn bodies would break: a window
    or slot ends after it starts (an end at or before its start becomes start + 1 h), a task's COD plus
    fees is one payment (fees cut to share MAX_MONEY, then the COD to what is left), and an insured parcel
    declares a value above zero (1 fen where it drew none)."""
    if isinstance(body, list):
        for item in body:
            _keep_described_rules(item)
    elif isinstance(body, dict):
        if isinstance(body.get("start"), str) and isinstance(body.get("end"), str):
            start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
            if end <= start:
                hour = timedelta(hours=1)
                start, end = (start, start + hour) if start.year < 2099 else (start - hour, start)
                body["start"], body["end"] = start.isoformat(), end.isoformat()
        if body.get("insured") is True and not body.get("declared_value"):
            body["declared_value"] = 1
        fees = body.get("fees") if isinstance(body.get("fees"), list) else []
        if "waybill_no" in body and sum(fee["amount"] for fee in fees) > MAX_MONEY:
            for fee in fees:
                fee["amount"] = min(fee["amount"], MAX_MONEY // len(fees))
        if "waybill_no" in body and body.get("cod_amount", 0) + sum(fee["amount"] for fee in fees) > MAX_MONEY:
            body["cod_amount"] = MAX_MONEY - sum(fee["amount"] for fee in fees)
        for value in body.values():
            _keep_described_rules(value)


# Refusals by the task service's rules, checked after the request schema: fees not in the published
# tariff, a fee or parcel repeated, COD on a pickup, a waybill already taken, a service product not on offer, a
# collection without its product's time or in the future (the import names them per row).
_TASK_RULES = re.compile(
    r"(?:tasks\.\d+\.)?(?:waybill_no|fees|fees\.\d+\.code|parcels|cod_amount|service_product|collected_at)")


def _reached_the_logic(response) -> bool:
    """Past parsing and the request schema: a success, or the service's answer (not found, a conflict,
    a rule broken, a limit), not a 400/422 refusal of the request as the spec describes it."""
    if response.status_code < 300:
        return True
    if response.status_code in (400, 413, 415) or response.status_code >= 500:
        return False
    problem = response.json()
    return problem["code"] != "validation_failed" or all(map(_TASK_RULES.fullmatch, problem.get("fields", {})))


# One test walks all operations (Schemathesis' own pytest plugin does not run on pytest 9.2),
# and reports every operation that fails, not only the first.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_answers_conform_to_the_spec(app, world, mode, astral_patterns):
    """No 5xx; status, content type and body as documented, for every operation."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures, succeeded = {}, set()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:
        raw = operation.definition.raw
        if mode == GenerationMode.NEGATIVE and not raw.get("parameters") and "requestBody" not in raw:
            continue  # nothing to get wrong (GET /receipts/keys takes no input)
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def conforms(case):
            if mode == GenerationMode.POSITIVE:
                _keep_described_rules(case.body)
            response = case.call_and_validate(headers=_authenticate(case, world, mode), checks=CHECKS)
            if response.status_code < 300:
                succeeded.add(case.operation.label)


        try:
            conforms()
        except Exception as exc:  # collected: the assertion below names every failing operation
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    assert not failures, "\n\n".join(f"{label}\n{error}" for label, error in failures.items())
    if mode == GenerationMode.POSITIVE:  # the cases get past auth and lookups, not only to 4xx
        assert len(succeeded) >= len(operations) // 2, sorted(succeeded)


def _outcomes(operation, world) -> list[bool]:
    """REACHING_EXAMPLES valid cases of the operation sent: whether each reached the logic."""
    outcomes = []

    @settings(max_examples=REACHING_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def reaches(case):
        # The import's CSV and multipart bodies are free text to the spec: its JSON body is the one it describes.
        assume(case.media_type == "application/json")
        _keep_described_rules(case.body)
        response = case.call(headers=_authenticate(case, world, GenerationMode.POSITIVE))
        outcomes.append(_reached_the_logic(response))

    reaches()
    return outcomes


def test_valid_cases_reach_the_logic(app, world, astral_patterns):
    """Valid cases of enrollment, task creation and import pass validation: the spec states what the
    server checks, so the fuzzer reaches the service (a 2xx, or the service's 4xx)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    for label in REACHING:
        method, path = label.split()
        outcomes = _outcomes(schema[path][method], world)
        assert len(outcomes) >= REACHING_EXAMPLES // 2, (label, len(outcomes))
        assert sum(outcomes) >= 0.9 * len(outcomes), (label, f"{sum(outcomes)} of {len(outcomes)}")


# What the fuzzer found, pinned as plain tests.

def test_nul_character_is_a_field_error(client, make):
    """PostgreSQL stores no NUL: in a body, a nested body or a query it is a 422 naming the field."""
    headers = make.headers("dispatcher")
    body = {"name": "A\x00B", "phone": "13800000000", "employee_no": "E1"}
    response = client.post("/api/v1/dispatch/couriers", json=body, headers=headers)
    assert response.status_code == 422, response.json
    assert list(response.json["fields"]) == ["name"]
    spec = make.task_spec()
    spec["recipient"]["address"] = "\x00"
    response = client.post("/api/v1/dispatch/tasks", json=spec, headers=headers)
    assert response.status_code == 422 and list(response.json["fields"]) == ["recipient.address"]
    response = client.get("/api/v1/dispatch/tasks", query_string={"waybill_no": "W\x00"}, headers=headers)
    assert response.status_code == 422 and list(response.json["fields"]) == ["waybill_no"]


def test_nul_character_in_a_path_is_not_found(client, make):
    """An id with NUL in the path matches nothing (404), on both engines."""
    response = client.get("/api/v1/dispatch/tasks/t-%00", headers=make.headers("dispatcher"))
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_integer_path_id_beyond_the_column_is_not_found(client, make):
    """An int id past PostgreSQL's integer is a 404 (was an overflow 500), and the spec says the bound."""
    response = client.post(f"/api/v1/dispatch/conflicts/{2**31}/resolve",
                           json={"resolution": "followed_up"}, headers=make.headers("dispatcher"))
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    spec = client.get("/api/v1/openapi.json").json
    parameter = spec["paths"]["/api/v1/dispatch/conflicts/{conflict_id}/resolve"]["parameters"][0]
    assert parameter["schema"]["maximum"] == 2**31 - 1


def test_vehicle_driver_cannot_be_an_empty_id(client, make):
    """PATCH courier_id "" is a 422, not a foreign-key 500; null still takes the driver away."""
    vehicle, headers = make.vehicle(), make.headers("dispatcher")
    url = f"/api/v1/dispatch/vehicles/{vehicle['id']}"
    response = client.patch(url, json={"courier_id": ""}, headers=headers)
    assert response.status_code == 422 and list(response.json["fields"]) == ["courier_id"]
    assert client.patch(url, json={"courier_id": None}, headers=headers).status_code == 200

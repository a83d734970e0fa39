"""The spec says what the server checks: a value the spec allows for a field, that field accepts.

Schemathesis draws valid bodies and queries for every operation from the published spec; each
field of the request schema behind the operation then loads its own value alone. A refusal is a
check the spec does not state. Rules between fields (an end after its start, one of two fields
given) and rules against the database or the clock are the service's; each of those is said in a
field's description and its error names that field (tested through the API below).
"""
import os
import re
import unicodedata
from datetime import datetime, timedelta, timezone

import marshmallow as ma
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from marshmallow.decorators import VALIDATES
from schemathesis import GenerationMode

from schemas.common import _unsafe_value_error
from schemas.limits import MAX_MONEY
from schemas.tasks import TaskImportIn
from server import create_app
from server import config

EXAMPLES = 10 if os.environ.get("FIELDOPS_TEST_TIER") == "short" else 60
# The import reads its JSON itself (schemas.imports): a list of TaskIn, or {"tasks": [...]}.
_IMPORT = {("POST", "/api/v1/dispatch/tasks/import"): {"json": TaskImportIn}}


def _request_schemas(app) -> dict[tuple[str, str], dict[str, type[ma.Schema]]]:
    """(method, spec path) -> {"json"|"query": the schema @blp.arguments loads}, for every operation with one."""
    found = dict(_IMPORT)
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            func = getattr(getattr(view, "view_class", None), method.lower(), view)
            arguments = getattr(func, "_apidoc", {}).get("arguments", {}).get("parameters", [])
            if arguments:
                path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
                found[(method, path)] = {argument["in"]: argument["schema"] for argument in arguments}
    return found


def _own_errors(schema: ma.Schema, data: dict, path: str = "") -> dict[str, list]:
    """Each field of data loaded alone, nested ones field by field: what a field refuses of its own value.

    A field's checks are its type, its validators, the schema's @validates for it and the base
    schema's refusal of unstorable values; rules between fields (@validates_schema) are left out.
    """
    errors = {}
    fields = {field.data_key or name: (name, field) for name, field in schema.fields.items() if not field.dump_only}
    for key, value in data.items():
        if key not in fields:
            if schema.unknown != ma.INCLUDE:
                errors[path + key] = ["not a field of the schema"]
            continue
        name, field = fields[key]
        inner = field.inner if isinstance(field, ma.fields.List) else field
        try:
            if isinstance(inner, ma.fields.Nested) and value is not None:
                for validator in field.validators:  # a list's length
                    validator(value)
                for i, item in (enumerate(value) if inner is not field else [(None, value)]):
                    errors.update(_own_errors(inner.schema, item, f"{path}{key}." + ("" if i is None else f"{i}.")))
                continue
            loaded = field.deserialize(value, key, data)
            for method, _, hook in schema._hooks[VALIDATES]:
                if name in hook["field_names"]:
                    getattr(schema, method)(loaded, data_key=key)
            if schema.refuse_unsafe_values and (message := _unsafe_value_error(loaded)):
                raise ma.ValidationError(message)
        except ma.ValidationError as exc:
            errors[path + key] = exc.messages
    return errors


def _refusals(operation, loads: dict[str, type[ma.Schema]]) -> str | None:
    """Valid cases of one operation, field by field through the schemas it loads: the first refusal, or None."""
    # Not shrunk: the failure names the value and the field, and shrinking a body takes minutes.
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def accepted(case):
        body = case.body if isinstance(case.body, (dict, list)) and case.media_type == "application/json" else None
        if "json" in loads and body is not None:
            errors = _own_errors(loads["json"](), {"tasks": body} if isinstance(body, list) else body)
            assert not errors, (body, errors)
        if "query" in loads:
            errors = _own_errors(loads["query"](), dict(case.query or {}))
            assert not errors, (case.query, errors)

    try:
        accepted()
    except AssertionError as exc:
        return str(exc)[:2000]
    return None


@pytest.fixture(scope="module")
def spec_app(tmp_path_factory):
    """An app for its spec alone: the schemas are loaded without a database, so once, not per engine."""
    return create_app(config.TestConfig("sqlite://", str(tmp_path_factory.mktemp("attachments"))))


def test_what_the_spec_allows_each_field_accepts(spec_app, astral_patterns):
    """For every operation, valid values drawn from the spec load field by field without an error."""
    app = spec_app
    spec = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schemas = _request_schemas(app)
    operations = [(result.ok(), schemas.get((result.ok().method.upper(), result.ok().path)))
                  for result in spec.get_all_operations()]
    checked = {operation.label: _refusals(operation, loads) for operation, loads in operations if loads}
    refused = {label: error for label, error in checked.items() if error}
    assert not refused, "\n\n".join(f"{label}\n{error}" for label, error in refused.items())
    assert len(checked) >= 50 and "POST /api/v1/dispatch/tasks/import" in checked, sorted(checked)


def _now(**delta) -> str:
    """An ISO time relative to now (UTC)."""
    return (datetime.now(timezone.utc).replace(microsecond=0) + timedelta(**delta)).isoformat()


def _window(start: str, end: str) -> dict:
    """A window or slot body."""
    return {"start": start, "end": end}


def _item(**fields) -> dict:
    """A checklist item body."""
    return {"code": "lights", "label_zh": "灯光", "label_en": "Lights", "type": "pass_fail", **fields}


# What JSON Schema cannot say (a comparison of two fields, the clock, the database), one case per rule:
# (method, path, the request (make -> json/query), the field the error names, where the spec describes
# it (a component's property, or the operation's query parameter) and words of that description).
RULES = [
    ("post", "/api/v1/dispatch/tasks",
     lambda make, ids: {"json": make.task_spec(window=_window(_now(hours=1), _now(hours=1)))},
     "window.end", ("WindowIn", "end"), "After start"),
    ("post", "/api/v1/dispatch/tasks", lambda make, ids: {"json": make.task_spec(parcels=[{"parcel_no": "P1"}] * 2)},
     "parcels", ("TaskIn", "parcels"), "Each parcel_no once"),
    ("post", "/api/v1/dispatch/tasks", lambda make, ids: {"json": make.task_spec(fees=[{"code": "rush", "amount": 1}])},
     "fees.0.code", ("FeeIn", "code"), "A published fee code"),
    ("post", "/api/v1/dispatch/tasks",
     lambda make, ids: {"json": make.task_spec(fees=[{"code": "delivery", "amount": 1}] * 2)},
     "fees", ("TaskIn", "fees"), "Each fee code once"),
    ("post", "/api/v1/dispatch/tasks", lambda make, ids: {"json": make.task_spec(kind="pickup", cod_amount=100)},
     "cod_amount", ("TaskIn", "cod_amount"), "0 for a pickup"),
    ("post", "/api/v1/dispatch/tasks",
     lambda make, ids: {"json": make.task_spec(cod_amount=MAX_MONEY, fees=[{"code": "delivery", "amount": 1}])},
     "cod_amount", ("TaskIn", "cod_amount"), f"with the fees at most {MAX_MONEY}"),
    ("post", "/api/v1/dispatch/tasks/{task_id}/appointment/confirm",
     lambda make, ids: {"json": {"window": _window(_now(hours=1), _now(hours=14))}},
     "window.end", ("DispatchConfirmIn", "window"), "At most 12 hours long"),
    ("post", "/api/v1/dispatch/tasks/{task_id}/appointment/reschedule",
     lambda make, ids: {"json": {"window": _window(_now(days=15), _now(days=15, hours=2)), "reason": "away",
                                 "customer_agreed": True}},
     "window.start", ("DispatchRescheduleIn", "window"), "at most 14 days ahead"),
    ("post", "/api/v1/dispatch/tasks/{task_id}/appointment/confirm",
     lambda make, ids: {"json": {"window": _window("2001-01-01T09:00:00Z", "2001-01-01T11:00:00Z")}},
     "window.end", ("DispatchConfirmIn", "window"), "not over yet"),
    ("post", "/api/v1/dispatch/tasks/{task_id}/customer-link",
     lambda make, ids: {"json": {"slots": [_window(_now(hours=3), _now(hours=2))]}},
     "slots.0.end", ("SlotIn", "end"), "After start"),
    ("post", "/api/v1/dispatch/tasks/{task_id}/customer-link",
     lambda make, ids: {"json": {"slots": [_window("2001-01-01T09:00:00Z", "2001-01-01T11:00:00Z")]}},
     "slots.0.end", ("SlotIn", "end"), "not over yet"),
    ("post", "/api/v1/dispatch/complaints",
     lambda make, ids: {"json": {"channel": "phone", "category": "late", "text": "late"}},
     "courier_id", ("ComplaintIn", "courier_id"), "Required without a task_id"),
    ("post", "/api/v1/dispatch/complaints",
     lambda make, ids: {"json": {"courier_id": ids["courier_id"], "channel": "phone", "category": "late",
                                 "text": "late", "received_at": "2099-01-01T00:00:00Z"}},
     "received_at", ("ComplaintIn", "received_at"), "not in the future"),
    ("post", "/api/v1/dispatch/couriers/{courier_id}/remittances",
     lambda make, ids: {"json": {"date": "2001-01-01", "amount": 100}},
     "date", ("RemittanceIn", "date"), "at most 366 days ago"),
    ("post", "/api/v1/dispatch/couriers/{courier_id}/remittances",
     lambda make, ids: {"json": {"date": "2099-01-01", "amount": 100}},
     "date", ("RemittanceIn", "date"), "begun"),
    ("post", "/api/v1/dispatch/couriers/{courier_id}/cash-corrections",
     lambda make, ids: {"json": {"date": _now()[:10], "amount": 0, "note": "none"}},
     "amount", ("CorrectionIn", "amount"), "not 0"),
    ("post", "/api/v1/dispatch/checklist-templates",
     lambda make, ids: {"json": {"kind": "vehicle.pre_trip", "name": "Lights", "items": [_item(unit="km")]}},
     "items.0.unit", ("ItemIn", "unit"), "Number items only"),
    ("post", "/api/v1/dispatch/checklist-templates",
     lambda make, ids: {"json": {"kind": "vehicle.pre_trip", "name": "Lights", "items": [_item(type="choice")]}},
     "items.0.choices", ("ItemIn", "choices"), "required for them"),
    ("post", "/api/v1/dispatch/checklist-templates",
     lambda make, ids: {"json": {"kind": "vehicle.pre_trip", "name": "Lights", "items": [_item(), _item()]}},
     "items", ("TemplateIn", "items"), "Each item code once"),
    ("get", "/api/v1/admin/audit",
     lambda make, ids: {"query_string": {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}},
     "to", "to", "After from"),
    ("get", "/api/v1/reports/kpis", lambda make, ids: {"query_string": {"from": "2024-01-01", "to": "2025-06-01"}},
     "to", "to", "fewer than 366 days after from"),
    ("get", "/api/v1/reports/kpis", lambda make, ids: {"query_string": {"from": "2025-01-02", "to": "2025-01-01"}},
     "from", "from", "not after to"),
    ("get", "/api/v1/reports/kpis/{figure}/tasks",
     lambda make, ids: {"query_string": {"from": "2025-01-01", "to": "2025-01-31", "group_by": "day",
                                         "group": "monday"}},
     "group", "group", "a depot-local date"),
]


@pytest.mark.parametrize("method,path,request_of,field,described,words", RULES,
                         ids=[f"{r[0]} {r[1].rsplit('/', 1)[-1]} {r[3]}" for r in RULES])
def test_what_json_schema_cannot_say_is_described_and_named(client, make, method, path, request_of, field,
                                                            described, words):
    """Each rule between fields, against the clock or the database: a 422 naming the field, and the spec's
    description of that field (or of the object holding it) says the rule."""
    spec = client.get("/api/v1/openapi.json").json
    operation = spec["paths"][path][method]
    if isinstance(described, tuple):
        schema, name = described
        description = spec["components"]["schemas"][schema]["properties"][name]["description"]
    else:
        [parameter] = [p for p in operation["parameters"] if p.get("name") == described]
        description = parameter["description"]
    assert words in description, description
    ids = {"courier_id": make.courier()["id"], "figure": "on_time_delivery"}
    ids["task_id"] = make.task()["id"]
    headers = make.headers(operation["x-fieldops-roles"][0])
    response = getattr(client, method)(path.format(**ids), headers=headers, **request_of(make, ids))
    assert response.status_code == 422, response.json
    assert set(response.json["fields"]) == {field}, response.json


@pytest.mark.parametrize("at,accepted", [
    ("2000-01-01T00:00:00+14:00", True), ("2099-12-31T23:00:00-12:00", True),
    ("1999-12-31T23:00:00-12:00", False), ("2100-01-01T00:00:00+14:00", False),
    ("2026-01-05t09:00:00z", False), ("2026-01-05T09:00:60Z", False)])
def test_a_time_is_taken_as_its_published_pattern_says(client, make, at, accepted):
    """The year as written decides, as the spec's pattern can say it (the UTC instant decided before:
    2000-01-01T00:00+14:00 was refused, 2100-01-01T00:00+14:00 taken); lower-case t/z and leap seconds,
    which Python does not read, are outside the pattern too."""
    spec = client.get("/api/v1/openapi.json").json
    [since] = [p for p in spec["paths"]["/api/v1/admin/audit"]["get"]["parameters"] if p["name"] == "from"]
    assert bool(re.search(since["schema"]["pattern"], at)) is accepted
    response = client.get("/api/v1/admin/audit", query_string={"from": at}, headers=make.headers("admin"))
    assert response.status_code == (200 if accepted else 422), response.json


@pytest.mark.parametrize("field,value,accepted", [
    ("phone", "0     ", False), ("phone", "+86 138-0000-0000", True),
    ("employee_no", "E 1001", False), ("employee_no", "e1001/2", True), ("employee_no", "Е1001", False),
    ("name", "\u200b \u00ad", False), ("name", " Wang Ming ", True)])
def test_a_courier_field_is_taken_as_its_published_pattern_says(client, make, field, value, accepted):
    """A phone of one digit and spaces matched the published pattern and was refused once stripped; an
    employee number may only hold letters, digits and . _ / - (a Cyrillic Е looked like E1001)."""
    spec = client.get("/api/v1/openapi.json").json
    pattern = spec["components"]["schemas"]["CourierIn"]["properties"][field]["pattern"]
    assert bool(re.search(pattern, value)) is accepted
    body = {"name": "Wang", "phone": "13800000001", "employee_no": "E1001", field: value}
    response = client.post("/api/v1/dispatch/couriers", json=body, headers=make.headers("dispatcher"))
    assert response.status_code == (201 if accepted else 422), response.json


def test_an_identifier_is_as_long_as_it_was_sent(client, make):
    """A filter's identifier counts the characters sent, as the spec's maxLength does: 100 ligatures
    (ﬀ folds to FF) were refused as 200 characters long."""
    headers = make.headers("dispatcher")
    response = client.get("/api/v1/dispatch/manifests/quarantine", query_string={"waybill_no": "\ufb00" * 100},
                          headers=headers)
    assert response.status_code == 200 and response.json["items"] == [], response.json
    response = client.get("/api/v1/dispatch/manifests/quarantine", query_string={"waybill_no": "A" * 101},
                          headers=headers)
    assert response.status_code == 422 and set(response.json["fields"]) == {"waybill_no"}


def test_every_format_character_is_invisible():
    """The one list the checks and the published patterns share holds every format character (category Cf,
    this Python's Unicode, every plane) beside the default-ignorables: a newer Unicode fails here first."""
    from schemas.common import _INVISIBLE, _UNSAFE_IN_TEXT
    listed = {code for lo, hi in _INVISIBLE for code in range(lo, hi + 1)}
    formats = {code for code in range(0x110000) if unicodedata.category(chr(code)) == "Cf"
               and not _UNSAFE_IN_TEXT.match(chr(code))}
    assert formats <= listed, sorted(map(hex, formats - listed))

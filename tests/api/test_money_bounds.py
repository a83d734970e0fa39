"""One money bound (schemas.limits.MAX_MONEY) for every amount, and a task's amount due within it."""
import io

import pytest
from sqlalchemy import func, select

from schemas.limits import MAX_MONEY
from server.extensions import db
from server.models import Task
from tests.api.test_manifests import UPLOAD, reasons
from tests.api.test_tasks import CSV_HEADER

TASKS = "/api/v1/dispatch/tasks"
FEES = [{"code": "delivery", "amount": 1200}, {"code": "cod_service", "amount": 200}]


def _count_tasks() -> int:
    """Tasks stored."""
    return db.session.scalar(select(func.count()).select_from(Task))


def _names(response, field: str) -> str:
    """The problem's message for the field, after checking it is a 422 problem naming that field."""
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "validation_failed", response.json
    assert field in response.json["fields"], response.json
    return " ".join(response.json["fields"][field])


def test_cod_at_the_bound_plus_fees_is_refused_naming_cod_amount(client, make):
    """COD 100,000,000 fen plus 1,400 of fees could never be paid: 422 naming cod_amount, with the most it may be."""
    response = client.post(TASKS, json=make.task_spec(cod_amount=MAX_MONEY, fees=FEES),
                           headers=make.headers("dispatcher"))
    message = _names(response, "cod_amount")
    assert str(MAX_MONEY - 1400) in message and str(MAX_MONEY + 1400) in message
    assert _count_tasks() == 0


def test_fees_that_alone_pass_the_bound_are_refused_naming_fees(client, make):
    """Each fee within the bound, their sum not: the fees are named."""
    fees = [{"code": "delivery", "amount": MAX_MONEY}, {"code": "insurance", "amount": 1}]
    response = client.post(TASKS, json=make.task_spec(cod_amount=0, fees=fees), headers=make.headers("dispatcher"))
    assert "fees" in _names(response, "fees")
    assert _count_tasks() == 0


@pytest.mark.parametrize("change,field", [
    ({"cod_amount": MAX_MONEY + 1}, "cod_amount"),
    ({"fees": [{"code": "delivery", "amount": MAX_MONEY + 1}]}, "fees.0.amount"),
    ({"fees": [{"code": "delivery", "amount": -1}]}, "fees.0.amount"),
])
def test_every_task_amount_has_the_one_bound(client, make, change, field):
    """COD and each fee: 0..MAX_MONEY fen."""
    response = client.post(TASKS, json=make.task_spec(**change), headers=make.headers("dispatcher"))
    _names(response, field)


def test_the_most_payable_task_is_created(client, make):
    """COD plus fees exactly at the bound is a task (its amount due is one payment)."""
    response = client.post(TASKS, json=make.task_spec(cod_amount=MAX_MONEY - 1400, fees=FEES),
                           headers=make.headers("dispatcher"))
    assert response.status_code == 201, response.json
    body = response.json
    assert body["cod_amount"] + sum(fee["amount"] for fee in body["fees"]) == MAX_MONEY


def test_json_import_names_the_row_whose_amount_due_passes_the_bound(client, make):
    """All or nothing: the unpayable row is named (tasks.1.cod_amount), nothing stored."""
    specs = [make.task_spec(), make.task_spec(cod_amount=MAX_MONEY, fees=FEES)]
    response = client.post(f"{TASKS}/import", json=specs, headers=make.headers("dispatcher"))
    assert set(response.json["fields"]) == {"tasks.1.cod_amount"}
    _names(response, "tasks.1.cod_amount")
    assert _count_tasks() == 0


def test_csv_import_names_the_line_and_column(client, make):
    """A CSV row whose COD plus fees passes the bound: its line's cod_amount cell is named."""
    body = CSV_HEADER + (
        f"CSV0001,delivery,Ann,13900000001,1 Main St,31.2,121.4,2026-11-22T09:00:00+08:00,"
        f"2026-11-22T11:00:00+08:00,{MAX_MONEY},delivery:1200;cod_service:200,P1,box,2\n")
    response = client.post(f"{TASKS}/import", data={"file": (io.BytesIO(body.encode()), "tasks.csv")},
                           content_type="multipart/form-data", headers=make.headers("dispatcher"))
    assert set(response.json["fields"]) == {"rows.2.cod_amount"}
    _names(response, "rows.2.cod_amount")
    assert _count_tasks() == 0


def test_a_manifest_neither_creates_nor_updates_a_task_beyond_the_bound(client, make):
    """A manifest row that would create, or update a task into, an unpayable amount due is quarantined naming
    cod_amount; the task keeps what it had."""
    headers = make.headers("dispatcher")
    good = make.task_spec(fees=FEES)
    created = client.post(UPLOAD, json=[good, make.task_spec(cod_amount=MAX_MONEY, fees=FEES)], headers=headers)
    assert created.status_code == 200, created.json
    assert [r["outcome"] for r in created.json["rows"]] == ["created", "quarantined"]
    assert reasons(created.json)[2] == {("cod_amount", "invalid")}
    raised = client.post(UPLOAD, json=[dict(good, cod_amount=MAX_MONEY - 1399)], headers=headers)
    assert raised.status_code == 200, raised.json
    assert raised.json["rows"][0]["outcome"] == "quarantined"
    assert reasons(raised.json)[1] == {("cod_amount", "invalid")}
    db.session.expire_all()
    assert db.session.scalar(select(Task.cod_amount).where(Task.waybill_no == good["waybill_no"])) == good["cod_amount"]
    # Up to the bound the same row updates the task.
    at_bound = client.post(UPLOAD, json=[dict(good, cod_amount=MAX_MONEY - 1400)], headers=headers)
    assert at_bound.json["rows"][0]["outcome"] == "updated", at_bound.json


@pytest.mark.parametrize("url,body,field", [
    ("/api/v1/dispatch/couriers/{courier}/remittances", {"date": "2026-11-22", "amount": MAX_MONEY + 1}, "amount"),
    ("/api/v1/dispatch/couriers/{courier}/cash-corrections",
     {"date": "2026-11-22", "amount": -MAX_MONEY - 1, "note": "count"}, "amount"),
])
def test_ledger_amounts_have_the_same_bound(client, make, url, body, field):
    """Remittances and corrections: the same bound as every other amount."""
    courier = make.courier()
    response = client.post(url.format(courier=courier["id"]), json=body, headers=make.headers("dispatcher"))
    _names(response, field)

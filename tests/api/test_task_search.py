"""Task search (waybill prefix, surname, phone suffix), the task list as CSV, and the receipt found from the task."""
import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from server.extensions import db
from server.models import LeakExportNote
from server.services import tasks as task_service
from tests.api.test_ratings import deliver
from tests.sync.conftest import Device, start_shift

TASKS = "/api/v1/dispatch/tasks"


def _task(make, *, waybill: str, name: str, phone: str, courier=None, day_offset: int = 0, address: str = "1 Road"):
    """A task for this recipient through the API (its window day_offset days on)."""
    spec = make.task_spec(waybill_no=waybill)
    spec["recipient"] = {**spec["recipient"], "name": name, "phone": phone, "address": address}
    if day_offset:
        start = datetime.fromisoformat(spec["window"]["start"]) + timedelta(days=day_offset)
        spec["window"] = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
    response = make.client.post(TASKS, json=spec, headers=make.headers("dispatcher"))
    assert response.status_code == 201, response.json
    return make.assign(response.json["id"], courier["id"]) if courier else response.json


@pytest.fixture
def book(make):
    """Recipients whose names and phones each search finds or must not find."""
    courier = make.courier()
    made = {
        "wang": _task(make, waybill="SF1001", name="王小明", phone="138 0013 5678", courier=courier),
        "ouyang": _task(make, waybill="SF1002", name="欧阳 娜娜", phone="13900001234"),
        "smith": _task(make, waybill="YT2001", name="John Smith", phone="+1-202-555-0199"),
        "wang2": _task(make, waybill="YT2002", name="王芳", phone="13700009999", day_offset=1),
        "sun": _task(make, waybill="5678001", name="Li Sun", phone="13600002468"),
    }
    return courier, made


def _found(client, headers, **params) -> list[str]:
    """The waybills a search lists, all pages."""
    response = client.get(TASKS, query_string=params, headers=headers)
    assert response.status_code == 200, response.json
    return sorted(t["waybill_no"] for t in response.json["items"])


def test_search_by_waybill_prefix_surname_and_phone_suffix(client, make, book):
    """Each way finds its tasks and no other; a term is whatever it can be."""
    courier, made = book
    headers = make.headers("dispatcher")
    assert _found(client, headers, q="SF10") == ["SF1001", "SF1002"]
    assert _found(client, headers, q="sf100") == ["SF1001", "SF1002"]  # waybills are kept in capitals
    assert _found(client, headers, q="YT2001") == ["YT2001"]
    assert _found(client, headers, q="王") == ["SF1001", "YT2002"]
    assert _found(client, headers, q="欧阳") == ["SF1002"]  # a compound surname is one surname
    assert _found(client, headers, q="欧") == []
    assert _found(client, headers, q="smith") == ["YT2001"]
    assert _found(client, headers, q="SMITH") == ["YT2001"]
    assert _found(client, headers, q="John") == []  # a Latin name's surname is its last word
    assert _found(client, headers, q="5678") == ["5678001", "SF1001"]  # a phone suffix, and a waybill prefix
    assert _found(client, headers, q="0199") == ["YT2001"]
    assert _found(client, headers, q="1234") == ["SF1002"]
    assert _found(client, headers, q="sun") == ["5678001"]
    assert _found(client, headers, q="  王 ") == ["SF1001", "YT2002"]
    # Filters narrow a search: the courier, the depot-local day, the status.
    assert _found(client, headers, q="王", courier_id=courier["id"]) == ["SF1001"]
    day = made["wang2"]["service_date"]
    assert _found(client, headers, q="王", date=day) == ["YT2002"]
    assert _found(client, headers, q="王", status="assigned") == ["SF1001"]
    assert _found(client, headers, q="王", status="unassigned") == ["YT2002"]
    # Quality reads the office's list too.
    assert _found(client, make.headers("quality"), q="王") == ["SF1001", "YT2002"]


def test_search_pages_with_its_cursor(client, make, book):
    """A search a page at a time: the cursor carries on where the page ended."""
    headers = make.headers("dispatcher")
    first = client.get(TASKS, query_string={"q": "王", "limit": 1}, headers=headers)
    assert first.status_code == 200 and len(first.json["items"]) == 1 and first.json["next_cursor"]
    second = client.get(TASKS, query_string={"q": "王", "limit": 1, "cursor": first.json["next_cursor"]},
                        headers=headers)
    assert second.status_code == 200 and second.json["next_cursor"] is None
    assert sorted([first.json["items"][0]["waybill_no"], second.json["items"][0]["waybill_no"]]) == [
        "SF1001", "YT2002"]


def test_keys_follow_a_changed_name_and_phone(client, make, book):
    """The search keys are the name's and phone's, whichever path changes them (here the retention job)."""
    _, made = book
    from server.services import retention
    from server.models import Task
    task = db.session.get(Task, made["smith"]["id"])
    task.recipient_name, task.recipient_phone = "Mary Jones", "13500004321"
    db.session.commit()
    headers = make.headers("dispatcher")
    assert _found(client, headers, q="smith") == [] and _found(client, headers, q="jones") == ["YT2001"]
    assert _found(client, headers, q="4321") == ["YT2001"] and _found(client, headers, q="0199") == []
    retention._redact(db.session.get(Task, made["smith"]["id"]), datetime.now(timezone.utc))
    db.session.commit()
    # Redacted: the phone is gone, so is its suffix; the masked name keeps the surname a receipt shows.
    assert _found(client, headers, q="4321") == []
    assert _found(client, headers, q="jones") == ["YT2001"]


def test_search_refuses_bad_input_and_other_roles(client, make, book):
    """An over-long term, a format that is not one, an unknown parameter: 422 naming it; wrong role 403."""
    headers = make.headers("dispatcher")
    for params, field in (({"q": "x" * 41}, "q"), ({"format": "xls"}, "format"), ({"q": "王", "surname": "王"},
                                                                                   "surname")):
        response = client.get(TASKS, query_string=params, headers=headers)
        assert response.status_code == 422, (params, response.json)
        assert response.json["code"] == "validation_failed" and field in response.json["fields"], response.json
        assert field in response.json["detail"]
    for role in ("maintenance", "integration"):
        assert client.get(TASKS, query_string={"q": "王"}, headers=make.headers(role)).status_code == 403
    assert client.get(TASKS, query_string={"q": "王"}).status_code == 401


def _csv(response) -> list[dict]:
    """A CSV download read back as a spreadsheet would: UTF-8 with its BOM, rows by header."""
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/csv" and response.mimetype_params.get("charset") == "utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_task_list_as_csv(client, make, book):
    """Every matching row (not one page), the JSON's values (the phone as the JSON shows it), noted as an export."""
    headers = make.headers("dispatcher")
    listed = client.get(TASKS, query_string={"q": "王"}, headers=headers).json["items"]
    notes_before = db.session.scalar(select(func.coalesce(func.sum(LeakExportNote.rows), 0)))
    rows = _csv(client.get(TASKS, query_string={"q": "王", "format": "csv", "limit": 1}, headers=headers))
    assert [r["waybill_no"] for r in rows] == [t["waybill_no"] for t in listed] == ["SF1001", "YT2002"]
    by_waybill = {t["waybill_no"]: t for t in listed}
    for row in rows:
        task = by_waybill[row["waybill_no"]]
        assert row["recipient.name"] == task["recipient"]["name"]
        assert row["recipient.phone"] == task["recipient"]["phone"]
        assert row["status"] == task["status"] and row["cod_amount"] == str(task["cod_amount"])
        assert row["window.start"] == task["window"]["start"] and row["service_date"] == task["service_date"]
    db.session.expire_all()
    assert db.session.scalar(select(func.sum(LeakExportNote.rows))) == notes_before + 2
    # The whole list, filters as the JSON's.
    every = _csv(client.get(TASKS, query_string={"format": "csv"}, headers=headers))
    assert len(every) == 5
    assert _csv(client.get(TASKS, query_string={"format": "csv", "q": "nobody"}, headers=headers)) == []
    assert client.get(TASKS, query_string={"format": "csv"}, headers=make.headers("maintenance")).status_code == 403


def test_csv_cells_never_run_as_formulas(client, make):
    """A name, an address opening like a formula is shown, not run: a leading quote."""
    hostile = {"=HYPERLINK(\"http://evil\",\"x\")": "=1+2", "+86 Wang": "@SUM(A1)", "-Li": "＝cmd"}
    for n, (name, address) in enumerate(hostile.items()):
        _task(make, waybill=f"XX{n:04d}", name=name, phone="13800001111", address=address)
    rows = _csv(client.get(TASKS, query_string={"format": "csv"}, headers=make.headers("dispatcher")))
    assert len(rows) == 3
    for row in rows:
        for column in ("recipient.name", "recipient.address"):
            assert row[column][0] == "'" and row[column][1:] in {*hostile, *hostile.values()}, row
    assert not any(value.startswith(("=", "+", "-", "@", "\t")) for row in rows for value in row.values())


def test_csv_of_more_rows_than_an_export_holds_is_refused(client, make, monkeypatch):
    """More rows than csvout.MAX_ROWS: 422 export_too_large, nothing noted."""
    from server import csvout
    monkeypatch.setattr(csvout, "MAX_ROWS", 2)
    monkeypatch.setattr(csvout, "PAGE", 1)
    for _ in range(3):
        make.task()
    response = client.get(TASKS, query_string={"format": "csv"}, headers=make.headers("dispatcher"))
    assert response.status_code == 422 and response.json["code"] == "export_too_large", response.json


def test_the_receipt_is_found_from_the_task(client, make):
    """A delivered task's receipt: on its handover (top level and state) and on the task itself."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    start_shift(make, courier, device)
    task = make.task(courier=courier)
    headers = make.headers("dispatcher")
    assert client.get(f"{TASKS}/{task['id']}", headers=headers).json["receipt"] is None
    deliver(device, task)
    handover = client.get(f"{TASKS}/{task['id']}/handover", headers=headers).json
    detail = client.get(f"{TASKS}/{task['id']}", headers=headers).json
    receipt = handover["receipt"]
    assert receipt and re.fullmatch(r"FO-\d{8}-\d{5}", receipt["number"]) and "/r/" in receipt["url"]
    assert handover["state"]["receipt"] == receipt == detail["receipt"]
    by_number = client.get(f"/api/v1/receipts/{receipt['number']}", headers=headers)
    assert by_number.status_code == 200 and by_number.json["url"] == receipt["url"]


def _plan(sql_query, engine_name: str) -> str:
    """The database's plan for a query, as text."""
    compiled = sql_query.compile(db.engine, compile_kwargs={"literal_binds": True})
    if engine_name == "sqlite":
        rows = db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        return "\n".join(str(row[-1]) for row in rows)
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    return "\n".join(row[0] for row in db.session.execute(text(f"EXPLAIN {compiled}")))


@pytest.mark.parametrize("term", ["SF10", "王", "smith", "5678"])
def test_each_search_reads_an_index(app, engine_name, term):
    """No search scans the task table: each way is a lookup on its own index (on a day or any day)."""
    from server.models import Task
    for condition in (task_service.search_condition(term),
                      task_service.search_condition(term) & (Task.service_date == datetime(2026, 12, 7).date())):
        plan = _plan(select(Task.id).where(condition), engine_name)
        if engine_name == "sqlite":
            assert "SCAN tasks" not in plan and "USING" in plan and "INDEX" in plan, plan
        else:
            assert "Seq Scan" not in plan and "Index" in plan, plan
    db.session.rollback()

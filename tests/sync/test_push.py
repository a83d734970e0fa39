"""Push: exactly-once, seq order, duplicates, seq_reused, gaps, rejections, conflicts, stops, limits."""
import hashlib

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import OpLog, RefusedAttachment, SyncConflict, Task, TaskEvent
from tests.sync.conftest import PROTOCOL, Device, at_once, fresh_pushes

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _events(task_id: str, kind: str) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(TaskEvent).where(
        TaskEvent.task_id == task_id, TaskEvent.kind == kind))


def test_applied_op_returns_entity_and_is_logged(device, make, courier):
    """An arrival is applied: new version, last_seq, server_time, and a full op-log row."""
    task = make.task(courier=courier)
    op = device.op("stop.arrive", task["id"], {"lat": 31.23, "lon": 121.47}, base_version=task["version"])
    body = device.push([op])
    [result] = body["results"]
    assert result["status"] == "applied" and result["seq"] == 1 and result["op_id"] == op["op_id"]
    assert result["entity"]["version"] == task["version"] + 1
    assert result["entity"]["data"]["status"] == "arrived"
    assert body["last_seq"] == 1 and body["server_time"]
    row = db.session.scalars(select(OpLog)).one()
    assert (row.seq, row.type, row.status, row.payload) == (1, "stop.arrive", "applied", op["payload"])
    assert row.device_utc_offset_min == 480 and row.device_time and row.received_at


def test_duplicate_batch_replays_stored_results_and_changes_nothing(device, make, courier):
    """The same batch twice: the second answer is the first, marked duplicate; one effect."""
    task = make.task(courier=courier)
    ops = [device.op("task.note", task["id"], {"text": f"note {i}"}) for i in range(3)]
    first = device.push(ops)
    second = device.push(ops)
    assert [r["status"] for r in first["results"]] == ["applied"] * 3
    assert all(r["duplicate"] for r in second["results"])
    assert [dict(r, duplicate=None) for r in second["results"]] == \
           [dict(r, duplicate=None) for r in first["results"]]
    assert _events(task["id"], "note") == 3
    assert second["last_seq"] == 3


def test_a_retry_finds_its_stored_ops_through_the_partial_indexes(app, device, make, courier):
    """SQLite: every op-log read a retried batch makes names its partial index's own condition, so the planner
    searches (device_id, seq) or (device_id, op_id) instead of walking the device's whole log (`in_sequence IS 1`,
    as SQLAlchemy renders is_(True), does not match the index's `WHERE in_sequence`)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the planner's partial-index match is SQLite's concern; PostgreSQL proves the implication")
    from sqlalchemy import event

    task = make.task(courier=courier)
    ops = [device.op("task.note", task["id"], {"text": f"note {i}"}) for i in range(3)]
    device.push(ops)
    statements = []

    def record(_conn, _cursor, statement, parameters, _context, executemany):
        if not executemany and "FROM op_log" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert all(r["duplicate"] for r in device.push(ops)["results"])
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert statements
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        plans = {statement: " ".join(row[-1] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))
                 for statement, parameters in statements}
    assert all("uq_op_log_device_seq" in plan or "uq_op_log_device_op_id" in plan for plan in plans.values()), plans


def test_same_seq_different_op_is_seq_reused_and_kept(device, make, courier):
    """A reused seq is rejected with seq_reused, kept in the log, and takes no slot."""
    task = make.task(courier=courier)
    device.push([device.op("task.note", task["id"], {"text": "a"}, seq=1)])
    body = device.push([device.op("task.note", task["id"], {"text": "b"}, seq=1)])
    assert body["results"][0]["status"] == "rejected" and body["results"][0]["code"] == "seq_reused"
    assert _events(task["id"], "note") == 1
    rows = db.session.scalars(select(OpLog).order_by(OpLog.id)).all()
    assert [(r.in_sequence, r.payload["text"]) for r in rows] == [(True, "a"), (False, "b")]


def test_gap_is_not_applied_and_names_expected_seq(device, make, courier):
    """An op beyond last_seq + 1 waits; the answer says where to resend from."""
    task = make.task(courier=courier)
    device.push([device.op("task.note", task["id"], {"text": "1"}, seq=1)])
    body = device.push([device.op("task.note", task["id"], {"text": "3"}, seq=3)])
    assert body["results"] == [] and body["expected_seq"] == 2 and body["last_seq"] == 1
    assert _events(task["id"], "note") == 1
    body = device.push([device.op("task.note", task["id"], {"text": "2"}, seq=2),
                        device.op("task.note", task["id"], {"text": "3"}, seq=3)])
    assert [r["seq"] for r in body["results"]] == [2, 3] and body["last_seq"] == 3


def test_rejected_ops_are_consumed_kept_and_do_not_block(device, make, courier):
    """Unknown type, bad payload, a task never assigned: rejected, logged, queue moves on."""
    mine = make.task(courier=courier)
    other = make.task(courier=make.courier())
    ops = [device.op("teleport", mine["id"], {}),
           device.op("stop.arrive", mine["id"], {"lat": 500, "lon": 0}),
           device.op("stop.arrive", other["id"], {"lat": 31.2, "lon": 121.4}),
           device.op("stop.arrive", "t-missing", {"lat": 31.2, "lon": 121.4}),
           device.op("task.note", mine["id"], {"text": "after the rejects"})]
    body = device.push(ops)
    assert [(r["status"], r["code"]) for r in body["results"]] == [
        ("rejected", "unknown_op_type"), ("rejected", "invalid_payload"), ("rejected", "not_assigned"),
        ("rejected", "not_assigned"), ("applied", None)]
    assert "lat" in body["results"][1]["detail"]
    assert body["last_seq"] == 5
    assert _events(other["id"], "arrived") == 0
    logged = db.session.scalars(select(OpLog.status).order_by(OpLog.seq)).all()
    assert logged == ["rejected"] * 4 + ["applied"]
    listed = make.client.get("/api/v1/dispatch/ops", query_string={"status": "rejected"},
                             headers=make.headers("quality")).json["items"]
    assert len(listed) == 4 and {op["payload"].get("lat") for op in listed} >= {500}


def test_arrival_on_task_cancelled_meanwhile_is_conflict_applied_and_reviewed(device, make, courier, client):
    """A field fact on a stale version is applied, flagged and opens a conflict for dispatch."""
    task = make.task(courier=courier)
    seen_version = task["version"]
    client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "customer called"},
                headers=make.headers("dispatcher"))
    body = device.push([device.op("stop.arrive", task["id"], {"lat": 31.2, "lon": 121.4},
                                  base_version=seen_version)])
    [result] = body["results"]
    assert result["status"] == "conflict" and result["code"] == "cancelled_by_dispatch"
    assert result["entity"]["deleted"] is True  # cancelled tasks leave the device
    assert _events(task["id"], "arrived") == 1
    row = db.session.get(Task, task["id"])
    assert row.needs_review and row.status == "cancelled"
    conflicts = client.get("/api/v1/dispatch/conflicts", query_string={"status": "open"},
                           headers=make.headers("dispatcher")).json["items"]
    assert len(conflicts) == 1 and conflicts[0]["applied"] is True and conflicts[0]["task_id"] == task["id"]
    resolved = client.post(f"/api/v1/dispatch/conflicts/{conflicts[0]['id']}/resolve",
                           json={"resolution": "dispatch_stands", "note": "customer confirmed"},
                           headers=make.headers("dispatcher"))
    assert resolved.status_code == 200 and resolved.json["status"] == "resolved"
    db.session.expire_all()
    assert not db.session.get(Task, task["id"]).needs_review
    again = client.post(f"/api/v1/dispatch/conflicts/{conflicts[0]['id']}/resolve",
                        json={"resolution": "dispatch_stands"}, headers=make.headers("dispatcher"))
    assert again.status_code == 422 and again.json["code"] == "conflict_resolved"
    bad = client.post(f"/api/v1/dispatch/conflicts/{conflicts[0]['id']}/resolve",
                      json={"resolution": "whatever"}, headers=make.headers("dispatcher"))
    assert bad.status_code == 422 and "resolution" in bad.json["fields"]


def test_op_on_current_version_is_not_a_conflict(device, make, courier):
    """The device's own earlier ops raise the version but never make its next op a conflict."""
    task = make.task(courier=courier)
    ops = [device.op("task.note", task["id"], {"text": "a"}, base_version=task["version"]),
           device.op("stop.arrive", task["id"], {"lat": 31.2, "lon": 121.4}, base_version=task["version"])]
    assert [r["status"] for r in device.push(ops)["results"]] == ["applied", "applied"]


def test_fact_from_a_courier_the_task_was_taken_from_is_a_conflict(client, make, courier, device):
    """A reassigned courier's arrival is kept as a conflict; a stranger's is rejected."""
    task = make.task(courier=courier)
    make.assign(task["id"], make.courier()["id"])
    body = device.push([device.op("stop.arrive", task["id"], {"lat": 31.2, "lon": 121.4},
                                  base_version=task["version"])])
    assert body["results"][0]["status"] == "conflict" and body["results"][0]["code"] == "reassigned"
    assert body["results"][0]["entity"]["deleted"] is True
    assert db.session.scalar(select(func.count()).select_from(SyncConflict)) == 1


def test_wish_overruled_by_dispatch_is_recorded_not_applied(app, make, courier, device):
    """A wish op on a stale version opens a conflict and changes nothing."""
    from schemas.tasks import NoteIn
    from server.services import tasks
    from sync.registry import OpType
    registry = app.extensions["fieldops_sync"]
    registry.ops["test.wish"] = OpType(
        name="test.wish", schema=NoteIn, kind="wish",
        handler=lambda *, ctx, obj, payload: tasks.add_note(actor=ctx.actor, task=obj, text=payload["text"],
                                                            photos=[]))
    try:
        task = make.task(courier=courier)
        make.client.post(f"/api/v1/dispatch/tasks/{task['id']}/notes", json={"text": "dispatch"},
                         headers=make.headers("dispatcher"))
        make.client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "x"},
                         headers=make.headers("dispatcher"))
        body = device.push([device.op("test.wish", task["id"], {"text": "please"},
                                      base_version=task["version"])])
        assert body["results"][0]["status"] == "conflict"
        assert _events(task["id"], "note") == 1  # only dispatch's
        conflict = db.session.scalars(select(SyncConflict)).one()
        assert conflict.applied is False and conflict.status == "open"
        assert body["last_seq"] == 1
    finally:
        del registry.ops["test.wish"]


def test_missing_attachment_stops_the_batch_until_uploaded(device, make, courier, client):
    """An op naming an attachment not uploaded yet stops the batch there; earlier ops are kept."""
    task = make.task(courier=courier)
    sha = hashlib.sha256(PNG).hexdigest()
    ops = [device.op("task.note", task["id"], {"text": "before"}),
           device.op("task.note", task["id"], {"text": "photo", "photos": [sha]}),
           device.op("task.note", task["id"], {"text": "after"})]
    body = device.push(ops)
    assert [r["seq"] for r in body["results"]] == [1]
    assert body["stopped_at"] == 2 and body["retry_after"] > 0 and body["last_seq"] == 1
    assert body["stop_code"] == "attachment_missing"
    assert client.head(f"/api/v1/attachments/{sha}", headers=device.headers).status_code == 404
    put = client.put(f"/api/v1/attachments/{sha}", data=PNG, headers=device.headers)
    assert put.status_code == 201
    assert client.put(f"/api/v1/attachments/{sha}", data=PNG, headers=device.headers).status_code == 200
    assert client.head(f"/api/v1/attachments/{sha}", headers=device.headers).status_code == 200
    body = device.push(ops)
    assert [r.get("duplicate", False) for r in body["results"]] == [True, False, False]
    assert body["last_seq"] == 3 and _events(task["id"], "note") == 3
    photo = client.get(f"/api/v1/dispatch/attachments/{sha}", headers=make.headers("quality"))
    assert photo.status_code == 200 and photo.mimetype == "image/png" and photo.data == PNG


@pytest.mark.parametrize("data,status,code", [
    (PNG, 422, "hash_mismatch"),
    (b"GIF89a" + b"\x00" * 10, 422, "unsupported_content"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 422, "unsafe_svg"),
])
def test_attachment_checks(device, client, data, status, code):
    """Hash verified, type checked by content, scripts in SVG refused."""
    name = hashlib.sha256(data).hexdigest() if code != "hash_mismatch" else "0" * 64
    response = client.put(f"/api/v1/attachments/{name}", data=data, headers=device.headers)
    assert response.status_code == status and response.json["code"] == code


def test_an_op_naming_a_refused_upload_is_rejected_at_once(device, make, courier, client):
    """Bytes refused for their content can never arrive under that hash: the op is rejected, the queue moves."""
    task = make.task(courier=courier)
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    sha = hashlib.sha256(svg).hexdigest()
    ops = [device.op("task.note", task["id"], {"text": "signed", "photos": [sha]}),
           device.op("task.note", task["id"], {"text": "after"})]
    assert device.push(ops)["stop_code"] == "attachment_missing"  # not refused yet: it may still come
    assert client.put(f"/api/v1/attachments/{sha}", data=svg, headers=device.headers).json["code"] == "unsafe_svg"
    body = device.push(ops)
    assert [(r["status"], r["code"]) for r in body["results"]] == [
        ("rejected", "attachment_refused"), ("applied", None)]
    assert "stopped_at" not in body and body["last_seq"] == 2 and "unsafe_svg" in body["results"][0]["detail"]
    wrong = b"not the bytes"
    client.put(f"/api/v1/attachments/{hashlib.sha256(svg + b' ').hexdigest()}", data=wrong, headers=device.headers)
    assert db.session.scalar(select(func.count()).select_from(RefusedAttachment)) == 1  # hash mismatches are not


def test_attachment_size_limit(device, client, app):
    """Past the attachment limit: 413."""
    app.config["ATTACHMENT_LIMIT"] = 100
    data = PNG + b"\x00" * 200
    response = client.put(f"/api/v1/attachments/{hashlib.sha256(data).hexdigest()}", data=data,
                          headers=device.headers)
    assert response.status_code == 413


def test_push_limits_and_protocol(device, client, make, courier, app):
    """501 ops is 422; a body over 5 MB is 413; no or old protocol header is 426; wrong device 403."""
    task = make.task(courier=courier)
    too_many = [device.op("task.note", task["id"], {"text": "x"}, seq=i) for i in range(1, 502)]
    response = client.post("/api/v1/sync/push", json={"device_id": device.id, "ops": too_many},
                           headers=device.headers)
    assert response.status_code == 422 and "ops" in response.json["fields"]
    app.config["PUSH_BODY_LIMIT"] = 2000
    big = [device.op("task.note", task["id"], {"text": "x" * 1900}, seq=1)]
    response = client.post("/api/v1/sync/push", json={"device_id": device.id, "ops": big},
                           headers=device.headers)
    assert response.status_code == 413
    headers = {k: v for k, v in device.headers.items() if k not in PROTOCOL}
    for extra in ({}, {"Fieldops-Protocol": "0"}):
        response = client.post("/api/v1/sync/push", json={"device_id": device.id, "ops": []},
                               headers={**headers, **extra})
        assert response.status_code == 426 and response.json["supported"] == [1]
    response = client.post("/api/v1/sync/push", json={"device_id": "d-other", "ops": []},
                           headers=device.headers)
    assert response.status_code == 403 and response.json["code"] == "device_mismatch"
    dup = [device.op("task.note", task["id"], {"text": "x"}, seq=1)] * 2
    response = client.post("/api/v1/sync/push", json={"device_id": device.id, "ops": dup},
                           headers=device.headers)
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(OpLog)) == 0


def test_racing_pushes_of_the_same_batch_apply_once(app, make, courier):
    """A retry racing the original (separate connections, real threads) applies the batch once."""
    task = make.task(courier=courier)
    enrolled = make.device(courier)
    device = Device(app.test_client(), enrolled)
    ops = [device.op("task.note", task["id"], {"text": f"n{i}"}) for i in range(40)]
    def push():
        with app.app_context():
            return Device(app.test_client(), enrolled).push(ops)

    answers = at_once(push, 4)
    assert all(a["last_seq"] == 40 for a in answers)
    assert _events(task["id"], "note") == 40
    assert db.session.scalar(select(func.count()).select_from(OpLog)) == 40
    assert fresh_pushes(answers) == 1  # exactly one push applied; the others replayed


def _register(app, name, handler):
    """Add a test-only op type to the app's registry; returns a remover."""
    from schemas.tasks import NoteIn
    from sync.registry import OpType
    registry = app.extensions["fieldops_sync"]
    registry.ops[name] = OpType(name=name, schema=NoteIn, kind="fact", handler=handler)
    return lambda: registry.ops.pop(name)


def test_a_rule_refusing_after_changing_leaves_no_trace(app, make, courier, device):
    """The refused op's half-made change is undone; the ops around it are applied."""
    from server.errors import RuleViolation
    from server.services import tasks

    def change_then_refuse(*, ctx, obj, payload):
        tasks.add_note(actor=ctx.actor, task=obj, text="half-made", photos=[])
        obj.cod_amount = 1
        raise RuleViolation("COD before inspection", code="cod_before_inspection")

    remove = _register(app, "test.refuse", change_then_refuse)
    try:
        task = make.task(courier=courier)
        body = device.push([device.op("task.note", task["id"], {"text": "before"}),
                            device.op("test.refuse", task["id"], {"text": "x"}),
                            device.op("task.note", task["id"], {"text": "after"})])
    finally:
        remove()
    assert [(r["status"], r["code"]) for r in body["results"]] == [
        ("applied", None), ("rejected", "cod_before_inspection"), ("applied", None)]
    assert body["last_seq"] == 3
    db.session.expire_all()
    texts = db.session.scalars(select(TaskEvent.text).where(TaskEvent.task_id == task["id"],
                                                            TaskEvent.kind == "note")).all()
    assert sorted(texts) == ["after", "before"]
    assert db.session.get(Task, task["id"]).cod_amount == task["cod_amount"]
    assert db.session.scalar(select(OpLog.code).where(OpLog.seq == 2)) == "cod_before_inspection"


def test_a_crashing_handler_rejects_its_op_and_the_queue_moves_on(app, make, courier, device, caplog):
    """An unexpected error in a handler: that op is rejected (handler_error), kept and logged with its
    stack; its half-made change is undone; the ops around it are applied; a retry replays the same."""
    from server.services import tasks

    def crash(*, ctx, obj, payload):
        tasks.add_note(actor=ctx.actor, task=obj, text="half-made", photos=[])
        raise ZeroDivisionError("bug")

    remove = _register(app, "test.crash", crash)
    try:
        task = make.task(courier=courier)
        ops = [device.op("task.note", task["id"], {"text": "before"}),
               device.op("test.crash", task["id"], {"text": "x"}),
               device.op("task.note", task["id"], {"text": "after"})]
        body = device.push(ops)
        again = device.push(ops)
    finally:
        remove()
    assert [(r["status"], r["code"]) for r in body["results"]] == [
        ("applied", None), ("rejected", "handler_error"), ("applied", None)]
    assert "stopped_at" not in body and body["last_seq"] == 3
    assert [dict(r, duplicate=None) for r in again["results"]] == [dict(r, duplicate=None) for r in body["results"]]
    assert _events(task["id"], "note") == 2
    row = db.session.scalars(select(OpLog).where(OpLog.seq == 2)).one()
    assert (row.code, row.payload) == ("handler_error", {"text": "x"})
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)

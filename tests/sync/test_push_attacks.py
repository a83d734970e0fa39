"""Hostile input against today's push internals (envelope fast path, payloads before the lock, COPY for the
op log / history / steps, log fields and redaction before the lock, the receipt counter apart).

Tests that fail expose a defect and say why; the others pin what held. Both engines (--db=sqlite / postgresql).
"""
import hashlib
import json
import threading
import uuid

import pytest
from sqlalchemy import select, text

from server.extensions import db
from server.models import HandoverStep, OpLog, Receipt, Task, TaskEvent
from sync import push as push_engine
from tests.sync.conftest import Device, at_once
from tests.sync.test_busy import _short_waits
from tests.sync.test_handover import AT_DOOR, codes, door_ops, inspect_ok, upload, verify


def _fresh():
    db.session.rollback()
    db.session.expire_all()


def _log_rows(device_id: str) -> list[OpLog]:
    _fresh()
    return list(db.session.scalars(select(OpLog).where(OpLog.device_id == device_id).order_by(OpLog.id)))


def _same_as_first(first: dict, again: dict) -> None:
    """A replay answers exactly the stored results, as duplicates."""
    assert all(r.get("duplicate") for r in again["results"]), again
    assert [dict(r, duplicate=None) for r in again["results"]] == [dict(r, duplicate=None) for r in first["results"]]


# --- 1. the envelope fast path ------------------------------------------------------------------------------

_EDGE_ENVELOPES = [
    {}, {"op_id": "a" * 64}, {"op_id": "a" * 65}, {"op_id": " a"}, {"op_id": "a "}, {"op_id": "a\t"},
    {"op_id": "\x7f"}, {"op_id": "a\x7fb"}, {"op_id": "\u00e9"}, {"op_id": ""}, {"op_id": "a b"},
    {"type": "task.note "}, {"type": "TASK.NOTE"}, {"entity_id": "x" * 64}, {"entity_id": "x" * 65},
    {"entity_id": "\x00"}, {"entity_id": ""}, {"entity_id": 7}, {"entity_id": None},
    {"seq": 2**63 - 1}, {"seq": 2**63}, {"seq": 0}, {"seq": True}, {"seq": 1.0},
    {"base_version": 2**63 - 1}, {"base_version": 2**63}, {"base_version": -1}, {"base_version": True},
    {"base_version": False}, {"base_version": 1.0}, {"base_version": "1"},
    {"device_time": None}, {"device_time": 5}, {"payload": None}, {"payload": []}, {"payload": "x"},
    {"extra": 1}, {"Seq": 1},
]


@pytest.mark.parametrize("change", _EDGE_ENVELOPES, ids=lambda c: repr(c)[:40])
def test_fast_path_accepts_only_what_opin_accepts(change):
    """Whatever _plainly_valid takes, OpIn takes too (the fast path is a subset)."""
    raw = {"op_id": "op-1", "seq": 1, "type": "task.note", "entity_id": "t1", "base_version": 0,
           "device_time": "2026-01-01T00:00:00+08:00", "payload": {}} | change
    if push_engine._plainly_valid(raw):
        push_engine._OP_IN.load(raw)  # raises if the fast path let something OpIn refuses through


def test_integer_and_type_edges_through_the_api_get_their_codes_and_replay(device, make, courier):
    """2^63-1 / 2^63 / -1 / bools / 1.0 as base_version, unknown envelope keys, null / list / string payloads,
    an unknown type: each op is decided alone, the good op after them is applied, a replay is exact."""
    task = make.task(courier=courier)
    note = {"text": "ok"}
    ops = [dict(device.op("task.note", task["id"], note), base_version=2**63 - 1),
           dict(device.op("task.note", task["id"], note), base_version=2**63),
           dict(device.op("task.note", task["id"], note), base_version=True),
           dict(device.op("task.note", task["id"], note), base_version=1.0),
           dict(device.op("task.note", task["id"], note), payload=None),
           dict(device.op("task.note", task["id"], note), payload=[note]),
           dict(device.op("task.note", task["id"], note), payload="text"),
           dict(device.op("task.note", task["id"], note), surprise={"nested": [1, 2]}),
           device.op("task.nope", task["id"], note),
           device.op("task.note", task["id"], {"text": "x", "unknown": 1}),
           device.op("task.note", task["id"], {"text": "last"})]
    body = device.push(ops)
    assert codes(body["results"]) == [
        ("rejected", "invalid_base_version"), ("rejected", "invalid_base_version"),
        ("rejected", "invalid_base_version"), ("rejected", "invalid_base_version"),
        ("rejected", "invalid_op"), ("rejected", "invalid_payload"), ("rejected", "invalid_payload"),
        ("rejected", "invalid_op"), ("rejected", "unknown_op_type"), ("rejected", "invalid_payload"),
        ("applied", None)]
    assert body["last_seq"] == 11
    _same_as_first(body, device.push(ops))
    assert len(_log_rows(device.id)) == 11


def test_duplicate_seqs_in_one_batch_are_a_422(device, make, courier):
    task = make.task(courier=courier)
    op = device.op("task.note", task["id"], {"text": "x"}, seq=1)
    body = device.push([op, dict(op, op_id=str(uuid.uuid4()))], expect=422)
    assert "ops" in body["fields"]


# --- COPY's special characters, both ways ------------------------------------------------------------------

_NASTY = "tab\there\nnew line \\N \\. back\\slash \\\\ end\\"
_NASTY_LINES = ["\\.", "\\N", "a\\", "\t", "x\ny\\.\nz"]


def test_copy_special_characters_round_trip_in_notes_names_and_the_op_log(device, make, courier):
    """Tab, newline, CR, backslash, \\N and \\. in a note (task history), a recipient name (handover step)
    and in unknown envelope keys (the op log's JSON): stored exactly as sent, and read back."""
    task = make.task(courier=courier)
    notes = [_NASTY] + [f"n {line}" for line in _NASTY_LINES]
    name = "Mr \\N \\. Back\\slash"
    ops = [device.op("task.note", task["id"], {"text": n}) for n in notes]
    ops.append(device.op("pod.verify_recipient", task["id"], verify(name, relation="\\.")))
    ops.append(dict(device.op("task.note", task["id"], {"text": "x"}), **{"\\N": "\\.", "k\tv": "a\nb"}))
    body = device.push(ops)
    assert [r["status"] for r in body["results"]] == ["applied"] * (len(notes) + 1) + ["rejected"]
    _fresh()
    stored = db.session.scalars(select(TaskEvent.text).where(TaskEvent.task_id == task["id"],
                                                             TaskEvent.kind == "note").order_by(TaskEvent.id)).all()
    # Text strips surrounding whitespace (as the note schema says); the inside is exact.
    assert stored == [n.strip() for n in notes]
    step = db.session.scalars(select(HandoverStep).where(HandoverStep.task_id == task["id"])).one()
    assert step.data["name"] == name and step.data["relation"] == "\\."
    rows = _log_rows(device.id)
    assert [r.payload for r in rows[:len(notes)]] == [{"text": n} for n in notes]
    assert rows[-1].payload["_received"]["\\N"] == "\\." and rows[-1].payload["_received"]["k\tv"] == "a\nb"
    assert rows[-1].result == body["results"][-1]
    _same_as_first(body, device.push(ops))


def test_long_note_and_deep_payload(device, make, courier):
    """A note at its length limit with COPY's characters throughout; a payload nested to the JSON limit."""
    task = make.task(courier=courier)
    from schemas.tasks import NoteIn
    limit = NoteIn().fields["text"].validators[0].max
    long = ("\\N\t\\.\n" * limit)[:limit - 1] + "x"
    deep: object = "leaf"
    for _ in range(60):
        deep = {"d": deep}
    ops = [device.op("task.note", task["id"], {"text": long}),
           device.op("task.note", task["id"], {"text": "x", "deep": deep})]
    body = device.push(ops)
    assert codes(body["results"]) == [("applied", None), ("rejected", "invalid_payload")]
    _fresh()
    assert db.session.scalars(select(TaskEvent.text).where(TaskEvent.kind == "note")).one() == long.strip()
    assert _log_rows(device.id)[1].payload["deep"] == deep


# --- op_id padded with whitespace: OpIn strips it, the engine stores it raw ----------------------------------

@pytest.mark.parametrize("op_type", ["pod.verify_recipient", "stop.arrive", "pod.collect_payment"])
def test_an_op_id_padded_with_whitespace_is_decided_never_a_500(device, make, courier, op_type):
    """DEFECT (PostgreSQL): OpIn's Text strips the op_id before its 64-character check, so a 64-character
    op_id with leading spaces or a trailing newline is accepted; the engine then hands the raw,
    unstripped op_id to the rules, which write it to String(64) columns (handover_steps.op_id, ledger,
    ...). PostgreSQL refuses the value: the push is a 500, and so is every retry: the queue stalls
    for good. SQLite does not check lengths and stores it."""
    task = make.task(courier=courier)
    payloads = {"pod.verify_recipient": verify(), "stop.arrive": AT_DOOR,
                "pod.collect_payment": {"amount": 1, "method": "cash"}}
    padded = dict(device.op(op_type, task["id"], payloads[op_type]), op_id=" " * 8 + "a" * 64 + "\n")
    after = device.op("task.note", task["id"], {"text": "after"})
    response = device.client.post("/api/v1/sync/push", data=json.dumps({"device_id": device.id, "ops": [padded, after]}),
                                  content_type="application/json", headers=device.headers)
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.json["last_seq"] == 2


# --- clock skew ---------------------------------------------------------------------------------------------

def test_a_device_clock_decades_ahead_is_suspect_not_a_500(device, make, courier):
    """DEFECT (PostgreSQL): device_now may be anything up to 2100 (PushIn's Time), so the batch's skew can be
    ~2.3e9 s; op_log.clock_skew_s is a 32-bit INTEGER: the COPY (before: the INSERT) fails, the push is a
    500 and every retry too, instead of the ops being taken and flagged clock_suspect."""
    task = make.task(courier=courier)
    op = device.op("task.note", task["id"], {"text": "skewed"})
    response = device.client.post(
        "/api/v1/sync/push", content_type="application/json", headers=device.headers,
        data=json.dumps({"device_id": device.id, "ops": [op], "device_now": "2099-12-31T23:00:00+00:00"}))
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.json["clock_suspect"] is True and response.json["results"][0]["status"] == "applied"


# --- a transient failure inside COPY ------------------------------------------------------------------------

@pytest.mark.parametrize("table", ["op_log", "task_events"])
def test_a_lock_timeout_inside_copy_is_a_busy_stop_not_a_500(app, make, courier, device, engine_name, table):
    """DEFECT (PostgreSQL): COPY runs on the raw psycopg cursor, so its errors are psycopg's own, not
    SQLAlchemy's OperationalError/DBAPIError. A lock timeout (55P03) while the op log or the history is
    written is therefore not `_is_transient` and not the app's database_busy handler: a 500 where the
    INSERT of the previous commit (586524f) gave the push's busy stop. Same for a cancelled statement,
    a deadlock or a backend terminated mid-COPY."""
    if engine_name != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    task = make.task(courier=courier)
    assert device.push([device.op("task.note", task["id"], {"text": "before"})])["last_seq"] == 1
    ops = [device.op("task.note", task["id"], {"text": "during"})]
    with _short_waits(app):
        holder = db.engine.connect()
        holder.begin()
        holder.execute(text(f"LOCK TABLE {table} IN SHARE MODE"))  # readers pass, writers wait
        try:
            response = device.client.post(
                "/api/v1/sync/push", data=json.dumps({"device_id": device.id, "ops": ops}),
                content_type="application/json", headers=device.headers)
            status, body = response.status_code, response.json
        except Exception as exc:  # the test client propagates what the app did not handle
            status, body = 500, {"exception": f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:300]}
        finally:
            holder.rollback()
            holder.close()
    assert status == 200 and body.get("stop_code") == "busy", (status, body)
    again = device.push(ops)
    assert codes(again["results"]) == [("applied", None)]


# --- secrets ------------------------------------------------------------------------------------------------

def test_the_pin_cannot_be_recovered_from_the_op_log(device, make, courier, client):
    """DEFECT (both engines; not new today): the op log redacts the PIN in the payload but keeps
    payload_hash, an unsalted SHA-256 over the op including the PIN. Everything else it covers is in the
    same row (op_id, type, entity_id, base_version, the rest of the payload), so a 6-digit PIN falls to
    10^6 hashes, about a second: "a PIN never reaches the op log" does not hold for anyone reading it."""
    task = make.task(courier=courier)
    pin = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin",
                      headers=make.headers("dispatcher")).json["pin"]
    op = device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=pin))
    assert codes(device.push([op])["results"]) == [("applied", None)]
    row = _log_rows(device.id)[0]
    assert row.payload["pin"] == "[redacted]"
    marker = "PIN_PLACEHOLDER"
    template = json.dumps({"op_id": row.op_id, "type": row.type, "entity_id": row.entity_id,
                           "base_version": row.base_version, "payload": dict(row.payload, pin=marker)},
                          sort_keys=True, separators=(",", ":"), default=str)
    head, tail = template.split(marker)
    found = next((f"{n:06d}" for n in range(10**6)
                  if hashlib.sha256(f"{head}{n:06d}{tail}".encode()).hexdigest() == row.payload_hash), None)
    assert found is None, f"the PIN {found} was recovered from the op log's payload_hash (issued PIN {pin})"


def test_the_pin_is_redacted_in_every_shape_of_op_that_carries_it(device, make, courier, client):
    """Held: a PIN in a malformed envelope (kept whole), an invalid payload, a seq_reused op and a
    refused one is "[redacted]" in the op log, the steps and the task history; not in any result."""
    task = make.task(courier=courier)
    pin = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin",
                      headers=make.headers("dispatcher")).json["pin"]
    wrong = f"{(int(pin) + 1) % 10**6:06d}"
    ops = [dict(device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=pin)), base_version=-1),
           dict(device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=pin)), extra="x"),
           device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=pin, bogus=1)),
           device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=wrong)),
           device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=pin))]
    body = device.push(ops)
    assert [r["code"] for r in body["results"]] == [
        "invalid_base_version", "invalid_op", "invalid_payload", "pin_mismatch", None]
    reused = dict(ops[4], payload=verify(method="pin", pin=wrong))
    assert device.push([reused])["results"][0]["code"] == "seq_reused"
    _fresh()
    everything = json.dumps([r.payload | {"result": r.result, "detail": r.detail} for r in _log_rows(device.id)])
    everything += json.dumps([s.data for s in db.session.scalars(select(HandoverStep))])
    everything += json.dumps([e.data for e in db.session.scalars(select(TaskEvent))], default=str)
    everything += json.dumps(body)
    assert pin not in everything and wrong not in everything


# --- a restart mid-batch: the loaded payload must not leak between attempts --------------------------------

def test_a_refusal_mid_batch_restarts_without_leaking_the_loaded_payloads(device, make, courier):
    """Held: a pickup (nested parcels, fees, payment) and an alternate delivery (nested authorization) are
    applied, then a sign on another task is refused (a restart), then more ops: the applied ops' stored
    state, steps and op-log payloads are exactly as sent, the same as in a batch without the refusal."""
    pickup = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[])
    delivery = make.task(courier=courier)
    other = make.task(courier=courier)
    signature = upload(device)
    collect = {"parcels": [{"parcel_no": "PK2", "description": "b", "count": 1},
                           {"parcel_no": "PK1", "description": "a", "count": 2}],
               "fees": [{"code": "rush", "amount": 0}] * 0 + [{"code": "delivery", "amount": 1500}],
               "payment": {"amount": 1500, "method": "cash"}, "signature": signature, "signer_name": "Sender",
               **AT_DOOR}
    sent = json.loads(json.dumps(collect))
    ops = [device.op("pickup.collect", pickup["id"], collect),
           device.op("pod.inspect", delivery["id"], inspect_ok(delivery)),
           device.op("pod.sign", other["id"], {"signature": signature, "signer_name": "R", "gift_disclosed": False,
                                               **AT_DOOR}),  # refused: no inspection (a restart)
           device.op("pod.verify_recipient", delivery["id"], verify()),
           device.op("pod.verify_recipient", other["id"], verify(method="pin", pin="123456")),
           device.op("pod.inspect", other["id"], dict(inspect_ok(other), customer_accepted=False)),
           device.op("pod.sign", other["id"], {"signature": signature, "signer_name": "R",
                                               "gift_disclosed": False, **AT_DOOR})]  # refused again
    body = device.push(ops)
    assert codes(body["results"]) == [("applied", None), ("applied", None), ("rejected", "inspection_required"),
                                      ("applied", None), ("applied", None), ("applied", None),
                                      ("rejected", "inspection_required")]
    _fresh()
    rows = _log_rows(device.id)
    assert rows[0].payload == sent
    handover = db.session.get(Task, pickup["id"]).handover
    assert handover.fees == [{"code": "delivery", "amount": 1500}]
    assert [i["parcel_no"] for i in handover.items] == ["PK1", "PK2"]
    pickup_steps = db.session.scalars(select(HandoverStep).where(HandoverStep.task_id == pickup["id"])).all()
    assert len(pickup_steps) == 1 and pickup_steps[0].data["parcels"] == sent["parcels"]
    other_steps = [(s.kind, s.outcome, s.code) for s in db.session.scalars(
        select(HandoverStep).where(HandoverStep.task_id == other["id"]).order_by(HandoverStep.id))]
    assert other_steps == [("sign", "rejected", "inspection_required"), ("verify_recipient", "accepted", None),
                           ("inspect", "accepted", None), ("sign", "rejected", "inspection_required")]
    _same_as_first(body, device.push(ops))


def test_a_retry_after_rejection_with_changed_payload_is_seq_reused_and_the_same_is_a_duplicate(device, make,
                                                                                                courier):
    task = make.task(courier=courier)
    bad = device.op("task.note", task["id"], {"text": 5})
    first = device.push([bad])
    assert codes(first["results"]) == [("rejected", "invalid_payload")]
    fixed = dict(bad, payload={"text": "fixed"})
    assert codes(device.push([fixed])["results"]) == [("rejected", "seq_reused")]
    _same_as_first(first, device.push([bad]))


# --- receipts numbered under concurrent pushes --------------------------------------------------------------

def test_receipt_numbers_stay_unique_under_concurrent_pushes_from_several_devices(app, client, make):
    """Held: six handhelds each deliver three tasks (one batch each, a refused op in the middle so each batch
    restarts) at once: every task has one receipt, every number is distinct."""
    devices, batches = [], []
    for n in range(6):
        courier = make.courier()
        dev = Device(client, make.device(courier))
        signature = upload(dev, b"\x89PNG\r\n\x1a\n" + bytes([n]) * 64)
        tasks = [make.task(courier=courier) for _ in range(3)]
        ops = door_ops(dev, tasks[0], signature)
        ops.append(dev.op("pod.sign", tasks[1]["id"], {"signature": signature, "signer_name": "Recipient",
                                                        "gift_disclosed": False, **AT_DOOR}))  # refused
        for task in tasks[1:]:
            ops += door_ops(dev, task, signature)
        devices.append((dev, tasks))
        batches.append((dev, ops))
    db.session.remove()
    turn = iter(range(len(batches)))
    lock = threading.Lock()

    def work():
        with lock:
            dev, ops = batches[next(turn)]
        with app.app_context():
            dev.client = app.test_client()
            return dev.push(ops)

    answers = at_once(work, len(batches))
    for body in answers:
        assert "stopped_at" not in body, body
    _fresh()
    receipts = db.session.scalars(select(Receipt)).all()
    delivered = {t["id"] for _, tasks in devices for t in tasks}
    assert sorted(r.task_id for r in receipts) == sorted(delivered)
    numbers = [r.number for r in receipts]
    assert None not in numbers and len(set(numbers)) == len(numbers) == 18


@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
def test_a_boolean_base_version_is_rejected_not_a_500(device, make, courier, value):
    """DEFECT (PostgreSQL): OpIn refuses a bool base_version (invalid_base_version), but _log_fields keeps
    it for the op log's integer column (`isinstance(True, int)`): COPY writes 't'/'f' into
    op_log.base_version and PostgreSQL refuses the whole batch: a 500 on every retry, the queue stalled."""
    task = make.task(courier=courier)
    ops = [dict(device.op("task.note", task["id"], {"text": "x"}), base_version=value),
           device.op("task.note", task["id"], {"text": "after"})]
    response = device.client.post("/api/v1/sync/push", data=json.dumps({"device_id": device.id, "ops": ops}),
                                  content_type="application/json", headers=device.headers)
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:200])
    assert codes(response.json["results"]) == [("rejected", "invalid_base_version"), ("applied", None)]


@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
def test_a_boolean_base_version_is_not_logged_as_a_number(device, make, courier, value):
    """Minor (both engines, also before today): the op log shows base_version 1 / 0 for an op that sent
    true / false (refused as invalid_base_version): the audit trail says what the device did not send."""
    task = make.task(courier=courier)
    op = dict(device.op("task.note", task["id"], {"text": "x"}), base_version=value)
    response = device.client.post("/api/v1/sync/push", data=json.dumps({"device_id": device.id, "ops": [op]}),
                                  content_type="application/json", headers=device.headers)
    if response.status_code != 200:
        pytest.skip("the push itself fails here (test_a_boolean_base_version_is_rejected_not_a_500)")
    assert _log_rows(device.id)[0].base_version is None


def test_a_pin_op_logged_before_keyed_digests_still_replays_as_a_duplicate(device, make, courier, client):
    """An op stored with the old plain fingerprint (before PINs entered it keyed) is still recognised
    on a retry; the same seq with another PIN is seq_reused, not a duplicate."""
    task = make.task(courier=courier)
    pin = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin",
                      headers=make.headers("dispatcher")).json["pin"]
    op = device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=pin))
    assert codes(device.push([op])["results"]) == [("applied", None)]
    legacy = push_engine.payload_hash(op)  # the plain fingerprint an older server stored
    db.session.execute(text("UPDATE op_log SET payload_hash = :h WHERE device_id = :d"),
                       {"h": legacy, "d": device.id})
    db.session.commit()
    assert device.push([op])["results"][0]["duplicate"] is True
    other = dict(op, payload=verify(method="pin", pin=f"{(int(pin) + 1) % 10**6:06d}"))
    assert device.push([other])["results"][0]["code"] == "seq_reused"

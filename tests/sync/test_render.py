"""schemas.render: the push's plain-function dump of a task equals the schema's own dump, field for field."""
from datetime import datetime, timezone
from urllib.parse import urlsplit

import orjson
from marshmallow import fields, post_dump
from sqlalchemy import literal, select

from schemas.common import Schema
from schemas.appointments import AppointmentOut, CurrentWindowOut, NoticeOut
from schemas.handheld import CourierTaskOut
from schemas.handover import HandoverStateOut, PinOut
from schemas import render
from schemas.render import renderer
from schemas.tasks import CourierRecipientOut, NoteOut, WindowOut
from server import sync_wiring
from server.extensions import db
from server.models import SyncDoc, Task
from server.services import receipts
from tests.sync.test_handover import AT_DOOR, door_ops, upload, verify

_SCHEMA_DUMPS = {"_render_task": CourierTaskOut().dump,
                 "_render_task_without_notes": CourierTaskOut(exclude=("notes",)).dump,
                 "_render_note": NoteOut().dump}


def _by_schema(monkeypatch, task_ids: list[str]) -> dict[str, dict]:
    """The tasks as the push dumps them, with marshmallow's own dump in place of the renderers, in a fresh session."""
    with monkeypatch.context() as patched:
        for name, dump in _SCHEMA_DUMPS.items():
            patched.setattr(sync_wiring, name, dump)
        return _by_push_dump(task_ids)


def _by_push_dump(task_ids: list[str]) -> dict[str, dict]:
    """The tasks as the push dumps them now, in a fresh session."""
    db.session.remove()
    return sync_wiring._dump_tasks(list(db.session.scalars(select(Task).where(Task.id.in_(task_ids)))))


def _page_path(data: dict) -> dict:
    """The task with its receipt page's address as a path (the answer names the request's host, a test its own)."""
    receipt = data["handover"]["receipt"]
    return dict(data, handover=dict(data["handover"], receipt=dict(receipt, url=urlsplit(receipt["url"]).path)))


def _stored(task_id: str) -> dict:
    """The task's stored handheld doc, as JSON."""
    db.session.remove()
    return orjson.loads(db.session.scalar(select(SyncDoc.body).where(SyncDoc.entity == "task",
                                                                     SyncDoc.entity_id == task_id)))


def test_a_full_task_renders_as_the_schema_dumps_it(monkeypatch, client, device, make, courier):
    """Appointment history and contact attempts, notes with photos, fees, a finished handover with its receipt."""
    task = make.task(courier=courier, fees=[{"code": "delivery", "amount": 1200}])
    plain = make.task(courier=courier)
    client.post(f"/api/v1/dispatch/tasks/{task['id']}/notes", json={"text": "gate code 1234"},
                headers=make.headers("dispatcher"))
    photo = upload(device)
    answer = device.push([
        device.op("appointment.contact", task["id"], {"outcome": "reached", "note": "ring twice"}),
        device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
        device.op("task.note", task["id"], {"text": "dog in the yard", "photos": [photo]}),
        *door_ops(device, task, upload(device, b"\x89PNG\r\n\x1a\n" + b"\x02" * 64))])
    assert {r["status"] for r in answer["results"]} == {"applied"}, answer["results"]
    rendered = _by_push_dump([task["id"], plain["id"]])
    assert rendered == _by_schema(monkeypatch, [task["id"], plain["id"]])
    done = rendered[task["id"]]
    assert done["handover"]["outcome"] == "delivered" and done["handover"]["receipt"]["number"]
    assert done["appointment"]["contact_attempts"] and done["appointment"]["windows"]
    assert [n["photos"] for n in done["notes"] if n["text"] == "dog in the yard"] == [[photo]], done["notes"]
    # The schemas whose dumps the task's nested fields call (as renderers), each equal to its own dump.
    db.session.remove()
    stored = db.session.get(Task, task["id"])
    sync_wiring._dump_tasks([stored])
    for schema, obj in ((AppointmentOut(), stored.appointment), (HandoverStateOut(), stored.handover),
                        (CurrentWindowOut(), stored.appointment), (WindowOut(), stored),
                        (CourierRecipientOut(), stored)):
        assert renderer(schema)(obj) == schema.dump(obj)
    # The same JSON text too (key order included): what the docs store and the pull sends.
    assert orjson.dumps(rendered[plain["id"]]) == orjson.dumps(_by_schema(monkeypatch, [plain["id"]])[plain["id"]])


def test_one_task_touched_many_times_in_one_push(monkeypatch, device, make, courier):
    """Every result of the batch shows the task as the batch left it; the doc is that dump, as the schema makes it."""
    task = make.task(courier=courier)
    ops = [device.op("task.note", task["id"], {"text": f"note {n}"}) for n in range(25)]
    ops += door_ops(device, task, upload(device))
    results = device.push(ops)["results"]
    assert [r["status"] for r in results] == ["applied"] * len(ops)
    expected = _by_schema(monkeypatch, [task["id"]])[task["id"]]
    shown = _page_path(orjson.loads(receipts.reveal_docs([orjson.dumps(expected).decode()])[0]))  # the receipt unsealed
    assert all(_page_path(r["entity"]["data"]) == shown for r in results)
    assert [n["text"] for n in expected["notes"]][:2] == ["note 24", "note 23"] and len(expected["notes"]) == 20
    assert _stored(task["id"]) == expected


def test_a_refused_op_in_the_middle_keeps_the_others_docs_right(monkeypatch, device, make, courier):
    """A refused op mid-batch (the attempt starts over with it decided): every other task's result and doc is
    its schema dump, the refused one's task as the others left it."""
    first, second, third = (make.task(courier=courier) for _ in range(3))
    signature = upload(device)
    ops = [device.op("stop.arrive", first["id"], AT_DOOR),
           device.op("task.note", second["id"], {"text": "before"}),
           device.op("pod.verify_recipient", second["id"], verify()),
           device.op("pod.sign", second["id"], {"signature": signature, "signer_name": "Recipient",
                                                 "gift_disclosed": False, **AT_DOOR}),  # not inspected: refused
           device.op("task.note", second["id"], {"text": "after"}),
           device.op("task.note", third["id"], {"text": "third"})]
    results = device.push(ops)["results"]
    assert [r["status"] for r in results] == ["applied", "applied", "applied", "rejected", "applied", "applied"]
    expected = _by_schema(monkeypatch, [first["id"], second["id"], third["id"]])
    for op, result in zip(ops, results, strict=True):
        if result["status"] == "applied":
            assert result["entity"]["data"] == expected[op["entity_id"]]
    assert [n["text"] for n in expected[second["id"]]["notes"]][:2] == ["after", "before"]
    assert expected[second["id"]]["handover"]["signed"] is False
    for task in (first, second, third):
        assert _stored(task["id"]) == expected[task["id"]]


class _Row:
    """An object with attributes, some absent."""

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


class _Inner(Schema):
    n = fields.Integer()
    when = fields.AwareDateTime(allow_none=True)


class _Hooked(Schema):
    n = fields.Integer()

    @post_dump
    def _double(self, data, **_kw):
        return {"n": data["n"] * 2}


class _Everything(Schema):
    text = fields.String(allow_none=True)
    number = fields.Integer(data_key="num")
    ratio = fields.Float(allow_none=True)
    flag = fields.Boolean()
    day = fields.Date(allow_none=True)
    constant = fields.Constant("k")
    computed = fields.Function(lambda obj: getattr(obj, "text", None))
    method = fields.Method("_method")
    inner = fields.Nested(_Inner, allow_none=True)
    inners = fields.List(fields.Nested(_Inner))
    hooked = fields.Nested(_Hooked, allow_none=True)
    texts = fields.List(fields.String())
    mapping = fields.Dict(allow_none=True)
    renamed = fields.String(attribute="other")
    dotted = fields.Integer(attribute="inner.n")
    defaulted = fields.String(dump_default="none given")

    def _method(self, obj):
        return "m"


def test_nested_parts_render_as_their_schemas_dump():
    """A late notice and a PIN (the full task above has neither), as their schemas dump them."""
    when = datetime(2026, 12, 7, 22, 30, tzinfo=timezone.utc)
    notice = _Row(notice_at=when, notice_eta=when, notice_reason="traffic", notice_in_time=True)
    pin = _Row(pin_salt="salt", pin_hash="ab" * 32, pin_iterations=1000)
    for schema, obj in ((NoticeOut(), notice), (PinOut(), pin)):
        assert renderer(schema)(obj) == schema.dump(obj) and renderer(schema)(obj)


def test_a_query_row_renders_as_marshmallow_reads_it(app):
    """A Row (declared read by attribute) gives the same dict as dump, which tries row[name] first."""
    row = db.session.execute(select(literal(7).label("n"), literal(None).label("when"))).first()
    assert type(row) in render._BY_ATTRIBUTE
    assert renderer(_Inner())(row) == _Inner().dump(row)


def test_renderer_equals_dump_for_every_kind_of_field():
    """Values, None, absent attributes, dicts, dotted attributes, defaults, hooks: the same dict as dump."""
    schema = _Everything()
    when = datetime(2026, 12, 7, 22, 30, tzinfo=timezone.utc)
    full = _Row(text="a", number=7.0, ratio=1, flag=True, day=when.date(), inner=_Row(n=3, when=when),
                inners=[_Row(n=1, when=None), {"n": 2, "when": when}], hooked=_Row(n=5), texts=["x", 9],
                mapping={"a": 1}, other="o", defaulted="given")
    empty = _Row(text=None, ratio=None, day=None, inner=None, hooked=None, mapping=None)
    for obj in (full, empty, {"text": "from a dict", "number": 1, "inners": []}):
        assert renderer(schema)(obj) == schema.dump(obj)
        assert list(renderer(schema)(obj)) == list(schema.dump(obj))
    assert renderer(_Hooked())(_Row(n=4)) == {"n": 8}

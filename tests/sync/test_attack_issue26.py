"""Issue 26's fast paths attacked: the renderer against marshmallow's dump, the pulled doc against the online API,
an upload whose bytes cannot be written, the incremental pull's checksum after late offline ops."""
import decimal
import enum
import hashlib
import uuid
from datetime import date, datetime, time, timedelta, timezone

import pytest
from marshmallow import Schema, fields, post_dump, pre_dump

from schemas.render import renderer
from server import storage
from server.extensions import db
from server.models import Attachment
from tests.sync.conftest import SHANGHAI

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64, 128))


class _Colour(enum.Enum):
    """An enum a field dumps by name."""

    RED = "r"


class _Inner(Schema):
    """A nested part with a data_key."""

    x = fields.Integer()
    y = fields.String(data_key="Y")


class _Wrapped(Schema):
    """A nested part whose post_dump sees the whole collection (pass_collection)."""

    x = fields.Integer()

    @post_dump(pass_collection=True)
    def _wrap(self, data, many, **_kw):
        """A list dumped at once is wrapped; one item is not."""
        return {"items": data} if many else data


class _Every(Schema):
    """One field of each kind marshmallow serializes, plain or not."""

    s = fields.String()
    i = fields.Integer()
    f = fields.Float()
    d = fields.Decimal()
    ds = fields.Decimal(as_string=True)
    i_text = fields.Integer(as_string=True, attribute="i", dump_only=True)
    b = fields.Boolean()
    dt = fields.DateTime()
    aware = fields.AwareDateTime()
    naive = fields.NaiveDateTime()
    stamp = fields.DateTime(format="timestamp")
    strf = fields.DateTime(format="%Y/%m/%d %H:%M", attribute="aware", dump_only=True)
    day = fields.Date()
    t = fields.Time()
    td = fields.TimeDelta()
    n = fields.Nested(_Inner, allow_none=True)
    nm = fields.Nested(_Inner, many=True)
    nl = fields.List(fields.Nested(_Inner))
    ls = fields.List(fields.String())
    lf = fields.List(fields.Function(lambda o: "parent"), attribute="ls", dump_only=True)
    dd = fields.Dict()
    dk = fields.Dict(keys=fields.String(), values=fields.Integer())
    e = fields.Enum(_Colour)
    with_default = fields.String(dump_default="default")
    with_callable_default = fields.Integer(dump_default=lambda: 7)
    secret = fields.String(load_only=True)
    shown = fields.String(dump_only=True, data_key="Shown")
    fn = fields.Function(lambda o: getattr(o, "s", None) if not isinstance(o, dict) else o.get("s"))
    method = fields.Method("_method")
    constant = fields.Constant(5)
    raw = fields.Raw()
    uid = fields.UUID()
    url = fields.Url()
    pluck = fields.Pluck(_Inner, "x")
    dotted = fields.String(attribute="n.y")

    def _method(self, obj):
        """A method field's value."""
        return "m"


class _Thing:
    """An object read by attribute."""

    def __init__(self, **values):
        """Its attributes."""
        self.__dict__.update(values)


_VALUES = dict(
    s=5, i="7", f=1, d=decimal.Decimal("1.50"), ds=decimal.Decimal("2.5"), b="false",
    dt=datetime(2026, 1, 1, 12, tzinfo=SHANGHAI), aware=datetime(2026, 1, 1, 1),
    naive=datetime(2026, 1, 1, 1, tzinfo=timezone.utc), stamp=datetime(2026, 1, 1, 1, tzinfo=timezone.utc),
    day=date(2026, 1, 2), t=time(1, 2, 3), td=timedelta(seconds=90), n={"x": "3", "y": b"bytes"},
    nm=[{"x": 1}], nl=[{"x": 2, "y": None}], ls=["a", 1, None], dd={"k": 1}, dk={"k": "2"}, e=_Colour.RED,
    secret="x", shown="y", raw=object, uid=uuid.UUID(int=1), url="http://example.com", pluck={"x": 9})
_NONES = dict(_VALUES, dt=None, aware=None, n=None, nm=None, nl=[], ls=None, dd=None, b=None, s=None, i=None,
              d=None, day=None, e=None)


@pytest.mark.parametrize("obj", [_Thing(**_VALUES), _VALUES, _Thing(), {}, _Thing(**_NONES), _NONES],
                         ids=["attributes", "dict", "empty-object", "empty-dict", "nones-object", "nones-dict"])
def test_attack_issue26_every_field_kind_renders_as_marshmallow_dumps(obj):
    """Decimal, naive/aware/zoned datetimes, None and missing values, empty/None lists, data_key, load_only,
    dump_only, Function, Method, dump_default: the renderer's dict is the schema's, keys in the same order."""
    schema = _Every()
    dumped = schema.dump(obj)
    rendered = renderer(schema)(obj)
    assert rendered == dumped
    assert list(rendered) == list(dumped)


def test_attack_issue26_a_nested_collection_with_a_collection_hook_renders_as_marshmallow_dumps():
    """A nested schema whose post_dump takes the whole collection: marshmallow calls it once with the list; the
    renderer must not call the nested schema's dump once per item."""

    class Outer(Schema):
        """Holds a list of a hooked schema."""

        parts = fields.Nested(_Wrapped, many=True)
        one = fields.Nested(_Wrapped)

    schema = Outer()
    obj = {"parts": [{"x": 1}, {"x": 2}], "one": {"x": 3}}
    assert renderer(schema)(obj) == schema.dump(obj) == {"parts": {"items": [{"x": 1}, {"x": 2}]}, "one": {"x": 3}}


def test_attack_issue26_a_nested_collection_with_a_pre_dump_collection_hook():
    """pre_dump(pass_collection=True) sees the list once, as marshmallow's dump gives it."""

    class Counted(Schema):
        """Numbers its items from the list it is given."""

        x = fields.Integer()
        rank = fields.Integer()

        @pre_dump(pass_collection=True)
        def _rank(self, data, many, **_kw):
            """Each item its place in the list (0 for one item alone)."""
            if many:
                return [dict(item, rank=n) for n, item in enumerate(data, 1)]
            return dict(data, rank=0)

    class Outer(Schema):
        """Holds a list of a hooked schema."""

        parts = fields.Nested(Counted, many=True)

    schema = Outer()
    obj = {"parts": [{"x": 1}, {"x": 2}]}
    assert renderer(schema)(obj) == schema.dump(obj) == {"parts": [{"x": 1, "rank": 1}, {"x": 2, "rank": 2}]}


def test_attack_issue26_a_schema_that_overrides_its_serialize_is_left_to_marshmallow():
    """A schema subclass that changes how it serializes (not a hook): the renderer must not bypass it."""

    class Upper(Schema):
        """Its keys upper-cased by an overridden _serialize."""

        x = fields.String()

        def _serialize(self, obj, *, many=False):
            """marshmallow's, keys upper-cased."""
            data = super()._serialize(obj, many=many)
            return [{k.upper(): v for k, v in d.items()} for d in data] if many else {
                k.upper(): v for k, v in data.items()}

    schema = Upper()
    assert renderer(schema)({"x": "a"}) == schema.dump({"x": "a"}) == {"X": "a"}


def test_attack_issue26_the_pulled_doc_is_the_online_apis_dump(client, device, make, courier):
    """Ops that arrive hours after they were done offline (device time five hours back), notes, contact and
    arrival: the doc the pull sends is what GET /me/tasks/<id> answers for the same task."""
    task = make.task(courier=courier, fees=[{"code": "delivery", "amount": 1200}])
    client.post(f"/api/v1/dispatch/tasks/{task['id']}/notes", json={"text": "gate code 1234"},
                headers=make.headers("dispatcher"))
    late = (datetime.now(SHANGHAI) - timedelta(hours=5)).isoformat()
    ops = [device.op("appointment.contact", task["id"], {"outcome": "reached", "note": "ring twice"}),
           device.op("task.note", task["id"], {"text": "dog in the yard"}),
           device.op("task.note", task["id"], {"text": "second"})]
    for op in ops:
        op["device_time"] = late
    results = device.push(ops)["results"]
    assert {r["status"] for r in results} == {"applied"}, results
    store, _, _ = device.pull_all()
    online = client.get(f"/api/v1/me/tasks/{task['id']}", headers=device.headers)
    assert online.status_code == 200, online.json
    assert store[("task", task["id"])]["data"] == online.json


class _FullDisk(storage.LocalFolder):
    """A folder whose volume is full: every write fails as the real one would."""

    def put(self, sha256, data, content_type):
        """As LocalFolder.put on a full volume."""
        raise storage.StorageUnavailable("ENOSPC")


def test_attack_issue26_an_upload_whose_bytes_cannot_be_written_leaves_no_row(client, device, monkeypatch):
    """The disk is full: 503 to retry, no row naming bytes that are not there; after the disk frees, 201."""
    sha256 = hashlib.sha256(PNG).hexdigest()
    real = storage.backend()
    monkeypatch.setattr(storage, "backend", lambda: _FullDisk(real.root))
    monkeypatch.setattr("server.services.attachments.backend", lambda: _FullDisk(real.root))
    response = client.put(f"/api/v1/attachments/{sha256}", data=PNG, headers=device.headers)
    assert response.status_code == 503, response.json
    db.session.remove()
    assert db.session.get(Attachment, sha256) is None
    monkeypatch.undo()
    assert client.put(f"/api/v1/attachments/{sha256}", data=PNG, headers=device.headers).status_code == 201
    assert open(storage.backend().path(sha256), "rb").read() == PNG


def test_attack_issue26_incremental_checksums_after_late_and_duplicate_ops(device, make, courier):
    """Late offline ops, a retried batch (same op ids) and another courier's changes: every incremental pull's
    scope is the full listing's, so no device is sent to a needless full pull."""
    mine = [make.task(courier=courier) for _ in range(3)]
    other = make.task(courier=make.courier())
    _, cursor, _ = device.pull_all()
    late = (datetime.now(SHANGHAI) - timedelta(hours=7)).isoformat()
    ops = [device.op("task.note", t["id"], {"text": f"late {n}"}) for n, t in enumerate(mine)]
    for op in ops:
        op["device_time"] = late
    first = device.push(ops)["results"]
    again = device.push(ops)["results"]  # the retry of a batch whose answer was lost
    assert [r["status"] for r in first] == ["applied"] * 3
    assert [r["op_id"] for r in again] == [r["op_id"] for r in first]
    make.task(courier=courier)
    del other
    _, _, incremental = device.pull_all(cursor)
    _, _, full = device.pull_all()
    assert incremental["scope"] == full["scope"]


def test_attack_issue26_a_delivered_tasks_pulled_doc_is_the_online_apis_dump(client, device, make, courier):
    """A handover done offline and pushed late (PIN, signature, receipt): the pulled doc is the online dump."""
    from tests.sync.test_handover import door_ops, upload

    task = make.task(courier=courier)
    ops = door_ops(device, task, upload(device))
    for op in ops:
        op["device_time"] = (datetime.now(SHANGHAI) - timedelta(hours=3)).isoformat()
    results = device.push(ops)["results"]
    assert {r["status"] for r in results} == {"applied"}, results
    store, _, _ = device.pull_all()
    online = client.get(f"/api/v1/me/tasks/{task['id']}", headers=device.headers)
    assert online.status_code == 200, online.json
    pulled = store[("task", task["id"])]["data"]
    assert pulled["handover"]["receipt"]["number"]
    assert pulled == online.json

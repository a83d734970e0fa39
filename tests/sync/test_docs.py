"""Materialised handheld docs: always the entity as a live dump shows it, or rendered afresh."""
import orjson
from sqlalchemy import select, update

from server.extensions import db
from server.models import SyncDoc, Task, TaskEvent
from sync import docs


def _registry(app):
    return app.extensions["fieldops_sync"]


def _stored(entity: str, entity_id: str) -> tuple[int, dict] | None:
    """(version, body) of the stored doc, read in a fresh session."""
    db.session.remove()
    row = db.session.execute(select(SyncDoc.version, SyncDoc.body).where(
        SyncDoc.entity == entity, SyncDoc.entity_id == entity_id)).first()
    return (row.version, orjson.loads(row.body)) if row else None


def _live(app, entity: str, entity_id: str) -> tuple[int, dict]:
    """(version, dump) rendered now from the entity itself, in a fresh session."""
    db.session.remove()
    entity_type = _registry(app).entities[entity]
    (obj,) = entity_type.load([entity_id])
    return obj.version, entity_type.dump([obj])[entity_id]


def test_doc_follows_every_kind_of_change(app, client, device, make, courier):
    """Dispatch notes, pushed arrivals and notes, reassignment and cancellation: the doc is the live dump."""
    task = make.task(courier=courier)
    assert _stored("task", task["id"]) == _live(app, "task", task["id"])
    client.post(f"/api/v1/dispatch/tasks/{task['id']}/notes", json={"text": "gate code 1234"},
                headers=make.headers("dispatcher"))
    assert _stored("task", task["id"]) == _live(app, "task", task["id"])
    answer = device.push([device.op("stop.arrive", task["id"], {"lat": 31.23, "lon": 121.47}),
                          device.op("task.note", task["id"], {"text": "at the door"})])
    stored = _stored("task", task["id"])
    assert stored == _live(app, "task", task["id"])
    assert stored[1]["status"] == "arrived" and [n["text"] for n in stored[1]["notes"]][:2] == [
        "at the door", "gate code 1234"]
    # The push answered with the very dump the doc was written from.
    assert answer["results"][-1]["entity"]["data"] == stored[1]
    make.assign(task["id"], make.courier()["id"])
    assert _stored("task", task["id"]) == _live(app, "task", task["id"])
    client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "customer moved"},
                headers=make.headers("dispatcher"))
    assert _stored("task", task["id"])[1]["status"] == "cancelled"


def test_courier_and_vehicle_docs_follow_dispatch_edits(app, client, make, courier):
    """A renamed courier, and a van given to a courier then out of service, are re-materialised."""
    headers = make.headers("dispatcher")
    client.patch(f"/api/v1/dispatch/couriers/{courier['id']}", json={"name": "Wang Fang"}, headers=headers)
    assert _stored("courier", courier["id"]) == _live(app, "courier", courier["id"])
    assert _stored("courier", courier["id"])[1]["name"] == "Wang Fang"
    driver, van = make.courier(), make.vehicle()
    for change in ({"courier_id": driver["id"]}, {"status": "out_of_service"}):
        response = client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json=change, headers=headers)
        assert response.status_code == 200, response.json
    assert _stored("vehicle", van["id"]) == _live(app, "vehicle", van["id"])
    assert _stored("vehicle", van["id"])[1]["status"] == "out_of_service"


def _spoil(first: dict, second: dict) -> None:
    """Put one task's doc behind it and delete the other's."""
    db.session.execute(update(SyncDoc).where(SyncDoc.entity_id == first["id"])
                       .values(version=0, body='{"stale": true}'))
    db.session.execute(SyncDoc.__table__.delete().where(SyncDoc.entity_id == second["id"]))
    db.session.commit()


def test_pull_renders_a_missing_or_stale_doc_and_maintenance_rewrites_it(app, device, make, courier):
    """A doc behind its entity (or absent) is never sent: pull renders afresh (and stores the render, issue 26);
    rebuild() repairs the docs no pull has read."""
    first, second = make.task(courier=courier), make.task(courier=courier)
    docs.rebuild(db.session, _registry(app))  # reference data kept between tests (the fee codes) has no doc yet
    db.session.commit()
    store, _, _ = device.pull_all()
    expected = {key: change["data"] for key, change in store.items()}
    _spoil(first, second)
    store, _, _ = device.pull_all()
    assert {key: change["data"] for key, change in store.items()} == expected
    assert docs.rebuild(db.session, _registry(app)) == 0
    _spoil(first, second)
    assert docs.rebuild(db.session, _registry(app)) == 2
    db.session.commit()
    assert docs.rebuild(db.session, _registry(app)) == 0
    assert _stored("task", first["id"]) == _live(app, "task", first["id"])
    assert _stored("task", second["id"]) == _live(app, "task", second["id"])


def test_an_older_render_never_replaces_a_newer_doc(app, make, courier):
    """A writer holding an older snapshot (a feed touch, no row lock) loses to the newer doc."""
    task = make.task(courier=courier)
    db.session.execute(update(SyncDoc).where(SyncDoc.entity_id == task["id"])
                       .values(version=99, body='{"newer": true}'))
    db.session.commit()
    docs.write(db.session, _registry(app), {("task", task["id"])})
    db.session.commit()
    assert _stored("task", task["id"]) == (99, {"newer": True})


def test_history_rows_are_written_at_flush_and_dropped_with_a_rollback(app, make, courier):
    """record_event buffers rows: a flush writes them (and a loaded history reloads), a rollback drops them."""
    from server.auth import Actor
    from server.services import tasks
    actor = Actor(kind="staff", id="s-test", role="dispatcher")
    task_id = make.task(courier=courier)["id"]
    task = db.session.get(Task, task_id)
    before = len(task.events)
    tasks.add_note(actor=actor, task=task, text="first", photos=[])
    db.session.flush()
    assert [e.text for e in task.events][before:] == ["first"]
    db.session.commit()
    task = db.session.get(Task, task_id)
    tasks.add_note(actor=actor, task=task, text="never", photos=[])
    db.session.rollback()
    task = db.session.get(Task, task_id)
    tasks.add_note(actor=actor, task=task, text="second", photos=[])
    db.session.commit()
    texts = db.session.scalars(select(TaskEvent.text).where(TaskEvent.task_id == task_id,
                                                            TaskEvent.kind == "note").order_by(TaskEvent.id))
    assert list(texts) == ["first", "second"]


def test_notes_built_on_the_stored_doc_match_the_history(app, device, make, courier):
    """Pushes that only add notes extend the doc's newest-20 list exactly as a fresh query would."""
    task_id = make.task(courier=courier)["id"]
    for batch in range(3):
        answer = device.push([device.op("task.note", task_id, {"text": f"note {batch}.{i}"}) for i in range(9)])
        assert {r["status"] for r in answer["results"]} == {"applied"}
        stored = _stored("task", task_id)
        assert stored == _live(app, "task", task_id)
    notes = stored[1]["notes"]
    assert len(notes) == 20 and notes[0]["text"] == "note 2.8" and notes[-1]["text"] == "note 0.7"


def test_a_note_after_a_flushed_change_in_the_same_transaction_reads_the_history(app, make, courier):
    """The doc cannot be built on when the task moved past it earlier in the transaction."""
    from server.auth import Actor
    from server.services import tasks
    actor = Actor(kind="staff", id="s-test", role="dispatcher")
    task_id = make.task(courier=courier)["id"]
    db.session.remove()
    task = db.session.get(Task, task_id)
    task.needs_review = True
    db.session.flush()  # version moves past the stored doc's
    tasks.add_note(actor=actor, task=task, text="after the flush", photos=[])
    db.session.commit()
    stored = _stored("task", task_id)
    assert stored == _live(app, "task", task_id)
    assert stored[1]["notes"][0]["text"] == "after the flush"


def test_a_doc_behind_its_task_is_not_built_on(app, client, device, make, courier):
    """Notes pushed onto a task whose doc lags get the full history, not the lagging doc's notes."""
    task_id = make.task(courier=courier)["id"]
    client.post(f"/api/v1/dispatch/tasks/{task_id}/notes", json={"text": "older"},
                headers=make.headers("dispatcher"))
    version, body = _stored("task", task_id)
    db.session.execute(update(SyncDoc).where(SyncDoc.entity_id == task_id)
                       .values(version=version - 1, body=orjson.dumps(dict(body, notes=[])).decode()))
    db.session.commit()
    device.push([device.op("task.note", task_id, {"text": "newer"})])
    stored = _stored("task", task_id)
    assert stored == _live(app, "task", task_id)
    assert [n["text"] for n in stored[1]["notes"]] == ["newer", "older"]


def test_a_loaded_and_changed_collection_is_dumped_as_changed(app, make, courier):
    """Attaching parcels and fees for the dump never replaces a collection the transaction already changed."""
    from server.models import Parcel
    entity_type = _registry(app).entities["task"]
    task_id = make.task(courier=courier)["id"]
    db.session.remove()
    (task,) = db.session.scalars(select(Task).where(Task.id == task_id))  # parcels and fees not loaded
    with db.session.no_autoflush:  # the change is not in the database yet
        task.parcels.append(Parcel(parcel_no="EXTRA-1", description="gift", count=1))
        data = docs.dump(db.session, entity_type, [task])[task_id]
    assert [p["parcel_no"] for p in data["parcels"]][-1] == "EXTRA-1"
    assert data["fees"] == [{"code": "delivery", "amount": 1200}]
    db.session.rollback()

"""What a courier may see of a recipient is decided by the service before the dump, on every courier path."""
from server.clock import utcnow
from server.extensions import db
from server.models import Task
from server.services import handheld, privacy
from tests.sync.conftest import Device


def _finish(task_id: str) -> None:
    """Deliver the task behind the API's back (no delivery op exists yet)."""
    row = db.session.get(Task, task_id)
    row.status, row.finished_at = "delivered", utcnow()
    db.session.commit()


def test_the_service_decides_the_phone_and_the_schema_only_dumps_it(app, make):
    """for_courier sets the phone to show; a task finished in the same transaction is masked in that dump."""
    courier = make.courier()
    task_id = make.task(courier=courier)["id"]
    task = db.session.get(Task, task_id)
    (shown,) = handheld.for_handheld([task])
    assert shown.recipient_phone_for_courier == task.recipient_phone
    dump = app.extensions["fieldops_sync"].entities["task"].dump
    assert dump([task])[task_id]["recipient"]["phone"] == task.recipient_phone
    task.status = "delivered"  # not flushed: the dump decides from the task as it stands
    masked = dump([task])[task_id]["recipient"]["phone"]
    assert masked == privacy.mask_phone(task.recipient_phone) != task.recipient_phone
    assert len(masked) == len(task.recipient_phone) and masked[:3] == task.recipient_phone[:3] and "*" in masked
    db.session.rollback()


def test_for_courier_masks_only_finished_tasks(app, make):
    """Open tasks keep the number; each finished status masks it."""
    courier = make.courier()
    ids = [make.task(courier=courier)["id"] for _ in range(3)]
    _finish(ids[1])
    row = db.session.get(Task, ids[2])
    row.status, row.finished_at, row.cancel_reason = "cancelled", utcnow(), "test"
    db.session.commit()
    shown = {t.id: t.recipient_phone_for_courier for t in privacy.for_courier([db.session.get(Task, i) for i in ids])}
    assert shown[ids[0]] == db.session.get(Task, ids[0]).recipient_phone
    assert shown[ids[1]] == privacy.mask_phone(db.session.get(Task, ids[1]).recipient_phone)
    assert shown[ids[2]] == privacy.mask_phone(db.session.get(Task, ids[2]).recipient_phone)


def test_every_courier_answer_shows_the_phone_the_service_decided(client, make):
    """/me list, read, note and arrive answers, a pull and a push answer: full while open, masked once finished."""
    courier = make.courier()
    enrolled = make.device(courier)
    headers = {"Authorization": f"Bearer {enrolled['token']}"}
    open_task, done_task = make.task(courier=courier), make.task(courier=courier)
    _finish(done_task["id"])
    full = {t["id"]: t["recipient"]["phone"] for t in (open_task, done_task)}
    expected = {open_task["id"]: full[open_task["id"]], done_task["id"]: privacy.mask_phone(full[done_task["id"]])}
    assert expected[done_task["id"]] != full[done_task["id"]]

    listed = client.get("/api/v1/me/tasks", headers=headers).json["items"]
    assert {t["id"]: t["recipient"]["phone"] for t in listed} == expected
    for task_id, phone in expected.items():
        answers = [client.get(f"/api/v1/me/tasks/{task_id}", headers=headers),
                   client.post(f"/api/v1/me/tasks/{task_id}/notes", json={"text": "ring twice"}, headers=headers),
                   client.post(f"/api/v1/me/tasks/{task_id}/arrive", json={"lat": 31.2, "lon": 121.4},
                               headers=headers)]
        assert [a.status_code for a in answers] == [200, 201, 200]
        assert [a.json["recipient"]["phone"] for a in answers] == [phone] * 3

    device = Device(client, enrolled)
    pushed = device.push([device.op("task.note", task_id, {"text": "left at door"}) for task_id in expected])
    assert {r["entity"]["id"]: r["entity"]["data"]["recipient"]["phone"] for r in pushed["results"]} == expected
    store, _, _ = device.pull_all()
    assert {key[1]: c["data"]["recipient"]["phone"] for key, c in store.items() if key[0] == "task"} == expected


def test_dispatch_still_sees_the_whole_number(client, make):
    """Masking is the courier's view only: dispatch reads a finished task's phone in full."""
    courier = make.courier()
    task = make.task(courier=courier)
    _finish(task["id"])
    shown = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=make.headers("dispatcher")).json
    assert shown["recipient"]["phone"] == task["recipient"]["phone"]

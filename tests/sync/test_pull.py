"""Pull: full scope, paging, incremental changes, tombstones, reset, drift check, last_seq."""
from datetime import timedelta

from sqlalchemy import update

from server.clock import utcnow
from server.extensions import db
from server.models import Change, FeeCode, SyncState, Task
from sync.pull import checksum


def _fees() -> int:
    """How many fee codes are published: every device's scope holds them (pull entity fee_code)."""
    return db.session.query(FeeCode).filter(FeeCode.active.is_(True)).count()


def _scope_of(store: dict) -> dict:
    return checksum([(entity, entity_id, change["version"]) for (entity, entity_id), change in store.items()])


def test_first_pull_is_the_whole_scope_with_matching_checksum(device, make, courier):
    """Tasks, the van and the courier's own record; nothing of anyone else's."""
    mine = [make.task(courier=courier)["id"] for _ in range(3)]
    make.task(courier=make.courier())
    make.task()
    store, _, last = device.pull_all()
    assert {k for k in store if k[0] == "task"} == {("task", t) for t in mine}
    assert [k[0] for k in store].count("vehicle") == 1
    assert ("courier", courier["id"]) in store
    assert last["scope"] == _scope_of(store) and last["scope"]["count"] == 5 + _fees()
    assert last["last_seq"] == 0
    task = store[("task", mine[0])]["data"]
    assert task["recipient"]["phone"] and task["parcels"] and task["window"]["start"]


def test_paging_covers_scope_once(device, make, courier):
    """Small pages chain through the cursor without repeats or gaps."""
    mine = {make.task(courier=courier)["id"] for _ in range(7)}
    seen, cursor, pages = [], None, 0
    while True:
        page = device.pull(cursor, limit=2)
        pages += 1
        seen += [(c["entity"], c["id"]) for c in page["changes"]]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
        assert "scope" not in page
    assert pages >= 5 and len(seen) == len(set(seen)) == 9 + _fees()
    assert {i for e, i in seen if e == "task"} == mine


def test_incremental_pull_returns_only_what_changed(device, make, courier, client):
    """After the first pull, a new task and a note arrive; nothing else is resent."""
    old = make.task(courier=courier)
    _, cursor, _ = device.pull_all()
    quiet = device.pull(cursor)
    assert quiet["changes"] == [] and quiet["has_more"] is False
    new = make.task(courier=courier)
    client.post(f"/api/v1/dispatch/tasks/{old['id']}/notes", json={"text": "ring twice"},
                headers=make.headers("dispatcher"))
    make.task(courier=make.courier())  # someone else's: not sent
    page = device.pull(cursor)
    assert [(c["id"], c["version"]) for c in page["changes"]] == [(new["id"], 2), (old["id"], 3)]
    assert page["changes"][1]["data"]["notes"][0]["text"] == "ring twice"


def test_tombstones_when_tasks_leave_scope(device, make, courier, client, app):
    """Reassigned, cancelled, and yesterday's finished tasks come back as deleted."""
    moved, cancelled, done, kept = (make.task(courier=courier) for _ in range(4))
    store, cursor, _ = device.pull_all()
    make.assign(moved["id"], make.courier()["id"])
    client.post(f"/api/v1/dispatch/tasks/{cancelled['id']}/cancel", json={"reason": "x"},
                headers=make.headers("dispatcher"))
    page = device.pull(cursor)
    assert {(c["id"], c["deleted"]) for c in page["changes"]} == {(moved["id"], True), (cancelled["id"], True)}
    # As if made and finished yesterday: its feed rows too (close_day skips a task fed since midnight).
    db.session.execute(update(Task).where(Task.id == done["id"]).values(
        status="delivered", finished_at=utcnow() - timedelta(days=1)))
    db.session.execute(update(Change).where(Change.entity_id == done["id"]).values(
        at=utcnow() - timedelta(days=1)))
    db.session.commit()
    from server.services.tasks import close_day
    assert close_day(now=utcnow()) == 1
    assert close_day(now=utcnow()) == 0  # once is enough: the second run touches nothing
    page2 = device.pull(page["cursor"])
    assert [(c["id"], c["deleted"]) for c in page2["changes"]] == [(done["id"], True)]
    assert page2["scope"]["count"] == 3 + _fees()  # kept task, van, courier, the published fees
    del kept


def test_reset_for_foreign_or_compacted_cursor_and_422_for_garbage(device, make, courier):
    """Another database's cursor or one behind compaction resets; garbage is a 422."""
    make.task(courier=courier)
    _, cursor, _ = device.pull_all()
    epoch = db.session.get(SyncState, "epoch")
    real = epoch.value
    epoch.value = "another-server"
    db.session.commit()
    assert device.pull(cursor)["reset"] is True
    epoch.value = real
    db.session.commit()
    make.task(courier=courier)
    make.task(courier=courier)
    from sync.maintenance import compact_feed
    db.session.execute(update(Change).values(at=utcnow() - timedelta(days=40)))
    db.session.commit()
    assert compact_feed(now=utcnow(), retention=timedelta(days=30)) > 0
    assert device.pull(cursor)["reset"] is True
    store, _, last = device.pull_all()  # from no cursor: the whole scope again
    assert last["scope"] == _scope_of(store) and last["scope"]["count"] == 5 + _fees()
    bad = device.pull("not-a-cursor", expect=422)
    assert "cursor" in bad["fields"]


def test_last_seq_in_pull_covers_effects(device, make, courier):
    """A device whose push answer was lost learns last_seq and sees the op's effect."""
    task = make.task(courier=courier)
    _, cursor, _ = device.pull_all()
    device.push([device.op("stop.arrive", task["id"], {"lat": 31.23, "lon": 121.47})])
    page = device.pull(cursor)
    assert page["last_seq"] == 1
    [change] = [c for c in page["changes"] if c["entity"] == "task"]  # and the courier's record (a violation)
    assert change["data"]["status"] == "arrived"


def test_pull_requires_protocol_and_courier(client, device, make):
    """No protocol header: 426; a staff token: 403."""
    headers = {"Authorization": device.headers["Authorization"]}
    assert client.get("/api/v1/sync/pull", headers=headers).status_code == 426
    staff = {**make.headers("dispatcher"), "Fieldops-Protocol": "1"}
    assert client.get("/api/v1/sync/pull", headers=staff).status_code == 403


def test_every_page_names_the_depots_time_zone(device, make, courier, app, monkeypatch):
    """The pull answer carries FIELDOPS_TIMEZONE on every page: the device shows times and counts days in it."""
    for _ in range(3):
        make.task(courier=courier)
    first = device.pull(None, limit=2)
    assert first["has_more"] is True and first["timezone"] == "Asia/Shanghai"
    monkeypatch.setitem(app.config, "TIMEZONE", "Europe/Berlin")
    second = device.pull(first["cursor"], limit=2)
    _, _, last = device.pull_all()
    assert second["timezone"] == last["timezone"] == "Europe/Berlin" and "scope" in last


def test_every_page_carries_the_company_name(app, device, courier):
    """FIELDOPS_COMPANY_NAME reaches the device with each pull page (the app's standard phrase says it), read at
    each pull: a changed setting reaches devices at once; unset, it is null (the phrase names no company)."""
    app.config["COMPANY_NAME"] = "顺达快递"
    try:
        assert device.pull(None)["company"] == {"name": "顺达快递"}
    finally:
        app.config["COMPANY_NAME"] = None
    assert device.pull(None)["company"] == {"name": None}

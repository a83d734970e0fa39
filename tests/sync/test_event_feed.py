"""The integration event feed: in commit order, a cursor that never skips, read by integration tokens (and admins)."""
import threading

import pytest
from sqlalchemy import select

from server.auth import SYSTEM
from server.extensions import db
from server.models import Event
from server.services import tasks
from tests.sync.conftest import interleave, race

FEED = "/api/v1/integrations/events"


def read(client, token: str, cursor: int = 0, **query) -> dict:
    """One page of the feed."""
    response = client.get(FEED, query_string={"cursor": cursor, **query},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.json
    return response.json


def read_all(client, token: str, cursor: int = 0, **query) -> tuple[list[dict], int]:
    """Read until has_more is false: (events, cursor)."""
    items = []
    while True:
        page = read(client, token, cursor, **query)
        items += page["items"]
        cursor = page["cursor"]
        if not page["has_more"]:
            return items, cursor


def stored_ids() -> list[str]:
    """Every committed event id, in position order."""
    db.session.expire_all()
    return list(db.session.scalars(select(Event.id).order_by(Event.position)))


def test_the_feed_pages_in_order_filters_by_type_and_skips_nothing(client, make, courier):
    """Pages of two in position order; a types filter; the cursor of a short page moves past other types."""
    token = make.token("integration")
    other = make.courier()
    task = make.task(courier=courier)
    make.assign(task["id"], other["id"])
    client.patch(f"/api/v1/dispatch/vehicles/{make.vehicle()['id']}", json={"status": "out_of_service"},
                 headers=make.headers("dispatcher"))
    make.task(courier=courier)
    items, cursor = read_all(client, token, limit=2)
    assert [e["id"] for e in items] == stored_ids()
    assert [e["type"] for e in items] == ["task.assigned", "task.assigned", "vehicle.out_of_service", "task.assigned"]
    assert [e["position"] for e in items] == sorted(e["position"] for e in items) and cursor == items[-1]["position"]
    assert items[0]["data"]["courier_id"] == courier["id"] and items[0]["subject_id"] == task["id"]
    assert read(client, token, cursor) == {"items": [], "cursor": cursor, "has_more": False}
    vans = read(client, token, types="vehicle.out_of_service")
    assert [e["type"] for e in vans["items"]] == ["vehicle.out_of_service"] and vans["cursor"] == cursor
    both = read(client, token, types="task.delivered, vehicle.out_of_service")
    assert len(both["items"]) == 1
    assert read(client, token, items[1]["position"], limit=1)["items"] == [items[2]]


@pytest.mark.parametrize("query,field", [({"types": "task.assigned,task.teleported"}, "types"),
                                         ({"cursor": "-1"}, "cursor"), ({"cursor": "abc"}, "cursor"),
                                         ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit")])
def test_bad_feed_queries_name_the_field(client, make, query, field):
    """422 naming the parameter."""
    response = client.get(FEED, query_string=query, headers=make.headers("integration"))
    assert response.status_code == 422 and field in response.json["fields"], response.json


def test_the_integration_role_reads_events_and_nothing_else(client, make, courier):
    """An integration token reads the feed; dispatch, tasks, webhooks and its own tokens are 403; other staff 403."""
    token = make.token("integration")
    headers = {"Authorization": f"Bearer {token}"}
    task = make.task(courier=courier)
    assert client.get(FEED, headers=headers).status_code == 200
    assert client.get(FEED, headers=make.headers("admin")).status_code == 200
    for role in ("dispatcher", "quality", "maintenance"):
        assert client.get(FEED, headers=make.headers(role)).status_code == 403
    for method, path in [("GET", "/api/v1/dispatch/tasks"), ("GET", f"/api/v1/dispatch/tasks/{task['id']}"),
                         ("GET", "/api/v1/admin/webhooks"), ("GET", "/api/v1/admin/tokens"),
                         ("POST", f"/api/v1/dispatch/tasks/{task['id']}/cancel")]:
        assert client.open(path, method=method, json={"reason": "x"}, headers=headers).status_code == 403, path


def _assign(app, task_id: str, courier_id: str) -> None:
    """A dispatch-side change that emits an event, in its own session and commit."""
    with app.app_context():
        tasks.assign(actor=SYSTEM, task_id=task_id, courier_id=courier_id)


def _interleave(app, client, token: str, jobs: list[tuple[str, str]], cursor: int) -> set[str]:
    """A's event is inserted and A pauses before COMMIT; B commits; the reader reads; A commits; the reader reads on.

    Returns the event subjects the reader saw across the read in between and the reads after.
    """
    middle = interleave(lambda: _assign(app, *jobs[0]), lambda: _assign(app, *jobs[1]),
                        lambda: read(client, token, cursor))
    after, _ = read_all(client, token, middle["cursor"])
    return {e["subject_id"] for e in middle["items"] + after}


def test_the_cursor_never_passes_an_event_committed_late(app, client, make, courier):
    """Both writers' events reach the reader, whatever the commit order."""
    token = make.token("integration")
    t1, t2 = make.task()["id"], make.task()["id"]
    _, cursor = read_all(client, token)
    assert {t1, t2} <= _interleave(app, client, token, [(t1, courier["id"]), (t2, courier["id"])], cursor)


def test_the_interleaving_test_catches_events_without_the_lock(app, client, make, courier, engine_name, monkeypatch):
    """Mutation check: without the lock on PostgreSQL, the same interleaving loses A's event."""
    if engine_name != "postgresql":
        pytest.skip("SQLite serialises writers by itself; the lock only matters on PostgreSQL")
    import server.services.events
    monkeypatch.setattr(server.services.events, "take_feed_lock", lambda session: None)
    import sync.feed
    monkeypatch.setattr(sync.feed, "take_feed_lock", lambda session: None)  # the task's change takes it too
    token = make.token("integration")
    t1, t2 = make.task()["id"], make.task()["id"]
    _, cursor = read_all(client, token)
    seen = _interleave(app, client, token, [(t1, courier["id"]), (t2, courier["id"])], cursor)
    assert t2 in seen and t1 not in seen


def test_concurrent_writers_and_a_polling_reader_see_every_event_once(app, client, make):
    """Writers commit at random moments while a reader polls small pages: it ends with every event, once, in order."""
    couriers = [make.courier()["id"] for _ in range(2)]
    task_ids = [make.task()["id"] for _ in range(4)]
    token = make.token("integration")
    _, start = read_all(client, token)
    seen: list[dict] = []

    def writer(n: int):
        for k in range(12):  # each writer its own task: alternate its courier, one event a commit
            _assign(app, task_ids[n], couriers[k % 2])

    def reader(stop: threading.Event):
        with app.app_context():
            reader_client = app.test_client()
            cursor = start
            while not stop.is_set():
                page = read(reader_client, token, cursor, limit=3)
                seen.extend(page["items"])
                cursor = page["cursor"]
            more, _ = read_all(reader_client, token, cursor)
            seen.extend(more)

    race(writer, reader)
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)) == 4 * 12
    assert ids == [i for i in stored_ids() if i in set(ids)]  # in position order
    assert [e["position"] for e in seen] == sorted(e["position"] for e in seen)


def test_a_cursor_past_the_newest_event_is_refused_not_echoed(client, make, courier):
    """A cursor beyond the feed (another server's, a restored database's) is a 409 naming it: echoed back, it
    would have skipped every event up to it once they were written."""
    token = make.token("integration")
    make.task(courier=courier)
    _, newest = read_all(client, token)
    assert read(client, token, newest) == {"items": [], "cursor": newest, "has_more": False}
    ahead = client.get(FEED, query_string={"cursor": newest + 50}, headers={"Authorization": f"Bearer {token}"})
    assert ahead.status_code == 409 and ahead.json["code"] == "cursor_ahead_of_feed", ahead.json
    assert "cursor" in ahead.json["fields"] and str(newest) in ahead.json["detail"]
    later = [make.task(courier=courier)["id"] for _ in range(2)]
    items, _ = read_all(client, token, newest)
    assert [e["subject_id"] for e in items] == later

"""No change is ever skipped, even with writers committing out of order and a puller between them."""
import random
import threading

import pytest

from server.auth import SYSTEM
from server.services import handheld
from tests.sync.conftest import Device, interleave, race


def _note(app, task_id: str, text: str) -> None:
    """A dispatch-side change to a task, in its own session and commit."""
    with app.app_context():
        handheld.note(actor=SYSTEM, task_id=task_id, text=text, photos=[])


def _interleave(app, device, t1: str, t2: str, cursor: str) -> set[str]:
    """A appends its change and pauses before COMMIT; B commits; the device pulls; A commits.

    Returns the ids the device received across the pull in between and the pulls after.
    """
    middle = interleave(lambda: _note(app, t1, "a"), lambda: _note(app, t2, "b"), lambda: device.pull(cursor))
    seen = {c["id"] for c in middle["changes"]}
    store, _, _ = device.pull_all(middle["cursor"])
    return seen | {task_id for _, task_id in store}


def test_cursor_never_passes_a_change_committed_out_of_order(app, make, courier, device):
    """Both writers' changes reach the device, whatever the commit order."""
    t1, t2 = make.task(courier=courier)["id"], make.task(courier=courier)["id"]
    _, cursor, _ = device.pull_all()
    assert {t1, t2} <= _interleave(app, device, t1, t2, cursor)


def test_the_interleaving_test_catches_a_feed_without_the_lock(app, make, courier, device,
                                                               engine_name, monkeypatch):
    """Mutation check: remove the feed lock and the same interleaving loses A's change."""
    if engine_name != "postgresql":
        pytest.skip("SQLite serialises writers by itself; the lock only matters on PostgreSQL")
    import sync.feed
    monkeypatch.setattr(sync.feed, "take_feed_lock", lambda session: None)
    t1, t2 = make.task(courier=courier)["id"], make.task(courier=courier)["id"]
    _, cursor, _ = device.pull_all()
    seen = _interleave(app, device, t1, t2, cursor)
    assert t2 in seen and t1 not in seen


def test_concurrent_writers_and_puller_converge(app, make, courier, device):
    """Several writers commit at random moments while a device pulls; it ends equal to the server."""
    ids = [make.task(courier=courier)["id"] for _ in range(6)]
    enrolled = {"device_id": device.id, "token": device.headers["Authorization"].split()[1]}
    puller_state = {}

    def writer(n: int):
        rng = random.Random(n)
        for k in range(15):
            _note(app, rng.choice(ids), f"w{n}-{k}")

    def puller(stop: threading.Event):
        with app.app_context():
            me = Device(app.test_client(), enrolled)
            store, cursor, _ = me.pull_all(limit=3)
            while not stop.is_set():
                page = me.pull(cursor, limit=3)
                for change in page["changes"]:
                    store[(change["entity"], change["id"])] = change
                cursor = page["cursor"]
            more, cursor, last = me.pull_all(cursor)
            store.update(more)
            puller_state.update(store=store, last=last)

    race(writer, puller)
    fresh, _, _ = device.pull_all()
    got = {k: v["version"] for k, v in puller_state["store"].items()}
    assert got == {k: v["version"] for k, v in fresh.items()}
    assert sum(v["version"] for k, v in fresh.items() if k[0] == "task") == 6 * 2 + 4 * 15

"""bulk_insert: COPY on PostgreSQL, executemany elsewhere; the rows as an INSERT would have stored them."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, select, text

from server.clock import utcnow
from server.database import bulk_insert
from server.extensions import db
from server.models import TaskEvent


def test_rows_are_stored_in_order_with_json_times_and_python_defaults(app, make):
    """JSON of every shape, an aware time at +08:00 stored as the same instant, NULLs, text with
    COPY's special characters, and `at` (left out) filled by its Python default."""
    task_id = make.task()["id"]
    plus8 = timezone(timedelta(hours=8))
    device_time = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=plus8)
    before = utcnow()
    rows = [{"task_id": task_id, "kind": "note", "actor_kind": "courier", "actor_id": None,
             "text": text, "device_time": device_time if i % 2 == 0 else None, "data": data}
            for i, (text, data) in enumerate([
                ("tab\there, newline\nthere, backslash \\ and \\N", {"nested": {"a": [1, 2, None]}, "n": 2**53}),
                (None, None), ("中文 and émoji 📦", {"s": "quote \" and \\"}), ("plain", [])])]
    bulk_insert(db.session, TaskEvent.__table__, rows)
    db.session.commit()
    stored = db.session.scalars(select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)).all()
    stored = [e for e in stored if e.kind == "note"]
    assert [(e.text, e.data) for e in stored] == [(r["text"], r["data"]) for r in rows]
    assert [e.device_time for e in stored] == [device_time, None, device_time, None]
    assert stored[0].device_time.utcoffset() == timedelta(0)
    assert all(before <= e.at <= utcnow() for e in stored)  # the column's Python default, as INSERT gives it
    # None in a JSON column is stored as an INSERT stores it (JSON null), not as SQL NULL.
    db.session.add(TaskEvent(task_id=task_id, kind="probe", actor_kind="system", data=None))
    db.session.commit()
    raw = dict(db.session.execute(text("SELECT kind, data IS NULL FROM task_events WHERE id IN :ids")
                                  .bindparams(bindparam("ids", expanding=True)),
                                  {"ids": [stored[1].id] + [e.id for e in db.session.scalars(
                                      select(TaskEvent).where(TaskEvent.kind == "probe"))]}).all())
    assert raw == {"note": raw["probe"], "probe": raw["probe"]}


def test_nothing_to_insert_is_a_no_op(app):
    """An empty list sends nothing."""
    bulk_insert(db.session, TaskEvent.__table__, [])
    db.session.commit()

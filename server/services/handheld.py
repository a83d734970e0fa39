"""Tasks as a handheld shows them: a task with its newest notes, appointment, handover and receipt.

The view of the task domains together, above each of them (tasks, appointments,
handover, receipts build on one another and never on this). The online routes
that change a task answer it as the handheld holds it.
"""
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.auth import Actor
from server.clock import local_day_start, utcnow
from server.extensions import db
from server.models import Task
from server.services import appointments, duty, handover, privacy, tasks


def for_handheld(task_list: list[Task]) -> list[Task]:
    """Tasks ready for a handheld's dump: newest notes, appointment, and what their courier may see of the recipient."""
    return privacy.for_courier(tasks.with_recent_notes(appointments.with_history(handover.with_receipts(task_list))))


def get_own(*, actor: Actor, task_id: str) -> Task:
    """One of the courier's tasks as the handheld shows it."""
    return for_handheld([tasks.get(task_id=task_id, actor=actor)])[0]


def get_for_courier(*, actor: Actor) -> list[Task]:
    """The courier's tasks in their handheld's scope, in window order."""
    return for_handheld(list(db.session.scalars(
        select(Task).where(tasks.in_courier_scope(actor.courier_id, local_day_start(utcnow())))
        .options(selectinload(Task.parcels), selectinload(Task.fees))
        .order_by(Task.window_start, Task.id))))


def note(*, actor: Actor, task_id: str, text: str, photos: list[str]) -> Task:
    """HTTP entry point: add a note to a task the caller may see."""
    task = tasks.add_note(actor=actor, task=tasks.get(task_id=task_id, actor=actor, for_update=True), text=text,
                          photos=photos)
    db.session.commit()
    return for_handheld([task])[0]


def record_arrival(*, actor: Actor, task_id: str, lat: float, lon: float) -> Task:
    """HTTP entry point: the courier, online, reports arriving at the stop."""
    task = appointments.arrive(actor=actor, task=tasks.get(task_id=task_id, actor=actor, for_update=True),
                               lat=lat, lon=lon)
    duty.check_work(actor=actor, task=task, action="stop.arrive", device_time=None, op_id=None)
    db.session.commit()
    return for_handheld([task])[0]

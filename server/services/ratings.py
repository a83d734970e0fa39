"""Customers' satisfaction ratings: 1–5 and an optional comment, once per delivered or collected task."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from server.auth import Actor
from server.errors import Conflict, RuleViolation
from server.extensions import db
from server.models import Rating, Task
from server.services import complaints, tasks

# A handover the customer took part in: a delivery signed for (or left with their consent), a pickup collected.
RATEABLE = ("delivered", "collected")


def rateable(task: Task) -> bool:
    """Whether the customer may rate the task: its handover is done (delivered or collected)."""
    return task.status in RATEABLE


def for_task(*, task_id: str) -> Rating | None:
    """The task's rating, if the customer gave one."""
    return db.session.scalar(select(Rating).where(Rating.task_id == task_id))


def rate(*, actor: Actor, task_id: str, score: int, comment: str | None) -> Rating:
    """Record the customer's rating of the task's handover, once per task; a low one opens the quality team's
    follow-up (complaints.follow_up_rating). Commits.

    The unique key on the task decides a race (two tabs, a retried post): the
    second insert fails and is refused like any second rating.
    """
    task = tasks.get(task_id=task_id)
    if not rateable(task):
        raise RuleViolation(f"Task is {task.status}; a rating follows the handover.", code="not_rateable")
    already = Conflict("This task is already rated.", code="already_rated")
    if for_task(task_id=task.id) is not None:
        raise already
    rating = Rating(task_id=task.id, score=score, comment=comment or None,
                    link_id=actor.id if actor.kind == "customer" else None)
    db.session.add(rating)
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise already from exc
    complaints.follow_up_rating(rating=rating, task=task)
    db.session.commit()
    return rating

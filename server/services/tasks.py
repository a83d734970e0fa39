"""Tasks: creation and import, assignment, cancellation, notes; the history and events the others build on."""
import re
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

from sqlalchemy import and_, bindparam, event, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.util import identity_key

from schemas.vocab import COD_SERVICE_FEE, DONE_STATUSES, OPEN_STATUSES
from server import changes
from server.auth import Actor
from server.clock import local_date, local_day_start, utcnow
from server.database import bulk_insert, mark_read_only, reset_read_only
from server.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from server.extensions import db
from server.models import (Appointment, AppointmentWindow, Change, Courier, FeeCode, Parcel, Task, TaskAssignment,
                           TaskEvent, TaskFee)
from server.services import attachments, events, promises
from server.services.common import audit, audit_created, get_or_404, paginate, snapshot


_HISTORY = "fieldops_history_pending"
_NOTES_ADDED = "fieldops_notes_added"


def record_event(task: Task, kind: str, actor: Actor, *, text: str | None = None,
                 data: dict | None = None, device_time: datetime | None = None) -> None:
    """Append to a task's history and make the change bump the task's version.

    The history row is written at the next flush, with every other one the
    transaction appended, in one multi-row INSERT (_write_history): a push
    appends hundreds at once, and the unit of work's per-object bookkeeping for
    them was the largest part of its time. The notes added (and the task's
    version before its first event here) are also remembered for the rest of
    the transaction (notes_added).
    """
    row = {"task_id": task.id, "kind": kind, "actor_kind": actor.kind, "actor_id": actor.id, "text": text,
           "data": data, "device_time": device_time.astimezone(timezone.utc) if device_time else None,
           "at": utcnow()}
    db.session.info.setdefault(_HISTORY, []).append(row)
    notes = db.session.info.setdefault(_NOTES_ADDED, {}).setdefault(task.id, (task.version, []))[1]
    if kind == "note":
        notes.append(SimpleNamespace(**row))
    task.updated_at = utcnow()  # forces an UPDATE, so version and the change feed move


def notes_added(task_ids: list[str]) -> dict[str, tuple[int | None, list]]:
    """For tasks with events in this transaction: (their version before the first, the notes added, newest first).

    The version is read when the first event is recorded; if this transaction
    had already flushed a change to the task it is past the committed one,
    which is how a caller comparing it with stored state sees it cannot build on it.
    """
    added = db.session.info.get(_NOTES_ADDED, {})
    return {task_id: (added[task_id][0], added[task_id][1][::-1]) for task_id in task_ids if task_id in added}


def _write_history(session: Session, _flush_context) -> None:
    """Insert the history rows recorded since the last flush (after the tasks themselves are written)."""
    rows = session.info.pop(_HISTORY, None)
    if not rows:
        return
    bulk_insert(session, TaskEvent.__table__, rows)
    # A task whose history is loaded in this session reloads it when next read.
    for task_id in {row["task_id"] for row in rows}:
        task = session.identity_map.get(identity_key(Task, task_id))
        if task is not None and "events" in task.__dict__:
            session.expire(task, ["events"])


def _forget_history(session: Session, _transaction=None) -> None:
    """Nothing recorded outlives its transaction.

    On any rollback, savepoints included, unwritten rows go (begin_nested()
    flushes first, so whatever is still buffered was recorded inside the
    savepoint), and so does the record of notes added.
    """
    session.info.pop(_HISTORY, None)
    session.info.pop(_NOTES_ADDED, None)


def init_app(_app) -> None:
    """Install the history writer once per process (session events are per Session class)."""
    if not event.contains(Session, "after_flush_postexec", _write_history):
        event.listen(Session, "after_flush_postexec", _write_history)
        event.listen(Session, "after_soft_rollback", _forget_history)
        event.listen(Session, "after_commit", _forget_history)


def mark_dispatch_change(task: Task) -> None:
    """Remember that dispatch changed the task: device ops made before this conflict."""
    # The flush that follows raises version by one; any version at or above
    # this one includes the change.
    task.dispatch_version = task.version + 1


def published_fee_codes() -> set[str]:
    """The fee codes a task may charge."""
    return set(db.session.scalars(select(FeeCode.code).where(FeeCode.active.is_(True))))


def fee_codes_in_scope(_courier_id, _day_start):
    """SQL condition: the published (active) fee codes are in every courier's scope."""
    return FeeCode.active.is_(True)


def load_fee_codes(codes: list[str]) -> list[FeeCode]:
    """The fee codes of these codes (those that exist)."""
    return list(db.session.scalars(select(FeeCode).where(FeeCode.code.in_(codes)).order_by(FeeCode.code)))


def spec_problems(spec: dict, published: set[str], products: dict) -> list[tuple[str, str, str]]:
    """Rules a task spec must meet beyond its schema, as (field path, code, message); products: those offered
    (promises.offered), which the promise fields are checked against.

    Cash on delivery is the recipient paying for goods handed to them: a pickup
    takes parcels from a sender and charges only its fees, so it carries no COD
    amount, and the COD service fee goes only with a COD amount.
    """
    problems = []
    cod = spec.get("cod_amount", 0)
    if cod and spec.get("kind") == "pickup":
        problems.append(("cod_amount", "cod_on_pickup", "A pickup collects no cash on delivery; its COD amount is 0."))
    for i, fee in enumerate(spec.get("fees", [])):
        if fee["code"] not in published:
            problems.append((f"fees.{i}.code", "fee_not_published",
                             f"{fee['code']!r} is not a published fee; charge only published fees."))
        elif fee["code"] == COD_SERVICE_FEE and not cod:
            problems.append((f"fees.{i}.code", "cod_fee_without_cod",
                             "The COD service fee is charged only on a task with a COD amount."))
    codes = [fee["code"] for fee in spec.get("fees", [])]
    if len(codes) != len(set(codes)):
        problems.append(("fees", "fee_repeated", "A fee code may appear once."))
    parcel_nos = [p["parcel_no"] for p in spec["parcels"]]
    if len(parcel_nos) != len(set(parcel_nos)):
        problems.append(("parcels", "parcel_repeated", "Parcel numbers must be unique within a task."))
    return problems + promises.spec_problems(spec, products, utcnow())


def _check_task_spec(spec: dict, published: set[str], products: dict, prefix: str = "") -> dict:
    """spec_problems as failing fields by path (under prefix)."""
    fields: dict[str, list[str]] = {}
    for path, _code, message in spec_problems(spec, published, products):
        fields.setdefault(prefix + path, []).append(message)
    return fields


def new_appointment(task: Task, actor: Actor) -> Appointment:
    """The appointment a new task starts with: unconfirmed, proposing the task's window."""
    return Appointment(status="unconfirmed", window_start=task.window_start, window_end=task.window_end,
                       windows=[AppointmentWindow(start=task.window_start, end=task.window_end, status="proposed",
                                                  proposed_by_kind=actor.kind, proposed_by_id=actor.id,
                                                  via="dispatch", received_at=utcnow(), attempt=1)])


def build_task(spec: dict, actor: Actor, products: dict) -> Task:
    """A Task (not yet added) from a validated spec, with the promise its product makes (products: those offered)."""
    recipient, window = spec["recipient"], spec["window"]
    task = Task(
        waybill_no=spec["waybill_no"], kind=spec["kind"], recipient_name=recipient["name"],
        recipient_phone=recipient["phone"], address=recipient["address"], lat=recipient.get("lat"),
        lon=recipient.get("lon"), cod_amount=spec.get("cod_amount", 0), gift_description=spec.get("gift_description"),
        window_start=window["start"], window_end=window["end"],
        service_date=local_date(window["start"]),
        parcels=[Parcel(**p) for p in spec["parcels"]],
        fees=[TaskFee(code=f["code"], amount=f["amount"]) for f in spec.get("fees", [])])
    task.events.append(TaskEvent(kind="created", actor_kind=actor.kind, actor_id=actor.id,
                                 at=utcnow()))
    task.appointment = new_appointment(task, actor)
    promises.apply(task, spec, products)
    return task


def flush_new_tasks(tasks: list[Task]) -> None:
    """Insert tasks; a waybill that raced in concurrently is a 409, not a 500."""
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("A waybill number already exists.", code="duplicate_waybill") from exc


def create(*, actor: Actor, spec: dict) -> Task:
    """Create one task; a duplicate waybill is a 409 and stores nothing."""
    products = promises.offered([spec])
    fields = _check_task_spec(spec, published_fee_codes(), products)
    if fields:
        raise ValidationFailed("The task breaks a rule.", fields=fields)
    if db.session.scalar(select(Task.id).where(Task.waybill_no == spec["waybill_no"])):
        raise Conflict(f"Waybill {spec['waybill_no']} already exists.", code="duplicate_waybill",
                       fields={"waybill_no": ["Already exists."]})
    task = build_task(spec, actor, products)
    db.session.add(task)
    flush_new_tasks([task])
    audit(actor, "task.create", task, None)
    db.session.commit()
    return task


def import_tasks(*, actor: Actor, specs: list[dict], labels: list[str]) -> list[Task]:
    """Create many tasks, all or none; every bad row and field is named at once.

    labels[i] names where spec i came from ("tasks.3", "rows.7") in error paths.
    Checking and building the rows read in a read-only transaction of their own,
    so SQLite's single writer is held only while the rows are written (a waybill
    imported meanwhile still fails the insert: 409 duplicate_waybill).
    """
    separate = not db.session().in_transaction()
    token = mark_read_only(separate)
    try:
        published, products = published_fee_codes(), promises.offered(specs)
        waybills = [s["waybill_no"] for s in specs]
        taken = set(db.session.scalars(select(Task.waybill_no).where(Task.waybill_no.in_(waybills))))
    finally:
        if separate:
            db.session.commit()
        reset_read_only(token)
    fields: dict = {}
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        prefix = labels[i] + "."
        fields.update(_check_task_spec(spec, published, products, prefix))
        if spec["waybill_no"] in taken:
            fields[prefix + "waybill_no"] = ["Already exists."]
        elif spec["waybill_no"] in seen:
            fields[prefix + "waybill_no"] = [f"Repeats {labels[seen[spec['waybill_no']]]}."]
        seen.setdefault(spec["waybill_no"], i)
    if fields:
        bad = {label for label in labels if any(k.startswith(label + ".") for k in fields)}
        raise ValidationFailed(f"{len(bad)} row(s) are invalid; nothing was imported.",
                               fields=fields)
    tasks = [build_task(spec, actor, products) for spec in specs]
    db.session.add_all(tasks)
    flush_new_tasks(tasks)  # the write transaction, and on SQLite the writer, begin here
    audit_created(actor, "task.import", tasks)
    db.session.commit()
    return tasks


def get(*, task_id: str, actor: Actor | None = None, for_update: bool = False) -> Task:
    """One task; a courier asking for a task that is not theirs gets the same 404.

    for_update locks the row until commit, so concurrent changes queue up
    instead of failing the version check.
    """
    task = db.session.get(Task, task_id, with_for_update=for_update)
    if task is None or (actor is not None and actor.is_courier
                        and task.courier_id != actor.courier_id):
        raise NotFound(f"No task {task_id}.", code="task_not_found")
    return task


_WAYBILL_PREFIX = re.compile(r"[A-Za-z0-9\-]{1,40}")


def _waybill_prefix(prefix: str):
    """SQL condition: the waybill starts with prefix (waybills are stored in capitals: schemas.common.identifier),
    served by an index on both engines.

    PostgreSQL reads LIKE 'AB%' from ix_tasks_waybill_prefix (pattern ops, whatever the collation); SQLite's LIKE
    ignores case and so no index, but waybills are ASCII letters, digits and dashes, so on its byte-ordered
    index a range is exactly the waybills starting with the prefix (every such character sorts below DEL).
    """
    prefix = prefix.upper()
    if db.session.get_bind().dialect.name == "postgresql":
        return Task.waybill_no.startswith(prefix, autoescape=True)
    return and_(Task.waybill_no >= prefix, Task.waybill_no < prefix + "\x7f")


def search_condition(q: str):
    """SQL condition for dispatch's search: a waybill prefix, a recipient's surname, or a phone's last four digits.

    Which of them a term can be is read from it (docs/decisions.md, "Task search"): four digits are a phone
    suffix or a waybill prefix; letters, digits and dashes a waybill prefix, and without digits or dashes a
    surname too; a Chinese term (or any other) a surname. Each is a lookup on its own index.
    """
    term = q.strip()
    conditions = []
    if _WAYBILL_PREFIX.fullmatch(term):
        conditions.append(_waybill_prefix(term))
    if len(term) == 4 and term.isascii() and term.isdigit():
        conditions.append(Task.recipient_phone_suffix == term)
    elif not any(ch.isdigit() or ch == "-" for ch in term):
        conditions.append(Task.recipient_surname == term.casefold())
    return or_(*conditions) if conditions else false()


def get_all(*, status: str | None = None, courier_id: str | None = None,
            service_date: date | None = None, waybill_no: str | None = None, q: str | None = None,
            needs_review: bool | None = None, at_risk: bool | None = None, cursor: str | None = None,
            limit: int = 50) -> dict:
    """A filtered page of tasks for dispatch; q: search (search_condition); at_risk: open tasks within the lead of
    their promise or past it."""
    query = select(Task).options(selectinload(Task.parcels), selectinload(Task.fees))
    if q:
        query = query.where(search_condition(q))
    if status:
        query = query.where(Task.status == status)
    if courier_id:
        query = query.where(Task.courier_id == courier_id)
    if service_date:
        query = query.where(Task.service_date == service_date)
    if waybill_no:
        query = query.where(Task.waybill_no == waybill_no)
    if needs_review is not None:
        query = query.where(Task.needs_review.is_(needs_review))
    if at_risk is not None:
        condition = promises.at_risk(utcnow())
        query = query.where(condition if at_risk else ~condition)
    return paginate(query, Task.id, cursor=cursor, limit=limit)


def in_courier_scope(courier_id, day_start):
    """SQL condition: the task belongs on the courier's handheld today (values or bind parameters).

    Open tasks assigned to them, and tasks they finished since day_start, the
    start of the local day (the device still shows today's work); cancelled
    tasks and earlier days' finished tasks leave the device, so customer data
    does not linger there.
    """
    return and_(Task.courier_id == courier_id, Task.status != "cancelled",
                or_(Task.status.in_(OPEN_STATUSES), Task.finished_at >= day_start))


def close_day(*, now: datetime) -> int:
    """Tell handhelds that tasks finished before today have left their scope. Commits.

    Nothing about such a task changes at midnight, so no row would record it;
    this touches the feed for each one so devices receive the tombstone.
    Run shortly after the depot's midnight (the scheduler does); a task that already
    has a feed row since that midnight is skipped, so a second run touches nothing.
    """
    today = local_day_start(now)
    fed_today = select(Change.entity_id).where(Change.entity == "task", Change.at >= today)
    rows = db.session.execute(select(Task.id, Task.courier_id).where(
        Task.status.in_(DONE_STATUSES), Task.courier_id.is_not(None),
        Task.finished_at < today, Task.finished_at >= today - timedelta(days=2), Task.id.not_in(fed_today))).all()
    for task_id, courier_id in rows:
        changes.touch(db.session, "task", task_id, {courier_id})
    db.session.commit()
    return len(rows)


HANDHELD_NOTES = 20


def with_recent_notes(task_list: list[Task]) -> list[Task]:
    """Give each task the newest notes a handheld shows, in one query, never the whole history.

    A task's history grows without bound (a week of notes, a backlog of ops);
    loading it to show the last few would make memory grow with it. The notes
    are read as plain rows (what NoteOut reads), not ORM objects: a push dumps
    every task it touched, and identity-mapping thousands of events is its
    single largest cost.
    """
    if not task_list:
        return task_list
    by_task: dict[str, list] = {t.id: [] for t in task_list}
    for row in db.session.execute(_RECENT_NOTES, {"task_ids": list(by_task)}):
        by_task[row.task_id].append(row)
    for task in task_list:
        task.handheld_notes = by_task[task.id]
    return task_list


def _recent_notes_statement():
    """The newest HANDHELD_NOTES notes of some tasks, newest first (built once: building it cost more than running it)."""
    rank = func.row_number().over(partition_by=TaskEvent.task_id, order_by=TaskEvent.id.desc()).label("rank")
    newest = (select(TaskEvent.id, TaskEvent.task_id, TaskEvent.at, TaskEvent.device_time, TaskEvent.actor_kind,
                     TaskEvent.actor_id, TaskEvent.text, TaskEvent.data, rank)
              .where(TaskEvent.task_id.in_(bindparam("task_ids", expanding=True)), TaskEvent.kind == "note")
              .subquery())
    return select(newest).where(newest.c.rank <= HANDHELD_NOTES).order_by(newest.c.id.desc())


_RECENT_NOTES = _recent_notes_statement()


def _open_assignments(task_id: str) -> list[TaskAssignment]:
    """The task's current assignment rows (load them before mutating, so one change is one version)."""
    return list(db.session.scalars(select(TaskAssignment).where(
        TaskAssignment.task_id == task_id, TaskAssignment.ended_at.is_(None))))


def assign(*, actor: Actor, task_id: str, courier_id: str) -> Task:
    """Give an open task to an active courier (reassigning takes it off the previous one)."""
    task = get(task_id=task_id, for_update=True)
    if task.status not in OPEN_STATUSES:
        raise RuleViolation(f"Task is {task.status}; only open tasks can be assigned.",
                            code="task_finished")
    courier = get_or_404(Courier, courier_id, what="courier")
    if not courier.active:
        raise RuleViolation("An inactive courier cannot be given tasks.", code="courier_inactive",
                            fields={"courier_id": ["Inactive."]})
    if task.courier_id == courier.id:
        return task
    before = snapshot(task)
    now = utcnow()
    for current in _open_assignments(task.id):
        current.ended_at = now
    db.session.add(TaskAssignment(task_id=task.id, courier_id=courier.id, assigned_at=now,
                                  assigned_by=actor.id))
    previous = task.courier_id
    task.courier_id = courier.id
    task.status = "assigned"
    task.arrived_at = None
    mark_dispatch_change(task)
    record_event(task, "assigned", actor, data={"courier_id": courier.id, "previous": previous})
    events.emit("task.assigned", task.id, events.task_facts(task, previous_courier_id=previous,
                                                            assigned_at=now.isoformat()))
    audit(actor, "task.assign", task, before)
    db.session.commit()
    return task


def cancel(*, actor: Actor, task_id: str, reason: str) -> Task:
    """Cancel an open task; it leaves the courier's handheld."""
    task = get(task_id=task_id, for_update=True)
    if task.status not in OPEN_STATUSES:
        raise RuleViolation(f"Task is {task.status}; only open tasks can be cancelled.",
                            code="task_finished")
    before = snapshot(task)
    now = utcnow()
    for current in _open_assignments(task.id):
        current.ended_at = now
    task.status = "cancelled"
    task.cancel_reason = reason
    task.finished_at = now
    mark_dispatch_change(task)
    record_event(task, "cancelled", actor, text=reason)
    audit(actor, "task.cancel", task, before)
    db.session.commit()
    return task


def set_gift(*, actor: Actor, task_id: str, description: str | None) -> Task:
    """Dispatch sets, changes or clears an open task's enclosed gift. Commits.

    A dispatch change: the courier must tell the customer about the gift the
    handheld shows, so a device op based on an older version is a conflict
    (applied as a field fact, flagged for dispatch) like after other dispatch
    changes. The same description again changes nothing.
    """
    task = get(task_id=task_id, for_update=True)
    if task.status not in OPEN_STATUSES:
        raise RuleViolation(f"Task is {task.status}; only an open task's gift can change.", code="task_finished")
    if task.gift_description == description:
        return task
    before = snapshot(task)
    previous, task.gift_description = task.gift_description, description
    mark_dispatch_change(task)
    task.gift_version = task.dispatch_version if description else None
    record_event(task, "gift_changed", actor, data={"gift_description": description, "previous": previous})
    audit(actor, "task.gift", task, before)
    db.session.commit()
    return task


def was_assigned_to(*, task_id: str, courier_id: str) -> bool:
    """Whether the courier ever held the task (a reassigned courier's late field facts count)."""
    return db.session.scalar(select(TaskAssignment.id).where(
        TaskAssignment.task_id == task_id, TaskAssignment.courier_id == courier_id).limit(1)) is not None


def check_held_by(*, task: Task, courier_id: str) -> None:
    """A fact about the task names a courier who held it (now or before a reassignment): else 422
    courier_not_on_task naming courier_id (a complaint, a spot check of the stop)."""
    if task.courier_id != courier_id and not was_assigned_to(task_id=task.id, courier_id=courier_id):
        raise RuleViolation("That courier never held the task.", code="courier_not_on_task",
                            fields={"courier_id": ["Never held this task."]})


def _check_attachments(photos: list[str]) -> None:
    """Every referenced attachment must already be uploaded."""
    if not photos:
        return
    stored = attachments.present(photos)
    missing = [p for p in photos if p not in stored]
    if missing:
        raise RuleViolation("Upload the attachments before referring to them.",
                            code="attachment_missing", extra={"missing": missing},
                            fields={f"photos.{photos.index(p)}": ["Not uploaded yet."] for p in missing})


def add_note(*, actor: Actor, task: Task, text: str, photos: list[str],
             device_time: datetime | None = None) -> Task:
    """Add a note (and photos) to a task's history; couriers and dispatch alike. Does not commit."""
    _check_attachments(photos)
    record_event(task, "note", actor, text=text, data={"photos": photos} if photos else None,
                 device_time=device_time)
    return task



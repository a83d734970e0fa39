"""Customer complaints: received, answered, contacted, resolved, reopened, rated; an upheld one becomes the
courier's violation.

Who may do what (docs/decisions.md): quality, dispatchers and admins record
complaints, first responses, contacts, reopenings, withdrawals and the
customer's satisfaction; only quality staff and admins decide a complaint
(upheld or rejected), since an upheld complaint counts against the courier's
grade. The contacts and reopenings are what first-contact resolution is
derived from (docs/kpis.md); the office's `resolved_at_first_contact` box is
kept as given and read by nothing.
"""
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, not_, select

from server.auth import Actor
from server.clock import utcnow
from server.errors import Conflict, Forbidden, NotFound, RuleViolation, ValidationFailed
from server.extensions import db
from server.models import Complaint, ComplaintContact, ComplaintReopening, Courier, Task, Violation
from server.services import events, tasks, violations
from server.services.common import audit, get_or_404, newest_first, snapshot

DECIDERS = ("admin", "quality")


def _overdue(now: datetime):
    """SQL condition: no first response, and its time is up."""
    return and_(Complaint.first_response_at.is_(None), Complaint.response_due_at < now)


def _courier_for(task_id: str | None, courier_id: str | None) -> tuple[Task | None, str]:
    """The complaint's task (if named) and courier: the one named, else the task's, who must have held it."""
    task = db.session.get(Task, task_id) if task_id else None
    if task_id and task is None:
        raise NotFound(f"No task {task_id}.", code="task_not_found")
    if courier_id:
        get_or_404(Courier, courier_id, what="courier")
        if task is not None and task.courier_id != courier_id and not tasks.was_assigned_to(
                task_id=task.id, courier_id=courier_id):
            raise RuleViolation("That courier never held the task.", code="courier_not_on_task",
                                fields={"courier_id": ["Never held this task."]})
        return task, courier_id
    if task.courier_id is None:
        raise ValidationFailed("The task has no courier: name the courier.",
                               fields={"courier_id": ["Required: the task has no courier."]})
    return task, task.courier_id


def create(*, actor: Actor, channel: str, category: str, text: str, task_id: str | None = None,
           courier_id: str | None = None, received_at: datetime | None = None) -> Complaint:
    """Record a complaint about a courier (named, or the task's); its first response is due by the target."""
    now = utcnow()
    received_at = received_at or now
    if received_at > now:
        raise ValidationFailed("A complaint cannot be received in the future.",
                               fields={"received_at": ["Must not be in the future."]})
    task, courier_id = _courier_for(task_id, courier_id)
    complaint = Complaint(
        courier_id=courier_id, task_id=task.id if task else None, channel=channel, category=category, text=text,
        status="open", received_at=received_at, created_by=actor.id, created_at=now,
        response_due_at=received_at + timedelta(hours=current_app.config["COMPLAINT_RESPONSE_HOURS"]))
    db.session.add(complaint)
    audit(actor, "complaint.create", complaint, None)  # flushes: the complaint has its id
    events.emit("complaint.opened", str(complaint.id), {
        "complaint_id": complaint.id, "courier_id": courier_id, "task_id": complaint.task_id,
        "waybill_no": task.waybill_no if task else None, "channel": channel, "category": category,
        "received_at": received_at.isoformat(), "response_due_at": complaint.response_due_at.isoformat()})
    db.session.commit()
    return complaint


def get(*, complaint_id: int, for_update: bool = False) -> Complaint:
    """One complaint or 404."""
    complaint = db.session.get(Complaint, complaint_id, with_for_update=for_update)
    if complaint is None:
        raise NotFound(f"No complaint {complaint_id}.", code="complaint_not_found")
    return complaint


def get_all(*, status: str | None = None, courier_id: str | None = None, overdue: bool | None = None,
            category: str | None = None, cursor: int | None = None, limit: int = 50) -> dict:
    """Complaints newest first, filtered by status, courier, category, and whether the first response is overdue."""
    query = select(Complaint)
    if status:
        query = query.where(Complaint.status == status)
    if courier_id:
        query = query.where(Complaint.courier_id == courier_id)
    if category:
        query = query.where(Complaint.category == category)
    if overdue is not None:
        condition = _overdue(utcnow())
        query = query.where(condition if overdue else not_(condition))
    return newest_first(query, Complaint.id, cursor=cursor, limit=limit)


def _first_response(complaint: Complaint, actor: Actor, text: str, channel: str | None, at: datetime) -> None:
    """Stamp the complaint's first response: it is the first contact with the customer, kept as one."""
    complaint.first_response_at, complaint.first_response_by, complaint.first_response_text = at, actor.id, text
    if complaint.status == "open":
        complaint.status = "responded"
    complaint.contacts.append(ComplaintContact(kind="first_response", channel=channel, note=text, contacted_at=at,
                                               recorded_by=actor.id))


def respond(*, actor: Actor, complaint_id: int, text: str) -> Complaint:
    """Record the first response to the customer (once); it counts as the first contact. Commits."""
    complaint = get(complaint_id=complaint_id, for_update=True)
    if complaint.first_response_at is not None:
        raise Conflict("The first response is already recorded.", code="already_responded")
    before = snapshot(complaint)
    _first_response(complaint, actor, text, None, utcnow())
    audit(actor, "complaint.respond", complaint, before)
    db.session.commit()
    return complaint


def add_contact(*, actor: Actor, complaint_id: int, channel: str, note: str) -> ComplaintContact:
    """Record a contact with the customer about the complaint, dated now; the first one is its first response.

    Commits. The same contact posted again (same staff member, channel and note
    within COMPLAINT_CONTACT_REPEAT_SECONDS of the first) is a double submission:
    the first contact is answered and nothing is recorded twice, so a retry never
    turns a complaint solved at one contact into one that took two.
    """
    complaint = get(complaint_id=complaint_id, for_update=True)
    now = utcnow()
    repeat = now - timedelta(seconds=current_app.config["COMPLAINT_CONTACT_REPEAT_SECONDS"])
    for contact in reversed(complaint.contacts):
        if (contact.recorded_by, contact.channel, contact.note) == (actor.id, channel, note) \
                and contact.contacted_at >= repeat:
            return contact
    before = snapshot(complaint)
    if complaint.first_response_at is None:
        _first_response(complaint, actor, note, channel, now)
    else:
        complaint.contacts.append(ComplaintContact(kind="contact", channel=channel, note=note, contacted_at=now,
                                                   recorded_by=actor.id))
    audit(actor, "complaint.contact", complaint, before)
    contact = complaint.contacts[-1]
    db.session.commit()
    return contact


def reopen(*, actor: Actor, complaint_id: int, reason: str) -> Complaint:
    """The customer brings a resolved complaint back: the resolution is kept on the reopening, and the complaint
    is open again until resolved anew; it can no longer count as resolved at first contact. Commits.

    An upheld complaint's violation stays (voiding one is an appeal's business).
    """
    complaint = get(complaint_id=complaint_id, for_update=True)
    if complaint.status != "resolved":
        raise Conflict(f"Only a resolved complaint is reopened; this one is {complaint.status}.",
                       code="complaint_not_resolved")
    before = snapshot(complaint)
    complaint.reopenings.append(ComplaintReopening(
        reason=reason, reopened_at=utcnow(), reopened_by=actor.id, resolved_at=complaint.resolved_at,
        resolved_by=complaint.resolved_by, outcome=complaint.outcome, resolution_note=complaint.resolution_note,
        resolved_at_first_contact=complaint.resolved_at_first_contact, satisfaction=complaint.satisfaction,
        satisfaction_at=complaint.satisfaction_at))
    complaint.status = "reopened"
    complaint.resolved_at = complaint.resolved_by = complaint.outcome = complaint.resolution_note = None
    complaint.resolved_at_first_contact = complaint.satisfaction = complaint.satisfaction_at = None
    audit(actor, "complaint.reopen", complaint, before)
    db.session.commit()
    return complaint


def resolve(*, actor: Actor, complaint_id: int, outcome: str, note: str,
            resolved_at_first_contact: bool | None = None) -> Complaint:
    """Close a complaint with its outcome, after its first response; upheld, it becomes a violation once. Commits.

    resolved_at_first_contact is the office's box (deprecated): kept as given, read by no figure.
    """
    if outcome != "withdrawn" and actor.role not in DECIDERS:
        raise Forbidden("Only quality staff and admins uphold or reject a complaint.", code="decision_not_allowed")
    complaint = get(complaint_id=complaint_id, for_update=True)
    if complaint.status == "resolved":
        raise Conflict(f"The complaint is already resolved ({complaint.outcome}).", code="complaint_resolved")
    if complaint.first_response_at is None:
        raise RuleViolation("Record the first response to the customer before resolving.",
                            code="response_required")
    before = snapshot(complaint)
    now = utcnow()
    complaint.status, complaint.outcome, complaint.resolution_note = "resolved", outcome, note
    complaint.resolved_at, complaint.resolved_by = now, actor.id
    complaint.resolved_at_first_contact = resolved_at_first_contact
    if outcome == "upheld":
        complaint.violation_id = _record_violation(complaint, actor)
    audit(actor, "complaint.resolve", complaint, before)
    db.session.commit()
    return complaint


def _record_violation(complaint: Complaint, actor: Actor) -> int:
    """The upheld complaint as the courier's complaint_upheld violation (one per complaint, ever); its id."""
    key = f"complaint:{complaint.id}"
    violations.record_auto(
        courier_id=complaint.courier_id, code="complaint_upheld", task_id=complaint.task_id,
        occurred_at=complaint.received_at, source="complaint", key=key,
        evidence={"complaint_id": complaint.id, "channel": complaint.channel, "category": complaint.category,
                  "text": complaint.text, "received_at": complaint.received_at.isoformat(),
                  "resolution_note": complaint.resolution_note, "decided_by": actor.id})
    return db.session.scalar(select(Violation.id).where(Violation.dedupe_key == f"complaint_upheld:{key}"))


def rate(*, actor: Actor, complaint_id: int, satisfaction: str) -> Complaint:
    """Record the customer's satisfaction with the outcome (once, after resolution). Commits."""
    complaint = get(complaint_id=complaint_id, for_update=True)
    if complaint.status != "resolved":
        raise RuleViolation("The customer rates the outcome once the complaint is resolved.", code="not_resolved")
    if complaint.satisfaction is not None:
        raise Conflict("The customer's satisfaction is already recorded.", code="satisfaction_recorded")
    before = snapshot(complaint)
    complaint.satisfaction, complaint.satisfaction_at = satisfaction, utcnow()
    audit(actor, "complaint.rate", complaint, before)
    db.session.commit()
    return complaint

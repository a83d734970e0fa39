"""Customer complaints: received, owned, answered, contacted, handed over, resolved, reopened, rated; an upheld
complaint about a courier becomes the courier's violation.

Who may do what (docs/decisions.md, "Complaints" and "Issue 23: complaints
owned to the end"): quality, dispatchers and admins record complaints. A
complaint has an owner (首问负责制): the staff member who recorded it, or, for one
the customer filed from their page or a low rating opened, the first who takes
it (taking it, answering it or contacting the customer). On an owned complaint,
its owner and quality staff and admins (who oversee every complaint) respond,
contact, resolve and record satisfaction; another dispatcher is refused
(not_complaint_owner). Only the owner or an admin hands it over, to a named
active office staff member, with a reason. Any office staff member records a
reopening (the customer calls whoever answers); the owner keeps it. Only
quality staff and admins decide a complaint (upheld or rejected), since an
upheld complaint counts against the courier's grade. The contacts and
reopenings are what first-contact resolution is derived from (docs/kpis.md).
"""
import hashlib
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, not_, or_, select

from server.auth import OFFICE, Actor, Budget, count_attempt
from server.clock import utcnow
from server.errors import Conflict, Forbidden, NotFound, RuleViolation, ValidationFailed
from server.extensions import db
from server.models import (Complaint, ComplaintContact, ComplaintHandover, ComplaintReopening, Courier, Rating,
                           StaffUser, Task, Violation)
from server.services import attachments, events, tasks, violations
from server.services.common import audit, get_or_404, newest_first, snapshot

DECIDERS = ("admin", "quality")
# Who acts on any complaint, owned by them or not: the quality team oversees complaints, admins everything.
OVERSEERS = DECIDERS
HANDOVER_OVERRIDE = ("admin",)
PHOTO_TYPES = ("image/jpeg", "image/png")


def overdue_condition(now: datetime):
    """SQL condition: overdue for any reason (Complaint.overdue_reasons says which); never NULL, so that its
    negation lists the others."""
    return or_(and_(Complaint.first_response_at.is_(None), Complaint.response_due_at < now),
               and_(Complaint.status != "resolved",
                    or_(and_(Complaint.resolution_due_at.is_not(None), Complaint.resolution_due_at < now),
                        and_(Complaint.update_due_at.is_not(None), Complaint.update_due_at < now))))


def _resolution_due(category: str, at: datetime) -> datetime:
    """When a complaint of this category received (or reopened) at `at` is to be resolved."""
    hours = current_app.config["COMPLAINT_RESOLUTION_HOURS_BY_CATEGORY"].get(
        category, current_app.config["COMPLAINT_RESOLUTION_HOURS"])
    return at + timedelta(hours=hours)


def _updated(complaint: Complaint, at: datetime) -> None:
    """The customer was told something (or came back) at `at`: the next update is due the setting later."""
    complaint.update_due_at = at + timedelta(hours=current_app.config["COMPLAINT_UPDATE_HOURS"])


def _subject_of(subject: str, task_id: str | None, courier_id: str | None) -> tuple[Task | None, str | None]:
    """The complaint's task (if named) and courier: for a complaint about a courier, the one named, else the
    task's, who must have held it; about anything else, a courier only if named."""
    task = db.session.get(Task, task_id) if task_id else None
    if task_id and task is None:
        raise NotFound(f"No task {task_id}.", code="task_not_found")
    if courier_id:
        get_or_404(Courier, courier_id, what="courier")
        if task is not None:
            tasks.check_held_by(task=task, courier_id=courier_id)
        return task, courier_id
    if subject != "courier":
        return task, None
    if task is None or task.courier_id is None:
        raise ValidationFailed("A complaint about a courier names them (or a task that has one).",
                               fields={"courier_id": ["Required: name the courier (the task has none)."]})
    return task, task.courier_id


def _record(*, actor: Actor, channel: str, category: str, text: str, subject: str, task: Task | None,
            courier_id: str | None, received_at: datetime, owner_id: str | None, now: datetime,
            photo_sha256: str | None = None, rating_id: int | None = None) -> Complaint:
    """Add the complaint with its due times fixed now, audit it and emit complaint.opened; flushes."""
    complaint = Complaint(
        subject=subject, courier_id=courier_id, task_id=task.id if task else None, channel=channel,
        category=category, text=text, status="open", received_at=received_at,
        created_by=actor.id if actor.kind == "staff" else None, created_at=now,
        owner_id=owner_id, owned_since=now if owner_id else None, photo_sha256=photo_sha256, rating_id=rating_id,
        response_due_at=received_at + timedelta(hours=current_app.config["COMPLAINT_RESPONSE_HOURS"]),
        resolution_due_at=_resolution_due(category, received_at))
    db.session.add(complaint)
    audit(actor, "complaint.create", complaint, None)  # flushes: the complaint has its id
    events.emit("complaint.opened", str(complaint.id), {
        "complaint_id": complaint.id, "subject": subject, "courier_id": courier_id, "task_id": complaint.task_id,
        "waybill_no": task.waybill_no if task else None, "channel": channel, "category": category,
        "owner_id": owner_id, "received_at": received_at.isoformat(),
        "response_due_at": complaint.response_due_at.isoformat(),
        "resolution_due_at": complaint.resolution_due_at.isoformat()})
    return complaint


def create(*, actor: Actor, channel: str, category: str, text: str, subject: str = "courier",
           task_id: str | None = None, courier_id: str | None = None, received_at: datetime | None = None) -> Complaint:
    """Record a complaint the office received; its recorder owns it, its first response and resolution fall due."""
    now = utcnow()
    received_at = received_at or now
    if received_at > now:
        raise ValidationFailed("A complaint cannot be received in the future.",
                               fields={"received_at": ["Must not be in the future."]})
    task, courier_id = _subject_of(subject, task_id, courier_id)
    complaint = _record(actor=actor, channel=channel, category=category, text=text, subject=subject, task=task,
                        courier_id=courier_id, received_at=received_at, owner_id=actor.id, now=now)
    db.session.commit()
    return complaint


def get(*, complaint_id: int, for_update: bool = False) -> Complaint:
    """One complaint or 404."""
    complaint = db.session.get(Complaint, complaint_id, with_for_update=for_update)
    if complaint is None:
        raise NotFound(f"No complaint {complaint_id}.", code="complaint_not_found")
    return complaint


def get_all(*, actor: Actor, status: str | None = None, courier_id: str | None = None,
            overdue: bool | None = None, category: str | None = None, owner: str | None = None,
            subject: str | None = None, channel: str | None = None, cursor: int | None = None,
            limit: int = 50) -> dict:
    """Complaints newest first, filtered by status, courier, category, subject, channel, owner (a staff id, `me`,
    or `none`: the unowned queue) and whether they are overdue for any reason."""
    query = select(Complaint)
    for column, value in ((Complaint.status, status), (Complaint.courier_id, courier_id),
                          (Complaint.category, category), (Complaint.subject, subject),
                          (Complaint.channel, channel)):
        if value:
            query = query.where(column == value)
    if owner == "none":
        query = query.where(Complaint.owner_id.is_(None))
    elif owner:
        query = query.where(Complaint.owner_id == (actor.id if owner == "me" else owner))
    if overdue is not None:
        condition = overdue_condition(utcnow())
        query = query.where(condition if overdue else not_(condition))
    return newest_first(query, Complaint.id, cursor=cursor, limit=limit)


def _owned_by(complaint: Complaint, actor: Actor, now: datetime) -> None:
    """The actor may act on the complaint: its owner or an overseer; an unowned one becomes theirs (the first to
    answer it received it)."""
    if complaint.owner_id is None:
        _take(complaint, actor, now)
    elif complaint.owner_id != actor.id and actor.role not in OVERSEERS:
        raise Forbidden(f"Complaint {complaint.id} is owned by {complaint.owner_id}; its owner, quality staff or "
                        "an admin act on it.", code="not_complaint_owner")


def _take(complaint: Complaint, actor: Actor, now: datetime) -> None:
    """The actor becomes the unowned complaint's owner; the event says so (audited with the action)."""
    complaint.owner_id, complaint.owned_since = actor.id, now
    events.emit("complaint.taken", str(complaint.id), {
        "complaint_id": complaint.id, "owner_id": actor.id, "taken_at": now.isoformat()})


def take(*, actor: Actor, complaint_id: int) -> Complaint:
    """Take an unowned complaint: the taker owns it. Taking one's own again is answered as is; another's is 409
    complaint_owned (naming the owner). Commits."""
    complaint = get(complaint_id=complaint_id, for_update=True)
    if complaint.owner_id == actor.id:
        return complaint
    if complaint.owner_id is not None:
        raise Conflict(f"Complaint {complaint.id} is owned by {complaint.owner_id}: ask them to hand it over.",
                       code="complaint_owned", extra={"owner_id": complaint.owner_id})
    before = snapshot(complaint)
    _take(complaint, actor, utcnow())
    audit(actor, "complaint.take", complaint, before)
    db.session.commit()
    return complaint


def hand_over(*, actor: Actor, complaint_id: int, to_staff_id: str, reason: str) -> Complaint:
    """Hand the complaint to another active office staff member with the reason; its owner or an admin does (an
    admin also assigns an unowned one). Kept as a handover, audited, complaint.handed_over. Commits."""
    complaint = get(complaint_id=complaint_id, for_update=True)
    if complaint.owner_id != actor.id and actor.role not in HANDOVER_OVERRIDE:
        raise Forbidden("Only the complaint's owner or an admin hands it over.", code="not_complaint_owner")
    if complaint.status == "resolved":
        raise Conflict("A resolved complaint is not handed over (reopen it first).", code="complaint_resolved")
    to = db.session.get(StaffUser, to_staff_id)
    if to is None:
        raise ValidationFailed("No such staff member.", fields={"to_staff_id": [f"No staff member {to_staff_id}."]})
    if not to.active or to.role not in OFFICE:
        raise ValidationFailed("Hand a complaint to an active office staff member.", fields={"to_staff_id": [
            "Not active." if not to.active else f"A {to.role} does not handle complaints."]})
    if to.id == complaint.owner_id:
        raise ValidationFailed("They own it already.", fields={"to_staff_id": ["Already the owner."]})
    before, now = snapshot(complaint), utcnow()
    handover = ComplaintHandover(from_staff_id=complaint.owner_id, to_staff_id=to.id, reason=reason,
                                 handed_over_at=now, handed_over_by=actor.id)
    complaint.handovers.append(handover)
    complaint.owner_id, complaint.owned_since = to.id, now
    audit(actor, "complaint.hand_over", complaint, before)
    events.emit("complaint.handed_over", str(complaint.id), {
        "complaint_id": complaint.id, "from_staff_id": handover.from_staff_id, "to_staff_id": to.id,
        "by": actor.id, "at": now.isoformat()})
    db.session.commit()
    return complaint


def _first_response(complaint: Complaint, actor: Actor, text: str, channel: str | None, at: datetime) -> None:
    """Stamp the complaint's first response: it is the first contact with the customer, kept as one."""
    complaint.first_response_at, complaint.first_response_by, complaint.first_response_text = at, actor.id, text
    if complaint.status == "open":
        complaint.status = "responded"
    complaint.contacts.append(ComplaintContact(kind="first_response", channel=channel, note=text, contacted_at=at,
                                               recorded_by=actor.id))
    _updated(complaint, at)


def respond(*, actor: Actor, complaint_id: int, text: str) -> Complaint:
    """Record the first response to the customer (once); it counts as the first contact. Commits."""
    complaint, now = get(complaint_id=complaint_id, for_update=True), utcnow()
    before = snapshot(complaint)
    _owned_by(complaint, actor, now)
    if complaint.first_response_at is not None:
        raise Conflict("The first response is already recorded.", code="already_responded")
    _first_response(complaint, actor, text, None, now)
    audit(actor, "complaint.respond", complaint, before)
    db.session.commit()
    return complaint


def add_contact(*, actor: Actor, complaint_id: int, channel: str, note: str) -> ComplaintContact:
    """Record a contact with the customer about the complaint (a progress update), dated now; the first one is its
    first response; each one makes the next update due COMPLAINT_UPDATE_HOURS later.

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
    _owned_by(complaint, actor, now)
    if complaint.first_response_at is None:
        _first_response(complaint, actor, note, channel, now)
    else:
        complaint.contacts.append(ComplaintContact(kind="contact", channel=channel, note=note, contacted_at=now,
                                                   recorded_by=actor.id))
        _updated(complaint, now)
    audit(actor, "complaint.contact", complaint, before)
    contact = complaint.contacts[-1]
    db.session.commit()
    return contact


def reopen(*, actor: Actor, complaint_id: int, reason: str) -> Complaint:
    """The customer brings a resolved complaint back: the resolution is kept on the reopening, and the complaint
    is open again until resolved anew (its resolution and the next update fall due again from now, the owner
    keeps it); it can no longer count as resolved at first contact. Commits.

    An upheld complaint's violation stays (voiding one is an appeal's business).
    """
    complaint = get(complaint_id=complaint_id, for_update=True)
    if complaint.status != "resolved":
        raise Conflict(f"Only a resolved complaint is reopened; this one is {complaint.status}.",
                       code="complaint_not_resolved")
    before, now = snapshot(complaint), utcnow()
    complaint.reopenings.append(ComplaintReopening(
        reason=reason, reopened_at=now, reopened_by=actor.id, resolved_at=complaint.resolved_at,
        resolved_by=complaint.resolved_by, outcome=complaint.outcome, resolution_note=complaint.resolution_note,
        resolved_at_first_contact=complaint.resolved_at_first_contact, satisfaction=complaint.satisfaction,
        satisfaction_at=complaint.satisfaction_at))
    complaint.status = "reopened"
    complaint.resolved_at = complaint.resolved_by = complaint.outcome = complaint.resolution_note = None
    complaint.resolved_at_first_contact = complaint.satisfaction = complaint.satisfaction_at = None
    complaint.resolution_due_at = _resolution_due(complaint.category, now)
    _updated(complaint, now)
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
    complaint, now = get(complaint_id=complaint_id, for_update=True), utcnow()
    before = snapshot(complaint)
    _owned_by(complaint, actor, now)
    if complaint.status == "resolved":
        raise Conflict(f"The complaint is already resolved ({complaint.outcome}).", code="complaint_resolved")
    if complaint.first_response_at is None:
        raise RuleViolation("Record the first response to the customer before resolving.",
                            code="response_required")
    complaint.status, complaint.outcome, complaint.resolution_note = "resolved", outcome, note
    complaint.resolved_at, complaint.resolved_by = now, actor.id
    complaint.resolved_at_first_contact = resolved_at_first_contact
    if outcome == "upheld" and complaint.courier_id is not None:  # about a depot, the hotline, the product: none
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
    before = snapshot(complaint)
    _owned_by(complaint, actor, utcnow())
    if complaint.status != "resolved":
        raise RuleViolation("The customer rates the outcome once the complaint is resolved.", code="not_resolved")
    if complaint.satisfaction is not None:
        raise Conflict("The customer's satisfaction is already recorded.", code="satisfaction_recorded")
    complaint.satisfaction, complaint.satisfaction_at = satisfaction, utcnow()
    audit(actor, "complaint.rate", complaint, before)
    db.session.commit()
    return complaint


# --- the customer's own: their pages and their low ratings ---------------------------------------------------

def _photo(actor: Actor, photo: bytes | None) -> str | None:
    """Keep the customer's photo (JPEG or PNG, up to COMPLAINT_PHOTO_LIMIT bytes); its sha256. 422 naming photo."""
    if not photo:
        return None
    limit = current_app.config["COMPLAINT_PHOTO_LIMIT"]
    if len(photo) > limit:
        raise ValidationFailed("The photo is too large.", code="photo_too_large",
                               fields={"photo": [f"At most {limit} bytes."]})
    if attachments.sniff(photo) not in PHOTO_TYPES:
        raise ValidationFailed("The photo is not a JPEG or PNG.", code="photo_unsupported",
                               fields={"photo": ["A JPEG or PNG picture."]})
    sha256 = hashlib.sha256(photo).hexdigest()
    attachments.store(actor=actor, sha256=sha256, data=photo)
    return sha256


def file_for_customer(*, actor: Actor, task_id: str, channel: str, category: str, text: str,
                      subject: str = "courier", photo: bytes | None = None) -> Complaint:
    """The customer files a complaint from their customer or receipt page about the task (its courier, unless they
    name another subject); it waits unowned in the queue until a staff member takes it. Commits.

    COMPLAINT_PAGE_FILINGS per task (429 beyond). The same complaint posted again
    within COMPLAINT_CONTACT_REPEAT_SECONDS (a double click, a resent form) is
    answered with the first one, not recorded twice.
    """
    count_attempt([Budget("complaint_page_filings", "COMPLAINT_PAGE_FILINGS", f"complaint-filing:{task_id}")])
    photo_sha256 = _photo(actor, photo)
    task = tasks.get(task_id=task_id, for_update=True)  # queues the same form posted twice at once
    now = utcnow()
    repeat = now - timedelta(seconds=current_app.config["COMPLAINT_CONTACT_REPEAT_SECONDS"])
    same = db.session.scalar(select(Complaint).where(
        Complaint.task_id == task.id, Complaint.channel == channel, Complaint.category == category,
        Complaint.subject == subject, Complaint.text == text, Complaint.received_at >= repeat))
    if same is not None:
        return same
    courier_id = task.courier_id if subject == "courier" else None
    if subject == "courier" and courier_id is None:
        raise ValidationFailed("No courier has served this order yet.",
                               fields={"subject": ["No courier yet: choose what the complaint is about."]})
    complaint = _record(actor=actor, channel=channel, category=category, text=text, subject=subject, task=task,
                        courier_id=courier_id, received_at=now, owner_id=None, now=now, photo_sha256=photo_sha256)
    db.session.commit()
    return complaint


def for_customer(*, task_id: str) -> list[dict]:
    """The complaints the customer filed about the task from their pages, as the pages show them: the reference,
    what about, and where it stands; no names or notes."""
    rows = db.session.scalars(select(Complaint).where(
        Complaint.task_id == task_id, Complaint.channel.in_(("customer_page", "receipt_page")))
        .order_by(Complaint.id))
    return [{"reference": c.reference, "category": c.category, "subject": c.subject, "received_at": c.received_at,
             "status": "resolved" if c.status == "resolved" else "open" if c.status == "open" else "in_progress"}
            for c in rows]


def follow_up_rating(*, rating: Rating, task: Task) -> Complaint | None:
    """A rating of COMPLAINT_FOLLOWUP_MAX_SCORE or less opens the quality team's follow-up: an unowned complaint
    of channel `rating` with the rating's comment, once per rating (a task has one rating, and its unique key
    decides a race before this runs). Flushes (the rating's caller commits)."""
    if rating.score > current_app.config["COMPLAINT_FOLLOWUP_MAX_SCORE"]:
        return None
    existing = db.session.scalar(select(Complaint).where(Complaint.rating_id == rating.id))
    if existing is not None:
        return existing
    actor = Actor(kind="customer", id=rating.link_id, role="customer")
    text = rating.comment or f"Rated {rating.score} of 5, without a comment."
    subject = "courier" if task.courier_id else "product"
    return _record(actor=actor, channel="rating", category="other", text=text, subject=subject, task=task,
                   courier_id=task.courier_id, received_at=rating.created_at, owner_id=None, now=utcnow(),
                   rating_id=rating.id)

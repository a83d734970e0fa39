"""Customer links: signed, expiring page addresses where a recipient confirms or picks a window."""
import base64
import hashlib
import hmac
import re
from datetime import datetime, time, timedelta, timezone

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update

from server.auth import Actor, Budget, client_key, count_attempt, customer, record_failure
from server.clock import local_zone, utcnow
from server.errors import DomainError, Gone, NotFound, RuleViolation, ValidationFailed
from server.extensions import db
from server.requests import public_url
from server.ids import hash_secret, new_id
from server.models import CustomerLink, Task
from server.services import appointments, handover, privacy, promises, ratings, scans, tasks
from server.services.common import audit, get_or_404

LINK_TOKEN_PREFIX = "foc_"
VIA = "customer_link"
# Depot hours for the slots offered by default: two-hour slots from 09:00 to 21:00 local.
_DEPOT_OPEN, _DEPOT_CLOSE, _SLOT_HOURS = 9, 21, 2
_DEFAULT_ALTERNATIVES = 4
# Appointment states in which the courier has arrived: the page no longer changes the time.
_SETTLED = ("kept", "late")
_SALT = "fieldops.customer-link"
_DIGITS = re.compile(r"[0-9\uff10-\uff19]+")


def _serializer() -> URLSafeSerializer:
    """The signer of link tokens, keyed by the app's SECRET_KEY."""
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _nonce(link_id: str) -> str:
    """The link's nonce: derived from the secret key, so dispatch can fetch the link's QR again later."""
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), f"{_SALT}:{link_id}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def page_url(*, token: str) -> str:
    """The customer page's address for a token: under FIELDOPS_PUBLIC_URL when set, else the request's host."""
    return public_url("customer_page.show", token=token)


def link_token(link: CustomerLink) -> str:
    """The secret token of a link's URL: the link id, its expiry and nonce, signed."""
    return LINK_TOKEN_PREFIX + _serializer().dumps(
        [link.id, int(link.expires_at.timestamp()), _nonce(link.id)])


def _as_utc(value: str | datetime) -> datetime:
    """A stored slot time (ISO text) or a loaded one as an aware UTC datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(timezone.utc)


def _slot(start: datetime, end: datetime) -> dict:
    """A slot as stored: UTC ISO text."""
    return {"start": _as_utc(start).isoformat(), "end": _as_utc(end).isoformat()}


def default_slots(*, task: Task, now: datetime) -> list[dict]:
    """The task's current window, then the next two-hour depot slots of its day and the next, none past."""
    zone = local_zone()
    first_day = task.window_start.astimezone(zone).date()
    starts = [datetime.combine(day, time(hour), zone) for day in (first_day, first_day + timedelta(days=1))
              for hour in range(_DEPOT_OPEN, _DEPOT_CLOSE, _SLOT_HOURS)]
    later = [_slot(start, start + timedelta(hours=_SLOT_HOURS)) for start in starts
             if start >= task.window_end and start > now][:_DEFAULT_ALTERNATIVES]
    return ([_slot(task.window_start, task.window_end)] if task.window_end > now else []) + later


def _check_slots(slots: list[dict], now: datetime) -> None:
    """Offered slots must still lie ahead (the schema has checked each one's order)."""
    fields = {f"slots.{i}.end": ["The slot is already over."] for i, slot in enumerate(slots)
              if slot["end"] <= now}
    if fields:
        raise ValidationFailed("Offer slots that have not ended yet.", fields=fields)


def create(*, actor: Actor, task_id: str, slots: list[dict] | None = None,
           ttl_hours: int | None = None) -> tuple[CustomerLink, str]:
    """Issue a link for an open task (earlier links of the task stop working); returns the row and its token."""
    link = issue(actor=actor, task=tasks.get(task_id=task_id, for_update=True), slots=slots, ttl_hours=ttl_hours)
    db.session.commit()
    return link, link_token(link)


def issue(*, actor: Actor, task: Task, slots: list[dict] | None = None, ttl_hours: int | None = None) -> CustomerLink:
    """Issue a link for an open task already locked (earlier links of the task stop working). Flushes only."""
    if task.is_finished:
        raise RuleViolation(f"Task is {task.status}; a link is for an open task.", code="task_closed")
    now = utcnow()
    if slots is None:
        slots = default_slots(task=task, now=now)
    else:
        _check_slots(slots, now)
        slots = [_slot(slot["start"], slot["end"]) for slot in slots]
    ttl = timedelta(hours=ttl_hours or current_app.config["CUSTOMER_LINK_TTL_HOURS"])
    db.session.execute(update(CustomerLink).where(CustomerLink.task_id == task.id,
                                                  CustomerLink.revoked_at.is_(None)).values(revoked_at=now))
    link = CustomerLink(id=new_id("l"), task_id=task.id, slots=slots, created_at=now, expires_at=now + ttl,
                        created_by=actor.id if actor.kind == "staff" else None)
    link.nonce_hash = hash_secret(_nonce(link.id))
    db.session.add(link)
    audit(actor, "customer_link.create", link, None)
    db.session.flush()
    return link


def live_link(*, task_id: str, at: datetime, lasting: timedelta = timedelta(0)) -> CustomerLink | None:
    """The task's newest link that still works at `at` and for `lasting` after it, if there is one."""
    return db.session.scalar(select(CustomerLink).where(
        CustomerLink.task_id == task_id, CustomerLink.revoked_at.is_(None), CustomerLink.expires_at > at + lasting)
        .order_by(CustomerLink.expires_at.desc()).limit(1))


def get_for_dispatch(*, link_id: str) -> tuple[CustomerLink, str]:
    """A link and its token, for its QR image; only while the link works."""
    link = get_or_404(CustomerLink, link_id, what="customer_link")
    if link.revoked_at is not None or link.expires_at <= utcnow():
        raise Gone("The link has expired or was replaced; issue a new one.", code="link_gone")
    return link, link_token(link)


def live_for(*, task_id: str) -> tuple[CustomerLink, str] | None:
    """The task's link that works now and its token (dispatch shows it again, with its QR), or None."""
    link = db.session.scalar(select(CustomerLink).where(
        CustomerLink.task_id == task_id, CustomerLink.revoked_at.is_(None), CustomerLink.expires_at > utcnow())
        .order_by(CustomerLink.created_at.desc()).limit(1))
    return None if link is None else (link, link_token(link))


def _invalid() -> NotFound:
    """An invalid link: counted against the caller's address (429 once it failed too often), then a 404."""
    record_failure([Budget("customer_link_failures_per_address", "CUSTOMER_LINK_FAILURES_PER_ADDRESS",
                           client_key("customer-link"))], "invalid customer link")
    return NotFound("This link is not valid.", code="link_invalid")


def _verify(token: str) -> tuple[str, str]:
    """(link id, nonce) of a token signed by us; a tampered or foreign token is a 404 (counted, nothing else read)."""
    try:
        payload = _serializer().loads(token.removeprefix(LINK_TOKEN_PREFIX))
    except BadSignature:
        payload = None
    if not (token.startswith(LINK_TOKEN_PREFIX) and isinstance(payload, list) and len(payload) == 3
            and all(isinstance(part, str) for part in payload[::2])):
        raise _invalid()
    return payload[0], payload[2]


def open_link(*, token: str) -> CustomerLink:
    """The live link of a token, counted against its own request budget.

    404 when tampered or unknown (counted against the caller's address: 429 once
    it failed too often, while a valid link from there is still served), 429 when
    the link was asked too often (another link's budget is never touched), 410
    when expired or revoked.
    """
    link_id, nonce = _verify(token)
    count_attempt([Budget("customer_link_requests", "CUSTOMER_LINK_REQUESTS", f"customer-link:{link_id}")])
    link = db.session.get(CustomerLink, link_id)
    if link is None or not hmac.compare_digest(link.nonce_hash, hash_secret(nonce)):
        raise _invalid()
    if link.revoked_at is not None:
        raise Gone("This link was replaced by a newer one.", code="link_revoked")
    if link.expires_at <= utcnow():
        raise Gone("This link has expired.", code="link_expired")
    return link


def masked_address(address: str) -> str:
    """The address with every number (house, building, room) masked; the road and district stay."""
    return _DIGITS.sub("**", address)


def _proposed(appointment) -> tuple[datetime, datetime, bool]:
    """The window the customer is asked to agree, and whether it is a pending proposal (else the current window)."""
    pending = [w for w in appointment.windows if w.status == "proposed"]
    if pending:
        return pending[-1].start, pending[-1].end, True
    return appointment.window_start, appointment.window_end, False


def page(*, link: CustomerLink) -> dict:
    """What the customer page shows: surname, masked address, the proposed window, the open slots."""
    task = db.session.get(Task, link.task_id)
    appointment = appointments.current(task_id=task.id)
    start, end, pending = _proposed(appointment)
    now = utcnow()
    confirmed = appointment.status == "confirmed" and not pending
    slots = [{"index": i, "start": _as_utc(s["start"]), "end": _as_utc(s["end"])} for i, s in enumerate(link.slots)]
    return {"kind": task.kind, "surname": privacy.surname(task.recipient_name), "address": masked_address(task.address),
            "closed": task.is_finished, "status": appointment.status, "arrived": _settled(appointment),
            "confirmed": confirmed,
            # Confirming is offered only where it would be taken (confirm's own check).
            "confirmable": not confirmed and _confirm_refusal(appointment, now) is None,
            "missed": appointment.status == "missed" and not pending,
            "proposed": {"start": start, "end": end},
            "slots": [s for s in slots if s["start"] > now and (s["start"], s["end"]) != (start, end)],
            "expires_at": link.expires_at,
            # The handover PIN the courier will ask for (never logged; only this page shows it).
            "pin": None if task.is_finished else handover.pin_for_customer(task),
            # Delivery elsewhere (locker, station, neighbour): what the customer has consented to, if anything.
            "alternate": task.kind != "pickup", "consent": handover.consent_for_customer(task),
            # After the handover the page asks for a rating, once; a given one is shown instead.
            "rateable": ratings.rateable(task), "rating": _score(task),
            # The parcel's journey (events and times only) and its promise where the task has one: when, and
            # whether it was kept, missed, or has passed with the parcel still on its way.
            "journey": scans.for_customer(task=task),
            "promised_at": task.promised_at, "promise_state": _promise_state(task)}


def _promise_state(task) -> str | None:
    """What the customer is told of the promise: kept, missed (delivered late) or breached (past, not delivered);
    nothing while it stands or when no promise was failed (refused, cancelled)."""
    promise = promises.view(task)
    state = promise["state"] if promise else None
    return state if state in ("kept", "missed", "breached") else None


def _score(task: Task) -> int | None:
    """The score the customer gave the task, if any."""
    rating = ratings.for_task(task_id=task.id) if ratings.rateable(task) else None
    return rating.score if rating else None


def _settled(appointment) -> bool:
    """Whether the courier has arrived for the current window (kept or late, or an arrival under dispatch's review)."""
    return appointment.status in _SETTLED or appointment.arrived_at is not None


def _changeable(task_id: str):
    """The task's appointment, if the courier has not arrived yet (else the time is settled: 422)."""
    appointment = appointments.current(task_id=task_id)
    if _settled(appointment):
        raise RuleViolation("The courier has already arrived.", code="appointment_settled")
    return appointment


def _confirm_refusal(appointment, now: datetime) -> DomainError | None:
    """Why the customer cannot confirm the window on offer now, if they cannot.

    Not once the courier has arrived; not the window of a missed appointment (it is
    over, or the visit it promised did not happen: a new window is to be agreed,
    and confirming the courier's proposal of one is offered again); not a window
    the appointment rules would refuse (one already over).
    """
    start, end, pending = _proposed(appointment)
    if _settled(appointment):
        return RuleViolation("The courier has already arrived.", code="appointment_settled")
    if appointment.status == "missed" and not pending:
        return RuleViolation("The courier missed this time; a new one is to be agreed.", code="appointment_missed")
    if not appointments.agreeable(start=start, end=end, at=now):
        return RuleViolation("This time is over; pick another one.", code="window_over")
    return None


def confirm(*, link: CustomerLink) -> None:
    """The customer agrees to the proposed window."""
    appointment = appointments.current(task_id=link.task_id)
    refusal = _confirm_refusal(appointment, utcnow())
    if refusal is not None:
        raise refusal
    start, end, _pending = _proposed(appointment)
    appointments.confirm(actor=customer(link.id), task_id=link.task_id, start=start, end=end, via=VIA)


def choose_slot(*, link: CustomerLink, index: int) -> None:
    """The customer picks one of the offered slots: a new window they agreed to."""
    if not 0 <= index < len(link.slots):
        raise ValidationFailed("No such slot.", fields={"slot": ["Not one of the offered slots."]})
    _changeable(link.task_id)
    start, end = _as_utc(link.slots[index]["start"]), _as_utc(link.slots[index]["end"])
    if start <= utcnow():
        raise RuleViolation("That slot has already begun; pick a later one.", code="slot_past")
    appointments.reschedule(actor=customer(link.id), task_id=link.task_id, start=start, end=end,
                            reason="chosen by the customer on the confirmation page", customer_agreed=True,
                            via=VIA)


def leave_instructions(*, link: CustomerLink, text: str) -> None:
    """The customer's delivery instructions, as a note on the task (the courier's handheld pulls it)."""
    task = tasks.get(task_id=link.task_id, for_update=True)
    if task.is_finished:
        raise RuleViolation(f"Task is {task.status}.", code="task_closed")
    tasks.add_note(actor=customer(link.id), task=task, text=text, photos=[])
    db.session.commit()


def consent(*, link: CustomerLink, place: str, note: str) -> None:
    """The customer consents to delivery at an alternate place (the courier's handheld pulls it)."""
    handover.record_consent(actor=customer(link.id), task_id=link.task_id, place=place, note=note or None)


def withdraw_consent(*, link: CustomerLink) -> None:
    """The customer takes back their consent to an alternate place, before delivery."""
    handover.withdraw_consent(actor=customer(link.id), task_id=link.task_id)


def rate(*, link: CustomerLink, score: int, comment: str) -> None:
    """The customer rates the handover (once per task)."""
    ratings.rate(actor=customer(link.id), task_id=link.task_id, score=score, comment=comment)

"""Messages to customers: events told to a task's recipient by SMS, through an HTTP gateway, until they land.

The `customer-messages` job reads the event feed from where it last stopped
(the message_feed row, locked while it moves) and makes at most one message per
event (event_id is unique): rendered from the template files
server/templates/messages/<kind>.<lang>.txt in the recipient's language
(Chinese unless they chose English on their page). A message that must not go
out is kept `suppressed` with its reason: over the per-phone daily cap, no phone,
a redacted task, out for delivery already told that day, a proposal with no link.
Without a gateway it is `recorded`; in the quiet hours it is `held_quiet`
until they end; otherwise `queued`.

Sending is the webhooks' pattern: claim one due message with a lease, commit,
POST it (server.outbound: the webhooks' forbidden networks and timeouts)
signed as Standard Webhooks with FIELDOPS_SMS_GATEWAY_SECRET, then keep the
outcome only if the claim still stands; a failure waits a jittered backoff,
and the last allowed attempt makes it dead. The recipient's phone goes to the
gateway and into the row; it is never logged.
"""
import logging
import secrets
import time
from datetime import date, datetime, timedelta, timezone

import orjson
import standardwebhooks
from flask import current_app, render_template
from sqlalchemy import func, or_, select
from sqlalchemy import update as sql_update

from schemas.vocab import MESSAGE_KINDS
from server import outbound
from server.auth import SYSTEM
from server.clock import local_date, local_zone, utcnow
from server.errors import NotFound
from server.extensions import db
from server.models import CustomerLanguage, CustomerMessage, Event, MessageFeed, Task
from server.names import phone_key
from server.services import customer_links, events, privacy, receipts, tasks
from server.services.common import own_transaction, send_due

log = logging.getLogger(__name__)

FEED = "customer-messages"
FEED_CHUNK = 500
FEED_CHUNKS_PER_RUN = 10  # a feed back from a long pause catches up 5,000 events a run
# An event older than this when the job first reads it is history (the scheduler was down): nobody is texted
# about yesterday's van.
STALE_AFTER = timedelta(hours=24)
# A customer link handed out in a message works at least this long, else a fresh one is issued.
LINK_LEFT = timedelta(hours=12)
_KIND_OF_EVENT = {"appointment.proposed": "appointment_proposed", "appointment.confirmed": "appointment_confirmed",
                  "appointment.rescheduled": "appointment_confirmed", "appointment.late_notice": "courier_late",
                  "task.out_for_delivery": "out_for_delivery", "task.delivered": "delivered",
                  "task.refused": "refused", "claim.decided": None}
_CLAIM_KINDS = {"approved": "claim_approved", "rejected": "claim_rejected"}
_SENDABLE = ("queued", "held_quiet", "failed")
LANGUAGES = ("zh", "en")


# ---- the recipient's language

def remember_language(*, task_id: str, language: str) -> None:
    """Keep the language a task's recipient chose on their page; later messages use it.

    Written in a short transaction of its own after the page (a read) was built;
    a database that cannot write loses the choice, logged, and the page is served.
    """
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}")
    chosen = db.session.get(CustomerLanguage, task_id)
    if chosen is not None and chosen.language == language:
        return
    with own_transaction("the customer's language", log):
        chosen = db.session.get(CustomerLanguage, task_id, with_for_update=True)
        if chosen is None:
            db.session.add(CustomerLanguage(task_id=task_id, language=language, chosen_at=utcnow()))
        else:
            chosen.language, chosen.chosen_at = language, utcnow()


def language_of(task_id: str) -> str:
    """The recipient's language: their choice, else Chinese."""
    chosen = db.session.get(CustomerLanguage, task_id)
    return chosen.language if chosen is not None else "zh"


# ---- quiet hours

def quiet_until(at: datetime) -> datetime:
    """The first moment at or after `at` outside the quiet hours (depot time); `at` itself when not quiet."""
    quiet = current_app.config["SMS_QUIET_HOURS"]
    if quiet is None:
        return at
    local = at.astimezone(local_zone())
    moment = local.time()
    if quiet.start < quiet.end:
        inside, end_day = quiet.start <= moment < quiet.end, local.date()
    else:  # past midnight: 21:00-08:00
        inside = moment >= quiet.start or moment < quiet.end
        end_day = local.date() + timedelta(days=1) if moment >= quiet.start else local.date()
    if not inside:
        return at
    return datetime.combine(end_day, quiet.end, local_zone()).astimezone(timezone.utc)


# ---- making messages from events

def _window_text(start: datetime, end: datetime, language: str) -> str:
    """A window in the depot's time, as a text message says it."""
    zone = local_zone()
    start, end = start.astimezone(zone), end.astimezone(zone)
    if language == "zh":
        return f"{start.month}月{start.day}日 {start:%H:%M}-{end:%H:%M}"
    return f"{start:%a %d %b} {start:%H:%M}-{end:%H:%M}"


def _moment_text(at: datetime, language: str) -> str:
    """A time of day in the depot's zone."""
    return f"{at.astimezone(local_zone()):%H:%M}"


def _link_url(task: Task, now: datetime) -> str | None:
    """The customer page of a task: its live link when it works long enough, else a fresh one; None once finished."""
    link = customer_links.live_link(task_id=task.id, at=now, lasting=LINK_LEFT)
    if link is None:
        if task.is_finished:
            return None
        link = customer_links.issue(actor=SYSTEM, task=tasks.get(task_id=task.id, for_update=True))
    return customer_links.page_url(token=customer_links.link_token(link))


def _receipt_url(number: str | None) -> str | None:
    """The public page of a receipt, by its number."""
    if not number:
        return None
    try:
        return receipts.staff_url(receipts.get(number=number))
    except NotFound:
        return None


def _context(kind: str, data: dict, task: Task, language: str, now: datetime) -> dict:
    """What a template may say: the waybill, and the event's own facts in the recipient's words."""
    context = {"waybill_no": task.waybill_no}
    if "window_start" in data:
        context["window"] = _window_text(datetime.fromisoformat(data["window_start"]),
                                         datetime.fromisoformat(data["window_end"]), language)
    if kind == "courier_late":
        context["eta"] = _moment_text(datetime.fromisoformat(data["eta"]), language)
    if kind in ("delivered", "refused"):
        context["receipt_url"] = _receipt_url(data.get("receipt_number"))
    if kind == "claim_approved":
        context["amount"] = f"{data.get('amount', 0) / 100:.2f}"
    return context


def render(*, kind: str, language: str, **context) -> str:
    """A message's text from its template file (server/templates/messages/<kind>.<language>.txt)."""
    if kind not in MESSAGE_KINDS or language not in LANGUAGES:
        raise ValueError(f"no template for {kind}.{language}")
    return render_template(f"messages/{kind}.{language}.txt", **context).strip()


def _kind(event: Event) -> str | None:
    """The message an event makes, if any (a claim only for its approval or rejection)."""
    if event.type == "claim.decided":
        return _CLAIM_KINDS.get(event.data.get("decision"))
    return _KIND_OF_EVENT.get(event.type)


def _sent_today(*, phone: str, day: date) -> int:
    """Messages to this phone, however it was written (names.phone_key), made on this depot day and not
    suppressed (the cap counts them)."""
    key = phone_key(phone)
    # Narrowed in SQL to phones holding its last four digits in order (separators may fall between them).
    near = CustomerMessage.to_phone.like("%" + "%".join(key[-4:]) + "%")
    return sum(phone_key(to) == key for to in db.session.scalars(select(CustomerMessage.to_phone).where(
        near, CustomerMessage.local_day == day, CustomerMessage.status != "suppressed")))


def _told_today(*, task_id: str, kind: str, day: date) -> bool:
    """Whether the task's recipient was already given this kind of message this depot day."""
    return db.session.scalar(select(func.count()).select_from(CustomerMessage).where(
        CustomerMessage.task_id == task_id, CustomerMessage.kind == kind, CustomerMessage.local_day == day,
        CustomerMessage.status != "suppressed")) > 0


def _suppression(task: Task, kind: str, day: date) -> str | None:
    """Why this message must not go out, if it must not."""
    if task.redacted_at is not None:
        return "redacted"
    if not task.recipient_phone:
        return "no_phone"
    if kind == "out_for_delivery" and _told_today(task_id=task.id, kind=kind, day=day):
        return "already_told_today"
    if _sent_today(phone=task.recipient_phone, day=day) >= current_app.config["SMS_PER_CUSTOMER_DAY"]:
        return "daily_cap"
    return None


def _make(event: Event, kind: str, now: datetime) -> CustomerMessage | None:
    """The message of one event (flushed), or None when its task is gone or the event is history."""
    task = db.session.get(Task, event.data.get("task_id") or event.subject_id)
    if task is None or event.occurred_at < now - STALE_AFTER:
        return None
    language, day = language_of(task.id), local_date(now)
    reason = _suppression(task, kind, day)
    context = _context(kind, event.data, task, language, now)
    if kind == "appointment_proposed":
        context["link_url"] = _link_url(task, now) if reason is None else None
        if context["link_url"] is None and reason is None:
            reason = "no_link"
    if reason is not None:
        status, due = "suppressed", None
    elif not current_app.config["SMS_GATEWAY_URL"]:
        status, due = "recorded", None
    else:
        due = quiet_until(now)
        status = "held_quiet" if due > now else "queued"
    message = CustomerMessage(
        task_id=task.id, event_id=event.id, kind=kind, language=language,
        text=render(kind=kind, language=language, **context)[:1000],
        to_phone=task.recipient_phone or None if task.redacted_at is None else None, local_day=day, status=status,
        reason=reason, attempts=0, next_attempt_at=due, created_at=now, updated_at=now)
    db.session.add(message)
    db.session.flush()
    return message


def _feed_row() -> MessageFeed:
    """The feed's position, locked (made at 0 when missing: the migration makes it at the newest event)."""
    query = select(MessageFeed).where(MessageFeed.name == FEED).execution_options(populate_existing=True)
    row = db.session.scalar(query.with_for_update())
    if row is None:
        db.session.add(MessageFeed(name=FEED, position=0))
        db.session.flush()
        row = db.session.scalar(query.with_for_update())
    return row


def make_due(*, now: datetime) -> dict:
    """Turn the events the feed has not yet read into messages, a chunk at a time up to the newest (at most
    FEED_CHUNKS_PER_RUN chunks a run). Commits."""
    feed = _feed_row()
    newest = events.newest_position()
    counts, chunks = {"made": 0, "suppressed": 0}, 0
    while feed.position < newest and chunks < FEED_CHUNKS_PER_RUN:
        chunks += 1
        batch = list(db.session.scalars(
            select(Event).where(Event.position > feed.position, Event.position <= newest,
                                Event.type.in_(list(_KIND_OF_EVENT)))
            .order_by(Event.position).limit(FEED_CHUNK)))
        known = set(db.session.scalars(select(CustomerMessage.event_id).where(
            CustomerMessage.event_id.in_([e.id for e in batch])))) if batch else set()
        for event in batch:
            kind = _kind(event)
            if kind is None or event.id in known:
                continue
            message = _make(event, kind, now)
            if message is not None:
                counts["suppressed" if message.status == "suppressed" else "made"] += 1
        feed.position = batch[-1].position if len(batch) == FEED_CHUNK else newest
        db.session.flush()
    db.session.commit()
    return counts


# ---- sending

def _hold_for_quiet(now: datetime) -> int:
    """In the quiet hours nothing is sent: due messages wait (held_quiet) until they end; how many. Commits."""
    until = quiet_until(now)
    if until == now:
        return 0
    held = db.session.execute(sql_update(CustomerMessage).where(
        CustomerMessage.status.in_(_SENDABLE), CustomerMessage.next_attempt_at <= until,
        or_(CustomerMessage.claimed_until.is_(None), CustomerMessage.claimed_until <= now))
        .values(status="held_quiet", next_attempt_at=until, updated_at=now)).rowcount
    db.session.commit()
    return held


def _claim(due_by: datetime, at: datetime, tried: set[int]) -> dict | None:
    """Claim the next due message for this worker; what sending it needs. Commits."""
    # Called outside the quiet hours only: a message held for them is due now whatever its time said (the hours
    # ended, or were changed or turned off since).
    query = (select(CustomerMessage.id)
             .where(CustomerMessage.status.in_(_SENDABLE),
                    or_(CustomerMessage.next_attempt_at <= due_by, CustomerMessage.status == "held_quiet"),
                    or_(CustomerMessage.claimed_until.is_(None), CustomerMessage.claimed_until <= at))
             .order_by(CustomerMessage.next_attempt_at, CustomerMessage.id).limit(1))
    if tried:
        query = query.where(CustomerMessage.id.not_in(tried))
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    message_id = db.session.scalar(query)
    if message_id is None:
        db.session.commit()
        return None
    token = secrets.token_hex(8)
    db.session.execute(sql_update(CustomerMessage).where(CustomerMessage.id == message_id).values(
        claim_token=token, claimed_until=at + timedelta(seconds=current_app.config["WEBHOOK_CLAIM_SECONDS"])))
    row = db.session.execute(select(CustomerMessage.attempts, CustomerMessage.to_phone, CustomerMessage.text,
                                    CustomerMessage.kind, CustomerMessage.language)
                             .where(CustomerMessage.id == message_id)).one()
    db.session.commit()
    return {"id": message_id, "token": token, **row._asdict()}


def message_key(message_id: int) -> str:
    """A message's id towards the gateway (webhook-id): the same on every attempt, for its de-duplication."""
    return f"fieldops-message-{message_id}"


def _send(claim: dict) -> outbound.Answer:
    """Sign and POST one claimed message to the gateway (no database work here)."""
    config = current_app.config
    key = message_key(claim["id"])
    body = orjson.dumps({"id": key, "to": claim["to_phone"], "text": claim["text"], "language": claim["language"],
                         "kind": claim["kind"]})
    headers = {"content-type": "application/json", "user-agent": "Fieldops-SMS/1", "webhook-id": key}
    if config["SMS_GATEWAY_KEY"]:
        headers["authorization"] = f"Bearer {config['SMS_GATEWAY_KEY']}"
    if config["SMS_GATEWAY_SECRET"]:
        sent_at = utcnow()
        headers["webhook-timestamp"] = str(int(sent_at.timestamp()))
        headers["webhook-signature"] = standardwebhooks.Webhook(config["SMS_GATEWAY_SECRET"]).sign(
            key, sent_at, body.decode())
    return outbound.post(config["SMS_GATEWAY_URL"], body, headers, forbidden=config["WEBHOOK_FORBIDDEN_NETWORKS"],
                         connect_timeout=config["WEBHOOK_CONNECT_TIMEOUT_SECONDS"],
                         read_timeout=config["WEBHOOK_READ_TIMEOUT_SECONDS"])


def _provider_id(body: bytes) -> str | None:
    """The gateway's id of the message, when its answer is a JSON object naming one (id or message_id)."""
    try:
        answer = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(answer, dict):
        return None
    value = answer.get("id") or answer.get("message_id")
    return str(value)[:100] if isinstance(value, (str, int)) else None


def _record(claim: dict, answer: outbound.Answer, at: datetime) -> str | None:
    """Keep the attempt's outcome if the claim still stands; the message's new status. Commits."""
    config = current_app.config
    attempts = claim["attempts"] + 1
    values = {"attempts": attempts, "last_attempt_at": at, "last_status_code": answer.status,
              "last_error": answer.error, "claim_token": None, "claimed_until": None, "updated_at": at}
    if answer.ok:
        values.update(status="sent", sent_at=at, next_attempt_at=None, provider_id=_provider_id(answer.body))
    elif attempts >= config["SMS_MAX_ATTEMPTS"]:
        values.update(status="dead", next_attempt_at=None)
    else:
        wait = outbound.retry_wait(attempts, base=config["SMS_BACKOFF_BASE_SECONDS"],
                                   most=config["SMS_BACKOFF_MAX_SECONDS"])
        values.update(status="failed", next_attempt_at=quiet_until(at + timedelta(seconds=wait)))
    kept = db.session.execute(sql_update(CustomerMessage).where(
        CustomerMessage.id == claim["id"], CustomerMessage.claim_token == claim["token"]).values(**values)).rowcount
    db.session.commit()
    if not kept:
        log.warning("message claim lost before the outcome was kept", extra={"message_id": claim["id"]})
        return None
    return values["status"]


def deliver_due(*, now: datetime | None = None) -> dict:
    """The `customer-messages` job: new events become messages, then every due message is sent once. Commits.

    Without a gateway nothing is sent; in the quiet hours due messages are held
    until they end. A run sends at most WEBHOOK_MAX_PER_RUN.
    """
    now = now or utcnow()
    started = time.monotonic()
    counts = {**make_due(now=now), "held_quiet": 0, "sent": 0, "failed": 0, "dead": 0}
    if not current_app.config["SMS_GATEWAY_URL"]:
        return counts
    counts["held_quiet"] = _hold_for_quiet(now)
    if quiet_until(now) > now:
        return counts

    def outcome(claim: dict, answer, status: str | None) -> None:
        counts["sent" if status == "sent" else "dead" if status == "dead" else "failed"] += 1
        if not answer.ok:
            log.info("message attempt failed", extra={"message_id": claim["id"], "status_code": answer.status,
                                                      "error": answer.error})

    send_due(now=now, started=started, claim=_claim, send=_send, record=_record, outcome=outcome)
    return counts


# ---- reading

def for_task(*, task_id: str) -> list[dict]:
    """A task's messages and their delivery, oldest first, the phone masked (the API and the task page show this)."""
    tasks.get(task_id=task_id)
    rows = db.session.scalars(select(CustomerMessage).where(CustomerMessage.task_id == task_id)
                              .order_by(CustomerMessage.id))
    return [{"id": m.id, "task_id": m.task_id, "event_id": m.event_id, "kind": m.kind, "language": m.language,
             "text": m.text, "to_phone": privacy.mask_phone(m.to_phone) if m.to_phone else None,
             "status": m.status, "reason": m.reason, "attempts": m.attempts, "next_attempt_at": m.next_attempt_at,
             "last_attempt_at": m.last_attempt_at, "last_status_code": m.last_status_code,
             "last_error": m.last_error, "provider_id": m.provider_id, "sent_at": m.sent_at,
             "created_at": m.created_at} for m in rows]


def waybill_of(*, task_id: str) -> str:
    """The waybill a page of the task's messages is headed with."""
    return tasks.get(task_id=task_id).waybill_no

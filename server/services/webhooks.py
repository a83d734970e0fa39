"""Webhook subscriptions and the outbox: each event a subscription wants becomes a delivery, sent until it lands.

Delivery follows Standard Webhooks (the `standardwebhooks` package signs):
`webhook-id` is the event's id (the same on every retry, for the receiver's
de-duplication), `webhook-timestamp` the sending time, `webhook-signature`
the HMAC of both and the body with the subscription's secret. A failed
attempt is retried after a random wait up to an exponentially growing bound
(full jitter); after WEBHOOK_MAX_ATTEMPTS the delivery is dead until an admin
replays it.

Workers claim one due delivery at a time (FOR UPDATE SKIP LOCKED on
PostgreSQL; SQLite has one writer anyway) with a lease, commit, make the HTTP
call outside any transaction, then record the outcome only if their claim
still stands. A worker that dies leaves a claim that expires after
WEBHOOK_CLAIM_SECONDS, so one delivery is never sent by two workers at once
while the lease lasts (it outlasts the connect and read timeouts).
"""
import base64
import logging
import secrets
import time
from datetime import datetime, timedelta

import orjson
import standardwebhooks
from flask import current_app
from sqlalchemy import insert, or_, select
from sqlalchemy import update as sql_update

from server import metrics, outbound, sealing
from server.auth import Actor
from server.clock import utcnow
from server.errors import Conflict, NotFound
from server.extensions import db
from server.ids import new_id
from server.models import Event, WebhookDelivery, WebhookSubscription
from server.services import events
from server.services.common import audit, newest_first, paginate, send_due, snapshot

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
FAN_OUT_CHUNK = 1000
FAN_OUT_CHUNKS_PER_RUN = 10  # a subscription back from a long pause catches up 10,000 events a run
_SEALING_PURPOSE = "fieldops webhook secret sealing"  # the key derivation's info: changing it loses every secret


def seal(secret: str, subscription_id: str) -> str:
    """Encrypt a signing secret for the database, bound to its subscription (server.sealing)."""
    return sealing.seal(secret, purpose=_SEALING_PURPOSE, bound_to=subscription_id)


def unseal(sealed: str, subscription_id: str) -> str:
    """The signing secret; ValueError if it cannot be opened (SECRET_KEY changed: rotate the secret)."""
    try:
        return sealing.unseal(sealed, purpose=_SEALING_PURPOSE, bound_to=subscription_id)
    except ValueError:
        raise ValueError("the signing secret cannot be unsealed (FIELDOPS_SECRET_KEY changed?): rotate it") from None


def _new_secret() -> str:
    """A fresh signing secret, as Standard Webhooks writes them: whsec_ + base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _types(event_types: list[str]) -> list[str]:
    """The stored list: ["*"] alone, or the named types sorted and once each."""
    return ["*"] if "*" in event_types else sorted(set(event_types))


def create(*, actor: Actor, url: str, event_types: list[str], description: str | None = None
           ) -> tuple[WebhookSubscription, str]:
    """Subscribe a URL to event types; it receives events from now on. Returns the secret, shown this once."""
    subscription_id, secret = new_id("w"), _new_secret()
    now = utcnow()
    subscription = WebhookSubscription(
        id=subscription_id, url=url, event_types=_types(event_types), description=description, active=True,
        secret_sealed=seal(secret, subscription_id), fanned_out_to=events.newest_position(),
        created_by=actor.id if actor.kind == "staff" else None, created_at=now, updated_at=now)
    db.session.add(subscription)
    audit(actor, "webhook.create", subscription, None)
    db.session.commit()
    return subscription, secret


def get(*, subscription_id: str, for_update: bool = False) -> WebhookSubscription:
    """One subscription or 404."""
    subscription = db.session.get(WebhookSubscription, subscription_id, with_for_update=for_update)
    if subscription is None:
        raise NotFound(f"No webhook subscription {subscription_id}.", code="webhook_not_found")
    return subscription


def get_all(*, cursor: str | None, limit: int) -> dict:
    """Subscriptions in creation order."""
    return paginate(select(WebhookSubscription), WebhookSubscription.id, cursor=cursor, limit=limit)


def update(*, actor: Actor, subscription_id: str, changes: dict) -> WebhookSubscription:
    """Change the URL, the event types, the description or whether it is active. Commits.

    Deliveries already made keep going to the URL as it is when they are sent;
    new event types apply to events from now on.
    """
    subscription = get(subscription_id=subscription_id, for_update=True)
    before = snapshot(subscription)
    if "event_types" in changes:
        changes = {**changes, "event_types": _types(changes["event_types"])}
        if changes["event_types"] != subscription.event_types:
            # Events until now go out under the old types (none is lost); the new types count from here.
            _fan_out_one(subscription, events.newest_position(), utcnow())
    for key, value in changes.items():
        setattr(subscription, key, value)
    subscription.updated_at = utcnow()
    audit(actor, "webhook.update", subscription, before)
    db.session.commit()
    return subscription


def rotate_secret(*, actor: Actor, subscription_id: str) -> tuple[WebhookSubscription, str]:
    """A new signing secret from the next attempt on; returned this once. Commits."""
    subscription = get(subscription_id=subscription_id, for_update=True)
    before = snapshot(subscription)
    secret = _new_secret()
    subscription.secret_sealed = seal(secret, subscription.id)
    subscription.secret_rotated_at = subscription.updated_at = utcnow()
    audit(actor, "webhook.rotate_secret", subscription, before)
    db.session.commit()
    return subscription, secret


def delete(*, actor: Actor, subscription_id: str) -> None:
    """Remove a subscription and its delivery log. Commits."""
    subscription = get(subscription_id=subscription_id, for_update=True)
    audit(actor, "webhook.delete", subscription, snapshot(subscription))
    db.session.execute(WebhookDelivery.__table__.delete().where(WebhookDelivery.subscription_id == subscription.id))
    db.session.delete(subscription)
    db.session.commit()


def deliveries(*, subscription_id: str, status: str | None, cursor: int | None, limit: int) -> dict:
    """A subscription's delivery log, newest first (with each delivery's event id and type)."""
    get(subscription_id=subscription_id)
    query = (select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id))
    if status:
        query = query.where(WebhookDelivery.status == status)
    page = newest_first(query, WebhookDelivery.id, cursor=cursor, limit=limit)
    _attach_events(page["items"])
    return page


def _attach_events(rows: list[WebhookDelivery]) -> None:
    """Give deliveries their event's id and type, in one query."""
    positions = {row.event_position for row in rows}
    found = {e.position: e for e in db.session.execute(
        select(Event.position, Event.id, Event.type).where(Event.position.in_(positions)))} if positions else {}
    for row in rows:
        event = found.get(row.event_position)
        row.event_id, row.event_type = (event.id, event.type) if event else (None, None)


def replay(*, actor: Actor, subscription_id: str, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again (dead, delivered or pending) with a fresh attempt budget, now. Commits."""
    get(subscription_id=subscription_id)
    delivery = db.session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.subscription_id != subscription_id:
        raise NotFound(f"No delivery {delivery_id} for this subscription.", code="delivery_not_found")
    now = utcnow()
    if delivery.claimed_until is not None and delivery.claimed_until > now:
        raise Conflict("The delivery is being sent right now; replay it once the attempt is over.",
                       code="delivery_in_flight", headers={"Retry-After": "5"})
    before = snapshot(delivery)
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, now
    delivery.updated_at = now
    audit(actor, "webhook.replay", delivery, before)
    db.session.commit()
    _attach_events([delivery])
    return delivery


def _fan_out(now: datetime) -> int:
    """Make the deliveries of events each active subscription has not yet seen; how many. Commits.

    Each subscription row is locked while its events are fanned out (SKIP
    LOCKED: a subscription another worker is on is left to it), and its
    position moves to the newest event read, which the event feed's rule makes safe.
    """
    newest = events.newest_position()
    query = (select(WebhookSubscription).where(WebhookSubscription.active.is_(True),
                                               WebhookSubscription.fanned_out_to < newest)
             .order_by(WebhookSubscription.id).execution_options(populate_existing=True))
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    made = sum(_fan_out_one(subscription, newest, now, max_chunks=FAN_OUT_CHUNKS_PER_RUN)
               for subscription in list(db.session.scalars(query)))
    db.session.commit()
    return made


def _fan_out_one(subscription: WebhookSubscription, newest: int, now: datetime, max_chunks: int | None = None) -> int:
    """Make a locked subscription's deliveries of the events it wants up to `newest` (or a number of chunks).

    Returns how many; flushes only.
    """
    made, chunks = 0, 0
    while subscription.fanned_out_to < newest and (max_chunks is None or chunks < max_chunks):
        chunks += 1
        wanted = select(Event.position).where(Event.position > subscription.fanned_out_to, Event.position <= newest)
        if "*" not in subscription.event_types:
            wanted = wanted.where(Event.type.in_(subscription.event_types))
        positions = list(db.session.scalars(wanted.order_by(Event.position).limit(FAN_OUT_CHUNK)))
        if positions:
            db.session.execute(insert(WebhookDelivery.__table__), [
                {"subscription_id": subscription.id, "event_position": position, "status": "pending", "attempts": 0,
                 "next_attempt_at": now, "created_at": now, "updated_at": now} for position in positions])
        subscription.fanned_out_to = positions[-1] if len(positions) == FAN_OUT_CHUNK else newest
        db.session.flush()
        made += len(positions)
    return made


def _claim(due_by: datetime, at: datetime, tried: set[int]) -> dict | None:
    """Claim the next due delivery of an active subscription for this worker; what sending it needs. Commits."""
    query = (select(WebhookDelivery.id)
             .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
             .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= due_by,
                    or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until <= at),
                    WebhookSubscription.active.is_(True))
             .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(1))
    if tried:
        query = query.where(WebhookDelivery.id.not_in(tried))
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=WebhookDelivery, skip_locked=True)
    delivery_id = db.session.scalar(query)
    if delivery_id is None:
        db.session.commit()
        return None
    token = secrets.token_hex(8)
    db.session.execute(sql_update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
        claim_token=token, claimed_until=at + timedelta(seconds=current_app.config["WEBHOOK_CLAIM_SECONDS"])))
    row = db.session.execute(
        select(WebhookDelivery.attempts, WebhookSubscription.id.label("subscription_id"), WebhookSubscription.url,
               WebhookSubscription.secret_sealed, Event.id.label("event_id"), Event.type, Event.occurred_at,
               Event.data)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(Event, Event.position == WebhookDelivery.event_position)
        .where(WebhookDelivery.id == delivery_id)).one()
    db.session.commit()
    return {"id": delivery_id, "token": token, **row._asdict()}


def body_of(event_type: str, event_id: str, occurred_at: datetime, data: dict) -> bytes:
    """The JSON body of an event's webhook, the same bytes on every attempt."""
    return orjson.dumps({"id": event_id, "type": event_type, "timestamp": occurred_at.isoformat(), "data": data})


def _send(claim: dict) -> outbound.Answer:
    """Sign and POST one claimed delivery (no database work here)."""
    try:
        secret = unseal(claim["secret_sealed"], claim["subscription_id"])
    except ValueError as exc:
        return outbound.Answer(None, str(exc))
    body = body_of(claim["type"], claim["event_id"], claim["occurred_at"], claim["data"])
    sent_at = utcnow()
    signature = standardwebhooks.Webhook(secret).sign(claim["event_id"], sent_at, body.decode())
    headers = {"content-type": "application/json", "user-agent": "Fieldops-Webhooks/1",
               "webhook-id": claim["event_id"], "webhook-timestamp": str(int(sent_at.timestamp())),
               "webhook-signature": signature}
    config = current_app.config
    return outbound.post(claim["url"], body, headers, forbidden=config["WEBHOOK_FORBIDDEN_NETWORKS"],
                         connect_timeout=config["WEBHOOK_CONNECT_TIMEOUT_SECONDS"],
                         read_timeout=config["WEBHOOK_READ_TIMEOUT_SECONDS"])


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: full jitter under an exponential bound."""
    config = current_app.config
    return outbound.retry_wait(attempts, base=config["WEBHOOK_BACKOFF_BASE_SECONDS"],
                               most=config["WEBHOOK_BACKOFF_MAX_SECONDS"])


def _record(claim: dict, answer: outbound.Answer, at: datetime) -> str | None:
    """Keep the attempt's outcome if the claim still stands; the delivery's new status. Commits."""
    attempts = claim["attempts"] + 1
    values = {"attempts": attempts, "last_attempt_at": at, "last_status_code": answer.status,
              "last_error": answer.error, "claim_token": None, "claimed_until": None, "updated_at": at}
    if answer.ok:
        values.update(status="delivered", delivered_at=at)
    elif attempts >= current_app.config["WEBHOOK_MAX_ATTEMPTS"]:
        values.update(status="dead")
    else:
        values.update(next_attempt_at=at + timedelta(seconds=backoff(attempts)))
    kept = db.session.execute(sql_update(WebhookDelivery).where(
        WebhookDelivery.id == claim["id"], WebhookDelivery.claim_token == claim["token"]).values(**values)).rowcount
    db.session.commit()
    if not kept:
        log.warning("webhook claim lost before the outcome was kept", extra={"delivery_id": claim["id"]})
        return None
    return values.get("status", "pending")


def deliver_due(*, now: datetime | None = None) -> dict:
    """The `outbox` job: fan new events out to subscriptions, then send every due delivery once. Commits.

    `now` decides what is due; leases and retry times run on from it by the
    time this run has taken. Each delivery is tried at most once per run, and
    a run sends at most WEBHOOK_MAX_PER_RUN.
    """
    now = now or utcnow()
    started = time.monotonic()
    counts = {"fanned_out": _fan_out(now), "sent": 0, "delivered": 0, "failed": 0, "dead": 0}

    def outcome(claim: dict, answer, status: str | None) -> None:
        counts["sent"] += 1
        metrics.observe_webhook_attempt("lost" if status is None else "failed" if status == "pending" else status)
        counts["delivered" if status == "delivered" else "dead" if status == "dead" else "failed"] += 1
        if not answer.ok:
            log.info("webhook attempt failed", extra={"delivery_id": claim["id"], "event_id": claim["event_id"],
                                                      "status_code": answer.status, "error": answer.error})

    send_due(now=now, started=started, claim=_claim, send=_send, record=_record, outcome=outcome)
    return counts

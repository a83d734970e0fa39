"""The promise: service products (当日达, 次日达, ...), the time a product promises from collection, and whether an
open task is at risk of missing it (docs/decisions.md, "Issue 22: the promise").

One function computes a promise (promise_of); task creation, manifests, the dispatch list, the dumps, the demo
and the customer page all read what it stored on the task (promise_view).
"""
from datetime import date, datetime, time, timedelta, timezone

from flask import current_app
from sqlalchemy import and_, select
from sqlalchemy.sql.elements import ColumnElement

from schemas.vocab import OPEN_STATUSES
from server.auth import Actor
from server.clock import local_date, local_zone
from server.errors import Conflict, NotFound, ValidationFailed
from server.extensions import db
from server.models import ServiceProduct, Task
from server.services.common import audit, snapshot


def get_all(*, active: bool | None = None) -> list[ServiceProduct]:
    """The service products by code (only active or inactive ones when asked)."""
    query = select(ServiceProduct).order_by(ServiceProduct.code)
    if active is not None:
        query = query.where(ServiceProduct.active.is_(active))
    return list(db.session.scalars(query))


def get(*, code: str, for_update: bool = False) -> ServiceProduct:
    """One service product, or 404."""
    product = db.session.get(ServiceProduct, code, with_for_update=for_update)
    if product is None:
        raise NotFound(f"No service product {code}.", code="service_product_not_found")
    return product


def _check_promise(end_of_day_after: int | None, within_hours: int | None) -> None:
    """Exactly one way of promising."""
    if (end_of_day_after is None) == (within_hours is None):
        message = "Give exactly one of end_of_day_after and within_hours."
        raise ValidationFailed(message, fields={"end_of_day_after": [message], "within_hours": [message]})


def create(*, actor: Actor, code: str, name_zh: str, name_en: str, end_of_day_after: int | None = None,
           within_hours: int | None = None, active: bool = True) -> ServiceProduct:
    """Publish a service product; a code already used is a 409. Commits."""
    _check_promise(end_of_day_after, within_hours)
    if db.session.get(ServiceProduct, code) is not None:
        raise Conflict(f"Service product {code} already exists.", code="duplicate_service_product",
                       fields={"code": ["Already exists."]})
    product = ServiceProduct(code=code, name_zh=name_zh, name_en=name_en, end_of_day_after=end_of_day_after,
                             within_hours=within_hours, active=active)
    db.session.add(product)
    audit(actor, "service_product.create", product, None)
    db.session.commit()
    return product


def update(*, actor: Actor, code: str, **changes) -> ServiceProduct:
    """Change a product's names, promise (one way replaces the other) or whether it is offered (active=false
    deactivates it). Commits.

    Tasks keep the promise they were given: a changed promise applies to tasks created after the change.
    """
    product = get(code=code, for_update=True)
    before = snapshot(product)
    if "end_of_day_after" in changes or "within_hours" in changes:
        # A new promise replaces the old one: the way not given is cleared.
        changes = {"end_of_day_after": None, "within_hours": None, **changes}
        _check_promise(changes["end_of_day_after"], changes["within_hours"])
    for name, value in changes.items():
        setattr(product, name, value)
    if snapshot(product) != before:
        audit(actor, "service_product.update", product, before)
    db.session.commit()
    return product


def offered(specs: list[dict]) -> dict[str, ServiceProduct]:
    """The active products the specs name, by code (what a new task may name; no query when none names one)."""
    codes = sorted({spec["service_product"] for spec in specs if spec.get("service_product")})
    if not codes:
        return {}
    return {product.code: product for product in db.session.scalars(select(ServiceProduct).where(
        ServiceProduct.code.in_(codes), ServiceProduct.active.is_(True)))}


def promise_of(product: ServiceProduct, collected_at: datetime) -> tuple[datetime, date]:
    """The promised time and its depot-local day: the end of the depot-local day N after the day of collection
    (the next day's midnight), or N hours after collection."""
    if product.within_hours is not None:
        promised_at = collected_at.astimezone(timezone.utc) + timedelta(hours=product.within_hours)
        return promised_at, local_date(promised_at)
    day = local_date(collected_at) + timedelta(days=product.end_of_day_after)
    end = datetime.combine(day + timedelta(days=1), time.min, local_zone()).astimezone(timezone.utc)
    return end, day


def spec_problems(spec: dict, products: dict[str, ServiceProduct], now: datetime) -> list[tuple[str, str, str]]:
    """A task spec's promise fields against the products offered and the server's clock, as (path, code, message).

    A product promises from the collection: it needs its time. A collection later than now (beyond the clock
    tolerance devices get) has not happened. A pickup is itself the collection: it carries no product nor
    collection time.
    """
    problems = []
    code, collected_at = spec.get("service_product"), spec.get("collected_at")
    if spec.get("kind") == "pickup" and (code or collected_at):
        problems.append(("service_product" if code else "collected_at", "promise_on_pickup",
                         "A pickup is the collection: it carries no service product nor collection time."))
        return problems
    if code is not None and code not in products:
        problems.append(("service_product", "service_product_not_offered",
                         f"{code!r} is not a service product on offer."))
    if code is not None and collected_at is None:  # the product promises from the collection
        problems.append(("collected_at", "collection_required", "Required with service_product."))
    tolerance = timedelta(seconds=current_app.config["CLOCK_SKEW_TOLERANCE_SECONDS"])
    if collected_at is not None and collected_at > now + tolerance:
        problems.append(("collected_at", "collected_in_future", "The collection time is later than now."))
    return problems


def change_problems(task: Task, changed: list[str], now: datetime) -> list[tuple[str, str, str]]:
    """A task's product or collection changed after its promise passed, as (path, code, message): the promise was
    kept or failed by then, and moving it would rewrite that (promised_time_achievement). Ahead of it, a change is
    a correction."""
    if task.promised_at is None or task.promised_at > now:
        return []
    return [(name, "promise_passed", f"The promise of task {task.id} passed at {task.promised_at.isoformat()}; "
             f"its {name} is no longer changed.") for name in ("service_product", "collected_at") if name in changed]


def apply(task: Task, spec: dict, products: dict[str, ServiceProduct]) -> None:
    """Set a task's product, collection and the promise they make (unknown without both)."""
    task.service_product, task.collected_at = spec.get("service_product"), spec.get("collected_at")
    product = products.get(task.service_product) if task.service_product else None
    if product is None or task.collected_at is None:
        task.promised_at = task.promise_date = None
        return
    task.promised_at, task.promise_date = promise_of(product, task.collected_at)


def at_risk_lead() -> timedelta:
    """How long before its promised time an open task is at risk (FIELDOPS_PROMISE_AT_RISK_MINUTES)."""
    return timedelta(minutes=current_app.config["PROMISE_AT_RISK_MINUTES"])


def at_risk(now: datetime) -> ColumnElement:
    """SQL condition: an open task whose promised time is within the lead, or past (breached)."""
    return and_(Task.status.in_(OPEN_STATUSES), Task.promised_at.is_not(None),
                Task.promised_at <= now + at_risk_lead())


def state(task: Task, now: datetime) -> str:
    """Where a task stands against its promise now (Task.promise_state, with FIELDOPS_PROMISE_AT_RISK_MINUTES)."""
    return task.promise_state(now, at_risk_lead())


def view(task: Task) -> dict | None:
    """A task's promise as every face shows it (dispatch, handheld, customer page): product and names, collection,
    promised time and day, its state and whether it is at risk; None when the task has neither product nor
    collection."""
    return task.promise_view

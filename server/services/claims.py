"""Claims (理赔) for a damaged or lost parcel: opened, assessed by the compensation rules, approved, paid or rejected.

Who may do what (docs/decisions.md, "Claims"): the office (dispatch, quality,
admin) opens a claim, and so does the customer from their receipt page;
quality staff and admins assess and reject; quality staff approve up to
FIELDOPS_CLAIM_APPROVAL_LIMIT fen, admins any amount; admins record the
payment and correct amounts (the house has no finance role). Every step and
every correction is a new ClaimEntry, never changed; the Claim row holds where
the claim stands and the due time of its next step.
"""
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, not_, select

from schemas.vocab import CLAIM_CLOSED, CLAIM_EXCEPTION_KINDS
from server.auth import Actor
from server.clock import utcnow
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.extensions import db
from server.models import Claim, ClaimEntry, Complaint, HandoverException, HandoverStep, Receipt, Task
from server.services import events, receipts, scans, tasks
from server.services.common import audit, newest_first, snapshot

ASSESSORS = ("admin", "quality")
PAYERS = ("admin",)
RULE_INSURED, RULE_UNINSURED = "insured_declared_value", "uninsured_fee_multiple"
# The step each status waits for, and the setting that gives it its time.
_NEXT_STEP_HOURS = {"opened": "CLAIM_ASSESS_HOURS", "assessed": "CLAIM_APPROVE_HOURS", "approved": "CLAIM_PAY_HOURS"}


def compensation(*, insured: bool, declared_value: int | None, fees_paid: int, loss: int, claimed: int,
                 multiple: int) -> dict:
    """The compensation rule for a parcel: its name, its inputs and the amount (fen); pure.

    Insured: the loss up to the declared value. Uninsured: the loss up to
    `multiple` times the fees paid for the parcel. Never more than was claimed.
    """
    if insured and declared_value is not None:
        rule, cap = RULE_INSURED, declared_value
    else:
        rule, cap = RULE_UNINSURED, multiple * fees_paid
    inputs = {"insured": insured, "declared_value": declared_value, "fees_paid": fees_paid, "multiple": multiple,
              "claimed_amount": claimed, "assessed_loss": loss, "cap": cap}
    return {"rule": rule, "inputs": inputs, "amount": max(0, min(loss, claimed, cap))}


def fees_paid(task: Task) -> int:
    """The fees paid for one parcel of the task (fen): the task's published fees, or a pickup's fees charged at the
    door, shared evenly over its parcels (rounded down) — docs/decisions.md, "Claims"."""
    charged = task.handover.fees if task.handover is not None and task.handover.fees else None
    total = sum(fee["amount"] for fee in charged) if charged else sum(fee.amount for fee in task.fees)
    return total // max(1, len(task.parcels))


def _due(status: str, at: datetime) -> datetime | None:
    """The due time of the step a claim in this status waits for (None once closed)."""
    setting = _NEXT_STEP_HOURS.get(status)
    return at + timedelta(hours=current_app.config[setting]) if setting else None


def _facts(claim: Claim, **more) -> dict:
    """What every claim event says: ids, the parcel, where it came from, where it stands; nothing personal."""
    return {"claim_id": claim.id, "task_id": claim.task_id, "parcel_no": claim.parcel_no, "origin": claim.origin,
            "origin_id": claim.origin_id, "kind": claim.kind, "status": claim.status,
            "claimed_amount": claim.claimed_amount, **more}


def _origin(origin: str, origin_id: str | None, task_id: str | None) -> tuple[str, str | None, str | None, list]:
    """(task id, origin id, default kind, parcel numbers the origin names) of a claim's origin; 404/422 naming it."""
    if origin == "dispatch":
        if not task_id:
            raise ValidationFailed("A claim dispatch opens names its task.", fields={"task_id": ["Required."]})
        return task_id, None, None, []
    if not origin_id:
        raise ValidationFailed(f"A claim from a {origin} names it.", fields={"origin_id": ["Required."]})
    if origin in ("exception", "refusal"):
        exception = db.session.get(HandoverException, int(origin_id)) if origin_id.isdigit() else None
        allowed = ("refusal",) if origin == "refusal" else ("damage", "discrepancy")
        if exception is None or exception.kind not in allowed:
            raise NotFound(f"No {' or '.join(allowed)} exception {origin_id}.", code="origin_not_found")
        detail = exception.detail or {}
        kind = CLAIM_EXCEPTION_KINDS[exception.kind]
        if exception.kind == "refusal" and detail.get("reason") != "damaged":
            kind = None  # refused for another reason: the claim says what it is for
        return exception.task_id, str(exception.id), kind, \
            [item.get("parcel_no") for item in detail.get("items") or [] if isinstance(item, dict)]
    if origin == "complaint":
        complaint = db.session.get(Complaint, int(origin_id)) if origin_id.isdigit() else None
        if complaint is None:
            raise NotFound(f"No complaint {origin_id}.", code="origin_not_found")
        if complaint.task_id is None:
            raise ValidationFailed("The complaint names no task.", fields={"origin_id": ["The complaint has no task."]})
        kind = complaint.category if complaint.category in ("damage", "loss") else None
        return complaint.task_id, str(complaint.id), kind, []
    receipt = db.session.get(Receipt, origin_id)
    if receipt is None:
        raise NotFound(f"No receipt {origin_id}.", code="origin_not_found")
    return receipt.task_id, receipt.id, None, []


def open_claim(*, actor: Actor, origin: str, description: str, claimed_amount: int, origin_id: str | None = None,
               task_id: str | None = None, parcel_no: str | None = None, kind: str | None = None) -> Claim:
    """Open a claim for one parcel from its origin; its assessment falls due. Commits.

    One open claim per parcel and origin: opening it again is a 409 naming the
    open one (claim_already_open, `claim_id`); once paid or rejected, a new one may open.
    """
    found_task, origin_id, default_kind, named = _origin(origin, origin_id, task_id)
    if task_id and found_task != task_id:
        raise ValidationFailed("The origin is of another task.", fields={"task_id": ["Not the origin's task."]})
    task = tasks.get(task_id=found_task, for_update=True)  # queues concurrent opens of the task's parcels
    numbers = [parcel.parcel_no for parcel in task.parcels]
    if parcel_no is None:
        candidates = [no for no in named if no in numbers] or numbers
        if len(candidates) != 1:
            raise ValidationFailed("Name the parcel claimed for.", fields={"parcel_no": [
                f"Required: one of {', '.join(candidates)}."]})
        parcel_no = candidates[0]
    elif parcel_no not in numbers:
        raise ValidationFailed("No such parcel on the task.", fields={"parcel_no": ["Not a parcel of the task."]})
    kind = kind or default_kind
    if kind is None:
        raise ValidationFailed("Say what the claim is for.", fields={"kind": ["Required: damage, loss or other."]})
    same_origin = Claim.origin_id == origin_id if origin_id is not None else Claim.origin_id.is_(None)
    existing = db.session.scalar(select(Claim.id).where(
        Claim.task_id == task.id, Claim.parcel_no == parcel_no, Claim.origin == origin, same_origin,
        Claim.status.notin_(CLAIM_CLOSED)))
    if existing is not None:
        raise Conflict(f"Claim {existing} for this parcel and origin is open.", code="claim_already_open",
                       extra={"claim_id": existing})
    now = utcnow()
    claim = Claim(task_id=task.id, parcel_no=parcel_no, origin=origin, origin_id=origin_id, kind=kind,
                  description=description, claimed_amount=claimed_amount, status="opened", opened_at=now,
                  opened_by=actor.id, opened_by_kind=actor.kind, due_at=_due("opened", now), late_steps=0,
                  corrections=0)
    claim.entries.append(ClaimEntry(kind="opened", at=now, actor_kind=actor.kind, actor_id=actor.id,
                                    amount=claimed_amount, data={"description": description}))
    db.session.add(claim)
    audit(actor, "claim.open", claim, None)  # flushes: the claim has its id
    events.emit("claim.opened", str(claim.id), _facts(claim, waybill_no=task.waybill_no,
                                                      opened_at=now.isoformat(), due_at=claim.due_at.isoformat()))
    db.session.commit()
    return with_evidence(claim)


def get(*, claim_id: int, for_update: bool = False) -> Claim:
    """One claim or 404."""
    claim = db.session.get(Claim, claim_id, with_for_update=for_update)
    if claim is None:
        raise NotFound(f"No claim {claim_id}.", code="claim_not_found")
    return claim


def read(*, claim_id: int) -> Claim:
    """One claim with its entries and evidence."""
    return with_evidence(get(claim_id=claim_id))


def get_all(*, status: str | None = None, overdue: bool | None = None, task_id: str | None = None,
            origin: str | None = None, cursor: int | None = None, limit: int = 50) -> dict:
    """Claims newest first, by status, task, origin, and whether their next step is overdue."""
    query = select(Claim)
    if status:
        query = query.where(Claim.status == status)
    if task_id:
        query = query.where(Claim.task_id == task_id)
    if origin:
        query = query.where(Claim.origin == origin)
    if overdue is not None:
        condition = and_(Claim.due_at.is_not(None), Claim.due_at < utcnow())
        query = query.where(condition if overdue else not_(condition))
    return newest_first(query, Claim.id, cursor=cursor, limit=limit)


def _step(claim: Claim, actor: Actor, kind: str, status: str, *, allowed_from: tuple[str, ...],
          amount: int | None = None, data: dict | None = None) -> ClaimEntry:
    """Take a step: 409 from the wrong status; the entry dated now, late past the due time; the next one due."""
    if claim.status not in allowed_from:
        raise Conflict(f"A claim {claim.status} cannot be {status}.", code="claim_wrong_status",
                       extra={"claim_status": claim.status})
    now = utcnow()
    late = claim.due_at is not None and now > claim.due_at
    entry = ClaimEntry(kind=kind, at=now, actor_kind=actor.kind, actor_id=actor.id, amount=amount,
                       due_at=claim.due_at, late=late, data=data)
    claim.entries.append(entry)
    claim.status, claim.due_at = status, _due(status, now)
    claim.late_steps += int(late)
    return entry


def _decided(claim: Claim, actor: Actor, action: str, before: dict, decision: str, **more) -> Claim:
    """Audit a step, emit claim.decided, commit; the claim with its evidence."""
    audit(actor, action, claim, before)
    events.emit("claim.decided", str(claim.id), _facts(claim, decision=decision, decided_by=actor.id,
                                                       due_at=events.iso(claim.due_at), **more))
    db.session.commit()
    return with_evidence(claim)


def assess(*, actor: Actor, claim_id: int, loss_amount: int, note: str | None = None) -> Claim:
    """Assess an opened claim by the compensation rules from the actual loss found (quality, admin). Commits."""
    if actor.role not in ASSESSORS:
        raise Forbidden("Only quality staff and admins assess a claim.", code="claim_step_not_allowed")
    claim = get(claim_id=claim_id, for_update=True)
    task = db.session.get(Task, claim.task_id)
    parcel = next(p for p in task.parcels if p.parcel_no == claim.parcel_no)
    decision = compensation(insured=parcel.insured, declared_value=parcel.declared_value, fees_paid=fees_paid(task),
                            loss=loss_amount, claimed=claim.claimed_amount,
                            multiple=current_app.config["CLAIM_FEE_MULTIPLE"])
    before = snapshot(claim)
    _step(claim, actor, "assessed", "assessed", allowed_from=("opened",), amount=decision["amount"],
          data={"rule": decision["rule"], "inputs": decision["inputs"], "note": note})
    claim.assessed_at, claim.rule = utcnow(), decision["rule"]
    claim.amount = claim.first_assessed_amount = decision["amount"]
    return _decided(claim, actor, "claim.assess", before, "assessed", amount=claim.amount, rule=claim.rule,
                    inputs=decision["inputs"])


def approve(*, actor: Actor, claim_id: int) -> Claim:
    """Approve an assessed claim: quality staff up to FIELDOPS_CLAIM_APPROVAL_LIMIT, admins any amount. Commits."""
    if actor.role not in ASSESSORS:
        raise Forbidden("Only quality staff and admins approve a claim.", code="claim_step_not_allowed")
    claim = get(claim_id=claim_id, for_update=True)
    limit = current_app.config["CLAIM_APPROVAL_LIMIT"]
    if claim.status == "assessed" and actor.role != "admin" and claim.amount > limit:
        raise Forbidden(f"An amount above {limit} fen is approved by an admin.", code="claim_above_approval_limit")
    before = snapshot(claim)
    _step(claim, actor, "approved", "approved", allowed_from=("assessed",), amount=claim.amount)
    claim.approved_at = utcnow()
    return _decided(claim, actor, "claim.approve", before, "approved", amount=claim.amount)


def reject(*, actor: Actor, claim_id: int, reason: str) -> Claim:
    """Reject an opened or assessed claim with the reason (quality, admin). Commits."""
    if actor.role not in ASSESSORS:
        raise Forbidden("Only quality staff and admins reject a claim.", code="claim_step_not_allowed")
    claim = get(claim_id=claim_id, for_update=True)
    before = snapshot(claim)
    _step(claim, actor, "rejected", "rejected", allowed_from=("opened", "assessed"), data={"reason": reason})
    claim.rejected_at, claim.reject_reason = utcnow(), reason
    return _decided(claim, actor, "claim.reject", before, "rejected")


def pay(*, actor: Actor, claim_id: int, reference: str) -> Claim:
    """Record the payment of an approved claim, its amount as approved, with the payment's reference (admin).
    Commits."""
    if actor.role not in PAYERS:
        raise Forbidden("Only admins record a claim's payment.", code="claim_step_not_allowed")
    claim = get(claim_id=claim_id, for_update=True)
    before = snapshot(claim)
    _step(claim, actor, "paid", "paid", allowed_from=("approved",), amount=claim.amount,
          data={"reference": reference})
    claim.paid_at, claim.paid_amount, claim.payment_reference = utcnow(), claim.amount, reference
    audit(actor, "claim.pay", claim, before)
    events.emit("claim.paid", str(claim.id), _facts(claim, amount=claim.paid_amount, reference=reference,
                                                    paid_at=claim.paid_at.isoformat(), correction=False))
    db.session.commit()
    return with_evidence(claim)


def _chain_kind(claim: Claim, entry: ClaimEntry) -> str:
    """What an amount entry fixed, following corrections back: `assessed` or `paid`."""
    by_id = {e.id: e for e in claim.entries}
    while entry.kind == "correction":
        entry = by_id[entry.corrects_id]
    return entry.kind


def correct(*, actor: Actor, claim_id: int, entry_id: int, amount: int, reason: str) -> Claim:
    """Correct the amount an assessment or a payment fixed: a new entry naming the one it corrects (admin). Commits.

    The corrected entry stays as it was. A correction of the assessment sets the
    amount owed (before payment); one of the payment, the amount paid.
    """
    if actor.role not in PAYERS:
        raise Forbidden("Only admins correct a claim's amounts.", code="claim_step_not_allowed")
    claim = get(claim_id=claim_id, for_update=True)
    entry = next((e for e in claim.entries if e.id == entry_id), None)
    if entry is None or entry.kind not in ("assessed", "paid", "correction"):
        raise ValidationFailed("Correct an assessment, a payment or a correction of this claim.",
                               fields={"entry_id": ["Not an amount entry of this claim."]})
    if any(e.corrects_id == entry.id for e in claim.entries):
        raise Conflict("That entry was corrected already: correct the newest correction.",
                       code="claim_entry_superseded")
    target = _chain_kind(claim, entry)
    if target == "assessed" and claim.status not in ("assessed", "approved"):
        raise Conflict(f"The assessment of a claim {claim.status} is not corrected; correct the payment.",
                       code="claim_wrong_status", extra={"claim_status": claim.status})
    before = snapshot(claim)
    claim.entries.append(ClaimEntry(kind="correction", at=utcnow(), actor_kind=actor.kind, actor_id=actor.id,
                                    amount=amount, corrects_id=entry.id,
                                    data={"reason": reason, "corrects": target, "was": entry.amount}))
    claim.corrections += 1
    if target == "assessed":
        claim.amount = amount
    else:
        claim.paid_amount = amount
    audit(actor, "claim.correct", claim, before)
    facts = _facts(claim, amount=amount, was=entry.amount)
    if target == "paid":
        events.emit("claim.paid", str(claim.id), dict(facts, reference=claim.payment_reference,
                                                      paid_at=claim.paid_at.isoformat(), correction=True))
    else:
        events.emit("claim.decided", str(claim.id), dict(facts, decision="corrected", decided_by=actor.id,
                                                         due_at=events.iso(claim.due_at)))
    db.session.commit()
    return with_evidence(claim)


def evidence(claim: Claim) -> dict:
    """What the claim rests on: the task's inspection and its photos, the exception it came from, the sealed
    receipt, the complaint (each null when there is none), and the parcel's scans (its journey)."""
    inspection = db.session.scalar(
        select(HandoverStep).where(HandoverStep.task_id == claim.task_id, HandoverStep.kind == "inspect",
                                   HandoverStep.outcome == "accepted").order_by(HandoverStep.id.desc()).limit(1))
    receipt = db.session.scalar(select(Receipt).where(Receipt.task_id == claim.task_id).order_by(Receipt.issued_at))
    exception = (db.session.get(HandoverException, int(claim.origin_id))
                 if claim.origin in ("exception", "refusal") else None)
    complaint = db.session.get(Complaint, int(claim.origin_id)) if claim.origin == "complaint" else None
    return {
        "inspection": None if inspection is None else {
            "step_id": inspection.id, "device_time": events.iso(inspection.device_time),
            "received_at": events.iso(inspection.received_at), "items": inspection.data.get("items"),
            "customer_accepted": inspection.data.get("customer_accepted"),
            "photos": inspection.data.get("photos") or []},
        "exception": None if exception is None else {
            "id": exception.id, "kind": exception.kind, "occurred_at": events.iso(exception.occurred_at),
            "detail": exception.detail},
        "receipt": None if receipt is None else {"kind": receipt.kind, **receipts.link(receipt)},
        "complaint": None if complaint is None else {
            "id": complaint.id, "category": complaint.category, "status": complaint.status,
            "received_at": events.iso(complaint.received_at)},
        "scans": [{"event": scan["event"], "source": scan["source"], "also_from": scan["also_from"],
                   "effective_time": events.iso(scan["effective_time"]), "received_at": events.iso(scan["received_at"]),
                   "clock_suspect": scan["clock_suspect"]}
                  for scan in scans.journey(task=db.session.get(Task, claim.task_id), parcel_nos=[claim.parcel_no])],
    }


def with_evidence(claim: Claim) -> Claim:
    """The claim with its evidence attached for its dump."""
    claim.evidence = evidence(claim)
    return claim


# --- the customer's receipt page -------------------------------------------------------------------

def customer(receipt: Receipt) -> Actor:
    """The customer acting through a receipt page (its id names the receipt)."""
    return Actor(kind="customer", id=receipt.id, role="customer")


def open_for_customer(*, receipt: Receipt, kind: str, description: str, claimed_amount: int,
                      parcel_no: str | None = None) -> Claim:
    """The customer claims for a parcel of their receipt; a parcel with a claim open already, whoever opened it,
    is claim_already_open (the page shows that claim's progress). Commits."""
    parcels = claimable_parcels(receipt=receipt)
    if parcel_no is None and len(parcels) == 1:
        parcel_no = parcels[0]
    if parcel_no not in parcels:
        raise ValidationFailed("No such parcel to claim for on this receipt.",
                               fields={"parcel_no": ["Not a parcel this receipt's customer may claim for."]})
    open_already = db.session.scalar(select(Claim.id).where(
        Claim.task_id == receipt.task_id, Claim.parcel_no == parcel_no, Claim.status.notin_(CLAIM_CLOSED)))
    if open_already is not None:
        raise Conflict(f"Claim {open_already} for this parcel is open.", code="claim_already_open",
                       extra={"claim_id": open_already})
    return open_claim(actor=customer(receipt), origin="customer", origin_id=receipt.id, kind=kind,
                      description=description, claimed_amount=claimed_amount, parcel_no=parcel_no)


def claimable_parcels(*, receipt: Receipt) -> list[str]:
    """The parcel numbers the receipt's customer may claim for: the task's parcels (a pickup's collected parcels
    travel on under their delivery, whose receipt takes their claims)."""
    task = db.session.get(Task, receipt.task_id)
    return [] if task is None or task.kind == "pickup" else [parcel.parcel_no for parcel in task.parcels]


def for_customer(*, receipt: Receipt) -> list[dict]:
    """The claims for the receipt's parcels, whoever opened them (the customer, the office from an exception or a
    complaint), as the page shows them: no names, notes, origins or rules."""
    rows = db.session.scalars(select(Claim).where(Claim.task_id == receipt.task_id).order_by(Claim.id))
    return [{"parcel_no": c.parcel_no, "kind": c.kind, "status": c.status, "claimed_amount": c.claimed_amount,
             "opened_at": c.opened_at, "paid_amount": c.paid_amount if c.status == "paid" else None}
            for c in rows]

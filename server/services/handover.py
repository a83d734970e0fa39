"""The handover at the door: recipient check, count and inspect, payment, gift, signature, refusal, alternates, pickups.

The order of steps is enforced here, whatever order the ops reach the server
in: each rule reads the handover's stored state, never the op's position in a
batch. Every step keeps device time, receipt time and location. A refused step
is kept too (as a rejected step of the timeline): the refusal's `keep` writes
it, with any exception, flag or violation, after push rolls back the refused
change (sync.push applies DomainError.keep).

On a task dispatch cancelled (or took away) meanwhile, a step is still a field
fact: the parcel was inspected, the money taken, the signature given. It is
recorded and the ledger counts the money; the task keeps its status, and the
engine flags the conflict for dispatch.
"""
import hashlib
import hmac
import secrets
import unicodedata
from datetime import datetime, timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from schemas.vocab import OPEN_STATUSES
from server import confusables, sealing
from server.auth import Actor
from server.clock import filed_at, local_date, utcnow
from server.database import bulk_insert
from server.errors import NotFound, RuleViolation
from server.extensions import db
from server.geo import distance_m
from server.models import Courier, Handover, HandoverException, HandoverStep, Parcel, Receipt, Task, TaskEvent
from server.services import duty, events, ledger, privacy, receipts, scans, tasks, violations
from server.services.common import audit, snapshot, write_buffered_rows

# PBKDF2-HMAC-SHA256 over a 6-digit PIN: few enough iterations for a handheld to check offline in
# milliseconds. A million PINs stay brute-forceable from a stolen device's hash (minutes); the
# server re-checks every PIN on push and flags a mismatch, which is what the PIN really rests on.
PIN_ITERATIONS = 10_000
PIN_SEALING = "fieldops handover pin"  # the sealing key's purpose (server.sealing)
PIN_ALGORITHM = "pbkdf2_sha256"


def pin_digest(pin: str, salt: str, iterations: int = PIN_ITERATIONS) -> str:
    """The PIN's hash as the handheld computes it: PBKDF2-HMAC-SHA256(pin, salt as text), hex."""
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt.encode(), iterations).hex()


def _of(task: Task) -> Handover:
    """The task's handover (made on its first step)."""
    if task.handover is None:
        task.handover = Handover(recipient_verified=False, discrepancy=False, damaged=False, signed=False,
                                 gift_disclosed=False, not_at_address=False)
    return task.handover


_HANDOVERS_OF = select(Handover).where(Handover.task_id.in_(bindparam("task_ids", expanding=True)))


def load_for(task_list: list[Task]) -> list[Task]:
    """Give tasks their handovers in one query (one already loaded is left as it is)."""
    missing = {t.id: t for t in task_list if "handover" not in t.__dict__}
    if missing:
        found = {h.task_id: h for h in db.session.scalars(_HANDOVERS_OF, {"task_ids": list(missing)})}
        for task_id, task in missing.items():
            set_committed_value(task, "handover", found.get(task_id))
    return task_list


# A completed handover's receipt, once looked up (or issued by _finish): a Receipt, or a row with its
# id, number and token_sealed. Faces turn it into what they show (with_receipts).
_RECEIPT_OF = "fieldops_receipt"


_RECEIPTS_OF = (select(Receipt.task_id, Receipt.number, Receipt.id, Receipt.token_sealed)
                .where(Receipt.task_id.in_(bindparam("task_ids", expanding=True))).order_by(Receipt.issued_at))


def with_receipts(task_list: list[Task], *, stored: bool = False) -> list[Task]:
    """Give completed handovers their receipt as the face about to dump them shows it, in one query for the list.

    The state's `receipt` is receipts.link ({number, url}: the page whose QR the
    courier shows the customer, the receipt the rules say to give); a handheld's
    stored doc (stored) holds receipts.doc_link, which sync responses reveal to
    the same link. Every dump sets it afresh: one session may dump a task for a
    stored doc and for an online answer.
    """
    done = [t.handover for t in load_for(task_list) if t.handover is not None and t.handover.outcome is not None]
    missing = {h.task_id: h for h in done if _RECEIPT_OF not in h.__dict__}
    if missing:
        rows = db.session.execute(_RECEIPTS_OF, {"task_ids": list(missing)})
        for row in rows:
            missing[row.task_id].__dict__[_RECEIPT_OF] = row
    shown = receipts.doc_link if stored else receipts.link
    for h in done:
        receipt = h.__dict__.get(_RECEIPT_OF)
        h.receipt = None if receipt is None else shown(receipt)
    return task_list


def amount_due(task: Task) -> int:
    """What a delivery's customer pays at the door: the COD amount plus the task's published fees, in fen."""
    return task.cod_amount + sum(fee.amount for fee in task.fees)


def _step_row(task: Task, kind: str, facts: dict, data: dict, lat: float | None, lon: float | None,
              outcome: str = "accepted", code: str | None = None) -> dict:
    """A step of the timeline as plain values."""
    return {"task_id": task.id, "courier_id": facts["actor"].courier_id, "kind": kind, "outcome": outcome,
            "code": code, "op_id": facts["op_id"], "device_time": facts["device_time"], "lat": lat, "lon": lon,
            "clock_suspect": facts["clock_suspect"], "data": data}


def _exception_row(task: Task, kind: str, facts: dict, detail: dict) -> dict:
    """An exception for dispatch as plain values, dated by when it happened (device time, clock.filed_at's day)."""
    at = facts["device_time"] or utcnow()
    return {"task_id": task.id, "courier_id": facts["actor"].courier_id, "kind": kind,
            "day": local_date(filed_at(facts["device_time"], utcnow())),
            "occurred_at": at, "op_id": facts["op_id"], "detail": {"waybill_no": task.waybill_no, **detail}}


def _record(task: Task, kind: str, facts: dict, data: dict, lat: float | None, lon: float | None,
            exceptions: list[tuple[str, dict]] = ()) -> None:
    """Keep an accepted step (and its exceptions) and move the task's version, so the handheld pulls the state.

    The step is written with the task's history at the next flush (one INSERT for a
    batch's steps; record_event below makes sure the task is flushed).
    """
    _buffer_step({"received_at": utcnow(), **_step_row(task, kind, facts, data, lat, lon)})
    for exception_kind, detail in exceptions:
        db.session.add(HandoverException(recorded_at=utcnow(), **_exception_row(task, exception_kind, facts, detail)))
        events.emit_exception(events.task_facts(task), exception_kind, op_id=facts["op_id"], at=facts["device_time"])
    if exceptions:
        task.needs_review = True
    tasks.record_event(task, f"handover.{kind}", facts["actor"], device_time=facts["device_time"],
                       data={"op_id": facts["op_id"], **data})
    duty.check_work(actor=facts["actor"], task=task, action=_OP_OF_STEP.get(kind, f"pod.{kind}"),
                    device_time=facts["device_time"], op_id=facts["op_id"], clock_suspect=facts["clock_suspect"])


_OP_OF_STEP = {"pickup_collect": "pickup.collect"}  # the op of a step, where it is not pod.<step>
_STEPS = "fieldops.handover.steps"  # session.info: steps (accepted and rejected) not yet written


def _buffer_step(row: dict) -> None:
    """Keep a step for the next flush or the commit: a batch's steps go in one INSERT, in the order they came."""
    db.session.info.setdefault(_STEPS, []).append(row)


def _write_steps(session: Session, _flush_context=None) -> None:
    """Insert the steps recorded since the last flush (after the tasks are written), or at commit if none came."""
    rows = session.info.pop(_STEPS, None)
    if rows:
        bulk_insert(session, HandoverStep.__table__, rows)


def _forget_steps(session: Session, _transaction=None) -> None:
    """Steps recorded in a transaction that rolls back, or that committed, are gone from the buffer; so are the
    courier names read in it (a batch redone after a rollback reads them again: dispatch may have renamed one)."""
    session.info.pop(_STEPS, None)
    session.info.pop(_COURIER_NAMES, None)


def init_app(_app) -> None:
    """Install the step writer once per process."""
    write_buffered_rows(_write_steps, _forget_steps)


def _refuse(code: str, detail: str, task: Task, kind: str, facts: dict, data: dict, lat: float | None = None,
            lon: float | None = None, *, exception: tuple[str, dict] | None = None,
            violation: tuple[str, dict] | None = None, also: Callable[[], None] | None = None,
            unchanged: bool = False):
    """Raise the rule's refusal; what it leaves behind (the rejected step, an exception, a violation) is kept.

    Everything the keep needs is taken as plain values now: it runs after the
    attempt that raised is rolled back. `also` is more to keep, written by the caller on the same terms.
    `unchanged`: the step has changed nothing yet, so the keep may run at once (DomainError.unchanged).
    """
    step = _step_row(task, kind, facts, data, lat, lon, outcome="rejected", code=code)
    flagged = _exception_row(task, exception[0], facts, exception[1]) if exception else None
    task_id, courier_id, at = task.id, facts["actor"].courier_id, facts["device_time"] or utcnow()
    task_facts = events.task_facts(task)
    evidence = ({"task_id": task.id, "waybill_no": task.waybill_no, "op_id": facts["op_id"],
                 "device_time": at.isoformat(), "clock_suspect": facts["clock_suspect"], **violation[1]}
                if violation else None)

    def keep() -> None:
        """The rejected step, and what dispatch must see of it."""
        _buffer_step({"received_at": utcnow(), **step})
        if flagged:
            db.session.add(HandoverException(recorded_at=utcnow(), **flagged))
            db.session.get(Task, task_id).needs_review = True
            events.emit_exception(task_facts, flagged["kind"], op_id=flagged["op_id"], at=flagged["occurred_at"])
        if violation and courier_id:
            violations.record_auto(courier_id=courier_id, code=violation[0], task_id=task_id, occurred_at=at,
                                   evidence=evidence)
        if also:
            also()

    raise RuleViolation(detail, code=code, keep=keep, unchanged=unchanged)


def _ensure_open(task: Task, handover: Handover, kind: str, facts: dict, data: dict, *, pickup: bool = False) -> None:
    """A handover step fits the task's kind and comes before the handover is complete."""
    if (task.kind == "pickup") != pickup:
        _refuse("wrong_task_kind", f"A {task.kind} task has no {kind} step.", task, kind, facts, data)
    if handover.outcome is not None:
        _refuse("handover_closed", f"The handover is already complete ({handover.outcome}).", task, kind, facts,
                data)


_RECEIPT_KIND = {"delivered": "delivery", "refused": "refusal", "collected": "pickup"}
_EVENT_OF_OUTCOME = {"delivered": "task.delivered", "refused": "task.refused"}


def _finish(task: Task, handover: Handover, outcome: str, facts: dict) -> None:
    """Complete the handover; an open task takes the outcome as its status (a cancelled one keeps its own)."""
    at = facts["device_time"] or utcnow()
    handover.outcome, handover.completed_at, handover.completed_received_at = outcome, at, utcnow()
    handover.completed_op_id, handover.courier_id = facts["op_id"], facts["actor"].courier_id
    scans.for_handover(task=task, outcome=outcome, facts=facts)  # the parcels' journey: what the door did
    if task.courier_id != facts["actor"].courier_id:
        # A former holder's handover (reassigned since): the field fact is kept and the op
        # is a flagged conflict, but the task keeps its status and its new courier, and no
        # receipt is sealed until dispatch settles it.
        return
    if task.status in OPEN_STATUSES:
        task.status, task.finished_at = outcome, at
    # The sealed receipt, in the same transaction: a completed handover always has one.
    receipt = receipts.issue(task_id=task.id, kind=_RECEIPT_KIND[outcome], evidence=evidence_for(task), first=True)
    handover.__dict__[_RECEIPT_OF] = receipt
    if outcome in _EVENT_OF_OUTCOME:
        data = events.task_facts(
            task, completed_at=at.isoformat(), op_id=facts["op_id"],
            **({"alternate_place": handover.alternate_place} if outcome == "delivered" else
               {"refusal_reason": handover.refusal_reason}))
        receipts.number_into(receipt, data, "receipt_number")
        events.emit(_EVENT_OF_OUTCOME[outcome], task.id, data)


def _add_photos(handover: Handover, photos: list[str]) -> None:
    """Remember the photos of an accepted step (evidence lists them all)."""
    if photos:
        handover.photos = sorted(set(handover.photos or []) | set(photos))


def _distance_m(task: Task, lat: float | None, lon: float | None) -> float | None:
    """Metres from the task's address to where the step happened, when both are known."""
    if None in (lat, lon, task.lat, task.lon):
        return None
    return round(distance_m(task.lat, task.lon, lat, lon), 1)


def _check_place(task: Task, handover: Handover, lat: float | None, lon: float | None) -> list[tuple[str, dict]]:
    """A signature too far from the address is flagged not_at_address (an authorised alternate never gets here)."""
    distance = _distance_m(task, lat, lon)
    handover.distance_m = distance
    limit = current_app.config["HANDOVER_MAX_DISTANCE_M"]
    if distance is not None and distance > limit:
        handover.not_at_address = True
        return [("not_at_address", {"distance_m": distance, "limit_m": limit, "lat": lat, "lon": lon})]
    return []


def _name_key(name: str) -> str:
    """A name as a person reads it: NFKC (full-width letters), no case, no spaces or invisible characters, and
    letters of other scripts that look the same taken as the same (the TR39 confusable skeleton: a Cyrillic "а",
    a Greek omicron)."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    visible = "".join(ch for ch in folded if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc", "Zs"))
    return confusables.skeleton(visible)


def _same_person(a: str, b: str) -> bool:
    """Names compared as people read them: width, case, spaces, invisible characters and look-alike letters do not
    count."""
    return _name_key(a) == _name_key(b)


def _check_pin(task: Task, handover: Handover, pin: str | None, facts: dict, data: dict, lat, lon) -> None:
    """The PIN the recipient gave must match; after too many wrong ones it is locked until dispatch issues a new one.

    A wrong PIN is flagged for dispatch; the one that reaches the limit is flagged
    as `pin_locked`. Locked, no PIN is checked (guessing stops), right or wrong.
    Nothing has changed when a PIN is refused, so the wrong one is counted in the
    same transaction, under the same task lock, as it was checked (`unchanged`):
    two handhelds of one courier racing guesses get no more than the limit between them.
    """
    limit = current_app.config["HANDOVER_PIN_MAX_FAILURES"]
    stored = handover.id is not None  # a handover made just now (no PIN issued) has nothing to count
    if handover.pin_failures >= limit:
        _refuse("pin_locked", f"{limit} wrong PINs: dispatch must issue a new PIN for this task.", task,
                "verify_recipient", facts, data, lat, lon, unchanged=stored)
    if not pin:
        _refuse("pin_required", "This task needs the handover PIN the customer was given.", task,
                "verify_recipient", facts, data, lat, lon, unchanged=stored)
    if hmac.compare_digest(pin_digest(pin, handover.pin_salt, handover.pin_iterations), handover.pin_hash):
        return
    failures, handover_id = handover.pin_failures + 1, handover.id

    def count() -> None:
        """One more wrong PIN, never past the limit (the row is locked with its task; the guard holds without)."""
        db.session.execute(update(Handover).where(Handover.id == handover_id, Handover.pin_failures < limit)
                           .values(pin_failures=Handover.pin_failures + 1))

    kind = "pin_locked" if failures >= limit else "pin_mismatch"
    _refuse("pin_mismatch", "The PIN does not match the task's handover PIN.", task, "verify_recipient",
            facts, data, lat, lon, exception=(kind, {"method": data["method"], "name": data["name"],
                                                     "failures": failures, "limit": limit}),
            also=count if stored else None, unchanged=stored)


def verify_recipient(*, actor: Actor, task: Task, method: str, name: str, relation: str | None, pin: str | None,
                     lat: float | None = None, lon: float | None = None, device_time: datetime | None = None,
                     op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """pod.verify_recipient: who takes the parcel; a task that requires a PIN needs the right one. Does not commit."""
    facts = {"actor": actor, "device_time": device_time, "op_id": op_id, "clock_suspect": clock_suspect}
    handover = _of(task)
    data = {"method": method, "name": name, "relation": relation}
    _ensure_open(task, handover, "verify_recipient", facts, data)
    if task.pin_required:
        _check_pin(task, handover, pin if method == "pin" else None, facts, data, lat, lon)
    handover.recipient_verified, handover.verify_method = True, method
    handover.recipient_name, handover.recipient_relation = name, relation
    _record(task, "verify_recipient", facts, data, lat, lon)
    return task


def inspect(*, actor: Actor, task: Task, items: list[dict], customer_accepted: bool, photos: list[str],
            lat: float | None = None, lon: float | None = None, device_time: datetime | None = None,
            op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """pod.inspect: the customer counts and inspects; damage needs a photo, a wrong count is a discrepancy.

    A later inspection (before the handover completes) replaces the earlier one.
    Does not commit.
    """
    facts = {"actor": actor, "device_time": device_time, "op_id": op_id, "clock_suspect": clock_suspect}
    handover = _of(task)
    data = {"items": items, "customer_accepted": customer_accepted, "photos": photos}
    _ensure_open(task, handover, "inspect", facts, data)
    bad = [item["parcel_no"] for item in items if item["condition"] != "ok"]
    if bad and not photos:
        _refuse("photo_required", f"Photograph the damaged or missing items: {', '.join(bad)}.", task, "inspect",
                facts, data, lat, lon)
    expected = {parcel.parcel_no: parcel.count for parcel in task.parcels}
    counted = {item["parcel_no"]: item for item in items}
    summary = sorted(({"parcel_no": no, "expected": expected.get(no, 0),
                       "counted": counted[no]["counted"] if no in counted else 0,
                       "condition": counted[no]["condition"] if no in counted else "missing"}
                      for no in set(expected) | set(counted)), key=lambda item: item["parcel_no"])
    off = [item for item in summary if item["counted"] != item["expected"]]
    exceptions = []
    if bad:
        exceptions.append(("damage", {"items": [i for i in summary if i["parcel_no"] in bad], "photos": photos}))
    if off:
        exceptions.append(("discrepancy", {"items": off}))
    handover.items, handover.discrepancy, handover.damaged = summary, bool(off), bool(bad)
    # Lines, damaged lines and short lines (missing, or fewer pieces than expected): the damage and loss rates.
    handover.items_inspected, handover.items_damaged = len(summary), sum(i["condition"] == "damaged" for i in summary)
    handover.items_short = sum(i["condition"] == "missing" or i["counted"] < i["expected"] for i in summary)
    handover.inspection = "accepted" if customer_accepted else "refused"
    scans.for_handover(task=task, facts=facts, exceptions=[  # the task's own parcels found damaged or short
        i["parcel_no"] for i in summary if i["expected"] and (i["parcel_no"] in bad or i["counted"] < i["expected"])])
    _add_photos(handover, photos)
    _record(task, "inspect", facts, data, lat, lon, exceptions)
    return task


def _check_amount(task: Task, kind: str, facts: dict, data: dict, amount: int, due: int, lat, lon) -> None:
    """The amount taken must be exactly what is due; more is a private surcharge (a violation)."""
    if amount == due:
        return
    detail = {"amount": amount, "due": due}
    _refuse("amount_mismatch", f"The amount due is {due} fen (COD plus published fees), not {amount}.", task,
            kind, facts, data, lat, lon, exception=("amount_mismatch", detail),
            violation=("private_surcharge", detail) if amount > due else None)


def collect_payment(*, actor: Actor, task: Task, amount: int, method: str, lat: float | None = None,
                    lon: float | None = None, device_time: datetime | None = None, op_id: str | None = None,
                    clock_suspect: bool = False) -> Task:
    """pod.collect_payment: only after an accepted inspection, exactly COD plus published fees, once. Does not commit."""
    facts = {"actor": actor, "device_time": device_time, "op_id": op_id, "clock_suspect": clock_suspect}
    handover = _of(task)
    data = {"amount": amount, "method": method}
    if handover.paid_amount is not None:
        _refuse("already_paid", "This handover is already paid.", task, "collect_payment", facts, data, lat, lon)
    _ensure_open(task, handover, "collect_payment", facts, data)
    if handover.inspection != "accepted":
        _refuse("inspection_required", "Take the money only after the customer inspected and accepted.", task,
                "collect_payment", facts, data, lat, lon)
    _check_amount(task, "collect_payment", facts, data, amount, amount_due(task), lat, lon)
    handover.paid_amount, handover.paid_method = amount, method
    ledger.record_payment(courier_id=actor.courier_id, task_id=task.id, op_id=op_id, amount=amount, method=method,
                          device_time=device_time)
    _record(task, "collect_payment", facts, data, lat, lon)
    return task


_COURIER_NAMES = "fieldops.handover.courier_names"  # session.info: {courier id: name}, for this transaction


def _signer_is_courier(actor: Actor, signer_name: str) -> bool:
    """Whether the name signed is the courier's own.

    The name is remembered for the transaction (`_forget_steps` drops it at commit
    and rollback): the courier row, loaded and then unreferenced, would leave the
    session's (weak) identity map and be read again for every signature of a batch.
    """
    if not actor.courier_id:
        return False
    names = db.session.info.setdefault(_COURIER_NAMES, {})
    if actor.courier_id not in names:
        courier = db.session.get(Courier, actor.courier_id)
        names[actor.courier_id] = courier.name if courier is not None else None
    name = names[actor.courier_id]
    return name is not None and _same_person(name, signer_name)


def sign(*, actor: Actor, task: Task, signature: str, signer_name: str, lat: float, lon: float, gift_disclosed: bool,
         gift_seen: bool = True, device_time: datetime | None = None, op_id: str | None = None,
         clock_suspect: bool = False) -> Task:
    """pod.sign: the customer signs for an inspected, paid delivery from a verified recipient. Does not commit.

    `gift_seen` is False when dispatch added the gift after the handheld's copy: the
    courier could not tell the customer, so the signature stands and dispatch is
    told (an exception) to inform the customer, with no violation for the courier.
    """
    facts = {"actor": actor, "device_time": device_time, "op_id": op_id, "clock_suspect": clock_suspect}
    handover = _of(task)
    data = {"signature": signature, "signer_name": signer_name, "gift_disclosed": gift_disclosed}
    _ensure_open(task, handover, "sign", facts, data)
    if handover.inspection is None:
        _refuse("inspection_required", "The customer must count and inspect before signing.", task, "sign", facts,
                data, lat, lon, violation=("left_before_inspection", {"step": "sign"}))
    if handover.inspection != "accepted":
        _refuse("inspection_required", "The customer refused at inspection: record a refusal, not a signature.",
                task, "sign", facts, data, lat, lon)
    if task.cod_amount and handover.paid_amount is None:
        _refuse("payment_required", f"Collect {amount_due(task)} fen first (COD).", task, "sign", facts, data, lat,
                lon)
    if task.gift_description and not gift_disclosed and gift_seen:
        _refuse("gift_not_disclosed", "Tell the customer about the enclosed gift before they sign.", task, "sign",
                facts, data, lat, lon, violation=("gift_not_disclosed", {"gift": task.gift_description}))
    if not handover.recipient_verified:
        _refuse("recipient_unverified", "Check that the person is the recipient first.", task, "sign", facts, data,
                lat, lon)
    if _signer_is_courier(actor, signer_name):
        _refuse("courier_cannot_sign", "The courier cannot sign for the recipient.", task, "sign", facts, data,
                lat, lon)
    handover.signed, handover.signer_name, handover.signature_sha256 = True, signer_name, signature
    handover.gift_disclosed = gift_disclosed
    exceptions = _check_place(task, handover, lat, lon)
    if task.gift_description and not gift_disclosed:
        exceptions.append(("gift_not_disclosed", {"gift": task.gift_description, "reason": "added_after_device_copy"}))
    _finish(task, handover, "delivered", facts)
    _record(task, "sign", facts, data, lat, lon, exceptions)
    return task


def return_waybill(task: Task) -> str:
    """The return task's waybill: unique because the refused task's id is (a prefix of its waybill would not be)."""
    return f"RET-{task.id}".upper()


def _return_task(task: Task, actor: Actor) -> Task:
    """An unassigned return task for the refused task's parcels, for dispatch."""
    returned = Task(waybill_no=return_waybill(task), kind="return", status="unassigned",
                    recipient_name=task.recipient_name, recipient_phone=task.recipient_phone, address=task.address,
                    lat=task.lat, lon=task.lon, cod_amount=0, window_start=task.window_start,
                    window_end=task.window_end, service_date=task.service_date, return_of_id=task.id,
                    parcels=[Parcel(parcel_no=p.parcel_no, description=p.description, count=p.count,
                                    declared_value=p.declared_value, insured=p.insured) for p in task.parcels])
    returned.events.append(TaskEvent(kind="created", actor_kind=actor.kind, actor_id=actor.id, at=utcnow(),
                                     data={"return_of": task.id}))
    returned.appointment = tasks.new_appointment(returned, actor)
    db.session.add(returned)
    return returned


def refuse(*, actor: Actor, task: Task, reason: str, note: str | None, photos: list[str], lat: float | None = None,
           lon: float | None = None, device_time: datetime | None = None, op_id: str | None = None,
           clock_suspect: bool = False) -> Task:
    """pod.refuse: after an inspection, unpaid; the task is refused and a return task made. Does not commit."""
    facts = {"actor": actor, "device_time": device_time, "op_id": op_id, "clock_suspect": clock_suspect}
    handover = _of(task)
    data = {"reason": reason, "note": note, "photos": photos}
    _ensure_open(task, handover, "refuse", facts, data)
    if handover.inspection is None:
        _refuse("inspection_required", "A refusal comes after the customer inspected the parcel.", task, "refuse",
                facts, data, lat, lon)
    if handover.paid_amount is not None:
        _refuse("already_paid", "The customer paid: refund first, dispatch must settle it.", task, "refuse", facts,
                data, lat, lon)
    handover.refusal_reason = reason
    _add_photos(handover, photos)
    returned = _return_task(task, actor)
    _finish(task, handover, "refused", facts)
    _record(task, "refuse", facts, dict(data, return_task_waybill=returned.waybill_no), lat, lon,
            [("refusal", {"reason": reason, "note": note, "photos": photos})])
    return task


def _authorised(task: Task, handover: Handover, place: str, via: str, reference: str,
                device_time: datetime | None) -> bool:
    """Consent recorded for the place: on the customer page, or a recent contact attempt that reached the customer.

    Consent on the page counts for a drop made (device time) before the
    customer withdrew it: an offline handheld's late op keeps the consent it acted on.
    """
    if via == "customer_link":
        withdrawn = handover.consent_withdrawn_at
        return handover.consent_place == place and (
            withdrawn is None or (device_time is not None and device_time < withdrawn))
    appointment = task.appointment
    if not reference.strip() or appointment is None:
        return False
    # The call that asked: it reached the customer before the drop, and recently (not last week's call).
    at = device_time or utcnow()
    earliest = at - timedelta(hours=current_app.config["HANDOVER_CONSENT_CALL_HOURS"])
    return any(attempt.outcome == "reached" and earliest <= (attempt.device_time or attempt.received_at) <= at
               for attempt in appointment.attempts)


def deliver_alternate(*, actor: Actor, task: Task, place: str, via: str, reference: str, photos: list[str],
                      lat: float | None = None, lon: float | None = None, device_time: datetime | None = None,
                      op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """pod.deliver_alternate: a locker, station or neighbour, only with the customer's recorded consent. Does not commit."""
    facts = {"actor": actor, "device_time": device_time, "op_id": op_id, "clock_suspect": clock_suspect}
    handover = _of(task)
    data = {"place": place, "authorization": {"via": via, "reference": reference}, "photos": photos}
    _ensure_open(task, handover, "deliver_alternate", facts, data)
    if task.pin_required:
        _refuse("pin_required", "This task needs the recipient's PIN: it is handed over in person, not left.",
                task, "deliver_alternate", facts, data, lat, lon)
    if not _authorised(task, handover, place, via, reference, device_time):
        _refuse("authorization_required", f"No recorded consent of the customer to a {place} ({via}).", task,
                "deliver_alternate", facts, data, lat, lon)
    if task.cod_amount and handover.paid_amount is None:
        _refuse("payment_required", f"{amount_due(task)} fen is due: an unpaid COD parcel is handed over in person.",
                task, "deliver_alternate", facts, data, lat, lon)
    handover.alternate_place, handover.authorization = place, {"via": via, "reference": reference}
    _add_photos(handover, photos)
    _finish(task, handover, "delivered", facts)
    _record(task, "deliver_alternate", facts, data, lat, lon)
    return task


def pickup_collect(*, actor: Actor, task: Task, parcels: list[dict], fees: list[dict], payment: dict | None,
                   signature: str, signer_name: str, lat: float | None = None, lon: float | None = None,
                   device_time: datetime | None = None, op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """pickup.collect: the parcels taken, only published fees, their payment if made, the customer's signature.

    Does not commit.
    """
    facts = {"actor": actor, "device_time": device_time, "op_id": op_id, "clock_suspect": clock_suspect}
    handover = _of(task)
    data = {"parcels": parcels, "fees": fees, "payment": payment, "signature": signature, "signer_name": signer_name}
    _ensure_open(task, handover, "pickup_collect", facts, data, pickup=True)
    published = tasks.published_fee_codes()
    unknown = sorted({fee["code"] for fee in fees} - published)
    if unknown:
        _refuse("fee_not_published", f"Charge only published fees, not {', '.join(unknown)}.", task,
                "pickup_collect", facts, data, lat, lon, exception=("amount_mismatch", {"fees": fees}),
                violation=("private_surcharge", {"fees": fees}))
    quoted = {fee.code: fee.amount for fee in task.fees}
    charged = {fee["code"]: fee["amount"] for fee in fees}
    if quoted and charged != quoted:
        # Dispatch quoted the pickup's fees: the customer pays exactly those, nothing added.
        detail = {"fees": fees, "quoted": [{"code": c, "amount": a} for c, a in sorted(quoted.items())]}
        over = sum(charged.values()) > sum(quoted.values()) or bool(set(charged) - set(quoted))
        _refuse("amount_mismatch", "Charge exactly the fees quoted for this pickup.", task, "pickup_collect", facts,
                data, lat, lon, exception=("amount_mismatch", detail),
                violation=("private_surcharge", detail) if over else None)
    if payment is not None:
        _check_amount(task, "pickup_collect", facts, data, payment["amount"], sum(charged.values()), lat, lon)
    if _signer_is_courier(actor, signer_name):
        _refuse("courier_cannot_sign", "The courier cannot sign for the customer.", task, "pickup_collect", facts,
                data, lat, lon)
    handover.items = sorted(({"parcel_no": p["parcel_no"], "description": p["description"], "counted": p["count"]}
                             for p in parcels), key=lambda item: item["parcel_no"])
    handover.fees = sorted(fees, key=lambda fee: fee["code"])
    handover.signed, handover.signer_name, handover.signature_sha256 = True, signer_name, signature
    if payment is not None:
        handover.paid_amount, handover.paid_method = payment["amount"], payment["method"]
        ledger.record_payment(courier_id=actor.courier_id, task_id=task.id, op_id=op_id, amount=payment["amount"],
                              method=payment["method"], device_time=device_time)
    exceptions = _check_place(task, handover, lat, lon)
    _finish(task, handover, "collected", facts)
    _record(task, "pickup_collect", facts, data, lat, lon, exceptions)
    return task


def require_pin(*, actor: Actor, task_id: str) -> dict:
    """Dispatch requires a handover PIN: a new 6-digit PIN, returned this once; only its salted hash syncs. Commits.

    Asking again replaces the PIN (the old one stops working).
    """
    task = tasks.get(task_id=task_id, for_update=True)
    if task.status not in OPEN_STATUSES:
        raise RuleViolation(f"Task is {task.status}; its handover is over.", code="task_finished")
    before = snapshot(task)
    pin = f"{secrets.randbelow(10 ** 6):06d}"
    handover = _of(task)
    handover.pin_salt, handover.pin_iterations = secrets.token_hex(16), PIN_ITERATIONS
    handover.pin_hash = pin_digest(pin, handover.pin_salt, PIN_ITERATIONS)
    handover.pin_sealed, handover.pin_failures = sealing.seal(pin, purpose=PIN_SEALING, bound_to=task.id), 0
    # A recipient checked before the PIN was required (or with the PIN it replaces) is checked again.
    handover.recipient_verified, handover.verify_method = False, None
    task.pin_required = True
    tasks.record_event(task, "handover.pin_required", actor)
    audit(actor, "task.handover_pin", task, before)
    db.session.commit()
    return {"task_id": task.id, "pin": pin}


def pin_for_customer(task: Task) -> str | None:
    """The PIN the customer page shows its customer (None when no PIN is required)."""
    handover = task.handover
    if not task.pin_required or handover is None or handover.pin_sealed is None:
        return None
    try:
        return sealing.unseal(handover.pin_sealed, purpose=PIN_SEALING, bound_to=task.id)
    except ValueError:
        return None  # SECRET_KEY changed: dispatch issues a new PIN


def _consentable(task_id: str) -> tuple[Task, Handover]:
    """A delivery (or return) whose handover is still open: the customer may give or withdraw consent."""
    task = tasks.get(task_id=task_id, for_update=True)
    if task.status not in OPEN_STATUSES or (task.handover is not None and task.handover.outcome is not None):
        raise RuleViolation(f"Task is {task.status}; its handover is over.", code="task_closed")
    if task.kind == "pickup":
        raise RuleViolation("A pickup is not delivered elsewhere.", code="wrong_task_kind")
    return task, _of(task)


def record_consent(*, actor: Actor, task_id: str, place: str, note: str | None = None) -> Task:
    """The customer consents (on the customer page) to delivery at an alternate place. Commits.

    A new consent replaces the earlier one (and ends its withdrawal); the
    handheld sees it in the task's handover state on its next pull.
    """
    task, handover = _consentable(task_id)
    handover.consent_place, handover.consent_note = place, note
    handover.consent_at, handover.consent_withdrawn_at = utcnow(), None
    tasks.record_event(task, "handover.consent", actor, data={"place": place, "note": note})
    db.session.commit()
    return task


def withdraw_consent(*, actor: Actor, task_id: str) -> Task:
    """The customer takes back their consent before delivery. Commits; withdrawing none changes nothing.

    The place is kept beside the withdrawal time: a drop an offline handheld
    made before the withdrawal (device time) is still authorised.
    """
    task, handover = _consentable(task_id)
    if handover.consent_place is None or handover.consent_withdrawn_at is not None:
        return task
    handover.consent_withdrawn_at = utcnow()
    tasks.record_event(task, "handover.consent_withdrawn", actor, data={"place": handover.consent_place})
    db.session.commit()
    return task


def consent_for_customer(task: Task) -> dict | None:
    """The consent the customer page shows (place and note), None when none stands."""
    handover = task.handover
    if handover is None or handover.consent_place is None or handover.consent_withdrawn_at is not None:
        return None
    return {"place": handover.consent_place, "note": handover.consent_note}


def timeline(*, task_id: str) -> dict:
    """Dispatch's view of a task's handover: its state and every step, refused ones too."""
    task = tasks.get(task_id=task_id)
    steps = list(db.session.scalars(select(HandoverStep).where(HandoverStep.task_id == task_id)
                                    .order_by(HandoverStep.id)))
    with_receipts([task])
    return {"task": task, "handover": task.handover, "steps": steps}


def with_receipt(*, task_id: str) -> Task:
    """Dispatch's view of one task: the task, and its receipt once its handover finished."""
    return with_receipts([tasks.get(task_id=task_id)])[0]


def evidence_for(task: Task) -> dict:
    """The canonical evidence of a completed handover (delivery, refusal, pickup): what a receipt seals.

    JSON-serialisable and deterministic (lists sorted where order does not
    matter): the same handover gives the same evidence, byte for byte, once
    dumped with sorted keys.
    """
    handover = task.handover
    if handover is None or handover.outcome is None:
        raise NotFound(f"Task {task.id} has no completed handover.", code="handover_not_complete")
    items = handover.items or []
    fees = handover.fees if task.kind == "pickup" else sorted(
        ({"code": fee.code, "amount": fee.amount} for fee in task.fees), key=lambda fee: fee["code"])
    return {
        "task_id": task.id, "waybill_no": task.waybill_no, "task_kind": task.kind, "outcome": handover.outcome,
        "completed_at": receipts.time_text(handover.completed_at),
        "received_at": receipts.time_text(handover.completed_received_at),
        "recipient": privacy.surname_masked(task.recipient_name),
        # Free text the courier typed (a proxy's relation, a consent's reference) never enters the
        # evidence: the receipt is public and sealed, so nothing in it could be redacted later.
        "recipient_check": {"method": handover.verify_method, "proxy": handover.recipient_relation is not None},
        "signer": privacy.surname_masked(handover.signer_name) if handover.signer_name else None,
        "inspection": {"status": handover.inspection,
                       "customer_accepted": (handover.inspection == "accepted") if handover.inspection else None,
                       "items_counted": sum(item.get("counted", 0) for item in items),
                       "items_expected": sum(parcel.count for parcel in task.parcels),
                       "conditions": sorted({item.get("condition", "ok") for item in items}),
                       "items": items},
        "fees": fees or [], "cod_amount": task.cod_amount,
        "amount": handover.paid_amount or 0, "method": handover.paid_method,
        "signature": handover.signature_sha256, "photos": sorted(handover.photos or []),
        "gift_disclosed": handover.gift_disclosed if task.gift_description else None,
        "refusal_reason": handover.refusal_reason,
        "alternate": ({"place": handover.alternate_place, "consent_via": (handover.authorization or {}).get("via")}
                      if handover.alternate_place else None),
        "not_at_address": handover.not_at_address,
        "courier_id": handover.courier_id,
    }

"""A demo depot: staff, couriers, vans and a day of tasks with appointment windows, handovers; one van out of service."""
import hashlib
import random
import secrets
import uuid
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from schemas.vocab import OPEN_STATUSES
from server.auth import STAFF_TOKEN_PREFIX, SYSTEM, Actor
from server.clock import local_zone, utcnow
from server.courier_app import app_url, enroll_link
from server.extensions import db
from server.ids import hash_secret, new_token
from server.qr import qr_text
from server.requests import public_url
from server.models import (ApiToken, ChecklistTemplate, Claim, Courier, HandoverException, Parcel, Receipt, StaffUser,
                           Task, TaskAssignment, TrainingCourse, Vehicle, Violation)
from server.errors import RuleViolation
from server.services import (appointments, attachments, claims, complaints, customer_links, devices, grades, handover,
                             leaks, promises, receipts, scans, staff, tasks, training, violations)

_COURIERS = [("Wang Lei", "13800000001", "E1001"), ("Li Na", "13800000002", "E1002"),
             ("Zhang Wei", "13800000003", "E1003"), ("Liu Yang", "13800000004", "E1004"),
             ("Chen Jing", "13800000005", "E1005")]
_STREETS = ["Renmin Rd", "Jiefang Ave", "Zhongshan Rd", "Huaihai Rd", "Nanjing Rd", "Beijing Rd"]
_DEPOT = (31.2304, 121.4737)
_DEPOT_CODE = "SH01"  # the depot the demo's couriers work out of (its cash page: /console/depots/cash)
# The recipients, a courier's eight after another's (the k-th of courier n: n * 8 + k, round again past the end):
# realistic names, several 王 so the README's surname search (q=王) finds tasks, and a compound surname (欧阳).
_RECIPIENTS = ["王芳", "李娜", "张伟", "刘洋", "陈静", "杨磊", "欧阳娜娜", "赵敏",
               "黄丽", "王伟", "周杰", "吴婷", "徐强", "孙悦", "马超", "朱琳",
               "胡军", "郭静", "何平", "王秀英", "高峰", "林晓", "罗兰", "郑浩",
               "梁红", "谢明", "宋佳", "唐亮", "许娟", "王建国", "韩雪", "冯刚",
               "邓丽", "曹阳", "彭飞", "曾敏", "萧然", "田甜", "董洁", "王磊"]


def _staff_token(username: str, role: str) -> str:
    """A fresh token for a demo staff user, creating the user the first time."""
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None:
        return staff.create(username=username, role=role)[1]
    token = new_token(STAFF_TOKEN_PREFIX)
    db.session.add(ApiToken(staff_id=user.id, token_hash=hash_secret(token)))
    db.session.commit()
    return token


def _console_passwords(usernames: list[str]) -> list[str]:
    """A fresh random console password for each office demo user (printed this once, only its hash kept; an earlier
    run's password and sessions end), and the console's address."""
    lines = [f"console (sign in with a username and password below): {public_url('console.home')}"]
    for username in usernames:
        user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
        password = secrets.token_urlsafe(12)
        staff.set_password(actor=SYSTEM, staff_id=user.id, password=password)
        lines.append(f"console {user.role}: username {username}  password {password}")
    return lines


def _customer_link(actor: Actor, courier_id: str, now: datetime) -> str:
    """A line with a customer link for the courier's first ordinary open delivery (not yet reached, none of its
    parcels suspected or confirmed lost), preferably with a window not yet over."""
    task = db.session.scalar(select(Task).where(Task.courier_id == courier_id, Task.status == "assigned",
                                                Task.kind == "delivery",
                                                ~Task.parcels.any(Parcel.lost_state.in_(("suspected_lost", "lost"))))
                             .order_by(Task.window_end <= now, Task.window_start).limit(1))
    if task is None:
        return "customer link: no open task"
    link, token = customer_links.create(actor=actor, task_id=task.id)
    url = customer_links.page_url(token=token)
    return f"customer link for {task.waybill_no} (until {link.expires_at:%Y-%m-%d %H:%M} UTC): {url}"


def _receipt_link() -> str:
    """A line with the receipt page of a delivered demo task, where the customer claims (the claim form): the damaged
    delivery's (the page shows its claim from the exception, paid; none is open on its parcels), or any delivered
    task's."""
    paid = select(Claim.task_id).where(Claim.status == "paid")
    receipt = db.session.scalar(select(Receipt).join(Task, Task.id == Receipt.task_id)
                                .where(Task.status == "delivered", Task.kind == "delivery")
                                .order_by(Receipt.task_id.in_(paid).desc(), Receipt.number).limit(1))
    token = receipt and receipts.page_token(receipt)
    if token is None:
        return "receipt page: no delivered task"
    waybill = db.session.get(Task, receipt.task_id).waybill_no
    return f"receipt page of {waybill} (delivered; its paid claim and the claim form): {receipts.page_url(token=token)}"


def _appointment_day(courier: Courier, task_ids: list[str], now: datetime) -> str:
    """Give the first courier's day every appointment state, a failed attempt and a late_without_notice violation.

    The field facts carry device times around each window (an agreement an hour
    before it, arrivals inside or after it), and the windows lie around the
    seed's now (see `_window_start`), so the states are the same on whatever day
    and at whatever time of day the demo is seeded: the missed and not attempted
    windows ended before now, and no arrival is after it.
    """
    field = Actor(kind="courier", id=courier.id, role="courier", courier_id=courier.id)
    by_window = sorted((db.session.get(Task, task_id) for task_id in task_ids), key=lambda t: t.window_start)
    not_attempted, kept, late, late_noticed, missed, absent, *_, wrong_number, confirmed = by_window
    for task in (kept, late, late_noticed, missed, absent, confirmed):
        appointments.confirm_task(actor=field, task=task, start=task.window_start, end=task.window_end,
                                  via="phone", device_time=task.window_start - timedelta(hours=1))
    appointments.contact(actor=field, task=wrong_number, outcome="wrong_number", note="number not in service",
                         device_time=wrong_number.window_start - timedelta(hours=1))
    appointments.contact(actor=field, task=late, outcome="no_answer", note=None,
                         device_time=late.window_end - timedelta(minutes=30))
    appointments.arrive(actor=field, task=kept, lat=kept.lat, lon=kept.lon, at=kept.window_start + timedelta(minutes=25))
    appointments.arrive(actor=field, task=late, lat=late.lat, lon=late.lon, at=late.window_end + timedelta(minutes=35))
    appointments.late_notice(actor=field, task=late_noticed, eta=late_noticed.window_end + timedelta(minutes=30),
                             reason="traffic on the ring road", device_time=late_noticed.window_start - timedelta(minutes=45))
    appointments.arrive(actor=field, task=late_noticed, lat=late_noticed.lat, lon=late_noticed.lon,
                 at=late_noticed.window_end + timedelta(minutes=25))
    arrival = absent.window_start + timedelta(minutes=20)
    appointments.arrive(actor=field, task=absent, lat=absent.lat, lon=absent.lon, at=arrival)
    appointments.contact(actor=field, task=absent, outcome="no_answer", note="no one at the door",
                         device_time=arrival + timedelta(minutes=2))
    appointments.customer_absent(actor=field, task=absent, waited_minutes=15, device_time=arrival + timedelta(minutes=15))
    db.session.commit()
    appointments.sweep_missed(now=now)
    return (f"appointments of {courier.name}: unconfirmed {wrong_number.waybill_no} (wrong number), confirmed "
            f"{confirmed.waybill_no}, kept {kept.waybill_no}, late {late.waybill_no} (violation) and "
            f"{late_noticed.waybill_no} (with notice), missed {missed.waybill_no} (violation), not attempted "
            f"{not_attempted.waybill_no}, customer absent {absent.waybill_no} (failed)")


_SIGNATURE = b"\x89PNG\r\n\x1a\n" + bytes(range(64))  # a stand-in image for signatures and photos


def _passing(template: ChecklistTemplate, odometer: int) -> list[dict]:
    """Every item of the template's current version answered as passing (the odometer as read)."""
    items = next(v.items for v in template.versions if v.number == template.current)
    passing = {"pass_fail": True, "number": 0, "choice": "tied"}
    return [{"item": i["code"], "value": odometer if i["code"] == "odometer" else passing.get(i["type"])}
            for i in items]


def _start_shift(driver: Actor, at: datetime) -> None:
    """The courier's day begins as the rules say: the conduct check, the van's pre-trip check, then the shift."""
    from server.services import checklists
    checklists.seed_defaults()
    van = db.session.scalar(select(Vehicle).where(Vehicle.courier_id == driver.courier_id))
    for kind, vehicle_id in (("conduct.pre_shift", None), ("vehicle.pre_trip", van.id)):
        template = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.kind == kind,
                                                                     ChecklistTemplate.status == "active"))
        checklists.submit(actor=driver, submission_id=str(uuid.uuid4()), template_id=template.id,
                          template_version=template.current, answers=_passing(template, 31_500),
                          lat=_DEPOT[0], lon=_DEPOT[1], device_time=at, op_id=str(uuid.uuid4()), vehicle_id=vehicle_id)
    checklists.start_shift(actor=driver, vehicle=van, odometer=31_500, device_time=at, op_id=str(uuid.uuid4()),
                           lat=_DEPOT[0], lon=_DEPOT[1])


def _handover_day(courier: Courier, task_ids: list[str], now: datetime) -> str:
    """Give the second courier's day each kind of handover, through the same rules the handheld's ops run.

    A COD delivery (the cash in the ledger), a refusal with its return task, a
    damaged item signed for, an authorised locker delivery and a pickup: on
    tasks whose window began long enough before now that every step (at most
    half an hour into the window) has happened. The day begins with the checks
    and the shift, so none of it is work outside a shift.
    """
    field = Actor(kind="courier", id=courier.id, role="courier", courier_id=courier.id)
    sha = attachments.store(actor=field, sha256=hashlib.sha256(_SIGNATURE).hexdigest(), data=_SIGNATURE)[0].sha256
    todo = sorted((t for t in (db.session.get(Task, task_id) for task_id in task_ids)
                   if t.window_start + timedelta(minutes=30) <= now), key=lambda t: t.window_start)
    _start_shift(field, todo[0].window_start - timedelta(minutes=5))
    pickup = next(t for t in todo if t.kind == "pickup")
    cod = next((t for t in todo if t.kind == "delivery" and t.cod_amount), None)
    deliveries = [t for t in todo if t.kind == "delivery" and t is not cod]
    locker = next(t for t in deliveries if not t.cod_amount)
    refused, damaged = [t for t in deliveries if t is not locker][:2]

    def at(task: Task, minutes: int) -> dict:
        """The op facts of a step `minutes` into the task's window."""
        return {"actor": field, "device_time": task.window_start + timedelta(minutes=minutes)}

    def counted(task: Task, condition: str = "ok") -> list[dict]:
        """Every parcel counted as expected."""
        return [{"parcel_no": p.parcel_no, "counted": p.count, "condition": condition} for p in task.parcels]

    for task, condition, accepted in ((cod, "ok", True), (damaged, "damaged", True), (refused, "ok", False)):
        if task is None:
            continue
        handover.verify_recipient(task=task, method="id_check", name=task.recipient_name, relation=None, pin=None,
                                  lat=task.lat, lon=task.lon, **at(task, 20))
        handover.inspect(task=task, items=counted(task, condition), customer_accepted=accepted,
                         photos=[sha] if condition != "ok" else [], **at(task, 22))
        if not accepted:
            handover.refuse(task=task, reason="quality", note="the customer found it faulty", photos=[], **at(task, 25))
            continue
        if task.cod_amount:
            handover.collect_payment(task=task, amount=handover.amount_due(task), method="cash", **at(task, 25))
        handover.sign(task=task, signature=sha, signer_name=task.recipient_name, lat=task.lat, lon=task.lon,
                      gift_disclosed=False, **at(task, 27))
    appointments.contact(actor=field, task=locker, outcome="reached", note="agreed to the locker",
                         device_time=locker.window_start + timedelta(minutes=10))
    handover.deliver_alternate(task=locker, place="locker", via="contact", reference="phone call", photos=[sha],
                               lat=locker.lat, lon=locker.lon, **at(locker, 30))
    handover.pickup_collect(task=pickup, parcels=[{"parcel_no": f"PK-{pickup.waybill_no}", "description": "documents",
                                                   "count": 1}], fees=[{"code": "delivery", "amount": 1200}],
                            payment={"amount": 1200, "method": "qr"}, signature=sha, signer_name=pickup.recipient_name,
                            lat=pickup.lat, lon=pickup.lon, **at(pickup, 15))
    db.session.commit()
    return (f"handovers of {courier.name}: COD {cod.waybill_no if cod else '-'}, refused {refused.waybill_no} "
            f"(return {handover.return_waybill(refused)}), damaged {damaged.waybill_no}, locker {locker.waybill_no}, "
            f"pickup {pickup.waybill_no}; " + _claims(damaged, refused, [t for t in (cod, locker) if t] + deliveries))


def _claims(damaged: Task, refused: Task, others: list[Task]) -> str:
    """One claim in each state: the damage signed for claimed and paid, the refusal's claim rejected, and claims
    dispatch opened for other parcels left opened, assessed and approved."""
    quality = Actor(kind="staff", id=db.session.scalar(
        select(StaffUser.id).where(StaffUser.username == "demo-quality")), role="quality")
    admin = Actor(kind="staff", id=db.session.scalar(
        select(StaffUser.id).where(StaffUser.username == "demo-admin")), role="admin")

    def exception_of(task: Task, kind: str) -> str:
        return str(db.session.scalar(select(HandoverException.id).where(HandoverException.task_id == task.id,
                                                                        HandoverException.kind == kind)))

    paid = claims.open_claim(actor=quality, origin="exception", origin_id=exception_of(damaged, "damage"),
                             parcel_no=damaged.parcels[0].parcel_no, description="Crushed box, the contents broken.",
                             claimed_amount=8000)
    claims.assess(actor=quality, claim_id=paid.id, loss_amount=6000)
    claims.approve(actor=quality, claim_id=paid.id)
    claims.pay(actor=admin, claim_id=paid.id, reference="DEMO-PAY-0001")
    rejected = claims.open_claim(actor=quality, origin="refusal", origin_id=exception_of(refused, "refusal"),
                                 parcel_no=refused.parcels[0].parcel_no, kind="other",
                                 description="The customer says it was faulty.", claimed_amount=3000)
    claims.reject(actor=quality, claim_id=rejected.id, reason="Refused for quality: the sender's matter.")
    later = list({t.id: t for t in others if t.id not in (damaged.id, refused.id)}.values())[:3]
    for n, task in enumerate(later):
        claim = claims.open_claim(actor=quality, origin="dispatch", task_id=task.id,
                                  parcel_no=task.parcels[0].parcel_no, kind="damage",
                                  description="The customer called: a dented box.", claimed_amount=2000)
        if n >= 1:
            claims.assess(actor=quality, claim_id=claim.id, loss_amount=1500)
        if n >= 2:
            claims.approve(actor=quality, claim_id=claim.id)
    return f"claims: paid, rejected, and {len(later)} opened, assessed, approved"
# A 1x1 PNG: the demo's photo of the broken safety equipment.
_DEMO_PHOTO = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                            "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5d9bd6f0000000049454e44ae426082")


def _journey_day(dispatcher: Actor, courier: Courier, task_ids: list[str], now: datetime) -> str:
    """The courier's parcels on their way, through the rules the handheld's and upstream's scans run: every parcel
    arrived at the depot (upstream) and out for delivery (the handheld) this morning, but a parcel of two open tasks
    last seen at the depot more than FIELDOPS_LOST_AFTER_HOURS ago: the lost-parcels job suspects both, and dispatch
    confirms lost the one of the first open delivery (its window over and not attempted: it never left the depot);
    the last one's stays suspected. The open deliveries between keep their parcels, out for delivery (the customer
    link the seed prints is for one of them)."""
    field = Actor(kind="courier", id=courier.id, role="courier", courier_id=courier.id)
    upstream = Actor(kind="staff", id=db.session.scalar(
        select(StaffUser.id).where(StaffUser.username == "demo-upstream")), role="integration")
    todo = sorted((db.session.get(Task, task_id) for task_id in task_ids), key=lambda t: t.window_start)
    todo = [t for t in todo if t.kind == "delivery"]
    still_open = [t for t in todo if t.status in OPEN_STATUSES]
    missing = [still_open[0], still_open[-1]]
    on_way = [t for t in todo if t not in missing]
    stale = now - timedelta(hours=current_app.config["LOST_AFTER_HOURS"] + 2)
    morning = min(min(t.window_start for t in on_way) - timedelta(hours=2), now - timedelta(minutes=30))
    scans.record_upstream(actor=upstream, scans=[
        {"event_id": f"DEMO-{parcel.parcel_no}", "parcel_no": parcel.parcel_no, "event": "arrived_depot",
         "occurred_at": stale if task in missing and parcel is task.parcels[0] else morning, "note": None}
        for task in todo for parcel in task.parcels])
    for task in on_way:
        for parcel in task.parcels:
            scans.scan(actor=field, task=task, parcel_no=parcel.parcel_no, event="out_for_delivery", note=None,
                       device_time=morning + timedelta(minutes=40))
    db.session.commit()
    scans.flag_unscanned(now=now)
    lost = missing[0].parcels[0]
    scans.settle_lost(actor=dispatcher, parcel_id=lost.id, state="lost")
    return (f"journeys of {courier.name}: {sum(len(t.parcels) for t in on_way)} parcels out for delivery; "
            f"suspected lost {missing[1].parcels[0].parcel_no} ({missing[1].waybill_no}), "
            f"confirmed lost {lost.parcel_no} ({missing[0].waybill_no})")


def _van_out_of_service(courier: Courier, vehicle_id: str, now: datetime) -> str:
    """The courier's pre-trip check failed the (critical) safety equipment: the van is out of service."""
    from server.services import checklists
    checklists.seed_defaults()
    template = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.kind == "vehicle.pre_trip",
                                                                 ChecklistTemplate.status == "active"))
    photo = hashlib.sha256(_DEMO_PHOTO).hexdigest()
    driver = Actor(kind="courier", id=courier.id, role="courier", courier_id=courier.id)
    attachments.store(actor=driver, sha256=photo, data=_DEMO_PHOTO)
    answers = _passing(template, 48_210)
    for answer in answers:
        if answer["item"] == "safety_equipment":
            answer.update(value=False, photo=photo)
    checklists.submit(actor=driver, submission_id=str(uuid.uuid4()), template_id=template.id,
                      template_version=template.current, answers=answers, lat=_DEPOT[0], lon=_DEPOT[1],
                      device_time=now, op_id=str(uuid.uuid4()), vehicle_id=vehicle_id)
    db.session.commit()
    return f"van of {courier.name} is out of service: its safety equipment failed the pre-trip check"
def _complaint(quality: Actor, courier: Courier, task: Task, category: str, text: str, *, now: datetime,
               upheld: bool = True, hours_ago: int = 30) -> None:
    """A complaint about the courier's task, received hours ago; unless upheld is False, answered, called again
    (two contacts: not resolved at first contact) and upheld."""
    complaint = complaints.create(actor=quality, task_id=task.id, courier_id=courier.id, channel="phone",
                                  category=category, text=text, received_at=now - timedelta(hours=hours_ago))
    if upheld:
        complaints.respond(actor=quality, complaint_id=complaint.id, text="We called the customer back.")
        complaints.add_contact(actor=quality, complaint_id=complaint.id, channel="phone",
                               note="Called again once the courier's account was in.")
        complaints.resolve(actor=quality, complaint_id=complaint.id, outcome="upheld",
                           note="Confirmed with the courier.")


def _grades(quality: Actor, couriers: list[Courier], now: datetime) -> str:
    """Couriers at each grade: the first keeps A (two late arrivals), the second B, the third C; then the job.

    B: two upheld complaints (major, 8 each) leave 84. C: two upheld complaints
    and a private surcharge (critical, 20) leave 64. The fourth courier has an
    unanswered complaint past its response target (overdue).
    """
    first_task = {c.id: db.session.scalar(select(Task).where(Task.courier_id == c.id).order_by(Task.id).limit(1))
                  for c in couriers}
    _, b, c, overdue, *_ = couriers
    _complaint(quality, b, first_task[b.id], "impolite", "The courier was rude at the door.", now=now)
    _complaint(quality, b, first_task[b.id], "late", "Came two hours after the agreed time.", now=now)
    _complaint(quality, c, first_task[c.id], "surcharge", "Asked for 10 yuan for carrying upstairs.", now=now)
    _complaint(quality, c, first_task[c.id], "gift_withheld", "The promised gift was not handed over.", now=now)
    violations.record_auto(courier_id=c.id, code="private_surcharge", task_id=first_task[c.id].id,
                           occurred_at=now - timedelta(days=2),
                           evidence={"fee": "stairs", "amount": 1000, "found_by": "handover check"})
    db.session.commit()
    _complaint(quality, overdue, first_task[overdue.id], "damage", "The box was crushed.", now=now, upheld=False)
    grades.recompute_all()
    return "grades: " + ", ".join(f"{courier.name} {courier.grade}" for courier in couriers[:3]) + \
        f"; an overdue complaint about {overdue.name}"


def _owned_complaints(dispatcher: Actor, quality: Actor, courier: Courier, now: datetime) -> str:
    """首问负责制 on the first courier's tasks: a complaint the dispatcher received, answered and handed to the
    quality team with the reason; and one the customer filed on their page, unowned in the queue."""
    first, second = db.session.scalars(select(Task).where(Task.courier_id == courier.id, Task.kind == "delivery")
                                       .order_by(Task.id).limit(2))
    owned = complaints.create(actor=dispatcher, task_id=first.id, channel="phone", category="dispute",
                              text="The courier would not wait while I checked the parcel.",
                              received_at=now - timedelta(hours=5))
    complaints.respond(actor=dispatcher, complaint_id=owned.id, text="We are sorry; we are checking with him.")
    complaints.hand_over(actor=dispatcher, complaint_id=owned.id, to_staff_id=quality.id,
                         reason="The customer asks for the inspection rules: the quality team answers that.")
    filed = complaints.file_for_customer(actor=Actor(kind="customer", id=None, role="customer"), task_id=second.id,
                                         channel="customer_page", subject="hotline", category="other",
                                         text="The hotline kept me waiting for twenty minutes.")
    return (f"complaint {owned.reference} handed from dispatch to quality; complaint {filed.reference} filed by "
            "a customer, waiting in the unowned queue (?owner=none)")


def _leak_incident(quality: Actor, courier: Courier, now: datetime) -> str:
    """One information-leak incident (信息泄露事件), confirmed, with management and the customers told: a customer
    reported seeing a photo of a delivery list in a chat group; it counts in leak_incidents today."""
    incident = leaks.open_incident(
        actor=quality, source="customer_report", occurred_at=now - timedelta(hours=26), occurred_approximate=True,
        discovered_at=now - timedelta(hours=3), data_kinds=["name", "phone", "address"], people_affected=12,
        responsible_courier_id=courier.id,
        description="A customer saw a photo of a printed delivery list (names, phones, addresses) in a chat group.")
    leaks.confirm(actor=quality, incident_id=incident.id, note="The photo shows the courier's list of yesterday.")
    leaks.notify(actor=quality, incident_id=incident.id, audience="management", channel="email",
                 notified_at=now - timedelta(hours=2), note="Depot manager told; lists are no longer printed.")
    leaks.notify(actor=quality, incident_id=incident.id, audience="customers", channel="sms",
                 notified_at=now - timedelta(hours=1), note="The 12 customers on the list were told.")
    return f"leak incident {incident.id}: confirmed, management and customers told (courier {courier.name})"


def _training_sessions(quality: Actor, now: datetime) -> tuple[int, int]:
    """The depot's courses: a pre-job course (passed for good) and a yearly periodic one; a session of each held
    weeks before the day, whose attendance each courier is given as they join. Returns the two sessions' ids."""
    pre_job = training.create_course(actor=quality, code="PJ-SAFETY", name="岗前安全与服务规范 (pre-job safety and service)",
                                     kind="pre_job", validity_months=None)
    periodic = training.create_course(actor=quality, code="PR-SERVICE", name="定期服务规范复训 (periodic service refresher)",
                                      kind="periodic", validity_months=12)
    first = training.create_session(actor=quality, course_id=pre_job.id, held_at=now - timedelta(days=60),
                                    trainer="Zhou Min", location="Depot training room")
    second = training.create_session(actor=quality, course_id=periodic.id, held_at=now - timedelta(days=45),
                                     trainer="Zhou Min", location="Depot training room")
    return first.id, second.id


def _retraining(quality: Actor, courier: Courier) -> str:
    """The C-grade courier's shift is refused (training_required) until they pass a refresher held since the grade
    was given; then the day begins."""
    from server.services import checklists
    driver = Actor(kind="courier", id=courier.id, role="courier", courier_id=courier.id)
    van = db.session.scalar(select(Vehicle).where(Vehicle.courier_id == courier.id))
    at = utcnow()  # the grade was given just now (grades.recompute_all): the refresher and the shift follow it
    try:
        checklists.start_shift(actor=driver, vehicle=van, odometer=31_500, device_time=at, op_id=str(uuid.uuid4()))
        raise AssertionError("a C-grade courier's shift started without retraining")
    except RuleViolation as refusal:
        refused = f"{refusal.code}: {refusal.detail}"
    course = db.session.scalar(select(TrainingCourse).where(TrainingCourse.code == "PR-SERVICE"))
    refresher = training.create_session(actor=quality, course_id=course.id, held_at=at, trainer="Zhou Min",
                                        location="Depot training room")
    training.record_attendance(actor=quality, session_id=refresher.id, attendance=[
        {"courier_id": courier.id, "attended": True, "passed": True, "score": 86}])
    _start_shift(driver, at)
    db.session.commit()
    return (f"training: every courier passed PJ-SAFETY and PR-SERVICE; {courier.name} (grade {courier.grade}) was "
            f"refused shift.start ({refused}), passed refresher session {refresher.id}, then started the shift")


def _conduct(quality: Actor, couriers: list[Courier], now: datetime) -> str:
    """A spot check of the third courier (one item failed: a violation of theirs), and the fourth courier's appeal
    of a private surcharge voided by quality: their grade went B (80) and back to A, the history saying why."""
    from server.services import checklists

    checklists.seed_defaults()
    _, _, inspected, appealing, *_ = couriers
    template = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.kind == "inspection",
                                                                 ChecklistTemplate.status == "active"))
    version = next(v for v in template.versions if v.number == template.current)
    answers = [{"item": item["code"], "value": item["code"] != "polite_phrases"} for item in version.items
               if item["type"] == "pass_fail"]
    inspection = checklists.record_inspection(
        actor=quality, kind="spot_check", template_id=template.id, answers=answers, courier_id=inspected.id,
        inspected_at=now - timedelta(hours=3), inspector="联合稽查组 Team 2",
        notes="Handed the parcel over without a greeting.")
    task = db.session.scalar(select(Task).where(Task.courier_id == appealing.id).order_by(Task.id).limit(1))
    violations.record_auto(courier_id=appealing.id, code="private_surcharge", task_id=task.id,
                           key=f"demo:{task.id}", occurred_at=now - timedelta(days=1),
                           evidence={"fee": "stairs", "amount": 500, "found_by": "a customer's call"})
    db.session.commit()
    grades.recompute(actor=quality, courier_id=appealing.id, now=now)
    violation_id = db.session.scalar(select(Violation.id).where(Violation.dedupe_key == f"private_surcharge:demo:{task.id}"))
    field = Actor(kind="courier", id=appealing.id, role="courier", courier_id=appealing.id)
    violations.appeal(actor=field, appeal_id=str(uuid.uuid4()), violation_id=violation_id,
                      reason="The customer asked me to carry it upstairs and tipped me; I charged nothing.",
                      photos=[], device_time=now - timedelta(hours=5), op_id=str(uuid.uuid4()))
    db.session.commit()
    violations.decide_appeal(actor=quality, violation_id=violation_id, outcome="voided",
                             reason="The customer confirmed on the phone it was a tip, not a fee.")
    return (f"conduct: a spot check of {inspected.name} (inspection {inspection.id}) failed polite_phrases; "
            f"{appealing.name}'s appeal of a private surcharge was voided (grade B, then A again)")


def _window_start(anchor: datetime, k: int) -> datetime:
    """The start of the k-th of a courier's hourly two-hour windows, which lie around the seed's anchor.

    The first six end by the anchor's last full hour (the missed one, the fifth,
    an hour before it; every arrival and handover step of the day comes before
    the anchor), the last two are still open: whatever the time of day, the demo
    has past facts and a window still open to offer the customer.
    """
    hour = anchor.astimezone(local_zone()).replace(minute=0, second=0, microsecond=0)
    return hour + timedelta(hours=k - 7)


def _promise(n: int, k: int, kind: str, anchor: datetime, now: datetime) -> dict:
    """A delivery's service product and collection: 隔日达 collected the evening before (on track), but on the third
    courier's first two, 标快 (72 h) collected so that one is due within the hour (at risk) and one was due half an
    hour ago (breached); the last courier's deliveries come from a legacy manifest (no product: promise unknown)."""
    if kind != "delivery" or n == len(_COURIERS) - 1:
        return {}
    if n == 2 and k in (0, 1):
        due = now + timedelta(minutes=60) if k == 0 else now - timedelta(minutes=30)
        return {"service_product": "standard", "collected_at": due - timedelta(hours=72)}
    return {"service_product": "day_after", "collected_at": anchor - timedelta(hours=20)}


def _promises_line(courier: Courier, created: list[Task], now: datetime) -> str:
    """Which of the courier's tasks are at risk of breaking their promise, and which broke it."""
    states = {task.waybill_no: promises.state(task, now) for task in created}
    at_risk = [waybill for waybill, state in states.items() if state == "at_risk"]
    breached = [waybill for waybill, state in states.items() if state == "breached"]
    return f"promises of {courier.name}: at risk {', '.join(at_risk)}; breached {', '.join(breached)}"


def _story_day(service_day: date, today: date) -> str:
    """Which depot day's board holds the story: the windows lie in the hours around the seed (past facts need past
    windows), so seeded in the depot's early hours most of them fall on the day before, and its board shows them."""
    days = db.session.execute(select(Task.service_date, func.count()).where(Task.waybill_no.startswith(f"SF{service_day:%y%m%d}"))
                              .group_by(Task.service_date)).all()
    story = max(days, key=lambda row: (row[1], row[0]))[0]
    where = public_url("console.home") + f"?date={story.isoformat()}"
    if story == today:
        return f"the story is on today's board ({story}): {where}"
    return (f"the story is on the board of {story}, not today's ({today}): most of its windows lie on that "
            f"depot day (the ones still open on today's); open {where}")


def seed(*, day: str | None = None, now: datetime | None = None, tasks_per_courier: int = 8) -> list[str]:
    """Create the demo depot once; later runs only add fresh tokens and console passwords. Returns lines to print.

    The day's facts are dated at or before `now` (default: the clock's); `day`, a
    past service date, puts the windows at now's time of day on that date.
    """
    rng = random.Random(7)
    now = now or utcnow()
    zone = local_zone()
    today = now.astimezone(zone)
    service_day = date.fromisoformat(day) if day else today.date()
    if service_day > today.date():
        raise ValueError(f"{service_day} has not begun: the demo's facts must have happened")
    anchor = datetime.combine(service_day, today.time(), zone)
    dispatch_token = _staff_token("demo-dispatch", "dispatcher")
    quality_token = _staff_token("demo-quality", "quality")
    admin_token = _staff_token("demo-admin", "admin")
    integration_token = _staff_token("demo-upstream", "integration")
    actor = Actor(kind="staff", id=db.session.scalar(
        select(StaffUser.id).where(StaffUser.username == "demo-dispatch")), role="dispatcher")
    lines = [f"dispatcher token: {dispatch_token}", f"quality token: {quality_token}",
             f"admin token (pays and corrects claims, staff, webhooks): {admin_token}",
             f"integration token (upstream scans, manifests, the event feed): {integration_token}"]
    lines += _console_passwords(["demo-dispatch", "demo-quality", "demo-admin"])  # integration: a machine, no console
    if db.session.scalar(select(Courier.id).where(Courier.employee_no == "E1001")) is None:
        from server.services import couriers, vehicles
        quality = Actor(kind="staff", id=db.session.scalar(
            select(StaffUser.id).where(StaffUser.username == "demo-quality")), role="quality")
        sessions = _training_sessions(quality, now)
        for n, (name, phone, employee_no) in enumerate(_COURIERS):
            courier = couriers.create(actor=actor, name=name, phone=phone, employee_no=employee_no,
                                      depot=_DEPOT_CODE)
            for session_id in sessions:  # trained before their first shift (the shift gate)
                training.record_attendance(actor=quality, session_id=session_id, attendance=[
                    {"courier_id": courier.id, "attended": True, "passed": True, "score": 90 - n}])
            van = vehicles.create(actor=actor, plate=f"沪A{10001 + n}", kind="van")
            vehicles.update(actor=actor, vehicle_id=van.id, changes={"courier_id": courier.id})
            specs = []
            for k in range(tasks_per_courier):
                start = _window_start(anchor, k % 8)
                kind = "pickup" if k % 5 == 4 else "delivery"
                drawn = rng.choice([0, 0, 0, 4990, 12800])  # drawn for every task: the rest of the day stays as it was
                cod = drawn if kind == "delivery" else 0  # a pickup collects its fees only, no COD
                specs.append({
                    "waybill_no": f"SF{service_day:%y%m%d}{n}{k:03d}",
                    "kind": kind,
                    "recipient": {"name": _RECIPIENTS[(n * 8 + k) % len(_RECIPIENTS)], "phone": f"139{n:02d}{k:06d}",
                                  "address": f"{rng.randint(1, 999)} {rng.choice(_STREETS)}",
                                  "lat": _DEPOT[0] + rng.uniform(-0.05, 0.05),
                                  "lon": _DEPOT[1] + rng.uniform(-0.05, 0.05)},
                    "parcels": [{"parcel_no": f"P{n}{k:03d}-{i}", "description": "box",
                                 "count": rng.randint(1, 3)} for i in range(rng.randint(1, 2))],
                    "cod_amount": cod,
                    "fees": [{"code": "delivery", "amount": 1200}]
                            + ([{"code": "cod_service", "amount": 200}] if cod else []),
                    "window": {"start": start, "end": start + timedelta(hours=2)},
                    **_promise(n, k, kind, anchor, now),
                })
            created = tasks.import_tasks(actor=actor, specs=specs,
                                         labels=[f"tasks.{i}" for i in range(len(specs))])
            for task in created:
                tasks.assign(actor=actor, task_id=task.id, courier_id=courier.id)
            # Dispatch assigned the day's tasks before the morning's first window, and not after now
            # (the seed runs at any hour; a handover made earlier today, or just after seeding before
            # dawn, must not come before its assignment).
            assigned_at = min(min(t.window_start for t in created) - timedelta(hours=2), now)
            db.session.execute(update(TaskAssignment).where(TaskAssignment.task_id.in_([t.id for t in created]))
                               .values(assigned_at=assigned_at))
            db.session.commit()
            if n == 0:
                lines.append(_appointment_day(courier, [t.id for t in created], now))
                lines.append(_journey_day(actor, courier, [t.id for t in created], now))
            if n == 1:
                lines.append(_handover_day(courier, [t.id for t in created], now))
            if n == 2:
                lines.append(_promises_line(courier, created, now))
            if n == len(_COURIERS) - 1:
                lines.append(_van_out_of_service(courier, van.id, now))
        demo_couriers = list(db.session.scalars(
            select(Courier).where(Courier.employee_no.in_([e for _, _, e in _COURIERS])).order_by(Courier.employee_no)))
        lines.append(_grades(quality, demo_couriers, now))
        lines.append(_retraining(quality, demo_couriers[2]))
        lines.append(_owned_complaints(actor, quality, db.session.scalar(
            select(Courier).where(Courier.employee_no == "E1001")), now))
        lines.append(_leak_incident(quality, db.session.scalar(select(Courier).where(Courier.employee_no == "E1002")),
                                    now))
        lines.append(_conduct(quality, list(db.session.scalars(
            select(Courier).where(Courier.employee_no.in_([e for _, _, e in _COURIERS])).order_by(Courier.employee_no))), now))
        lines.append(_story_day(service_day, today.date()))
        lines.append(f"created {len(_COURIERS)} couriers with vans and "
                     f"{len(_COURIERS) * tasks_per_courier} tasks on {service_day} "
                     "(and the refusal's return task, unassigned)")
    else:
        lines.append("demo depot already present; issued fresh tokens and console passwords only")
    first = db.session.scalar(select(Courier).where(Courier.employee_no == "E1001"))
    _, code = devices.create_enrollment(actor=actor, courier_id=first.id)
    lines.append(f"enrollment code for {first.name} (15 min): {code}")
    lines.append(f"the courier's app: {app_url()}  (a phone needs HTTPS for it: README, \"The courier's app\")")
    lines.append(f"enrollment QR for {first.name}: the phone's camera opens the app holding the code: {enroll_link(code)}")
    lines.append(qr_text(enroll_link(code)))
    lines.append(_customer_link(actor, first.id, now))
    lines.append(_receipt_link())
    lines.append(f"tasks: {db.session.query(Task).count()}, vehicles: {db.session.query(Vehicle).count()}")
    return lines

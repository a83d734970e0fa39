"""Checklists: versioned templates, submissions checked against them, van defects and repairs, shifts.

One engine serves the courier's conduct and the van's condition. A submission
is made on the handheld (a create op: its id is the device's UUID) and never
changes. A failed vehicle item opens a defect; a critical one takes the van out
of service at once, until maintenance closes every critical defect. A failed
conduct item records a violation. Rules decide by the op's device time. Inspection
templates (spot checks, mystery shoppers) are filled in by quality staff over HTTP,
checked by the same engine, and never reach a handheld.
"""
import math
from datetime import datetime, timedelta

import marshmallow as ma
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from schemas.checklists import MAX_READING
from schemas.common import Text
from schemas.limits import MAX_INT32, MAX_INT64
from schemas.vocab import STAFF_CHECK_KINDS, VEHICLE_CHECK_KINDS
from server.auth import Actor
from server.checklist_defaults import DEFAULT_TEMPLATES, SAFETY_ITEMS
from server.clock import filed_at, local_day_start, utcnow
from server.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from server.extensions import db
from server.geo import distance_m
from server.models import (ChecklistSubmission, ChecklistTemplate, ChecklistTemplateVersion, Courier, Inspection,
                           Shift, StaffUser, Task, Vehicle, VehicleDefect, Violation)
from server.services import attachments, duty, events, tasks, training, violations
from server.services.common import audit, get_or_404, newest_first, paginate, pending, snapshot

TEMPLATE_WRITERS = ("admin", "quality")
TEMPLATE_READERS = ("admin", "quality", "maintenance")
REPAIRERS = ("admin", "maintenance")
LAST_REPORTS = 5  # vehicle checks the dispatch view of a van lists
MAX_TEXT_ANSWER = 1000
_TEXT_ANSWER = Text(MAX_TEXT_ANSWER, multiline=True)


# --- templates -----------------------------------------------------------------------------------------------

def _with_current_items(template: ChecklistTemplate) -> ChecklistTemplate:
    """Give the template its current version's items for the dump."""
    template.current_items = next((v.items for v in template.versions if v.number == template.current), [])
    return template


def _items(items: list[dict]) -> list[dict]:
    """Items as stored: every key present (None where it does not apply)."""
    keys = ("code", "label_zh", "label_en", "type", "required", "severity", "photo_required_on_failure",
            "min", "max", "unit", "choices", "failing_choices")
    return [{key: item.get(key) for key in keys} for item in items]


def create_template(*, actor: Actor, kind: str, name: str, items: list[dict]) -> ChecklistTemplate:
    """A new template; its items are version 1, published at once (every device gets it on its next pull)."""
    template = ChecklistTemplate(kind=kind, name=name, status="active", current=1)
    template.versions = [ChecklistTemplateVersion(number=1, items=_items(items), published_at=utcnow(),
                                                  published_by=actor.id if actor.kind == "staff" else None)]
    db.session.add(template)
    audit(actor, "checklist_template.create", template, None)
    db.session.commit()
    return _with_current_items(template)


def get_template(*, template_id: str) -> ChecklistTemplate:
    """One template with every version, or 404."""
    template = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.id == template_id)
                                 .options(selectinload(ChecklistTemplate.versions)))
    if template is None:
        raise NotFound(f"No checklist template {template_id}.", code="template_not_found")
    return _with_current_items(template)


def list_templates(*, kind: str | None, status: str | None, cursor: str | None, limit: int) -> dict:
    """A page of templates with their current items."""
    query = select(ChecklistTemplate).options(selectinload(ChecklistTemplate.versions))
    if kind:
        query = query.where(ChecklistTemplate.kind == kind)
    if status:
        query = query.where(ChecklistTemplate.status == status)
    page = paginate(query, ChecklistTemplate.id, cursor=cursor, limit=limit)
    page["items"] = [_with_current_items(t) for t in page["items"]]
    return page


def publish_version(*, actor: Actor, template_id: str, items: list[dict]) -> ChecklistTemplate:
    """Publish the next version: devices get it on their next pull; the old one is taken for the grace period.

    Versions already published, and the answers given to them, never change.
    """
    template = get_template(template_id=template_id)
    if template.status != "active":
        raise Conflict("A retired template takes no new version.", code="template_retired")
    before = snapshot(template)
    now = utcnow()
    for version in template.versions:
        if version.number == template.current:
            version.superseded_at = now
    template.versions.append(ChecklistTemplateVersion(
        number=template.current + 1, items=_items(items), published_at=now,
        published_by=actor.id if actor.kind == "staff" else None))
    template.current += 1
    audit(actor, "checklist_template.publish", template, before)
    db.session.commit()
    return _with_current_items(template)


def retire_template(*, actor: Actor, template_id: str) -> ChecklistTemplate:
    """Retire a template: it leaves every device; checks made before now are still taken."""
    template = get_template(template_id=template_id)
    if template.status != "active":
        raise Conflict("The template is already retired.", code="template_retired")
    before = snapshot(template)
    template.status, template.retired_at = "retired", utcnow()
    audit(actor, "checklist_template.retire", template, before)
    db.session.commit()
    return _with_current_items(template)


def seed_defaults() -> int:
    """Add the default templates (server.checklist_defaults) of every kind that has none; returns how many. Commits."""
    have = set(db.session.scalars(select(ChecklistTemplate.kind)))
    now, added = utcnow(), 0
    for spec in DEFAULT_TEMPLATES:
        if spec["kind"] in have:
            continue
        template = ChecklistTemplate(kind=spec["kind"], name=spec["name"], status="active", current=1)
        template.versions = [ChecklistTemplateVersion(number=1, items=_items(spec["items"]), published_at=now)]
        db.session.add(template)
        added += 1
    db.session.commit()
    return added


def load_templates(ids: list[str]) -> list[ChecklistTemplate]:
    """Templates with their current items, for the handheld's dump."""
    return [_with_current_items(t) for t in db.session.scalars(
        select(ChecklistTemplate).where(ChecklistTemplate.id.in_(ids))
        .options(selectinload(ChecklistTemplate.versions)))]


def active_in_scope(_courier_id, _day_start):
    """SQL condition: active templates are in every courier's scope, but those staff fill in (inspections)."""
    return (ChecklistTemplate.status == "active") & ChecklistTemplate.kind.not_in(STAFF_CHECK_KINDS)


# --- submissions ---------------------------------------------------------------------------------------------

def _invalid(detail: str, fields: dict) -> ValidationFailed:
    """A payload that does not fit the template: rejected as invalid_payload, naming the fields."""
    return ValidationFailed(detail, code="invalid_payload", fields=fields)


def _template_version(template_id: str, number: int, at: datetime) -> tuple[ChecklistTemplate,
                                                                           ChecklistTemplateVersion]:
    """The template version a submission names, if it may still be submitted against at device time `at`."""
    template = db.session.get(ChecklistTemplate, template_id)
    version = db.session.scalar(select(ChecklistTemplateVersion).where(
        ChecklistTemplateVersion.template_id == template_id, ChecklistTemplateVersion.number == number))
    if template is None or version is None:
        raise NotFound(f"No checklist template {template_id} version {number}.", code="template_not_found")
    if template.status == "retired" and at >= template.retired_at:
        raise RuleViolation(f"Template {template_id} was retired at {template.retired_at.isoformat()}.",
                            code="template_retired")
    grace = current_app.config["CHECKLIST_GRACE"]
    if version.superseded_at is not None and at >= version.superseded_at + grace:
        raise RuleViolation(f"Version {number} was replaced by version {template.current} at "
                            f"{version.superseded_at.isoformat()}; it was taken for {grace} after that.",
                            code="template_version_expired")
    return template, version


def _is_number(value) -> bool:
    """A finite JSON number (true/false are not numbers)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _evaluate(item: dict, answer: dict, path: str) -> bool:
    """Whether the answer fails the item; a value of the wrong kind is invalid_payload naming it."""
    value, kind = answer.get("value"), item["type"]
    if kind == "pass_fail":
        if not isinstance(value, bool):
            raise _invalid(f"{item['code']} is answered true (pass) or false (fail).", {path: ["Not true or false."]})
        return value is False
    if kind == "number":
        # A reading no van shows (nor either database holds) is a wrong answer, not a failed item.
        if not _is_number(value) or abs(value) > MAX_READING:
            raise _invalid(f"{item['code']} is answered with a number of at most {MAX_READING} either way.",
                           {path: [f"Not a number between {-MAX_READING} and {MAX_READING}."]})
        return ((item.get("min") is not None and value < item["min"])
                or (item.get("max") is not None and value > item["max"]))
    if kind == "choice":
        if value not in item["choices"]:
            raise _invalid(f"{item['code']} is one of {', '.join(item['choices'])}.", {path: ["Not one of the choices."]})
        return value in (item.get("failing_choices") or ())
    if kind == "text":
        try:  # the one text field type: what a text answer may hold is what any human text may
            _TEXT_ANSWER.deserialize(value)
        except ma.ValidationError as exc:
            raise _invalid(f"{item['code']} is answered with text.",
                           {path: [f"Not text of 1-{MAX_TEXT_ANSWER}.", *exc.messages]}) from exc
        return False
    return False  # photo: the picture is the answer


def _check_answers(items: list[dict], answers: list[dict]) -> list[dict]:
    """The failed items, after checking every answer against its item.

    Unknown or repeated items and wrong kinds of value are invalid_payload; a
    required item not answered is item_missing; a failure without the photo
    its item requires is photo_required. Each names the items.
    """
    by_code = {item["code"]: item for item in items}
    seen: set[str] = set()
    failed = []
    for i, answer in enumerate(answers):
        code, path = answer["item"], f"payload.answers.{i}"
        if code not in by_code:
            raise _invalid(f"No item {code} in this version.", {f"{path}.item": ["Unknown item."]})
        if code in seen:
            raise _invalid(f"{code} is answered twice.", {f"{path}.item": ["Answered twice."]})
        seen.add(code)
        item = by_code[code]
        if item["type"] == "photo":
            if not answer.get("photo"):
                raise _invalid(f"{code} is answered with a photo.", {f"{path}.photo": ["A photo item needs its photo."]})
            if answer.get("value") is not None:
                raise _invalid(f"{code} is answered by its photo alone.", {f"{path}.value": ["Not for a photo item."]})
        elif _evaluate(item, answer, f"{path}.value"):
            failed.append((i, item, answer))
    missing = [item["code"] for item in items if item["required"] and item["code"] not in seen]
    if missing:
        raise RuleViolation(f"Required items not answered: {', '.join(missing)}.", code="item_missing",
                            fields={"payload.answers": [f"Missing: {', '.join(missing)}."]})
    unproven = [(i, item) for i, item, answer in failed if item["photo_required_on_failure"] and not answer.get("photo")]
    if unproven:
        raise RuleViolation(f"A failure of {', '.join(item['code'] for _, item in unproven)} needs its photo.",
                            code="photo_required",
                            fields={f"payload.answers.{i}.photo": ["Required when the item fails."]
                                    for i, _ in unproven})
    return [{"item": item, "answer": answer} for _, item, answer in failed]


def _submission(submission_id: str | None) -> ChecklistSubmission | None:
    """A submission stored or made in this transaction."""
    if submission_id is None:
        return None
    made = next((s for s in pending(ChecklistSubmission) if s.id == submission_id), None)
    return made or db.session.get(ChecklistSubmission, submission_id)


def _own_vehicle(actor: Actor, vehicle_id: str) -> Vehicle:
    """The courier's van, or not_assigned (another courier's van is as good as none)."""
    vehicle = db.session.get(Vehicle, vehicle_id)
    if vehicle is None or vehicle.courier_id != actor.courier_id:
        raise NotFound(f"No vehicle {vehicle_id} assigned to this courier.", code="not_assigned")
    return vehicle


def _made_at(submission: ChecklistSubmission) -> datetime:
    """When a van check was made, for ordering the van's reports: its device time, but never after it was received.

    A device clock years ahead would otherwise make its check the van's newest
    report for good, and no later check would need acknowledging.
    """
    return filed_at(submission.device_time, submission.received_at)


def _acknowledge(submission: ChecklistSubmission, vehicle: Vehicle, given: str | None, at: datetime,
                 flags: list[str]) -> str | None:
    """A pre-trip acknowledges the van's last report when that report found defects (driver -> mechanic -> next).

    The report acknowledged must be an earlier check of this van: another van's
    report, or an id no check has, is invalid_payload (it would put this check in
    that van's chain). Acknowledging an older report of the van (a device that
    had not pulled the newest) is taken and flagged; acknowledging none when one
    is due is refused.
    """
    if given is not None:
        report = _submission(given) if given != submission.id else None
        if report is None or report.vehicle_id != vehicle.id:
            raise _invalid(f"No report {given} of vehicle {vehicle.id} to acknowledge.",
                           {"payload.acknowledged_report_id": ["Not a report of this vehicle."]})
    last = _submission(vehicle.last_report_id)
    if last is None or _made_at(last) > at or not last.failed:
        return given
    if given is None:
        raise RuleViolation(f"The pre-trip check must acknowledge the van's last report {last.id} "
                            "(its defects and their repair).", code="acknowledgement_required",
                            fields={"payload.acknowledged_report_id": [f"Acknowledge {last.id}."]})
    if given != last.id:
        flags.append("stale_acknowledgement")
    return given


def _severity(item: dict) -> str:
    """A vehicle item's severity: a safety item is critical whatever its version says (an older version, an
    edit that made it less)."""
    return "critical" if item["code"] in SAFETY_ITEMS else item["severity"]


def _open_defect_items(vehicle_id: str) -> set[str]:
    """Items with a defect open on the van (stored or opened in this transaction)."""
    stored = db.session.scalars(select(VehicleDefect.item).where(
        VehicleDefect.vehicle_id == vehicle_id, VehicleDefect.status == "open"))
    made = (d.item for d in pending(VehicleDefect) if d.vehicle_id == vehicle_id and d.status == "open")
    return set(stored) | set(made)


def _vehicle_check(submission: ChecklistSubmission, vehicle: Vehicle, failures: list[dict],
                   acknowledged: str | None) -> None:
    """What a van check does to the van: flags, defects (a critical one takes it off the road), its last report."""
    at, flags = _made_at(submission), submission.flags
    radius = current_app.config["VEHICLE_CHECK_RADIUS_M"]
    if vehicle.last_lat is not None and distance_m(vehicle.last_lat, vehicle.last_lon,
                                                    submission.lat, submission.lon) > radius:
        flags.append("far_from_vehicle")
    odometer = next((a["value"] for a in submission.answers if a["item"] == "odometer"
                     and _is_number(a.get("value"))), None)
    if odometer is not None:
        if vehicle.odometer is not None and odometer < vehicle.odometer:
            flags.append("odometer_lower")
        vehicle.odometer = max(vehicle.odometer or 0, int(odometer))
    if submission.kind == "vehicle.pre_trip":
        submission.acknowledged_id = _acknowledge(submission, vehicle, acknowledged, at, flags)
    already = _open_defect_items(vehicle.id)
    for failure in failures:
        item, answer = failure["item"], failure["answer"]
        if item["code"] in already:
            continue
        db.session.add(VehicleDefect(
            vehicle_id=vehicle.id, submission_id=submission.id, item=item["code"], label=item["label_en"],
            severity=_severity(item), status="open", value={"value": answer.get("value"), "photo": answer.get("photo")},
            reported_by=submission.courier_id, reported_at=submission.device_time, photos=[]))
        vehicle.open_defects += 1
        if _severity(item) == "critical" and vehicle.status == "in_service":
            vehicle.status = "out_of_service"
            duty.went_off_road(vehicle, at=at, reason="critical_defect", submission_id=submission.id)
            events.emit("vehicle.out_of_service", vehicle.id, events.vehicle_facts(
                vehicle, reason="critical_defect", defect_item=item["code"], submission_id=submission.id))
    if vehicle.last_report_at is None or at >= vehicle.last_report_at:
        vehicle.last_report_id, vehicle.last_report_at = submission.id, at
        vehicle.last_lat, vehicle.last_lon = submission.lat, submission.lon


def submit(*, actor: Actor, submission_id: str, template_id: str, template_version: int, answers: list[dict],
           lat: float, lon: float, device_time: datetime, op_id: str, vehicle_id: str | None = None,
           task_id: str | None = None, signature: str | None = None, acknowledged_report_id: str | None = None,
           clock_suspect: bool = False) -> ChecklistSubmission:
    """checklist.submit: check the answers against the version named, record them, act on the failures.

    Does not commit (the sync engine does, once for the batch).
    """
    template, version = _template_version(template_id, template_version, device_time)
    if template.kind in STAFF_CHECK_KINDS:
        raise RuleViolation(f"Template {template_id} is filled in by quality staff, not on a handheld.",
                            code="staff_checklist", fields={"payload.template_id": ["Not a handheld checklist."]})
    vehicle_check = template.kind in VEHICLE_CHECK_KINDS
    if vehicle_check and not vehicle_id:
        raise _invalid("A vehicle check names its vehicle.", {"payload.vehicle_id": ["Required for a vehicle check."]})
    if not vehicle_check and vehicle_id:
        raise _invalid("Only a vehicle check names a vehicle.", {"payload.vehicle_id": ["Not for this checklist."]})
    if acknowledged_report_id is not None and template.kind != "vehicle.pre_trip":
        raise _invalid("Only a pre-trip check acknowledges the van's last report.",
                       {"payload.acknowledged_report_id": ["Not for this checklist."]})
    vehicle = _own_vehicle(actor, vehicle_id) if vehicle_id else None
    if task_id:
        task = db.session.get(Task, task_id)
        if task is None or task.courier_id != actor.courier_id:
            raise NotFound(f"No task {task_id} assigned to this courier.", code="not_assigned")
    failures = _check_answers(version.items, answers)
    submission = ChecklistSubmission(
        id=submission_id, template_id=template.id, template_version=version.number, kind=template.kind,
        courier_id=actor.courier_id, vehicle_id=vehicle_id, task_id=task_id,
        answers=[{"item": a["item"], "value": a.get("value"), "photo": a.get("photo")} for a in answers],
        failed=[f["item"]["code"] for f in failures], lat=lat, lon=lon, signature=signature, flags=[],
        device_time=device_time, received_at=utcnow(), op_id=op_id, clock_suspect=clock_suspect, version=1)
    db.session.add(submission)
    if vehicle is not None:
        _vehicle_check(submission, vehicle, failures, acknowledged_report_id)
    else:
        for failure in failures:
            item = failure["item"]
            violations.record_auto(
                courier_id=actor.courier_id, code="conduct_item_failed", task_id=task_id, source="checklist",
                key=f"{submission_id}:{item['code']}", occurred_at=device_time, severity=item["severity"],
                clock_suspect=clock_suspect,
                evidence={"submission_id": submission_id, "template_id": template.id, "template_version": version.number,
                          "kind": template.kind, "item": item["code"], "label_en": item["label_en"],
                          "severity": item["severity"], "value": failure["answer"].get("value"),
                          "photo": failure["answer"].get("photo"), "clock_suspect": clock_suspect})
    return submission


def load_submissions(ids: list[str]) -> list[ChecklistSubmission]:
    """Submissions by id."""
    return list(db.session.scalars(select(ChecklistSubmission).where(ChecklistSubmission.id.in_(ids))))


def never_held(_courier_id, _day_start):
    """SQL condition for submissions: no device keeps them (its op's result shows what was recorded)."""
    return ChecklistSubmission.id.is_(None)


# --- shifts --------------------------------------------------------------------------------------------------

def _latest(courier_id: str, kind: str, since: datetime, until: datetime,
            vehicle_id: str | None = None) -> ChecklistSubmission | None:
    """The courier's newest checklist of the kind between two device times (stored or in this batch)."""
    def fits(s: ChecklistSubmission) -> bool:
        return (s.courier_id == courier_id and s.kind == kind and since <= s.device_time <= until
                and (vehicle_id is None or s.vehicle_id == vehicle_id))
    query = select(ChecklistSubmission).where(
        ChecklistSubmission.courier_id == courier_id, ChecklistSubmission.kind == kind,
        ChecklistSubmission.device_time >= since, ChecklistSubmission.device_time <= until)
    if vehicle_id is not None:
        query = query.where(ChecklistSubmission.vehicle_id == vehicle_id)
    stored = db.session.scalar(query.order_by(ChecklistSubmission.device_time.desc()).limit(1))
    found = [s for s in pending(ChecklistSubmission) if fits(s)] + ([stored] if stored is not None else [])
    return max(found, key=lambda s: s.device_time, default=None)


def _grounded(submission: ChecklistSubmission) -> list[str]:
    """The critical items a vehicle check failed: what took (or would take) the van off the road."""
    if not submission.failed:
        return []
    items = db.session.scalar(select(ChecklistTemplateVersion.items).where(
        ChecklistTemplateVersion.template_id == submission.template_id,
        ChecklistTemplateVersion.number == submission.template_version))
    critical = {item["code"] for item in items or () if _severity(item) == "critical"}
    return [code for code in submission.failed if code in critical]


def _open_shift(courier_id: str) -> Shift | None:
    """The courier's open shift (stored or started in this batch)."""
    made = next((s for s in pending(Shift) if s.courier_id == courier_id and s.status == "open"), None)
    return made or db.session.scalar(select(Shift).where(Shift.courier_id == courier_id, Shift.status == "open")
                                     .order_by(Shift.id.desc()).limit(1))


def shifts_and_checks(*, courier_id: str, start: datetime, end: datetime) -> dict:
    """A courier's shifts begun and checklists made (device time) in [start, end), oldest first; each check with
    its failed items (failed_items: the items of its template version, labels in both languages)."""
    shifts = list(db.session.scalars(select(Shift).where(
        Shift.courier_id == courier_id, Shift.started_at >= start, Shift.started_at < end).order_by(Shift.started_at)))
    checks = list(db.session.scalars(select(ChecklistSubmission).where(
        ChecklistSubmission.courier_id == courier_id, ChecklistSubmission.device_time >= start,
        ChecklistSubmission.device_time < end).order_by(ChecklistSubmission.device_time)))
    with_failed_items(checks)
    return {"shifts": shifts, "checks": checks}


def _version_items(rows: list[ChecklistSubmission]) -> dict[tuple[str, int], dict[str, dict]]:
    """The items of the template versions the submissions were made against: (template, number) -> code -> item."""
    keys = {(r.template_id, r.template_version) for r in rows}
    if not keys:
        return {}
    versions = db.session.scalars(select(ChecklistTemplateVersion).where(
        ChecklistTemplateVersion.template_id.in_({template for template, _ in keys})))
    return {(v.template_id, v.number): {item["code"]: item for item in v.items}
            for v in versions if (v.template_id, v.number) in keys}


def with_labels(defects: list[VehicleDefect]) -> list[VehicleDefect]:
    """Give each defect label_zh and label_en: its item's labels in its check's template version (the stored
    English label when the version does not name the item)."""
    ids = {d.submission_id for d in defects}
    checks = list(db.session.scalars(select(ChecklistSubmission).where(ChecklistSubmission.id.in_(ids)))) \
        if ids else []
    items = _version_items(checks)
    version_of = {c.id: (c.template_id, c.template_version) for c in checks}
    for defect in defects:
        item = items.get(version_of.get(defect.submission_id), {}).get(defect.item, {})
        defect.label_zh, defect.label_en = item.get("label_zh"), item.get("label_en") or defect.label
    return defects


def with_failed_items(rows: list[ChecklistSubmission]) -> list[ChecklistSubmission]:
    """Give each submission failed_items: for each failed code, its item (code, label_zh, label_en) as the
    submission's template version has it (the code alone if the version does not name it)."""
    items = _version_items(rows)
    for row in rows:
        known = items.get((row.template_id, row.template_version), {})
        row.failed_items = [known.get(code) or {"code": code, "label_zh": None, "label_en": None}
                            for code in row.failed or []]
    return rows


def _read_odometer(vehicle: Vehicle, odometer: int, flags: list[str]) -> None:
    """An odometer reading lower than the van's highest is flagged; the highest is kept."""
    if vehicle.odometer is not None and odometer < vehicle.odometer:
        flags.append("odometer_lower")
    vehicle.odometer = max(vehicle.odometer or 0, odometer)


def start_shift(*, actor: Actor, vehicle: Vehicle, odometer: int, device_time: datetime, op_id: str,
                lat: float | None = None, lon: float | None = None) -> Shift:
    """shift.start: only on a van in service, after that day's conduct.pre_shift and a pre-trip the van passed.

    A shift still open from an earlier day (its end never came) is closed as
    abandoned; one open today is shift_already_started. The training it needs
    is checked first (training_required). Does not commit.
    """
    training.check_shift(courier_id=actor.courier_id, at=device_time)
    if vehicle.status != "in_service":
        raise RuleViolation(f"Vehicle {vehicle.plate} is {vehicle.status}.", code="vehicle_out_of_service")
    day = local_day_start(device_time)
    current = _open_shift(actor.courier_id)
    if current is not None:
        if current.started_at >= day:
            raise RuleViolation("A shift is already open today; end it first.", code="shift_already_started")
        current.status = "abandoned"
    missing = [] if _latest(actor.courier_id, "conduct.pre_shift", day, device_time) else ["conduct.pre_shift"]
    pre_trip = _latest(actor.courier_id, "vehicle.pre_trip", day, device_time, vehicle.id)
    # The pre-trip that counts is the newest: one that grounded the van does not start a shift after the
    # repair; the driver checks the van again (and acknowledges the report with its repair).
    grounded = _grounded(pre_trip) if pre_trip is not None else []
    if pre_trip is None or grounded:
        missing.append("vehicle.pre_trip")
    if missing:
        why = (f"; the newest vehicle.pre_trip failed {', '.join(grounded)}, check the van again after its repair"
               if grounded else "")
        raise RuleViolation(f"Before the shift: {', '.join(missing)} not done today{why}.",
                            code="checklist_required", fields={"checklists": missing})
    flags: list[str] = []
    _read_odometer(vehicle, odometer, flags)
    if lat is not None and lon is not None:
        vehicle.last_lat, vehicle.last_lon = lat, lon
    shift = Shift(courier_id=actor.courier_id, vehicle_id=vehicle.id, started_at=device_time, start_odometer=odometer,
                  status="open", flags=flags, start_op_id=op_id, received_at=utcnow())
    db.session.add(shift)
    duty.shift_started(shift)
    return shift


def end_shift(*, actor: Actor, vehicle: Vehicle, odometer: int, device_time: datetime, op_id: str,
              lat: float | None = None, lon: float | None = None) -> Shift:
    """shift.end: the open shift on this van ends, after the van's post-trip check. Does not commit."""
    shift = _open_shift(actor.courier_id)
    if shift is None or shift.vehicle_id != vehicle.id:
        raise RuleViolation(f"No shift open on vehicle {vehicle.plate}.", code="shift_not_started")
    if _latest(actor.courier_id, "vehicle.post_trip", shift.started_at, device_time, vehicle.id) is None:
        raise RuleViolation("The van's post-trip check is not done since the shift started.",
                            code="checklist_required", fields={"checklists": ["vehicle.post_trip"]})
    flags = list(shift.flags)
    if odometer < shift.start_odometer:
        flags.append("odometer_lower")
    _read_odometer(vehicle, odometer, [])
    if lat is not None and lon is not None:
        vehicle.last_lat, vehicle.last_lon = lat, lon
    shift.ended_at, shift.end_odometer, shift.end_op_id, shift.status, shift.flags = (
        device_time, odometer, op_id, "ended", sorted(set(flags)))
    return shift


# --- defects and repairs -------------------------------------------------------------------------------------

def with_reports(vehicles: list[Vehicle], reports: int = 1) -> list[Vehicle]:
    """Give vans their open defects and last reports (each with its defects and who acknowledged it).

    open_defect_list, last_report and (reports > 1) last_reports: a few queries for all the vans.
    """
    ids = [v.id for v in vehicles]
    if not ids:
        return vehicles
    open_by: dict[str, list] = {i: [] for i in ids}
    for defect in db.session.scalars(select(VehicleDefect).where(
            VehicleDefect.vehicle_id.in_(ids), VehicleDefect.status == "open").order_by(VehicleDefect.id)):
        open_by[defect.vehicle_id].append(defect)
    with_labels([d for found in open_by.values() for d in found])
    if reports == 1:
        report_ids = [v.last_report_id for v in vehicles if v.last_report_id]
        rows = list(db.session.scalars(select(ChecklistSubmission).where(ChecklistSubmission.id.in_(report_ids))))
    else:
        rows = []
        for vehicle_id in ids:
            rows += db.session.scalars(select(ChecklistSubmission).where(ChecklistSubmission.vehicle_id == vehicle_id)
                                       .order_by(ChecklistSubmission.device_time.desc()).limit(reports))
    _report_details(rows)
    by_id = {r.id: r for r in rows}
    for vehicle in vehicles:
        vehicle.open_defect_list = open_by[vehicle.id]
        vehicle.last_report = by_id.get(vehicle.last_report_id)
        vehicle.last_reports = [r for r in rows if r.vehicle_id == vehicle.id]
    return vehicles


def _report_details(rows: list[ChecklistSubmission]) -> None:
    """Each report's defects and the next driver's check that acknowledged it."""
    ids = [r.id for r in rows]
    defects: dict[str, list] = {i: [] for i in ids}
    acknowledged: dict[str, str] = {}
    if ids:
        for defect in db.session.scalars(select(VehicleDefect).where(VehicleDefect.submission_id.in_(ids))
                                         .order_by(VehicleDefect.id)):
            defects[defect.submission_id].append(defect)
        with_labels([d for found in defects.values() for d in found])
        for sub_id, ack in db.session.execute(select(ChecklistSubmission.id, ChecklistSubmission.acknowledged_id)
                                              .where(ChecklistSubmission.acknowledged_id.in_(ids))
                                              .order_by(ChecklistSubmission.device_time)):
            acknowledged.setdefault(ack, sub_id)
    with_failed_items(rows)
    for row in rows:
        row.defects = defects[row.id]
        row.acknowledged_by = acknowledged.get(row.id)


def vehicle_detail(*, vehicle_id: str) -> Vehicle:
    """A van for the office: status, open defects, last reports."""
    vehicle = get_or_404(Vehicle, vehicle_id, what="vehicle")
    return with_reports([vehicle], reports=LAST_REPORTS)[0]


def defects(*, status: str | None, severity: str | None, vehicle_id: str | None, cursor: int | None,
            limit: int) -> dict:
    """The maintenance queue: defects newest first, by status (default open) and severity."""
    query = select(VehicleDefect)
    if status:
        query = query.where(VehicleDefect.status == status)
    if severity:
        query = query.where(VehicleDefect.severity == severity)
    if vehicle_id:
        query = query.where(VehicleDefect.vehicle_id == vehicle_id)
    return newest_first(query, VehicleDefect.id, cursor=cursor, limit=limit)


def _close(actor: Actor, vehicle_id: str, defect_id: int, status: str, note: str, photos: list[str]) -> VehicleDefect:
    """Close an open defect; the van returns to service when it closes the last critical one."""
    vehicle = db.session.scalar(select(Vehicle).where(Vehicle.id == vehicle_id).with_for_update())
    if vehicle is None:
        raise NotFound(f"No vehicle {vehicle_id}.", code="vehicle_not_found")
    defect = db.session.get(VehicleDefect, defect_id) if defect_id <= MAX_INT64 else None
    if defect is None or defect.vehicle_id != vehicle_id:
        raise NotFound(f"No defect {defect_id} on vehicle {vehicle_id}.", code="defect_not_found")
    if defect.status != "open":
        raise Conflict(f"Defect {defect_id} is already {defect.status}.", code="defect_closed")
    missing = sorted(set(photos) - attachments.present(photos))
    if missing:
        raise RuleViolation(f"Not uploaded: {', '.join(missing)}.", code="attachment_missing",
                            fields={"photos": [f"Not uploaded: {', '.join(missing)}."]})
    before = snapshot(vehicle)
    defect.status, defect.resolved_by, defect.resolved_at = status, actor.id, utcnow()
    defect.note, defect.photos = note, photos
    vehicle.open_defects = max(0, vehicle.open_defects - 1)
    if defect.severity == "critical" and vehicle.status == "out_of_service" and not critical_open(
            vehicle.id, besides=defect.id):
        vehicle.status = "in_service"
        duty.back_on_road(vehicle, at=defect.resolved_at)
    audit(actor, f"vehicle_defect.{status}", defect, None)
    audit(actor, "vehicle.defect_closed", vehicle, before)
    db.session.commit()
    return defect


def critical_open(vehicle_id: str, besides: int | None = None) -> bool:
    """Whether a critical defect is open on the van (other than `besides`)."""
    query = select(func.count()).select_from(VehicleDefect).where(
        VehicleDefect.vehicle_id == vehicle_id, VehicleDefect.status == "open", VehicleDefect.severity == "critical")
    if besides is not None:
        query = query.where(VehicleDefect.id != besides)
    return (db.session.scalar(query) or 0) > 0


def repair(*, actor: Actor, vehicle_id: str, defect_id: int, note: str, photos: list[str]) -> VehicleDefect:
    """Maintenance certifies a repair (note, photos already uploaded)."""
    return _close(actor, vehicle_id, defect_id, "repaired", note, photos)


def no_repair_needed(*, actor: Actor, vehicle_id: str, defect_id: int, reason: str) -> VehicleDefect:
    """Maintenance judges the defect needs no repair, and says why."""
    return _close(actor, vehicle_id, defect_id, "no_repair_needed", reason, [])


def check_status_change(vehicle: Vehicle, status: str) -> None:
    """Dispatch may not put a van back in service while a critical defect is open."""
    if status == "in_service" and vehicle.status != "in_service" and critical_open(vehicle.id):
        raise RuleViolation("A critical defect is open on this vehicle; maintenance must close it first.",
                            code="critical_defect_open", fields={"status": ["A critical defect is open."]})


# --- inspections (联合稽查: spot checks and mystery-shopper visits) --------------------------------------------

INSPECTORS = ("admin", "quality")
INSPECTION_READERS = ("admin", "quality", "dispatcher")
# How far ahead of the server's clock an inspection may be dated (an inspector's phone a little fast).
_INSPECTION_SKEW_S = 300


def _unprefixed(exc):
    """An answers error as the HTTP body names its fields (answers.N..., not an op's payload.answers.N...)."""
    if exc.fields:
        exc.fields = {key.removeprefix("payload."): value for key, value in exc.fields.items()}
    return exc


def _courier_at(vehicle: Vehicle | None, task: Task | None, at: datetime) -> str | None:
    """Who the inspection is about when it names a van or a stop: the van's driver then (the shift open on it at
    that time, else the van's courier now), or the stop's courier."""
    if task is not None:
        return task.courier_id
    shift = db.session.scalar(select(Shift).where(
        Shift.vehicle_id == vehicle.id, Shift.started_at <= at,
        Shift.ended_at.is_(None) | (Shift.ended_at >= at))
        .order_by(Shift.started_at.desc()).limit(1))
    return shift.courier_id if shift is not None else vehicle.courier_id


def record_inspection(*, actor: Actor, kind: str, template_id: str, answers: list[dict], inspected_at: datetime,
                      template_version: int | None = None, courier_id: str | None = None,
                      vehicle_id: str | None = None, task_id: str | None = None, inspector: str | None = None,
                      notes: str | None = None, photos: list[str] | None = None) -> Inspection:
    """Record a spot check or mystery-shopper visit; each failed item is a violation of the courier. Commits.

    The template is an inspection template (the version named, else its current
    one, as of inspected_at, which is not in the future). The courier is the one
    named, else the stop's courier, else the van's driver at that time.
    """
    photos = photos or []
    if inspected_at > utcnow() + timedelta(seconds=_INSPECTION_SKEW_S):
        raise ValidationFailed("An inspection is recorded after it happened.", code="invalid_payload",
                               fields={"inspected_at": ["Must not be in the future."]})
    template = db.session.get(ChecklistTemplate, template_id)
    if template is None:
        raise NotFound(f"No checklist template {template_id}.", code="template_not_found",
                       fields={"template_id": ["No such template."]})
    if template.kind not in STAFF_CHECK_KINDS:
        raise ValidationFailed(f"Template {template_id} is a {template.kind} checklist, not an inspection.",
                               code="invalid_payload", fields={"template_id": ["Not an inspection template."]})
    template, version = _template_version(template_id, template_version or template.current, inspected_at)
    vehicle = get_or_404(Vehicle, vehicle_id, what="vehicle") if vehicle_id else None
    task = get_or_404(Task, task_id, what="task") if task_id else None
    if courier_id:
        get_or_404(Courier, courier_id, what="courier")
        if task is not None:  # a stop's inspection is about who served it (the inspector names one who did)
            tasks.check_held_by(task=task, courier_id=courier_id)
    else:
        courier_id = _courier_at(vehicle, task, inspected_at) if (vehicle or task) else None
    if not courier_id:
        raise ValidationFailed("Name the courier, or a van or stop that had one.", code="invalid_payload",
                               fields={"courier_id": ["Required when no van or stop names a courier."]})
    try:
        failures = _check_answers(version.items, answers)
    except (ValidationFailed, RuleViolation) as exc:
        raise _unprefixed(exc) from None
    shas = photos + [a["photo"] for a in answers if a.get("photo")]
    missing = sorted(set(shas) - attachments.present(shas))
    if missing:
        raise RuleViolation(f"Not uploaded: {', '.join(missing)}.", code="attachment_missing",
                            fields={"photos": [f"Not uploaded: {', '.join(missing)}."]})
    if not inspector:
        staff = db.session.get(StaffUser, actor.id)
        inspector = staff.username if staff is not None else actor.id
    inspection = Inspection(
        kind=kind, template_id=template.id, template_version=version.number, courier_id=courier_id,
        vehicle_id=vehicle_id, task_id=task_id, inspector=inspector, inspected_at=inspected_at, notes=notes,
        photos=photos, answers=[{"item": a["item"], "value": a.get("value"), "photo": a.get("photo")} for a in answers],
        failed=[f["item"]["code"] for f in failures], recorded_at=utcnow(), recorded_by=actor.id)
    db.session.add(inspection)
    db.session.flush()
    for failure in failures:
        item = failure["item"]
        violations.record_auto(
            courier_id=courier_id, code="inspection_item_failed", task_id=task_id, source="inspection",
            key=f"inspection:{inspection.id}:{item['code']}", occurred_at=inspected_at, severity=item["severity"],
            clock_suspect=False,
            evidence={"inspection_id": inspection.id, "kind": kind, "template_id": template.id,
                      "template_version": version.number, "item": item["code"], "label_en": item["label_en"],
                      "severity": item["severity"], "value": failure["answer"].get("value"),
                      "photo": failure["answer"].get("photo"), "vehicle_id": vehicle_id, "inspector": inspector})
    audit(actor, "inspection.record", inspection, None)
    db.session.commit()
    return _with_violations([inspection])[0]


def _with_violations(rows: list[Inspection]) -> list[Inspection]:
    """Give each inspection the ids of the violations it recorded (violation_ids)."""
    for inspection in rows:
        inspection.violation_ids = list(db.session.scalars(select(Violation.id).where(
            Violation.dedupe_key.like(f"inspection_item_failed:inspection:{inspection.id}:%"))
            .order_by(Violation.id)))
    return rows


def get_inspection(*, inspection_id: int) -> Inspection:
    """One inspection with its violations, or 404."""
    inspection = db.session.get(Inspection, inspection_id) if inspection_id <= MAX_INT32 else None
    if inspection is None:
        raise NotFound(f"No inspection {inspection_id}.", code="inspection_not_found")
    return _with_violations([inspection])[0]


def inspections(*, courier_id: str | None, kind: str | None, cursor: int | None, limit: int) -> dict:
    """Inspections newest first, by courier and kind."""
    query = select(Inspection)
    if courier_id:
        query = query.where(Inspection.courier_id == courier_id)
    if kind:
        query = query.where(Inspection.kind == kind)
    page = newest_first(query, Inspection.id, cursor=cursor, limit=limit)
    _with_violations(page["items"])
    return page

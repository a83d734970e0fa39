"""Handheld devices: one-time enrollment codes (with QR), enrollment, revocation."""
from urllib.parse import urlencode

from flask import current_app
from sqlalchemy import select

from server.auth import DEVICE_TOKEN_PREFIX, Actor, check_failure_budget, enrollment_budgets, record_failure
from server.clock import utcnow
from server.errors import NotFound, RuleViolation
from server.extensions import db
from server.ids import hash_secret, new_enrollment_code, new_token
from server.models import Courier, Device, Enrollment
from server.qr import qr_image
from server.services.common import audit, get_or_404, paginate, snapshot

def _normalise(code: str) -> str:
    """Codes are typed by people: ignore case, spaces and dashes."""
    return code.upper().replace(" ", "").replace("-", "")


def create_enrollment(*, actor: Actor, courier_id: str) -> tuple[Enrollment, str]:
    """Issue a one-time code for the courier; returns the row and the code (shown once)."""
    courier = get_or_404(Courier, courier_id, what="courier")
    if not courier.active:
        raise RuleViolation("An inactive courier cannot enroll a device.", code="courier_inactive")
    code = new_enrollment_code()
    enrollment = Enrollment(code_hash=hash_secret(code), courier_id=courier.id, created_by=actor.id,
                            expires_at=utcnow() + current_app.config["ENROLLMENT_TTL"])
    db.session.add(enrollment)
    db.session.commit()
    return enrollment, code


def _usable_enrollment(code: str, *, lock: bool = False) -> Enrollment | None:
    """The enrollment for a code if it is unused and unexpired (locked when about to use it)."""
    query = select(Enrollment).where(Enrollment.code_hash == hash_secret(_normalise(code)))
    enrollment = db.session.scalar(query.with_for_update() if lock else query)
    if enrollment is None or enrollment.used_at is not None or enrollment.expires_at <= utcnow():
        return None
    return enrollment


def enrollment_qr(*, code: str, fmt: str, server_url: str) -> tuple[bytes, str]:
    """The QR image (png or svg) a handheld scans to enroll; only while the code is usable."""
    if _usable_enrollment(code) is None:
        raise NotFound("No usable enrollment with that code.", code="enrollment_not_found")
    return qr_image("fieldops://enroll?" + urlencode({"code": _normalise(code), "server": server_url}), fmt)


def enroll(*, code: str, device_name: str, rate_key: str) -> tuple[Device, str]:
    """Turn a one-time code into a device and its token (shown once)."""
    # Checked before the lookup: a guesser over budget learns nothing, even when right.
    budgets = enrollment_budgets(rate_key, _normalise(code))
    check_failure_budget(budgets)
    enrollment = _usable_enrollment(code, lock=True)
    if enrollment is None:
        record_failure(budgets, "bad enrollment code")
        raise NotFound("The enrollment code is unknown, used or expired.",
                       code="enrollment_invalid")
    courier = db.session.get(Courier, enrollment.courier_id)
    if not courier.active:
        raise RuleViolation("The courier is no longer active.", code="courier_inactive")
    token = new_token(DEVICE_TOKEN_PREFIX)
    device = Device(courier_id=courier.id, name=device_name, token_hash=hash_secret(token))
    db.session.add(device)
    db.session.flush()
    enrollment.used_at = utcnow()
    enrollment.device_id = device.id
    db.session.commit()
    return device, token


def get_all(*, courier_id: str) -> list[Device]:
    """A courier's devices, newest first."""
    get_or_404(Courier, courier_id, what="courier")
    return _flagged(list(db.session.scalars(
        select(Device).where(Device.courier_id == courier_id).order_by(Device.enrolled_at.desc()))))


def get_page(*, noisy: bool | None = None, courier_id: str | None = None, cursor: str | None = None,
             limit: int = 50) -> dict:
    """A page of every courier's devices, by id; noisy: only those with rejections beyond the alert (or only not)."""
    query = select(Device)
    if courier_id is not None:
        query = query.where(Device.courier_id == courier_id)
    if noisy is not None:
        beyond = Device.rejections_beyond(current_app.config["DEVICE_REJECTIONS_ALERT"])
        query = query.where(beyond if noisy else ~beyond)
    page = paginate(query, Device.id, cursor=cursor, limit=limit)
    _flagged(page["items"])
    return page


def _flagged(devices: list[Device]) -> list[Device]:
    """The devices, each told whether it is noisy: more rejected ops than FIELDOPS_DEVICE_REJECTIONS_ALERT."""
    threshold = current_app.config["DEVICE_REJECTIONS_ALERT"]
    for device in devices:
        device.noisy = device.rejections_beyond(threshold)
    return devices


def revoke(*, actor: Actor, device_id: str, courier_id: str | None = None) -> Device:
    """Refuse the device's token from now on; revoking twice is harmless. With courier_id, a device of another
    courier is not found (the console's address names the courier)."""
    device = get_or_404(Device, device_id, what="device")
    if courier_id is not None and device.courier_id != courier_id:
        raise NotFound(f"No device {device_id} of courier {courier_id}.", code="device_not_found")
    if device.revoked_at is None:
        before = snapshot(device)
        device.revoked_at = utcnow()
        device.revoked_by = actor.id
        audit(actor, "device.revoke", device, before)
        db.session.commit()
    return _flagged([device])[0]

"""Enrollment codes (expiry, single use, QR), device tokens, revocation (limits: test_auth_limits.py)."""
from datetime import timedelta

from sqlalchemy import select

from server.extensions import db
from server.models import Device, Enrollment


def _enrollment(client, make, courier):
    response = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                           headers=make.headers("dispatcher"))
    assert response.status_code == 201
    return response.json


def test_enrollment_code_is_single_use_and_token_stored_hashed(client, make):
    """A code enrolls one device; the second use fails; only hashes are stored."""
    courier = make.courier()
    enrollment = _enrollment(client, make, courier)
    assert len(enrollment["code"]) == 10 and enrollment["qr_png"].endswith("/qr.png")
    first = client.post("/api/v1/devices/enroll", json={"code": enrollment["code"].lower(),
                                                        "device_name": "PDA-1"})
    assert first.status_code == 201
    assert first.json["device_id"].startswith("d-") and first.json["token"].startswith("fod_")
    again = client.post("/api/v1/devices/enroll", json={"code": enrollment["code"], "device_name": "PDA-2"})
    assert again.status_code == 404 and again.json["code"] == "enrollment_invalid"
    device = db.session.get(Device, first.json["device_id"])
    assert first.json["token"] not in (device.token_hash, device.name)
    stored = db.session.scalars(select(Enrollment.code_hash)).all()
    assert enrollment["code"] not in stored
    me = client.get("/api/v1/me/tasks", headers={"Authorization": f"Bearer {first.json['token']}"})
    assert me.status_code == 200 and me.json == {"items": []}


def test_expired_enrollment_code_is_refused(client, make, app):
    """A code past its 15 minutes neither enrolls nor shows a QR."""
    app.config["ENROLLMENT_TTL"] = timedelta(seconds=-1)
    courier = make.courier()
    enrollment = _enrollment(client, make, courier)
    response = client.post("/api/v1/devices/enroll", json={"code": enrollment["code"], "device_name": "x"})
    assert response.status_code == 404 and response.json["code"] == "enrollment_invalid"
    qr = client.get(enrollment["qr_png"], headers=make.headers("dispatcher"))
    assert qr.status_code == 404


def test_enrollment_ttl_default_is_15_minutes(client, make):
    """The code expires 15 minutes after it is issued."""
    from datetime import datetime
    courier = make.courier()
    enrollment = _enrollment(client, make, courier)
    row = db.session.scalars(select(Enrollment)).one()
    assert abs((row.expires_at - row.created_at) - timedelta(minutes=15)) < timedelta(seconds=1)
    assert datetime.fromisoformat(enrollment["expires_at"]) == row.expires_at


def test_qr_code_png_and_svg(client, make):
    """The QR image comes as a real PNG and a real SVG."""
    courier = make.courier()
    enrollment = _enrollment(client, make, courier)
    png = client.get(enrollment["qr_png"], headers=make.headers("dispatcher"))
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n"
    svg = client.get(enrollment["qr_svg"], headers=make.headers("dispatcher"))
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    assert client.get(enrollment["qr_png"].replace(".png", ".gif"),
                      headers=make.headers("dispatcher")).status_code == 404


def test_revoked_device_is_refused_at_once(client, make):
    """After revocation the very next request with the token is 401."""
    courier = make.courier()
    device = make.device(courier)
    headers = {"Authorization": f"Bearer {device['token']}"}
    assert client.get("/api/v1/me/tasks", headers=headers).status_code == 200
    response = client.post(f"/api/v1/dispatch/devices/{device['device_id']}/revoke",
                           headers=make.headers("dispatcher"))
    assert response.status_code == 200 and response.json["revoked_at"]
    assert client.get("/api/v1/me/tasks", headers=headers).status_code == 401
    again = client.post(f"/api/v1/dispatch/devices/{device['device_id']}/revoke",
                        headers=make.headers("dispatcher"))
    assert again.status_code == 200 and again.json["revoked_at"] == response.json["revoked_at"]


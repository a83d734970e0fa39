"""Handheld enrollment (QR codes, enroll), the fleet's devices and their revocation."""
from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.couriers import DeviceOut, DevicePage, DeviceQuery, EnrollIn, EnrollOut
from server.auth import DISPATCH, client_key, current_actor, require
from server.errors import NotFound
from server.services import devices

blp = Blueprint("devices", __name__, url_prefix="/api/v1", description="Devices and enrollment")


@blp.route("/dispatch/enrollments/<code>/qr.<fmt>", endpoint="enrollment_qr")
@blp.doc(responses={"200": {"description": "QR image", "content": {
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/svg+xml": {"schema": {"type": "string", "format": "binary"}}}}})
@require(*DISPATCH)
def enrollment_qr(code, fmt):
    """The QR code of an unused, unexpired enrollment code, as PNG or SVG."""
    if fmt not in ("png", "svg"):
        raise NotFound("QR codes come as .png or .svg.", code="not_found")
    body, mimetype = devices.enrollment_qr(code=code, fmt=fmt,
                                           server_url=url_for("health.healthz", _external=True)
                                           .removesuffix("/healthz") + "/api/v1")
    return Response(body, mimetype=mimetype, headers={"Cache-Control": "no-store"})


@blp.route("/devices/enroll")
class Enroll(MethodView):
    """A handheld trading a one-time code for its token."""

    @blp.arguments(EnrollIn)
    @blp.response(201, EnrollOut)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, data):
        """Enroll a device; the token in the answer is never shown again."""
        device, token = devices.enroll(code=data["code"], device_name=data["device_name"],
                                       rate_key=client_key("enroll"))
        return {"device_id": device.id, "courier_id": device.courier_id, "token": token}


@blp.route("/dispatch/devices")
class Devices(MethodView):
    """Every courier's handhelds."""

    @require(*DISPATCH)
    @blp.arguments(DeviceQuery, location="query")
    @blp.response(200, DevicePage)
    def get(self, query):
        """List devices, a page at a time; ?noisy=true: those with rejections beyond the alert."""
        return devices.get_page(**query)


@blp.route("/dispatch/devices/<device_id>/revoke")
class DeviceRevocation(MethodView):
    """Refusing a lost or retired handheld."""

    @require(*DISPATCH)
    @blp.response(200, DeviceOut)
    def post(self, device_id):
        """Revoke a device: its token is refused from the next request on."""
        return devices.revoke(actor=current_actor(), device_id=device_id)

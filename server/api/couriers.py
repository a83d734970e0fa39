"""Dispatch: couriers, their devices and enrollment codes."""
from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.couriers import (CourierIn, CourierOut, CourierPage, CourierPatch, CourierQuery,
                              DeviceList, EnrollmentOut)
from server.auth import DISPATCH, OFFICE, current_actor, require
from server.services import couriers, devices

blp = Blueprint("couriers", __name__, url_prefix="/api/v1/dispatch/couriers",
                description="Couriers (dispatch)")


@blp.route("")
class Couriers(MethodView):
    """The courier roster."""

    @require(*DISPATCH)
    @blp.arguments(CourierIn)
    @blp.response(201, CourierOut)
    def post(self, data):
        """Add a courier."""
        return couriers.create(actor=current_actor(), **data)

    @require(*OFFICE)
    @blp.arguments(CourierQuery, location="query")
    @blp.response(200, CourierPage)
    def get(self, query):
        """List couriers, a page at a time."""
        return couriers.get_all(**query)


@blp.route("/<courier_id>")
class CourierById(MethodView):
    """One courier."""

    @require(*OFFICE)
    @blp.response(200, CourierOut)
    def get(self, courier_id):
        """Read a courier."""
        return couriers.get(courier_id=courier_id)

    @require(*DISPATCH)
    @blp.arguments(CourierPatch)
    @blp.response(200, CourierOut)
    def patch(self, changes, courier_id):
        """Change name, phone or active flag."""
        return couriers.update(actor=current_actor(), courier_id=courier_id, changes=changes)


@blp.route("/<courier_id>/deactivate")
class CourierDeactivation(MethodView):
    """Taking a courier off the road."""

    @require(*DISPATCH)
    @blp.response(200, CourierOut)
    def post(self, courier_id):
        """Deactivate a courier and revoke their devices."""
        return couriers.deactivate(actor=current_actor(), courier_id=courier_id)


@blp.route("/<courier_id>/devices")
class CourierDevices(MethodView):
    """A courier's handhelds."""

    @require(*DISPATCH)
    @blp.response(200, DeviceList)
    def get(self, courier_id):
        """List the courier's devices."""
        return {"items": devices.get_all(courier_id=courier_id)}


@blp.route("/<courier_id>/enrollments")
class CourierEnrollments(MethodView):
    """One-time codes for enrolling a handheld."""

    @require(*DISPATCH)
    @blp.response(201, EnrollmentOut)
    def post(self, courier_id):
        """Issue a one-time enrollment code (expires; single use) with its QR image URLs."""
        enrollment, code = devices.create_enrollment(actor=current_actor(), courier_id=courier_id)
        return {"code": code, "courier_id": enrollment.courier_id,
                "expires_at": enrollment.expires_at,
                "qr_png": url_for("devices.enrollment_qr", code=code, fmt="png"),
                "qr_svg": url_for("devices.enrollment_qr", code=code, fmt="svg")}

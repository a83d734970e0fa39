"""All models, importable from one place (Alembic and services use this)."""
from server.models.appointments import Appointment, AppointmentWindow, ContactAttempt
from server.models.couriers import Courier, Device, Enrollment
from server.models.customer_links import CustomerLink
from server.models.staff import ApiToken, AuditEntry, AuthFailure, StaffUser
from server.models.sync import Attachment, Change, OpLog, RefusedAttachment, SyncConflict, SyncDoc, SyncState
from server.models.tasks import FeeCode, Parcel, Task, TaskAssignment, TaskEvent, TaskFee
from server.models.vehicles import Vehicle
from server.models.violations import Violation

__all__ = [
    "Appointment", "AppointmentWindow", "ContactAttempt", "Violation",
    "Attachment", "ApiToken", "AuditEntry", "AuthFailure", "Change", "Courier", "CustomerLink", "Device",
    "Enrollment", "FeeCode", "OpLog", "Parcel", "RefusedAttachment", "StaffUser", "SyncConflict", "SyncDoc",
    "SyncState",
    "Task", "TaskAssignment", "TaskEvent", "TaskFee", "Vehicle",
]


def init_app(_app) -> None:
    """Mapped-class behaviour that needs every model defined first."""
    from server.clock import hold_utc
    from server.extensions import db
    hold_utc(db.Model.registry)

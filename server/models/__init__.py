"""All models, importable from one place (Alembic and services use this)."""
from server.models.couriers import GRADES, Courier, Device, Enrollment
from server.models.staff import STAFF_ROLES, ApiToken, AuditEntry, AuthFailure, StaffUser
from server.models.sync import Attachment, Change, OpLog, SyncConflict, SyncState
from server.models.tasks import (FINISHED_STATUSES, OPEN_STATUSES, TASK_KINDS, TASK_STATUSES,
                                 FeeCode, Parcel, Task, TaskAssignment, TaskEvent, TaskFee)
from server.models.vehicles import VEHICLE_KINDS, VEHICLE_STATUSES, Vehicle

__all__ = [
    "Attachment", "ApiToken", "AuditEntry", "AuthFailure", "Change", "Courier", "Device",
    "Enrollment", "FeeCode", "OpLog", "Parcel", "StaffUser", "SyncConflict", "SyncState",
    "Task", "TaskAssignment", "TaskEvent", "TaskFee", "Vehicle", "GRADES", "STAFF_ROLES",
    "TASK_KINDS", "TASK_STATUSES", "OPEN_STATUSES", "FINISHED_STATUSES", "VEHICLE_KINDS",
    "VEHICLE_STATUSES",
]

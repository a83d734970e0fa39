"""All models, importable from one place (Alembic and services use this)."""
from server.models.appointments import Appointment, AppointmentWindow, ContactAttempt
from server.models.checklists import (ChecklistSubmission, ChecklistTemplate, ChecklistTemplateVersion, Shift,
                                      VehicleDefect)
from server.models.claims import Claim, ClaimEntry
from server.models.complaints import Complaint, ComplaintContact, ComplaintHandover, ComplaintReopening
from server.models.couriers import Courier, Device, Enrollment
from server.models.customer_links import CustomerLink
from server.models.events import Event, WebhookDelivery, WebhookSubscription
from server.models.grades import GradeChange, GradeOverride
from server.models.jobs import JobRun, SchedulerLease
from server.models.handover import Handover, HandoverException, HandoverStep
from server.models.leaks import LeakExportNote, LeakIncident, LeakLinkUse, LeakNotification
from server.models.ledger import LedgerEntry
from server.models.manifests import ManifestQuarantine
from server.models.messages import CustomerLanguage, CustomerMessage, MessageFeed
from server.models.ratings import Rating
from server.models.scans import ParcelScan
from server.models.receipts import Receipt, ReceiptCounter, ReceiptKey
from server.models.staff import ApiToken, AuditEntry, AuthFailure, ConsoleSession, StaffUser
from server.models.sync import (Attachment, Change, CreatedEntity, OpLog, RefusedAttachment, SyncConflict, SyncDoc,
                                SyncState)
from server.models.tasks import FeeCode, Parcel, ServiceProduct, Task, TaskAssignment, TaskEvent, TaskFee
from server.models.training import TrainingAttendance, TrainingCourse, TrainingSession
from server.models.vehicles import Vehicle, VehicleGrounding
from server.models.violations import Inspection, Violation, ViolationAppeal

__all__ = [
    "Appointment", "AppointmentWindow", "ContactAttempt", "Violation", "ViolationAppeal", "Inspection", "GradeOverride",
    "ChecklistSubmission", "ChecklistTemplate", "ChecklistTemplateVersion", "Shift", "VehicleDefect",
    "Attachment", "ApiToken", "Claim", "ClaimEntry", "AuditEntry", "AuthFailure", "Change", "Complaint", "ComplaintContact",
    "ComplaintHandover", "ConsoleSession", "ComplaintReopening", "Courier", "CreatedEntity",
    "CustomerLanguage", "CustomerLink", "CustomerMessage", "Device", "Enrollment", "Event", "FeeCode", "GradeChange",
    "JobRun", "OpLog", "Parcel", "ParcelScan",
    "RefusedAttachment", "SchedulerLease", "ServiceProduct", "StaffUser", "SyncConflict", "SyncDoc", "SyncState", "Handover",
    "HandoverException", "HandoverStep", "LeakExportNote", "LeakIncident", "LeakLinkUse", "LeakNotification",
    "LedgerEntry", "ManifestQuarantine", "MessageFeed", "Rating", "Receipt", "ReceiptCounter", "ReceiptKey",
    "Task", "TaskAssignment", "TaskEvent", "TaskFee", "TrainingAttendance", "TrainingCourse",
    "TrainingSession", "Vehicle", "VehicleGrounding", "WebhookDelivery", "WebhookSubscription",
]


def init_app(_app) -> None:
    """Mapped-class behaviour that needs every model defined first."""
    from server.clock import hold_utc
    from server.extensions import db
    hold_utc(db.Model.registry)

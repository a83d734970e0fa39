"""Vocabularies: the allowed values of every enumerated field, in one place.

The values travel on the wire and are stored as they are, so the wire contract
(schemas), the models, the services and the CLI all read them from here. This
module imports nothing, so importing it never loads the app or the database.
"""

TASK_KINDS = ("delivery", "pickup")
# unassigned -> assigned -> arrived -> delivered | refused | failed; cancelled from any open state.
TASK_STATUSES = ("unassigned", "assigned", "arrived", "delivered", "refused", "failed", "cancelled")
OPEN_STATUSES = ("unassigned", "assigned", "arrived")
FINISHED_STATUSES = ("delivered", "refused", "failed", "cancelled")

VEHICLE_KINDS = ("van", "truck", "tricycle", "ebike")
VEHICLE_STATUSES = ("in_service", "grounded", "retired")

GRADES = ("A", "B", "C")
STAFF_ROLES = ("admin", "dispatcher", "quality", "maintenance")

OP_STATUSES = ("applied", "rejected", "conflict")
CONFLICT_STATUSES = ("open", "resolved")
CONFLICT_RESOLUTIONS = ("field_fact_stands", "dispatch_stands", "followed_up")

# unconfirmed -> confirmed (window agreed) -> kept | late | missed; back to unconfirmed when a new one is needed.
APPOINTMENT_STATUSES = ("unconfirmed", "confirmed", "kept", "late", "missed")
# What dispatch's board shows: the stored status, with confirmed ones about to end unvisited as at_risk.
APPOINTMENT_STATES = ("unconfirmed", "confirmed", "at_risk", "late", "missed", "kept")
APPOINTMENT_VIA = ("phone", "in_person", "customer_link", "dispatch")
FIELD_VIA = ("phone", "in_person")  # how a courier's handheld may say a window was agreed
WINDOW_STATUSES = ("proposed", "agreed", "superseded", "declined")
CONTACT_OUTCOMES = ("reached", "no_answer", "wrong_number", "refused")
VIOLATION_CODES = ("late_without_notice", "left_before_inspection", "private_surcharge", "gift_not_disclosed",
                   "conduct_item_failed", "complaint_upheld")
VIOLATION_SOURCES = ("auto", "complaint", "checklist")

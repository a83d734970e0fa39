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

"""Vocabularies: the allowed values of every enumerated field, in one place.

The values travel on the wire and are stored as they are, so the wire contract
(schemas), the models, the services and the CLI all read them from here. This
module imports nothing, so importing it never loads the app or the database.
"""

# A return brings refused parcels back (made by a refusal, for dispatch to assign).
TASK_KINDS = ("delivery", "pickup", "return")
# The published fee for collecting cash on delivery: charged only on a task that carries a COD amount.
COD_SERVICE_FEE = "cod_service"
# unassigned -> assigned -> arrived -> delivered | refused | failed (a delivery or return), collected (a pickup);
# cancelled from any open state.
TASK_STATUSES = ("unassigned", "assigned", "arrived", "delivered", "refused", "failed", "collected", "cancelled")
OPEN_STATUSES = ("unassigned", "assigned", "arrived")
# A task against its service product's promise (server.services.promises.state).
PROMISE_STATES = ("unknown", "on_track", "at_risk", "breached", "kept", "missed", "closed")
FINISHED_STATUSES = ("delivered", "refused", "failed", "collected", "cancelled")
DONE_STATUSES = ("delivered", "refused", "failed", "collected")  # finished by the courier, not cancelled

VEHICLE_KINDS = ("van", "truck", "tricycle", "ebike")
# out_of_service: off the road (a critical defect open, or dispatch said so); was `grounded` before issue 11.
VEHICLE_STATUSES = ("in_service", "out_of_service", "retired")

GRADES = ("A", "B", "C")
# Training courses (issue 23): pre-job (岗前) before a courier's first shift, periodic (定期) refreshers.
TRAINING_KINDS = ("pre_job", "periodic")
# integration: an upstream system's token (reads the event feed, imports manifests, nothing else).
STAFF_ROLES = ("admin", "dispatcher", "quality", "maintenance", "integration")

OP_STATUSES = ("applied", "rejected", "conflict")
# The op log's statuses: an op's, or duplicate: an op_id the device sent again under a new seq, the same op,
# answered with the first one's result (docs/protocol.md, "One op id, one effect").
OP_LOG_STATUSES = (*OP_STATUSES, "duplicate")
# Why the push engine itself rejects an op (docs/protocol.md's table); rules add their own codes (HANDOVER_CODES, ...).
PUSH_REJECTION_CODES = ("invalid_op", "invalid_device_time", "invalid_base_version", "unknown_op_type",
                        "invalid_payload", "not_assigned", "seq_reused", "op_id_reused", "handler_error",
                        "attachment_never_uploaded", "attachment_refused", "entity_exists")
CONFLICT_STATUSES = ("open", "resolved")
# Why an op is a conflict (sync.push): its task went to another courier, dispatch cancelled it, or dispatch changed
# it since the version the op was made on.
CONFLICT_REASONS = ("reassigned", "cancelled_by_dispatch", "stale_version")
CONFLICT_RESOLUTIONS = ("field_fact_stands", "dispatch_stands", "followed_up")

# The appointment's status is its current window's: unconfirmed (promised, not agreed) or confirmed (agreed) until
# that window is decided, then the window's outcome (kept, late, missed, not_attempted, review). A new agreed window
# (a new attempt) makes it confirmed again; nothing goes back to unconfirmed.
APPOINTMENT_STATUSES = ("unconfirmed", "confirmed", "kept", "late", "missed", "not_attempted", "review")
# What dispatch's board shows: the stored status, with confirmed ones about to end unvisited as at_risk.
APPOINTMENT_STATES = ("unconfirmed", "confirmed", "at_risk", "late", "missed", "kept", "not_attempted", "review")
APPOINTMENT_VIA = ("phone", "in_person", "customer_link", "dispatch")
FIELD_VIA = ("phone", "in_person")  # how a courier's handheld may say a window was agreed
WINDOW_STATUSES = ("proposed", "agreed", "superseded", "declined")
# Each agreed (or promised) window's own decision, kept on the window (docs/decisions.md, "Issue 21: appointments
# that cannot be rewritten"): kept (a counted arrival by its end), late (after it, or told after the notice lead,
# or replaced by the courier once the lead had passed), missed (agreed, ended unvisited), not_attempted (promised,
# never agreed, ended unvisited), replaced (another window agreed in time: it decides nothing), review (a decision
# the facts cannot make alone: dispatch decides kept, late or missed).
WINDOW_OUTCOMES = ("kept", "late", "missed", "not_attempted", "replaced", "review")
# On-time (docs/kpis.md; the KPI report and the grade read the same): every agreed or promised window decided,
# including those later replaced after they were decided; a window under review is in the denominator and gets no
# credit until dispatch decides it (a suspect clock gets no credit); `replaced` windows decided nothing and are out.
ON_TIME_DECIDED = ("kept", "late", "missed", "not_attempted", "review")
ON_TIME_KEPT = "kept"
# 异常情况告知率: the window outcomes that stopped a delivery as planned (a window under review counts by its
# provisional outcome), the attempt failures and the contact outcomes that are exceptions of their own.
EXCEPTION_WINDOW_OUTCOMES = ("late", "missed", "not_attempted")
EXCEPTION_FAILURES = ("customer_absent",)
EXCEPTION_CONTACTS = ("wrong_number", "address_unknown")
REVIEW_OUTCOMES = ("kept", "late", "missed")  # what dispatch may decide a window under review to be
# Why a window is under review: a device clock the push engine flagged; an arrival at a stop without coordinates;
# a fact that reached the server after the window was decided and would decide it otherwise.
REVIEW_REASONS = ("clock_suspect", "location_unknown", "late_sync")
# What made a window's outcome what it is: an arrival, the sweep, another window agreed, a late notice or a wait
# (customer_absent) that put it under review, dispatch's review, or the migration that kept the decisions before.
WINDOW_DECIDERS = ("arrival", "sweep", "replacement", "notice", "wait", "dispatch", "migration")
# address_unknown: the courier cannot find the address.
CONTACT_OUTCOMES = ("reached", "no_answer", "wrong_number", "refused", "address_unknown")
# Why an attempt failed (the window's failure_reason, the failed task's failure_reason).
ATTEMPT_FAILURES = ("customer_absent", "address_unknown", "refused")
# What the board's appointment.exception says dispatch must look at.
APPOINTMENT_EXCEPTIONS = ("wrong_number", "customer_absent", "address_unknown", "refused", "not_attempted")
VIOLATION_CODES = ("late_without_notice", "left_before_inspection", "private_surcharge", "gift_not_disclosed",
                   "conduct_item_failed", "complaint_upheld", "work_without_shift_check", "grounded_vehicle_used",
                   "inspection_item_failed")
# Work done (a handover step, an arrival) outside an open shift, or in a shift whose van was off the road
# then (docs/decisions.md, "Issue 21: checks before work"): kept, and both a violation and an exception.
WORK_CHECK_CODES = ("work_without_shift_check", "grounded_vehicle_used")
VIOLATION_SOURCES = ("auto", "complaint", "checklist", "inspection")
# open -> appealed (the courier's appeal) -> upheld | voided; open -> upheld (quality confirmed it) | voided
# (quality, or dispatch's review found the window kept). A voided violation weighs nothing in the grade.
VIOLATION_STATUSES = ("open", "appealed", "upheld", "voided")
# An appeal: open until quality decides it; then the violation's fate (upheld: it stands; voided: it goes).
APPEAL_STATUSES = ("open", "upheld", "voided")
APPEAL_OUTCOMES = ("upheld", "voided")
# A spot check by quality staff, or a mystery shopper's visit (联合稽查).
INSPECTION_KINDS = ("spot_check", "mystery_shopper")

# The handover at the door (pod.* and pickup.* ops).
VERIFY_METHODS = ("id_check", "pin", "known_recipient", "proxy")
ITEM_CONDITIONS = ("ok", "damaged", "missing")
PAYMENT_METHODS = ("cash", "qr")
REFUSAL_REASONS = ("damaged", "quality", "wrong_item", "other")
ALTERNATE_PLACES = ("locker", "station", "neighbour")
# How the customer's consent to an alternate place was given: on the customer page (its link, as appointment
# windows say), or reached by phone.
AUTHORIZATION_VIA = ("customer_link", "contact")
HANDOVER_STEPS = ("verify_recipient", "inspect", "collect_payment", "sign", "refuse", "deliver_alternate",
                  "pickup_collect")
STEP_OUTCOMES = ("accepted", "rejected")
# What dispatch's exception list shows.
HANDOVER_EXCEPTIONS = ("damage", "discrepancy", "refusal", "not_at_address", "pin_mismatch", "pin_locked",
                       "amount_mismatch", "gift_not_disclosed", *WORK_CHECK_CODES)
# The appointment's exceptions in the same queue: a promised window never attempted, a contact that went wrong,
# an attempt that failed, a window under review (server/services/exception_queue.py).
APPOINTMENT_EXCEPTIONS = ("not_attempted", "wrong_number", *ATTEMPT_FAILURES, "window_review")
DISPATCH_EXCEPTIONS = (*HANDOVER_EXCEPTIONS, *APPOINTMENT_EXCEPTIONS)
EXCEPTION_STATUSES = ("open", "acknowledged", "resolved")
# Why a handover op is rejected (the op result's code).
HANDOVER_CODES = ("pin_mismatch", "pin_locked", "pin_required", "photo_required", "inspection_required", "amount_mismatch",
                  "already_paid", "payment_required", "gift_not_disclosed", "recipient_unverified",
                  "courier_cannot_sign", "authorization_required", "handover_closed", "wrong_task_kind",
                  "fee_not_published")
# Refusals that say a step came before the one the rules put first (docs/kpis.md, 签收规范执行率): money or a
# signature before an accepted inspection, a signature or a drop before the COD money, a signature before the
# recipient check or before the gift was told, and the courier signing in the recipient's place. The PIN codes
# are not among them: they are the recipient check doing its work on whoever stood at the door.
ORDER_REFUSALS = ("inspection_required", "payment_required", "recipient_unverified", "gift_not_disclosed",
                  "courier_cannot_sign")
# Why a pod.deliver_alternate was refused when the courier reported leaving the parcel elsewhere (按址派送率):
# no recorded consent, a PIN task, or COD unpaid. Such a drop happened without leave, whatever came after.
UNAUTHORISED_DROPS = ("authorization_required", "pin_required", "payment_required")
LEDGER_KINDS = ("payment", "remittance", "correction")
CHECKLIST_KINDS = ("conduct.pre_shift", "conduct.stop", "vehicle.pre_trip", "vehicle.post_trip", "inspection")
# Filled in by quality staff (POST /quality/inspections), never on a handheld.
STAFF_CHECK_KINDS = ("inspection",)
VEHICLE_CHECK_KINDS = ("vehicle.pre_trip", "vehicle.post_trip")
TEMPLATE_STATUSES = ("active", "retired")
ANSWER_TYPES = ("pass_fail", "number", "choice", "text", "photo")
SEVERITIES = ("critical", "major", "minor")
# open -> repaired (a certified repair) | no_repair_needed (maintenance judged it fine)
DEFECT_STATUSES = ("open", "repaired", "no_repair_needed")
SHIFT_STATUSES = ("open", "ended", "abandoned")
# Why a van was off the road for a while (server.models.VehicleGrounding): a critical defect a check found,
# or dispatch took it out of service (or retired it).
GROUNDING_REASONS = ("critical_defect", "dispatch")
# A completed handover's sealed receipt: a delivery signed for, a refusal after inspection, a pickup collected.
RECEIPT_KINDS = ("delivery", "refusal", "pickup")
# How bad each violation code is, in one place: the grade weighs a violation by its severity's points.
VIOLATION_SEVERITY = {"late_without_notice": "minor", "left_before_inspection": "major",
                      "private_surcharge": "critical", "gift_not_disclosed": "major",
                      "conduct_item_failed": "minor", "complaint_upheld": "major",
                      "work_without_shift_check": "major", "grounded_vehicle_used": "critical",
                      "inspection_item_failed": "minor"}

# How a complaint reached us: the channels the office records, and those the customer's own action opens
# (their customer page, their receipt page, a rating of 1-2: the quality team's follow-up, issue 23).
COMPLAINT_OFFICE_CHANNELS = ("phone", "app", "web", "email", "in_person", "regulator")
COMPLAINT_CUSTOMER_CHANNELS = ("customer_page", "receipt_page", "rating")
COMPLAINT_CHANNELS = COMPLAINT_OFFICE_CHANNELS + COMPLAINT_CUSTOMER_CHANNELS
# What a complaint is about: a courier (courier_id names them), a depot, the hotline or the product itself.
COMPLAINT_SUBJECTS = ("courier", "depot", "hotline", "product")
# Why a complaint is overdue: no first response by its due time, not resolved by its due time, or the customer
# not updated for COMPLAINT_UPDATE_HOURS (docs/decisions.md, "Issue 23: complaints owned to the end").
COMPLAINT_OVERDUE_REASONS = ("response", "resolution", "update")
COMPLAINT_CATEGORIES = ("impolite", "dispute", "late", "surcharge", "gift_withheld", "damage", "loss", "other")
# open -> responded (first response recorded) -> resolved (with an outcome); a resolved complaint the customer
# brings back is reopened (the resolution kept on the reopening), then resolved again.
COMPLAINT_STATUSES = ("open", "responded", "resolved", "reopened")
# A contact with the customer about a complaint: its first response (by /respond, or the first contact recorded),
# a later contact, or `legacy`: one that stands for the contacts of a complaint resolved before they were recorded
# one by one, whose office said it was not resolved at first contact (migration 0027).
COMPLAINT_CONTACT_KINDS = ("first_response", "contact", "legacy")
COMPLAINT_CONTACT_CHANNELS = ("phone", "sms", "email", "in_person", "app", "web")
COMPLAINT_OUTCOMES = ("upheld", "rejected", "withdrawn")
# Claims (理赔): where a claim came from, what it is for, and its steps:
# opened -> assessed -> approved -> paid; opened | assessed -> rejected.
CLAIM_ORIGINS = ("exception", "refusal", "complaint", "customer", "dispatch")
CLAIM_KINDS = ("damage", "loss", "other")
CLAIM_STATUSES = ("opened", "assessed", "approved", "paid", "rejected")
CLAIM_CLOSED = ("paid", "rejected")
# A claim entry: a step, or a correction of an amount an earlier entry fixed (an assessment or a payment).
CLAIM_ENTRY_KINDS = ("opened", "assessed", "approved", "paid", "rejected", "correction")
# The handover exceptions a claim may open from, and the claim kind each makes (a refusal: when refused as damaged).
CLAIM_EXCEPTION_KINDS = {"damage": "damage", "discrepancy": "loss", "refusal": "damage"}
SATISFACTION = ("satisfied", "neutral", "dissatisfied")
# Why a courier's grade is what it is: one reason per violation code, the on-time rate, the critical cap.
# A history row also says what made the change when staff did: an override set or lifted, a violation voided.
GRADE_REASONS = ("violations", "on_time_rate", "low_ratings", "critical_violation", "override", "override_lifted",
                 "override_ended", "violation_voided")
# How the service-quality KPI report groups its figures (docs/kpis.md).
KPI_GROUPS = ("courier", "depot", "day")

# Domain events (docs/events.md): written in the same transaction as the change, read from the event feed
# and delivered to webhook subscriptions. Named <entity>.<event>.
EVENT_TYPES = ("task.assigned", "task.delivered", "task.refused", "task.exception_raised",
               "appointment.confirmed", "appointment.rescheduled", "appointment.missed",
               "vehicle.out_of_service", "complaint.opened", "complaint.taken", "complaint.handed_over",
               "grade.changed", "parcel.lost", "parcel.found",
               "claim.opened", "claim.decided", "claim.paid",
               "leak.opened", "leak.confirmed", "leak.dismissed", "leak.resolved",
               "violation.appealed", "violation.appeal_decided", "violation.voided", "grade.overridden",
               "appointment.proposed", "appointment.late_notice", "task.out_for_delivery")
# Messages to customers (docs/decisions.md, "Messages to customers"): what a message tells, its languages, and where
# it stands. queued | held_quiet (until the quiet hours end) -> sent | failed (retried) -> dead (after the last
# attempt); recorded: no gateway is configured, kept and never sent; suppressed: never sent (reason kept).
MESSAGE_KINDS = ("appointment_proposed", "appointment_confirmed", "courier_late", "out_for_delivery", "delivered",
                 "refused", "claim_approved", "claim_rejected")
MESSAGE_LANGUAGES = ("zh", "en")
MESSAGE_STATUSES = ("queued", "held_quiet", "sent", "failed", "dead", "recorded", "suppressed")
MESSAGE_SUPPRESSIONS = ("daily_cap", "no_phone", "redacted", "already_told_today", "no_link")
# pending -> delivered | dead (after the last attempt); an admin's replay makes any delivery pending again.
DELIVERY_STATUSES = ("pending", "delivered", "dead")

# A parcel's journey (issue 22): what a scan says happened to it, and who said so (a handheld's parcel.scan, an
# upstream system's POST /integrations/scans, or the handover step that did it).
SCAN_EVENTS = ("arrived_depot", "out_for_delivery", "handed_over", "returned", "exception")
SCAN_SOURCES = ("handheld", "upstream", "handover")
# The note the handover's own exception scans carry (a handheld's or upstream's note is free text).
SCAN_NOTES = ("inspection",)
# suspected_lost: unscanned too long (the scheduler); lost | found: dispatch's word on it.
LOST_STATES = ("suspected_lost", "lost", "found")
SCAN_CODES = ("unknown_parcel", "lost_state_not_suspected")

# Information-leak incidents (信息泄露事件, issue 23): what data went out, how the leak was found, who was told.
# open (reported by staff) | review (opened by the service on its own) -> confirmed | dismissed; confirmed -> resolved.
LEAK_STATUSES = ("open", "review", "confirmed", "dismissed", "resolved")
LEAK_UNDECIDED = ("open", "review")
LEAK_COUNTED = ("confirmed", "resolved")  # a leak, for leak_incidents (docs/kpis.md)
LEAK_SOURCES = ("customer_report", "staff", "audit", "auto")
LEAK_DATA_KINDS = ("name", "phone", "address", "signature", "photo", "id_number", "payment", "other")
LEAK_AUDIENCES = ("customers", "management", "regulator", "police")
LEAK_CHANNELS = ("phone", "sms", "email", "letter", "in_person", "portal", "other")
# What the service watches on its own: a link used from too many addresses, an export too large.
LEAK_CAUSES = ("link_addresses", "export_rows")
LEAK_LINK_KINDS = ("customer_link", "receipt")

"""Configuration: one Config class that reads FIELDOPS_* environment variables."""
import base64
import ipaddress
import json
import os
import re
from datetime import time, timedelta
from typing import NamedTuple
from urllib.parse import urlsplit

from schemas.vocab import COMPLAINT_CATEGORIES


def _env_str(name: str, default: str | None = None) -> str | None:
    """Return the variable FIELDOPS_<name>, or default when unset or empty."""
    value = os.environ.get(f"FIELDOPS_{name}")
    return value if value else default


def _env_int(name: str, default: int) -> int:
    """Return FIELDOPS_<name> as an int; a malformed value fails at start-up, not later."""
    value = _env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise RuntimeError(f"FIELDOPS_{name} must be an integer, got {value!r}") from exc


def _env_json_object(name: str, default: dict) -> dict:
    """Return FIELDOPS_<name> as a JSON object; a malformed value fails at start-up, not later."""
    value = _env_str(name)
    if value is None:
        return default
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise RuntimeError(f"FIELDOPS_{name} must be a JSON object, got {value!r}") from exc
    if not isinstance(parsed, dict):
        raise RuntimeError(f"FIELDOPS_{name} must be a JSON object, got {value!r}")
    return parsed


class FailureLimit(NamedTuple):
    """At most `attempts` failed attempts in any `seconds`-long window."""

    attempts: int
    seconds: int


def _env_limit(name: str, default: str) -> FailureLimit:
    """Return FIELDOPS_<name>, written ATTEMPTS/SECONDS (e.g. 10/300), as a FailureLimit."""
    value = _env_str(name, default)
    attempts, _, seconds = value.partition("/")
    try:
        limit = FailureLimit(int(attempts), int(seconds))
    except ValueError as exc:
        raise RuntimeError(f"FIELDOPS_{name} must be ATTEMPTS/SECONDS, got {value!r}") from exc
    if limit.attempts < 1 or limit.seconds < 1:
        raise RuntimeError(f"FIELDOPS_{name} must be positive, got {value!r}")
    return limit


def _grade_consequences(value: dict) -> dict:
    """GRADE_CONSEQUENCES checked: an object per grade A, B, C; retraining_required a boolean, retraining_course a
    code."""
    for grade, consequences in value.items():
        if grade not in ("A", "B", "C") or not isinstance(consequences, dict):
            raise RuntimeError(f"FIELDOPS_GRADE_CONSEQUENCES: {grade!r} must be a grade (A, B, C) with an object")
        if not isinstance(consequences.get("retraining_required", False), bool):
            raise RuntimeError(f"FIELDOPS_GRADE_CONSEQUENCES: {grade}.retraining_required must be true or false")
        course = consequences.get("retraining_course")
        if course is not None and not (isinstance(course, str) and 0 < len(course) <= 32):
            raise RuntimeError(f"FIELDOPS_GRADE_CONSEQUENCES: {grade}.retraining_course must be a course code")
    return {grade: dict(value.get(grade, {})) for grade in ("A", "B", "C")}


# Where webhooks are never sent (checked on every address a URL resolves to): private, loopback,
# link-local, carrier-grade NAT, "this network", and their IPv6 kin (unique local, link-local, loopback).
DEFAULT_FORBIDDEN_NETWORKS = ("0.0.0.0/8,10.0.0.0/8,100.64.0.0/10,127.0.0.0/8,169.254.0.0/16,172.16.0.0/12,"
                              "192.168.0.0/16,::/128,::1/128,fc00::/7,fe80::/10")


def parse_networks(value: str, name: str = "WEBHOOK_FORBIDDEN_NETWORKS") -> tuple:
    """Comma-separated CIDR blocks as ip_network objects ("none": no block); a malformed one fails at start-up."""
    if value.strip().lower() == "none":
        return ()
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise RuntimeError(f"FIELDOPS_{name} must be comma-separated CIDR blocks: {exc}") from exc


class QuietHours(NamedTuple):
    """Depot-local hours in which no message is sent: from `start` until `end` (past midnight when end < start)."""

    start: time
    end: time


_QUIET_HOURS = re.compile(r"\d{2}:\d{2} *- *\d{2}:\d{2}")


def parse_quiet_hours(value: str) -> QuietHours | None:
    """FIELDOPS_SMS_QUIET_HOURS, HH:MM-HH:MM in the depot's zone, or "off" (None); a malformed one fails at start-up."""
    if value.strip().lower() == "off":
        return None
    try:
        if not _QUIET_HOURS.fullmatch(value.strip()):
            raise ValueError(value)
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError as exc:
        raise RuntimeError(f"FIELDOPS_SMS_QUIET_HOURS must be HH:MM-HH:MM or off, got {value!r}") from exc
    if start == end or start.second or end.second:
        raise RuntimeError(f"FIELDOPS_SMS_QUIET_HOURS must be two different times HH:MM-HH:MM, got {value!r}")
    return QuietHours(start, end)


class BucketLocation(NamedTuple):
    """An s3://bucket/prefix URL taken apart; prefix is '' or ends with '/'."""

    bucket: str
    prefix: str


def parse_attachments_url(url: str) -> BucketLocation:
    """FIELDOPS_ATTACHMENTS_URL as a bucket and key prefix; anything but s3://bucket[/prefix] fails at start-up."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise RuntimeError(f"FIELDOPS_ATTACHMENTS_URL must be s3://bucket/prefix, got {url!r}")
    prefix = parts.path.strip("/")
    return BucketLocation(parts.netloc, prefix + "/" if prefix else "")


class Config:
    """Settings read from the environment when the class is instantiated."""

    def __init__(self) -> None:
        """Read every setting once, so a config object is a snapshot."""
        self.SQLALCHEMY_DATABASE_URI = _env_str("DATABASE_URL")  # None: SQLite under instance/
        self.SECRET_KEY = _env_str("SECRET_KEY", "dev-only-not-secret")
        self.ATTACHMENTS_DIR = _env_str("ATTACHMENTS_DIR")  # None: instance/attachments
        # PostgreSQL connections per process: kept open, and extra ones opened under a burst then closed.
        self.DB_POOL_SIZE = _env_int("DB_POOL_SIZE", 5)
        self.DB_MAX_OVERFLOW = _env_int("DB_MAX_OVERFLOW", 10)
        prepared = _env_str("DB_PREPARED_STATEMENTS", "on")
        if prepared not in ("on", "off"):
            raise RuntimeError(f"FIELDOPS_DB_PREPARED_STATEMENTS must be on or off, got {prepared!r}")
        self.DB_PREPARED_STATEMENTS = prepared == "on"
        # Attachments in an S3-compatible bucket instead (server/storage.py): s3://bucket/prefix, the store's
        # address (unset: AWS), the address staff browsers reach it at when it differs (their signed URLs
        # name it), region and credentials (unset: boto3's own chain, e.g. an instance role), and how long
        # a signed URL handed to staff works.
        self.ATTACHMENTS_URL = _env_str("ATTACHMENTS_URL")
        if self.ATTACHMENTS_URL:
            parse_attachments_url(self.ATTACHMENTS_URL)
        self.S3_ENDPOINT = _env_str("S3_ENDPOINT")
        self.S3_PUBLIC_ENDPOINT = _env_str("S3_PUBLIC_ENDPOINT")
        self.S3_REGION = _env_str("S3_REGION", "us-east-1")
        self.S3_ACCESS_KEY = _env_str("S3_ACCESS_KEY")
        self.S3_SECRET_KEY = _env_str("S3_SECRET_KEY")
        self.ATTACHMENT_URL_SECONDS = _env_int("ATTACHMENT_URL_SECONDS", 300)
        if not 1 <= self.ATTACHMENT_URL_SECONDS <= 7 * 24 * 3600:
            raise RuntimeError("FIELDOPS_ATTACHMENT_URL_SECONDS must be between 1 and 604800 (S3's longest)")
        # instance/ is FIELDOPS_INSTANCE_DIR, else the checkout's own folder beside the package:
        # never the current directory, so every command reaches the same database.
        self.INSTANCE_DIR = os.path.abspath(_env_str("INSTANCE_DIR") or os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "instance"))
        # The courier's app (courier-app/dist, built by `npm run build`), served at /app.
        self.COURIER_APP_DIR = os.path.abspath(_env_str("COURIER_APP_DIR") or os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "courier-app", "dist"))
        self.TIMEZONE = _env_str("TIMEZONE", "Asia/Shanghai")
        # The company's name as couriers say it to customers ("您好！我是{name}的…"); unset: the phrase names none.
        self.COMPANY_NAME = _env_str("COMPANY_NAME")
        # The company's name as couriers say it to customers ("您好！我是{name}的…"); unset: the phrase names none.
        self.COMPANY_NAME = _env_str("COMPANY_NAME")
        self.LOG_LEVEL = _env_str("LOG_LEVEL", "INFO")
        # Devices may stay offline this long; tombstones and op results outlive it.
        self.SYNC_RETENTION = timedelta(days=_env_int("SYNC_RETENTION_DAYS", 30))
        self.ENROLLMENT_TTL = timedelta(minutes=_env_int("ENROLLMENT_TTL_MINUTES", 15))
        # An op whose attachment is still not uploaded this long after its device_time is
        # rejected (attachment_never_uploaded) instead of stopping every retry forever.
        self.ATTACHMENT_WAIT = timedelta(hours=_env_int("ATTACHMENT_WAIT_HOURS", 24))
        # A device with more rejected ops than this (since it enrolled) is shown to dispatch as noisy: a broken
        # app or a token in the wrong hands (GET /dispatch/devices?noisy=true, fieldops_sync_noisy_devices).
        self.DEVICE_REJECTIONS_ALERT = _env_int("DEVICE_REJECTIONS_ALERT", 1000)
        # Failed attempts only; a valid token is never refused. Bearer tokens are
        # 256-bit (the limits spare the database, not the secret); enrollment
        # codes are ~50-bit and typed by people, so they are limited strictly.
        self.AUTH_TOKEN_FAILURES_PER_ADDRESS = _env_limit("AUTH_TOKEN_FAILURES_PER_ADDRESS", "100/300")
        self.AUTH_TOKEN_FAILURES_PER_TOKEN = _env_limit("AUTH_TOKEN_FAILURES_PER_TOKEN", "10/300")
        self.AUTH_ENROLL_FAILURES_PER_ADDRESS = _env_limit("AUTH_ENROLL_FAILURES_PER_ADDRESS", "10/900")
        self.AUTH_ENROLL_FAILURES_PER_CODE = _env_limit("AUTH_ENROLL_FAILURES_PER_CODE", "3/900")
        # Every request to one customer link (page views and form posts) counts; links never share a budget.
        self.CUSTOMER_LINK_REQUESTS = _env_limit("CUSTOMER_LINK_REQUESTS", "30/600")
        # Invalid links (tampered, unknown) per client address; a valid link is never refused for them.
        self.CUSTOMER_LINK_FAILURES_PER_ADDRESS = _env_limit("CUSTOMER_LINK_FAILURES_PER_ADDRESS", "20/600")
        self.CUSTOMER_LINK_TTL_HOURS = _env_int("CUSTOMER_LINK_TTL_HOURS", 48)
        # Sealed receipts: the Ed25519 signing key (PEM or base64 of the 32 raw bytes; unset: the
        # instance folder's receipt-key.pem, made on first use), the depot code that starts every
        # receipt number, and the public receipt page's budgets: requests per receipt, and unknown
        # tokens per client address (guessing).
        self.RECEIPT_KEY = _env_str("RECEIPT_KEY")
        self.RECEIPT_KEY_FILE = os.path.join(self.INSTANCE_DIR, "receipt-key.pem")
        self.RECEIPT_PREFIX = _env_str("RECEIPT_PREFIX", "FO")
        self.RECEIPT_PAGE_REQUESTS = _env_limit("RECEIPT_PAGE_REQUESTS", "30/600")
        self.RECEIPT_TOKEN_FAILURES_PER_ADDRESS = _env_limit("RECEIPT_TOKEN_FAILURES_PER_ADDRESS", "20/600")
        # The dispatch console (/console, docs/decisions.md "Issue 24: the console's sign-in"): a session ends after
        # this many minutes without a request; passwords are at least this long. Failed sign-ins are limited per
        # (username, client address) and per address, so a wrong guess from one address never locks the
        # right password out from another.
        self.CONSOLE_IDLE_MINUTES = _env_int("CONSOLE_IDLE_MINUTES", 30)
        # ...and, however busy (the board refreshes itself), this many hours after signing in.
        self.CONSOLE_SESSION_MAX_HOURS = _env_int("CONSOLE_SESSION_MAX_HOURS", 12)
        self.CONSOLE_PASSWORD_MIN_LENGTH = _env_int("CONSOLE_PASSWORD_MIN_LENGTH", 10)
        for name in ("CONSOLE_IDLE_MINUTES", "CONSOLE_SESSION_MAX_HOURS", "CONSOLE_PASSWORD_MIN_LENGTH"):
            if getattr(self, name) < 1:
                raise RuntimeError(f"FIELDOPS_{name} must be at least 1")
        self.CONSOLE_LOGIN_FAILURES_PER_USER_ADDRESS = _env_limit("CONSOLE_LOGIN_FAILURES_PER_USER_ADDRESS", "5/900")
        self.CONSOLE_LOGIN_FAILURES_PER_ADDRESS = _env_limit("CONSOLE_LOGIN_FAILURES_PER_ADDRESS", "30/900")
        # Reverse proxies in front of us whose X-Forwarded-* headers are trusted (0: none).
        self.PROXY_HOPS = _env_int("PROXY_HOPS", 0)
        # The address customers reach the service at (customer links, their QR codes, the
        # demo's printed link); unset, links follow the request's own host.
        self.PUBLIC_URL = _env_str("PUBLIC_URL")
        # Appointments: a pushing device's clock this far off the server's flags its ops for review;
        # a courier waits this long at the stop before reporting the customer absent; the board
        # shows a confirmed appointment at risk this long before its window ends unvisited.
        self.CLOCK_SKEW_TOLERANCE_SECONDS = _env_int("CLOCK_SKEW_TOLERANCE_SECONDS", 300)
        self.MIN_WAIT_MINUTES = _env_int("MIN_WAIT_MINUTES", 10)
        self.AT_RISK_LEAD_MINUTES = _env_int("AT_RISK_LEAD_MINUTES", 30)
        # A task is at risk of breaking its service product's promise this long before the promised time.
        self.PROMISE_AT_RISK_MINUTES = _env_int("PROMISE_AT_RISK_MINUTES", 120)
        # A late notice (or a courier's new window) counts as given in time only this long before the window
        # starts: "提前给顾客打电话或另约时间" (docs/decisions.md, "Issue 21: appointments that cannot be rewritten").
        self.NOTICE_LEAD_MINUTES = _env_int("NOTICE_LEAD_MINUTES", 30)
        # The parcel's journey (issue 22): a parcel of an open task unscanned this long after its last scan is
        # suspected lost for dispatch; a field event (a scan or a handheld op) that reaches the server within
        # this long of its effective device time is timely (tracking_timeliness, docs/kpis.md).
        self.LOST_AFTER_HOURS = _env_int("LOST_AFTER_HOURS", 48)
        self.TRACKING_TIMELY_MINUTES = _env_int("TRACKING_TIMELY_MINUTES", 30)
        # A signature further than this from the task's address is flagged not_at_address; an arrival further
        # than this from the stop is kept in the history but is not an arrival (kept/late, the wait rule).
        self.HANDOVER_MAX_DISTANCE_M = _env_int("HANDOVER_MAX_DISTANCE_M", 200)
        self.HANDOVER_PIN_MAX_FAILURES = _env_int("HANDOVER_PIN_MAX_FAILURES", 5)
        self.HANDOVER_CONSENT_CALL_HOURS = _env_int("HANDOVER_CONSENT_CALL_HOURS", 4)
        # Checklists: a device may submit against a template version this long after the next one
        # was published; a vehicle check this far from the van's last known position is flagged.
        self.CHECKLIST_GRACE = timedelta(hours=_env_int("CHECKLIST_GRACE_HOURS", 24))
        self.VEHICLE_CHECK_RADIUS_M = _env_int("VEHICLE_CHECK_RADIUS_M", 500)
        # A shift covers work from its start until its end, and never longer than this (a shift never
        # ended does not cover the next days: each day's work needs that day's checks).
        self.SHIFT_MAX_HOURS = _env_int("SHIFT_MAX_HOURS", 16)
        # Complaints: a first response is due this long after the complaint was received.
        self.COMPLAINT_RESPONSE_HOURS = _env_int("COMPLAINT_RESPONSE_HOURS", 24)
        # The same contact (staff member, channel and note) recorded again this soon is a double submission.
        self.COMPLAINT_CONTACT_REPEAT_SECONDS = _env_int("COMPLAINT_CONTACT_REPEAT_SECONDS", 600)
        # A complaint is resolved within this many hours of being received (or reopened); a category may have its
        # own (FIELDOPS_COMPLAINT_RESOLUTION_HOURS_<CATEGORY>, e.g. _DAMAGE=168). Fixed on the complaint when
        # received. The customer is updated (a contact) at least every COMPLAINT_UPDATE_HOURS until resolved.
        self.COMPLAINT_RESOLUTION_HOURS = _env_int("COMPLAINT_RESOLUTION_HOURS", 72)
        self.COMPLAINT_RESOLUTION_HOURS_BY_CATEGORY = {
            category: _env_int(f"COMPLAINT_RESOLUTION_HOURS_{category.upper()}", 0)
            for category in COMPLAINT_CATEGORIES if _env_str(f"COMPLAINT_RESOLUTION_HOURS_{category.upper()}")}
        self.COMPLAINT_UPDATE_HOURS = _env_int("COMPLAINT_UPDATE_HOURS", 48)
        # Customers' complaints from their pages: this many per task per window (429 beyond); a photo up to
        # COMPLAINT_PHOTO_LIMIT bytes. A rating this low or lower opens the quality team's follow-up.
        self.COMPLAINT_PAGE_FILINGS = _env_limit("COMPLAINT_PAGE_FILINGS", "5/3600")
        self.COMPLAINT_FOLLOWUP_MAX_SCORE = _env_int("COMPLAINT_FOLLOWUP_MAX_SCORE", 2)
        # Claims (理赔, docs/decisions.md "Claims"): an uninsured parcel is paid its actual loss up to this multiple
        # of the fees paid for it; an approval above this amount (fen) is the admin's; each step falls due this
        # long after the step before it.
        self.CLAIM_FEE_MULTIPLE = _env_int("CLAIM_FEE_MULTIPLE", 3)
        self.CLAIM_APPROVAL_LIMIT = _env_int("CLAIM_APPROVAL_LIMIT", 50_000)
        self.CLAIM_ASSESS_HOURS = _env_int("CLAIM_ASSESS_HOURS", 72)
        self.CLAIM_APPROVE_HOURS = _env_int("CLAIM_APPROVE_HOURS", 48)
        self.CLAIM_PAY_HOURS = _env_int("CLAIM_PAY_HOURS", 168)
        # Information-leak incidents (docs/decisions.md, "Issue 23: information-leak incidents"): a customer or
        # receipt link seen from more distinct client addresses than this opens one for review; link uses are kept
        # (as keyed hashes) this many days. A staff member handed more rows of customer data than this within the
        # rolling window (pages and single tasks add up) opens one for review too.
        self.LEAK_LINK_MAX_ADDRESSES = _env_int("LEAK_LINK_MAX_ADDRESSES", 5)
        self.LEAK_LINK_USE_DAYS = _env_int("LEAK_LINK_USE_DAYS", 30)
        self.LEAK_EXPORT_MAX_ROWS = _env_int("LEAK_EXPORT_MAX_ROWS", 5000)
        self.LEAK_EXPORT_WINDOW_MINUTES = _env_int("LEAK_EXPORT_WINDOW_MINUTES", 60)
        for name in ("LEAK_LINK_MAX_ADDRESSES", "LEAK_LINK_USE_DAYS", "LEAK_EXPORT_MAX_ROWS",
                     "LEAK_EXPORT_WINDOW_MINUTES"):
            if getattr(self, name) < 1:
                raise RuntimeError(f"FIELDOPS_{name} must be at least 1")
        # The service grade (docs/decisions.md, "Complaints and the service grade"): a score of 100
        # less points per violation by severity and per percentage point of on-time rate below target,
        # over a rolling window; A at or above GRADE_A_MIN, B at or above GRADE_B_MIN, else C.
        self.GRADE_WINDOW_DAYS = _env_int("GRADE_WINDOW_DAYS", 30)
        self.GRADE_POINTS = {"critical": _env_int("GRADE_POINTS_CRITICAL", 20),
                             "major": _env_int("GRADE_POINTS_MAJOR", 8),
                             "minor": _env_int("GRADE_POINTS_MINOR", 3)}
        self.GRADE_A_MIN = _env_int("GRADE_A_MIN", 90)
        self.GRADE_B_MIN = _env_int("GRADE_B_MIN", 75)
        self.GRADE_ON_TIME_TARGET_PERCENT = _env_int("GRADE_ON_TIME_TARGET_PERCENT", 95)
        self.GRADE_ON_TIME_MIN_APPOINTMENTS = _env_int("GRADE_ON_TIME_MIN_APPOINTMENTS", 10)
        self.GRADE_ON_TIME_POINTS_PER_PERCENT = _env_int("GRADE_ON_TIME_POINTS_PER_PERCENT", 1)
        # What each grade entails (docs/decisions.md, "Issue 23: training and the shift gate"), as a JSON object
        # {grade: {key: value}}: "retraining_required" true keeps the courier from starting a shift until they pass
        # a retraining session held since they were given the grade; "retraining_course" names the course code that
        # counts (absent: any active periodic course); other keys are informational (shown, not enforced).
        self.GRADE_CONSEQUENCES = _grade_consequences(_env_json_object(
            "GRADE_CONSEQUENCES", {"A": {}, "B": {}, "C": {"retraining_required": True}}))
        # Training (issue 23): a session is planned at most this many days ahead; a pass expiring within
        # TRAINING_DUE_DAYS shows as due on the courier's training record.
        self.TRAINING_AHEAD_DAYS = _env_int("TRAINING_AHEAD_DAYS", 365)
        self.TRAINING_DUE_DAYS = _env_int("TRAINING_DUE_DAYS", 30)
        # Upstream manifests: the drop folder the manifest-import job reads (unset: the job does nothing).
        self.MANIFEST_INBOX = _env_str("MANIFEST_INBOX")
        # Fault injection for the crash tests (server/faults.py): a worker that finds this file after a
        # push committed deletes it and dies before answering. Unset in production: nothing is installed.
        self.FAULT_EXIT_AFTER_PUSH_COMMIT = _env_str("FAULT_EXIT_AFTER_PUSH_COMMIT")
        # Recipients' personal data on tasks finished longer ago than this is redacted (the retention job).
        self.RETENTION_DAYS = _env_int("RETENTION_DAYS", 90)
        # Webhooks (docs/events.md): a delivery is dead after this many attempts; retries wait a random time
        # up to BASE * 2^(attempts-1) seconds, at most MAX (full jitter). A worker's claim on a delivery
        # lasts CLAIM seconds (more than the connect and read timeouts), then another worker may take it.
        self.WEBHOOK_MAX_ATTEMPTS = _env_int("WEBHOOK_MAX_ATTEMPTS", 8)
        self.WEBHOOK_BACKOFF_BASE_SECONDS = _env_int("WEBHOOK_BACKOFF_BASE_SECONDS", 300)
        self.WEBHOOK_BACKOFF_MAX_SECONDS = _env_int("WEBHOOK_BACKOFF_MAX_SECONDS", 6 * 3600)
        self.WEBHOOK_CONNECT_TIMEOUT_SECONDS = _env_int("WEBHOOK_CONNECT_TIMEOUT_SECONDS", 5)
        self.WEBHOOK_READ_TIMEOUT_SECONDS = _env_int("WEBHOOK_READ_TIMEOUT_SECONDS", 10)
        self.WEBHOOK_CLAIM_SECONDS = _env_int("WEBHOOK_CLAIM_SECONDS", 60)
        self.WEBHOOK_MAX_PER_RUN = _env_int("WEBHOOK_MAX_PER_RUN", 500)
        self.WEBHOOK_FORBIDDEN_NETWORKS = parse_networks(
            _env_str("WEBHOOK_FORBIDDEN_NETWORKS", DEFAULT_FORBIDDEN_NETWORKS))
        # Messages to customers (docs/decisions.md, "Messages to customers"): the SMS gateway's address (unset:
        # messages are recorded, never sent), the key sent as a bearer token and the secret that signs each request
        # as webhooks are signed (Standard Webhooks); depot-local quiet hours ("off": none) during which messages
        # wait; at most PER_CUSTOMER_DAY messages to one phone a depot day (beyond: suppressed); a message is dead
        # after MAX_ATTEMPTS, retried after a random wait up to BASE * 2^(attempts-1) seconds, at most MAX.
        # Timeouts, the claim lease and the forbidden networks are the webhooks'.
        self.SMS_GATEWAY_URL = _env_str("SMS_GATEWAY_URL")
        if self.SMS_GATEWAY_URL and urlsplit(self.SMS_GATEWAY_URL).scheme not in ("http", "https"):
            raise RuntimeError(f"FIELDOPS_SMS_GATEWAY_URL must be an http(s) URL, got {self.SMS_GATEWAY_URL!r}")
        self.SMS_GATEWAY_KEY = _env_str("SMS_GATEWAY_KEY")
        self.SMS_GATEWAY_SECRET = _env_str("SMS_GATEWAY_SECRET")
        if self.SMS_GATEWAY_SECRET:
            try:
                base64.b64decode(self.SMS_GATEWAY_SECRET.removeprefix("whsec_"), validate=True)
            except ValueError as exc:
                raise RuntimeError("FIELDOPS_SMS_GATEWAY_SECRET must be base64 (whsec_ + base64, as webhook secrets "
                                   "are written)") from exc
        self.SMS_QUIET_HOURS = parse_quiet_hours(_env_str("SMS_QUIET_HOURS", "21:00-08:00"))
        self.SMS_PER_CUSTOMER_DAY = _env_int("SMS_PER_CUSTOMER_DAY", 6)
        self.SMS_MAX_ATTEMPTS = _env_int("SMS_MAX_ATTEMPTS", 6)
        self.SMS_BACKOFF_BASE_SECONDS = _env_int("SMS_BACKOFF_BASE_SECONDS", 60)
        self.SMS_BACKOFF_MAX_SECONDS = _env_int("SMS_BACKOFF_MAX_SECONDS", 3600)
        for name in ("SMS_PER_CUSTOMER_DAY", "SMS_MAX_ATTEMPTS"):
            if getattr(self, name) < 1:
                raise RuntimeError(f"FIELDOPS_{name} must be at least 1")
        # The scheduler (server/scheduler.py): the leader's lease lasts this long and is renewed every
        # third of it; JOB_SCHEDULES overrides schedules ("missed-appointments=every 1 min; grades=off").
        self.SCHEDULER_LEASE_SECONDS = _env_int("SCHEDULER_LEASE_SECONDS", 30)
        if self.SCHEDULER_LEASE_SECONDS < 1:
            raise RuntimeError("FIELDOPS_SCHEDULER_LEASE_SECONDS must be at least 1")
        self.JOB_SCHEDULES = _env_str("JOB_SCHEDULES")
        # An upload nothing names is deleted by attachments-gc once it is this old.
        self.ATTACHMENT_GC_GRACE = timedelta(hours=_env_int("ATTACHMENT_GC_GRACE_HOURS", 48))
        # Customers' ratings (1-5) of this score or less, given in the window, cost points each.
        self.GRADE_LOW_RATING_MAX = _env_int("GRADE_LOW_RATING_MAX", 2)
        self.GRADE_LOW_RATING_POINTS = _env_int("GRADE_LOW_RATING_POINTS", 2)
        # /metrics: with a token, only its bearer may scrape (from anywhere); without, loopback callers only.
        self.METRICS_TOKEN = _env_str("METRICS_TOKEN")
        # `fieldops scheduler` serves its own job and webhook counters on this port (0: not served).
        self.SCHEDULER_METRICS_PORT = _env_int("SCHEDULER_METRICS_PORT", 0)
        self.SCHEDULER_METRICS_HOST = _env_str("SCHEDULER_METRICS_HOST", "127.0.0.1")

    # hide_parameters: SQL errors in logs never carry the values (hashes, names, codes).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True, "hide_parameters": True}
    # The longest request target (path and query, as sent) the app reads: a longer one is a 414 problem.
    # gunicorn's own request line limit (server/gunicorn_conf.py) is above it, so gunicorn passes such a
    # request on instead of answering its own HTML 414 (docs/decisions.md, "Over-long URLs").
    URI_LIMIT = 4096
    JSON_BODY_LIMIT = 1024 * 1024
    PUSH_BODY_LIMIT = 5 * 1024 * 1024
    IMPORT_BODY_LIMIT = 10 * 1024 * 1024
    PUSH_MAX_OPS = 500
    # A rejected op's payload is kept whole up to this many bytes of canonical JSON; beyond, its size,
    # SHA-256 and first bytes (sync.push: bounded). Applied ops keep theirs whole.
    REJECTED_PAYLOAD_MAX_BYTES = 4096
    # SQLite: decide a push's ops in a read transaction, hold the write lock only to write (docs/sync.md).
    PUSH_READ_THEN_WRITE = True
    ATTACHMENT_LIMIT = 10 * 1024 * 1024
    COMPLAINT_PHOTO_LIMIT = 5 * 1024 * 1024
    COMPLAINT_FORM_BODY_LIMIT = COMPLAINT_PHOTO_LIMIT + 64 * 1024  # the photo and the form's fields
    PULL_DEFAULT_LIMIT = 500
    PULL_MAX_LIMIT = 5000
    SYNC_PROTOCOLS = (1,)
    SQLITE_BUSY_TIMEOUT_MS = 10_000

    API_TITLE = "Fieldops"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    # Relative to the docs page: its assets are served under it (server/errors.py), no CDN needed.
    OPENAPI_SWAGGER_UI_URL = "docs/"
    API_SPEC_OPTIONS = {
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


class TestConfig(Config):
    """Settings for the test suite; the database URL is passed in by the fixture."""

    TESTING = True

    def __init__(self, database_url: str, attachments_dir: str) -> None:
        """Build a config for one test database and attachment folder."""
        super().__init__()
        self.SQLALCHEMY_DATABASE_URI = database_url
        self.ATTACHMENTS_DIR = attachments_dir
        self.ATTACHMENTS_URL = None  # the folder; tests that want a bucket set it (tools/seaweed.py)
        # Made on first use, beside the attachments: never in the checkout's instance folder.
        self.RECEIPT_KEY_FILE = os.path.join(os.path.dirname(attachments_dir), "receipt-key.pem")
        self.SECRET_KEY = "test"
        self.LOG_LEVEL = "INFO"  # every access line reaches the suite's log audit (tests/log_audit.py)

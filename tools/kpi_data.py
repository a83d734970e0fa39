"""Synthetic facts for the KPI benchmark: a month of a city's tasks with appointments, handovers, their refused steps,
ratings, complaints with their contacts and reopenings.

Rows are made as plain tuples from a seeded generator and written in bulk:
COPY on PostgreSQL, executemany on SQLite. The distributions are the demo
depot's habits scaled up (docs/benchmarks.md lists them).
"""
import random
from datetime import date, datetime, time, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8))
TASKS_PER_COURIER_DAY = 120
DEPOTS = 20

COLUMNS = {
    "couriers": ("id", "name", "phone", "employee_no", "active", "depot", "grade", "version", "created_at",
                 "updated_at"),
    "tasks": ("id", "waybill_no", "kind", "status", "recipient_name", "recipient_phone", "address", "cod_amount",
              "window_start", "window_end", "service_date", "courier_id", "version", "dispatch_version",
              "needs_review", "pin_required", "finished_at", "created_at", "updated_at"),
    "appointments": ("task_id", "status", "window_start", "window_end", "notice_in_time", "needs_new_appointment",
                     "clock_suspect", "updated_at"),
    "task_assignments": ("task_id", "courier_id", "assigned_at"),
    "handovers": ("task_id", "recipient_verified", "inspection", "discrepancy", "damaged", "signed",
                  "gift_disclosed", "alternate_place", "not_at_address", "distance_m", "outcome", "completed_at",
                  "courier_id", "items_inspected", "items_damaged", "items_short", "updated_at"),
    # Refused steps only: the report reads no other (accepted steps would be ~5 a task, never read by it).
    "handover_steps": ("task_id", "courier_id", "kind", "outcome", "code", "device_time", "received_at",
                       "clock_suspect", "data"),
    "ratings": ("task_id", "score", "created_at"),
    "complaints": ("courier_id", "task_id", "channel", "category", "text", "status", "received_at",
                   "response_due_at", "created_at", "first_response_at", "resolved_at", "outcome",
                   "resolved_at_first_contact", "satisfaction"),
    "complaint_contacts": ("complaint_id", "kind", "channel", "note", "contacted_at"),
    "complaint_reopenings": ("complaint_id", "reason", "reopened_at", "resolved_at", "outcome"),
}
# A refused sign's code, by weight: mostly before the inspection or the recipient check (ORDER_REFUSALS).
SIGN_REFUSALS = {"inspection_required": 40, "recipient_unverified": 25, "gift_not_disclosed": 15,
                 "payment_required": 15, "courier_cannot_sign": 5}


def _place(rng: random.Random) -> tuple[float | None, bool]:
    """(distance_m, not_at_address) of a signature: 0.5% at a stop without coordinates, 1% too far."""
    draw = rng.random()
    if draw < 0.005:
        return None, False
    if draw < 0.015:
        return round(rng.uniform(300, 2000), 1), True
    return round(rng.uniform(5, 150), 1), False


def _refused(task_id: str, courier: str, kind: str, code: str, at: datetime) -> tuple:
    """A refused handover step."""
    return (task_id, courier, kind, "rejected", code, at, at, False, "{}")


def _pick(rng: random.Random, weights: dict):
    """One key of weights, drawn by weight."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def generate(n_tasks: int, *, first_day: date, days: int = 30, seed: int = 12) -> dict[str, list[tuple]]:
    """Rows per table for n_tasks tasks spread over the days, couriers sized to ~120 tasks a day each."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    n_couriers = max(10, n_tasks // (days * TASKS_PER_COURIER_DAY))
    couriers = [f"cb{i:06d}" for i in range(n_couriers)]
    rows: dict[str, list[tuple]] = {table: [] for table in COLUMNS}
    rows["couriers"] = [(cid, f"Courier {i}", f"138{i:08d}", f"B{i:06d}", True, f"D{i % DEPOTS:02d}", "A", 1, now,
                         now) for i, cid in enumerate(couriers)]
    for i in range(n_tasks):
        task_id = f"tb{i:09d}"
        day = first_day + timedelta(days=i % days)
        hour = rng.randrange(9, 20)
        start = datetime.combine(day, time(hour), SHANGHAI).astimezone(timezone.utc)
        end = start + timedelta(hours=2)
        courier = couriers[rng.randrange(n_couriers)]
        kind = "pickup" if rng.random() < 0.15 else "delivery"
        appointment = _pick(rng, {"kept": 88, "late": 7, "missed": 3, "confirmed": 2})
        if kind == "pickup":
            done = "open" if rng.random() < 0.03 else "collected"
        else:
            done = _pick(rng, {"delivered": 95, "refused": 3, "open": 2})
        assigned = start - timedelta(hours=rng.uniform(1, 6))
        completed = assigned + timedelta(seconds=rng.lognormvariate(9.2, 0.45))  # ~3 h, most 1.5 to 6 h
        status = "assigned" if done == "open" else done
        if kind != "pickup" and done == "open" and rng.random() < 0.1:  # left at a locker without consent
            rows["handover_steps"].append(_refused(task_id, courier, "deliver_alternate", "authorization_required",
                                                   start))
        rows["tasks"].append((task_id, f"WB{i:010d}", kind, status, "Recipient", "13900000000", "1 Renmin Rd",
                              0, start, end, day, courier, 1, 1, False, False,
                              None if done == "open" else completed, assigned, now))
        rows["appointments"].append((task_id, appointment, start, end,
                                     appointment in ("late", "missed") and rng.random() < 0.4, False, False, now))
        rows["task_assignments"].append((task_id, courier, assigned))
        if done == "open":
            continue
        lines = rng.choice((1, 1, 1, 2, 2, 3))
        damaged = sum(rng.random() < 0.005 for _ in range(lines))
        short = sum(rng.random() < 0.002 for _ in range(lines))
        if kind == "pickup":
            distance, far = _place(rng)
            handover = (task_id, False, None, False, False, True, False, None, far, distance, "collected",
                        completed, courier, None, None, None, now)
        else:
            alternate = done == "delivered" and rng.random() < 0.08
            distance, far = (None, False) if alternate or done != "delivered" else _place(rng)
            handover = (task_id, not alternate and rng.random() < 0.97, None if alternate else
                        ("accepted" if done == "delivered" else "refused"), short > 0, damaged > 0,
                        done == "delivered" and not alternate, False, "locker" if alternate else None,
                        far, distance, done, completed, courier, None if alternate else lines,
                        None if alternate else damaged, None if alternate else short, now)
            if done == "delivered" and not alternate and rng.random() < 0.02:  # a step refused for order
                rows["handover_steps"].append(_refused(task_id, courier, "sign", _pick(rng, SIGN_REFUSALS),
                                                       completed - timedelta(minutes=2)))
            elif alternate and rng.random() < 0.05:  # dropped before the consent came
                rows["handover_steps"].append(_refused(task_id, courier, "deliver_alternate",
                                                       "authorization_required", completed - timedelta(minutes=30)))
            if rng.random() < 0.003:  # a wrong PIN at the door: no refusal the figures read
                rows["handover_steps"].append(_refused(task_id, courier, "verify_recipient", "pin_mismatch",
                                                       completed - timedelta(minutes=5)))
        rows["handovers"].append(handover)
        if done in ("delivered", "collected") and rng.random() < 0.25:
            rows["ratings"].append((task_id, _pick(rng, {5: 60, 4: 25, 3: 8, 2: 4, 1: 3}),
                                    completed + timedelta(minutes=rng.randrange(5, 600))))
        if rng.random() < 0.003:
            received = completed + timedelta(hours=rng.uniform(1, 48))
            responded = received + timedelta(hours=rng.uniform(0.5, 30))
            resolved = responded + timedelta(hours=rng.uniform(1, 72)) if rng.random() < 0.85 else None
            rows["complaints"].append((courier, task_id, "phone", "late", "late", "resolved" if resolved else
                                       "responded", received, received + timedelta(hours=24), received, responded,
                                       resolved, "upheld" if resolved else None,
                                       (rng.random() < 0.6) if resolved else None,
                                       _pick(rng, {"satisfied": 6, "neutral": 2, "dissatisfied": 2})
                                       if resolved else None))
            complaint_id = len(rows["complaints"])  # ids 1, 2, ... in a fresh database, in insertion order
            rows["complaint_contacts"].append((complaint_id, "first_response", None, "sorry", responded))
            if resolved and rng.random() < 0.3:  # a second contact before the resolution
                rows["complaint_contacts"].append((complaint_id, "contact", "phone", "called",
                                                   responded + (resolved - responded) / 2))
            if resolved and rng.random() < 0.1:  # resolved once before, reopened
                first = responded + (resolved - responded) / 3
                rows["complaint_reopenings"].append((complaint_id, "not solved", first + (resolved - first) / 2,
                                                     first, "upheld"))
    return rows


def load(engine, rows: dict[str, list[tuple]]) -> None:
    """Write the rows in bulk: COPY on PostgreSQL, executemany on SQLite (one transaction)."""
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with raw.driver_connection.cursor() as cursor:
                for table, columns in COLUMNS.items():
                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in rows[table]:
                            copy.write_row(row)
            raw.driver_connection.commit()
            with raw.driver_connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            raw.driver_connection.commit()
        finally:
            raw.close()
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()
        cursor.execute("BEGIN")  # the app's connections autocommit (server/database.py): one transaction here
        for table, columns in COLUMNS.items():
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                               (tuple(_sqlite(value) for value in row) for row in rows[table]))
        raw.driver_connection.commit()
        cursor.execute("ANALYZE")
        raw.driver_connection.commit()
    finally:
        raw.close()


def _sqlite(value):
    """A value as SQLAlchemy stores it on SQLite: times as naive UTC text, dates as ISO text."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value

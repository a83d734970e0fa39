"""Locust users for scripts/loadtest.py: handhelds syncing their offline queues, dispatchers at the board.

Not run on its own: tools/loadtest.py provisions a database, starts gunicorn,
writes the plan (FIELDOPS_LOAD_PLAN, a JSON file) and runs locust on this file.
Each handheld takes one provisioned device and pushes the op stream of
tools/loadgen.py (the realistic courier day, every op of which applies), the
signatures and photos uploaded first, then pulls from its cursor. Every op that
is not applied fails its push; a busy stop is resent after its retry_after, as
the reference client does, and counted. What locust cannot count (ops applied,
busy stops, changes pulled) is written beside the plan when the run ends.
"""
import bisect
import itertools
import json
import os
import random
import time
from datetime import datetime, timedelta, timezone

import gevent
import orjson
from locust import FastHttpUser, between, events, task

from tools.loadgen import PROTOCOL_HEADERS, Provisioned, day_minutes, files_for, make_ops

_PLAN_PATH = os.environ["FIELDOPS_LOAD_PLAN"]  # set by tools/loadtest.py; this file is not run on its own
with open(_PLAN_PATH) as _plan:
    PLAN = json.load(_plan)
API = "/api/v1"
COUNTS = {"ops_sent": 0, "ops_pushed": 0, "ops_applied": 0, "busy_stops": 0, "changes_pulled": 0, "syncs": 0,
          "devices_out_of_ops": 0, "tasks_created": 0}
_next_device = itertools.count()
# Real pace: the minute of each op of a courier's working day (two laps, so a clock past the day's end
# wraps into the next), and the day's length in minutes.
REAL_PACE = PLAN.get("pace") == "real"
_DAY, _DAY_LENGTH = day_minutes() if REAL_PACE else ([], 0.0)
_TWO_LAPS = _DAY + [m + _DAY_LENGTH for m in _DAY]


def _process_index(environment) -> tuple[int, int]:
    """(this process's index, how many processes share the users): several with locust --processes."""
    runner = environment.runner
    return getattr(runner, "worker_index", 0), max(1, PLAN.get("processes", 1))


def _device(spec: dict) -> Provisioned:
    """A provisioned device back from the plan's JSON."""
    return Provisioned(**{**spec, "start": datetime.fromisoformat(spec["start"]),
                          "templates": {k: tuple(v) for k, v in spec["templates"].items()}})


def _queue_length(rng: random.Random) -> int:
    """Ops queued since the last sync: mostly a few stops' worth, now and then a dead zone's backlog."""
    return rng.randint(100, 250) if rng.random() < 0.05 else rng.randint(5, 40)


class Handheld(FastHttpUser):
    """A courier's handheld: sync (uploads, push, pull), then work offline for a while."""

    wait_time = between(*PLAN["sync_wait"])

    def on_start(self):
        """Take the next provisioned device; pull the whole scope as after enrollment."""
        worker, processes = _process_index(self.environment)
        index = next(_next_device) * processes + worker  # the processes of --processes take turns
        index %= len(PLAN["devices"])
        self.device = _device(PLAN["devices"][index])
        self.rng = random.Random(index)
        self.seq, self.cursor = 1, None
        self.budget = PLAN["ops_each"][index] if REAL_PACE else PLAN.get("ops_per_device", 0)
        self.headers = {**PROTOCOL_HEADERS, "Authorization": f"Bearer {self.device.token}"}
        if REAL_PACE:
            # Its point of the working day and the backlog it comes back with, as the plan drew them
            # (tools/loadtest.real_pace_days, which provisioned its tasks for them).
            self.day_start, self.started, self.accrued = PLAN["day_points"][index], time.monotonic(), 0
            self.backlog = PLAN["backlogs"][index]
        self.pull()

    def _real_pace_queue(self) -> int:
        """Ops made since the last sync at a courier's real rate: the stream's own minutes from the day's point."""
        now = self.day_start + (time.monotonic() - self.started) / 60
        total = bisect.bisect_right(_TWO_LAPS, now) - bisect.bisect_right(_TWO_LAPS, self.day_start)
        queued, self.accrued = total - self.accrued + self.backlog, total
        self.backlog = 0
        return queued

    @task
    def sync(self):
        """Upload what the queued ops name, push them, pull what changed."""
        if REAL_PACE and self.rng.random() < 1 / 60:
            # About once an hour a dead zone (a basement, a lift): no sync for 3-10 minutes, the ops pile up.
            self.wait_seconds(self.rng.uniform(180, 600))
        queued = self._real_pace_queue() if REAL_PACE else _queue_length(self.rng)
        count = min(queued, self.budget - self.seq + 1)
        if count > 0:
            self.upload(files_for(self.device, self.seq, count))
            self.push(make_ops(self.device, self.seq, count))
        elif queued > 0 and self.budget:  # some ops made, none left to send
            COUNTS["devices_out_of_ops"] += 1
            self.budget = 0  # counted once; from now on the device only pulls
        self.pull()
        COUNTS["syncs"] += 1

    def upload(self, files: dict[str, bytes]) -> None:
        """PUT each signature and photo, as the handheld does before the ops that name them."""
        headers = {**self.headers, "Content-Type": "application/octet-stream"}
        for sha, data in files.items():
            self.client.put(f"{API}/attachments/{sha}", data=data, headers=headers, name="PUT /attachments/{sha256}")

    def push(self, ops: list[dict]) -> None:
        """Push the batch; resend from where a busy stop says, after its retry_after."""
        while ops:
            body = orjson.dumps({"device_id": self.device.device_id, "ops": ops,
                                 "device_now": datetime.now(timezone.utc).isoformat()})
            COUNTS["ops_sent"] += len(ops)  # the server may apply them even if the answer never comes back
            with self.client.post(f"{API}/sync/push", data=body, headers=self.headers, name="POST /sync/push",
                                  catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code} {response.text[:200]}")
                    return
                answer = orjson.loads(response.content)
                refused = [r for r in answer["results"] if r["status"] != "applied"]
                if refused:
                    response.failure(f"op {refused[0]['seq']} {refused[0]['status']}: "
                                     f"{refused[0].get('code')} {str(refused[0].get('detail', ''))[:120]}")
                COUNTS["ops_pushed"] += len(answer["results"])
                COUNTS["ops_applied"] += len(answer["results"]) - len(refused)
                if answer.get("stop_code") == "busy":
                    COUNTS["busy_stops"] += 1
                elif "stopped_at" in answer or "expected_seq" in answer:
                    response.failure(f"push stopped: {answer.get('stop_code')} {answer.get('stop_detail')}")
                    return
            self.seq = answer["last_seq"] + 1
            ops = [op for op in ops if op["seq"] >= self.seq]
            if ops:
                self.wait_seconds(answer.get("retry_after", 1) * (0.5 + self.rng.random()))

    def wait_seconds(self, seconds: float) -> None:
        """Sleep without holding up the other users (gevent)."""
        gevent.sleep(seconds)

    def pull(self) -> None:
        """Pull pages from the cursor until has_more is false."""
        while True:
            query = f"?limit=500&cursor={self.cursor}" if self.cursor else "?limit=500"
            with self.client.get(f"{API}/sync/pull{query}", headers=self.headers, catch_response=True,
                                 name="GET /sync/pull" if self.cursor else "GET /sync/pull (full)") as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code} {response.text[:200]}")
                    return
                page = orjson.loads(response.content)
            if page.get("reset"):
                self.cursor = None
                continue
            COUNTS["changes_pulled"] += len(page["changes"])
            self.cursor = page["cursor"]
            if not page["has_more"]:
                return


class Dispatcher(FastHttpUser):
    """Someone in the dispatch office: reads the board, the task book and the op log, adds a task now and then."""

    wait_time = between(*PLAN["dispatch_wait"])
    fixed_count = PLAN["dispatchers"]
    # locust reads a fixed_count of 0 as "not fixed" and gives the class a weight's share of the users
    # (handhelds' places): with no dispatchers asked for, the class is not a user at all.
    abstract = not PLAN["dispatchers"]

    def on_start(self):
        """The dispatcher's token and a random source of its own."""
        self.headers = {"Authorization": f"Bearer {PLAN['dispatcher_token']}",
                        "Content-Type": "application/json"}
        self.rng = random.Random(f"dispatch-{id(self)}")
        self.today = datetime.now(timezone(timedelta(hours=8))).date()

    def get(self, path: str, name: str) -> dict | None:
        """A GET that must answer 200; returns its JSON."""
        with self.client.get(API + path, headers=self.headers, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return None
            return orjson.loads(response.content)

    @task(4)
    def task_book(self):
        """A courier's tasks, then one of them in full."""
        courier = self.rng.choice(PLAN["courier_ids"])
        page = self.get(f"/dispatch/tasks?courier_id={courier}&limit=50", "GET /dispatch/tasks")
        if page and page["items"]:
            task_id = self.rng.choice(page["items"])["id"]
            self.get(f"/dispatch/tasks/{task_id}", "GET /dispatch/tasks/{id}")

    @task(2)
    def board(self):
        """Today's appointments."""
        self.get(f"/dispatch/appointments?date={self.today.isoformat()}&limit=100", "GET /dispatch/appointments")

    @task(2)
    def op_log(self):
        """The newest ops."""
        self.get("/dispatch/ops?limit=100", "GET /dispatch/ops")

    @task(1)
    def conflicts_and_exceptions(self):
        """What needs a human."""
        self.get("/dispatch/conflicts?limit=50", "GET /dispatch/conflicts")
        self.get(f"/dispatch/exceptions?date={self.today.isoformat()}&limit=100", "GET /dispatch/exceptions")

    @task(1)
    def new_task(self):
        """A task called in by phone, given to a courier (it reaches the handheld on its next pull)."""
        window = datetime.now(timezone.utc) + timedelta(hours=2)
        n = self.rng.randrange(10**9)
        spec = {"waybill_no": f"LD{n:09d}{self.rng.randrange(10**4):04d}", "kind": "delivery",
                "recipient": {"name": "Walk-in", "phone": f"137{n % 10**8:08d}", "address": f"{n % 999} Load Rd",
                              "lat": 31.2, "lon": 121.4},
                "parcels": [{"parcel_no": f"L{n}", "description": "box", "count": 1}], "cod_amount": 0,
                "fees": [{"code": "delivery", "amount": 1200}],
                "window": {"start": window.isoformat(), "end": (window + timedelta(hours=2)).isoformat()}}
        with self.client.post(f"{API}/dispatch/tasks", data=orjson.dumps(spec), headers=self.headers,
                              name="POST /dispatch/tasks", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return
            task_id = orjson.loads(response.content)["id"]
        courier = self.rng.choice(PLAN["courier_ids"])
        with self.client.post(f"{API}/dispatch/tasks/{task_id}/assign", data=orjson.dumps({"courier_id": courier}),
                              headers=self.headers, name="POST /dispatch/tasks/{id}/assign",
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return
        COUNTS["tasks_created"] += 1


@events.quitting.add_listener
def _write_counts(environment, **_kwargs):
    """What locust does not count, beside the plan, for tools/loadtest.py to read."""
    # One file per process (locust --processes runs several); tools/loadtest.py adds them up.
    with open(os.path.join(os.path.dirname(_PLAN_PATH), f"counts-{os.getpid()}.json"), "w") as out:
        json.dump(COUNTS, out)


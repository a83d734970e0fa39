"""The fleet simulator: N handhelds work a day against a running server, a dispatcher meddles.

Devices go offline for random stretches, queue ops, lose answers and retry;
the dispatcher reassigns and cancels. At the end every device comes online
and syncs; the run checks that each converged with the server and that every
op it queued was applied exactly once (the op log holds seqs 1..n once each).
"""
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sync.client import Handheld, HttpTransport
from tools.loadgen import call


class FlakyTransport:
    """Wraps a transport: offline, every call fails; online, a request may be dropped before it
    reaches the server, or its answer lost after the server acted."""

    def __init__(self, inner, rng: random.Random, drop: float = 0.0, lose: float = 0.0):
        """drop/lose are probabilities per request."""
        self.inner, self.rng, self.drop, self.lose = inner, rng, drop, lose
        self.offline = False
        self.lost_answers = 0

    def request(self, method, path, **kwargs):
        """Maybe fail before, maybe after."""
        if self.offline or (self.drop and self.rng.random() < self.drop):
            raise ConnectionError("offline: the request never reached the server")
        reply = self.inner.request(method, path, **kwargs)
        if self.rng.random() < self.lose:
            self.lost_answers += 1
            raise ConnectionError("answer lost (the server did act)")
        return reply


def _api(base_url: str, token: str, method: str, path: str, body=None, query: str = ""):
    """A dispatch API call; returns the JSON answer or raises on an error status."""
    status, answer = call(base_url, method, path, token, body, query)
    if status >= 400:
        raise RuntimeError(f"{method} {path}: {status} {str(answer)[:300]}")
    return answer


@dataclass
class SimDevice:
    """One simulated courier and handheld."""

    courier_id: str
    code: str
    tasks: list[str]
    store: str
    queued: int = 0
    offline_stretches: int = 0
    sync_errors: int = 0
    handheld: Handheld | None = None
    flaky: FlakyTransport | None = None
    stats: dict = field(default_factory=dict)


def provision(base_url: str, token: str, devices: int, tasks_per_device: int, workdir: str,
              run_tag: str) -> list[SimDevice]:
    """Couriers, a day of tasks each (imported, then assigned), enrollment codes; all via the API."""
    out = []
    day = datetime.now(timezone(timedelta(hours=8))).replace(hour=9, minute=0, second=0, microsecond=0)
    for n in range(devices):
        courier = _api(base_url, token, "POST", "/dispatch/couriers",
                       {"name": f"Sim {n}", "phone": f"1370000{n:04d}", "employee_no": f"S{run_tag}{n:04d}"})
        specs = [{"waybill_no": f"SIM{run_tag}{n:04d}{k:03d}", "kind": "delivery",
                  "recipient": {"name": f"R{k}", "phone": f"136{n:04d}{k:04d}", "address": f"{k} Sim St",
                                "lat": 31.2, "lon": 121.4},
                  "parcels": [{"parcel_no": f"P{k}", "count": 1}], "cod_amount": 0,
                  "fees": [{"code": "delivery", "amount": 1000}],
                  "window": {"start": (day + timedelta(minutes=30 * k)).isoformat(),
                             "end": (day + timedelta(minutes=30 * k + 120)).isoformat()}}
                 for k in range(tasks_per_device)]
        ids = _api(base_url, token, "POST", "/dispatch/tasks/import", specs)["ids"]
        for task_id in ids:
            _api(base_url, token, "POST", f"/dispatch/tasks/{task_id}/assign", {"courier_id": courier["id"]})
        code = _api(base_url, token, "POST", f"/dispatch/couriers/{courier['id']}/enrollments")["code"]
        out.append(SimDevice(courier["id"], code, ids, f"{workdir}/device-{n}.sqlite3"))
    return out


def _progress(step: int, steps: int, counters: dict) -> None:
    """One line showing the day passing."""
    width = 30
    done = int(width * step / max(steps, 1))
    clock = (datetime(2000, 1, 1, 8, 0) + timedelta(minutes=step * 600 / max(steps, 1))).strftime("%H:%M")
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {clock}  ops {counters['ops']:6d}  "
                     f"syncs {counters['syncs']:5d}  offline {counters['offline']:3d}  "
                     f"reassigned {counters['reassigned']:3d}  cancelled {counters['cancelled']:3d}")
    sys.stderr.flush()


def run(base_url: str, token: str, *, devices: int = 50, tasks_per_device: int = 20, steps: int = 120,
        step_seconds: float = 0.05, lose: float = 0.15, seed: int = 1, workdir: str | None = None) -> dict:
    """Simulate the day; returns a summary with 'ok' True when every check passed."""
    workdir = workdir or tempfile.mkdtemp(prefix="fleet-")
    rng = random.Random(seed)
    started = time.monotonic()
    fleet = provision(base_url, token, devices, tasks_per_device, workdir, f"{seed}{rng.randint(0, 99999):05d}")
    counters = {"ops": 0, "syncs": 0, "offline": 0, "reassigned": 0, "cancelled": 0}
    lock = threading.Lock()
    clock = {"step": 0}
    errors: list[str] = []

    progress = [0] * len(fleet)  # steps each device has finished

    def device_day(index: int, sim: SimDevice):
        try:
            _work_the_day(index, sim)
        except Exception as exc:  # reported as a failure of the run
            errors.append(f"device {index}: {type(exc).__name__}: {exc}")
        finally:
            progress[index] = steps

    def _work_the_day(index: int, sim: SimDevice):
        drng = random.Random(seed * 1000 + index)
        sim.flaky = FlakyTransport(HttpTransport(base_url, timeout=60), drng, lose=lose)
        sim.handheld = Handheld(sim.store, HttpTransport(base_url, timeout=60),
                                batch_size=drng.choice([50, 200, 500]),
                                sleep=lambda s: time.sleep(min(s, 0.2)), rng=drng, max_attempts=4)
        # Enrollment happens at the depot, on a good network: a lost enrollment
        # answer would burn the single-use code (a new one is then needed).
        sim.handheld.enroll(sim.code, f"sim-{index}")
        sim.handheld.transport = sim.flaky
        offline_until = -1
        for step in range(steps):
            while clock["step"] < step:
                time.sleep(step_seconds / 4)
            if step >= offline_until and drng.random() < 0.04:
                offline_until = step + drng.randint(3, max(4, steps // 6))
                sim.offline_stretches += 1
                with lock:
                    counters["offline"] += 1
            sim.flaky.offline = step < offline_until
            known = [key[1] for key in sim.handheld.entities() if key[0] == "task"] or sim.tasks
            if drng.random() < 0.5:
                task_id = drng.choice(known)
                if drng.random() < 0.5:
                    sim.handheld.queue("stop.arrive", task_id, {"lat": 31.2 + drng.random() / 100,
                                                               "lon": 121.4})
                else:
                    sim.handheld.queue("task.note", task_id, {"text": f"step {step}"})
                sim.queued += 1
                with lock:
                    counters["ops"] += 1
            if not sim.flaky.offline and drng.random() < 0.3:
                try:
                    sim.handheld.sync()
                    with lock:
                        counters["syncs"] += 1
                except ConnectionError:
                    sim.sync_errors += 1
            progress[index] = step + 1
        sim.handheld.close()

    def dispatcher():
        drng = random.Random(seed + 7)
        for step in range(steps):
            while clock["step"] < step:
                time.sleep(step_seconds / 4)
            if drng.random() < 0.15:
                sim = drng.choice(fleet)
                task_id = drng.choice(sim.tasks)
                try:
                    if drng.random() < 0.7:
                        other = drng.choice(fleet)
                        _api(base_url, token, "POST", f"/dispatch/tasks/{task_id}/assign",
                             {"courier_id": other.courier_id})
                        key = "reassigned"
                    else:
                        _api(base_url, token, "POST", f"/dispatch/tasks/{task_id}/cancel", {"reason": "sim"})
                        key = "cancelled"
                    with lock:
                        counters[key] += 1
                except RuntimeError as exc:
                    if "task_finished" not in str(exc):  # cancelling twice is refused, as it should be
                        errors.append(str(exc))

    threads = [threading.Thread(target=device_day, args=(i, s), daemon=True) for i, s in enumerate(fleet)]
    threads.append(threading.Thread(target=dispatcher, daemon=True))
    for t in threads:
        t.start()
    for step in range(steps + 1):
        clock["step"] = step
        _progress(step, steps, counters)
        time.sleep(step_seconds)
        while min(progress) < step:  # the day's clock waits for the slowest handheld
            time.sleep(step_seconds / 4)
    for t in threads:
        t.join()
    sys.stderr.write("\n")
    return _finish(base_url, token, fleet, counters, errors, time.monotonic() - started)


def _finish(base_url, token, fleet, counters, errors, seconds) -> dict:
    """Everyone online, a clean sync each, then the checks."""
    failures = list(errors)
    results = {"applied": 0, "rejected": 0, "conflict": 0}
    lost = 0
    for sim in fleet:
        handheld = Handheld(sim.store, HttpTransport(base_url, timeout=60), sleep=time.sleep)
        summary = handheld.sync()
        if summary["pending"]:
            failures.append(f"{sim.courier_id}: {summary['pending']} ops still pending")
        if handheld.checksum() != summary["scope"]:
            failures.append(f"{sim.courier_id}: local store differs from the server's scope")
        for result in handheld.results().values():
            if result:
                results[result["status"]] += 1
        seqs, cursor = [], ""
        while True:
            page = _api(base_url, token, "GET", "/dispatch/ops",
                        query=f"?device_id={handheld.device_id}&limit=500{cursor}")
            seqs += [op["seq"] for op in page["items"] if op["in_sequence"]]
            if not page["next_cursor"]:
                break
            cursor = f"&cursor={page['next_cursor']}"
        if sorted(seqs) != list(range(1, sim.queued + 1)):
            failures.append(f"{sim.courier_id}: op log seqs are not exactly 1..{sim.queued}")
        lost += sim.flaky.lost_answers
        handheld.close()
    return {"ok": not failures, "failures": failures[:20], "devices": len(fleet), "ops_queued": counters["ops"],
            "results": results, "answers_lost": lost, "offline_stretches": counters["offline"],
            "syncs": counters["syncs"], "reassigned": counters["reassigned"], "cancelled": counters["cancelled"],
            "seconds": round(seconds, 1)}

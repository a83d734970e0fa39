"""Two app hosts on one PostgreSQL and one object store (docs/deployment.md), each with its gunicorn and
its `fieldops scheduler`: a handheld pushes through one and pulls through the other, a photo uploaded
through one is served by the other, and when one host is SIGKILLed mid-push the other carries on,
its scheduler taking the lease."""
import hashlib
import os
import random
import signal
import subprocess
import sys
import urllib.request
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from server.clock import utcnow
from server.extensions import db
from server.models import Attachment, JobRun, OpLog, TaskEvent
from server.process import ServerProcess
from sync.client import Handheld, HttpTransport
from tests.sync.test_crash import push_until_killed
from tests.test_scheduler import holder_pid, wait_for

OPS = 40 if os.environ.get("FIELDOPS_TEST_TIER") == "short" else 200
LEASE_SECONDS = 4
PHOTO = b"\xff\xd8\xff\xe0" + b"a parcel at the gate " * 200
SECOND_PHOTO = b"\xff\xd8\xff\xe0" + b"a parcel in the locker " * 200


class Host:
    """One app host: gunicorn (2 workers) and a scheduler, with the shared database and bucket."""

    def __init__(self, name: str, database_url: str, env: dict, tmp_path):
        """Configure both processes; start() runs them."""
        self.name, self.env, self.tmp_path, self.database_url = name, env, tmp_path, database_url
        self.web = ServerProcess(database_url, workers=2, env=env, log_path=str(tmp_path / f"{name}-web.log"))
        self.scheduler: subprocess.Popen | None = None

    def start(self) -> "Host":
        """Start the scheduler, then gunicorn (waits until /readyz, which checks the bucket, says ready)."""
        env = dict(os.environ, **self.env, FIELDOPS_DATABASE_URL=self.database_url,
                   FIELDOPS_INSTANCE_DIR=str(self.tmp_path / self.name),
                   FIELDOPS_SCHEDULER_LEASE_SECONDS=str(LEASE_SECONDS),
                   FIELDOPS_JOB_SCHEDULES="attachments-gc=every 1 s")
        with open(self.tmp_path / f"{self.name}-scheduler.log", "ab") as log:
            self.scheduler = subprocess.Popen(
                [sys.executable, "-c", "from server.cli import main; main()", "scheduler"], env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.web.start()
        return self

    def kill(self) -> None:
        """The host dies: SIGKILL to gunicorn's process group and to the scheduler."""
        self.web.kill()
        if self.scheduler and self.scheduler.poll() is None:
            os.killpg(self.scheduler.pid, signal.SIGKILL)
            self.scheduler.wait(10)


def _collector_of_an_orphan() -> int | None:
    """The pid of the scheduler whose attachments-gc run deleted something and finished ok."""
    for pid, counts in db.session.execute(select(JobRun.pid, JobRun.counts).where(
            JobRun.job == "attachments-gc", JobRun.outcome == "ok")):
        if (counts or {}).get("deleted"):
            return pid
    return None


def _staff_photo(base_url: str, token: str, sha: str) -> bytes:
    """What a dispatcher's browser gets for the photo from this host (following the signed URL)."""
    request = urllib.request.Request(f"{base_url}/dispatch/attachments/{sha}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # the 302 is followed to the bucket
        assert resp.url != request.full_url and "X-Amz-Signature=" in resp.url
        return resp.read()


def test_two_hosts_one_database_one_bucket_one_leader(app, client, make, courier, engine_name, database_url,
                                                      seaweed, tmp_path):
    """Push through A, pull through B; a photo through A served by B; A killed mid-push, B finishes it all."""
    if engine_name != "postgresql":
        pytest.skip("two app hosts share one PostgreSQL; SQLite is one host's own database")
    task = make.task(courier=courier)
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    dispatcher = make.token("dispatcher")
    env = seaweed.env(f"hosts-{uuid.uuid4().hex[:8]}")
    db.session.remove()
    hosts = [Host("a", database_url, env, tmp_path), Host("b", database_url, env, tmp_path)]
    store = str(tmp_path / "handheld.sqlite3")
    try:
        a, b = (host.start() for host in hosts)
        leader = wait_for(holder_pid, 30)
        assert leader in (a.scheduler.pid, b.scheduler.pid)

        # Pushed through A, with a photo uploaded through A.
        via_a = Handheld(store, HttpTransport(a.web.base_url, timeout=10), sleep=lambda s: None)
        via_a.enroll(code, "PDA")
        photo = via_a.add_blob(PHOTO)
        via_a.queue("task.note", task["id"], {"text": "left at the gate", "photos": [photo]}, blobs=[photo])
        assert via_a.push() == 1
        via_a.close()
        # Pulled through B: the note A stored is in the task B hands out; the photo A took comes from B.
        via_b = Handheld(store, HttpTransport(b.web.base_url, timeout=10), sleep=lambda s: None)
        via_b.pull()
        notes = via_b.task(task["id"])["notes"]
        assert [(n["text"], n["photos"]) for n in notes] == [("left at the gate", [photo])]
        assert _staff_photo(b.web.base_url, dispatcher, photo) == PHOTO
        via_b.close()

        # A dies mid-push (gunicorn and scheduler); the handheld turns to B, which takes everything once.
        via_a = Handheld(store, HttpTransport(a.web.base_url, timeout=10), batch_size=2, max_attempts=2,
                         sleep=lambda s: None, rng=random.Random(7))
        for i in range(OPS):
            via_a.queue("task.note", task["id"], {"text": f"n{i}"})
        via_a.close()
        failure = push_until_killed(store, a.web.base_url, batch_size=2, seed=7, done_at=1 + OPS // 3, kill=a.kill)
        assert failure, "the kill should have interrupted the push through A"

        via_b = Handheld(store, HttpTransport(b.web.base_url, timeout=10), sleep=lambda s: None)
        second = via_b.add_blob(SECOND_PHOTO)
        via_b.queue("task.note", task["id"], {"text": "in the locker", "photos": [second]}, blobs=[second])
        via_b.sync()
        assert via_b.pending() == 0
        assert via_b.task(task["id"])["notes"][0]["text"] == "in the locker"
        via_b.close()
        assert _staff_photo(b.web.base_url, dispatcher, second) == SECOND_PHOTO
        assert _staff_photo(b.web.base_url, dispatcher, photo) == PHOTO

        # B's scheduler leads now (it may have all along), and its collector works on the shared bucket.
        wait_for(lambda: holder_pid() == b.scheduler.pid, LEASE_SECONDS + LEASE_SECONDS / 3 + 10)
        orphan = hashlib.sha256(b"\x89PNG\r\n\x1a\nnever named").hexdigest()
        put = urllib.request.Request(f"{b.web.base_url}/attachments/{orphan}", method="PUT",
                                     data=b"\x89PNG\r\n\x1a\nnever named",
                                     headers={"Authorization": f"Bearer {via_token(store)}",
                                              "Fieldops-Protocol": "1"})
        assert urllib.request.urlopen(put, timeout=10).status == 201
        db.session.rollback()
        db.session.execute(update(Attachment).where(Attachment.sha256 == orphan)
                           .values(created_at=utcnow() - timedelta(hours=49)))
        db.session.commit()
        # The run that deletes it commits the deletion before it records its outcome: wait for the record.
        assert wait_for(_collector_of_an_orphan, 30) == b.scheduler.pid
        assert db.session.get(Attachment, orphan) is None
        assert not db.session.scalar(select(func.count()).select_from(JobRun).where(
            JobRun.job == "attachments-gc", JobRun.outcome == "failed"))
        bucket = seaweed.client()
        keys = {o["Key"] for o in bucket.list_objects_v2(Bucket="fieldops-test", Prefix=env_prefix(env))
                .get("Contents", [])}
        assert keys == {f"{env_prefix(env)}{sha[:2]}/{sha}" for sha in (photo, second)}
    finally:
        for host in hosts:
            host.kill()
    db.session.rollback()
    seqs = db.session.scalars(select(OpLog.seq).where(OpLog.in_sequence.is_(True)).order_by(OpLog.seq)).all()
    assert seqs == list(range(1, OPS + 3))  # the first note, OPS notes, the last note: each once
    texts = db.session.scalars(select(TaskEvent.text).where(TaskEvent.kind == "note")).all()
    assert sorted(texts) == sorted(["left at the gate", "in the locker"] + [f"n{i}" for i in range(OPS)])


def via_token(store: str) -> str:
    """The handheld's bearer token, from its local store."""
    import sqlite3
    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()[0]


def env_prefix(env: dict) -> str:
    """The key prefix the hosts' FIELDOPS_ATTACHMENTS_URL names."""
    return env["FIELDOPS_ATTACHMENTS_URL"].split("/", 3)[3] + "/"

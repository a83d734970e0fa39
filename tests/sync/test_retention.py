"""Retention: recipients' personal data leaves tasks finished long ago; evidence, receipts, ledger and KPI facts stay."""
from datetime import timedelta

from sqlalchemy import func, select, update

from server import jobs
from server.auth import customer
from server.clock import utcnow
from server.extensions import db
from server.models import (AuditEntry, Change, Handover, HandoverStep, LedgerEntry, ManifestQuarantine, OpLog, Receipt,
                           SyncDoc, Task, TaskEvent)
from server.services.tasks import record_event
from tests.sync.test_handover import door_ops, upload

PHONE = "13912345678"


def deliver(device, make, courier, *, name: str) -> dict:
    """A COD delivery signed by `name`, with a delivery instruction the customer left; the task as created."""
    task = make.task(courier=courier, recipient={"name": name, "phone": PHONE, "address": "18 Nanjing Rd, flat 302",
                                                 "lat": 31.23, "lon": 121.47})
    stored = db.session.get(Task, task["id"])
    record_event(stored, "note", customer("l-demo"), text=f"call {PHONE} at the gate")
    db.session.commit()
    signature = upload(device)
    results = device.push(door_ops(device, task, signature, name))["results"]
    assert [r["status"] for r in results] == ["applied"] * 5
    return task


def finished_ago(task_id: str, days: float) -> None:
    """Move a task's finish back in time."""
    db.session.execute(update(Task).where(Task.id == task_id).values(finished_at=utcnow() - timedelta(days=days)))
    db.session.commit()


def kept_facts(task_id: str) -> tuple:
    """What retention must not touch: status, times, handover facts, the receipt, the ledger."""
    db.session.expire_all()
    task = db.session.get(Task, task_id)
    handover = db.session.scalars(select(Handover).where(Handover.task_id == task_id)).one()
    receipt = db.session.scalars(select(Receipt).where(Receipt.task_id == task_id)).one()
    ledger = [(e.kind, e.amount, e.method) for e in db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.task_id == task_id))]
    return (task.status, task.finished_at, task.window_start, task.courier_id, task.cod_amount,
            [(p.parcel_no, p.count) for p in task.parcels], handover.outcome, handover.signed,
            handover.signature_sha256, handover.inspection, handover.paid_amount, handover.not_at_address,
            handover.distance_m, receipt.number, receipt.payload, ledger,
            len(list(db.session.scalars(select(HandoverStep).where(HandoverStep.task_id == task_id)))))


def test_retention_redacts_old_tasks_and_keeps_the_evidence(app, client, device, make, courier):
    """Past FIELDOPS_RETENTION_DAYS: name masked, phone, address, coordinates gone everywhere they were copied."""
    old = deliver(device, make, courier, name="张三丰")
    recent = deliver(device, make, courier, name="李四")
    _, cursor, _ = device.pull_all()
    finished_ago(old["id"], 91)
    finished_ago(recent["id"], 1)
    before_old, before_recent = kept_facts(old["id"]), kept_facts(recent["id"])
    version_recent = db.session.get(Task, recent["id"]).version
    version_old = db.session.get(Task, old["id"]).version
    held = ManifestQuarantine(file_name="old.csv", file_sha256="a" * 64, row_number=2, waybill_no="X1",
                              raw={"recipient_phone": PHONE}, reasons=[], received_at=utcnow() - timedelta(days=91))
    db.session.add(held)
    db.session.commit()
    resolved = client.post(f"/api/v1/dispatch/manifests/quarantine/{held.id}/resolve", json={"note": "resent"},
                           headers=make.headers("dispatcher"))
    assert resolved.status_code == 200

    assert jobs.run("retention") == {"tasks": 1, "quarantined_rows": 1, "leak_link_uses": 0,
                                        "leak_export_notes": 0}

    db.session.expire_all()
    task = db.session.get(Task, old["id"])
    assert (task.recipient_name, task.recipient_phone, task.address, task.lat, task.lon) == ("张**", "", "", None, None)
    assert task.redacted_at is not None and task.version == version_old + 1
    assert kept_facts(old["id"]) == before_old
    handover = db.session.scalars(select(Handover).where(Handover.task_id == old["id"])).one()
    assert (handover.recipient_name, handover.signer_name) == ("张**", "张**")
    step_names = [s.data.get("name") or s.data.get("signer_name") for s in db.session.scalars(
        select(HandoverStep).where(HandoverStep.task_id == old["id"]).order_by(HandoverStep.id))]
    assert step_names == ["张**", None, None, "张**"]
    notes = [e.text for e in db.session.scalars(select(TaskEvent).where(
        TaskEvent.task_id == old["id"], TaskEvent.actor_kind == "customer"))]
    assert notes == [None]
    # Copies: the audit log's snapshots, the op log's payloads and stored results, the handheld's stored doc.
    for entry in db.session.scalars(select(AuditEntry).where(AuditEntry.entity_id == old["id"])):
        assert PHONE not in str(entry.before) + str(entry.after) and "Nanjing" not in str(entry.after)
    ops = list(db.session.scalars(select(OpLog).where(OpLog.entity_id == old["id"])))
    assert len(ops) == 5
    for op in ops:
        assert "张三丰" not in str(op.payload) and PHONE not in str(op.result) and "Nanjing" not in str(op.result)
    doc = db.session.get(SyncDoc, ("task", old["id"]))
    assert doc is None or (PHONE not in doc.body and "张三丰" not in doc.body)
    # The handheld that held it: the task left its scope long ago, so it gets a tombstone, never the old data.
    page = device.pull(cursor)
    assert {(c["id"], c["deleted"]) for c in page["changes"]} == {(old["id"], True)}
    # Finished yesterday: untouched.
    fresh = db.session.get(Task, recent["id"])
    assert (fresh.recipient_phone, fresh.recipient_name, fresh.version) == (PHONE, "李四", version_recent)
    assert kept_facts(recent["id"]) == before_recent
    assert db.session.scalars(select(ManifestQuarantine)).one().raw is None
    audited = db.session.scalars(select(AuditEntry).where(AuditEntry.entity == "manifest_quarantine")).one()
    assert PHONE not in str(audited.before) + str(audited.after) and audited.after["resolution_note"] == "resent"

    # Idempotent: a second run finds nothing, moves no version, feeds no change.
    changes = db.session.scalar(select(func.count()).select_from(Change))
    assert jobs.run("retention") == {"tasks": 0, "quarantined_rows": 0, "leak_link_uses": 0,
                                        "leak_export_notes": 0}
    db.session.expire_all()
    assert db.session.get(Task, old["id"]).version == version_old + 1
    assert db.session.scalar(select(func.count()).select_from(Change)) == changes


def test_retention_days_setting_and_open_tasks(app, make, courier):
    """The cut-off follows FIELDOPS_RETENTION_DAYS; an open task is never redacted, however old."""
    app.config["RETENTION_DAYS"] = 10
    open_task = make.task(courier=courier)
    db.session.execute(update(Task).where(Task.id == open_task["id"]).values(created_at=utcnow() - timedelta(days=400)))
    cancelled = make.task()
    response = make.client.post(f"/api/v1/dispatch/tasks/{cancelled['id']}/cancel", json={"reason": "customer left"},
                                headers=make.headers("dispatcher"))
    assert response.status_code == 200
    finished_ago(cancelled["id"], 11)
    assert jobs.run("retention")["tasks"] == 1
    db.session.expire_all()
    assert db.session.get(Task, cancelled["id"]).recipient_phone == ""
    assert db.session.get(Task, open_task["id"]).recipient_phone == open_task["recipient"]["phone"]

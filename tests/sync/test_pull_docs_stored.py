"""Issue 26: a pull stores the docs it had to render, and reveals a page of receipts with one url_for."""
import json

import orjson
from sqlalchemy import select, update

from server.extensions import db
from server.models import ChecklistTemplate, Receipt, SyncDoc
from server.services import receipts
from tests.sync.test_handover import due, inspect_ok, sign, upload, verify


def _doc(entity: str, entity_id: str):
    """(version, body) of the stored doc, or None."""
    return db.session.execute(select(SyncDoc.version, SyncDoc.body).where(
        SyncDoc.entity == entity, SyncDoc.entity_id == entity_id)).first()


def _reveal_one_by_one(body: str) -> str:
    """The reveal as it was before issue 26: each mark unsealed and its address built with url_for."""
    def revealed(match):
        token = receipts._unsealed_token(match[1], match[2])
        return "null" if token is None else json.dumps(receipts.page_url(token=token))
    return receipts._DOC_STRING.sub(revealed, body) if receipts._DOC_MARK in body else body


def test_a_pull_stores_the_templates_docs_the_migrations_left_unrendered(app, device, make, templates):
    """Seeded templates have no doc: the first pull renders and stores them; a new version's doc follows it."""
    db.session.execute(SyncDoc.__table__.delete().where(SyncDoc.entity == "checklist_template"))
    db.session.commit()
    store, _, _ = device.pull_all()
    ids = [entity_id for entity, entity_id in store if entity == "checklist_template"]
    assert ids
    entity_type = app.extensions["fieldops_sync"].entities["checklist_template"]
    for template in entity_type.load(ids):
        version, body = _doc("checklist_template", template.id)
        assert version == template.version
        assert orjson.loads(body) == store[("checklist_template", template.id)]["data"]
    assert device.pull_all()[0] == store
    template_id = ids[0]
    assert _doc("checklist_template", template_id).version == 1  # as the migration seeded it
    office = next(t for t in templates.values() if t["id"] == template_id)
    items = office["items"][:1]
    response = make.client.post(f"/api/v1/dispatch/checklist-templates/{template_id}/versions",
                                json={"items": items}, headers=make.headers("quality"))
    assert response.status_code == 201, response.json
    db.session.remove()
    held = device.pull_all()[0][("checklist_template", template_id)]["data"]
    assert [item["code"] for item in held["items"]] == [items[0]["code"]]
    version, body = _doc("checklist_template", template_id)
    assert version == db.session.get(ChecklistTemplate, template_id).version and orjson.loads(body) == held


def test_a_stale_doc_is_never_sent_and_the_pull_stores_the_fresh_one(app, device, make, courier):
    """A doc behind its entity is rendered afresh; the pull stores that render, never over a newer doc."""
    task = make.task(courier=courier)
    expected = device.pull_all()[0][("task", task["id"])]["data"]
    current = _doc("task", task["id"]).version
    db.session.execute(update(SyncDoc).where(SyncDoc.entity_id == task["id"])
                       .values(version=0, body='{"stale": true}'))
    db.session.commit()
    assert device.pull_all()[0][("task", task["id"])]["data"] == expected
    assert _doc("task", task["id"]) == (current, orjson.dumps(expected).decode())


def test_receipts_revealed_a_page_at_once_are_what_one_by_one_gave(app, device, make, courier):
    """The same JSON text, byte for byte: on the request's host, under FIELDOPS_PUBLIC_URL, and unsealable."""
    task = make.task(courier=courier)
    ops = [device.op("pod.verify_recipient", task["id"], verify()),
           device.op("pod.inspect", task["id"], inspect_ok(task)),
           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
           device.op("pod.sign", task["id"], sign(upload(device)))]
    device.push(ops)
    body = _doc("task", task["id"]).body
    receipt = db.session.scalars(select(Receipt).where(Receipt.task_id == task["id"])).one()
    broken = body.replace(receipt.token_sealed, receipt.token_sealed[:-4] + "AAAA")
    bodies = [body, '{"no": "receipt"}', broken, body]
    for base_url in ("http://localhost/", "https://couriers.example.cn:8443/fieldops/"):
        with app.test_request_context(base_url=base_url):
            assert receipts.reveal_docs(bodies) == [_reveal_one_by_one(b) for b in bodies]
    app.config["PUBLIC_URL"] = "https://r.example.cn/收据"
    try:
        with app.test_request_context():
            assert receipts.reveal_docs(bodies) == [_reveal_one_by_one(b) for b in bodies]
        assert receipts.reveal_docs(bodies) == [_reveal_one_by_one(b) for b in bodies]  # outside a request
    finally:
        app.config["PUBLIC_URL"] = None
    with app.test_request_context():  # the test client's host
        revealed = orjson.loads(receipts.reveal_docs([body])[0])
    assert revealed["handover"]["receipt"]["url"].endswith(f"/r/{receipts.page_token(receipt)}")
    assert orjson.loads(receipts.reveal_docs([broken])[0])["handover"]["receipt"]["url"] is None
    assert device.pull_all()[0][("task", task["id"])]["data"] == revealed


def test_a_database_that_cannot_write_loses_the_store_not_the_pull(app, device, make, courier, database_url):
    """The store after the read is a write of its own: while the database cannot write the pull still answers."""
    from tests.sync.test_db_faults import _database_unwritable
    task = make.task(courier=courier)
    expected = device.pull_all()[0][("task", task["id"])]["data"]
    current = _doc("task", task["id"]).version
    db.session.execute(update(SyncDoc).where(SyncDoc.entity_id == task["id"]).values(version=0, body="{}"))
    db.session.commit()
    try:
        with _database_unwritable(database_url):
            db.session.remove()
            db.engine.dispose()
            assert device.pull_all()[0][("task", task["id"])]["data"] == expected
        db.session.remove()
        assert _doc("task", task["id"]).version == 0
        assert device.pull_all()[0][("task", task["id"])]["data"] == expected
        assert _doc("task", task["id"]).version == current
    finally:
        db.session.remove()
        db.engine.dispose()

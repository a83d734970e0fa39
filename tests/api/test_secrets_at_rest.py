"""No secret is kept in the database as it was issued: every kind is issued, then every column of every table is read."""
import json
import re

from sqlalchemy import MetaData, inspect, select

from server.auth import Actor
from server.extensions import db
from server.models import Receipt
from server.services import receipts, staff, webhooks
from tests.api.test_ratings import deliver
from tests.services.test_receipts import evidence
from tests.sync.conftest import Device


def _stored_text() -> list[tuple[str, str]]:
    """(table.column, text) for every non-empty value of every column of every table the database holds."""
    metadata = MetaData()
    metadata.reflect(bind=db.engine, views=False)
    assert set(inspect(db.engine).get_table_names()) <= set(metadata.tables)
    found = []
    with db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        value = bytes(value).decode("latin-1")
                    if value is not None:
                        found.append((f"{table.name}.{column.name}", str(value)))
    return found


def _holding(secret: str, stored: list[tuple[str, str]], *, digits: bool = False) -> list[str]:
    """The columns whose text holds the secret (a number only where no other digit or letter touches it)."""
    if digits:
        pattern = re.compile(r"(?<![0-9A-Za-z])%s(?![0-9A-Za-z])" % re.escape(secret))
        return [where for where, text in stored if pattern.search(text)]
    return [where for where, text in stored if secret in text or secret.upper() in text.upper()]


def test_no_issued_secret_is_stored_as_issued(client, make):
    """Staff and device tokens, enrollment codes (used or not), customer links, receipt pages, webhook secrets, PINs."""
    dispatcher, admin = make.headers("dispatcher"), make.headers("admin")
    secrets = {"staff token (create)": make.token("dispatcher")}
    user, secrets["staff token (CLI create)"] = staff.create(username="cli-made", role="quality")
    issued = client.post(f"/api/v1/admin/staff/{user.id}/tokens", json={"label": "laptop"}, headers=admin)
    assert issued.status_code == 201, issued.json
    secrets["staff token (issued)"] = issued.json["token"]
    courier = make.courier()
    codes = [client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments", headers=dispatcher).json["code"]
             for _ in range(2)]
    secrets["enrollment code (unused)"] = codes[0]
    secrets["enrollment code (used)"] = codes[1]
    enrolled = client.post("/api/v1/devices/enroll", json={"code": codes[1], "device_name": "PDA"})
    assert enrolled.status_code == 201, enrolled.json
    secrets["device token"] = enrolled.json["token"]
    task = make.task(courier=courier)
    link = client.post(f"/api/v1/dispatch/tasks/{task['id']}/customer-link", json={}, headers=dispatcher)
    assert link.status_code == 201, link.json
    link_token = link.json["url"].rsplit("/c/", 1)[1]
    secrets["customer link"] = link_token
    secrets["customer link signature"] = link_token.rsplit(".", 1)[1]
    assert client.get(f"/c/{link_token}").status_code == 200  # opened once: the visit is counted
    # A handover through the handheld: the receipt page's address reaches the op log, the handheld's
    # doc, the events; one receipt is issued directly as well.
    delivered = make.task(courier=courier)
    handheld = Device(client, enrolled.json)
    deliver(handheld, delivered)
    number = db.session.scalar(select(Receipt.number).where(Receipt.task_id == delivered["id"]))
    page = client.get(f"/api/v1/receipts/{number}", headers=dispatcher).json["url"]
    pulled = json.dumps(list(handheld.pull_all()[0].values()))
    assert page in pulled  # the handheld shows the customer this page's QR
    receipt = receipts.issue(task_id=make.task()["id"], kind="delivery", evidence=evidence())
    db.session.commit()
    direct = client.get(f"/api/v1/receipts/{receipt.number}", headers=dispatcher).json["url"]
    for kind, url in (("receipt page token (handover)", page), ("receipt page token (issued)", direct)):
        secrets[kind] = url.rsplit("/r/", 1)[1]
        assert client.get(f"/r/{secrets[kind]}").status_code == 200
    admin_actor = Actor(kind="staff", id=None, role="admin")
    _subscription, secrets["webhook secret"] = webhooks.create(actor=admin_actor, url="https://hooks.example.com/fo",
                                                               event_types=["*"])
    rotated = client.post(f"/api/v1/admin/webhooks/{_subscription.id}/rotate-secret", headers=admin)
    assert rotated.status_code == 200, rotated.json
    secrets["webhook secret (rotated)"] = rotated.json["secret"]
    stored = _stored_text()
    leaks = {kind: _holding(secret, stored) for kind, secret in secrets.items()}
    assert {kind: columns for kind, columns in leaks.items() if columns} == {}
    # The handover PIN: six digits can occur by chance (a timestamp's microseconds), so a
    # find counts only if a second PIN, issued in its place, is found as well.
    pins = []
    for _ in range(2):
        answer = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin", headers=dispatcher)
        assert answer.status_code == 201, answer.json
        pins.append(answer.json["pin"])
        if not _holding(pins[-1], _stored_text(), digits=True):
            break
    else:
        raise AssertionError(f"handover PINs stored as issued: {_holding(pins[-1], _stored_text(), digits=True)}")
    # The page still shows the customer their PIN: it is sealed, not lost.
    assert pins[-1] in client.get(f"/c/{link_token}").text

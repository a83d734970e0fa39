"""Leaks the service sees on its own: a customer or receipt link used from too many client addresses, a staff member
handed too much customer data; each opens one incident for review, once per cause (tests/api/test_leaks.py: the
register)."""
import hashlib
import hmac
import re
from datetime import timedelta

from sqlalchemy import func, select

from server import config, create_app, jobs
from server.clock import utcnow
from server.extensions import db
from server.models import AuditEntry, Event, LeakExportNote, LeakIncident, LeakLinkUse
from server.services import receipts
from tests.api.test_customer_page import issue, path_of
from tests.services.test_receipts import evidence

BASE = "/api/v1/quality/leak-incidents"


def _visit(client, path: str, address: str, **headers):
    """Open a page from a client address; it must be served."""
    answer = client.get(path, environ_base={"REMOTE_ADDR": address}, headers=headers)
    assert answer.status_code == 200, answer.text[:200]
    return answer


def _flagged(client, make) -> list[dict]:
    """The incidents the service opened itself, as quality lists them."""
    answer = client.get(BASE, query_string={"source": "auto"}, headers=make.headers("quality"))
    assert answer.status_code == 200
    return answer.json["items"]


def _opened_events() -> int:
    """How many leak.opened events the feed holds."""
    return db.session.scalar(select(func.count()).select_from(Event).where(Event.type == "leak.opened"))


def test_a_customer_link_seen_from_too_many_addresses_is_flagged_once(client, app, make):
    """Five addresses (the limit) are a family and a neighbour; the sixth opens one incident for review; the same
    addresses again, and more, add nothing."""
    app.config["LEAK_LINK_MAX_ADDRESSES"] = 5
    task = make.task(courier=make.courier())
    link = issue(client, make, task["id"])
    path, link_id = path_of(link), re.search(r"customer-links/([^/]+)/", link["qr_png"]).group(1)
    for n in range(1, 6):
        _visit(client, path, f"198.51.100.{n}")
        _visit(client, path, f"198.51.100.{n}")  # the same customer again: not another address
    assert _flagged(client, make) == []  # exactly at the limit
    assert db.session.scalar(select(func.count()).select_from(LeakLinkUse)) == 5

    _visit(client, path, "203.0.113.99")
    flagged = _flagged(client, make)
    assert len(flagged) == 1
    incident = flagged[0]
    assert incident["status"] == "review" and incident["source"] == "auto" and incident["opened_by"] is None
    assert incident["detail"] == {"cause": "link_addresses", "link_kind": "customer_link", "link_id": link_id,
                                  "task_id": task["id"], "addresses": 6, "limit": 5}
    assert incident["data_kinds"] == ["address", "name", "other"] and incident["people_affected"] == 1
    for n in range(7, 12):  # more strangers: still the one incident, one event
        _visit(client, path, f"203.0.113.{n}")
    assert [i["id"] for i in _flagged(client, make)] == [incident["id"]] and _opened_events() == 1
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "leak.open")).one()
    assert audit.staff_id is None and audit.entity_id == str(incident["id"])

    # Dismissed on review (the customer shared it in a family chat): the link does not open another.
    dismissed = client.post(f"{BASE}/{incident['id']}/dismiss", json={"note": "Shared in the family chat."},
                            headers=make.headers("quality"))
    assert dismissed.status_code == 200
    _visit(client, path, "192.0.2.200")
    assert len(_flagged(client, make)) == 1 and _opened_events() == 1


def test_link_uses_keep_a_keyed_hash_of_the_address_never_the_address(client, app, make):
    """The table holds HMAC(secret, address), 32 hex digits: no address, and not a plain hash of one."""
    path = path_of(issue(client, make, make.task(courier=make.courier())["id"]))
    _visit(client, path, "198.51.100.23")
    stored = db.session.scalars(select(LeakLinkUse.address_hash)).one()
    assert "198.51.100.23" not in stored and len(stored) == 32
    assert stored != hashlib.sha256(b"198.51.100.23").hexdigest()[:32]
    assert stored == hmac.new(app.config["SECRET_KEY"].encode(), b"leak-link-use:198.51.100.23",
                              hashlib.sha256).hexdigest()[:32]


def test_a_receipt_page_and_its_json_count_the_addresses_they_are_shown_to(client, app, make):
    """The receipt page and its sealed JSON are one link: past the limit, an incident naming the receipt."""
    app.config["LEAK_LINK_MAX_ADDRESSES"] = 2
    task = make.task(courier=make.courier())
    receipt = receipts.issue(task_id=task["id"], kind="delivery", evidence=evidence())
    db.session.commit()
    page = f"/r/{receipts.page_token(receipt)}"
    receipt_id = receipt.id
    _visit(client, page, "198.51.100.1")
    _visit(client, page + ".json", "198.51.100.2")
    _visit(client, page, "198.51.100.2", Accept="application/json")
    assert _flagged(client, make) == []
    _visit(client, page + ".json", "198.51.100.3")
    (incident,) = _flagged(client, make)
    assert incident["detail"]["link_kind"] == "receipt" and incident["detail"]["link_id"] == receipt_id
    assert incident["detail"]["task_id"] == task["id"] and incident["detail"]["addresses"] == 3


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(app, client, make, database_url, tmp_path,
                                                                 monkeypatch):
    """FIELDOPS_PROXY_HOPS=1: the X-Forwarded-For client is the address (ProxyFix); with no hop trusted, the header
    is the client's own words and every visit is the proxy's one address."""
    path = path_of(issue(client, make, make.task(courier=make.courier())["id"]))
    direct_limit = 2
    app.config["LEAK_LINK_MAX_ADDRESSES"] = direct_limit
    for n in range(5):  # the header is ignored: one address
        _visit(client, path, "10.0.0.1", **{"X-Forwarded-For": f"203.0.113.{n}"})
    assert db.session.scalar(select(func.count()).select_from(LeakLinkUse)) == 1
    db.session.remove()

    monkeypatch.setenv("FIELDOPS_PROXY_HOPS", "1")
    proxied = create_app(config.TestConfig(database_url, str(tmp_path)))
    proxied.config["LEAK_LINK_MAX_ADDRESSES"] = direct_limit
    with proxied.app_context():
        behind = proxied.test_client()
        for n in range(3):
            _visit(behind, path, "10.0.0.1", **{"X-Forwarded-For": f"203.0.113.{n}"})
        addresses = db.session.scalar(select(func.count()).select_from(LeakLinkUse))
        causes = list(db.session.scalars(select(LeakIncident.cause)))
        db.session.remove()
        db.engine.dispose()
    # 10.0.0.1 (the direct visits) and 203.0.113.1-2 are new; 203.0.113.0 is too: four in all, past the limit of 2.
    assert addresses == 4 and len(causes) == 1 and causes[0].startswith("link:customer_link:")


def _list(client, make, role="dispatcher", **query):
    """A page of the dispatch task list (customer names, phones, addresses)."""
    answer = client.get("/api/v1/dispatch/tasks", query_string=query, headers=make.headers(role))
    assert answer.status_code == 200, answer.json
    return answer.json


def test_paging_through_customer_data_adds_up_to_one_incident_naming_the_staff_member(client, app, make):
    """Pages and single tasks add up per staff member over the window: at the limit nothing, past it one incident
    naming them, what and how many rows; further pages no more; another staff member has their own count."""
    app.config["LEAK_EXPORT_MAX_ROWS"] = 7
    for _ in range(6):
        make.task()
    first = _list(client, make, limit=3)  # 3
    second = _list(client, make, limit=3, cursor=first["next_cursor"])  # 6
    assert len(first["items"]) == len(second["items"]) == 3
    one = client.get(f"/api/v1/dispatch/tasks/{first['items'][0]['id']}", headers=make.headers("dispatcher"))
    assert one.status_code == 200  # 7: exactly the limit
    assert _flagged(client, make) == []
    assert _list(client, make, role="quality", limit=5)["items"]  # quality's own 5 rows (of 7 allowed)
    assert _flagged(client, make) == []

    _list(client, make, limit=1, status="unassigned")  # 8: past it
    (incident,) = _flagged(client, make)
    dispatcher_id = db.session.scalar(select(LeakExportNote.staff_id).where(LeakExportNote.rows == 1,
                                                                            LeakExportNote.what == "dispatch_task"))
    assert incident["responsible_staff_id"] == dispatcher_id and incident["status"] == "review"
    assert incident["detail"] == {"cause": "export_rows", "staff_id": dispatcher_id, "rows": 8,
                                  "what": {"dispatch_task": 1, "dispatch_tasks": 7}, "window_minutes": 60,
                                  "limit": 7}
    assert incident["data_kinds"] == ["address", "name", "phone"] and incident["people_affected"] is None
    _list(client, make, limit=6)
    assert len(_flagged(client, make)) == 1 and _opened_events() == 1
    # An empty page hands out nothing and is not noted.
    assert _list(client, make, waybill_no="NO-SUCH-1")["items"] == []
    assert db.session.scalar(select(func.count()).select_from(LeakExportNote).where(LeakExportNote.rows == 0)) == 0


def test_rows_older_than_the_window_do_not_count(client, app, make, server_clock):
    """What a staff member was handed before the window began is out of the sum (a day's work is not an export)."""
    app.config["LEAK_EXPORT_MAX_ROWS"] = 4
    app.config["LEAK_EXPORT_WINDOW_MINUTES"] = 30
    for _ in range(4):
        make.task()
    with server_clock.at(utcnow() - timedelta(minutes=31)):
        _list(client, make, limit=4)
    _list(client, make, limit=4)
    assert _flagged(client, make) == []
    _list(client, make, limit=1)
    (incident,) = _flagged(client, make)
    assert incident["detail"]["rows"] == 5 and incident["detail"]["window_minutes"] == 30


def test_a_refused_list_is_not_noted(client, app, make):
    """Bad input, a wrong role: nothing was handed out, nothing is noted."""
    app.config["LEAK_EXPORT_MAX_ROWS"] = 1
    make.task()
    make.task()
    assert client.get("/api/v1/dispatch/tasks", query_string={"limit": 0},
                      headers=make.headers("dispatcher")).status_code == 422
    assert client.get("/api/v1/dispatch/tasks", headers=make.headers("maintenance")).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(LeakExportNote)) == 0


def test_the_retention_job_drops_old_link_uses_and_export_notes(client, app, make, server_clock):
    """Link uses older than FIELDOPS_LEAK_LINK_USE_DAYS and export notes past their window leave; incidents stay."""
    app.config["LEAK_LINK_MAX_ADDRESSES"] = 1
    path = path_of(issue(client, make, make.task(courier=make.courier())["id"]))
    with server_clock.at(utcnow() - timedelta(days=31)):
        _visit(client, path, "198.51.100.1")
        _list(client, make)
    _visit(client, path, "198.51.100.2")  # the link's second address: flagged
    _list(client, make)
    assert len(_flagged(client, make)) == 1
    counts = jobs.run("retention")
    assert counts["leak_link_uses"] == 1 and counts["leak_export_notes"] == 1
    assert db.session.scalar(select(func.count()).select_from(LeakLinkUse)) == 1
    assert db.session.scalar(select(func.count()).select_from(LeakExportNote)) == 1
    assert len(_flagged(client, make)) == 1


def test_a_page_view_costs_one_statement_of_leak_detection(client, app, make):
    """The hot path: a known address is one INSERT … ON CONFLICT DO NOTHING; a new one adds one count of the link's
    rows (its primary-key range), never a scan of the table."""
    from sqlalchemy import event

    path = path_of(issue(client, make, make.task(courier=make.courier())["id"]))
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if "leak_" in statement:
            statements.append(statement.split()[0])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        _visit(client, path, "198.51.100.1")
        first = list(statements)
        statements.clear()
        _visit(client, path, "198.51.100.1")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert first == ["INSERT", "SELECT"] and statements == ["INSERT"]

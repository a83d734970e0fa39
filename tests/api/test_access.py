"""Who may call what: the intended roles of every API route, and couriers never see others' tasks."""
from tests.api import test_access_matrix as matrix
from tests.sync.routes import COURIER, DISPATCH, OFFICE, SYNC_ROUTES

FLEET = DISPATCH | {"quality", "maintenance"}
PUBLIC = None  # no token needed

# (method, url rule, who may call it)
ROUTES = [
    ("POST", "/api/v1/dispatch/couriers", DISPATCH),
    ("GET", "/api/v1/dispatch/couriers", OFFICE),
    ("GET", "/api/v1/dispatch/couriers/<courier_id>", OFFICE),
    ("PATCH", "/api/v1/dispatch/couriers/<courier_id>", DISPATCH),
    ("POST", "/api/v1/dispatch/couriers/<courier_id>/deactivate", DISPATCH),
    ("GET", "/api/v1/dispatch/couriers/<courier_id>/devices", DISPATCH),
    ("POST", "/api/v1/dispatch/couriers/<courier_id>/enrollments", DISPATCH),
    ("POST", "/api/v1/dispatch/vehicles", DISPATCH),
    ("GET", "/api/v1/dispatch/vehicles", FLEET),
    ("GET", "/api/v1/dispatch/vehicles/<vehicle_id>", FLEET),
    ("PATCH", "/api/v1/dispatch/vehicles/<vehicle_id>", DISPATCH),
    ("POST", "/api/v1/dispatch/tasks", DISPATCH),
    ("GET", "/api/v1/dispatch/tasks", OFFICE),
    ("POST", "/api/v1/dispatch/tasks/import", DISPATCH),
    ("GET", "/api/v1/dispatch/tasks/<task_id>", OFFICE),
    ("GET", "/api/v1/dispatch/tasks/<task_id>/timeline", OFFICE),
    ("POST", "/api/v1/dispatch/tasks/<task_id>/assign", DISPATCH),
    ("POST", "/api/v1/dispatch/tasks/<task_id>/cancel", DISPATCH),
    ("POST", "/api/v1/dispatch/tasks/<task_id>/notes", DISPATCH),
    ("POST", "/api/v1/dispatch/tasks/<task_id>/customer-link", DISPATCH),
    ("GET", "/api/v1/dispatch/customer-links/<link_id>/qr.<fmt>", DISPATCH),
    ("GET", "/api/v1/dispatch/appointments", OFFICE),
    ("POST", "/api/v1/dispatch/tasks/<task_id>/appointment/confirm", DISPATCH),
    ("POST", "/api/v1/dispatch/tasks/<task_id>/appointment/reschedule", DISPATCH),
    ("GET", "/api/v1/dispatch/appointments/review", DISPATCH),
    ("POST", "/api/v1/dispatch/tasks/<task_id>/appointment/review", DISPATCH),
    ("GET", "/api/v1/dispatch/couriers/<courier_id>/violations", OFFICE),
    ("POST", "/api/v1/dispatch/tasks/<task_id>/handover-pin", DISPATCH),
    ("PUT", "/api/v1/dispatch/tasks/<task_id>/gift", DISPATCH),
    ("GET", "/api/v1/dispatch/tasks/<task_id>/handover", OFFICE),
    ("GET", "/api/v1/dispatch/exceptions", OFFICE),
    ("POST", "/api/v1/dispatch/exceptions/<int:exception_id>/acknowledge", DISPATCH),
    ("POST", "/api/v1/dispatch/exceptions/<int:exception_id>/resolve", DISPATCH),
    ("GET", "/api/v1/dispatch/tasks/<task_id>/journey", OFFICE),
    ("GET", "/api/v1/dispatch/tasks/<task_id>/messages", OFFICE),
    ("GET", "/api/v1/dispatch/parcels/lost", OFFICE),
    ("POST", "/api/v1/dispatch/parcels/<int:parcel_id>/lost-state", DISPATCH),
    ("POST", "/api/v1/dispatch/couriers/<courier_id>/remittances", DISPATCH),
    ("POST", "/api/v1/dispatch/couriers/<courier_id>/cash-corrections", DISPATCH),
    ("GET", "/api/v1/dispatch/couriers/<courier_id>/cash", OFFICE),
    ("GET", "/api/v1/dispatch/ledger", OFFICE),
    ("GET", "/api/v1/dispatch/couriers/<courier_id>/day", OFFICE),
    ("GET", "/api/v1/dispatch/depots/<depot>/cash", OFFICE),
    ("GET", "/api/v1/dispatch/couriers/<courier_id>/grade", OFFICE),
    ("POST", "/api/v1/dispatch/couriers/<courier_id>/grade/recompute", {"admin", "quality"}),
    ("GET", "/api/v1/dispatch/couriers/<courier_id>/grade/history", OFFICE),
    ("POST", "/api/v1/dispatch/couriers/<courier_id>/grade/override", {"admin", "quality"}),
    ("POST", "/api/v1/dispatch/couriers/<courier_id>/grade/override/lift", {"admin", "quality"}),
    ("GET", "/api/v1/quality/inspections", {"admin", "quality", "dispatcher"}),
    ("POST", "/api/v1/quality/inspections", {"admin", "quality"}),
    ("GET", "/api/v1/quality/inspections/<int:inspection_id>", {"admin", "quality", "dispatcher"}),
    ("GET", "/api/v1/quality/violations", OFFICE),
    ("GET", "/api/v1/quality/violations/<int:violation_id>", OFFICE),
    ("POST", "/api/v1/quality/violations/<int:violation_id>/appeal/decide", {"admin", "quality"}),
    ("POST", "/api/v1/quality/violations/<int:violation_id>/void", {"admin", "quality"}),
    ("POST", "/api/v1/quality/violations/<int:violation_id>/confirm", {"admin", "quality"}),
    ("POST", "/api/v1/dispatch/complaints", OFFICE),
    ("GET", "/api/v1/dispatch/complaints", OFFICE),
    ("GET", "/api/v1/dispatch/complaints/<int:complaint_id>", OFFICE),
    ("POST", "/api/v1/dispatch/complaints/<int:complaint_id>/take", OFFICE),
    ("POST", "/api/v1/dispatch/complaints/<int:complaint_id>/handover", OFFICE),
    ("POST", "/api/v1/dispatch/complaints/<int:complaint_id>/respond", OFFICE),
    ("POST", "/api/v1/dispatch/complaints/<int:complaint_id>/contacts", OFFICE),
    ("POST", "/api/v1/dispatch/complaints/<int:complaint_id>/reopen", OFFICE),
    ("POST", "/api/v1/dispatch/complaints/<int:complaint_id>/resolve", OFFICE),
    ("POST", "/api/v1/dispatch/complaints/<int:complaint_id>/satisfaction", OFFICE),
    ("POST", "/api/v1/quality/training/courses", {"admin", "quality"}),
    ("GET", "/api/v1/quality/training/courses", OFFICE),
    ("GET", "/api/v1/quality/training/courses/<int:course_id>", OFFICE),
    ("PATCH", "/api/v1/quality/training/courses/<int:course_id>", {"admin", "quality"}),
    ("POST", "/api/v1/quality/training/sessions", {"admin", "quality"}),
    ("GET", "/api/v1/quality/training/sessions", OFFICE),
    ("POST", "/api/v1/quality/training/sessions/import", {"admin", "quality"}),
    ("GET", "/api/v1/quality/training/sessions/<int:session_id>", OFFICE),
    ("POST", "/api/v1/quality/training/sessions/<int:session_id>/attendance", {"admin", "quality"}),
    ("GET", "/api/v1/dispatch/couriers/<courier_id>/training", OFFICE),
    ("POST", "/api/v1/dispatch/claims", OFFICE),
    ("GET", "/api/v1/dispatch/claims", OFFICE),
    ("GET", "/api/v1/dispatch/claims/<int:claim_id>", OFFICE),
    ("POST", "/api/v1/dispatch/claims/<int:claim_id>/assess", {"admin", "quality"}),
    ("POST", "/api/v1/dispatch/claims/<int:claim_id>/approve", {"admin", "quality"}),
    ("POST", "/api/v1/dispatch/claims/<int:claim_id>/reject", {"admin", "quality"}),
    ("POST", "/api/v1/dispatch/claims/<int:claim_id>/pay", {"admin"}),
    ("POST", "/api/v1/dispatch/claims/<int:claim_id>/corrections", {"admin"}),
    ("POST", "/api/v1/quality/leak-incidents", OFFICE),
    ("GET", "/api/v1/quality/leak-incidents", {"admin", "quality"}),
    ("GET", "/api/v1/quality/leak-incidents/<int:incident_id>", {"admin", "quality"}),
    ("PATCH", "/api/v1/quality/leak-incidents/<int:incident_id>", {"admin", "quality"}),
    ("POST", "/api/v1/quality/leak-incidents/<int:incident_id>/notifications", {"admin", "quality"}),
    ("POST", "/api/v1/quality/leak-incidents/<int:incident_id>/confirm", {"admin", "quality"}),
    ("POST", "/api/v1/quality/leak-incidents/<int:incident_id>/dismiss", {"admin", "quality"}),
    ("POST", "/api/v1/quality/leak-incidents/<int:incident_id>/resolve", {"admin", "quality"}),
    ("GET", "/api/v1/dispatch/enrollments/<code>/qr.<fmt>", DISPATCH),
    ("POST", "/api/v1/devices/enroll", PUBLIC),
    ("GET", "/api/v1/dispatch/devices", DISPATCH),
    ("POST", "/api/v1/dispatch/devices/<device_id>/revoke", DISPATCH),
    ("GET", "/api/v1/me/tasks", COURIER),
    ("GET", "/api/v1/me/tasks/<task_id>", COURIER),
    ("POST", "/api/v1/me/tasks/<task_id>/notes", COURIER),
    ("POST", "/api/v1/me/tasks/<task_id>/arrive", COURIER),
    ("GET", "/api/v1/me/violations", COURIER),
    ("GET", "/api/v1/admin/staff", {"admin"}),
    ("POST", "/api/v1/admin/staff", {"admin"}),
    ("POST", "/api/v1/admin/staff/<staff_id>/deactivate", {"admin"}),
    ("POST", "/api/v1/admin/staff/<staff_id>/tokens", {"admin"}),
    ("PUT", "/api/v1/admin/staff/<staff_id>/password", {"admin"}),
    ("GET", "/api/v1/admin/tokens", FLEET),
    ("POST", "/api/v1/admin/tokens/<int:token_id>/revoke", FLEET),
    ("GET", "/api/v1/admin/audit", {"admin", "quality"}),
    ("GET", "/api/v1/admin/jobs", {"admin"}),
    ("GET", "/api/v1/admin/jobs/<name>/runs", {"admin"}),
    ("GET", "/api/v1/admin/service-products", {"admin", "dispatcher", "quality"}),
    ("POST", "/api/v1/admin/service-products", {"admin"}),
    ("PATCH", "/api/v1/admin/service-products/<code>", {"admin"}),
    ("GET", "/api/v1/dispatch/checklist-templates", {"admin", "quality", "maintenance"}),
    ("POST", "/api/v1/dispatch/checklist-templates", {"admin", "quality"}),
    ("GET", "/api/v1/dispatch/checklist-templates/<template_id>", {"admin", "quality", "maintenance"}),
    ("POST", "/api/v1/dispatch/checklist-templates/<template_id>/versions", {"admin", "quality"}),
    ("POST", "/api/v1/dispatch/checklist-templates/<template_id>/retire", {"admin", "quality"}),
    ("GET", "/api/v1/dispatch/defects", FLEET),
    ("POST", "/api/v1/dispatch/vehicles/<vehicle_id>/defects/<int:defect_id>/repair", {"admin", "maintenance"}),
    ("POST", "/api/v1/dispatch/vehicles/<vehicle_id>/defects/<int:defect_id>/no_repair_needed",
     {"admin", "maintenance"}),
    ("GET", "/api/v1/receipts/keys", PUBLIC),
    ("GET", "/api/v1/receipts/<number>", OFFICE),
    ("GET", "/api/v1/receipts/<number>/qr.<fmt>", OFFICE),
    ("POST", "/api/v1/integrations/manifests", {"admin", "dispatcher", "integration"}),
    ("GET", "/api/v1/dispatch/manifests/quarantine", DISPATCH),
    ("POST", "/api/v1/dispatch/manifests/quarantine/<int:entry_id>/resolve", DISPATCH),
    ("POST", "/api/v1/admin/webhooks", {"admin"}),
    ("GET", "/api/v1/admin/webhooks", {"admin"}),
    ("GET", "/api/v1/admin/webhooks/<subscription_id>", {"admin"}),
    ("PATCH", "/api/v1/admin/webhooks/<subscription_id>", {"admin"}),
    ("DELETE", "/api/v1/admin/webhooks/<subscription_id>", {"admin"}),
    ("POST", "/api/v1/admin/webhooks/<subscription_id>/rotate-secret", {"admin"}),
    ("GET", "/api/v1/admin/webhooks/<subscription_id>/deliveries", {"admin"}),
    ("POST", "/api/v1/admin/webhooks/<subscription_id>/deliveries/<int:delivery_id>/replay", {"admin"}),
    ("GET", "/api/v1/integrations/events", {"admin", "integration"}),
    ("POST", "/api/v1/integrations/scans", {"admin", "integration"}),
    ("GET", "/api/v1/reports/kpis", OFFICE),
    ("GET", "/api/v1/reports/kpis/chart.png", OFFICE),
    ("GET", "/api/v1/reports/kpis/<figure>/tasks", OFFICE),
]
ALL_ROUTES = ROUTES + SYNC_ROUTES

_NOT_API = {"/api/v1/openapi.json", "/api/v1/docs", "/api/v1/docs/<path:filename>",
            "/api/v1/redoc"}


def test_every_api_route_is_in_the_table(app):
    """A route added without an access rule in this table fails here."""
    served = {(method, rule.rule) for method, rule in matrix.served(app)
              if rule.rule.startswith("/api/v1") and rule.rule not in _NOT_API}
    listed = {(method, rule) for method, rule, _ in ALL_ROUTES}
    assert served == listed


def test_declared_roles_are_the_intended_ones(app):
    """Each view declares exactly the roles this table intends; the matrix (test_access_matrix.py) proves them over HTTP."""
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    wrong = []
    for method, path, allowed in ALL_ROUTES:
        declared = matrix.declared_roles(app, rules[path], method)
        if (set(declared) if declared is not None else None) != allowed:
            wrong.append(f"{method} {path}: declares {declared}, intended {allowed}")
    assert not wrong, "\n".join(wrong)


def test_courier_never_sees_another_couriers_task(client, make):
    """Every courier route answers 404 for a task of another courier, exactly as for no task."""
    alice, bob = make.courier(), make.courier()
    alice_token = make.device(alice)["token"]
    bobs_task = make.task(courier=bob)
    headers = {"Authorization": f"Bearer {alice_token}"}
    for method, path, body in [
        ("GET", f"/api/v1/me/tasks/{bobs_task['id']}", None),
        ("POST", f"/api/v1/me/tasks/{bobs_task['id']}/notes", {"text": "hello"}),
        ("POST", f"/api/v1/me/tasks/{bobs_task['id']}/arrive", {"lat": 31.2, "lon": 121.4}),
    ]:
        foreign = client.open(path, method=method, json=body, headers=headers)
        missing = client.open(path.replace(bobs_task["id"], "t-missing"), method=method,
                              json=body, headers=headers)
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json["code"] == missing.json["code"] == "task_not_found"
    listed = client.get("/api/v1/me/tasks", headers=headers).json["items"]
    assert bobs_task["id"] not in {t["id"] for t in listed}
    # Bob's task has no note from Alice.
    history = client.get(f"/api/v1/dispatch/tasks/{bobs_task['id']}",
                         headers=make.headers("dispatcher")).json["history"]
    assert [e["kind"] for e in history] == ["created", "assigned"]


def test_reassigned_task_disappears_for_previous_courier(client, make):
    """After reassignment the first courier gets 404 and no longer lists it."""
    alice, bob = make.courier(), make.courier()
    token = make.device(alice)["token"]
    task = make.task(courier=alice)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/me/tasks/{task['id']}", headers=headers).status_code == 200
    make.assign(task["id"], bob["id"])
    assert client.get(f"/api/v1/me/tasks/{task['id']}", headers=headers).status_code == 404
    assert client.get("/api/v1/me/tasks", headers=headers).json["items"] == []

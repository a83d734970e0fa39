"""Couriers and vehicles: create, list, get, update, deactivate, uniqueness."""


def test_courier_lifecycle(client, make):
    """Create, read, list, update, deactivate (which revokes devices)."""
    headers = make.headers("dispatcher")
    courier = make.courier(name="Wang Lei")
    assert courier["id"].startswith("c-") and courier["active"] and courier["grade"] == "A"
    assert client.get(f"/api/v1/dispatch/couriers/{courier['id']}", headers=headers).json["name"] == "Wang Lei"
    updated = client.patch(f"/api/v1/dispatch/couriers/{courier['id']}", json={"phone": "13911112222"},
                           headers=headers).json
    assert updated["phone"] == "13911112222"
    device = make.device(courier)
    device_headers = {"Authorization": f"Bearer {device['token']}"}
    assert client.get("/api/v1/me/tasks", headers=device_headers).status_code == 200
    response = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/deactivate", headers=headers)
    assert response.status_code == 200 and response.json["active"] is False
    assert client.get("/api/v1/me/tasks", headers=device_headers).status_code == 401
    devices = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/devices", headers=headers).json["items"]
    assert devices[0]["revoked_at"] is not None and "token" not in devices[0]
    active = client.get("/api/v1/dispatch/couriers", query_string={"active": "true"}, headers=headers).json
    assert courier["id"] not in {c["id"] for c in active["items"]}


def test_courier_validation_and_duplicates(client, make):
    """Missing fields and duplicate employee numbers are named."""
    headers = make.headers("dispatcher")
    response = client.post("/api/v1/dispatch/couriers", json={"name": "x"}, headers=headers)
    assert response.status_code == 422
    assert set(response.json["fields"]) == {"phone", "employee_no"}
    make.courier(employee_no="E777")
    response = client.post("/api/v1/dispatch/couriers",
                           json={"name": "y", "phone": "13900000000", "employee_no": "E777"}, headers=headers)
    assert response.status_code == 409 and response.json["code"] == "duplicate_employee_no"
    assert client.get("/api/v1/dispatch/couriers/c-nope", headers=headers).status_code == 404


def test_vehicle_lifecycle_and_one_van_per_courier(client, make):
    """Vehicles are created, listed, assigned; a courier drives one vehicle at a time."""
    headers = make.headers("dispatcher")
    courier = make.courier()
    van, other = make.vehicle(plate="AB1234"), make.vehicle()
    assert van["status"] == "in_service" and van["version"] == 1
    response = client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"courier_id": courier["id"]},
                            headers=headers)
    assert response.status_code == 200 and response.json["courier_id"] == courier["id"]
    assert response.json["version"] == 2
    response = client.patch(f"/api/v1/dispatch/vehicles/{other['id']}", json={"courier_id": courier["id"]},
                            headers=headers)
    assert response.status_code == 409 and response.json["code"] == "courier_has_vehicle"
    dup = client.post("/api/v1/dispatch/vehicles", json={"plate": "AB1234", "kind": "van"}, headers=headers)
    assert dup.status_code == 409 and dup.json["code"] == "duplicate_plate"
    bad = client.post("/api/v1/dispatch/vehicles", json={"plate": "x", "kind": "rocket"}, headers=headers)
    assert bad.status_code == 422 and set(bad.json["fields"]) == {"plate", "kind"}
    listed = client.get("/api/v1/dispatch/vehicles", headers=make.headers("maintenance")).json["items"]
    assert {v["id"] for v in listed} == {van["id"], other["id"]}

"""The vans pages of the console: maintenance sees the vans out of service and their defects, certifies a repair
(the van is back in service) or closes a defect as needing none; dispatchers read; others are refused."""
from tests.sync import conftest as sync, test_checklists as checks
from tests.sync.test_checklists import submit, vehicle_answers

# The handheld's fixtures: a courier with a van, their enrolled device, the default checklists, a photo uploaded.
courier, device, templates, van, photo = sync.courier, sync.device, sync.templates, checks.van, checks.photo


def _grounded(device, templates, van, photo) -> None:
    """The courier's pre-trip check fails the safety equipment (critical) and the body (minor), each with its
    photo: out of service."""
    report = submit(device, templates["vehicle.pre_trip"], vehicle_answers(
        safety_equipment={"value": False, "photo": photo}, body_clean={"value": False, "photo": photo}),
        vehicle_id=van)
    assert device.push([report])["results"][0]["status"] == "applied"


def _defects(client, make, van: str) -> dict:
    """The van's open defects by item, as the API reads them."""
    read = client.get(f"/api/v1/dispatch/vehicles/{van}", headers=make.headers("dispatcher")).json
    return {d["item"]: d for d in read["defects"]} | {"status": read["status"]}


def test_maintenance_certifies_a_repair_and_the_van_returns_to_service(client, make, console_as, csrf_of,
                                                                       device, templates, van, photo, courier):
    """The out-of-service filter lists the grounded van with its defects; the mechanic certifies the critical
    repair and closes the minor one as needing none; the van is back in service; the repairs list shows both."""
    _grounded(device, templates, van, photo)
    mechanic = console_as("maintenance")
    listed = mechanic.get("/console/vans?status=out_of_service")
    assert listed.status_code == 200 and f"/console/vans/{van}" in listed.text
    assert f"/console/vans/{van}" not in mechanic.get("/console/vans?status=in_service").text
    # Names, plates and words, not ids and codes (issue 24): the driver by name, the check kind in words.
    plate = client.get(f"/api/v1/dispatch/vehicles/{van}", headers=make.headers("dispatcher")).json["plate"]
    assert f"<td>{courier['name']}</td>" in listed.text and courier["id"] not in listed.text
    van_page = mechanic.get(f"/console/vans/{van}").text
    assert "出车前车辆检查" in van_page and ">vehicle.pre_trip<" not in van_page and courier["id"] not in van_page
    assert "safety_equipment" not in van_page.split('id="van-reports"')[1]  # failed items by their labels
    assert f">{plate}</a></td>" in mechanic.get("/console/vans/defects").text
    defects = _defects(client, make, van)
    page = f"/console/vans/{van}"
    shown = mechanic.get(page).text
    assert f"{page}/defects/{defects['safety_equipment']['id']}/repair" in shown
    token = csrf_of(mechanic, page)
    fixed = mechanic.post(f"{page}/defects/{defects['safety_equipment']['id']}/repair",
                          data={"csrf_token": token, "note": "New extinguisher fitted."})
    assert fixed.status_code == 303 and "done=repaired" in fixed.headers["Location"]
    fine = mechanic.post(f"{page}/defects/{defects['body_clean']['id']}/no_repair_needed",
                         data={"csrf_token": token, "reason": "Washed, nothing broken."})
    assert fine.status_code == 303
    assert _defects(client, make, van) == {"status": "in_service"}
    repairs = mechanic.get("/console/vans/defects?status=repaired")
    assert "New extinguisher fitted." in repairs.text and mechanic.username in repairs.text
    again = mechanic.post(f"{page}/defects/{defects['safety_equipment']['id']}/repair",
                          data={"csrf_token": token, "note": "Again."})
    assert again.status_code == 409 and "这个缺陷已经关闭" in again.text


def test_dispatchers_read_the_vans_but_do_not_repair_and_others_are_refused(client, make, console_as, csrf_of,
                                                                            device, templates, van, photo):
    """A dispatcher reads the vans and defects without the repair forms, and is refused the repair (403);
    integration staff see nothing; a post without the token is 400; a blank note names the field."""
    _grounded(device, templates, van, photo)
    defect = _defects(client, make, van)["safety_equipment"]
    dispatcher = console_as("dispatcher")
    page = f"/console/vans/{van}"
    shown = dispatcher.get(page)
    assert shown.status_code == 200 and "/repair" not in shown.text
    assert dispatcher.get("/console/vans/defects").status_code == 200
    refused = dispatcher.post(f"{page}/defects/{defect['id']}/repair",
                              data={"csrf_token": csrf_of(dispatcher, page), "note": "I fixed it."})
    assert refused.status_code == 403
    assert console_as("integration").get("/console/vans").status_code == 403
    mechanic = console_as("maintenance")
    assert mechanic.post(f"{page}/defects/{defect['id']}/repair", data={"note": "x"}).status_code == 400
    blank = mechanic.post(f"{page}/defects/{defect['id']}/repair", data={"csrf_token": csrf_of(mechanic, page),
                                                                         "note": "   "})
    assert blank.status_code == 422 and "note: " in blank.text
    assert _defects(client, make, van)["status"] == "out_of_service"
    assert mechanic.get("/console/vans/v-nonesuch").status_code == 404
    assert mechanic.get("/console/vans?status=parked").status_code == 422


def test_a_courier_day_with_a_failed_van_check_shows_the_items_in_words(client, make, console_as, device,
                                                                        templates, van, photo, courier):
    """A pre-trip check pushed by the handheld, failing two items: the courier's day answers (it was a 500) and
    names them by their labels in the page's language, not their codes; the vans pages too."""
    from server.clock import local_date, utcnow

    _grounded(device, templates, van, photo)
    dispatcher = console_as("dispatcher")
    day = f"/console/couriers/{courier['id']}/day?date={local_date(utcnow()).isoformat()}"
    zh = dispatcher.get(day)
    assert zh.status_code == 200
    shifts = zh.text[zh.text.index('id="shifts"'):]
    assert "未通过" in shifts and "安全设备完好有效" in shifts and "safety_equipment" not in shifts
    assert "Safety equipment working" not in shifts
    en = dispatcher.get(day + "&lang=en").text
    assert "Safety equipment working" in en[en.index('id="shifts"'):]
    for page in (f"/console/vans/{van}", "/console/vans?status=out_of_service", "/console/vans/defects"):
        sep = "&" if "?" in page else "?"
        shown = dispatcher.get(page + sep + "lang=zh").text
        assert "安全设备完好有效" in shown and "Safety equipment working" not in shown, page
        assert "Safety equipment working" in dispatcher.get(page + sep + "lang=en").text

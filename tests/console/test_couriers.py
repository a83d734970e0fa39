"""The couriers' pages (issue 25's walk): dispatch finds a courier, enrolls a handheld from the console (the code
grouped for reading aloud, its expiry in depot time, a QR of the app's link drawn into the page) and revokes one."""
import logging
import re

from sqlalchemy import select

from server.clock import local_zone
from server.extensions import db
from server.models import AuditEntry, Device as DeviceRow, Enrollment
from server.qr import qr_image
from tests.sync.conftest import PROTOCOL


def _courier_with_van(make) -> tuple[dict, dict]:
    """A courier and the van dispatch gave them."""
    courier = make.courier(depot="SH01", name="Qian Hao")
    van = make.vehicle()
    make.client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"courier_id": courier["id"]},
                      headers=make.headers("dispatcher"))
    return courier, van


def _pull(client, device: dict) -> int:
    """The status of a pull with the device's token."""
    return client.get("/api/v1/sync/pull", headers={"Authorization": f"Bearer {device['token']}", **PROTOCOL}
                      ).status_code


def _issued(html: str) -> tuple[str, str, str]:
    """(the code as shown, the expiry as shown, the app link) of the enrollment on the page."""
    code = re.search(r'id="enroll-code">([^<]+)<', html).group(1)
    expires = re.search(r'id="enroll-expires">([^<]+)<', html).group(1)
    link = re.search(r'id="enroll-link">([^<]+)<', html).group(1).replace("&amp;", "&")
    return code, expires, link


def test_the_couriers_list_shows_each_couriers_handhelds_grade_and_van(make, console_as):
    """The roster links each courier's page, with their van's plate, their grade and their handhelds in words."""
    courier, van = _courier_with_van(make)
    make.device(courier, name="Redmi 12")
    dispatcher = console_as("dispatcher")
    listed = dispatcher.get("/console/couriers")
    assert listed.status_code == 200
    row = listed.text[listed.text.index(f'id="courier-{courier["id"]}"'):]
    row = row[:row.index("</tr>")]
    assert f'href="/console/couriers/{courier["id"]}">Qian Hao</a>' in row
    assert van["plate"] in row and "Redmi 12" in row and "使用中" in row and "grade-A" in row
    assert 'href="/console/couriers"' in listed.text  # in the navigation
    assert "Redmi 12" not in dispatcher.get("/console/couriers?active=false").text
    assert console_as("quality").get("/console/couriers").status_code == 200
    assert console_as("maintenance").get("/console/couriers").status_code == 403


def test_dispatch_enrolls_a_handheld_from_the_courier_page(client, make, console_as, csrf_of, lines, caplog):
    """Enroll: the one-time code in groups of four, valid until a depot time, and a QR (SVG drawn into the page,
    no address carrying the code) of `<public url>/app/#/enroll?code=CODE`; the code works once through the API
    as shown (spaces and all); it is in no log line."""
    caplog.set_level(logging.DEBUG)
    courier, _ = _courier_with_van(make)
    dispatcher = console_as("dispatcher")
    page = f"/console/couriers/{courier['id']}"
    shown = dispatcher.get(page).text
    assert "注册手持终端" in shown and 'id="enrollment"' not in shown
    answer = dispatcher.post(f"{page}/enrollments", data={"csrf_token": csrf_of(dispatcher, page)})
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    code, expires, link = _issued(html)
    assert re.fullmatch(r"[A-Z0-9]{4} [A-Z0-9]{4} [A-Z0-9]{2}", code)
    plain = code.replace(" ", "")
    assert link == f"http://localhost/app/#/enroll?code={plain}"
    # The QR drawn is the app link's (the same SVG path the QR service draws for it), with a text alternative.
    path = re.search(rb'<path d="([^"]+)"', qr_image(link, "svg")[0]).group(1).decode()
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert f'd="{path}"' in svg and 'role="img"' in svg and "aria-label=" in svg
    assert plain not in re.sub(r'id="enroll-(code|link)">[^<]+<', "", html)  # not in an address or an image's
    # Expiry in depot time: the enrollment's, as the depot's clock reads it.
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.courier_id == courier["id"]))
    assert expires == enrollment.expires_at.astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")
    # The code, as read aloud, enrolls a handheld once (the API's service).
    enrolled = client.post("/api/v1/devices/enroll", json={"code": code, "device_name": "Honor X8"})
    assert enrolled.status_code == 201 and enrolled.json["courier_id"] == courier["id"]
    assert client.post("/api/v1/devices/enroll", json={"code": plain, "device_name": "again"}).status_code == 404
    assert "Honor X8" in dispatcher.get(page).text
    logged = "\n".join(lines) + "\n".join(str(r.__dict__) for r in caplog.records)
    assert plain not in logged and code not in logged


def test_enrolling_is_dispatchs_refused_without_the_token_and_for_an_inactive_courier_in_words(
        client, make, console_as, csrf_of):
    """No token: 400, no code issued; quality reads the page without the button and is refused the post; an
    inactive courier: the refusal in words on their page, no code; an unknown courier: 404."""
    courier, _ = _courier_with_van(make)
    page = f"/console/couriers/{courier['id']}"
    dispatcher = console_as("dispatcher")
    assert dispatcher.post(f"{page}/enrollments").status_code == 400
    quality = console_as("quality")
    read = quality.get(page)
    assert read.status_code == 200 and "enroll-button" not in read.text and "revoke-" not in read.text
    assert quality.post(f"{page}/enrollments", data={"csrf_token": csrf_of(quality, page)}).status_code == 403
    assert db.session.scalar(select(Enrollment).where(Enrollment.courier_id == courier["id"])) is None
    client.post(f"/api/v1/dispatch/couriers/{courier['id']}/deactivate", headers=make.headers("dispatcher"))
    refused = dispatcher.post(f"{page}/enrollments", data={"csrf_token": csrf_of(dispatcher, page)})
    assert refused.status_code == 422
    assert "这位快递员已停用，不能注册手持终端" in refused.text and 'id="enroll-code"' not in refused.text
    assert "courier_inactive" not in refused.text
    english = dispatcher.post(f"{page}/enrollments?lang=en", data={"csrf_token": csrf_of(dispatcher, page)})
    assert "This courier is inactive and cannot enroll a handheld" in english.text
    assert db.session.scalar(select(Enrollment).where(Enrollment.courier_id == courier["id"])) is None
    missing = dispatcher.post("/console/couriers/c_none/enrollments", data={"csrf_token": csrf_of(dispatcher, page)})
    assert missing.status_code == 404


def test_dispatch_revokes_a_handheld_audited_and_not_another_couriers(client, make, console_as, csrf_of):
    """Revoke from the courier's page: 303 back with the notice; the token is refused from then on; audited with
    the staff user; a device of another courier under this courier's address is 404 and stays enrolled; again is
    harmless."""
    courier, _ = _courier_with_van(make)
    other = make.courier()
    mine, theirs = make.device(courier, name="Redmi 12"), make.device(other, name="Other phone")
    page = f"/console/couriers/{courier['id']}"
    dispatcher = console_as("dispatcher")
    token = csrf_of(dispatcher, page)
    assert f"revoke-{mine['device_id']}" in dispatcher.get(page).text
    assert _pull(client, mine) == 200
    wrong = dispatcher.post(f"{page}/devices/{theirs['device_id']}/revoke", data={"csrf_token": token})
    assert wrong.status_code == 404
    assert db.session.get(DeviceRow, theirs["device_id"]).revoked_at is None
    assert dispatcher.post(f"{page}/devices/{mine['device_id']}/revoke").status_code == 400
    done = dispatcher.post(f"{page}/devices/{mine['device_id']}/revoke", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"{page}?done=revoked")
    after = dispatcher.get(done.headers["Location"]).text
    assert "终端已注销" in after and f"revoke-{mine['device_id']}" not in after and "已注销" in after
    assert _pull(client, mine) == 401 and _pull(client, theirs) == 200
    entries = list(db.session.scalars(select(AuditEntry).where(AuditEntry.entity_id == mine["device_id"],
                                                               AuditEntry.action == "device.revoke")))
    assert len(entries) == 1 and entries[0].staff_id is not None
    again = dispatcher.post(f"{page}/devices/{mine['device_id']}/revoke", data={"csrf_token": token})
    assert again.status_code == 303
    assert len(list(db.session.scalars(select(AuditEntry).where(AuditEntry.entity_id == mine["device_id"],
                                                                AuditEntry.action == "device.revoke")))) == 1

"""Issue 25's walk in headless Chromium: a dispatcher finds the courier, enrolls a handheld from the console (the
code read aloud in groups, its QR drawn in the page) and revokes one; the courier's day with a failed van check; a
refused task's timeline in words. At 360 px and on a desktop; accessible; no CSP violation."""
from selenium.webdriver.common.by import By  # noqa: I001

from server.auth import SYSTEM
from server.clock import local_date, utcnow
from server.services import staff
from tests.browser.conftest import (assert_accessible, assert_no_csp_violation, console_login, follow,
                                    require_browser, screenshot, text_of)
from tests.console.test_van_pages import _grounded
from tests.sync import conftest as sync, test_checklists as checks
from tests.sync.test_handover import AT_DOOR, codes, upload

require_browser()

# The handheld's fixtures: a courier with a van, their enrolled device, the default checklists, a photo uploaded.
courier, device, templates, van, photo = sync.courier, sync.device, sync.templates, checks.van, checks.photo
PASSWORD = "correct horse battery staple"
PHONE, DESKTOP = (360, 1400), (1280, 1000)


def _shots(page, tmp_path, name: str, part: str | None = None) -> None:
    """Screenshots at 360 px and on a desktop (scrolled to the part, if named); at 360 px nothing scrolls
    sideways."""
    for size, suffix in ((PHONE, "360"), (DESKTOP, "desktop")):
        page.set_window_size(*size)
        if part:
            page.execute_script("document.getElementById(arguments[0]).scrollIntoView()", part)
        screenshot(page, tmp_path, f"{name}-{suffix}")
    page.set_window_size(*PHONE)
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_enroll_and_revoke_a_handheld_the_day_and_a_timeline(page, live_server, make, device, templates, van, photo,
                                                              courier, tmp_path):
    """From the couriers list to the courier's page: enroll (code, expiry, QR of the app link), revoke the old
    handheld; the day with the failed pre-trip check's items by their labels; a refused task's timeline."""
    user, _ = staff.create(username="li.na", role="dispatcher")
    staff.set_password(actor=SYSTEM, staff_id=user.id, password=PASSWORD)
    _grounded(device, templates, van, photo)
    task = make.task(courier=courier)
    assert codes(device.push([
        device.op("stop.arrive", task["id"], AT_DOOR),
        device.op("pod.inspect", task["id"], {"items": [{"parcel_no": p["parcel_no"], "counted": p["count"],
                                                         "condition": "damaged"} for p in task["parcels"]],
                                              "customer_accepted": False, "photos": [upload(device)]}),
        device.op("pod.refuse", task["id"], {"reason": "damaged"})])["results"]) == [("applied", None)] * 3
    page.set_window_size(*PHONE)
    console_login(page, live_server, "li.na", PASSWORD)
    page.get_log("browser")

    page.get(f"{live_server}/console/couriers")
    assert courier["name"] in text_of(page, f"courier-{courier['id']}")
    assert_accessible(page)
    _shots(page, tmp_path, "couriers")
    follow(page, page.find_element(By.LINK_TEXT, courier["name"]))
    assert page.current_url.endswith(f"/console/couriers/{courier['id']}")
    follow(page, page.find_element(By.ID, "enroll-button"))
    code = text_of(page, "enroll-code")
    assert len(code.replace(" ", "")) == 10 and code.count(" ") == 2
    assert text_of(page, "enroll-link").endswith(f"/app/#/enroll?code={code.replace(' ', '')}")
    qr = page.find_element(By.CSS_SELECTOR, "svg.qr")
    assert qr.size["width"] >= 200 and qr.size["width"] == qr.size["height"]
    assert_accessible(page)
    _shots(page, tmp_path, "courier-enrolled")
    assert_no_csp_violation(page)
    follow(page, page.find_element(By.ID, f"revoke-{device.id}"))
    assert "终端已注销" in text_of(page, "done") and not page.find_elements(By.ID, f"revoke-{device.id}")
    assert_accessible(page)
    _shots(page, tmp_path, "courier-revoked")

    page.get(f"{live_server}/console/couriers/{courier['id']}/day?date={local_date(utcnow()).isoformat()}")
    shifts = text_of(page, "shifts")
    assert "安全设备完好有效" in shifts and "safety_equipment" not in shifts
    assert_accessible(page)
    _shots(page, tmp_path, "courier-day-failed-check", "shifts")

    page.get(f"{live_server}/console/tasks/{task['id']}")
    timeline = text_of(page, "timeline")
    assert "原因: 货物破损" in timeline and "damaged" not in timeline and "已生效" in timeline
    assert_accessible(page)
    _shots(page, tmp_path, "task-timeline-words", "timeline")
    assert_no_csp_violation(page)

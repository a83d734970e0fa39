"""Attacks on the courier app in headless Chromium (issue 25, helper attack25): markup in the server's data and in the
courier's own notes stays text (nothing runs, no CSP violation); a phone handed to another courier with an unsent
note: the note is held on the phone, shown, and never reaches the server under the second courier's device."""
import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import OpLog
from tests.browser.conftest import assert_no_csp_violation, require_browser, screenshot
from tests.browser.courier_app import (app_link, courier_with_day, enrollment_code, require_app, set_offline,
                                        use_build)

require_browser()
require_app()

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PWN = "window.__pwned = (window.__pwned || 0) + 1"


def _until(page, check, timeout: float = 30):
    return WebDriverWait(page, timeout, ignored_exceptions=(WebDriverException,)).until(check)


def _wait(page, css: str, timeout: float = 30):
    return _until(page, lambda d: d.find_elements(By.CSS_SELECTOR, css), timeout)[0]


def _enroll(page, live_server: str, code: str) -> None:
    page.get(app_link(live_server, code))
    _wait(page, "#enroll-code")
    page.execute_script("document.getElementById('enroll-code').value = arguments[0]", code)
    page.find_element(By.ID, "enroll-submit").click()
    _wait(page, "#open-tasks")


def _notes_at_server() -> int:
    db.session.expire_all()
    try:
        return db.session.scalar(select(func.count()).select_from(OpLog).where(OpLog.type == "task.note"))
    finally:
        db.session.rollback()


@pytest.fixture
def narrow(page):
    page.set_window_size(360, 780)
    yield page
    page.set_window_size(414, 896)


def test_markup_in_the_data_and_in_notes_stays_text(narrow, live_server, app, make, tmp_path):
    page = narrow
    use_build(app)
    day = courier_with_day(make, tasks=0)
    hostile = {
        "recipient": {"name": f"<img src=x onerror=\"{PWN}\">", "phone": "13912345678",
                      "address": f"<script>{PWN}</script>\"><a href=\"javascript:{PWN}\">x</a>", "lat": 31.23, "lon": 121.47},
        "parcels": [{"parcel_no": "PX-1", "description": f"<svg onload=\"{PWN}\">", "count": 1}],
        "gift_description": f"<iframe src=\"javascript:{PWN}\"></iframe>",
    }
    task = make.task(courier=day["courier"], **hostile)
    _enroll(page, live_server, day["code"])
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    # The day list redraws itself on every sync's news (the first rounds after enrolling): its card is found again.
    _until(page, lambda d: "<iframe" in d.find_element(By.CSS_SELECTOR, "#open-tasks li").text)  # the gift
    _until(page, lambda d: d.find_element(By.CSS_SELECTOR, "#open-tasks li a").click() or True)
    _wait(page, "#map")
    view = page.find_element(By.ID, "view")
    assert "<script>" in view.text and "<svg onload=" in view.text
    # The courier types markup too: a note is text on the page.
    page.find_element(By.ID, "note-text").send_keys(f"<img src=x onerror=\"{PWN}\">")
    page.find_element(By.CSS_SELECTOR, "#note-form button[type=submit]").click()
    _until(page, lambda d: "<img src=x" in d.find_element(By.ID, "task-ops").text
           or "<img src=x" in d.find_element(By.ID, "notes").text)
    screenshot(page, tmp_path, "app-attack-markup")
    # A long value without a space (an address, a note) wraps: the page stays 360 px wide.
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    # Nothing parsed as markup, nothing ran; the map and the dialer links carry no script.
    assert page.find_elements(By.CSS_SELECTOR, "#view img[src='x'], #view script, #view svg, #view iframe") == []
    assert page.execute_script("return window.__pwned === undefined")
    assert page.find_element(By.ID, "map").get_attribute("href").startswith("geo:")
    assert page.find_element(By.ID, "call").get_attribute("href") == "tel:13912345678"
    assert_no_csp_violation(page)
    assert task["id"]


def test_a_phone_handed_over_keeps_the_first_couriers_note_unsent(narrow, live_server, app, make, tmp_path):
    page = narrow
    use_build(app)
    first = courier_with_day(make, tasks=1)
    second = courier_with_day(make, tasks=1)
    _enroll(page, live_server, first["code"])
    _until(page, lambda d: d.execute_script("return !!(navigator.serviceWorker && navigator.serviceWorker.controller)"))
    page.find_element(By.CSS_SELECTOR, "#open-tasks li a").click()
    _wait(page, "#note-form")
    set_offline(page, True)
    try:
        page.find_element(By.ID, "note-text").send_keys("first courier's note, written offline")
        page.find_element(By.CSS_SELECTOR, "#note-form button[type=submit]").click()
        _until(page, lambda d: "待同步 1" in d.find_element(By.ID, "bar-queue").text)
        # The phone goes to the second courier: this device is forgotten (the unsent note stays) …
        page.execute_script("location.hash = '/settings'")
        _wait(page, "#forget")
        page.execute_script("window.confirm = () => true")
        page.find_element(By.ID, "forget").click()
        _wait(page, "#enroll-code")
    finally:
        set_offline(page, False)
    # … and enrolled for the second courier, online.
    page.execute_script("document.getElementById('enroll-code').value = arguments[0]", second["code"])
    page.find_element(By.ID, "enroll-submit").click()
    _wait(page, "#open-tasks")
    page.execute_script("location.hash = '/sync'")
    _wait(page, "#sync-run").click()
    held = _wait(page, "#held-ops li")
    assert "未发送（其他快递员）" in held.text
    assert "其他快递员的未发送操作 1" in page.find_element(By.ID, "view").text
    assert "待发送 0" in page.find_element(By.ID, "view").text
    screenshot(page, tmp_path, "app-attack-held")
    assert _notes_at_server() == 0
    assert_no_csp_violation(page)
    # The first courier takes the phone back: the note goes, under their own new device.
    _wait(page, "#sync-run")
    page.execute_script("location.hash = '/enroll'")
    code = enrollment_code(make, first["courier"])
    _wait(page, "#enroll-code")
    page.execute_script("document.getElementById('enroll-code').value = arguments[0]", code)
    page.find_element(By.ID, "enroll-submit").click()
    _wait(page, "#open-tasks")
    page.execute_script("location.hash = '/sync'")
    _wait(page, "#sync-run").click()
    _until(page, lambda d: _notes_at_server() == 1)
    db.session.expire_all()
    try:
        row = db.session.scalars(select(OpLog).where(OpLog.type == "task.note")).one()
        assert row.courier_id == first["courier"]["id"] and row.seq == 1
    finally:
        db.session.rollback()

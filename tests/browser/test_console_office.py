"""The office's console pages in headless Chromium: acknowledging and resolving an exception in place (htmx), a
courier's day with cash reconciling to the fen and its reasons in words, a CSV downloaded on the session cookie and
read back; at 360 px (rows as cards) and on a desktop; accessible; no CSP violation in the browser's log."""
import csv
import io
import shutil
import tempfile
import urllib.request

import pytest

from server.auth import SYSTEM
from server.clock import local_date, utcnow
from server.services import staff
from tests.api.test_office import _pay, _remit
from tests.browser import conftest
from tests.browser.conftest import assert_accessible, console_login, require_browser, screenshot, text_of
from tests.sync.conftest import Device

require_browser()

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PASSWORD = "correct horse battery staple"
PHONE, DESKTOP = (360, 1400), (1280, 1000)


@pytest.fixture(scope="module")
def browser():
    """The conftest's Chromium, keeping the page's console messages (CSP reports among them) for get_log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fieldops-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = conftest.CHROMIUM
    for flag in conftest._FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=conftest.CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _no_csp_violation(page) -> None:
    """Nothing in the browser's log since the last look mentions the Content Security Policy, nor any error."""
    log = page.get_log("browser")
    assert not [entry for entry in log if "Content Security Policy" in entry["message"]
                or entry["level"] == "SEVERE"], log


def _shots(page, tmp_path, name: str) -> None:
    """Screenshots at 360 px (tall, to see the whole page) and on a desktop."""
    for size, suffix in ((PHONE, "360"), (DESKTOP, "desktop")):
        page.set_window_size(*size)
        screenshot(page, tmp_path, f"{name}-{suffix}")
    page.set_window_size(*PHONE)


def _fits(page) -> None:
    """At 360 px nothing scrolls sideways: the page is no wider than the window."""
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_the_office_pages(page, live_server, app, client, make, tmp_path):
    """A day through the push path: the queue in words, acknowledging and resolving in place, the day's cash and
    reasons, the depot, the ledger CSV."""
    user, _ = staff.create(username="wang.fang", role="dispatcher")
    staff.set_password(actor=SYSTEM, staff_id=user.id, password=PASSWORD)
    courier = make.courier(depot="SH01", name="Zhang Wei")
    device = Device(client, make.device(courier))
    today = local_date(utcnow()).isoformat()
    _pay(device, make, courier, 4990)
    _pay(device, make, courier, 1234)
    _remit(client, make, courier, today, 8600)
    page.set_window_size(*PHONE)
    console_login(page, live_server, "wang.fang", PASSWORD)
    page.get_log("browser")

    page.get(f"{live_server}/console/exceptions")
    assert_accessible(page)
    _fits(page)
    rows = page.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    assert len(rows) == 2 and "未做班前检查就作业" in rows[0].text and "Zhang Wei" in rows[0].text
    _shots(page, tmp_path, "office-exceptions")
    button = page.find_element(By.CSS_SELECTOR, "button[id^=ack-]")
    row_id = button.get_attribute("id").removeprefix("ack-")
    page.execute_script("window.fieldopsMarker = 1")  # survives only if the page is not reloaded
    button.click()
    WebDriverWait(page, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda p: "已受理" in text_of(p, f"exception-{row_id}"))  # the row is swapped under the wait
    assert page.execute_script("return window.fieldopsMarker") == 1 and page.current_url.endswith("/exceptions")
    assert not page.find_elements(By.ID, f"ack-{row_id}")
    page.find_element(By.ID, f"note-{row_id}").send_keys("Shift started late; talked to him")
    page.find_element(By.ID, f"resolve-{row_id}").click()
    WebDriverWait(page, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda p: "已解决" in text_of(p, f"exception-{row_id}"))  # the row is swapped under the wait
    assert "talked to him" in text_of(page, f"exception-{row_id}")
    assert page.execute_script("return window.fieldopsMarker") == 1
    assert_accessible(page)
    _shots(page, tmp_path, "office-exceptions-resolved")
    _no_csp_violation(page)
    page.get(f"{live_server}/console/exceptions?status=resolved")
    assert "已解决" in text_of(page, f"exception-{row_id}")

    page.get(f"{live_server}/console/couriers/{courier['id']}/day?date={today}")
    assert (text_of(page, "collected"), text_of(page, "remitted"), text_of(page, "difference")) == (
        "¥86.24", "¥86.00", "¥0.24")
    assert "未做班前检查就作业" in text_of(page, "violations") and "扣" in text_of(page, "grade")
    assert_accessible(page)
    _fits(page)
    _shots(page, tmp_path, "office-day")

    page.get(f"{live_server}/console/depots/SH01/cash?date={today}&lang=en")
    assert "¥0.24" in page.find_element(By.ID, "totals").text
    assert_accessible(page)
    _fits(page)
    _shots(page, tmp_path, "office-depot-cash")
    _no_csp_violation(page)

    page.get(f"{live_server}/console/depots/cash?depot=XX99&date={today}&lang=zh")  # unknown: refused on the page, form kept
    assert "没有快递员在这个网点工作" in page.find_element(By.CSS_SELECTOR, '[role="alert"]').text
    assert [o.text for o in page.find_elements(By.CSS_SELECTOR, "#depot option")] == ["SH01"]
    assert_accessible(page)
    _shots(page, tmp_path, "office-depot-unknown")
    _no_csp_violation(page)
    page.get(f"{live_server}/console/depots/SH01/cash?date={today}&lang=en")

    href = page.find_element(By.ID, "ledger-csv").get_attribute("href")
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.get_cookies())
    with urllib.request.urlopen(urllib.request.Request(href, headers={"Cookie": cookies}), timeout=30) as answer:
        assert answer.headers.get_content_type() == "text/csv"
        rows = list(csv.DictReader(io.StringIO(answer.read().decode("utf-8-sig"))))
    assert sorted(int(r["amount"]) for r in rows) == [2434, 6190, 8600]


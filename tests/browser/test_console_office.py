"""The office's console pages in headless Chromium: acknowledging an exception, a courier's day with cash
reconciling to the fen, a CSV downloaded on the session cookie and read back; accessible; screenshots."""
import csv
import io
import urllib.request

from server.auth import SYSTEM
from server.clock import local_date, utcnow
from server.services import staff
from tests.api.test_office import _pay, _remit
from tests.browser.conftest import assert_accessible, console_login, follow, require_browser, screenshot, text_of
from tests.sync.conftest import Device

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402

PASSWORD = "correct horse battery staple"


def test_the_office_pages(page, live_server, app, client, make, tmp_path):
    """A day through the push path: the queue, acknowledging, the day's cash, the depot, the ledger CSV."""
    user, _ = staff.create(username="wang.fang", role="dispatcher")
    staff.set_password(actor=SYSTEM, staff_id=user.id, password=PASSWORD)
    courier = make.courier(depot="SH01", name="Zhang Wei")
    device = Device(client, make.device(courier))
    today = local_date(utcnow()).isoformat()
    _pay(device, make, courier, 4990)
    _pay(device, make, courier, 1234)
    _remit(client, make, courier, today, 8600)
    console_login(page, live_server, "wang.fang", PASSWORD)

    page.get(f"{live_server}/console/exceptions")
    assert_accessible(page)
    screenshot(page, tmp_path, "office-exceptions")
    button = page.find_element(By.CSS_SELECTOR, "button[id^=ack-]")
    row_id = button.get_attribute("id").removeprefix("ack-")
    follow(page, button)
    page.get(f"{live_server}/console/exceptions?status=acknowledged")
    assert "已受理" in text_of(page, f"exception-{row_id}")
    screenshot(page, tmp_path, "office-exceptions-acknowledged")

    page.get(f"{live_server}/console/couriers/{courier['id']}/day?date={today}")
    assert (text_of(page, "collected"), text_of(page, "remitted"), text_of(page, "difference")) == (
        "¥86.24", "¥86.00", "¥0.24")
    assert_accessible(page)
    screenshot(page, tmp_path, "office-day")

    page.get(f"{live_server}/console/depots/SH01/cash?date={today}&lang=en")
    assert "¥0.24" in page.find_element(By.ID, "totals").text
    assert_accessible(page)
    screenshot(page, tmp_path, "office-depot-cash")

    href = page.find_element(By.ID, "ledger-csv").get_attribute("href")
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.get_cookies())
    with urllib.request.urlopen(urllib.request.Request(href, headers={"Cookie": cookies}), timeout=30) as answer:
        assert answer.headers.get_content_type() == "text/csv"
        rows = list(csv.DictReader(io.StringIO(answer.read().decode("utf-8-sig"))))
    assert sorted(int(r["amount"]) for r in rows) == [2434, 6190, 8600]

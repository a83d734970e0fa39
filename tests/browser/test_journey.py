"""The customer page's parcel journey in headless Chromium (issue 22): events and times, in Chinese and English,
nothing the scans say of people (notes, couriers) shown."""
from datetime import datetime, timedelta, timezone

from server.clock import local_zone
from tests.browser.conftest import follow, require_browser, text_of
from tests.browser.test_customer_page import issue
from tests.sync.conftest import SHANGHAI, Device
from tests.sync.test_scans import scan, up, upstream

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)

SCREENSHOT = "/tmp/fieldops-journey-{lang}.png"


def test_the_journey_newest_first_in_both_languages(page, live_server, client, make, server_clock):
    """Arrived at the depot (upstream, 3 h ago), out for delivery (the courier's scan, 1 h ago, with a note naming
    the customer's phone): newest first, depot-local times, place-free wording; the note is not on the page. The
    task's next-day promise is shown in depot time."""
    courier = make.courier()
    with server_clock.at(server_clock.now() - timedelta(hours=6)):
        collected = (server_clock.now() - timedelta(hours=1)).replace(microsecond=0)
        task = make.task(courier=courier, recipient={"name": "李雷", "phone": "13912345678",
                                                     "address": "上海市黄浦区南京路88号"},
                         service_product="next_day", collected_at=collected.isoformat())
        device = Device(client, make.device(courier))
    parcel_no = task["parcels"][0]["parcel_no"]
    depot_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
    upstream(make, up("J-1", parcel_no, at=depot_at))
    op = device.op("parcel.scan", task["id"], scan(parcel_no, note="call 13912345678 at the gate"))
    out_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    op["device_time"] = out_at.astimezone(SHANGHAI).isoformat()
    assert device.push([op])["results"][0]["status"] == "applied"
    page.get(live_server + issue(client, make, task["id"]))
    assert "快件跟踪" in text_of(page, "journey")
    rows = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#journey li.scan")]
    local = [at.astimezone(local_zone()) for at in (out_at, depot_at)]
    assert rows == [f"{local[0].month}月{local[0].day}日 {local[0]:%H:%M} 快递员正在派送 {parcel_no}",
                    f"{local[1].month}月{local[1].day}日 {local[1]:%H:%M} 快件已到达派送网点 {parcel_no}"]
    assert "13912345678" not in page.page_source and "gate" not in page.page_source
    promised = datetime.fromisoformat(task["promise"]["promised_at"]).astimezone(local_zone())
    assert (promised.hour, promised.minute) == (0, 0)  # next-day: due at a depot midnight, said as the day before's end
    last_day = promised - timedelta(days=1)
    assert text_of(page, "promised") == f"{last_day.month}月{last_day.day}日 24:00前"
    page.save_screenshot(SCREENSHOT.format(lang="zh"))
    follow(page, page.find_element(By.ID, "switch-lang"))
    assert "Tracking" in text_of(page, "journey") and "Promised delivery" in text_of(page, "journey")
    assert text_of(page, "promised") == f"by the end of {last_day:%a %d %b}"
    rows = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#journey li.scan")]
    assert rows == [f"{local[0]:%a %d %b %H:%M} Out for delivery {parcel_no}",
                    f"{local[1]:%a %d %b %H:%M} Arrived at the delivery depot {parcel_no}"]
    page.save_screenshot(SCREENSHOT.format(lang="en"))


def test_no_scans_yet_says_so(page, live_server, client, make):
    """A parcel not yet scanned: the journey says there is nothing yet; a task without a promise shows none."""
    task = make.task()
    page.get(live_server + issue(client, make, task["id"]) + "?lang=en")
    assert text_of(page, "no-scans") == "No tracking events yet."
    assert not page.find_elements(By.ID, "promised")

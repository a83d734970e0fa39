"""The depot's time zone comes from the server: with FIELDOPS_TIMEZONE set to Europe/Berlin, the app's day list
shows each task's window in Berlin time (every pull page names the zone: docs/protocol.md, pull `timezone`)."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from tests.browser.conftest import require_browser, text_of
from tests.browser.courier_app import app_link, courier_with_day, require_app, use_build

require_browser()
require_app()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_the_day_list_shows_windows_in_the_servers_zone(page, live_server, app, make, monkeypatch):
    monkeypatch.setitem(app.config, "TIMEZONE", "Europe/Berlin")
    use_build(app)
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(hours=2)
    end = start + timedelta(hours=2)
    day = courier_with_day(make, tasks=0)
    make.task(courier=day["courier"], window={"start": start.isoformat(), "end": end.isoformat()},
              waybill_no="WB-BERLIN")
    page.get(app_link(live_server, day["code"]))
    WebDriverWait(page, 30).until(lambda d: d.find_elements(By.ID, "enroll-submit"))[0].click()
    WebDriverWait(page, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li[data-waybill='WB-BERLIN']"))
    item = page.find_element(By.CSS_SELECTOR, "li[data-waybill='WB-BERLIN']").text
    berlin = f"{start.astimezone(BERLIN):%H:%M}–{end.astimezone(BERLIN):%H:%M}"
    shanghai = f"{start.astimezone(SHANGHAI):%H:%M}–{end.astimezone(SHANGHAI):%H:%M}"
    assert berlin in item and shanghai not in item, item
    # A restart of the app keeps it (stored with the pull, read at boot).
    page.refresh()
    WebDriverWait(page, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li[data-waybill='WB-BERLIN']"))
    assert berlin in text_of(page, "open-tasks")

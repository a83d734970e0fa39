"""The console's board and task search in headless Chromium: the day's states, the board refreshing its columns
through htmx under the CSP, a search by surname with its results and CSV link; accessible, phone and desktop."""
from server.auth import SYSTEM
from server.services import staff
from tests.browser.conftest import assert_accessible, console_login, follow, require_browser, screenshot, text_of
from tests.console.test_board_search import day  # noqa: F401 - fixture
from tests.sync.conftest import courier, device  # noqa: F401 - fixtures

require_browser()

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PASSWORD = "correct horse battery staple"


def _signed_in(page, live_server, username: str, role: str = "dispatcher") -> None:
    """A staff user with a console password, signed in through the form."""
    user, _ = staff.create(username=username, role=role)
    staff.set_password(actor=SYSTEM, staff_id=user.id, password=PASSWORD)
    console_login(page, live_server, username, PASSWORD)


def _waybills(page, state: str) -> set[str]:
    """The waybills a board column lists."""
    return {a.text for a in page.find_elements(By.CSS_SELECTOR, f"#column-{state} li a")}


def test_the_board_shows_the_day_and_refreshes_itself(page, live_server, app, make, day, tmp_path):  # noqa: F811
    """Each state's task in its column; a task confirmed meanwhile moves when htmx re-fetches the columns."""
    _signed_in(page, live_server, "wang.fang")
    assert page.current_url == f"{live_server}/console/"
    assert page.find_element(By.TAG_NAME, "h1").text == "今日看板"
    for state in ("unconfirmed", "confirmed", "at_risk", "late", "missed"):
        assert _waybills(page, state) == {day[state]["waybill_no"]}, state
    assert page.execute_script("return typeof htmx === 'object'")
    assert_accessible(page)
    screenshot(page, tmp_path, "board-phone")
    try:
        page.set_window_size(1280, 900)
        screenshot(page, tmp_path, "board-desktop")
    finally:
        page.set_window_size(414, 896)
    # Dispatch confirms the unconfirmed one by phone (the API); the board's next refresh shows it confirmed.
    task = day["unconfirmed"]
    confirmed = make.client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/confirm",
                                 json={"window": task["window"]}, headers=make.headers("dispatcher"))
    assert confirmed.status_code == 200, confirmed.json
    # Not waiting 30 s: the very GET the board's every-30-s trigger sends, made now.
    page.execute_script("htmx.ajax('GET', document.getElementById('board').getAttribute('hx-get'), "
                        "{target: '#board', swap: 'innerHTML'})")
    # The columns are replaced under the wait: a link read as the swap lands is stale, and is read again.
    WebDriverWait(page, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda driver: task["waybill_no"] in _waybills(driver, "confirmed"))
    assert _waybills(page, "unconfirmed") == set()
    assert_accessible(page)


def test_search_by_surname_then_open_the_csv_link(page, live_server, app, make, tmp_path):
    """A dispatcher searches a surname in English: the results table, the filters kept, a CSV link to the same
    search."""
    from tests.api.test_task_search import _task
    _task(make, waybill="SF9001", name="王小明", phone="13800135678")
    _task(make, waybill="SF9002", name="王芳", phone="13800131234")
    _task(make, waybill="SF9003", name="欧阳娜娜", phone="13800139999")
    _signed_in(page, live_server, "li.na")
    page.get(f"{live_server}/console/tasks?lang=en")
    assert page.find_element(By.TAG_NAME, "h1").text == "Task search"
    page.find_element(By.ID, "search-q").send_keys("王")
    page.find_element(By.ID, "search-date").clear()
    page.execute_script("document.getElementById('search-date').value = ''")
    follow(page, page.find_element(By.ID, "search-submit"))
    rows = page.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert sorted(r.find_element(By.TAG_NAME, "a").text for r in rows) == ["SF9001", "SF9002"]
    assert page.find_element(By.ID, "search-q").get_attribute("value") == "王"
    link = page.find_element(By.ID, "csv-link").get_attribute("href")
    assert "format=csv" in link and "q=%E7%8E%8B" in link
    assert_accessible(page)
    screenshot(page, tmp_path, "search-phone-en")
    try:
        page.set_window_size(1280, 900)
        screenshot(page, tmp_path, "search-desktop-en")
    finally:
        page.set_window_size(414, 896)
    page.get(f"{live_server}/console/tasks?q=nobody&lang=zh")
    assert text_of(page, "no-results") == "没有找到任务。"

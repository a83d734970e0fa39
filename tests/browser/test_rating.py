"""The rating on the customer page in headless Chromium: after the handover, once, and the score shown."""
from sqlalchemy import select

from server.extensions import db
from server.models import Rating
from tests.api.test_ratings import deliver
from tests.browser.conftest import require_browser, submit, text_of
from tests.browser.test_customer_page import issue
from tests.sync.conftest import Device

require_browser()

from selenium.common.exceptions import WebDriverException  # noqa: E402  (only once the browser is known to be there)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def test_rate_once_after_the_handover(page, live_server, client, make):
    """Delivered: pick 4 stars and comment; the page thanks and shows 4; a second tab's post is refused politely."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    task = make.task(courier=courier)
    path = issue(client, make, task["id"])
    page.get(live_server + path)
    assert not page.find_elements(By.ID, "send-rating")
    deliver(device, task)
    page.get(live_server + path)
    assert text_of(page, "closed") == "这个订单已完成，无需再确认。"
    assert page.title == "你的订单" and page.find_element(By.TAG_NAME, "h1").text == "你的订单"
    page.find_element(By.ID, "score-4").click()
    page.find_element(By.ID, "rating-comment").send_keys("很准时")
    first = page.current_window_handle
    page.execute_script("window.open(arguments[0], 'second')", live_server + path)
    # A second tab, loaded before the first rating is sent; switching while it navigates can be
    # "aborted by navigation" in chromedriver: the wait tries again.
    WebDriverWait(page, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.switch_to.window("second") or True)
    assert text_of(page, "closed") and page.find_elements(By.ID, "send-rating")
    page.switch_to.window(first)
    submit(page, page.find_element(By.ID, "send-rating"))
    assert text_of(page, "message") == "评价已提交，谢谢！"
    assert text_of(page, "rated-score") == "4" and not page.find_elements(By.ID, "send-rating")
    page.switch_to.window("second")
    try:
        page.find_element(By.ID, "score-1").click()
        submit(page, page.find_element(By.ID, "send-rating"))
        assert text_of(page, "error") == "这个订单已经评价过了，谢谢你！"
    finally:
        page.close()
        page.switch_to.window(first)
    db.session.expire_all()
    assert [(r.score, r.comment) for r in db.session.scalars(select(Rating))] == [(4, "很准时")]

"""A task's messages to the customer in headless Chromium: the table, accessible, on a phone and a desktop."""
from server.auth import SYSTEM
from server.services import messages, staff
from tests.browser.conftest import assert_accessible, console_login, require_browser, screenshot
from tests.sync.test_customer_messages import confirm, gateway, later_window, sms  # noqa: F401  (fixtures)

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)

PASSWORD = "correct horse battery staple"


def test_the_messages_of_a_task_in_the_browser(page, live_server, client, make, sms, gateway, tmp_path):  # noqa: F811
    """A proposal the gateway refused (failed, retried later) and a confirmation sent, in Chinese and English."""
    user, _ = staff.create(username="wang.fang", role="dispatcher")
    staff.set_password(actor=SYSTEM, staff_id=user.id, password=PASSWORD)
    task = make.task()
    answer = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/reschedule",
                         json={"window": later_window(task), "reason": "depot closed", "customer_agreed": False},
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    confirm(client, make, task)
    gateway.script = [500]
    messages.deliver_due()
    console_login(page, live_server, "wang.fang", PASSWORD)
    page.get(f"{live_server}/console/tasks/{task['id']}/messages")
    rows = page.find_elements(By.CSS_SELECTOR, "#task-messages tbody tr")
    assert [r.get_attribute("data-status") for r in rows] == ["failed", "sent"]
    assert task["recipient"]["phone"] not in page.page_source
    assert_accessible(page)
    screenshot(page, tmp_path, "task-messages-phone")
    try:
        page.set_window_size(1280, 800)
        page.get(f"{live_server}/console/tasks/{task['id']}/messages?lang=en")
        assert "Messages to the customer" in page.find_element(By.ID, "task-messages-title").text
        assert_accessible(page)
        screenshot(page, tmp_path, "task-messages-desktop-en")
    finally:
        page.set_window_size(414, 896)

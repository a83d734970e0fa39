"""The customer page in headless Chromium: confirm, pick a slot, leave instructions, expiry, the language switch."""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from server.clock import utcnow
from server.customer_page import _window
from server.extensions import db
from server.models import CustomerLink
from tests.browser.conftest import follow, require_browser, submit, text_of
from tests.sync.conftest import Device

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)


def issue(client, make, task_id: str) -> str:
    """Issue a link through the API; returns its path."""
    response = client.post(f"/api/v1/dispatch/tasks/{task_id}/customer-link", json={},
                           headers=make.headers("dispatcher"))
    assert response.status_code == 201, response.json
    return response.json["url"][response.json["url"].index("/c/"):]


@pytest.fixture
def scene(client, make):
    """A task of a courier whose handheld has pulled everything: (task, device, cursor)."""
    courier = make.courier()
    task = make.task(courier=courier, recipient={"name": "李雷", "phone": "13912345678",
                                                 "address": "上海市黄浦区南京路88号"})
    device = Device(client, make.device(courier))
    _store, cursor, _page = device.pull_all()
    return task, device, cursor


def pulled_task(device: Device, cursor: str, task_id: str) -> dict:
    """The task as the handheld's next pull brings it."""
    store, _cursor, _page = device.pull_all(cursor)
    return store[("task", task_id)]["data"]


def test_open_and_confirm_the_proposed_window(page, live_server, client, make, scene):
    """The proposed window in Chinese, unconfirmed; confirming reaches the device as via customer_link."""
    task, device, cursor = scene
    page.get(live_server + issue(client, make, task["id"]))
    start, end = datetime.fromisoformat(task["window"]["start"]), datetime.fromisoformat(task["window"]["end"])
    assert page.title == "预约确认"
    assert text_of(page, "proposed") == _window(start, end, "zh")
    assert text_of(page, "status") == "待确认"
    assert text_of(page, "recipient") == "李" and text_of(page, "address") == "上海市黄浦区南京路**号"
    button = page.find_element(By.ID, "confirm")
    # The stylesheet is same-origin, so the strict CSP lets it apply.
    assert button.value_of_css_property("background-color") == "rgba(22, 93, 255, 1)"
    submit(page, button)
    assert "已确认" in text_of(page, "message") and text_of(page, "status") == "已确认"
    assert not page.find_elements(By.ID, "confirm")
    appointment = pulled_task(device, cursor, task["id"])["appointment"]
    assert appointment["status"] == "confirmed"
    agreed = [w for w in appointment["windows"] if w["status"] == "agreed"]
    assert len(agreed) == 1 and agreed[0]["via"] == "customer_link" and agreed[0]["agreed_by_kind"] == "customer"
    assert datetime.fromisoformat(agreed[0]["start"]) == start


def test_pick_another_slot(page, live_server, client, make, scene):
    """The first offered slot becomes the agreed window, and the device's next pull has it."""
    task, device, cursor = scene
    page.get(live_server + issue(client, make, task["id"]))
    slot = page.find_elements(By.CSS_SELECTOR, "ul.slots li")[0]
    label = slot.find_element(By.CLASS_NAME, "slot-label").text
    submit(page, slot.find_element(By.CSS_SELECTOR, "button.slot"))
    assert "已改约" in text_of(page, "message")
    assert text_of(page, "proposed") == label and text_of(page, "status") == "已确认"
    pulled = pulled_task(device, cursor, task["id"])
    window = pulled["appointment"]["window"]
    assert _window(datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"]), "zh") == label
    assert pulled["appointment"]["windows"][-1]["via"] == "customer_link"
    assert datetime.fromisoformat(window["start"]) > datetime.fromisoformat(task["window"]["start"])


def test_leave_instructions(page, live_server, client, make, scene):
    """Instructions typed on the page are a customer's note in the device's next pull."""
    task, device, cursor = scene
    page.get(live_server + issue(client, make, task["id"]))
    page.find_element(By.ID, "instructions").send_keys("放门卫室，谢谢")
    submit(page, page.find_element(By.ID, "send-instructions"))
    assert "说明已提交" in text_of(page, "message")
    notes = pulled_task(device, cursor, task["id"])["notes"]
    assert notes[0]["text"] == "放门卫室，谢谢" and notes[0]["actor_kind"] == "customer"


def test_expired_and_tampered_links_get_a_friendly_page(page, live_server, client, make, scene):
    """An expired link says so in Chinese (English on request); a tampered one is not valid; no trace."""
    task, _device, _cursor = scene
    path = issue(client, make, task["id"])
    db.session.execute(update(CustomerLink).values(expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    page.get(live_server + path)
    assert "链接已过期" in text_of(page, "error")
    page.get(live_server + path + "?lang=en")
    assert "This link has expired" in text_of(page, "error")
    page.get(live_server + path[:-4] + "AAAA")
    assert "链接无效" in text_of(page, "error") and "Traceback" not in page.page_source


def test_english_switch(page, live_server, client, make, scene):
    """The visible switch turns the page English, and it stays English through a confirmation."""
    task, _device, _cursor = scene
    page.get(live_server + issue(client, make, task["id"]))
    assert text_of(page, "status") == "待确认"
    follow(page, page.find_element(By.ID, "switch-lang"))
    assert text_of(page, "status") == "Not yet confirmed"
    assert page.title == "Confirm your appointment"
    submit(page, page.find_element(By.ID, "confirm"))
    assert text_of(page, "message").startswith("Confirmed") and text_of(page, "status") == "Confirmed"
    assert text_of(page, "switch-lang") == "中文"


def test_consent_to_a_neighbour_then_withdraw_it(page, live_server, client, make, scene):
    """Consent with a note reaches the device's next pull and authorises the drop; withdrawn, it is gone."""
    task, device, cursor = scene
    page.get(live_server + issue(client, make, task["id"]))
    assert "快递柜" in text_of(page, "alternate")
    page.find_element(By.ID, "place-neighbour").click()
    page.find_element(By.ID, "consent-note-input").send_keys("302室王阿姨")
    submit(page, page.find_element(By.ID, "give-consent"))
    assert "已同意" in text_of(page, "message")
    assert text_of(page, "consent-place") == "邻居" and text_of(page, "consent-note") == "302室王阿姨"
    state = pulled_task(device, cursor, task["id"])["handover"]
    assert (state["consent_place"], state["consent_note"]) == ("neighbour", "302室王阿姨")
    submit(page, page.find_element(By.ID, "withdraw-consent"))
    assert "已撤回" in text_of(page, "message") and page.find_elements(By.ID, "give-consent")
    assert pulled_task(device, cursor, task["id"])["handover"]["consent_place"] is None
    result = device.push([device.op("pod.deliver_alternate", task["id"], {
        "place": "neighbour", "authorization": {"via": "customer_link"}})])["results"][0]
    assert result["code"] == "authorization_required"

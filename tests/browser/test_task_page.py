"""A delivered task's page in headless Chromium: a dispatcher signs in, opens the task, reads its timeline, sees the
signature and photo (served by the console under its CSP) and the receipt, and follows the receipt's public page;
then issues the customer link and sees its QR. Accessible (axe-core), screenshots kept to look at."""
from datetime import timedelta

from server.auth import SYSTEM
from server.services import staff
from tests.browser.conftest import assert_accessible, console_login, follow, require_browser, screenshot, text_of
from tests.sync.conftest import Device, start_shift
from tests.sync.test_handover import codes, door_ops, upload

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)

PASSWORD = "correct horse battery staple"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x52" * 64


def _image_loaded(page, element) -> bool:
    """Whether the browser loaded and decoded the image (a CSP refusal or a 404 leaves it 0 wide)."""
    return page.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", element)


def _png(width: int, height: int) -> bytes:
    """A real PNG the browser can draw (a grey box): what a handheld's signature pad sends."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x90\x90\x90" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_a_delivered_tasks_timeline_and_receipt(page, live_server, app, client, make, server_clock, tmp_path):
    """The header, every timeline row (the door's steps among them), the signature and photo drawn, the receipt's
    number and its public page; an open task's customer link and QR issued from the page; no serious accessibility
    violation on either."""
    courier = make.courier(name="王小明")
    with server_clock.at(server_clock.now() - timedelta(days=1)):
        device = Device(client, make.device(courier))
    with server_clock.at(server_clock.now() - timedelta(hours=7)):
        start_shift(make, courier, device, at=server_clock.now())
    task = make.task(courier=courier, recipient={"name": "李雷", "phone": "13912345678",
                                                 "address": "上海市黄浦区人民路 18 号", "lat": 31.23, "lon": 121.47})
    signature, photo = upload(device, _png(120, 60)), upload(device, _png(80, 80))
    note = device.op("task.note", task["id"], {"text": "门卫代为开门", "photos": [photo]})
    assert codes(device.push([note, *door_ops(device, task, signature, name="李雷")])["results"]) == \
        [("applied", None)] * 6
    user, _ = staff.create(username="zhao.dispatch", role="dispatcher")
    staff.set_password(actor=SYSTEM, staff_id=user.id, password=PASSWORD)

    console_login(page, live_server, "zhao.dispatch", PASSWORD)
    page.get(f"{live_server}/console/tasks/{task['id']}")
    assert task["waybill_no"] in text_of(page, "task-title")
    assert text_of(page, "recipient") == "李**" and "李雷" not in page.page_source
    rows = page.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")
    kinds = [row.get_attribute("data-type") for row in rows]
    for step in ("created", "assigned", "note", "arrived", "handover.verify_recipient", "handover.inspect",
                 "handover.collect_payment", "handover.sign", "delivery"):
        assert step in kinds, kinds
    assert kinds.index("handover.inspect") < kinds.index("handover.sign") < kinds.index("delivery")
    assert "签收" in text_of(page, "timeline") and "门卫代为开门" in text_of(page, "timeline")
    images = page.find_elements(By.CSS_SELECTOR, "#evidence img")
    assert sorted(img.get_attribute("data-role") for img in images) == ["photo", "signature"]
    assert all(_image_loaded(page, img) for img in images)
    number = text_of(page, "receipt-number")
    assert number.count("-") >= 2
    assert_accessible(page)
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, tmp_path, "task-delivered")
    try:
        page.set_window_size(1280, 2400)
        screenshot(page, tmp_path, "task-delivered-desktop")
    finally:
        page.set_window_size(414, 896)

    page.get(f"{live_server}/console/tasks/{task['id']}?lang=en")
    assert text_of(page, "task-status") == "delivered" and "Timeline" in page.page_source
    screenshot(page, tmp_path, "task-delivered-en")

    receipt_url = page.find_element(By.ID, "receipt-link").get_attribute("href")
    page.get(receipt_url)
    assert number in page.page_source

    open_task = make.task(courier=courier)
    page.get(f"{live_server}/console/tasks/{open_task['id']}")
    follow(page, page.find_element(By.CSS_SELECTOR, "#link-form button"))
    assert "/c/" in text_of(page, "link-url")
    assert _image_loaded(page, page.find_element(By.ID, "link-qr"))
    assert_accessible(page)
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    page.execute_script("document.getElementById('customer-link').scrollIntoView()")
    screenshot(page, tmp_path, "task-open-link")

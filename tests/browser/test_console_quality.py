"""The console's complaints queue and KPI page in headless Chromium: a quality officer takes the customer's complaint
(its photo shown), hands it over; a dispatcher reads the KPIs with their chart and downloads the CSV. Screenshots
are saved under the test's folder and as /tmp/fieldops-console-*.png; every page passes the accessibility check."""
import csv
import io
import struct
import uuid
import zlib
from urllib.request import Request, urlopen

from server.auth import SYSTEM
from server.services import staff
from tests.api.test_complaint_ownership import created, file
from tests.api.test_customer_page import issue, path_of
from tests.browser.conftest import (assert_accessible, console_login, follow, require_browser, screenshot, submit,
                                    text_of)

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

PASSWORD = "correct horse battery"


def _png(width: int = 48, height: int = 32) -> bytes:
    """A real PNG (a red and grey block) the browser draws."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + (b"\xcc\x22\x22" * (width // 2) + b"\x88\x88\x88" * (width - width // 2))
                    for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _staff(role: str) -> str:
    """A staff member of the role with a console password; their username."""
    user, _ = staff.create(username=f"{role}-{uuid.uuid4().hex[:6]}", role=role)
    staff.set_password(actor=SYSTEM, staff_id=user.id, password=PASSWORD)
    return user.username


def _drawn(page, element_id: str) -> bool:
    """Whether the image has loaded and has a size (the browser could decode it)."""
    return WebDriverWait(page, 30).until(lambda driver: driver.execute_script(
        "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth > 0;", element_id))


def test_quality_takes_the_customers_complaint_from_the_queue_and_hands_it_over(page, live_server, client, make,
                                                                                 tmp_path):
    """The unowned queue lists the customer's complaint; its page shows the photo; taking it makes the officer its
    owner, and the handover to a named colleague with the reason is recorded."""
    task = make.task(courier=make.courier())
    sent = file(client, path_of(issue(client, make, task["id"])), photo=(io.BytesIO(_png()), "door.png", "image/png"),
                text="快递员把包裹扔在门口。")
    assert sent.status_code == 303, sent.text
    created(client, make.headers("dispatcher"), subject="hotline", text="热线一直占线。")
    colleague = _staff("quality")
    console_login(page, live_server, _staff("quality"), PASSWORD)
    page.get(f"{live_server}/console/complaints")
    Select(page.find_element(By.ID, "filter-owner")).select_by_value("none")
    follow(page, page.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]"))
    rows = text_of(page, "complaints")
    assert "无人负责" in rows and "态度" in rows
    assert_accessible(page)
    screenshot(page, tmp_path, "complaints-queue")
    page.set_window_size(1280, 900)
    try:
        screenshot(page, tmp_path, "complaints-queue-desktop")
    finally:
        page.set_window_size(414, 896)
    follow(page, page.find_element(By.CSS_SELECTOR, "#complaints tbody a"))
    assert "快递员把包裹扔在门口。" in page.page_source
    assert _drawn(page, "complaint-photo")
    submit(page, page.find_element(By.ID, "take"))
    assert "已认领" in text_of(page, "message")
    Select(page.find_element(By.ID, "handover-to")).select_by_visible_text(f"{colleague} (quality)")
    page.find_element(By.ID, "handover-reason").send_keys("需要质控组长判定。")
    submit(page, page.find_element(By.ID, "hand-over"))
    assert "已转交" in text_of(page, "message")
    assert colleague in text_of(page, "complaint-owner")
    assert "需要质控组长判定。" in text_of(page, "handovers")
    assert_accessible(page)
    screenshot(page, tmp_path, "complaint")
    page.get(f"{live_server}/console/complaints?lang=en")
    assert "Complaints queue" in page.page_source
    assert_accessible(page)


def test_a_dispatcher_reads_the_kpis_with_their_chart_and_the_csv(page, live_server, client, make, tmp_path):
    """The KPI page shows the period's figures (a complaint answered in time: 100%), the chart drawn, each figure
    linked to its rows; the CSV the page links downloads the API's report."""
    complaint = created(client, make.headers("dispatcher"), subject="hotline")
    assert client.post(f"/api/v1/dispatch/complaints/{complaint['id']}/respond", json={"text": "已回复。"},
                       headers=make.headers("dispatcher")).status_code == 200
    console_login(page, live_server, _staff("dispatcher"), PASSWORD)
    page.get(f"{live_server}/console/kpis")
    figure = text_of(page, "kpi-complaint_response_on_time")
    assert "投诉及时回复率" in figure and "100.0%" in figure
    assert _drawn(page, "kpi-chart")
    assert_accessible(page)
    screenshot(page, tmp_path, "kpis")
    page.set_window_size(1280, 1000)
    try:
        page.execute_script("document.getElementById('kpi-chart').scrollIntoView()")
        screenshot(page, tmp_path, "kpis-chart-desktop")
    finally:
        page.set_window_size(414, 896)
    href = page.find_element(By.ID, "kpi-csv").get_attribute("href")
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.get_cookies())
    with urlopen(Request(href, headers={"Cookie": cookies}), timeout=30) as answer:
        assert answer.headers["Content-Type"].startswith("text/csv")
        rows = {row["figure"]: row for row in csv.DictReader(io.StringIO(answer.read().decode()))
                if row["group"] == "total"}
    assert (rows["complaint_response_on_time"]["numerator"], rows["complaint_response_on_time"]["denominator"]) == (
        "1", "1")
    follow(page, page.find_element(By.CSS_SELECTOR, "#kpi-complaint_response_on_time a"))
    assert f"/console/complaints/{complaint['id']}" in page.page_source
    assert_accessible(page)

"""The receipt page in headless Chromium: the facts in Chinese and English, the seal, the JSON link, bad links."""
import json

import pytest

from server.extensions import db
from server.services import receipts
from tests.browser.conftest import follow, require_browser, text_of
from tests.services.test_receipts import evidence

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def receipt(app, make):
    """A delivery receipt of a task for 李雷 at a full address: (number, page path)."""
    task = make.task(courier=make.courier(), recipient={"name": "李雷", "phone": "13912345678",
                                                        "address": "上海市黄浦区南京路88号"})
    issued = receipts.issue(task_id=task["id"], kind="delivery", evidence=evidence())
    db.session.commit()
    return issued.number, f"/r/{receipts.page_token(issued)}"


def test_the_receipt_in_chinese_with_a_verified_seal(page, live_server, receipt):
    """Number, masked recipient, local time, inspection, fees and the seal, styled under the strict CSP."""
    number, path = receipt
    page.get(live_server + path)
    assert page.title == "电子回单"
    assert text_of(page, "number") == number and text_of(page, "recipient") == "李**"
    assert text_of(page, "time") == "2026-11-24 11:10" and text_of(page, "kind") == "派送签收"
    assert "P1-1" in text_of(page, "inspection") and "完好" in text_of(page, "inspection")
    assert "¥12.00" in text_of(page, "fees") and text_of(page, "amount") == "¥61.90"
    # The goods' COD on its own line, between the fees and the amount paid that sums them: 12.00 + 49.90 = 61.90.
    assert text_of(page, "fees").split("\n") == ["收款明细", "派送费", "¥12.00", "代收货款", "¥49.90", "实收金额", "¥61.90"]
    seal = page.find_element(By.ID, "seal")
    assert "签章有效" in seal.text
    assert seal.value_of_css_property("color") == "rgba(0, 168, 112, 1)"  # the same-origin stylesheet applies
    body = page.find_element(By.TAG_NAME, "body").text
    for secret in ("雷", "13912345678", "南京路", "88"):
        assert secret not in body.replace("李**", "")


def test_english_switch_and_the_sealed_json(page, live_server, receipt):
    """The switch turns the page English; the JSON link serves the sealed receipt."""
    number, path = receipt
    page.get(live_server + path)
    follow(page, page.find_element(By.ID, "switch-lang"))
    assert "The seal verifies" in text_of(page, "seal") and page.title == "Receipt"
    assert "Cash on delivery (goods)\n¥49.90\nAmount paid\n¥61.90" in text_of(page, "fees")
    page.find_element(By.ID, "sealed-json").click()
    document = json.loads(WebDriverWait(page, 30).until(
        expected_conditions.presence_of_element_located((By.TAG_NAME, "pre"))).text)
    assert document["receipt"]["number"] == number and document["seal"]["alg"] == "Ed25519"


def test_a_bad_link_gets_a_friendly_page(page, live_server, receipt):
    """A mistyped token: the 404 page in Chinese, no trace."""
    _number, path = receipt
    page.get(live_server + path[:-3] + ("BBB" if path.endswith("AAA") else "AAA"))
    assert "回单链接无效" in text_of(page, "error") and "Traceback" not in page.page_source

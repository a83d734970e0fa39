"""The customer's claim form on the receipt page, in headless Chromium: sent, then its status shown."""
import os

import pytest

from server.extensions import db
from server.services import receipts
from tests.browser.conftest import require_browser, submit, text_of
from tests.services.test_receipts import evidence

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)

SCREENSHOT = os.environ.get("FIELDOPS_CLAIM_SCREENSHOT", "/tmp/fieldops-claim-form.png")


@pytest.fixture
def receipt_path(app, make):
    """The receipt page of a delivery whose parcel P1-1 the evidence lists."""
    task = make.task(courier=make.courier(), parcels=[{"parcel_no": "P1-1", "description": "box", "count": 2}])
    issued = receipts.issue(task_id=task["id"], kind="delivery", evidence=evidence())
    db.session.commit()
    return f"/r/{receipts.page_token(issued)}"


def test_the_customer_sends_a_claim_and_sees_it_received(page, live_server, receipt_path, client, make):
    """Kind, description and amount in yuan; the page comes back saying so and lists the claim as received."""
    page.get(live_server + receipt_path)
    page.find_element(By.ID, "claim-kind-damage").click()
    page.find_element(By.ID, "claim-description").send_keys("外箱压坏，里面的杯子碎了。")
    page.find_element(By.ID, "claim-amount").send_keys("58.80")
    submit(page, page.find_element(By.ID, "send-claim"))
    assert "理赔申请已提交" in text_of(page, "message")
    listed = text_of(page, "claims")
    assert "P1-1" in listed and "破损" in listed and "¥58.80" in listed and "已受理" in listed
    page.find_element(By.ID, "claims").screenshot(SCREENSHOT)
    claims = client.get("/api/v1/dispatch/claims", query_string={"origin": "customer"},
                        headers=make.headers("quality")).json["items"]
    assert [(c["parcel_no"], c["kind"], c["claimed_amount"]) for c in claims] == [("P1-1", "damage", 5_880)]

"""The customer's complaint form on the customer page and the receipt page, in headless Chromium; a low rating's
follow-up in the quality team's queue."""
import os


from server.extensions import db
from server.models import Attachment
from server.services import receipts
from tests.api.test_customer_page import issue, path_of
from tests.api.test_ratings import deliver
from tests.browser.conftest import require_browser, submit, text_of
from tests.services.test_receipts import evidence
from tests.sync.conftest import Device, start_shift

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)
from selenium.webdriver.support.ui import Select  # noqa: E402

SCREENSHOT = os.environ.get("FIELDOPS_COMPLAINT_SCREENSHOT", "/tmp/fieldops-complaint-form-{lang}.png")
URL = "/api/v1/dispatch/complaints"


def queue(client, make, channel: str) -> list[dict]:
    """The unowned complaints of the channel, as the quality team lists them."""
    answer = client.get(URL, query_string={"owner": "none", "channel": channel}, headers=make.headers("quality"))
    assert answer.status_code == 200, answer.json
    return answer.json["items"]


def test_the_customer_complains_from_the_customer_page_with_a_photo(page, live_server, client, make, tmp_path):
    """Chinese by default: what about, what went wrong, the text and a photo; the page says it was received with
    its reference and lists it; the office's queue has it, unowned, with the photo."""
    courier = make.courier()
    task = make.task(courier=courier)
    link = path_of(issue(client, make, task["id"]))
    photo = tmp_path / "door.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 256)
    page.get(live_server + link)
    Select(page.find_element(By.ID, "complaint-category")).select_by_value("impolite")
    page.find_element(By.ID, "complaint-text").send_keys("快递员把包裹扔在门口，态度很差。")
    page.find_element(By.ID, "complaint-photo").send_keys(str(photo))
    submit(page, page.find_element(By.ID, "send-complaint"))
    assert "投诉已收到" in text_of(page, "message")
    reference = text_of(page, "complaint-ref")
    listed = text_of(page, "complaints")
    assert reference in listed and "态度不好" in listed and "已受理" in listed
    page.find_element(By.ID, "complaints").screenshot(SCREENSHOT.format(lang="zh"))
    [filed] = queue(client, make, "customer_page")
    assert (filed["reference"], filed["courier_id"], filed["category"]) == (reference, courier["id"], "impolite")
    assert db.session.get(Attachment, filed["photo_sha256"]).content_type == "image/png"


def test_the_customer_complains_from_the_receipt_page_in_english(page, live_server, client, make):
    """The receipt page's form (English): about the depot, late; received, its reference and status shown."""
    task = make.task(courier=make.courier(), parcels=[{"parcel_no": "P1-1", "description": "box", "count": 1}])
    issued = receipts.issue(task_id=task["id"], kind="delivery", evidence=evidence())
    db.session.commit()
    page.get(f"{live_server}/r/{receipts.page_token(issued)}?lang=en")
    Select(page.find_element(By.ID, "complaint-subject")).select_by_value("depot")
    Select(page.find_element(By.ID, "complaint-category")).select_by_value("late")
    page.find_element(By.ID, "complaint-text").send_keys("The depot held my parcel for two days.")
    submit(page, page.find_element(By.ID, "send-complaint"))
    assert "Complaint received" in text_of(page, "message")
    listed = text_of(page, "complaints")
    assert text_of(page, "complaint-ref") in listed and "late" in listed and "received" in listed
    page.find_element(By.ID, "complaints").screenshot(SCREENSHOT.format(lang="en"))
    [filed] = queue(client, make, "receipt_page")
    assert (filed["subject"], filed["courier_id"], filed["task_id"]) == ("depot", None, task["id"])


def test_a_rating_of_2_puts_a_follow_up_in_the_quality_queue(page, live_server, client, make):
    """The customer rates the delivery 2 with a comment on their page; the quality team's unowned queue then has a
    follow-up (channel rating) with that comment, about the courier."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    start_shift(make, courier, device)
    task = make.task(courier=courier)
    link = path_of(issue(client, make, task["id"]))
    deliver(device, task)
    page.get(live_server + link)
    page.find_element(By.ID, "score-2").click()
    page.find_element(By.ID, "rating-comment").send_keys("包裹被放在了别人家门口。")
    submit(page, page.find_element(By.ID, "send-rating"))
    assert "评价已提交" in text_of(page, "message")
    [follow_up] = queue(client, make, "rating")
    assert (follow_up["task_id"], follow_up["courier_id"], follow_up["text"]) == (
        task["id"], courier["id"], "包裹被放在了别人家门口。")
    assert follow_up["owner_id"] is None and follow_up["status"] == "open"

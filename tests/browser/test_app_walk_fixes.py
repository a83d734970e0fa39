"""What a new user's walk through the courier app found (issue 25's follow-up, w/fixapp), each shown fixed in the
browser: the refusal's note kept through a photo and sent (the server's event holds it), the door's header masking
the recipient's name as the task page does, an error said next to the action (in view), the receipt opened in a new
tab, the enrollment's error styled as an error.
"""
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from server.extensions import db
from tests.browser.conftest import require_browser, text_with
from tests.browser.courier_app import open_app, require_app, set_offline, use_build
from tests.browser import test_app_door
from tests.browser.test_app_door import _check, _click, _door, _jpeg, _start_shift, _sync, _wait

require_browser()
require_app()

day = test_app_door.day  # the door's fixture: a courier with a van, the app enrolled, a COD, a plain task, a pickup


def _to_inspected(page, app, make, task: dict, *, accept: bool) -> None:
    """The door of a plain task with a shift open, offline: arrived, the recipient checked, the inspection answered."""
    _door(page, task)
    _start_shift(page, make)
    set_offline(page, True, app)
    _click(page, "[data-act=arrive]")
    _wait(page, "[data-step=arrive] .done")
    _wait(page, "#v-name").send_keys("王芳")
    _click(page, "[data-act=verify]")
    _wait(page, "[data-step=verify] .done")
    _click(page, f"[data-act=inspect-{'accept' if accept else 'refuse'}]")
    _wait(page, "[data-step=inspect] .done")


def test_a_refusal_note_survives_a_photo_and_reaches_the_server(day, app, make, page, tmp_path):
    """拒收: the note typed, then a photo taken: the section stays open with the note; sent, the server has it."""
    from server.models.tasks import TaskEvent
    plain = day["plain"]
    _to_inspected(page, app, make, plain, accept=False)
    _click(page, "[data-path=refuse] summary")
    note = _wait(page, "#r-note")
    note.send_keys("外箱压坏，客户不要")
    page.find_element(By.CSS_SELECTOR, "[data-path=refuse] input[type=file]").send_keys(_jpeg(tmp_path))
    _wait(page, "[data-path=refuse] img")
    assert page.find_element(By.CSS_SELECTOR, "[data-path=refuse]").get_attribute("open") is not None
    assert _wait(page, "#r-note").get_attribute("value") == "外箱压坏，客户不要"
    _check(page, tmp_path, "walk-1-refuse-photo", at="#r-note")
    _click(page, "[data-act=refuse]")
    _wait(page, ".door-done[data-outcome=refused]")
    # What is said is what is true: saved on the phone while offline, then sent and accepted (never stale).
    text_with(page, ".door-op[data-state=offline]", "已存在本机，联网后发送")
    set_offline(page, False, app)
    _sync(page)
    text_with(page, ".door-op[data-state=applied]", "服务器已接受")
    assert "联网后发送" not in page.find_element(By.ID, "view").text
    _check(page, tmp_path, "walk-5-refused-synced")
    db.session.rollback()
    events = TaskEvent.query.filter_by(task_id=plain["id"]).all()
    refusals = [e.data for e in events if e.data and e.data.get("reason") and "note" in e.data]
    assert refusals and refusals[0]["note"] == "外箱压坏，客户不要", [e.data for e in events]
    assert len(refusals[0]["photos"]) == 1


def test_the_door_masks_the_recipient_and_says_an_error_in_view(day, app, make, page, tmp_path):
    """The door's header masks the name as the task page does; an empty signature's error is in view, by the button."""
    plain = day["plain"]
    _to_inspected(page, app, make, plain, accept=True)
    head = page.find_element(By.CSS_SELECTOR, ".door-head").text
    full = plain["recipient"]["name"]
    assert full not in head and full[0] + "*" in head, head
    _click(page, "[data-act=sign]")
    WebDriverWait(page, 10).until(lambda d: "签名为空" in d.find_element(By.CSS_SELECTOR, "[data-step=sign] [role=status]").text)
    said = page.find_element(By.CSS_SELECTOR, "[data-step=sign] [role=status]")
    WebDriverWait(page, 10).until(lambda d: d.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight;", said))
    _check(page, tmp_path, "walk-4-empty-signature")


def test_the_enrollment_error_looks_like_an_error(app, page, live_server, tmp_path):
    """A code the server refuses: the message is styled as an error (red), not as a success."""
    use_build(app)
    open_app(page, live_server, "/enroll?code=ZZZZ-ZZZZ-ZZZZ")
    _click(page, "#enroll-submit")
    message = _wait(page, "#enroll-message[data-kind]")
    WebDriverWait(page, 30).until(lambda d: d.find_element(By.ID, "enroll-message").get_attribute("data-kind") == "error")
    color = page.execute_script("return getComputedStyle(arguments[0]).borderLeftColor", message)
    assert color.startswith("rgb(") and int(color[4:].split(",")[0]) > 150, color  # red, not the brand's green


def test_a_task_reassigned_while_offline_is_said_so(day, app, make, page, tmp_path):
    """Arrived offline at a task dispatch then gave to another courier: back online, the server applies the arrival as
    a conflict (reassigned) and drops the task from the scope; the door says it was reassigned, the queue screen
    names the waybill in words (no English detail), and the bar counts it for review, not in red as refused."""
    plain = day["plain"]
    _door(page, plain)
    _start_shift(page, make)
    other = make.courier()
    db.session.rollback()
    set_offline(page, True, app)
    _click(page, "[data-act=arrive]")
    _wait(page, "[data-step=arrive] .done")
    # Dispatch reassigns it meanwhile (through the server's service, not HTTP: the offline cut counts every request
    # that reaches the live server, dispatch's included).
    from server.auth import Actor
    from server.services import tasks as task_service
    task_service.assign(actor=Actor(kind="staff", id=None, role="dispatcher"), task_id=plain["id"], courier_id=other["id"])
    db.session.commit()
    set_offline(page, False, app)
    _sync(page)
    said = text_with(page, "[data-gone=reassigned]", "已被调度改派", plain["waybill_no"])
    assert "请先同步" not in said
    text_with(page, ".door-op[data-state=conflict]", "调度会复核")  # the arrival's fate, not "sending"
    _check(page, tmp_path, "walk-6-reassigned-door")
    page.execute_script("location.hash = '/sync'")
    line = text_with(page, "#problem-ops", plain["waybill_no"], "改派")
    assert not page.find_elements(By.CSS_SELECTOR, "#problem-ops [lang=en]"), line
    bar = text_with(page, "#bar-queue", "调度复核 1")
    assert "被拒" not in bar and "bad" not in page.find_element(By.ID, "bar-queue").get_attribute("class")
    _check(page, tmp_path, "walk-6-reassigned-queue")


def test_the_phrase_names_the_company_and_a_pickup_speaks_of_the_sender(day, app, page):
    """FIELDOPS_COMPANY_NAME reaches the app with the pull: the standard phrase says it, with the waybill and the
    parcel count (not a free-text description); a pickup's page says 待揽收, 寄件人 and asks when to collect."""
    app.config["COMPANY_NAME"] = "顺达快递"
    try:
        plain, pickup = day["plain"], day["pickup"]
        _door(page, plain)
        _sync(page)
        page.execute_script("location.hash = arguments[0]", f"/tasks/{plain['id']}")
        count = sum(p["count"] for p in plain["parcels"])
        assert text_with(page, "#phrase", "顺达快递") == (
            f"您好！我是顺达快递的，您的快件（运单 {plain['waybill_no']}，共 {count} 件）已到，请问今天有时间接收吗？")
        page.execute_script("location.hash = arguments[0]", f"/tasks/{pickup['id']}")
        phrase = text_with(page, "#phrase", "来取")
        assert phrase == f"您好！我是顺达快递的，来取您要寄的快件（运单 {pickup['waybill_no']}），请问今天什么时候方便？"
        assert text_with(page, "#task-status", "待揽收") == "待揽收"
        assert "寄件人" in text_with(page, "#customer-h", "寄件人")
    finally:
        app.config["COMPANY_NAME"] = None

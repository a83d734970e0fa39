"""The courier app's other paths, through its own screens (enrolled by the QR's app link, the shift started on the
shift screen, as test_app_door does), each checked at the server through the dispatch API:

- a refusal after an inspection (reason, note, photo): the task refused, a return task made for dispatch;
- delivering elsewhere with the consent the customer gave on their page (/c/<token>), and without one (not offered,
  the reason said);
- customer absent: not offered before the wait (the countdown shown) nor without a contact attempt since arriving;
  offered once both hold; the task failed, customer_absent. Time passes honestly: the server's clock (server_clock)
  and the device's (Date in the page and in its service worker) are moved on together by ten minutes, so both agree
  that ten minutes passed and the push is a trusted one (docs/decisions.md, "Issue 25: the door's other paths");
- a pickup with fees dispatch quoted: exactly those charged, no other offered, the ledger's payment;
- the appointment screen's reschedule (agreed, and a proposal only) and late notice (in time, too late);
- a note on the task page with a photo from the camera;
- the local PIN lock after 5 wrong PINs on the device.
"""
import json
import uuid
from datetime import datetime, timedelta, timezone

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from server.extensions import db
from tests.browser.conftest import require_browser
from tests.browser import test_app_door
from tests.browser.courier_app import open_app, require_app, service_workers, window_from_now
from tests.browser.test_app_door import (_check, _click, _door, _jpeg, _queue, _sign, _start_shift, _status, _sync,
                                         _wait)

require_browser()
require_app()

SHANGHAI = timezone(timedelta(hours=8))
day = test_app_door.day  # the door's fixture: a courier with a van, the app enrolled, a COD, a plain task, a pickup

_DRAFT = """
const [key] = [arguments[0]];
const done = arguments[arguments.length - 1];
const open = indexedDB.open("fieldops");
open.onsuccess = () => {
  const db = open.result;
  const get = db.transaction("drafts").objectStore("drafts").get(key);
  get.onsuccess = () => { db.close(); done(get.result === undefined ? null : get.result); };
};
"""

# The device's clock moved on by `offset` ms: Date (new Date(), Date.now()) in the realm it runs in. The screens and
# the core read the clock through Date only, so they see the time move on as a phone's clock does.
_MOVE_CLOCK = """
(() => {
  const Real = globalThis.__fieldopsRealDate || Date;
  globalThis.__fieldopsRealDate = Real;
  const offset = %d;
  class Moved extends Real {
    constructor(...args) { if (args.length === 0) super(Real.now() + offset); else super(...args); }
    static now() { return Real.now() + offset; }
  }
  globalThis.Date = Moved;
  return true;
})()
"""


def _gone(element) -> bool:
    """Whether the screen replaced the element (any driver error about it says so)."""
    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False


def _until(page, check, timeout: float = 20):
    """Wait for check(driver); the screens redraw themselves (a sync's news), so a stale element means "not yet"."""
    return WebDriverWait(page, timeout, ignored_exceptions=(WebDriverException,)).until(check)


def _type(page, css: str, text: str) -> None:
    """Type into a field, found again if the screen redrew itself meanwhile."""
    def typed(driver) -> bool:
        field = driver.find_element(By.CSS_SELECTOR, css)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
        field.clear()
        field.send_keys(text)
        return field.get_attribute("value") == text
    _until(page, typed)


def _dispatch(make, path: str, **query) -> dict:
    db.session.rollback()
    answer = make.client.get(f"/api/v1/dispatch{path}", query_string=query, headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    return answer.json


def _appointment(make, courier_id: str, task_id: str) -> dict:
    """The task's appointment on dispatch's board (today's or tomorrow's, depot time)."""
    today = datetime.now(SHANGHAI).date()
    for day_ in (today, today + timedelta(days=1)):
        items = _dispatch(make, "/appointments", date=day_.isoformat(), courier_id=courier_id, limit=100)["items"]
        for item in items:
            if item["task_id"] == task_id:
                return item["appointment"]
    raise AssertionError(f"task {task_id} is not on dispatch's board")


def _open_path(page, name: str) -> None:
    """Open one of the door's other paths (a <details>)."""
    page.execute_script("document.querySelector(`[data-path='${arguments[0]}']`).open = true", name)


def _redraw(page, task: dict, kind: str = "door") -> None:
    """Leave the screen and come back (a fresh draw of it)."""
    page.execute_script("location.hash = '/'")
    _wait(page, "#open-tasks")
    _door(page, task, kind)


def _pull(page, task: dict, kind: str = "door") -> None:
    """Sync (the door's button) and draw the screen again with what was pulled."""
    _sync(page)
    _redraw(page, task, kind)


def test_a_refusal_after_the_inspection_makes_a_return_task(day, make, page, tmp_path):
    plain = day["plain"]
    _door(page, plain)
    _start_shift(page, make)
    # Before an inspection the refusal is not offered, and the door says why.
    _open_path(page, "refuse")
    reason = _wait(page, "[data-path=refuse] [data-reason=inspection_required]")
    assert reason.text == "须先让客户验货并验收。"
    assert not page.find_elements(By.CSS_SELECTOR, "[data-act=refuse]")

    _click(page, "[data-act=arrive]")
    _wait(page, "[data-step=arrive] .done")
    _wait(page, "#v-name").send_keys("王芳")
    _click(page, "[data-act=verify]")
    _wait(page, "[data-step=verify] .done")
    _click(page, "[data-act=inspect-refuse]")  # the customer looked and does not take it
    _wait(page, "[data-step=inspect] .done")
    _open_path(page, "refuse")
    _wait(page, "[data-act=refuse]")
    page.execute_script("const s = document.getElementById('r-reason'); s.value = 'wrong_item';"
                        "s.dispatchEvent(new Event('change'))")
    _wait(page, "#r-note").send_keys("客户说不是他订的货")
    page.find_element(By.CSS_SELECTOR, "[data-path=refuse] input[type=file]").send_keys(_jpeg(tmp_path))
    _open_path(page, "refuse")  # the photo's redraw closed the details
    _wait(page, "[data-path=refuse] img.photo-preview")
    draft = page.execute_async_script(_DRAFT, f"door:{plain['id']}")["refuse"]
    assert draft["reason"] == "wrong_item" and draft["note"] == "客户说不是他订的货" and len(draft["photos"]) == 1
    _check(page, tmp_path, "paths-1-refusal", at="[data-path=refuse]")
    _click(page, "[data-act=refuse]")
    done = _wait(page, ".door-done[data-outcome=refused]")
    assert "已拒收" in done.text
    _sync(page)
    assert _queue(page)[-1] == ["pod.refuse", "applied", None]
    _check(page, tmp_path, "paths-2-refused", at=".door-done")

    task = _dispatch(make, f"/tasks/{plain['id']}")
    assert task["status"] == "refused"
    handover = _dispatch(make, f"/tasks/{plain['id']}/handover")
    assert draft["photos"][0] in json.dumps(handover["attachments"])
    refusal = [e for e in task["history"] if e["kind"] in ("refused", "pod_refused", "handover_refused")
               or (e.get("data") or {}).get("reason") == "wrong_item"]
    assert refusal and "客户说不是他订的货" in json.dumps(refusal, ensure_ascii=False), task["history"]
    returns = [t for t in _dispatch(make, "/tasks", status="unassigned", limit=100)["items"]
               if t.get("return_of_id") == plain["id"]]
    assert [(t["kind"], t["courier_id"]) for t in returns] == [("return", None)]


def _consent(page, live_server: str, make, task: dict, place: str, note: str) -> None:
    """The customer consents on their own page (/c/<token>), in this browser."""
    answer = make.client.post(f"/api/v1/dispatch/tasks/{task['id']}/customer-link", json={},
                              headers=make.headers("dispatcher"))
    assert answer.status_code == 201, answer.json
    page.get(live_server + answer.json["url"][answer.json["url"].index("/c/"):])
    page.find_element(By.ID, f"place-{place}").click()
    page.find_element(By.ID, "consent-note-input").send_keys(note)
    page.find_element(By.ID, "give-consent").click()
    _until(page, lambda d: "已同意" in d.find_element(By.ID, "message").text)


def test_delivering_elsewhere_with_the_customers_consent(day, make, page, live_server, tmp_path):
    plain = day["plain"]
    _consent(page, live_server, make, plain, "neighbour", "302室王阿姨")
    open_app(page, live_server, f"/tasks/{plain['id']}/door")
    _wait(page, "[data-act=sync]")
    _start_shift(page, make)
    _pull(page, plain)
    _click(page, "[data-act=arrive]")
    _wait(page, "[data-step=arrive] .done")
    _open_path(page, "alternate")
    _wait(page, "[data-path=alternate] [data-act=alternate]")
    text = page.find_element(By.CSS_SELECTOR, "[data-path=alternate]").text
    assert "客户已在其页面同意：邻居代收 302室王阿姨" in text, text
    assert page.find_element(By.ID, "a-place").get_attribute("value") == "neighbour"
    _check(page, tmp_path, "paths-3-alternate-consent", at="[data-path=alternate]")
    _click(page, "[data-path=alternate] [data-act=alternate]")
    _wait(page, ".door-done")
    _sync(page)
    assert _queue(page)[-1] == ["pod.deliver_alternate", "applied", None]
    _check(page, tmp_path, "paths-4-alternate-done", at=".door-done")
    task = _dispatch(make, f"/tasks/{plain['id']}")
    assert task["status"] == "delivered", task["status"]
    state = _dispatch(make, f"/tasks/{plain['id']}/handover")["state"]
    assert state["alternate_place"] == "neighbour" and state["authorization"]["via"] == "customer_link", state


def test_delivering_elsewhere_without_consent_is_not_offered(day, make, page, tmp_path):
    plain = day["plain"]
    _door(page, plain)
    _start_shift(page, make)
    _click(page, "[data-act=arrive]")
    _wait(page, "[data-step=arrive] .done")
    _open_path(page, "alternate")
    reason = _wait(page, "[data-path=alternate] [data-reason=authorization_required]")
    assert "改投须有客户同意" in reason.text
    assert not page.find_elements(By.CSS_SELECTOR, "[data-act=alternate]")
    assert not page.find_elements(By.ID, "a-place")
    _check(page, tmp_path, "paths-5-alternate-no-consent", at="[data-path=alternate]")
    _sync(page)
    assert [op[0] for op in _queue(page)].count("pod.deliver_alternate") == 0
    task = _dispatch(make, f"/tasks/{plain['id']}")
    assert task["status"] not in ("delivered", "failed", "refused")
    assert (_dispatch(make, f"/tasks/{plain['id']}/handover")["state"] or {}).get("alternate_place") is None


def _move_clocks(page, server_clock, minutes: int) -> list[str]:
    """Move the server's clock and the device's on by `minutes` together (the page's Date and its service
    worker's); returns the sessions attached to the workers (kept attached: a worker with DevTools attached is
    not stopped, so it keeps the moved clock)."""
    server_clock.offset += timedelta(minutes=minutes)
    script = _MOVE_CLOCK % (minutes * 60_000)
    assert page.execute_script("return " + script.strip())
    sessions = []
    for target in service_workers(page):
        session = page.execute_cdp_cmd("Target.attachToTarget", {"targetId": target, "flatten": False})["sessionId"]
        page.execute_cdp_cmd("Target.sendMessageToTarget", {"sessionId": session, "message": json.dumps(
            {"id": uuid.uuid4().int % 2**31, "method": "Runtime.evaluate", "params": {"expression": script}})})
        sessions.append(session)
    return sessions


def test_customer_absent_only_after_the_wait_and_a_call(day, make, page, server_clock, tmp_path):
    plain = day["plain"]
    _door(page, plain)
    _start_shift(page, make)
    _click(page, "[data-act=arrive]")
    _wait(page, "[data-step=arrive] .done")
    _sync(page)
    # Just arrived: not offered; the countdown of the wait is shown.
    _open_path(page, "absent")
    countdown = _wait(page, "[data-path=absent] [data-countdown]")
    assert countdown.text.startswith("还需等待 9:") or countdown.text.startswith("还需等待 10:"), countdown.text
    assert "到达后须等待 10 分钟" in page.find_element(By.CSS_SELECTOR, "[data-path=absent]").text
    assert not page.find_elements(By.CSS_SELECTOR, "[data-act=absent]")
    _check(page, tmp_path, "paths-6-absent-countdown", at="[data-path=absent]")

    sessions = _move_clocks(page, server_clock, 10)
    try:
        # Ten minutes later, but no contact attempt since arriving: still not offered, and no countdown left.
        _redraw(page, plain)
        _open_path(page, "absent")
        _wait(page, "[data-path=absent] [data-reason=wait_too_short]")
        assert not page.find_elements(By.CSS_SELECTOR, "[data-path=absent] [data-countdown]")
        assert not page.find_elements(By.CSS_SELECTOR, "[data-act=absent]")
        # The call from the task page (the dialer kept shut), no answer.
        page.execute_script("location.hash = arguments[0]", f"/tasks/{plain['id']}")
        _wait(page, "#call")
        page.execute_script("document.getElementById('call').addEventListener('click', e => e.preventDefault());"
                            "document.getElementById('call').click()")
        _click(page, "#call-outcome button[data-outcome='no_answer']")
        _until(page, lambda d: "无人接听" in d.find_element(By.ID, "task-message").text)
        _door(page, plain)
        _open_path(page, "absent")
        _check(page, tmp_path, "paths-7-absent-offered", at="[data-path=absent]")
        _click(page, "[data-act=absent]")
        _until(page, lambda d: "stop.customer_absent" in [op[0] for op in _queue(d)])  # queued (whatever is said)
        _sync(page)
        ops = _queue(page)
        assert ops[-2:] == [["appointment.contact", "applied", None], ["stop.customer_absent", "applied", None]], ops
        _redraw(page, plain)
        _check(page, tmp_path, "paths-8-absent-done")
    finally:
        for session in sessions:
            page.execute_cdp_cmd("Target.detachFromTarget", {"sessionId": session})
    task = _dispatch(make, f"/tasks/{plain['id']}")
    assert (task["status"], task["failure_reason"]) == ("failed", "customer_absent"), task
    appointment = _appointment(make, day["courier"]["id"], plain["id"])
    assert appointment["exception"] == "customer_absent" and appointment["needs_new_appointment"], appointment
    assert not appointment["clock_suspect"], appointment  # the two clocks agreed: the wait counts


def test_a_pickup_charges_exactly_the_quoted_fees(day, make, page, tmp_path):
    quoted = make.task(courier=day["courier"], kind="pickup", cod_amount=0,
                       fees=[{"code": "packaging", "amount": 600}, {"code": "delivery", "amount": 1500}],
                       parcels=[{"parcel_no": "Q-1", "description": "合同", "count": 1}])
    _door(page, day["pickup"], "pickup")
    _start_shift(page, make)
    _pull(page, quoted, "pickup")
    fees = _wait(page, "[data-step=fees]")
    assert "调度已报价" in fees.text or "报价" in fees.text, fees.text
    assert [li.get_attribute("data-fee") for li in fees.find_elements(By.CSS_SELECTOR, "li[data-fee]")] == [
        "packaging", "delivery"]
    assert not fees.find_elements(By.CSS_SELECTOR, "input[data-fee]")  # no other fee, no amount to type
    _wait(page, "[data-total='2100']")
    _click(page, "[data-pay=qr]")
    _sign(page)
    _wait(page, "#p-signer").send_keys("钱寄件")
    _check(page, tmp_path, "paths-9-quoted-pickup", at="[data-step=fees]")
    _click(page, "[data-act=collect]")
    _wait(page, ".door-done[data-outcome=collected]")
    _sync(page)
    assert _queue(page)[-1] == ["pickup.collect", "applied", None]
    task = _dispatch(make, f"/tasks/{quoted['id']}")
    assert task["status"] == "collected"
    today = datetime.now(SHANGHAI).date().isoformat()
    cash = _dispatch(make, f"/couriers/{day['courier']['id']}/cash", date=today)
    assert [(e["kind"], e["amount"], e["method"], e["task_id"]) for e in cash["entries"]] == [
        ("payment", 2100, "qr", quoted["id"])]


def test_five_wrong_pins_lock_the_pin_on_the_device(day, make, page, tmp_path):
    cod = day["cod"]
    _door(page, cod)
    _start_shift(page, make)
    _click(page, "[data-act=arrive]")
    _wait(page, "[data-step=arrive] .done")
    _sync(page)  # the arrival sent: no sync's news redraws the screen between typing a PIN and pressing verify
    _type(page, "#v-name", "李娜")
    wrong = f"{(int(day['pin']) + 1) % 10 ** 6:06d}"
    for left in (4, 3, 2, 1):
        _type(page, "#v-pin", wrong)
        _click(page, "[data-act=verify]")
        _until(page, lambda d, n=left: f"还可试 {n} 次" in _status(d))
        # (the redraw after the wrong PIN done: its help counts the tries left)
        _until(page, lambda d, n=left: f"还可试 {n} 次" in d.find_element(By.ID, "v-pin-help").text)
    _type(page, "#v-pin", wrong)
    _click(page, "[data-act=verify]")
    _until(page, lambda d: "不再核对" in _status(d))
    said = _status(page)
    assert "本机已连续 5 次取件码错误" in said and "请联系调度重新发放取件码" in said
    assert "改用其他方式" not in said  # dispatch required a PIN: there is no other way
    _until(page, lambda d: not d.find_element(By.CSS_SELECTOR, "[data-act=verify]").is_enabled())  # (redrawn)
    assert "不再核对" in page.find_element(By.ID, "v-pin-help").text
    _check(page, tmp_path, "paths-10-pin-locked", at="[data-step=verify]")
    # The right PIN now is not checked either, and a reload keeps the lock.
    page.refresh()
    _until(page, lambda d: not d.find_element(By.CSS_SELECTOR, "[data-act=verify]").is_enabled())
    assert "不再核对" in page.find_element(By.ID, "v-pin-help").text
    _sync(page)
    assert "pod.verify_recipient" not in [op[0] for op in _queue(page)]  # a wrong PIN queues nothing
    state = _dispatch(make, f"/tasks/{cod['id']}/handover")["state"]
    assert not state["recipient_verified"]


def test_a_redraw_between_typing_a_pin_and_verify_keeps_the_pin(day, make, page, tmp_path):
    """A redraw of the door (a sync's news, the app back to the front) while the courier types the PIN: the field
    keeps what was typed and the keyboard stays in it, so "verify" checks the PIN typed (it used to find it empty)."""
    cod = day["cod"]
    _door(page, cod)
    _start_shift(page, make)
    _click(page, "[data-act=arrive]")
    _wait(page, "[data-step=arrive] .done")
    _type(page, "#v-name", "李娜")
    _type(page, "#v-pin", day["pin"][:4])
    typed_in = page.find_element(By.ID, "v-pin")
    # The app comes back to the front: the door draws itself anew (as it does on a sync's news).
    page.execute_script("document.dispatchEvent(new Event('visibilitychange'))")
    _until(page, lambda d: _gone(typed_in))
    assert page.find_element(By.ID, "v-pin").get_attribute("value") == day["pin"][:4]
    assert page.execute_script("return document.activeElement && document.activeElement.id") == "v-pin"
    def go_on_typing(driver) -> bool:
        """The courier types the rest where they were (the field, found again if the screen redrew once more)."""
        field = driver.switch_to.active_element
        value = field.get_attribute("value")
        assert field.get_attribute("id") == "v-pin" and day["pin"].startswith(value), value
        field.send_keys(day["pin"][len(value):])
        return driver.find_element(By.ID, "v-pin").get_attribute("value") == day["pin"]
    _until(page, go_on_typing)
    _click(page, "[data-act=verify]")
    _wait(page, "[data-step=verify] .done")
    _sync(page)
    assert ["pod.verify_recipient", "applied", None] in _queue(page)
    assert _dispatch(make, f"/tasks/{cod['id']}/handover")["state"]["verify_method"] == "pin"


def test_a_note_with_a_photo_reaches_the_server(day, make, page, tmp_path):
    plain = day["plain"]
    page.execute_script("location.hash = arguments[0]", f"/tasks/{plain['id']}")
    _wait(page, "#note-text").send_keys("门口纸箱已压坏，见照片")
    page.find_element(By.CSS_SELECTOR, "#note-form input[type=file]").send_keys(_jpeg(tmp_path))
    _wait(page, "#note-photos img.photo-preview")
    assert page.find_element(By.ID, "note-text").get_attribute("value") == "门口纸箱已压坏，见照片"
    photos = page.execute_async_script(_DRAFT, f"note-photos:{plain['id']}")
    assert len(photos) == 1
    _check(page, tmp_path, "paths-11-note-photo", at="#note-form")
    _click(page, "#note-form button[type=submit]")
    _until(page, lambda d: "备注已保存" in d.find_element(By.ID, "task-message").text)
    assert not page.find_elements(By.CSS_SELECTOR, "#note-photos img")  # the form is empty again
    _door(page, plain)
    _sync(page)
    assert _queue(page)[-1] == ["task.note", "applied", None]
    task = _dispatch(make, f"/tasks/{plain['id']}")
    notes = [e for e in task["history"] if e["kind"] == "note"]
    assert [(n["text"], (n["data"] or {}).get("photos")) for n in notes] == [("门口纸箱已压坏，见照片", photos)]
    handover = _dispatch(make, f"/tasks/{plain['id']}/handover")
    assert photos[0] in json.dumps(handover["attachments"]) or _attachment_held(make, photos[0])
    page.execute_script("location.hash = arguments[0]", f"/tasks/{plain['id']}")
    _wait(page, "[data-note-photos='1']")
    _check(page, tmp_path, "paths-12-note-synced", at="#note-form")


def _attachment_held(make, sha: str) -> bool:
    from server.models import Attachment
    db.session.expire_all()
    try:
        return db.session.get(Attachment, sha) is not None
    finally:
        db.session.rollback()


def test_reschedule_and_late_notice_on_the_appointment_screen(day, make, page, tmp_path):
    courier = day["courier"]
    soon = make.task(courier=courier, window=window_from_now(hours=0.25))  # starts in 15 minutes: too late
    later = make.task(courier=courier, window=window_from_now(hours=3))  # starts in 3 hours: in time
    _door(page, day["plain"])
    _pull(page, day["plain"])

    def screen(task):
        page.execute_script("location.hash = arguments[0]", f"/tasks/{task['id']}/appointment")
        return _wait(page, "#late-form")

    set_value = "document.getElementById(arguments[0]).value = arguments[1]"
    tomorrow = (datetime.now(SHANGHAI) + timedelta(days=1)).date().isoformat()

    # Reschedule, the customer agreed: the new window is the agreed one.
    screen(later)
    page.execute_script(set_value, "resched-date", tomorrow)
    page.execute_script(set_value, "resched-start", "09:00")
    page.execute_script(set_value, "resched-end", "11:00")
    page.find_element(By.ID, "resched-reason").send_keys("客户明天上午在家")
    _check(page, tmp_path, "paths-13-reschedule", at="#reschedule-form")
    _click(page, "#resched-save")
    _wait(page, "#task-message")
    # Reschedule, not agreed: a proposal only.
    screen(soon)
    page.execute_script(set_value, "resched-date", tomorrow)
    page.execute_script(set_value, "resched-start", "18:00")
    page.execute_script(set_value, "resched-end", "20:00")
    page.find_element(By.ID, "resched-reason").send_keys("建议改到明晚")
    _click(page, "input[name=resched-agreed][value=no]")
    _click(page, "#resched-save")
    _wait(page, "#task-message")
    # Late notice: the screen says which counts.
    screen(soon)
    late = _wait(page, "#notice-now")
    assert "已不足 30 分钟" in late.text and "不算提前通知" in late.text, late.text
    _check(page, tmp_path, "paths-14-late-notice-too-late", at="#late-form")
    eta = (datetime.now(SHANGHAI) + timedelta(minutes=40)).strftime("%H:%M")
    page.execute_script(set_value, "late-eta", eta)
    page.find_element(By.ID, "late-reason").send_keys("前一单耽误")
    _click(page, "#late-save")
    _wait(page, "#task-message")
    other = make.task(courier=courier, window=window_from_now(hours=2))
    _door(page, day["plain"])
    _pull(page, day["plain"])
    screen(other)
    ok = _wait(page, "#notice-now")
    assert "算作提前通知" in ok.text and "不算" not in ok.text, ok.text
    _check(page, tmp_path, "paths-15-late-notice-in-time", at="#late-form")
    eta = (datetime.now(SHANGHAI) + timedelta(hours=2, minutes=20)).strftime("%H:%M")
    page.execute_script(set_value, "late-date", (datetime.now(SHANGHAI) + timedelta(hours=2, minutes=20)).date().isoformat())
    page.execute_script(set_value, "late-eta", eta)
    page.find_element(By.ID, "late-reason").send_keys("路上堵车")
    _click(page, "#late-save")
    _wait(page, "#task-message")
    _door(page, day["plain"])
    _sync(page)
    types = [op[:2] for op in _queue(page)[-3:]]
    assert types == [["appointment.reschedule", "applied"], ["appointment.late_notice", "applied"],
                     ["appointment.late_notice", "applied"]], _queue(page)

    agreed = _appointment(make, courier["id"], later["id"])
    assert agreed["status"] == "confirmed"
    start = datetime.fromisoformat(agreed["window"]["start"]).astimezone(SHANGHAI)
    assert start.strftime("%Y-%m-%d %H:%M") == f"{tomorrow} 09:00"
    proposed = _appointment(make, courier["id"], soon["id"])
    assert any(w["status"] == "proposed" and datetime.fromisoformat(w["start"]).astimezone(SHANGHAI)
               .strftime("%H:%M") == "18:00" for w in proposed["windows"]), proposed
    assert datetime.fromisoformat(proposed["window"]["start"]) == datetime.fromisoformat(soon["window"]["start"])
    assert proposed["notice"]["in_time"] is False, proposed["notice"]
    in_time = _appointment(make, courier["id"], other["id"])
    assert in_time["notice"]["in_time"] is True, in_time["notice"]

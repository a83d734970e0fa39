"""The courier app's own screens in headless Chromium at 360 px: enroll by the typed code (an app link fills it) →
first pull → the day in route order; a task's page; a call recorded as a contact attempt; a window confirmed; a
window refused before queueing; a rejected op shown with the server's reason in words; the queue screen; the
language switch. Every screen screenshotted, checked by axe-core, free of CSP violations, no wider than 360 px."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models.appointments import Appointment
from server.models.tasks import TaskEvent
from tests.browser.conftest import assert_accessible, assert_no_csp_violation, require_browser, screenshot, text_of
from tests.browser.courier_app import (app_link, click, assert_nothing_got_through, count_requests, courier_with_day,
                                       require_app, set_offline, use_build,
                                       wait_controlled)

require_browser()
require_app()

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DEPOT_TZ = ZoneInfo("Asia/Shanghai")


def _window(hours: float, length: float = 2) -> dict:
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(hours=hours)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=length)).isoformat()}


def _appointment(task_id: str) -> dict:
    """The stored appointment as the server keeps it, read and let go at once (an open read would hold SQLite's
    lock against the live server's writes)."""
    db.session.expire_all()
    try:
        row = db.session.scalars(select(Appointment).where(Appointment.task_id == task_id)).one()
        return {"status": row.status, "attempts": [a.outcome for a in row.attempts],
                "agreed": [(w.start, w.via) for w in row.windows if w.status == "agreed"]}
    finally:
        db.session.rollback()


def _until(page, check, timeout: float = 30):
    """Wait for check(driver) to be truthy; the screens redraw themselves (a sync, a queued op), so an element
    gone stale means "not yet"."""
    return WebDriverWait(page, timeout, ignored_exceptions=(WebDriverException,)).until(check)


def _wait(page, css: str, timeout: float = 30):
    return _until(page, lambda d: d.find_elements(By.CSS_SELECTOR, css), timeout)[0]


def _check(page, tmp_path, name: str) -> None:
    """The screen as it is: no serious accessibility violation, no CSP violation, not wider than the screen;
    its screenshot kept (looked at by hand, /tmp/fieldops-console-app-<name>.png)."""
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), name
    height = page.execute_script("return document.documentElement.scrollHeight")
    page.set_window_size(360, max(780, height + 120))  # the whole screen in one picture
    screenshot(page, tmp_path, f"app-{name}")
    page.set_window_size(360, 780)
    assert_accessible(page)
    assert_no_csp_violation(page)


def _sync(page) -> str:
    """Open the queue screen, press Sync, wait for the outcome; the screen's message."""
    page.execute_script("location.hash = '/sync'")
    _until(page, lambda d: d.find_element(By.ID, "sync-run").click() or True)
    done = ("同步完成", "Synced", "上次同步出错", "Last sync failed")
    _until(page, lambda d: any(word in d.find_element(By.ID, "view").text for word in done))
    return page.find_element(By.ID, "view").text


@pytest.fixture
def narrow(page):
    """A 360 px wide viewport (the size the app is made for); the module's browser back to its size after."""
    page.set_window_size(360, 780)
    yield page
    page.set_window_size(414, 896)


def test_enroll_day_task_call_confirm_reject_queue_language(narrow, live_server, app, make, client, tmp_path):
    page = narrow
    use_build(app)
    day = courier_with_day(make, tasks=0)
    courier = day["courier"]
    late = make.task(courier=courier, window=_window(5), waybill_no="WB-LATE-1")
    make.task(courier=courier, window=_window(1), waybill_no="WB-EARLY-B", gift_description="保温杯")
    early_a = make.task(courier=courier, window=_window(1), waybill_no="WB-EARLY-A",
                        parcels=[{"parcel_no": "PA-1", "description": "手机", "count": 1}],
                        recipient={"name": "李雷", "phone": "13912345678", "address": "上海市黄浦区人民路 18 号",
                                   "lat": 31.23, "lon": 121.47})
    doomed = make.task(courier=courier, window=_window(3), waybill_no="WB-DOOMED")

    # Enroll: the app link fills the code; the first sync brings the day.
    page.get(app_link(live_server, day["code"]))  # what the demo's enrollment QR carries
    code = _wait(page, "#enroll-code")
    assert code.get_attribute("value") == day["code"]
    _check(page, tmp_path, "enroll")
    # A wrong code first: the server's refusal in words.
    page.execute_script("document.getElementById('enroll-code').value = 'ABCDEFGHJK'")
    page.find_element(By.ID, "enroll-submit").click()
    _until(page, lambda d: "登记码无效" in d.find_element(By.ID, "enroll-message").text)
    page.execute_script("document.getElementById('enroll-code').value = arguments[0]", day["code"])
    page.find_element(By.ID, "enroll-submit").click()
    _wait(page, "#open-tasks")

    # The day: route order = window start, then waybill; finished none; the sync time shown.
    waybills = [li.get_attribute("data-waybill") for li in page.find_elements(By.CSS_SELECTOR, "#open-tasks li")]
    assert waybills == ["WB-EARLY-A", "WB-EARLY-B", "WB-DOOMED", "WB-LATE-1"]
    first = page.find_element(By.CSS_SELECTOR, "#open-tasks li[data-waybill='WB-EARLY-B']").text
    assert "派送" in first and "待派送" in first and "代收 ¥49.90" in first and "有赠品：保温杯" in first
    assert "从未" not in text_of(page, "last-sync")
    assert "待同步 0" in text_of(page, "bar-queue")
    _check(page, tmp_path, "day")

    # A task's page: masked name, the phrase with the parcel, the map link, money with the published fee's name.
    page.find_element(By.CSS_SELECTOR, "li[data-waybill='WB-EARLY-A'] a").click()
    assert text_of(page, "recipient") == "李*"
    assert "李雷" not in page.find_element(By.ID, "view").text
    # No FIELDOPS_COMPANY_NAME here: the phrase names no company (never "xx"), the parcel by its waybill.
    phrase = text_of(page, "phrase")
    assert phrase.startswith("您好！我是快递员，您的快件（运单 WB-EARLY-A，共 ") and phrase.endswith(" 件）已到，请问今天有时间接收吗？")
    assert page.find_element(By.ID, "map").get_attribute("href").startswith("geo:31.23,121.47?q=31.23,121.47(")
    assert "配送费" in text_of(page, "money") and text_of(page, "due") == "¥61.90"
    assert page.find_element(By.ID, "call").get_attribute("href") == "tel:13912345678"
    # No shift open on this phone: arriving and the door are not offered, and the app says why.
    assert not page.find_elements(By.ID, "arrive") and not page.find_elements(By.ID, "door")
    assert "到达：请先开始班次（出车检查）" in page.find_element(By.CSS_SELECTOR, "[data-step=arrive]").text
    assert "上门交接：请先开始班次" in page.find_element(By.CSS_SELECTOR, "[data-step=door]").text
    _check(page, tmp_path, "task")

    # The call: the outcome asked, the attempt queued, synced, at the server.
    page.execute_script("document.getElementById('call').addEventListener('click', e => e.preventDefault());"
                        "document.getElementById('call').click()")  # the dialer stays shut in the test
    _wait(page, "#call-outcome button[data-outcome='no_answer']")
    _check(page, tmp_path, "task-call")
    page.find_element(By.CSS_SELECTOR, "#call-outcome button[data-outcome='no_answer']").click()
    _until(page, lambda d: "无人接听" in d.find_element(By.ID, "task-message").text)
    assert "联系客户" in text_of(page, "task-ops")  # queued (Background Sync may already have sent it: online)
    assert "同步完成" in _sync(page)
    assert _appointment(early_a["id"])["attempts"] == ["no_answer"]

    # Confirm a window: a bad one is refused in words and nothing queued; a good one reaches the server.
    tomorrow = (datetime.now(DEPOT_TZ) + timedelta(days=1)).date().isoformat()
    page.execute_script(f"location.hash = '/tasks/{early_a['id']}/appointment'")
    _wait(page, "#confirm-form")
    set_value = "document.getElementById(arguments[0]).value = arguments[1]"
    page.execute_script(set_value, "confirm-date", tomorrow)
    page.execute_script(set_value, "confirm-start", "12:00")
    page.execute_script(set_value, "confirm-end", "10:00")
    page.find_element(By.ID, "confirm-save").click()
    assert "结束时间必须晚于开始时间" in text_of(page, "appt-message")
    _check(page, tmp_path, "appointment")
    page.execute_script(set_value, "confirm-end", "14:00")
    page.find_element(By.ID, "confirm-save").click()
    _until(page, lambda d: d.find_elements(By.ID, "task-message")
                                  and "已保存" in d.find_element(By.ID, "task-message").text)
    assert "同步完成" in _sync(page)
    appointment = _appointment(early_a["id"])
    assert appointment["status"] == "confirmed"
    [(start, via)] = appointment["agreed"]
    start = start if start.tzinfo else start.replace(tzinfo=timezone.utc)
    assert start.astimezone(DEPOT_TZ).strftime("%Y-%m-%d %H:%M") == f"{tomorrow} 12:00" and via == "phone"

    # A rejected op: dispatch cancels a task the phone still shows; the confirm made on it is refused.
    answer = client.post(f"/api/v1/dispatch/tasks/{doomed['id']}/cancel", json={"reason": "customer cancelled"},
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    set_offline(page, True)  # the phone has not heard of it yet (online, Background Sync would pull at once)
    try:
        with count_requests(app) as seen:
            page.execute_script(f"location.hash = '/tasks/{doomed['id']}/appointment'")
            _wait(page, "#confirm-form")
            page.execute_script(set_value, "confirm-date", tomorrow)
            page.execute_script(set_value, "confirm-start", "15:00")
            page.execute_script(set_value, "confirm-end", "16:00")
            page.find_element(By.ID, "confirm-save").click()
            _wait(page, "#task-message")
        assert_nothing_got_through(seen)
    finally:
        set_offline(page, False)
    _sync(page)
    problem = _wait(page, "#problem-ops li")
    code = problem.find_element(By.CSS_SELECTOR, ".op-code").get_attribute("data-code")
    assert code == "task_closed"  # an appointment op on a cancelled task (docs/protocol.md)
    assert "任务已结束或已取消，不能再预约" in problem.text and "确认预约" in problem.text and "被拒绝" in problem.text
    assert "被拒 1" in text_of(page, "bar-queue")
    _check(page, tmp_path, "queue")
    # The cancelled task left the day; WB-EARLY-A moved to its new window, tomorrow.
    page.execute_script("location.hash = '/'")
    _wait(page, "#open-tasks")
    waybills = [li.get_attribute("data-waybill") for li in page.find_elements(By.CSS_SELECTOR, "#open-tasks li")]
    assert waybills == ["WB-EARLY-B", "WB-LATE-1", "WB-EARLY-A"], late

    # The language switch: everything in English, kept on a reload.
    click(page, "#lang")  # the bar may redraw as the last sync's news lands
    _until(page, lambda d: "Today's tasks" in d.find_element(By.ID, "view").text)
    assert "Online" in text_of(page, "net")
    _check(page, tmp_path, "day-en")
    page.execute_script(f"location.hash = '/tasks/{early_a['id']}'")
    _wait(page, "#phrase")
    assert "Hello! I'm your courier; your parcel (waybill" in page.find_element(By.ID, "view").text
    _check(page, tmp_path, "task-en")
    page.execute_script("location.hash = '/sync'")
    _wait(page, "#problem-ops li")
    assert "Refused" in page.find_element(By.ID, "problem-ops").text
    _check(page, tmp_path, "queue-en")
    page.execute_script("location.hash = '/settings'")
    _wait(page, "#lang-zh")
    _check(page, tmp_path, "settings-en")
    page.refresh()
    _wait(page, "#lang-zh")
    assert "Settings" in page.find_element(By.ID, "view").text
    click(page, "#lang-zh")
    _until(page, lambda d: "设置" in d.find_element(By.ID, "view").text)

    # Dispatch revokes the phone: the next sync says so in words and leads to re-enrollment.
    device_id = text_of(page, "device-id").split("：")[-1].strip()
    answer = client.post(f"/api/v1/dispatch/devices/{device_id}/revoke", headers=make.headers("dispatcher"))
    assert answer.status_code in (200, 204), answer.json
    page.execute_script("location.hash = '/sync'")

    def revoked_shown(driver) -> bool:
        """The revocation shown; until then press Sync (the automatic sync may get there first)."""
        if driver.find_elements(By.ID, "revoked"):
            return True
        buttons = driver.find_elements(By.CSS_SELECTOR, "#sync-run:not([disabled])")
        if buttons:
            buttons[0].click()
        return False
    _until(page, revoked_shown)
    assert not page.find_elements(By.ID, "sync-run")  # nothing to sync with until enrolled again
    assert "本机已被注销" in text_of(page, "revoked")
    assert "本机已被调度注销：请重新登记" in text_of(page, "sync-error")
    _check(page, tmp_path, "queue-revoked")
    page.find_element(By.ID, "reenroll-now").click()
    assert "本机已被调度注销" in text_of(page, "enroll-revoked")
    _check(page, tmp_path, "enroll-revoked")


def _notes(task_id: str) -> list[str]:
    """The notes the server holds on a task, read and let go at once."""
    db.session.expire_all()
    try:
        return [e.text for e in db.session.scalars(select(TaskEvent).where(
            TaskEvent.task_id == task_id, TaskEvent.kind == "note"))]
    finally:
        db.session.rollback()


def test_offline_note_then_back_online_and_an_empty_day(narrow, live_server, app, make, tmp_path):
    """Offline: the bar says so, a note is kept on the phone and counted as pending; online again the sync
    takes it to the server. A courier with no task sees the empty day."""
    page = narrow
    use_build(app)
    day = courier_with_day(make, tasks=1)
    task = day["tasks"][0]
    page.get(app_link(live_server, day["code"]))
    _wait(page, "#enroll-code")
    page.find_element(By.ID, "enroll-submit").click()
    _wait(page, "#open-tasks")
    wait_controlled(page)
    page.execute_script(f"location.hash = '/tasks/{task['id']}'")
    _wait(page, "#note-text")
    # Offline: nothing reaches the server (a Background Sync waking a fresh service worker included).
    set_offline(page, True)
    try:
        with count_requests(app) as seen:
            page.execute_script("window.dispatchEvent(new Event('offline'))")  # headless may not fire it itself
            _until(page, lambda d: "离线" in d.find_element(By.ID, "net").text)
            page.find_element(By.ID, "note-text").send_keys("门口有狗，请先打电话")
            page.find_element(By.CSS_SELECTOR, "#note-form button[type=submit]").click()
            _until(page, lambda d: "备注已保存" in d.find_element(By.ID, "task-message").text)
            assert _notes(task["id"]) == []
            assert "待同步 1" in text_of(page, "bar-queue")
            assert "门口有狗" in text_of(page, "notes") and "待同步" in text_of(page, "task-ops")
            _check(page, tmp_path, "task-offline")
        assert_nothing_got_through(seen)
    finally:
        set_offline(page, False)
    page.execute_script("window.dispatchEvent(new Event('online'))")
    _sync(page)
    assert "门口有狗，请先打电话" in _notes(task["id"])
    assert "待同步 0" in text_of(page, "bar-queue")

    # Another courier, no task at all: the empty day.
    empty = courier_with_day(make, tasks=0, templates=False)
    page.execute_script("location.hash = '/settings'")
    page.get(app_link(live_server, empty["code"]))
    _wait(page, "#enroll-code")
    page.find_element(By.ID, "enroll-submit").click()
    assert "今天没有任务" in text_of(page, "day-empty")
    _check(page, tmp_path, "day-empty")

"""The courier's app (issue 25): the shift in headless Chromium, as the company's rules order it ("Conduct and vans
are checked before and after each trip; a van with a safety defect does not go out until maintenance certifies the
repair"), and an appeal of a violation; every step queued offline and judged again by the server."""
import base64

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import Attachment, Shift, Vehicle, VehicleDefect, Violation
from tests.browser.conftest import assert_accessible, assert_no_csp_violation, require_browser, screenshot, text_with
from tests.api.test_training import course, train
from tests.browser.courier_app import courier_with_day, open_app, require_app, set_offline, use_build

require_browser()
require_app()

from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DEPOT = {"latitude": 31.2300, "longitude": 121.4700, "accuracy": 10}
# A real 16×16 JPEG (made once with Pillow), as a phone's camera would hand the file input one.
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAoHBwgHBgoICAgLCgoLDhgQDg0NDh0VFhEYIx8lJCIfIiEmKzcvJik0KSEiMEExNDk7Pj4+JS5ESUM8"
    "SDc9Pjv/2wBDAQoLCw4NDhwQEBw7KCIoOzs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozv/wAARCAAQABAD"
    "ASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKB"
    "kaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZ"
    "mqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQF"
    "BgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5"
    "OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX"
    "2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDn6KKK8k/QD//Z")


_STATES = """
const done = arguments[arguments.length - 1];
const open = indexedDB.open("fieldops");
open.onsuccess = () => {
  const db = open.result;
  const all = db.transaction("queue", "readonly").objectStore("queue").getAll();
  all.onsuccess = () => { db.close(); done(all.result.map((op) => [op.type, op.state, op.result && op.result.code])); };
};
"""


def queue(page) -> list[list]:
    """The app's queue as [type, state, code], in seq order (read from its IndexedDB)."""
    return page.execute_async_script(_STATES)


def enroll(page, live_server: str, code: str) -> None:
    """Enroll the app with the code an enrollment QR carries (its app link fills it in); the first sync follows."""
    open_app(page, live_server, f"/enroll?code={code}")
    wait_for(page, "#enroll-code")
    click(page, "#enroll-submit")
    wait_for(page, "#open-tasks", 30)


def sync(page) -> None:
    """Sync now from the queue screen (its button) until nothing is left pending, then back to the shift screen.

    The button is pressed again while ops are pending: a round the app began on its own while it was still offline
    (its timer, the online event) may end with "no network" just as the network comes back. The test's own reads
    are let go first: an open read would hold SQLite's lock against the live server's writes.
    """
    db.session.rollback()
    page.execute_script("location.hash = '/sync'")
    until = WebDriverWait(page, 10, ignored_exceptions=(WebDriverException,)).until
    for _attempt in range(4):
        until(lambda d: d.find_element(By.ID, "sync-run").click() or True)  # the screen redraws itself: try again
        try:
            until(lambda d: "同步完成" in d.find_element(By.ID, "view").text and not any(
                state == "pending" for _type, state, _code in queue(page)))
            break
        except TimeoutException:
            continue
    assert not any(state == "pending" for _type, state, _code in queue(page)), queue(page)
    page.execute_script("location.hash = '/shift'")
    wait_for(page, "#shift-state")


def jpeg_file(tmp_path) -> str:
    """The JPEG as a file the file input can take."""
    path = tmp_path / "defect.jpg"
    path.write_bytes(JPEG)
    return str(path)


def wait_for(page, css: str, timeout: float = 15):
    """The element once it is on the screen."""
    return WebDriverWait(page, timeout).until(lambda driver: (driver.find_elements(By.CSS_SELECTOR, css) or [None])[0])


def click(page, css: str) -> None:
    """Click an element (scrolled into view first); a screen a sync redrew meanwhile is tried again."""
    def press(driver):
        element = driver.find_element(By.CSS_SELECTOR, css)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()
        return True

    WebDriverWait(page, 15, ignored_exceptions=(WebDriverException,)).until(press)


def type_into(page, css: str, text: str) -> None:
    """Type into a field: found again if a sync's news redrew the screen before the typing began (once the courier
    types, the screen waits)."""
    def typed(driver) -> bool:
        field = driver.find_element(By.CSS_SELECTOR, css)
        field.clear()
        field.send_keys(text)
        return field.get_attribute("value") == text

    WebDriverWait(page, 15, ignored_exceptions=(WebDriverException,)).until(typed)


def fill(page, template: dict, *, fail: dict[str, str | None] = (), odometer: int = 1000) -> None:
    """Answer every item of the open checklist as passing but those in `fail` (item -> a photo file or None)."""
    fail = dict(fail)
    wait_for(page, "#checklist")
    for item in template["items"]:
        code = item["code"]
        if item["type"] == "pass_fail":
            click(page, f"#item-{code}-{'fail' if code in fail else 'pass'}")
        elif item["type"] == "choice":
            choice = item["failing_choices"][0] if code in fail else next(
                c for c in item["choices"] if c not in item["failing_choices"])
            click(page, f"#item-{code}-{choice}")
        elif item["type"] == "number":
            field = wait_for(page, f"#item-{code}")
            field.clear()
            value = odometer if code == "odometer" else ((item["max"] or 0) + 1 if code in fail else item["min"] or 0)
            field.send_keys(str(value))
            page.execute_script("arguments[0].dispatchEvent(new Event('change'))", field)
        if fail.get(code):
            page.find_element(By.ID, f"photo-{code}").send_keys(fail[code])
            wait_for(page, f"[data-item='{code}'] img.photo-preview")
    click(page, "#get-position")
    text_with(page, "#position", "31.23", timeout=15)


def look(page, tmp_path, name: str) -> None:
    """Screenshot the whole screen at 360 px (to look at), and check it: axe-core finds nothing serious, no CSP
    violation."""
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), name  # 360 px
    height = page.execute_script("return document.documentElement.scrollHeight")
    page.set_window_size(360, max(780, height + 100))
    screenshot(page, tmp_path, f"app-shift-{name}")
    page.set_window_size(360, 780)
    assert_accessible(page)
    assert_no_csp_violation(page)


@pytest.fixture
def phone(page, live_server, app):
    """The browser as a 360 px phone at the depot (its position given, never invented)."""
    use_build(app)
    page.set_window_size(360, 780)
    page.execute_cdp_cmd("Browser.grantPermissions", {"origin": live_server, "permissions": ["geolocation"]})
    page.execute_cdp_cmd("Emulation.setGeolocationOverride", DEPOT)
    yield page
    db.session.rollback()
    set_offline(page, False)
    page.execute_cdp_cmd("Emulation.clearGeolocationOverride", {})
    page.execute_script("localStorage.clear(); indexedDB.deleteDatabase('fieldops')")


def day(make, phone, live_server) -> tuple[dict, dict, dict]:
    """A courier with a van (dispatch API) and the app enrolled for them, on #/shift: (courier, van, templates)."""
    made = courier_with_day(make, tasks=1)
    enroll(phone, live_server, made["code"])
    phone.execute_script("location.hash = '/shift'")
    wait_for(phone, "#shift-state")
    templates = {t["kind"]: t for t in make.client.get("/api/v1/dispatch/checklist-templates",
                                                       headers=make.headers("quality")).json["items"]}
    return made["courier"], made["van"], templates


def test_a_shift_start_with_a_critical_van_defect(phone, app, live_server, make, client, tmp_path):
    """The issue's proof: the conduct check passed, a pre-trip failing the safety item technical_condition with its
    photo (a real JPEG through the file input), queued offline: at once the app counts the van as grounded and does not
    offer the shift; after sync the server's van is out_of_service with the defect and the app still says why."""
    courier, van, templates = day(make, phone, live_server)
    set_offline(phone, True, app)
    assert text_with(phone, "#shift-state", "还没有开始班次") == "还没有开始班次。"
    assert not phone.find_elements(By.ID, "start-shift")
    text_with(phone, "#start-why", "上岗前仪容检查")
    look(phone, tmp_path, "before")
    click(phone, "#do-conduct-pre_shift")
    fill(phone, templates["conduct.pre_shift"])
    look(phone, tmp_path, "conduct")
    click(phone, "#submit-check")
    wait_for(phone, "#step-conduct-pre_shift.done")
    click(phone, "#do-vehicle-pre_trip")
    wait_for(phone, "#last-report")
    fill(phone, templates["vehicle.pre_trip"], fail={"technical_condition": jpeg_file(tmp_path)}, odometer=1000)
    text_with(phone, "#checklist-status", "车辆立即停用")
    look(phone, tmp_path, "pre-trip-critical")
    click(phone, "#submit-check")
    text_with(phone, "#start-why", "维修人员确认修复前不能出车", "车辆技术状况良好")
    assert not phone.find_elements(By.ID, "start-shift")
    assert text_with(phone, "#van-status", "停用") == "停用"
    assert len(phone.find_elements(By.CSS_SELECTOR, ".badge.pending")) == 2
    look(phone, tmp_path, "grounded-offline")
    # Online: both checks applied; the server grounded the van with the defect and its photo.
    assert queue(phone) == [["checklist.submit", "pending", None]] * 2
    set_offline(phone, False)
    sync(phone)
    assert queue(phone) == [["checklist.submit", "applied", None]] * 2
    db.session.expire_all()
    vehicle = db.session.get(Vehicle, van["id"])
    assert vehicle.status == "out_of_service"
    [defect] = db.session.scalars(select(VehicleDefect).where(VehicleDefect.vehicle_id == van["id"])).all()
    assert (defect.item, defect.severity, defect.status) == ("technical_condition", "critical", "open")
    # The defect keeps its photo: the camera's JPEG, uploaded before the check was pushed.
    photo = db.session.get(Attachment, defect.value["photo"])
    assert photo is not None and photo.content_type == "image/jpeg"
    assert text_with(phone, "#start-why", "车辆已停用") == "车辆已停用：维修人员确认修复前不能出车，不能开始班次。"
    assert not phone.find_elements(By.ID, "start-shift")
    assert not phone.find_elements(By.CSS_SELECTOR, ".badge.pending")
    look(phone, tmp_path, "grounded-synced")
    # In English too.
    phone.execute_script("localStorage.setItem('fieldops.lang', 'en')")
    phone.refresh()
    text_with(phone, "#start-why", "maintenance must certify the repair")
    look(phone, tmp_path, "grounded-en")
    assert db.session.scalar(select(Shift).where(Shift.courier_id == courier["id"])) is None
    defect_id = defect.id
    phone.execute_script("localStorage.setItem('fieldops.lang', 'zh')")
    phone.refresh()
    wait_for(phone, "#start-why")

    # Maintenance certifies the repair: the van is back in service at the server. Its newest pre-trip still failed a
    # safety item, so (as the server rules) the shift needs a new pre-trip, acknowledging the report and its repair.
    db.session.rollback()
    answer = client.post(f"/api/v1/dispatch/vehicles/{van['id']}/defects/{defect_id}/repair",
                         json={"note": "刹车片已更换"}, headers=make.headers("maintenance"))
    assert answer.status_code == 200, answer.json
    sync(phone)
    text_with(phone, "#start-why", "修复后请重新做出车检查")
    assert not phone.find_elements(By.ID, "start-shift")
    click(phone, "#do-vehicle-pre_trip")
    text_with(phone, "#last-report", "车辆技术状况良好（严重）：已修复", "维修说明：刹车片已更换")
    fill(phone, templates["vehicle.pre_trip"], odometer=1010)
    click(phone, "#submit-check")
    text_with(phone, "#checklist-status", "请先确认已查看上一次检查的问题")  # not sent without it
    look(phone, tmp_path, "pre-trip-acknowledge")
    click(phone, "#acknowledge")
    click(phone, "#submit-check")
    odometer = wait_for(phone, "#start-odometer")
    assert odometer.get_attribute("value") == "1010"
    click(phone, "#start-shift")
    wait_for(phone, "#shift-state.ok")
    sync(phone)
    assert queue(phone)[2:] == [["checklist.submit", "applied", None], ["shift.start", "applied", None]]
    db.session.expire_all()
    [shift] = db.session.scalars(select(Shift).where(Shift.courier_id == courier["id"])).all()
    assert (shift.status, shift.start_odometer) == ("open", 1010)


def test_a_minor_defect_the_shift_starts_and_ends_with_the_post_trip(phone, app, live_server, make, client, tmp_path):
    """A pre-trip with a minor defect (photo): the shift is offered and started; at the server the shift is open.
    The end needs the post-trip; an end reading below the start is warned of; the shift ends at the server."""
    courier, van, templates = day(make, phone, live_server)
    set_offline(phone, True, app)
    click(phone, "#do-conduct-pre_shift")
    fill(phone, templates["conduct.pre_shift"])
    click(phone, "#submit-check")
    click(phone, "#do-vehicle-pre_trip")
    fill(phone, templates["vehicle.pre_trip"], fail={"body_clean": jpeg_file(tmp_path)}, odometer=1200)
    click(phone, "#submit-check")
    odometer = wait_for(phone, "#start-odometer")
    assert odometer.get_attribute("value") == "1200" and not phone.find_elements(By.ID, "start-why")
    look(phone, tmp_path, "ready")
    click(phone, "#start-shift")
    text_with(phone, "#shift-state.ok", "班次进行中", "等待上传")
    text_with(phone, "#end-why", "车辆收车检查")
    assert not phone.find_elements(By.ID, "end-shift")
    set_offline(phone, False)
    sync(phone)
    assert queue(phone) == [["checklist.submit", "applied", None]] * 2 + [["shift.start", "applied", None]]
    db.session.expire_all()
    [shift] = db.session.scalars(select(Shift).where(Shift.courier_id == courier["id"])).all()
    assert (shift.status, shift.vehicle_id, shift.start_odometer) == ("open", van["id"], 1200)
    shift_id = shift.id
    assert db.session.get(Vehicle, van["id"]).status == "in_service"
    look(phone, tmp_path, "open")
    # The end: the post-trip, then the odometer (below the start: warned).
    click(phone, "#do-vehicle-post_trip")
    fill(phone, templates["vehicle.post_trip"], odometer=1180)
    click(phone, "#submit-check")
    # (read where they are: a sync's news may redraw the screen while the courier has not begun typing)
    until = WebDriverWait(phone, 15, ignored_exceptions=(WebDriverException,)).until
    assert until(lambda d: d.find_element(By.ID, "end-odometer").get_attribute("value")) == "1180"
    until(lambda d: d.find_element(By.ID, "odometer-warn").is_displayed())
    text_with(phone, "#odometer-warn", "低于开始读数 1200")
    look(phone, tmp_path, "end-warn")
    type_into(phone, "#end-odometer", "1260")  # (a sync's news may have redrawn the screen since it was read)
    assert not phone.find_element(By.ID, "odometer-warn").is_displayed()
    click(phone, "#end-shift")
    wait_for(phone, "#step-conduct-pre_shift")
    assert text_with(phone, "#shift-state", "还没有开始班次") == "还没有开始班次。"
    sync(phone)
    assert queue(phone)[3:] == [["checklist.submit", "applied", None], ["shift.end", "applied", None]]
    db.session.expire_all()
    shift = db.session.get(Shift, shift_id)
    assert (shift.status, shift.end_odometer, shift.flags) == ("ended", 1260, [])


def test_an_appeal_of_a_conduct_violation(phone, app, live_server, make, client, tmp_path):
    """A conduct check with a failed item (made in the app, through the push path) records conduct_item_failed; the
    app shows the grade and the violation and appeals it with a reason and a photo; at the server it is appealed,
    and the app then shows the appeal under review, offering no second one."""
    courier, _van, templates = day(make, phone, live_server)
    set_offline(phone, True, app)
    click(phone, "#do-conduct-pre_shift")
    fill(phone, templates["conduct.pre_shift"], fail={"uniform": None})
    click(phone, "#submit-check")
    wait_for(phone, "#step-conduct-pre_shift.done")
    set_offline(phone, False)
    sync(phone)
    assert queue(phone) == [["checklist.submit", "applied", None]]
    [violation] = db.session.scalars(select(Violation).where(Violation.courier_id == courier["id"])).all()
    assert violation.code == "conduct_item_failed"
    phone.execute_script("location.hash = '/violations'")
    text_with(phone, f"#violation-{violation.id}", "仪容检查不合格", "待处理")
    look(phone, tmp_path, "violations")
    click(phone, f"#violation-{violation.id} summary")
    reason = wait_for(phone, f"#appeal-reason-{violation.id}")
    reason.send_keys("工装当天送洗，已向站长报备")
    phone.find_element(By.ID, f"photo-appeal-{violation.id}").send_keys(jpeg_file(tmp_path))
    text_with(phone, f"#appeal-{violation.id} .photo-state", "1", timeout=10)
    set_offline(phone, True, app)
    look(phone, tmp_path, "appeal-form")
    click(phone, f"#appeal-{violation.id} button[type=submit]")
    text_with(phone, f"#violation-{violation.id} .badge.pending", "申诉已保存")
    set_offline(phone, False)
    sync(phone)
    assert queue(phone)[-1] == ["violation.appeal", "applied", None]
    db.session.expire_all()
    assert db.session.get(Violation, violation.id).status == "appealed"
    phone.execute_script("location.hash = '/violations'")
    text_with(phone, f"#violation-{violation.id}[data-status='appealed']", "申诉待审核", "工装当天送洗")
    assert not phone.find_elements(By.CSS_SELECTOR, f"#violation-{violation.id}[data-status='appealed'] form")
    look(phone, tmp_path, "appealed")


def test_a_shift_refused_for_training_is_shown_in_words(phone, app, live_server, make, client, tmp_path):
    """The checks done and the shift started offline by a courier who has not passed the pre-job course: after sync
    the server's training_required is on the shift screen in words (with the course named), no shift is open on the
    phone and none at the server. Once trained, the start is made again and taken."""
    course(make)  # an active pre-job course the courier never passed
    courier, _van, templates = day(make, phone, live_server)
    set_offline(phone, True, app)
    click(phone, "#do-conduct-pre_shift")
    fill(phone, templates["conduct.pre_shift"])
    click(phone, "#submit-check")
    click(phone, "#do-vehicle-pre_trip")
    fill(phone, templates["vehicle.pre_trip"], odometer=1300)
    click(phone, "#submit-check")
    click(phone, "#start-shift")
    wait_for(phone, "#shift-state.ok")
    set_offline(phone, False)
    sync(phone)
    assert queue(phone)[-1] == ["shift.start", "rejected", "training_required"]
    text_with(phone, "#shift-problems [data-code='training_required']", "服务器拒绝了开始班次：尚未完成上岗培训", "PJ-SAFETY")
    assert text_with(phone, "#shift-state", "还没有开始班次") == "还没有开始班次。"
    look(phone, tmp_path, "training-refused")
    assert db.session.scalar(select(Shift).where(Shift.courier_id == courier["id"])) is None
    # Trained (a pass of the course, recorded by quality): the shift is started again and taken; the refusal goes.
    db.session.rollback()
    train(make, courier)
    click(phone, "#start-shift")
    wait_for(phone, "#shift-state.ok")
    sync(phone)
    assert queue(phone)[-1] == ["shift.start", "applied", None]
    assert not phone.find_elements(By.ID, "shift-problems")
    db.session.expire_all()
    assert db.session.scalar(select(Shift.status).where(Shift.courier_id == courier["id"])) == "open"

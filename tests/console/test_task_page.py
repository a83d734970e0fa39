"""A task's page (/console/tasks/<id>) through the Flask client: what it shows of a delivered task, each action
through the real form (CSRF token included), refusals in words, CSRF refused, roles, unknown tasks.

The tasks are built as everywhere else: dispatch over HTTP, the courier's handheld through the push path.
"""
import re
from datetime import timedelta

import pytest

from tests.console.conftest import csrf_in
from tests.sync.conftest import Device, start_shift
from tests.sync.test_appointment_attempts import HERE, _op, _push, _window, clock  # noqa: F401 - clock: fixture
from tests.sync.test_handover import AT_DOOR, PNG, codes, door_ops, upload

PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x41" * 64


@pytest.fixture
def courier(make):
    """A courier."""
    return make.courier()


@pytest.fixture
def device(client, make, courier, server_clock):
    """The courier's handheld, enrolled yesterday, its shift open since seven hours ago."""
    with server_clock.at(server_clock.now() - timedelta(days=1)):
        device = Device(client, make.device(courier))
    with server_clock.at(server_clock.now() - timedelta(hours=7)):
        start_shift(make, courier, device, at=server_clock.now())
    return device


def _delivered(make, courier, device) -> tuple[dict, str, str]:
    """A COD task delivered at the door with a note and its photo: (task, signature sha, photo sha)."""
    task = make.task(courier=courier)
    signature, photo = upload(device), upload(device, PHOTO)
    note = device.op("task.note", task["id"], {"text": "left with the guard's pen", "photos": [photo]})
    assert codes(device.push([note, *door_ops(device, task, signature)])["results"]) == [("applied", None)] * 6
    return task, signature, photo


def _html(response) -> str:
    """The page's text."""
    return response.get_data(as_text=True)


def _task(client, make, task_id: str) -> dict:
    """The task as the API reads it."""
    return client.get(f"/api/v1/dispatch/tasks/{task_id}", headers=make.headers("dispatcher")).json


def test_a_delivered_tasks_page(console_as, client, make, courier, device):
    """The header (masked recipient), every timeline entry, the receipt and its public page, the signature and the
    photo shown through the console's own route; the page in English on request."""
    task, signature, photo = _delivered(make, courier, device)
    dispatcher = console_as("dispatcher")
    page = dispatcher.get(f"/console/tasks/{task['id']}")
    assert page.status_code == 200
    html = _html(page)
    assert task["waybill_no"] in html and "已签收" in html
    assert task["recipient"]["name"] not in html and task["recipient"]["phone"] not in html
    assert "** " + task["recipient"]["name"].split()[-1] in html
    story = client.get(f"/api/v1/dispatch/tasks/{task['id']}/timeline", headers=make.headers("dispatcher")).json
    rows = re.findall(r'<tr id="([a-z]+-[^"]+)" data-kind', html)
    assert rows == [entry["id"] for entry in story["entries"]]
    assert "签收" in html and "核验收件人" in html and "已交付" in html and "left with the guard&#39;s pen" in html
    assert "金额: ¥61.90" in html and "方式: 现金" in html  # COD 49.90 and the delivery fee 12.00, paid in cash
    # Field names, flags and vocabulary values in words (issue 24), not codes.
    assert "method: " not in html and not re.search(r"kv\">[^<]*: (True|False)<", html)
    receipt = story["receipt"]
    assert f'id="receipt-number">{receipt["number"]}<' in html and f'href="{receipt["url"]}"' in html
    for sha in (signature, photo):
        src = f"/console/tasks/{task['id']}/attachments/{sha}"
        assert f'src="{src}"' in html
        image = dispatcher.get(src)
        assert image.status_code == 200 and image.mimetype == "image/png" and image.data.startswith(b"\x89PNG")
        assert "img-src 'self'" in image.headers["Content-Security-Policy"]
    other, _, _ = _delivered(make, courier, device)
    assert dispatcher.get(f"/console/tasks/{other['id']}/attachments/{'0' * 64}").status_code == 404
    english = _html(dispatcher.get(f"/console/tasks/{task['id']}?lang=en"))
    assert f"Waybill {task['waybill_no']}" in english and "Timeline" in english and "recipient checked" in english
    assert "amount: ¥61.90" in english and "method: cash" in english
    # A delivered task is not reassigned, cancelled or given a link: the page offers none of it.
    assert 'id="assign-form"' not in html and 'id="cancel-form"' not in html and 'id="link-form"' not in html


def test_the_images_come_from_the_console_whatever_the_store(storage, console_as, make, courier, device):
    """Kept in a folder or in a bucket, the signature and photo are sent by the console itself (its CSP allows images
    from nowhere else): the bytes as uploaded, never a redirect to the store."""
    task, signature, photo = _delivered(make, courier, device)
    dispatcher = console_as("dispatcher")
    for sha, data in ((signature, PNG), (photo, PHOTO)):
        image = dispatcher.get(f"/console/tasks/{task['id']}/attachments/{sha}")
        assert (image.status_code, image.mimetype, image.data) == (200, "image/png", data), storage


def test_reassign_cancel_and_the_customer_link_through_the_forms(console_as, client, make, courier):
    """Each form calls the API's service: the task moves to the courier chosen, a link is issued and reissued (its QR
    from the console), a cancellation without a reason is refused in words and changes nothing, then one with a
    reason cancels."""
    task = make.task(courier=courier)
    other = make.courier()
    dispatcher = console_as("dispatcher")
    path = f"/console/tasks/{task['id']}"
    token = csrf_in(_html(dispatcher.get(path)))
    assert f'value="{other["id"]}"' in _html(dispatcher.get(path))
    moved = dispatcher.post(f"{path}/assign", data={"csrf_token": token, "courier_id": other["id"]})
    assert moved.status_code == 303 and moved.headers["Location"].endswith(f"{path}?done=assigned")
    assert _task(client, make, task["id"])["courier_id"] == other["id"]
    assert "已改派" in _html(dispatcher.get(moved.headers["Location"]))

    assert "当前没有有效的客户链接" in _html(dispatcher.get(path))
    assert dispatcher.post(f"{path}/customer-link", data={"csrf_token": token}).status_code == 303
    first = re.search(r'id="link-url" href="([^"]+)"', _html(dispatcher.get(path))).group(1)
    assert "/c/" in first and client.get(first).status_code == 200
    qr = dispatcher.get(f"{path}/customer-link/qr.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml"
    assert dispatcher.post(f"{path}/customer-link", data={"csrf_token": token}).status_code == 303
    second = re.search(r'id="link-url" href="([^"]+)"', _html(dispatcher.get(path))).group(1)
    assert second != first and client.get(first).status_code == 410 and client.get(second).status_code == 200

    refused = dispatcher.post(f"{path}/cancel", data={"csrf_token": token, "reason": "  "})
    assert refused.status_code == 422 and 'id="error"' in _html(refused) and "reason" in _html(refused)
    assert _task(client, make, task["id"])["status"] == "assigned"
    cancelled = dispatcher.post(f"{path}/cancel", data={"csrf_token": token, "reason": "customer moved away"})
    assert cancelled.status_code == 303
    assert _task(client, make, task["id"])["cancel_reason"] == "customer moved away"
    again = dispatcher.post(f"{path}/cancel", data={"csrf_token": token, "reason": "twice"})
    assert again.status_code == 422 and "任务已结束" in _html(again)
    inactive = make.courier()
    client.post(f"/api/v1/dispatch/couriers/{inactive['id']}/deactivate", headers=make.headers("dispatcher"))
    fresh = make.task(courier=courier)
    answer = dispatcher.post(f"/console/tasks/{fresh['id']}/assign",
                             data={"csrf_token": token, "courier_id": inactive["id"]})
    assert answer.status_code == 422 and "这个快递员已停用" in _html(answer)


def test_a_conflict_and_a_review_settled_on_the_page(console_as, client, make, courier, device, clock):  # noqa: F811
    """A reassigned courier's late arrival (a conflict) and an arrival at a stop without coordinates (a window under
    review) are on the page with their forms; each form settles its item through the dispatch service."""
    start = clock.now() + timedelta(hours=1)
    spec = make.task_spec(window=_window(start))
    spec["recipient"] = {k: v for k, v in spec["recipient"].items() if k not in ("lat", "lon")}
    task = make.task(courier=courier, **spec)
    _push(device, _op(device, clock, "appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}))
    clock.set(start + timedelta(minutes=10))
    [arrived] = _push(device, _op(device, clock, "stop.arrive", task["id"], HERE))
    window = arrived["entity"]["data"]["appointment"]["windows"][-1]
    assert window["outcome"] == "review"
    stale = make.task(courier=courier)
    make.assign(stale["id"], make.courier()["id"])
    [conflicted] = _push(device, _op(device, clock, "stop.arrive", stale["id"], AT_DOOR) | {
        "base_version": stale["version"]})
    assert conflicted["status"] == "conflict"

    dispatcher = console_as("dispatcher")
    html = _html(dispatcher.get(f"/console/tasks/{task['id']}"))
    assert f'id="settle-review-{window["id"]}"' in html and "location_unknown" in html
    token = csrf_in(html)
    decided = dispatcher.post(f"/console/tasks/{task['id']}/review", data={
        "csrf_token": token, "window_id": str(window["id"]), "outcome": "kept", "note": "the gate's camera shows him"})
    assert decided.status_code == 303, _html(decided)
    story = client.get(f"/api/v1/dispatch/tasks/{task['id']}/timeline", headers=make.headers("dispatcher")).json
    assert story["open_reviews"] == []
    [review] = [e for e in story["entries"] if e["kind"] == "review"]
    assert review["data"]["outcome"] == "kept" and review["to_settle"] is False
    nothing = dispatcher.post(f"/console/tasks/{task['id']}/review", data={
        "csrf_token": token, "outcome": "kept", "note": "again"})
    assert nothing.status_code == 409 and "没有需要复核的时段" in _html(nothing)

    html = _html(dispatcher.get(f"/console/tasks/{stale['id']}"))
    [conflict_id] = re.findall(r'id="settle-conflict-(\d+)"', html)
    assert '<option value="dispatch_stands">以调度记录为准</option>' in html
    wrong_task = dispatcher.post(f"/console/tasks/{task['id']}/resolve",
                                 data={"csrf_token": token, "conflict_id": conflict_id, "resolution": "dispatch_stands"})
    assert wrong_task.status_code == 404
    bad = dispatcher.post(f"/console/tasks/{stale['id']}/resolve",
                          data={"csrf_token": token, "conflict_id": conflict_id, "resolution": "as you like"})
    assert bad.status_code == 422 and "resolution" in _html(bad)
    resolved = dispatcher.post(f"/console/tasks/{stale['id']}/resolve", data={
        "csrf_token": token, "conflict_id": conflict_id, "resolution": "dispatch_stands", "note": "on purpose"})
    assert resolved.status_code == 303
    conflicts = client.get("/api/v1/dispatch/conflicts", query_string={"task_id": stale["id"]},
                           headers=make.headers("dispatcher")).json["items"]
    assert [(c["status"], c["resolution"], c["note"]) for c in conflicts] == [("resolved", "dispatch_stands",
                                                                               "on purpose")]
    assert 'id="settle-conflict-' not in _html(dispatcher.get(f"/console/tasks/{stale['id']}"))


def test_csrf_roles_and_unknown_tasks(console_as, client, make, courier, app):
    """A post without the session's token is refused and changes nothing; quality staff read the page without its
    forms and are refused its actions; maintenance staff are refused the page; an unknown task is a 404 page."""
    task = make.task(courier=courier)
    path = f"/console/tasks/{task['id']}"
    dispatcher = console_as("dispatcher")
    for data in ({"reason": "no token"}, {"reason": "wrong token", "csrf_token": "x" * 43}):
        refused = dispatcher.post(f"{path}/cancel", data=data)
        assert refused.status_code == 400
    assert _task(client, make, task["id"])["status"] == "assigned"

    quality = console_as("quality")
    page = quality.get(path)
    assert page.status_code == 200 and task["waybill_no"] in _html(page)
    assert 'id="cancel-form"' not in _html(page) and 'id="customer-link"' not in _html(page)
    token = csrf_in(_html(page))
    assert quality.post(f"{path}/cancel", data={"csrf_token": token, "reason": "not mine"}).status_code == 403
    assert quality.get(f"{path}/customer-link/qr.svg").status_code == 403
    assert _task(client, make, task["id"])["status"] == "assigned"
    assert console_as("maintenance").get(path).status_code == 403

    missing = dispatcher.get("/console/tasks/t-nosuchtask")
    assert missing.status_code == 404 and "找不到这个任务" in _html(missing)
    token = csrf_in(_html(dispatcher.get(path)))
    assert dispatcher.post("/console/tasks/t-nosuchtask/cancel",
                           data={"csrf_token": token, "reason": "gone"}).status_code == 404
    assert dispatcher.get(f"{path}/customer-link/qr.svg").status_code == 404  # no link issued yet
    assert client.get(path).status_code in (302, 303)  # not signed in: to the sign-in form

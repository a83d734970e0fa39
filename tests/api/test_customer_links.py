"""Customer links: dispatch issues them (roles, input, QR), and the page refuses what it must (test client)."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from server.models import CustomerLink
from server.extensions import db


def issue(client, make, task_id: str, body: dict | None = None, role: str = "dispatcher"):
    """POST the customer-link route."""
    return client.post(f"/api/v1/dispatch/tasks/{task_id}/customer-link", json=body or {},
                       headers=make.headers(role))


def page_path(url: str) -> str:
    """The path of a link URL, for the test client."""
    return url[url.index("/c/"):]


@pytest.fixture
def link(client, make):
    """An issued link for an assigned task: (task, answer)."""
    task = make.task(courier=make.courier(), recipient={"name": "王小明", "phone": "13912345678",
                                                       "address": "上海市黄浦区人民路123号5栋301室"})
    response = issue(client, make, task["id"])
    assert response.status_code == 201, response.json
    return task, response.json


def test_links_use_the_public_url_when_one_is_configured(app, client, make):
    """Behind a proxy, or for the demo on another port, links point where customers reach the service."""
    app.config["PUBLIC_URL"] = "https://fieldops.example.cn/"
    task = make.task(courier=make.courier())
    body = issue(client, make, task["id"]).json
    assert body["url"].startswith("https://fieldops.example.cn/c/foc_")
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    printed = [line for line in result.output.splitlines() if line.startswith("customer link for ")]
    assert len(printed) == 1 and "https://fieldops.example.cn/c/foc_" in printed[0], result.output


def test_dispatch_issues_a_link_with_expiry_and_qr_urls(client, make, link):
    """The answer: a /c/ URL with a signed token, its expiry (48 h by default), QR URLs without the token."""
    _task, body = link
    assert re.fullmatch(r"http://localhost/c/foc_[A-Za-z0-9_.-]+", body["url"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(hours=47) < expires - datetime.now(timezone.utc) <= timedelta(hours=48)
    token = body["url"].rsplit("/", 1)[1]
    for fmt, mimetype, magic in (("png", "image/png", b"\x89PNG"), ("svg", "image/svg+xml", b"<?xml")):
        url = body[f"qr_{fmt}"]
        assert token not in url and url.endswith(f"/qr.{fmt}")
        response = client.get(url, headers=make.headers("dispatcher"))
        assert response.status_code == 200 and response.mimetype == mimetype
        assert response.data.startswith(magic) and response.headers["Cache-Control"] == "no-store"
    assert client.get(body["qr_png"], headers=make.headers("quality")).status_code == 403
    assert client.get(body["qr_png"].replace(".png", ".gif"), headers=make.headers("dispatcher")).status_code == 404


def test_a_new_link_replaces_the_old_one(client, make, link):
    """Issuing again revokes the earlier link: its page is a 410 and its QR is gone."""
    task, first = link
    second = issue(client, make, task["id"]).json
    assert client.get(page_path(first["url"])).status_code == 410
    assert client.get(first["qr_svg"], headers=make.headers("dispatcher")).status_code == 410
    assert client.get(page_path(second["url"])).status_code == 200


def test_only_dispatch_issues_links(client, make):
    """Quality is 403; a courier's device is 403; an unknown task is 404."""
    courier = make.courier()
    task = make.task(courier=courier)
    assert issue(client, make, task["id"], role="quality").status_code == 403
    device_token = make.device(courier)["token"]
    assert issue(client, make, task["id"], role=device_token).status_code == 403
    assert issue(client, make, "t-missing").status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"ttl_hours": 0}, "ttl_hours"),
    ({"ttl_hours": 14 * 24 + 1}, "ttl_hours"),
    ({"ttl_hours": "many"}, "ttl_hours"),
    ({"slots": []}, "slots"),
    ({"slots": "tomorrow"}, "slots"),
    ({"slots": [{"start": "2030-01-01T10:00:00+08:00"}]}, "slots.0.end"),
    ({"slots": [{"start": "2030-01-01T10:00:00+08:00", "end": "2030-01-01T09:00:00+08:00"}]}, "slots.0.end"),
    ({"slots": [{"start": "2030-01-01T10:00:00", "end": "2030-01-01T12:00:00"}]}, "slots.0.start"),
    ({"slots": [{"start": "2020-01-01T10:00:00+08:00", "end": "2020-01-01T12:00:00+08:00"}]}, "slots.0.end"),
    ({"color": "red"}, "color"),
])
def test_bad_input_is_refused_with_its_field(client, make, body, field):
    """Out-of-range TTL, malformed or backwards or past slots, unknown fields: 422 naming the field."""
    task = make.task(courier=make.courier())
    response = issue(client, make, task["id"], body)
    assert response.status_code == 422, response.json
    assert field in response.json["fields"], response.json
    assert db.session.query(CustomerLink).count() == 0


def test_given_slots_and_ttl_are_used(client, make):
    """Dispatch's own slots are offered on the page; the TTL sets the expiry."""
    task = make.task(courier=make.courier())
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    body = issue(client, make, task["id"], {"ttl_hours": 2, "slots": [
        {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}]}).json
    assert datetime.fromisoformat(body["expires_at"]) - datetime.now(timezone.utc) <= timedelta(hours=2)
    page = client.get(page_path(body["url"]) + "?lang=en")
    assert page.status_code == 200
    assert len(re.findall(r'name="slot" value="\d"', page.text)) == 1


def test_no_link_for_a_finished_task(client, make):
    """A cancelled task gets no link."""
    task = make.task(courier=make.courier())
    client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "gone"},
                headers=make.headers("dispatcher"))
    response = issue(client, make, task["id"])
    assert response.status_code == 422 and response.json["code"] == "task_closed"


def test_default_slots_follow_depot_hours_and_never_lie_in_the_past(app):
    """The current window first, then up to four two-hour slots from 09:00 to 21:00 local, after it and after now."""
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from server.services.customer_links import default_slots
    zone = ZoneInfo("Asia/Shanghai")
    task = SimpleNamespace(window_start=datetime(2030, 5, 6, 14, 0, tzinfo=zone),
                           window_end=datetime(2030, 5, 6, 16, 0, tzinfo=zone))
    hours = [(datetime.fromisoformat(s["start"]).astimezone(zone).strftime("%d %H"),
              datetime.fromisoformat(s["end"]).astimezone(zone).strftime("%H"))
             for s in default_slots(task=task, now=datetime(2030, 5, 6, 12, 0, tzinfo=zone))]
    assert hours == [("06 14", "16"), ("06 17", "19"), ("06 19", "21"), ("07 09", "11"), ("07 11", "13")]
    late = default_slots(task=task, now=datetime(2030, 5, 6, 20, 30, tzinfo=zone))
    assert [datetime.fromisoformat(s["start"]).astimezone(zone).strftime("%d %H") for s in late] == \
        ["07 09", "07 11", "07 13", "07 15"]

"""Customer ratings on the customer page: only after the handover, once per task (a race too), and in the grade."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import Rating
from tests.api.test_customer_page import csrf_of, issue, path_of
from tests.sync.conftest import Device, at_once, start_shift
from tests.sync.test_handover import due, inspect_ok, sign, upload, verify


def deliver(device: Device, task: dict) -> None:
    """The whole doorstep handover from the handheld: verify, inspect, pay, sign."""
    signature = upload(device)
    results = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                           device.op("pod.inspect", task["id"], inspect_ok(task)),
                           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                           device.op("pod.sign", task["id"], sign(signature))])["results"]
    assert [r["status"] for r in results] == ["applied"] * 4, results


@pytest.fixture
def scene(client, make):
    """A courier, their handheld, a task and its customer link (issued while the task was open)."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    start_shift(make, courier, device)  # the day begins with the checks: the handover is made in a shift
    task = make.task(courier=courier)
    return courier, device, task, path_of(issue(client, make, task["id"]))


def post_rating(client, link: str, **form):
    """Post the rating form with the page's CSRF token."""
    page = client.get(link)
    return client.post(f"{link}/rating", data={"csrf": csrf_of(page), **form})


def ratings_of(task_id: str) -> list[tuple]:
    """(score, comment, link_id) of the task's ratings."""
    db.session.expire_all()
    return [(r.score, r.comment, r.link_id) for r in db.session.scalars(select(Rating).where(Rating.task_id == task_id))]


def test_the_page_asks_for_a_rating_only_after_the_handover(client, scene):
    """Open task: no rating form, and a posted rating is refused; delivered: the form, then the score."""
    _courier, device, task, link = scene
    open_page = client.get(link).text
    assert 'id="send-rating"' not in open_page and "<h1>预约确认</h1>" in open_page
    early = post_rating(client, link, score="5")
    assert early.status_code == 422 and "交接完成后才能评价" in early.text
    assert ratings_of(task["id"]) == []
    deliver(device, task)
    page = client.get(link)
    assert 'id="send-rating"' in page.text and 'id="score-5"' in page.text
    # Finished: the page is the order's, no longer an appointment to confirm.
    assert "<title>你的订单</title>" in page.text and "<h1>你的订单</h1>" in page.text and "预约确认" not in page.text
    sent = post_rating(client, link, score="4", comment="  准时，态度好  ")
    assert sent.status_code == 303 and "done=rated" in sent.headers["Location"]
    after = client.get(sent.headers["Location"])
    assert "评价已提交" in after.text and '<strong id="rated-score">4</strong>' in after.text
    assert 'id="send-rating"' not in after.text
    link_id = db.session.scalar(select(Rating.link_id))
    assert ratings_of(task["id"]) == [(4, "准时，态度好", link_id)] and link_id.startswith("l")


def test_a_second_rating_is_refused_politely(client, scene):
    """Once per task: a second post (another tab) gets a friendly 409 page; the first stands."""
    _courier, device, task, link = scene
    deliver(device, task)
    stale = client.get(link)  # a second tab, opened before the first rating
    assert post_rating(client, link, score="5").status_code == 303
    again = client.post(f"{link}/rating", data={"csrf": csrf_of(stale), "score": "1"})
    assert again.status_code == 409 and "已经评价过了" in again.text
    english = client.post(f"{link}/rating", data={"csrf": csrf_of(stale), "score": "1", "lang": "en"})
    assert english.status_code == 409 and "already rated" in english.text
    assert [r[0] for r in ratings_of(task["id"])] == [5]


def test_ratings_posted_at_once_keep_one(client, scene):
    """Four posts at the same moment: one rating, the others refused (the unique key decides a race)."""
    _courier, device, task, link = scene
    deliver(device, task)
    token = csrf_of(client.get(link))
    cookie = client.get_cookie("fo_visit", path="/c/")

    def post():
        other = client.application.test_client()
        other.set_cookie("fo_visit", cookie.value, path="/c/")
        return other.post(f"{link}/rating", data={"csrf": token, "score": "3"}).status_code

    codes = sorted(at_once(post, 4))
    assert codes == [303, 409, 409, 409]
    assert [r[0] for r in ratings_of(task["id"])] == [3]


@pytest.mark.parametrize("form", [{"score": "0"}, {"score": "6"}, {"score": "five"}, {},
                                  {"score": "5", "comment": "x" * 501}, {"score": "5", "comment": "bad\x00"}])
def test_bad_ratings_change_nothing(client, scene, form):
    """Out-of-range, missing or unsafe input: a friendly 422 page, no rating written."""
    _courier, device, task, link = scene
    deliver(device, task)
    answer = post_rating(client, link, **form)
    assert answer.status_code == 422 and 'id="error"' in answer.text
    assert ratings_of(task["id"]) == []


def test_low_ratings_are_a_grade_reason(client, make, scene):
    """Ratings of 2 or less in the window cost 2 points each: one low rating of one, 98."""
    courier, device, task, link = scene
    deliver(device, task)
    assert post_rating(client, link, score="1").status_code == 303
    grade = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/grade", headers=make.headers("quality")).json
    assert grade["score"] == 98 and grade["grade"] == "A"
    assert {"code": "low_ratings", "ratings": 1, "low": 1, "max_score": 2, "points": 2} in grade["reasons"]
    later = datetime.now(timezone.utc) + timedelta(days=31)
    from server.services import grades
    assert all(r["code"] != "low_ratings" for r in grades.evaluate(courier_id=courier["id"], now=later)["reasons"])
    assert db.session.scalar(select(func.count()).select_from(Rating)) == 1

"""The customer page through the test client: what it shows and hides, and what it refuses (both engines)."""
import json
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from server.clock import utcnow
from server.config import FailureLimit
from server.extensions import db
from server.models import CustomerLink, TaskEvent
from tests.sync.conftest import Device


def issue(client, make, task_id: str, **body) -> dict:
    """Issue a link through the API; returns the answer."""
    response = client.post(f"/api/v1/dispatch/tasks/{task_id}/customer-link", json=body,
                           headers=make.headers("dispatcher"))
    assert response.status_code == 201, response.json
    return response.json


def path_of(answer: dict) -> str:
    """The link's path, for the test client."""
    return answer["url"][answer["url"].index("/c/"):]


def csrf_of(page) -> str:
    """The page's form token."""
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)


@pytest.fixture
def courier(make):
    """The courier of the task."""
    return make.courier()


@pytest.fixture
def task(make, courier):
    """A task with a Chinese recipient name and a full street address."""
    return make.task(courier=courier, recipient={"name": "王小明", "phone": "13912345678",
                                                 "address": "上海市黄浦区人民路123号5栋301室"})


@pytest.fixture
def link(client, make, task) -> str:
    """The path of a fresh link for the task."""
    return path_of(issue(client, make, task["id"]))


def test_page_shows_surname_and_masked_address_only(client, link):
    """Chinese by default; the surname and the road, never the full name, phone or house number."""
    page = client.get(link)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert '<html lang="zh-CN">' in page.text and "预约确认" in page.text
    assert '<span id="recipient">王</span>' in page.text
    assert "上海市黄浦区人民路**号**栋**室" in page.text
    shown = re.sub(r'value="[0-9a-f]{64}"', "", page.text)  # the form token is hex: it may hold any digits
    for secret in ("小明", "13912345678", "123", "301"):
        assert secret not in shown


def test_latin_names_show_their_last_word(client, make, courier):
    """A Latin name shows its last word."""
    task = make.task(courier=courier, recipient={"name": "Anna Maria Smith", "phone": "13912345678",
                                                 "address": "88 Renmin Rd, Huangpu"})
    page = client.get(path_of(issue(client, make, task["id"])), headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<span id="recipient">Smith</span>' in page.text and "Anna" not in page.text
    assert "** Renmin Rd, Huangpu" in page.text


def test_a_pickup_page_names_the_sender_and_asks_for_pickup_instructions(client, make, courier, link):
    """A pickup's page names the sender and asks for pickup instructions, in Chinese and English; a delivery's
    names the recipient and asks for delivery instructions."""
    pickup = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[])
    pickup_link = path_of(issue(client, make, pickup["id"]))
    english, chinese = client.get(pickup_link + "?lang=en"), client.get(pickup_link + "?lang=zh")
    assert '<span class="label">Sender</span>' in english.text and "Pickup instructions" in english.text
    assert "Recipient" not in english.text and "Delivery instructions" not in english.text
    assert '<span class="label">寄件人</span>' in chinese.text and "取件说明" in chinese.text
    assert "收件人" not in chinese.text and "派送说明" not in chinese.text
    delivery = client.get(link + "?lang=en")
    assert '<span class="label">Recipient</span>' in delivery.text and "Delivery instructions" in delivery.text
    assert "Sender" not in delivery.text and "Pickup instructions" not in delivery.text


def test_language_from_the_browser_or_the_switch(client, link):
    """Accept-Language picks English; ?lang= overrides it either way."""
    assert "Confirm your appointment" in client.get(link, headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    assert "预约确认" in client.get(link, headers={"Accept-Language": "fr-FR"}).text
    assert "Confirm your appointment" in client.get(link + "?lang=en").text
    assert "预约确认" in client.get(link + "?lang=zh", headers={"Accept-Language": "en"}).text


def test_security_headers(client, link):
    """A strict CSP, no caching, no referrer, nosniff; the visit cookie is HttpOnly and SameSite=Strict."""
    page = client.get(link)
    csp = page.headers["Content-Security-Policy"]
    for part in ("default-src 'none'", "style-src 'self'", "form-action 'self'", "frame-ancestors 'none'"):
        assert part in csp
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("fo_visit=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/c/" in cookie
    css = client.get(re.search(r'href="(/static/customer\.css)"', page.text).group(1))
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "http" not in re.sub(r'https?://localhost', "", page.text.split("<main>")[0])


@pytest.mark.parametrize("mangle", [
    lambda p: p[:-3] + ("AAA" if not p.endswith("AAA") else "BBB"),   # signature broken
    lambda p: p.replace("/c/foc_", "/c/fox_"),                          # prefix changed
    lambda p: p.split(".")[0],                                          # signature cut off
    lambda p: "/c/foc_nonsense",                                        # not a token at all
])
def test_tampered_links_get_a_friendly_404(client, link, mangle):
    """A tampered token: 404, an HTML page in the chosen language, no stack trace."""
    for lang, words in (("zh", "这个链接无效"), ("en", "This link is not valid")):
        page = client.get(mangle(link) + f"?lang={lang}")
        assert page.status_code == 404 and page.mimetype == "text/html"
        assert words in page.text and "Traceback" not in page.text


def test_a_token_signed_with_another_key_is_refused(client, app, link):
    """The signature is the app's SECRET_KEY: the same token under another key is not valid."""
    app.config["SECRET_KEY"] = "another"
    assert client.get(link).status_code == 404


def test_expired_and_replaced_links_get_a_friendly_410(client, make, task, link):
    """Expiry is checked against the row; a replaced link is refused too."""
    db.session.execute(update(CustomerLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    page = client.get(link + "?lang=en")
    assert page.status_code == 410 and "This link has expired" in page.text
    fresh = path_of(issue(client, make, task["id"]))
    assert client.get(fresh).status_code == 200
    replaced = path_of(issue(client, make, task["id"]))
    page = client.get(fresh)
    assert page.status_code == 410 and "已被新的链接替代" in page.text
    assert client.get(replaced).status_code == 200


def _notes(task_id: str) -> list[TaskEvent]:
    """The task's notes."""
    db.session.expire_all()
    return list(db.session.query(TaskEvent).filter_by(task_id=task_id, kind="note"))


def test_instructions_reach_the_couriers_next_pull(client, make, courier, task, link):
    """A note by the customer, pulled by the courier's handheld with the task."""
    device = Device(client, make.device(courier))
    _store, cursor, _page = device.pull_all()
    page = client.get(link)
    answer = client.post(link + "/instructions", data={"csrf": csrf_of(page), "lang": "en",
                                                        "text": "  Leave it at the gatehouse.\r\nThanks  "})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("lang=en&done=note")
    assert "Instructions sent" in client.get(answer.headers["Location"]).text
    store, _cursor, _page = device.pull_all(cursor)
    notes = store[("task", task["id"])]["data"]["notes"]
    assert notes[0]["text"] == "Leave it at the gatehouse.\nThanks"
    assert notes[0]["actor_kind"] == "customer"


@pytest.mark.parametrize("case", ["no token", "wrong token", "no cookie", "other visit", "other link"])
def test_forged_posts_are_refused_and_change_nothing(client, app, make, task, link, case):
    """Double submit: the form token must be the HMAC of this link and this browser's visit cookie."""
    token = csrf_of(client.get(link))
    data = {"csrf": token, "text": "forged"}
    if case == "no token":
        del data["csrf"]
    elif case == "wrong token":
        data["csrf"] = "0" * 64
    elif case == "no cookie":
        client.delete_cookie("fo_visit", path="/c/")
    elif case == "other visit":
        client.set_cookie("fo_visit", "x" * 32, path="/c/")
    else:
        other = make.task(courier=make.courier())
        other_link = path_of(issue(client, make, other["id"]))
        data["csrf"] = csrf_of(client.get(other_link))
    for action in ("/instructions", "/confirm", "/slot", "/consent", "/consent/withdraw"):
        answer = client.post(link + action, data={**data, "slot": "0", "place": "locker"})
        assert answer.status_code == 400 and answer.mimetype == "text/html", (action, answer.status_code)
        assert "页面已过期" in answer.text
    assert _notes(task["id"]) == []
    assert [e.kind for e in db.session.query(TaskEvent).filter_by(task_id=task["id"]).order_by(TaskEvent.id)] == ["created", "assigned"]


def test_bad_form_input_is_a_friendly_page(client, link, task):
    """An empty note, a slot that is not offered: a page saying so, nothing stored."""
    token = csrf_of(client.get(link))
    answer = client.post(link + "/instructions?lang=en", data={"csrf": token, "text": "   "})
    assert answer.status_code == 422 and "Something in the form was not right" in answer.text
    answer = client.post(link + "/slot", data={"csrf": token, "slot": "7"})
    assert answer.status_code == 422 and "提交的内容有误" in answer.text
    answer = client.post(link + "/slot", data={"csrf": token, "slot": "x"})
    assert answer.status_code == 422
    assert _notes(task["id"]) == []


def test_rate_limit_per_link_never_touches_another(client, app, make, task, link):
    """Past the link's budget: a friendly 429 with Retry-After; a second link is served meanwhile."""
    app.config["CUSTOMER_LINK_REQUESTS"] = FailureLimit(3, 600)
    other = path_of(issue(client, make, make.task(courier=make.courier())["id"]))
    token = csrf_of(client.get(link))
    assert client.get(link).status_code == 200
    assert client.post(link + "/instructions", data={"csrf": token, "text": "one"}).status_code == 303
    for _ in range(2):
        page = client.get(link + "?lang=en")
        assert page.status_code == 429 and page.mimetype == "text/html"
        assert "Too many requests" in page.text and int(page.headers["Retry-After"]) > 0
    assert client.post(link + "/instructions", data={"csrf": token, "text": "two"}).status_code == 429
    assert [n.text for n in _notes(task["id"])] == ["one"]
    for _ in range(3):
        assert client.get(other).status_code == 200


def test_link_tokens_are_redacted_from_the_logs(client, link, lines):
    """The access line's path says [redacted]; a token-shaped string is redacted anywhere."""
    page = client.get(link)
    client.post(link + "/instructions", data={"csrf": csrf_of(page), "text": "hello"})
    client.get(link[:-2] + "xx")
    logging.getLogger("t").warning("saw %s", link)
    collected = list(lines)
    token = link.removeprefix("/c/")
    assert token[4:] not in "\n".join(collected) and token.rsplit(".", 1)[1] not in "\n".join(collected)
    paths = [json.loads(line)["path"] for line in collected if '"fieldops.access"' in line]
    assert paths == ["/c/[redacted]", "/c/[redacted]/instructions", "/c/[redacted]"]
    assert json.loads(collected[-1])["msg"] == "saw /c/foc_[redacted]"


def test_seed_demo_prints_a_customer_link_that_opens(app, client):
    """`fieldops seed-demo` prints one customer link, for an open task of the first demo courier."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("customer link for ")]
    assert len(lines) == 1 and "http://127.0.0.1:8000/c/foc_" in lines[0]
    page = client.get(lines[0][lines[0].index("/c/"):])
    assert page.status_code == 200 and '<span id="proposed"' not in page.text and 'id="proposed"' in page.text


def test_once_the_courier_arrived_the_time_is_settled(client, make, courier, task, link):
    """After the arrival the page says so; a confirmation or a slot is refused (422 page); instructions still go."""
    device = make.device(courier)
    arrived = client.post(f"/api/v1/me/tasks/{task['id']}/arrive", json={"lat": 31.23, "lon": 121.47},
                          headers={"Authorization": f"Bearer {device['token']}"})
    assert arrived.status_code == 200, arrived.json
    page = client.get(link + "?lang=en")
    assert 'id="arrived"' in page.text and 'id="confirm"' not in page.text and 'name="slot"' not in page.text
    token = csrf_of(page)
    for action, fields in (("/confirm", {}), ("/slot", {"slot": "0"})):
        answer = client.post(link + action + "?lang=en", data={"csrf": token, **fields})
        assert answer.status_code == 422 and "Your courier has arrived" in answer.text
    assert client.post(link + "/instructions", data={"csrf": token, "text": "at the door"}).status_code == 303


def _window(start: datetime, hours: int = 2) -> dict:
    """A window body."""
    return {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}


def test_a_missed_or_past_time_is_not_offered_for_confirmation(client, make, courier):
    """A missed appointment (swept) and an unconfirmed window already over: no confirm button, the page says why,
    a confirmation posted anyway is refused; once the courier proposes a new time, confirming it is offered again."""
    from server.services import appointments
    now = utcnow().replace(microsecond=0)
    dispatcher = make.headers("dispatcher")
    missed = make.task(courier=courier, window=_window(now - timedelta(hours=1)))
    answer = client.post(f"/api/v1/dispatch/tasks/{missed['id']}/appointment/confirm",
                         json={"window": missed["window"]}, headers=dispatcher)
    assert answer.status_code == 200, answer.json
    assert appointments.sweep_missed(now=now + timedelta(hours=1, minutes=1))["missed"] == 1
    passed = make.task(courier=courier, window=_window(now - timedelta(hours=3)))
    for task, status in ((missed, "Your courier did not come at this time"), (passed, "This time has passed.")):
        link = path_of(issue(client, make, task["id"]))
        page = client.get(link + "?lang=en")
        assert 'id="confirm"' not in page.text and status in page.text, task
        refused = client.post(link + "/confirm", data={"csrf": csrf_of(page), "lang": "en"})
        assert refused.status_code == 422 and status.rstrip(".") in refused.text
    answer = client.post(f"/api/v1/dispatch/tasks/{missed['id']}/appointment/reschedule", headers=dispatcher,
                         json={"window": _window(now + timedelta(hours=3)), "reason": "missed",
                               "customer_agreed": False})
    assert answer.status_code == 200, answer.json
    link = path_of(issue(client, make, missed["id"]))
    page = client.get(link + "?lang=en")
    assert 'id="confirm"' in page.text and "Not yet confirmed" in page.text
    assert client.post(link + "/confirm", data={"csrf": csrf_of(page)}).status_code == 303
    detail = client.get(f"/api/v1/dispatch/tasks/{missed['id']}", headers=dispatcher).json
    assert datetime.fromisoformat(detail["window"]["start"]) == now + timedelta(hours=3)
    assert [e["data"]["via"] for e in detail["history"] if e["kind"] == "appointment.confirmed"][-1] == "customer_link"


def _alternate(device: Device, task_id: str, *, via: str = "customer_link", place: str = "locker",
               device_time: datetime | None = None) -> dict:
    """Push a pod.deliver_alternate (at the device time given); its result."""
    op = device.op("pod.deliver_alternate", task_id, {"place": place, "authorization": {"via": via}})
    if device_time is not None:
        op["device_time"] = device_time.isoformat()
    return device.push([op])["results"][0]


def _consent_events(task_id: str) -> list[tuple]:
    """(kind, data) of the task's consent history."""
    db.session.expire_all()
    return [(e.kind, e.data) for e in db.session.query(TaskEvent).filter_by(task_id=task_id).order_by(TaskEvent.id)
            if e.kind.startswith("handover.consent")]


def test_consent_reaches_the_handheld_and_authorises_an_alternate(client, make, courier):
    """Consent on the page (with a note) is in the next pull's handover state; via customer_link is then accepted."""
    task = make.task(courier=courier, cod_amount=0, fees=[])
    link = path_of(issue(client, make, task["id"]))
    device = Device(client, make.device(courier))
    store, cursor, _page = device.pull_all()
    assert store[("task", task["id"])]["data"]["handover"]["consent_place"] is None
    assert _alternate(device, task["id"])["code"] == "authorization_required"
    page = client.get(link + "?lang=en")
    assert 'id="give-consent"' in page.text and "Parcel locker" in page.text
    token = csrf_of(page)
    answer = client.post(link + "/consent", data={"csrf": token, "lang": "en", "place": "neighbour",
                                                  "note": "  Mrs Wang, room 302  "})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("lang=en&done=consent")
    shown = client.get(answer.headers["Location"]).text
    assert "Consent given" in shown and '<strong id="consent-place">A neighbour</strong>' in shown
    assert "Mrs Wang, room 302" in shown and 'id="withdraw-consent"' in shown and 'id="give-consent"' not in shown
    store, cursor, _page = device.pull_all(cursor)
    state = store[("task", task["id"])]["data"]["handover"]
    assert (state["consent_place"], state["consent_note"]) == ("neighbour", "Mrs Wang, room 302")
    # Consent is to one place: not to a locker.
    assert _alternate(device, task["id"], place="locker")["code"] == "authorization_required"
    result = _alternate(device, task["id"], place="neighbour")
    assert result["status"] == "applied", result
    assert result["entity"]["data"]["status"] == "delivered"
    assert result["entity"]["data"]["handover"]["alternate_place"] == "neighbour"
    assert _consent_events(task["id"]) == [("handover.consent", {"place": "neighbour", "note": "Mrs Wang, room 302"})]
    # Delivered: the page no longer offers consent, and a late post is refused.
    page = client.get(link)
    assert 'id="give-consent"' not in page.text and 'id="withdraw-consent"' not in page.text
    answer = client.post(link + "/consent/withdraw", data={"csrf": token, "lang": "en"})
    assert answer.status_code == 422 and "This order is finished" in answer.text


def test_withdrawn_consent_refuses_later_drops_but_not_earlier_ones(client, make, courier):
    """After withdrawal via customer_link is refused; an offline drop made before it (device time) still stands."""
    late, earlier = (make.task(courier=courier, cod_amount=0, fees=[]) for _ in range(2))
    device = Device(client, make.device(courier))
    before = {}
    for task in (late, earlier):
        link = path_of(issue(client, make, task["id"]))
        token = csrf_of(client.get(link))
        assert client.post(link + "/consent", data={"csrf": token, "place": "station"}).status_code == 303
        before[task["id"]] = datetime.now(timezone.utc)
        answer = client.post(link + "/consent/withdraw", data={"csrf": token})
        assert answer.status_code == 303 and answer.headers["Location"].endswith("done=withdrawn")
        page = client.get(answer.headers["Location"])
        assert "已撤回" in page.text and 'id="give-consent"' in page.text
        # Withdrawing twice changes nothing.
        assert client.post(link + "/consent/withdraw", data={"csrf": token}).status_code == 303
        assert [kind for kind, _ in _consent_events(task["id"])] == ["handover.consent",
                                                                      "handover.consent_withdrawn"]
    store, _cursor, _page = device.pull_all()
    assert store[("task", late["id"])]["data"]["handover"]["consent_place"] is None
    # The offline drop was made (and numbered) before the drop refused below.
    result = _alternate(device, earlier["id"], place="station", device_time=before[earlier["id"]])
    assert result["status"] == "applied", result
    assert _alternate(device, late["id"], place="station")["code"] == "authorization_required"
    # Consent given again after a withdrawal stands again.
    link = path_of(issue(client, make, late["id"]))
    assert client.post(link + "/consent", data={"csrf": csrf_of(client.get(link)), "place": "station"}
                       ).status_code == 303
    assert _alternate(device, late["id"], place="station")["status"] == "applied"


def test_consent_form_refusals(client, make, courier, link):
    """A place not offered is a 422 page; a pickup has no form and is refused; nothing is recorded."""
    token = csrf_of(client.get(link))
    answer = client.post(link + "/consent?lang=en", data={"csrf": token, "place": "rooftop"})
    assert answer.status_code == 422 and "Something in the form was not right" in answer.text
    answer = client.post(link + "/consent", data={"csrf": token, "place": "locker", "note": "x" * 201})
    assert answer.status_code == 422
    pickup = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[])
    pickup_link = path_of(issue(client, make, pickup["id"]))
    page = client.get(pickup_link)
    assert 'id="alternate"' not in page.text
    answer = client.post(pickup_link + "/consent?lang=en", data={"csrf": csrf_of(page), "place": "locker"})
    assert answer.status_code == 422 and "cannot be left elsewhere" in answer.text
    assert _consent_events(pickup["id"]) == []


def test_a_promise_is_said_as_people_say_it(app):
    """An end-of-day promise (due at a depot midnight) is the end of the day before; an hours promise is its time."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from server import customer_page
    zone = ZoneInfo(app.config["TIMEZONE"])
    midnight, afternoon = datetime(2026, 12, 9, tzinfo=zone), datetime(2026, 12, 10, 15, 30, tzinfo=zone)
    with app.app_context():
        assert customer_page._promised(midnight, "zh") == "12月8日 24:00前"
        assert customer_page._promised(midnight, "en") == "by the end of Tue 08 Dec"
        assert customer_page._promised(afternoon, "zh") == "12月10日 15:30前"
        assert customer_page._promised(afternoon, "en") == "by Thu 10 Dec 15:30"


def test_the_page_says_when_the_promise_has_passed(client, make):
    """标快 (72 h) collected 73 hours ago and not delivered: past its promise, and the page says so; collected an hour
    ago it is on its way and the page says nothing of it; without a product there is no promise to speak of."""
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc).replace(microsecond=0)
    late = make.task(service_product="standard", collected_at=(now - timedelta(hours=73)).isoformat())
    fresh = make.task(service_product="standard", collected_at=(now - timedelta(hours=1)).isoformat())
    plain = make.task()
    pages = {name: client.get(path_of(issue(client, make, task["id"])) + "?lang=en").text
             for name, task in (("late", late), ("fresh", fresh), ("plain", plain))}
    assert 'class="promise-breached">past the promised time' in pages["late"]
    assert 'id="promised"' in pages["fresh"] and 'id="promise-state"' not in pages["fresh"]
    assert 'id="promised"' not in pages["plain"]

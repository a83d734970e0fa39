"""Attacks on the console of issue 24 from outside: headers on every answer, odd dates, sessions kept alive."""
from datetime import timedelta

import pytest

from server.console.auth import CONSOLE_CSP

XSS = '<script>alert(1)</script>"\'><img src=x onerror=alert(1)>'


@pytest.mark.parametrize("path", ["/console/no-such-page", "/console/admin/jobs/%00/x", "/console/tasks/a/b/c"])
def test_a_console_path_no_route_matches_still_gets_the_consoles_headers(console_as, path):
    """A 404 under /console that no console route matched (Flask answers it before the blueprint is chosen) is
    still a console answer: the strict CSP, not cached, not framed."""
    answer = console_as("dispatcher").get(path)
    assert answer.status_code == 404
    assert answer.headers.get("Content-Security-Policy") == CONSOLE_CSP
    assert answer.headers.get("Cache-Control") == "no-store"
    assert answer.headers.get("X-Frame-Options") == "DENY"


def test_a_signed_out_console_404_gets_the_headers_too(client):
    """Signed out, the same: the headers do not depend on a session."""
    answer = client.get("/console/no-such-page")
    assert answer.status_code == 404 and answer.headers.get("Content-Security-Policy") == CONSOLE_CSP


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1999-12-31", "2100-01-01"])
def test_a_courier_day_far_from_now_is_refused_on_the_page_not_a_500(make, console_as, day):
    """The courier's day page with a date the API refuses (outside 2000-2099): the page says the date is wrong and
    shows today, as for a malformed date; before, 9999-12-31 and 0001-01-01 were a 500 (the day's bounds overflow)."""
    courier = make.courier()
    answer = console_as("dispatcher").get(f"/console/couriers/{courier['id']}/day", query_string={"date": day})
    assert answer.status_code == 200, answer.status_code
    assert "日期格式不对" in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/console/depots/cash", "/console/exceptions", "/console/tasks"])
@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "0000-00-00"])
def test_other_pages_with_a_date_never_answer_500(console_as, path, day):
    """Every page taking ?date= answers a page (200, or a 4xx page) for a date out of range."""
    answer = console_as("admin").get(path, query_string={"date": day})
    assert answer.status_code < 500, (path, day, answer.status_code)


def test_an_auto_refreshing_board_does_not_keep_a_session_alive_forever(app, console_as, server_clock):
    """The board refreshes itself every few seconds, so a board left open on an unattended desk never goes idle:
    a session has an absolute lifetime too (CONSOLE_SESSION_MAX_HOURS, 12 by default), whatever its activity."""
    client = console_as("dispatcher")
    start = server_clock.now()
    for minutes in range(20, 12 * 60, 20):  # the board polls all along: never idle
        with server_clock.at(start + timedelta(minutes=minutes)):
            assert client.get("/console/board/columns").status_code == 200
    with server_clock.at(start + timedelta(hours=12, minutes=1)):
        answer = client.get("/console/")
        assert answer.status_code == 303 and "/console/login" in answer.headers["Location"]


def test_escaped_everywhere_a_name_or_address_is_shown(make, console_as):
    """A courier's name and a recipient's name and address holding markup are text on every page that shows them."""
    courier = make.courier(name=XSS)
    task = make.task(courier=courier, recipient={"name": XSS, "phone": "13912345678", "address": XSS,
                                                 "lat": 31.2, "lon": 121.4})
    client = console_as("admin")
    for path in ("/console/", "/console/board/columns", f"/console/tasks/{task['id']}", "/console/tasks",
                 f"/console/couriers/{courier['id']}/day", "/console/depots/cash", "/console/exceptions"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        body = answer.get_data(as_text=True)
        assert "<script>alert" not in body and "<img src=x" not in body, path


def test_a_session_cookie_from_before_sign_in_does_not_survive_it(app, console_user, sign_in):
    """Session fixation: a cookie value planted in the browser before sign-in is not the session after it, and
    never becomes one."""
    from server.console.auth import SESSION_COOKIE
    planted = "planted-by-someone-else-0123456789abcdef"
    client = app.test_client()
    client.set_cookie(SESSION_COOKIE, planted, path="/console")
    assert sign_in(client, console_user("dispatcher"), "correct horse battery staple").status_code == 303
    assert client.get_cookie(SESSION_COOKIE, path="/console").value != planted
    other = app.test_client()
    other.set_cookie(SESSION_COOKIE, planted, path="/console")
    assert other.get("/console/").status_code == 303


def test_a_token_from_before_sign_out_no_longer_posts(app, console_user, sign_in, csrf_of):
    """The CSRF token of a session that was signed out is refused in the next session of the same browser."""
    client = app.test_client()
    username = console_user("dispatcher")
    assert sign_in(client, username, "correct horse battery staple").status_code == 303
    old_token = csrf_of(client, "/console/")
    assert client.post("/console/logout", data={"csrf_token": old_token}).status_code == 303
    assert sign_in(client, username, "correct horse battery staple").status_code == 303
    assert client.post("/console/logout", data={"csrf_token": old_token}).status_code == 400


@pytest.mark.parametrize("target", ["//evil.example/console", "https://evil.example/console", "/\\evil.example",
                                    "/console\\@evil.example", "javascript:alert(1)", "/\t/evil.example/console",
                                    "/console/\r\nSet-Cookie: evil=1"])
def test_sign_in_never_redirects_off_the_site(app, console_user, sign_in, target):
    """?next= (or the form's next) to another host is dropped: the sign-in lands on the console."""
    client = app.test_client()
    answer = sign_in(client, console_user("dispatcher"), "correct horse battery staple", next=target)
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.startswith("/console") and "evil" not in location.split("%")[0], location
    assert "\n" not in location and "Set-Cookie" not in str(answer.headers.getlist("Set-Cookie")), answer.headers


def test_a_deactivated_user_with_an_open_console_is_signed_out_at_once(app, client, make, console_as, csrf_of):
    """An admin deactivates a dispatcher (through the API) while their console is open: their next page is the
    sign-in form and a post of the open form is not carried out."""
    from server.services import staff
    dispatcher = console_as("dispatcher")
    token = csrf_of(dispatcher, "/console/")
    user = staff.get_by_username(username=dispatcher.username)
    answer = client.post(f"/api/v1/admin/staff/{user.id}/deactivate", headers=make.headers("admin"))
    assert answer.status_code == 200, answer.json
    assert dispatcher.get("/console/").status_code == 303
    posted = dispatcher.post("/console/logout", data={"csrf_token": token})
    assert posted.status_code == 303 and "/console/login" in posted.headers["Location"]


@pytest.mark.parametrize("spelling", ["{u}", "{U}", " {u} ", "{u}\t"])
def test_the_failure_limit_is_not_reset_by_spelling_the_username_otherwise(app, console_user, sign_in, spelling):
    """Wrong guesses under the username's other cases or with spaces around it count for the same (username,
    address): after five of them, the right password from that address is refused too (429)."""
    client = app.test_client()
    username = console_user("dispatcher")
    variants = [username, username.upper(), f" {username} ", f"{username}\t", username.title()]
    for variant in variants:
        assert sign_in(client, variant, "not the password").status_code == 401
    right = spelling.format(u=username, U=username.upper())
    assert sign_in(client, right, "correct horse battery staple").status_code == 429


def test_sign_out_without_the_token_is_refused(console_as):
    """A cross-site post to /console/logout (no token) does not sign the user out."""
    client = console_as("dispatcher")
    assert client.post("/console/logout").status_code == 400
    assert client.get("/console/").status_code == 200


@pytest.mark.xfail(strict=True, reason="an unmatched /console path is answered by the app's 404 handler "
                                        "(application/problem+json), not the console's HTML error page; the fix is an "
                                        "app-level 404 handler choosing by path, outside this attack's scope")
def test_a_console_path_no_route_matches_is_the_consoles_error_page(console_as):
    """A browser following a stale /console link gets the console's page in its language, not JSON."""
    answer = console_as("dispatcher").get("/console/no-such-page")
    assert answer.status_code == 404 and answer.mimetype == "text/html"


def test_resolving_an_unknown_exception_on_the_queue_page_is_a_404(console_as, csrf_of):
    """Acknowledge and resolve of an exception that does not exist answer the same: 404."""
    client = console_as("dispatcher")
    token = csrf_of(client, "/console/exceptions")
    acknowledged = client.post("/console/exceptions/999999/acknowledge", data={"csrf_token": token})
    resolved = client.post("/console/exceptions/999999/resolve", data={"csrf_token": token, "note": "Done."})
    assert (acknowledged.status_code, resolved.status_code) == (404, 404)


@pytest.mark.parametrize("username, password", [("x" * 100_000, "y"), ("dispatcher\x00", "y"), ("a", "p" * 200_000)])
def test_a_monstrous_sign_in_is_just_a_failed_one(app, sign_in, username, password):
    """A huge or NUL-laden username or password is an ordinary failed sign-in (401), never a 500."""
    assert sign_in(app.test_client(), username, password).status_code in (401, 413)

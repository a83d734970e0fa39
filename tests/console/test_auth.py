"""The console's sign-in: password, session cookie, CSRF, sign-out, idle expiry, roles, failure limits, the CLI."""
from datetime import timedelta

from sqlalchemy import select

from server.extensions import db
from server.models import ConsoleSession, StaffUser
from tests.console.conftest import PASSWORD, csrf_in

HOME = "/console/"


def _session_cookie(client):
    """The console session cookie the client holds, or None."""
    return client.get_cookie("fo_console", path="/console")


def test_sign_in_opens_the_console_with_a_strict_cookie_and_csp(app, console_user, sign_in):
    """The right password: a 303 to the console, an HttpOnly SameSite=Lax cookie, the user's name on the page."""
    client = app.test_client()
    username = console_user("dispatcher")
    response = sign_in(client, username, PASSWORD)
    assert response.status_code == 303 and response.headers["Location"] == HOME
    cookie = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("fo_console="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie and "Path=/console" in cookie
    page = client.get(HOME)
    assert page.status_code == 200 and username in page.get_data(as_text=True)
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and page.headers["Cache-Control"] == "no-store"
    # Only a hash of the cookie is kept.
    stored = db.session.scalar(select(ConsoleSession.session_hash))
    assert _session_cookie(client).value not in stored


def test_the_cookie_is_secure_over_https(app, console_user, sign_in):
    """Over HTTPS the session cookie is Secure."""
    client, https = app.test_client(), "https://localhost"
    token = csrf_in(client.get("/console/login", base_url=https).get_data(as_text=True))
    response = client.post("/console/login", base_url=https, data={
        "csrf_token": token, "username": console_user("dispatcher"), "password": PASSWORD})
    cookie = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("fo_console="))
    assert response.status_code == 303 and "Secure" in cookie


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(app, console_user, sign_in):
    """Neither says which part was wrong; neither signs in."""
    client = app.test_client()
    username = console_user("dispatcher")
    wrong = sign_in(client, username, "not the password")
    unknown = sign_in(client, "nobody-at-all", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert (wrong.get_data(as_text=True).replace(username, "NAME")
            == unknown.get_data(as_text=True).replace("nobody-at-all", "NAME"))
    assert "用户名或密码不正确" in wrong.get_data(as_text=True)
    assert _session_cookie(client) is None
    assert client.get(HOME).status_code == 303


def test_a_user_without_a_password_or_inactive_cannot_sign_in(app, sign_in, console_user):
    """A staff user with no console password, or one made inactive, is refused like a wrong password."""
    from server.services import staff
    user, _ = staff.create(username="nopassword", role="dispatcher")
    assert sign_in(app.test_client(), "nopassword", "").status_code == 401
    username = console_user("dispatcher")
    db.session.execute(StaffUser.__table__.update().where(StaffUser.username == username).values(active=False))
    db.session.commit()
    assert sign_in(app.test_client(), username, PASSWORD).status_code == 401


def test_signed_out_pages_lead_to_the_sign_in_form_and_back(app, console_user, sign_in):
    """A page asked for while signed out: the sign-in form, then that page (never another site)."""
    client = app.test_client()
    response = client.get(HOME)
    assert response.status_code == 303 and response.headers["Location"].startswith("/console/login?next=")
    assert sign_in(client, console_user("dispatcher"), PASSWORD, next=HOME).headers["Location"] == HOME
    other = app.test_client()
    response = sign_in(other, console_user("dispatcher"), PASSWORD, next="https://evil.example/console")
    assert response.headers["Location"] == HOME
    for path in ("/", "/dispatch"):
        assert app.test_client().get(path).headers["Location"] == HOME


def test_posts_without_the_right_csrf_token_are_refused(app, console_as, console_user):
    """Sign-in and sign-out without the token (or with another's) are 400 and change nothing."""
    client = console_as("dispatcher")
    assert client.post("/console/logout").status_code == 400
    assert client.post("/console/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.post("/console/logout", headers={"X-CSRF-Token": "forged"}).status_code == 400
    assert client.get(HOME).status_code == 200  # still signed in
    other = console_as("dispatcher")
    their_token = csrf_in(other.get(HOME).get_data(as_text=True))
    assert client.post("/console/logout", data={"csrf_token": their_token}).status_code == 400
    fresh = app.test_client()
    refused = fresh.post("/console/login", data={"username": console_user("dispatcher"), "password": PASSWORD})
    assert refused.status_code == 400 and "页面已过期" in refused.get_data(as_text=True)
    assert _session_cookie(fresh) is None


def test_htmx_sends_the_token_in_a_header(app, console_as):
    """The header X-CSRF-Token (which the base template gives htmx) is as good as the form field."""
    client = console_as("dispatcher")
    page = client.get(HOME).get_data(as_text=True)
    token = csrf_in(page)
    assert f'"X-CSRF-Token": "{token}"' in page
    assert client.post("/console/logout", headers={"X-CSRF-Token": token}).status_code == 303
    assert client.get(HOME).status_code == 303


def test_sign_out_ends_the_session_on_the_server(app, console_as):
    """After signing out, the old cookie value no longer works, even presented again."""
    client = console_as("dispatcher")
    old = _session_cookie(client).value
    token = csrf_in(client.get(HOME).get_data(as_text=True))
    response = client.post("/console/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/console/login"
    replay = app.test_client()
    replay.set_cookie("fo_console", old, path="/console")
    assert replay.get(HOME).status_code == 303
    assert db.session.scalar(select(ConsoleSession.ended_at)) is not None


def test_an_idle_session_expires_and_an_active_one_does_not(app, console_as, server_clock):
    """FIELDOPS_CONSOLE_IDLE_MINUTES (30) without a request ends a session; each request restarts the count."""
    client = console_as("dispatcher")
    start = server_clock.now()
    with server_clock.at(start + timedelta(minutes=20)):
        assert client.get(HOME).status_code == 200
    with server_clock.at(start + timedelta(minutes=45)):  # 25 minutes after the last request
        assert client.get(HOME).status_code == 200
    with server_clock.at(start + timedelta(minutes=76)):  # 31 minutes idle
        response = client.get(HOME)
        assert response.status_code == 303 and "/console/login" in response.headers["Location"]
    # Gone for good: the clock going back does not revive it.
    assert client.get(HOME).status_code == 303


def test_the_idle_limit_is_a_setting(app, console_as, server_clock):
    """A shorter FIELDOPS_CONSOLE_IDLE_MINUTES ends sessions sooner."""
    app.config["CONSOLE_IDLE_MINUTES"] = 5
    client = console_as("quality")
    with server_clock.at(server_clock.now() + timedelta(minutes=6)):
        assert client.get(HOME).status_code == 303


def test_a_new_password_ends_the_users_sessions(app, console_as):
    """Setting a password signs the user out everywhere."""
    from server.auth import SYSTEM
    from server.services import staff
    client = console_as("dispatcher")
    user = staff.get_by_username(username=client.username)
    staff.set_password(actor=SYSTEM, staff_id=user.id, password="another long password")
    assert client.get(HOME).status_code == 303


def test_a_wrong_role_gets_the_403_page(app, console_as):
    """Signed in, but the page is not for this role: the 403 page, in Chinese by default."""
    client = console_as("integration")
    response = client.get(HOME)
    assert response.status_code == 403
    body = response.get_data(as_text=True)
    assert "没有权限" in body and "Content-Security-Policy" in response.headers


def test_the_nav_shows_the_role_and_the_language_switch(app, console_as):
    """English by Accept-Language, or by ?lang=en, which a cookie keeps; Chinese otherwise."""
    client = console_as("dispatcher")
    assert "退出登录" in client.get(HOME).get_data(as_text=True)
    assert "Sign out" in client.get(HOME, headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert "Sign out" in client.get(HOME + "?lang=en").get_data(as_text=True)
    assert "Sign out" in client.get(HOME).get_data(as_text=True)  # the cookie keeps the choice
    assert "退出登录" in client.get(HOME + "?lang=zh", headers={"Accept-Language": "en"}).get_data(as_text=True)


def test_pages_have_no_inline_script_or_style(app, console_as):
    """The CSP allows neither, so the pages have neither."""
    client = console_as("dispatcher")
    for path in (HOME, "/console/login"):
        body = app.test_client().get("/console/login").get_data(as_text=True) if path.endswith("login") \
            else client.get(path).get_data(as_text=True)
        assert "<style" not in body and " style=" not in body and " on" + "click=" not in body
        for tag in body.split("<script")[1:]:
            assert tag.lstrip().startswith("src=") and "></script>" in tag


def test_failures_are_limited_per_username_and_address(app, console_user, sign_in):
    """Five wrong passwords for one user from one address refuse that pair (even the right password, 429); the
    right password from another address still signs in."""
    username = console_user("dispatcher")
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    for _ in range(5):
        assert sign_in(attacker, username, "guess guess guess").status_code == 401
    refused = sign_in(attacker, username, PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "失败次数太多" in refused.get_data(as_text=True)
    owner = app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    assert sign_in(owner, username, PASSWORD).status_code == 303
    assert owner.get(HOME).status_code == 200
    # The attacker's address may still sign in as someone else (the per-address budget is larger).
    assert sign_in(attacker, console_user("quality"), PASSWORD).status_code == 303


def test_failures_are_limited_per_address(app, console_user, sign_in):
    """Spread over many usernames, one address's failures are limited too; other addresses are not."""
    app.config["CONSOLE_LOGIN_FAILURES_PER_ADDRESS"] = app.config["CONSOLE_LOGIN_FAILURES_PER_ADDRESS"]._replace(
        attempts=3)
    sprayer = app.test_client()
    sprayer.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for n in range(3):
        assert sign_in(sprayer, f"user{n}", "password spray").status_code == 401
    assert sign_in(sprayer, console_user("dispatcher"), PASSWORD).status_code == 429
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "198.51.100.21"
    assert sign_in(elsewhere, console_user("dispatcher"), PASSWORD).status_code == 303


def test_set_password_reads_standard_input(app, sign_in):
    """`fieldops set-password NAME` with the password piped in; then it signs in."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-staff", "ops9", "--role", "dispatcher"]).exit_code == 0
    result = runner.invoke(args=["set-password", "ops9"], input="a long enough password\n")
    assert result.exit_code == 0, result.output
    assert "a long enough password" not in result.output
    assert sign_in(app.test_client(), "ops9", "a long enough password").status_code == 303


def test_set_password_refuses_an_argument_a_short_password_and_an_unknown_user(app):
    """A password given as an argument is refused (it would sit in shell history and `ps`); so is a short one."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-staff", "ops8", "--role", "dispatcher"]).exit_code == 0
    result = runner.invoke(args=["set-password", "ops8", "a long enough password"])
    assert result.exit_code == 2 and "never an argument" in result.output
    short = runner.invoke(args=["set-password", "ops8"], input="short\n")
    assert short.exit_code == 1 and "at least 10" in short.output
    assert db.session.scalar(select(StaffUser.password_hash).where(StaffUser.username == "ops8")) is None
    unknown = runner.invoke(args=["set-password", "nobody"], input="a long enough password\n")
    assert unknown.exit_code == 1 and "No staff user" in unknown.output


def test_passwords_are_stored_as_argon2id(app, console_user):
    """Never the password: an argon2id hash, with when it was set."""
    username = console_user("admin")
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert user.password_set_at is not None


def test_filters_write_depot_time_and_money(app):
    """local_time in the depot's zone; money from fen."""
    from datetime import datetime, timezone

    from server.console.i18n import local_time, money
    app.config["TIMEZONE"] = "Asia/Shanghai"
    assert local_time(datetime(2026, 12, 7, 16, 30, tzinfo=timezone.utc)) == "2026-12-08 00:30"
    assert local_time(None) == ""
    assert money(1234) == "¥12.34" and money(-50) == "-¥0.50" and money(123456789) == "¥1,234,567.89"
    assert money(None) == ""

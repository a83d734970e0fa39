"""Console passwords: one's own on /console/account, another's by an admin on /console/admin/staff/<id>/password;
and the session cookie's flags over HTTP and HTTPS (issue 24, phase 2)."""
import pytest
from flask import url_for
from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry, StaffUser
from tests.console.conftest import PASSWORD, csrf_in

ACCOUNT = "/console/account"
HOME = "/console/"
NEW = "a new password, typed twice"


def _user(username: str) -> StaffUser:
    """The stored staff user, freshly read."""
    db.session.expire_all()
    return db.session.scalar(select(StaffUser).where(StaffUser.username == username))


def _change(client, current: str, new: str = NEW, again: str | None = None, token: str | None = None):
    """Post the account page's form as the browser would."""
    token = token if token is not None else csrf_in(client.get(ACCOUNT).get_data(as_text=True))
    return client.post(ACCOUNT, data={"csrf_token": token, "current_password": current, "password": new,
                                      "password_again": new if again is None else again})


def _staff_password_path(user: StaffUser) -> str:
    return f"/console/admin/staff/{user.id}/password"


def _set(client, path: str, new: str = NEW, again: str | None = None, token: str | None = None):
    """Post the admin's set-password form."""
    token = token if token is not None else csrf_in(client.get(path).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, "password": new, "password_again": new if again is None
                                   else again})


# --- one's own password ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["dispatcher", "quality", "maintenance", "admin"])
def test_every_role_changes_its_own_password_and_its_other_sessions_end(app, console_as, sign_in, role):
    """The current password and the new one twice: the new one signs in, the old one no longer; the browser that
    asked stays signed in, the user's other browser is signed out. The page is in the navigation of every role."""
    client = console_as(role)
    other = app.test_client()
    assert sign_in(other, client.username, PASSWORD).status_code == 303
    page = client.get(HOME).get_data(as_text=True)
    assert f'href="{ACCOUNT}"' in page and "我的账户" in page

    response = _change(client, PASSWORD)
    assert response.status_code == 200 and "密码已修改" in response.get_data(as_text=True)
    assert client.get(HOME).status_code == 200
    assert other.get(HOME).status_code == 303
    assert sign_in(app.test_client(), client.username, PASSWORD).status_code == 401
    assert sign_in(app.test_client(), client.username, NEW).status_code == 303
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "staff.set_password",
                                                       AuditEntry.entity_id == _user(client.username).id)
                              .order_by(AuditEntry.id.desc()))
    assert entry.staff_id == _user(client.username).id and NEW not in str(entry.after)


def test_the_integration_role_has_no_account_page(app, console_as):
    """Integration is a machine's account: the account page is the 403 page, and it has no nav entry."""
    client = console_as("integration")
    assert client.get(ACCOUNT).status_code == 403
    assert f'href="{ACCOUNT}"' not in client.get(ACCOUNT).get_data(as_text=True)


def test_a_wrong_current_password_is_refused_and_counts_as_a_failed_sign_in(app, console_as, sign_in):
    """A wrong current password changes nothing (422 naming the field); it counts against the sign-in failure budget
    of that username and address: after five, the account page and the sign-in form from there are 429, while the
    right password from another address still signs in."""
    client = console_as("dispatcher", address="203.0.113.40")
    response = _change(client, "not my password")
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "当前密码: 当前密码不正确" in text
    assert 'id="current_password" name="current_password"' in text and 'aria-invalid="true"' in text
    assert sign_in(app.test_client(), client.username, NEW).status_code == 401  # unchanged
    for _ in range(4):
        assert _change(client, "not my password").status_code == 422
    refused = _change(client, PASSWORD)  # even the right one now, from this address
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "失败次数太多" in refused.get_data(as_text=True)
    same_address = app.test_client()
    same_address.environ_base["REMOTE_ADDR"] = "203.0.113.40"
    assert sign_in(same_address, client.username, PASSWORD).status_code == 429
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "198.51.100.40"
    assert sign_in(elsewhere, client.username, PASSWORD).status_code == 303


@pytest.mark.parametrize("new,again,field,message", [
    ("short", "short", "新密码", "至少需要 10 个字符"),
    (" " * 12, " " * 12, "新密码", "不能只有空格"),
    (NEW, NEW + "x", "再次输入新密码", "两次输入的新密码不一样"),
    ("x" * 1025, "x" * 1025, "新密码", "最多 1024 个字符"),
])
def test_a_bad_new_password_is_refused_naming_the_field(app, console_as, sign_in, new, again, field, message):
    """Too short, only spaces, not the same twice, too long: 422, the message names the field; nothing changes and
    it is not a failed sign-in."""
    client = console_as("quality")
    response = _change(client, PASSWORD, new, again)
    assert response.status_code == 422
    assert f"{field}: {message}" in response.get_data(as_text=True)
    assert sign_in(app.test_client(), client.username, PASSWORD).status_code == 303


def test_the_account_page_in_english(app, console_as):
    """?lang=en: the form and its refusal in English."""
    client = console_as("dispatcher")
    page = client.get(f"{ACCOUNT}?lang=en").get_data(as_text=True)
    assert "Change your password" in page and "At least 10 characters" in page
    response = _change(client, PASSWORD, "short")
    assert "New password: At least 10 characters." in response.get_data(as_text=True)


def test_the_account_form_refuses_a_post_without_its_csrf_token(app, console_as, sign_in):
    """No token, or another session's: the 400 page, and the password is unchanged."""
    client, other = console_as("dispatcher"), console_as("dispatcher")
    foreign = csrf_in(other.get(ACCOUNT).get_data(as_text=True))
    for token in ("", foreign):
        response = _change(client, PASSWORD, token=token)
        assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)
    assert sign_in(app.test_client(), client.username, PASSWORD).status_code == 303
    assert app.test_client().post(ACCOUNT, data={"current_password": PASSWORD, "password": NEW,
                                                 "password_again": NEW}).status_code == 303  # signed out: sign in


# --- an admin sets another's password ---------------------------------------------------------------------------

def test_an_admin_sets_another_users_password_and_ends_their_sessions(app, console_as, sign_in):
    """The admin types it twice; the user's browser is signed out; the new password signs in; audited by the
    admin. The endpoint the staff list links to is console.staff_password."""
    admin, victim = console_as("admin"), console_as("maintenance")
    user = _user(victim.username)
    with app.test_request_context():
        assert url_for("console.staff_password", staff_id=user.id) == _staff_password_path(user)
    form = admin.get(_staff_password_path(user))
    assert form.status_code == 200 and victim.username in form.get_data(as_text=True)
    response = _set(admin, _staff_password_path(user))
    assert response.status_code == 200 and "已为" in response.get_data(as_text=True)
    assert victim.get(HOME).status_code == 303
    assert sign_in(app.test_client(), victim.username, NEW).status_code == 303
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "staff.set_password",
                                                       AuditEntry.entity_id == user.id)
                              .order_by(AuditEntry.id.desc()))
    assert entry.staff_id == _user(admin.username).id and "password_hash" not in entry.after
    assert admin.get(HOME).status_code == 200


@pytest.mark.parametrize("role", ["dispatcher", "quality", "maintenance", "integration"])
def test_only_an_admin_sets_another_users_password(app, console_as, sign_in, role):
    """Any other role: the 403 page for the form and for the post (with its own valid CSRF token)."""
    client, target = console_as(role), console_as("dispatcher")
    path = _staff_password_path(_user(target.username))
    assert client.get(path).status_code == 403
    token = csrf_in(client.get(path).get_data(as_text=True))  # the 403 page's sign-out form carries it
    response = client.post(path, data={"csrf_token": token, "password": NEW, "password_again": NEW})
    assert response.status_code == 403
    assert target.get(HOME).status_code == 200


def test_an_unknown_staff_user_is_the_404_page(app, console_as):
    """No such staff id: 404 on the form and the post."""
    admin = console_as("admin")
    token = csrf_in(admin.get(HOME).get_data(as_text=True))
    for staff_id in ("s-" + "0" * 26, "nobody"):
        path = f"/console/admin/staff/{staff_id}/password"
        assert admin.get(path).status_code == 404
        assert admin.post(path, data={"csrf_token": token, "password": NEW, "password_again": NEW}).status_code == 404


@pytest.mark.parametrize("new,again,field,message", [
    ("short", "short", "新密码", "至少需要 10 个字符"),
    (NEW, "different!!", "再次输入新密码", "两次输入的新密码不一样"),
])
def test_an_admin_is_refused_a_bad_password_naming_the_field(app, console_as, sign_in, new, again, field, message):
    """422 naming the field; the user's session goes on."""
    admin, target = console_as("admin"), console_as("dispatcher")
    response = _set(admin, _staff_password_path(_user(target.username)), new, again)
    assert response.status_code == 422 and f"{field}: {message}" in response.get_data(as_text=True)
    assert target.get(HOME).status_code == 200


def test_the_admin_form_refuses_a_post_without_its_csrf_token(app, console_as):
    """No token, or a wrong one: the 400 page; the user stays signed in."""
    admin, target = console_as("admin"), console_as("dispatcher")
    path = _staff_password_path(_user(target.username))
    for token in ("", "x" * 43):
        assert _set(admin, path, token=token).status_code == 400
    assert target.get(HOME).status_code == 200


def test_an_admins_own_password_is_changed_on_the_account_page(app, console_as):
    """The admin page for oneself leads to the account page (the current password asked, this session kept)."""
    admin = console_as("admin")
    path = _staff_password_path(_user(admin.username))
    assert admin.get(path).headers["Location"] == ACCOUNT
    token = csrf_in(admin.get(HOME).get_data(as_text=True))
    assert _set(admin, path, token=token).headers["Location"] == ACCOUNT
    assert admin.get(HOME).status_code == 200


# --- the session cookie's flags ----------------------------------------------------------------------------------

def _cookie_flags(response) -> str:
    """The Set-Cookie line of the console session."""
    return next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("fo_console="))


def test_the_cookie_over_plain_http_is_httponly_and_samesite_but_not_secure(app, console_user, sign_in):
    """Over http the browser would not send a Secure cookie back: HttpOnly and SameSite=Lax only."""
    response = sign_in(app.test_client(), console_user("dispatcher"), PASSWORD)
    flags = _cookie_flags(response)
    assert response.status_code == 303
    assert "HttpOnly" in flags and "SameSite=Lax" in flags and "Secure" not in flags


def test_the_cookie_behind_an_https_proxy_is_secure(app, console_user, database_url, tmp_path, monkeypatch):
    """With FIELDOPS_PROXY_HOPS=1, X-Forwarded-Proto: https from the proxy makes the cookie Secure (and HttpOnly,
    SameSite=Lax); X-Forwarded-Proto: http does not. Without a trusted hop the header is ignored."""
    from server import config, create_app
    username = console_user("dispatcher")
    db.session.remove()
    monkeypatch.setenv("FIELDOPS_PROXY_HOPS", "1")
    proxied = create_app(config.TestConfig(database_url, str(tmp_path)))
    monkeypatch.delenv("FIELDOPS_PROXY_HOPS")
    direct = create_app(config.TestConfig(database_url, str(tmp_path)))
    for server, proto, secure in ((proxied, "https", True), (proxied, "http", False), (direct, "https", False)):
        with server.app_context():
            client = server.test_client()
            headers = {"X-Forwarded-Proto": proto, "X-Forwarded-For": "198.51.100.77"}
            token = csrf_in(client.get("/console/login", headers=headers).get_data(as_text=True))
            response = client.post("/console/login", headers=headers,
                                   data={"csrf_token": token, "username": username, "password": PASSWORD})
            db.session.remove()
            flags = _cookie_flags(response)
            assert response.status_code == 303 and "HttpOnly" in flags and "SameSite=Lax" in flags
            assert ("Secure" in flags) is secure, (proto, flags)
    for server in (proxied, direct):
        with server.app_context():
            db.engine.dispose()

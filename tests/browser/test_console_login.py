"""The console's sign-in in headless Chromium: the form, a refusal, the console, sign-out; accessible, on a phone
and on a desktop."""
from server.auth import SYSTEM
from server.services import staff
from tests.browser.conftest import (assert_accessible, assert_no_csp_violation, console_login, follow, require_browser,
                                    screenshot, submit, text_of)

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)

PASSWORD = "correct horse battery staple"


def _dispatcher(username: str) -> None:
    """A dispatcher with a console password (as `fieldops set-password` makes one)."""
    user, _ = staff.create(username=username, role="dispatcher")
    staff.set_password(actor=SYSTEM, staff_id=user.id, password=PASSWORD)


def test_a_dispatcher_signs_in_and_out(page, live_server, app, tmp_path):
    """The form in Chinese; a wrong password is refused in words; the right one opens the console with the user's
    name; signing out leads back to the form, and the console is closed again."""
    _dispatcher("li.lei")
    page.get_log("browser")  # what an earlier test left
    page.get(f"{live_server}/dispatch")
    assert_no_csp_violation(page)
    assert page.current_url.startswith(f"{live_server}/console/login")
    assert "登录调度台" in page.find_element(By.TAG_NAME, "h1").text
    assert_accessible(page)
    screenshot(page, tmp_path, "login-phone")

    console_login(page, live_server, "li.lei", "wrong password!")
    assert "用户名或密码不正确" in text_of(page, "error")
    assert_accessible(page)
    screenshot(page, tmp_path, "login-refused")

    console_login(page, live_server, "li.lei", PASSWORD)
    assert text_of(page, "whoami") == "li.lei"
    assert page.current_url == f"{live_server}/console/"
    assert page.execute_script("return typeof htmx === 'object'")  # the vendored htmx loads under the CSP
    # htmx 2 would inject its indicator <style> (refused by the CSP) unless the page's htmx-config meta says not to.
    assert page.execute_script("return htmx.config.includeIndicatorStyles") is False
    assert_no_csp_violation(page)
    assert_accessible(page)
    screenshot(page, tmp_path, "home-phone")
    try:
        page.set_window_size(1280, 800)
        screenshot(page, tmp_path, "home-desktop")
    finally:
        page.set_window_size(414, 896)

    follow(page, page.find_element(By.ID, "logout"))
    assert page.current_url == f"{live_server}/console/login"
    page.get(f"{live_server}/console/")
    assert page.current_url.startswith(f"{live_server}/console/login")
    assert_no_csp_violation(page)


def test_the_console_in_english_at_360_px(page, live_server, app, tmp_path):
    """?lang=en switches the console to English and keeps it; the page fits a 360 px phone without scrolling
    sideways."""
    _dispatcher("han.mei")
    try:
        page.set_window_size(360, 740)
        page.get(f"{live_server}/console/login?lang=en")
        assert page.find_element(By.TAG_NAME, "h1").text == "Sign in to the console"
        console_login(page, live_server, "han.mei", PASSWORD)
        assert "Sign out" in page.find_element(By.ID, "logout").text
        assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        assert_accessible(page)
        screenshot(page, tmp_path, "home-360-en")
    finally:
        page.set_window_size(414, 896)


def test_the_csp_check_sees_a_violation(page, live_server, app):
    """The log check is not blind: an inline style added to a console page is refused by the CSP, and reported."""
    page.get_log("browser")
    page.get(f"{live_server}/console/login")
    page.execute_script("const s = document.createElement('style'); s.textContent = 'body{color:red}';"
                        "document.head.appendChild(s);")
    page.execute_script("return 1")
    try:
        assert_no_csp_violation(page)
    except AssertionError as error:
        assert "Content Security Policy" in str(error) or "Refused to" in str(error)
    else:
        raise AssertionError("an inline style under the CSP was not reported")


def test_htmx_swaps_a_page_under_the_csp(page, live_server, app):
    """An htmx request from a console page (with the session's X-CSRF-Token header) swaps its answer in; nothing
    the CSP refuses on the way (htmx's settle classes and indicator need no inline style)."""
    _dispatcher("wei.dong")
    page.get_log("browser")
    console_login(page, live_server, "wei.dong", PASSWORD)
    page.execute_script("htmx.ajax('GET', '/console/account', {target: '#main', select: '#main > *'})")
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(page, 10).until(lambda driver: driver.find_elements(By.ID, "change-password"))
    assert_no_csp_violation(page)


def test_a_dispatcher_changes_their_password(page, live_server, app, tmp_path):
    """From the navigation to the account page; a wrong current password is refused in words, the field marked; the
    right one with the new password twice changes it: the new password signs in, accessible, nothing the CSP
    refuses."""
    _dispatcher("zhou.min")
    page.get_log("browser")
    console_login(page, live_server, "zhou.min", PASSWORD)
    follow(page, page.find_element(By.LINK_TEXT, "我的账户"))
    assert page.find_element(By.TAG_NAME, "h1").text == "我的账户"
    assert_accessible(page)
    screenshot(page, tmp_path, "account")

    new = "a new password for zhou"
    for field, value in (("current_password", "not my password"), ("password", new), ("password_again", new)):
        page.find_element(By.ID, field).send_keys(value)
    submit(page, page.find_element(By.CSS_SELECTOR, "#change-password button[type=submit]"))
    assert "当前密码不正确" in text_of(page, "error")
    assert page.find_element(By.ID, "current_password").get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    screenshot(page, tmp_path, "account-refused")

    for field, value in (("current_password", PASSWORD), ("password", new), ("password_again", new)):
        page.find_element(By.ID, field).send_keys(value)
    follow(page, page.find_element(By.CSS_SELECTOR, "#change-password button[type=submit]"))
    assert "密码已修改" in text_of(page, "done")
    assert_accessible(page)
    screenshot(page, tmp_path, "account-changed")
    assert_no_csp_violation(page)

    follow(page, page.find_element(By.ID, "logout"))
    console_login(page, live_server, "zhou.min", new)
    assert text_of(page, "whoami") == "zhou.min"

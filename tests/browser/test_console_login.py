"""The console's sign-in in headless Chromium: the form, a refusal, the console, sign-out; accessible, on a phone
and on a desktop."""
from server.auth import SYSTEM
from server.services import staff
from tests.browser.conftest import assert_accessible, console_login, follow, require_browser, screenshot, text_of

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
    page.get(f"{live_server}/dispatch")
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

"""The console's refusals as a person meets them in headless Chromium: a dispatcher on a quality page, a form whose
CSRF token was tampered with, a session left idle past its limit; each a page in words, accessible."""
from datetime import timedelta

from server.auth import SYSTEM
from server.console.auth import CSRF_FIELD
from server.services import staff
from tests.browser.conftest import (assert_accessible, assert_no_csp_violation, console_login, follow,
                                    require_browser, screenshot, submit, text_of)

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402  (only once the browser is known to be there)

PASSWORD = "correct horse battery staple"


def _dispatcher(username: str) -> None:
    """A dispatcher with a console password."""
    user, _ = staff.create(username=username, role="dispatcher")
    staff.set_password(actor=SYSTEM, staff_id=user.id, password=PASSWORD)


def test_a_dispatcher_is_refused_a_quality_page(page, live_server, app, tmp_path):
    """The violations review is quality's: a dispatcher gets the refusal page in words, and the nav never offered it."""
    _dispatcher("zhou.dispatch")
    console_login(page, live_server, "zhou.dispatch", PASSWORD)
    assert not page.find_elements(By.CSS_SELECTOR, 'nav a[href$="/console/violations"]')
    page.get(f"{live_server}/console/violations")
    assert "没有权限" in page.find_element(By.TAG_NAME, "h1").text
    assert text_of(page, "error") == "你的角色不能打开这个页面。"
    assert_no_csp_violation(page)
    assert_accessible(page)
    screenshot(page, tmp_path, "refused-quality-page")


def test_a_tampered_csrf_token_is_refused_and_nothing_changes(page, live_server, app, tmp_path):
    """The password form with its CSRF token altered in the page: refused in words, and the old password still
    signs in (nothing was changed)."""
    _dispatcher("qian.dispatch")
    console_login(page, live_server, "qian.dispatch", PASSWORD)
    page.get(f"{live_server}/console/account")
    form = page.find_element(By.ID, "change-password")
    page.execute_script(f"arguments[0].querySelector('input[name={CSRF_FIELD}]').value = 'forged'", form)
    fields = form.find_elements(By.CSS_SELECTOR, "input[type=password]")
    assert len(fields) == 3
    fields[0].send_keys(PASSWORD)
    fields[1].send_keys("a brand new secret 123")
    fields[2].send_keys("a brand new secret 123")
    submit(page, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "页面已过期，请刷新后再提交。" in text_of(page, "error")
    assert_accessible(page)
    screenshot(page, tmp_path, "refused-csrf")
    page.get(f"{live_server}/console/")
    follow(page, page.find_element(By.ID, "logout"))
    console_login(page, live_server, "qian.dispatch", PASSWORD)
    assert text_of(page, "whoami") == "qian.dispatch"


def test_an_idle_session_leads_back_to_the_sign_in_form(page, live_server, app, server_clock, tmp_path):
    """Thirty-one minutes without a request (FIELDOPS_CONSOLE_IDLE_MINUTES, 30): the next page is the sign-in form;
    signing in again leads back to the page asked for."""
    _dispatcher("sun.dispatch")
    console_login(page, live_server, "sun.dispatch", PASSWORD)
    assert text_of(page, "whoami") == "sun.dispatch"
    with server_clock.at(server_clock.now() + timedelta(minutes=31)):
        page.get(f"{live_server}/console/exceptions")
        assert page.current_url.startswith(f"{live_server}/console/login")
        assert_accessible(page)
        screenshot(page, tmp_path, "expired")
        console_login(page, live_server, "sun.dispatch", PASSWORD)
        assert text_of(page, "whoami") == "sun.dispatch"

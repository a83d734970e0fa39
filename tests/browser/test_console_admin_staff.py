"""The admin's staff page in headless Chromium (issue 24): the header names the signed-in admin, the new-staff
form has no role chosen until one is picked and shows roles in words, and the admin's nav (the longest) stays on
one line at 1280 px; at 360 px nothing scrolls sideways; accessible."""
from server.auth import SYSTEM
from server.services import staff
from tests.browser.conftest import assert_accessible, console_login, require_browser, screenshot

require_browser()

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

PASSWORD = "correct horse battery staple"


def test_the_staff_page_and_the_admins_nav(page, live_server, tmp_path):
    """Header, form and nav as a new admin sees them, at 1280 px and at 360 px."""
    user, _ = staff.create(username="li.admin", role="admin")
    staff.set_password(actor=SYSTEM, staff_id=user.id, password=PASSWORD)
    page.set_window_size(1280, 900)
    console_login(page, live_server, "li.admin", PASSWORD)
    page.get(f"{live_server}/console/admin/staff")
    assert page.find_element(By.ID, "whoami").text == "li.admin"
    assert "(管理员)" in page.find_element(By.CSS_SELECTOR, ".who").text
    role = page.find_element(By.ID, "staff-role")
    assert role.get_attribute("required") is not None
    choice = Select(role)
    assert choice.first_selected_option.get_attribute("value") == "" and choice.first_selected_option.text == "请选择角色"
    assert "车辆维护" in [option.text for option in choice.options]
    assert page.find_element(By.CSS_SELECTOR, "#staff-li\\.admin td:nth-child(2)").text == "管理员"
    # The nav's links all sit on one line (one top offset) at 1280 px.
    tops = {link.location["y"] for link in page.find_elements(By.CSS_SELECTOR, ".nav a")}
    assert len(tops) == 1, tops
    assert_accessible(page)
    screenshot(page, tmp_path, "admin-staff-1280")
    page.set_window_size(360, 1400)
    page.get(f"{live_server}/console/admin/staff")
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, tmp_path, "admin-staff-360")

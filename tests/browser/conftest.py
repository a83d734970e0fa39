"""Browser tests: headless Chromium (Debian's chromium and chromium-driver) driven by selenium.

The app is served over real HTTP on 127.0.0.1 (werkzeug's server in a thread).
Without a browser the tests are skipped, and the run says so at its end;
FIELDOPS_REQUIRE_BROWSER=1 (as in .ci/run) makes a missing browser a failure.
FIELDOPS_BROWSER_REPORT names a file to which the outcome is written, for scripts/test.sh.
"""
import os
import shutil
import tempfile

import pytest


CHROMIUM = os.environ.get("FIELDOPS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FIELDOPS_CHROMEDRIVER", "/usr/bin/chromedriver")
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
          "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--lang=zh-CN", "--window-size=414,896")
_outcomes: dict[str, int] = {}
_skipped: list[str] = []


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} not found (apt-get install {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def require_browser() -> None:
    """Skip the calling module without a browser, or fail it when FIELDOPS_REQUIRE_BROWSER=1."""
    reason = browser_missing()
    if reason is None:
        return
    if os.environ.get("FIELDOPS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required (FIELDOPS_REQUIRE_BROWSER=1) but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}", allow_module_level=True)


def text_of(page, element_id: str) -> str:
    """The visible text of an element, waiting for it to be there (and read again if the page replaced it).

    Any driver error while the page is being replaced (a stale element, or chromedriver's
    "node does not belong to the document") means "not yet": the wait asks again.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(page, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.find_element(By.ID, element_id).text
        if driver.find_elements(By.ID, element_id) else False)


def text_with(page, css: str, *words: str, timeout: float = 30) -> str:
    """The text of the element `css` once it holds every one of `words`: found again at each try (the app redraws
    its screens as the queue and the sync move, so an element found earlier may be gone). Fails with the last text
    seen when the words do not come."""
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    seen = {"text": None}

    def holds(driver):
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if not found:
            return False
        seen["text"] = found[0].text
        return seen["text"] if all(word in seen["text"] for word in words) else False

    try:
        return WebDriverWait(page, timeout, ignored_exceptions=(WebDriverException,)).until(holds)
    except TimeoutException:
        raise AssertionError(f"{css}: {words!r} not in {seen['text']!r} after {timeout}s") from None


def _gone(element) -> bool:
    """Whether an element's document has been replaced (any driver error about it says so)."""
    from selenium.common.exceptions import WebDriverException

    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False


def follow(page, element) -> None:
    """Click a link or button that loads another page, and wait until the old document is gone.

    Reading right after the click could still read the old page (its text, its title).
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = page.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(page, 30).until(lambda _driver: _gone(old))


def submit(page, element) -> None:
    """Click a submit button and wait for the page it leads to (every answer to a post says how it went).

    The page before the click may already show a message (a second post on the same page), so
    the wait is first for the old document to go, then for the new one's message or error.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    follow(page, element)
    WebDriverWait(page, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, "#message, #error"))


AXE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor", "axe.min.js")  # vendor/README.md


def console_login(page, live_server: str, username: str, password: str) -> None:
    """Sign in to the console through its form, as a person would; the console's first page is then open."""
    from selenium.webdriver.common.by import By

    page.get(f"{live_server}/console/login")
    page.find_element(By.ID, "username").send_keys(username)
    page.find_element(By.ID, "password").send_keys(password)
    follow(page, page.find_element(By.CSS_SELECTOR, "#login button[type=submit]"))


def assert_accessible(page) -> None:
    """axe-core (vendored) finds no serious or critical violation on the page as it is now.

    The script is given through the driver (not a <script> of the page), so the page's CSP stays as it is.
    """
    if not page.execute_script("return typeof window.axe === 'object'"):
        with open(AXE, encoding="utf-8") as source:
            page.execute_script(source.read())
    page.set_script_timeout(60)
    found = page.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(result => done(result.violations)).catch(error => done({error: String(error)}));")
    assert not isinstance(found, dict), f"axe-core failed: {found}"
    serious = [violation for violation in found if violation["impact"] in ("serious", "critical")]
    assert not serious, "\n".join(
        f"{v['impact']} {v['id']}: {v['help']} ({', '.join(str(node['target']) for node in v['nodes'][:5])})"
        for v in serious)


def assert_no_csp_violation(page) -> list[dict]:
    """The browser's console log since the last call has no Content-Security-Policy violation (an inline style or
    script, a foreign host refused); returns the log read (reading it empties it)."""
    entries = page.get_log("browser")
    refused = [entry["message"] for entry in entries
               if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]]
    assert not refused, "CSP violations:\n" + "\n".join(refused)
    return entries


def screenshot(page, tmp_path, name: str) -> str:
    """Save the page's screenshot under the test's tmp_path and as /tmp/fieldops-console-<name>.png (to look at)."""
    page.save_screenshot(str(tmp_path / f"{name}.png"))
    target = f"/tmp/fieldops-console-{name}.png"
    page.save_screenshot(target)
    return target


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium with a fresh profile, Chinese as its language; quit at the end of the module."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fieldops-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in _FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console log, for CSP violations
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser):
    """The browser, with no cookies left from the previous test."""
    browser.delete_all_cookies()
    return browser


def _is_browser_test(nodeid: str) -> bool:
    """True for a test (or module) in this folder."""
    return nodeid.replace("\\", "/").startswith("tests/browser/")


def pytest_collectreport(report):
    """A module skipped as a whole (no browser), or failed (a required browser missing), is remembered."""
    if _is_browser_test(report.nodeid) and report.skipped:
        _skipped.append(str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else "skipped")
    elif _is_browser_test(report.nodeid) and report.failed:
        _outcomes["failed to collect"] = _outcomes.get("failed to collect", 0) + 1


def pytest_runtest_logreport(report):
    """Count the browser tests' outcomes."""
    if _is_browser_test(report.nodeid) and (report.when == "call" or report.outcome != "passed"):
        _outcomes[report.outcome] = _outcomes.get(report.outcome, 0) + 1


def _summary() -> str:
    """One line: did the browser tests run, and how did they do."""
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(_outcomes.items()))
    if "failed to collect" in _outcomes:
        return f"browser tests FAILED: {counts}"
    if _outcomes.get("passed") or _outcomes.get("failed"):
        return f"browser tests RAN in headless Chromium: {counts}"
    if _skipped:
        return "browser tests SKIPPED: " + _skipped[0].removeprefix("Skipped: ").removeprefix("browser tests skipped: ")
    return "browser tests not selected"


def pytest_terminal_summary(terminalreporter):
    """Say at the end of the run whether the browser tests ran or were skipped."""
    line = _summary()
    terminalreporter.write_line(f"fieldops: {line}", yellow="SKIPPED" in line, red="FAILED" in line, bold=True)
    report = os.environ.get("FIELDOPS_BROWSER_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as out:
            out.write(line + "\n")

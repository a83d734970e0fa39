"""The courier app as an installable, offline-starting PWA, checked as Lighthouse would where it matters here:
the manifest (fields, icons that load at their sizes), a service worker that controls the page, and a start with
the network cut (page and worker: set_offline) that renders the shell from the cache with nothing reaching the
server; the API is never answered from a cache; no CSP violation."""
import io
import json
import re

from PIL import Image

from tests.browser.conftest import assert_no_csp_violation, require_browser, screenshot
from tests.browser.courier_app import (DIST, assert_nothing_got_through, count_requests, open_app, require_app, set_offline, use_build,
                                       wait_controlled)

require_browser()
require_app()


def test_the_manifest_makes_the_app_installable(app, client):
    """Linked from the shell, served as application/manifest+json, with what an install needs; every icon loads as
    a PNG of its declared size, one of them maskable."""
    use_build(app)
    shell = client.get("/app/").text
    assert '<link rel="manifest" href="/app/manifest.webmanifest">' in shell
    answer = client.get("/app/manifest.webmanifest")
    assert answer.status_code == 200 and answer.mimetype == "application/manifest+json"
    manifest = json.loads(answer.data)
    assert manifest["name"] == "快递员 Fieldops" and manifest["short_name"]
    assert (manifest["start_url"], manifest["scope"], manifest["display"], manifest["lang"]) == (
        "/app/", "/app/", "standalone", "zh-CN")
    assert re.fullmatch("#[0-9a-f]{6}", manifest["theme_color"]) and re.fullmatch("#[0-9a-f]{6}",
                                                                                   manifest["background_color"])
    sizes = set()
    for icon in manifest["icons"]:
        image = client.get(icon["src"])
        assert image.status_code == 200 and image.mimetype == icon["type"] == "image/png", icon
        width, height = Image.open(io.BytesIO(image.data)).size
        assert f"{width}x{height}" == icon["sizes"], icon
        sizes.add((icon["sizes"], icon.get("purpose", "any")))
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes


def _script(page, body: str):
    """Run an async script in the page; its result."""
    page.set_script_timeout(30)
    return page.execute_async_script("const done = arguments[arguments.length - 1];" + body)


def test_the_app_starts_offline_from_its_service_worker(page, live_server, app, tmp_path):
    """Once opened online, the worker (scope /app/) controls the page and holds this build's files in one cache;
    with the network cut, a reload starts the app: the shell, its script and stylesheet from the cache, nothing
    reaching the server; the API fails instead of being answered stale."""
    use_build(app)
    open_app(page, live_server, controlled=True)
    registration = _script(page, "navigator.serviceWorker.getRegistration('/app/').then(r => done("
                                 "{scope: r.scope, script: r.active.scriptURL, sync: 'sync' in r}))")
    assert registration == {"scope": f"{live_server}/app/", "script": f"{live_server}/app/sw.js", "sync": True}
    cached = _script(page, "caches.keys().then(async keys => done({keys, urls: (await Promise.all(keys.map("
                           "async k => (await (await caches.open(k)).keys()).map(r => new URL(r.url).pathname))))"
                           ".flat().sort()}))")
    assert len(cached["keys"]) == 1 and re.fullmatch("fieldops-app-[0-9a-f]{16}", cached["keys"][0])
    with open(f"{DIST}/sw.js", encoding="utf-8") as built:
        assert cached["keys"][0].removeprefix("fieldops-app-") in built.read()  # this build's cache
    assert "/app/" in cached["urls"] and "/app/manifest.webmanifest" in cached["urls"]
    assets = [u for u in cached["urls"] if u.startswith("/app/assets/")]
    assert any(u.endswith(".js") for u in assets) and any(u.endswith(".css") for u in assets)
    assert _script(page, "fetch('/api/v1/sync/pull').then(r => done(r.status))") == 426  # no protocol header
    assert not [u for u in _script(page, "caches.keys().then(async keys => done((await Promise.all(keys.map("
                                         "async k => (await (await caches.open(k)).keys()).map(r => r.url))))"
                                         ".flat()))") if "/api/" in u]
    assert_no_csp_violation(page)

    try:
        set_offline(page, True)
        with count_requests(app) as seen:
            page.refresh()
            wait_controlled(page)
            started = page.execute_script(
                "return {title: document.title, view: !!document.getElementById('view'),"
                " width: getComputedStyle(document.querySelector('main')).maxWidth,"
                " loaded: performance.getEntriesByType('resource').filter(e => e.name.includes('/app/assets/'))"
                "   .map(e => [e.name.split('.').pop(), e.responseStatus])}")
            api = _script(page, "fetch('/api/v1/sync/pull').then(r => done('answered ' + r.status),"
                                " e => done('failed ' + e.name))")
            assert_no_csp_violation(page)
            shot = screenshot(page, tmp_path, "app-offline-start")
        assert_nothing_got_through(seen)  # the reload's update check of the worker at most
    finally:
        set_offline(page, False)
    assert started["title"] == "Fieldops 快递员" and started["view"]
    assert started["width"] == "720px"  # the stylesheet applied: served by the worker
    assert sorted(started["loaded"]) == [["css", 200], ["js", 200]]
    assert api == "failed TypeError"
    assert shot.endswith(".png")

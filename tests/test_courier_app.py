"""Fieldops serves the courier's app at /app: its files with the right types, caching and security headers,
a 404 problem for anything else, and a 503 saying how to build it when there is no build."""
import json

import pytest

CSP_PARTS = {"default-src 'self'", "img-src 'self' blob:", "connect-src 'self'", "worker-src 'self'",
             "manifest-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"}


@pytest.fixture
def build(app, tmp_path):
    """A build folder like Vite's: the shell, the worker, the manifest, an icon and two hashed assets."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "icons").mkdir()
    files = {"index.html": "<!doctype html><title>shell</title>", "sw.js": "self.addEventListener('fetch', () => {});",
             "manifest.webmanifest": json.dumps({"name": "快递员 Fieldops", "start_url": "/app/"}),
             "assets/index-AbC123.js": "export {};", "assets/index-AbC123.css": "body{}"}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "icons" / "icon-192.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    app.config["COURIER_APP_DIR"] = str(tmp_path)
    return tmp_path


def _assert_app_headers(response) -> None:
    """The app's own headers, on whatever /app answered."""
    assert set(response.headers["Content-Security-Policy"].split("; ")) >= CSP_PARTS
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "data:" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    permissions = response.headers["Permissions-Policy"].split(", ")
    assert "camera=(self)" in permissions and "geolocation=(self)" in permissions


@pytest.mark.parametrize("path, mimetype, cache", [
    ("/app/", "text/html", "no-cache"),
    ("/app/sw.js", "text/javascript", "no-cache"),
    ("/app/manifest.webmanifest", "application/manifest+json", "no-cache"),
    ("/app/icons/icon-192.png", "image/png", "no-cache"),
    ("/app/assets/index-AbC123.js", "text/javascript", "public, max-age=31536000, immutable"),
    ("/app/assets/index-AbC123.css", "text/css", "public, max-age=31536000, immutable"),
])
def test_the_build_is_served_with_its_types_caching_and_headers(client, build, path, mimetype, cache):
    """The shell, worker and manifest are revalidated on each load; hashed assets are kept for good."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.headers["Cache-Control"] == cache
    assert "Service-Worker-Allowed" not in response.headers  # /app/sw.js's own scope is /app/
    _assert_app_headers(response)


def test_the_shell_is_the_index_file(client, build):
    """/app/ is index.html; /app and /app/index.html lead there (the scope ends in a slash; one URL for the shell,
    the one the service worker caches)."""
    assert client.get("/app/").text == (build / "index.html").read_text(encoding="utf-8")
    for path in ("/app", "/app/index.html"):
        moved = client.get(path)
        assert moved.status_code in (301, 308) and moved.headers["Location"].endswith("/app/"), path


@pytest.mark.parametrize("path", ["/app/tasks/t-1", "/app/assets/missing.js", "/app/../server/config.py",
                                  "/app/%2e%2e/%2e%2e/README.md", "/app/assets/", "/app/icons"])
def test_anything_else_is_a_404_problem(client, build, path):
    """Routes live in the hash: a path that is not a file of the build is 404 problem+json, never the shell nor a
    file outside the build."""
    response = client.get(path)
    assert response.status_code == 404, (path, response.status_code)
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "not_found"
    _assert_app_headers(response)


def test_without_a_build_it_says_how_to_make_one(app, client, tmp_path):
    """No index.html in the folder: 503, Retry-After, the command to run; the headers still there."""
    app.config["COURIER_APP_DIR"] = str(tmp_path / "missing")
    for path in ("/app/", "/app/sw.js"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "60"
        assert response.mimetype == "text/plain"
        assert "npm ci && npm run build" in response.text
        _assert_app_headers(response)


def test_the_rest_of_fieldops_keeps_its_own_headers(client, build):
    """The app's CSP is the app's: the API does not get it."""
    response = client.get("/healthz")
    assert "Permissions-Policy" not in response.headers

"""The courier's app (courier-app/, a progressive web app) served at /app from its build folder.

The build (`npm ci && npm run build` in courier-app/, run by the setup scripts and CI) writes
courier-app/dist; FIELDOPS_COURIER_APP_DIR names another folder. Without a build, /app says how to make one.
Every answer under /app carries the app's own headers (a CSP of 'self' only, no referrer, camera and
location for the app itself); the shell, the service worker and the manifest are revalidated on every
load, the content-hashed assets are cached for good (docs/decisions.md, "Issue 25: the platform").
"""
import os

from urllib.parse import quote

from flask import Blueprint, Flask, current_app, redirect, request, send_from_directory

from server.requests import public_url

bp = Blueprint("courier_app", __name__, url_prefix="/app")
NOT_BUILT = ("The courier's app is not built: run `npm ci && npm run build` in courier-app/ "
             "(bash scripts/serve-demo.sh does it).\n")
# blob: for the previews of photos and the signature drawn (object URLs of the device's own blobs); no data:
# (Vite inlines nothing: assetsInlineLimit 0), no inline script or style anywhere in the build.
CSP = ("default-src 'self'; img-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PERMISSIONS = "camera=(self), geolocation=(self), microphone=(), payment=(), usb=()"
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".webmanifest": "application/manifest+json",
          ".css": "text/css", ".html": "text/html", ".png": "image/png", ".svg": "image/svg+xml",
          ".json": "application/json"}


@bp.get("")
def to_app():
    """/app leads to /app/ (the app's scope ends in a slash)."""
    return redirect("/app/", code=301)


@bp.get("/", defaults={"path": "index.html"})
@bp.get("/<path:path>")
def asset(path: str):
    """A file of the build; the app's shell (index.html) for the root. Routes are in the hash (#/tasks/…), so
    any other path that is not a file of the build is a 404."""
    folder = current_app.config["COURIER_APP_DIR"]
    if not os.path.isfile(os.path.join(folder, "index.html")):
        return NOT_BUILT, 503, {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "60"}
    response = send_from_directory(folder, path, mimetype=_TYPES.get(os.path.splitext(path)[1].lower()))
    if path.startswith("assets/"):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"  # the name carries the hash
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


def _headers(response):
    """The app's own security headers on every answer under /app (errors and redirects included). Registered on
    the app, not the blueprint: a 405, or the redirect of a path with a double slash, is answered by routing before
    any blueprint is chosen, and would go out without them."""
    if request.path != "/app" and not request.path.startswith("/app/"):
        return response
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Permissions-Policy"] = PERMISSIONS
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-cache")
    return response


def app_url() -> str:
    """The app's address under FIELDOPS_PUBLIC_URL (ending in /app/, its scope)."""
    return public_url("courier_app.asset")


def enroll_link(code: str) -> str:
    """The app link an enrollment QR for a phone carries: its camera opens the app, which reads the code from the
    hash (the core's parseEnrollment); the code never reaches the server in a URL."""
    return f"{app_url()}#/enroll?code={quote(code, safe='')}"


def init_app(app: Flask) -> None:
    """Serve the app under /app."""
    app.register_blueprint(bp)
    app.after_request(_headers)

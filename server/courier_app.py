"""The courier's app (courier-app/, a progressive web app) served at /app from its build folder.

The build (`npm ci && npm run build` in courier-app/, run by the setup scripts and CI) writes
courier-app/dist; FIELDOPS_COURIER_APP_DIR names another folder. Without a build, /app says how to make one.
"""
import os

from flask import Blueprint, Flask, current_app, redirect, send_from_directory

bp = Blueprint("courier_app", __name__, url_prefix="/app")
NOT_BUILT = ("The courier's app is not built: run `npm ci && npm run build` in courier-app/ "
             "(bash scripts/serve-demo.sh does it).\n")


@bp.get("")
def to_app():
    """/app leads to /app/ (the app's scope ends in a slash)."""
    return redirect("/app/", code=301)


@bp.get("/", defaults={"path": "index.html"})
@bp.get("/<path:path>")
def asset(path: str):
    """A file of the build; the app's shell (index.html) for the root."""
    folder = current_app.config["COURIER_APP_DIR"]
    if not os.path.isfile(os.path.join(folder, "index.html")):
        return NOT_BUILT, 503, {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "60"}
    return send_from_directory(folder, path)


def init_app(app: Flask) -> None:
    """Serve the app under /app."""
    app.register_blueprint(bp)

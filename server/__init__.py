"""Fieldops: the backend of express couriers' handhelds and their dispatch office."""
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from server.config import Config


def create_app(config: Config | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, error handlers. Starts nothing."""
    from server import commands, courier_app, database, extensions, faults, jsonio, logs, metrics, models, requests
    from server.api import api, register_blueprints
    from server.console import pages as console_pages
    from server.services import appointments, attachments, duty, events, handover, receipts, scans, tasks
    from server.sync_wiring import build_registry
    from sync import feed

    app = Flask(__name__)  # its instance folder is the config's INSTANCE_DIR (database.apply_defaults)
    app.config.from_object(config or Config())
    if app.config["PROXY_HOPS"] > 0:
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    metrics.init_app(app)  # first: its clock starts before every other hook
    jsonio.init_app(app)
    database.apply_defaults(app)
    logs.init_app(app)
    extensions.db.init_app(app)
    extensions.migrate.init_app(app, extensions.db, directory=database.MIGRATIONS_DIR,
                                render_as_batch=True, compare_type=True)
    api.init_app(app)
    with app.app_context():
        database.configure_engine(extensions.db.engine,
                                  busy_timeout_ms=app.config["SQLITE_BUSY_TIMEOUT_MS"])
    models.init_app(app)
    tasks.init_app(app)
    appointments.init_app(app)
    handover.init_app(app)
    scans.init_app(app)
    duty.init_app(app)
    receipts.init_app(app)
    attachments.init_app(app)
    feed.init_app(app)
    events.init_app(app)  # after the feed: its lock is taken last, held only for the inserts
    app.extensions["fieldops_sync"] = build_registry()
    requests.init_app(app)
    register_blueprints(app)
    console_pages.init_app(app)
    courier_app.init_app(app)
    commands.init_app(app)
    faults.init_app(app)
    return app

"""The console's page modules: importing this adds their routes to the console's blueprint.

Each page module adds itself to the import below (auth first: its hooks load the session for every page).
"""
from flask import Flask

from server.console import auth, bp, root_bp  # noqa: F401  (auth first: its hooks load the session for every page)
# The rest in the navigation's order ("my account" last).
from server.console import home, board, search, task_page, task_messages, office, couriers  # noqa: F401,I001  (their routes)
from server.console import quality, vans, admin_pages, accounts  # noqa: F401,I001  (their routes)


def init_app(app: Flask) -> None:
    """Serve the console under /console, and the root and /dispatch leading there."""
    app.register_blueprint(bp)
    app.register_blueprint(root_bp)

"""The console's page modules: importing this adds their routes to the console's blueprint.

Each page module adds itself to the import below (auth first: its hooks load the session for every page).
"""
from flask import Flask

from server.console import auth, bp, root_bp  # noqa: F401  (auth first: its hooks load the session for every page)
from server.console import (admin_pages, board, home, office, quality, search,  # noqa: F401  (for their routes)
                            task_messages, task_page, vans)


def init_app(app: Flask) -> None:
    """Serve the console under /console, and the root and /dispatch leading there."""
    app.register_blueprint(bp)
    app.register_blueprint(root_bp)

"""The console's page modules: importing this adds their routes to the console's blueprint.

Each page module adds itself to the import below (auth first: its hooks load the session for every page).
"""
from flask import Flask

from server.console import (admin_pages, auth, board, bp, home, office, quality,  # noqa: F401  (for their routes)
                            root_bp, search, task_page, vans)


def init_app(app: Flask) -> None:
    """Serve the console under /console, and the root and /dispatch leading there."""
    app.register_blueprint(bp)
    app.register_blueprint(root_bp)

"""The console's page modules: importing this adds their routes to the console's blueprint.

Each page module adds itself to the import below (auth first: its hooks load the session for every page).
"""
from flask import Flask

from server.console import auth, bp, home, office, root_bp  # noqa: F401  (imported for the routes they add)
from server.console import accounts  # noqa: F401,E402  (last: "my account" ends the navigation)


def init_app(app: Flask) -> None:
    """Serve the console under /console, and the root and /dispatch leading there."""
    app.register_blueprint(bp)
    app.register_blueprint(root_bp)

"""The dispatch console: server-rendered pages for office staff under /console, signed in with a password.

Each page module does `from server.console import bp` and adds its routes; server/console/pages.py lists the
modules (it, not this package, imports them: the package importing its own pages would be an import circle).
"""
from dataclasses import dataclass

from flask import Blueprint, redirect, url_for

bp = Blueprint("console", __name__, url_prefix="/console")
# The site's root and the old /dispatch address lead to the console.
root_bp = Blueprint("console_root", __name__)


@dataclass(frozen=True)
class NavEntry:
    """A page in the console's navigation: its endpoint, its text key, and the roles that see it."""

    endpoint: str
    key: str
    roles: tuple[str, ...]


NAV: list[NavEntry] = []


def register_nav(endpoint: str, key: str, roles) -> None:
    """Put a page in the navigation (in registration order), shown only to the roles that may open it."""
    if any(entry.endpoint == endpoint for entry in NAV):
        raise ValueError(f"{endpoint} is in the console's navigation twice")
    NAV.append(NavEntry(endpoint, key, tuple(roles)))


def nav_for(role: str | None) -> list[NavEntry]:
    """The navigation a role sees."""
    return [entry for entry in NAV if role in entry.roles]


@root_bp.get("/")
@root_bp.get("/dispatch")
def to_console():
    """Send a browser at the root to the console (its home page, or the sign-in form)."""
    return redirect(url_for("console.home"), code=302)

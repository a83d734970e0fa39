"""Every console route × every caller: a bearer token never opens the console; each page's roles are enforced."""
import re

from schemas.vocab import STAFF_ROLES
from tests.api.test_access_matrix import served

CONSOLE = "/console"
# The only console routes without page(*roles): the sign-in form and signing out.
OPEN = {("GET", "/console/login"): 200, ("POST", "/console/login"): 400, ("POST", "/console/logout"): 303}
_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_INT_PARAM = re.compile(r"<int:[^<>]+>")


def _console_cells(app):
    """(method, rule, roles) of every console route; roles None for the open ones."""
    cells = []
    for method, rule in served(app):
        if rule.rule.startswith(CONSOLE):
            view = app.view_functions[rule.endpoint]
            cells.append((method, rule, getattr(view, "_fieldops_console_roles", None)))
    return cells


def test_every_console_route_declares_its_roles(app):
    """A console route is a page(*roles) view, or one of the few open ones."""
    undeclared = [f"{method} {rule.rule}" for method, rule, roles in _console_cells(app)
                  if roles is None and (method, rule.rule) not in OPEN]
    assert not undeclared, f"console routes without page(*roles): {undeclared}"


def test_a_bearer_token_never_opens_the_console(app, make):
    """Any caller without a console session, token or not: every page leads to the sign-in form, every post too."""
    headers = [{}, make.headers("admin"), make.headers("dispatcher")]
    for method, rule, _roles in _console_cells(app):
        url = _PARAM.sub("x1", _INT_PARAM.sub("1", rule.rule))
        for header in headers:
            response = app.test_client().open(url, method=method, headers=header)
            expected = OPEN.get((method, rule.rule), 303)
            assert response.status_code == expected, (method, rule.rule, response.status_code)
            if expected == 303:
                assert response.headers["Location"].startswith("/console/login"), (method, rule.rule)


def test_each_page_answers_its_roles_and_refuses_the_others(app, console_as):
    """Signed in as each staff role: a page without parameters is 200 for its roles and the 403 page for others."""
    clients = {role: console_as(role) for role in STAFF_ROLES}
    pages = [(rule, roles) for method, rule, roles in _console_cells(app)
             if method == "GET" and roles is not None and not rule.arguments]
    assert pages
    for rule, roles in pages:
        for role, client in clients.items():
            response = client.get(rule.rule)
            assert response.status_code == (200 if role in roles else 403), (rule.rule, role, response.status_code)

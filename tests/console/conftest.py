"""What the console tests share: staff users with passwords, signed in through the real sign-in form."""
import re
import uuid

import pytest

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_in(html: str) -> str:
    """The CSRF token of a console page's forms."""
    match = _CSRF.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


@pytest.fixture
def csrf_of():
    """csrf_of(client, path): the CSRF token on that console page, as the browser would read it."""
    def read(client, path: str) -> str:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return csrf_in(response.get_data(as_text=True))
    return read


@pytest.fixture
def console_user(app):
    """console_user(role, password=PASSWORD) -> username: a new staff user of the role with a console password."""
    from server.auth import SYSTEM
    from server.services import staff

    def make(role: str, password: str = PASSWORD) -> str:
        user, _token = staff.create(username=f"{role}-{uuid.uuid4().hex[:6]}", role=role)
        staff.set_password(actor=SYSTEM, staff_id=user.id, password=password)
        return user.username
    return make


@pytest.fixture
def sign_in(csrf_of):
    """sign_in(client, username, password) -> the answer to posting the real sign-in form."""
    def post(client, username: str, password: str, **form):
        token = csrf_of(client, "/console/login")
        return client.post("/console/login", data={"csrf_token": token, "username": username,
                                                   "password": password, **form})
    return post


@pytest.fixture
def console_as(app, console_user, sign_in):
    """console_as(role) -> a test client signed in through the sign-in form as a new staff user of that role
    (its username is `client.username`)."""
    def signed_in(role: str, address: str = "127.0.0.1"):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        client.username = console_user(role)
        response = sign_in(client, client.username, PASSWORD)
        assert response.status_code == 303, response.get_data(as_text=True)
        return client
    return signed_in

"""Guessing at the public pages: invalid customer links and receipt tokens are limited per address; valid ones never.

Enrollment codes and bearer tokens: tests/api/test_auth_limits.py.
"""
from sqlalchemy import func, select

from server.config import FailureLimit
from server.extensions import db
from server.models import AuthFailure
from server.services import receipts
from tests.api.test_customer_page import csrf_of, issue, path_of
from tests.services.test_receipts import evidence

GUESSER, NEIGHBOUR = "203.0.113.7", "203.0.113.8"


def _get(client, path: str, address: str = GUESSER):
    """GET a page from a client address."""
    return client.get(path, environ_base={"REMOTE_ADDR": address})


def _forged(path: str, n: int) -> str:
    """A link path with its signature changed: well formed, not ours."""
    return path[:-6] + f"{n:06d}"


def test_invalid_customer_links_are_limited_per_address_but_a_valid_link_is_served(client, app, make):
    """Forged links from one address: 404s, then 429 with Retry-After; a valid link there is served, and posts."""
    app.config["CUSTOMER_LINK_FAILURES_PER_ADDRESS"] = FailureLimit(4, 600)
    link = path_of(issue(client, make, make.task(courier=make.courier())["id"]))
    statuses = [_get(client, _forged(link, n)).status_code for n in range(6)]
    assert statuses == [404] * 4 + [429] * 2
    refused = _get(client, _forged(link, 7) + "?lang=en")
    assert refused.status_code == 429 and "Too many requests" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 600
    assert client.get("/c/nonsense", environ_base={"REMOTE_ADDR": GUESSER}).status_code == 429
    # The customer behind the same address (a carrier's NAT) opens their page and confirms.
    page = _get(client, link)
    assert page.status_code == 200
    confirmed = client.post(link + "/confirm", data={"csrf": csrf_of(page)}, environ_base={"REMOTE_ADDR": GUESSER})
    assert confirmed.status_code == 303
    # Another address is not limited by the guesser's failures; refused attempts were not counted.
    assert _get(client, _forged(link, 8), address=NEIGHBOUR).status_code == 404
    counted = db.session.scalar(select(func.count()).select_from(AuthFailure)
                                .where(AuthFailure.key == f"customer-link:{GUESSER}"))
    assert counted == 4


def test_expired_and_replaced_links_are_not_guesses(client, app, make):
    """A customer opening an old link again and again gets 410, never counted toward 429."""
    app.config["CUSTOMER_LINK_FAILURES_PER_ADDRESS"] = FailureLimit(2, 600)
    task = make.task(courier=make.courier())
    old = path_of(issue(client, make, task["id"]))
    issue(client, make, task["id"])  # replaces it
    assert [_get(client, old).status_code for _ in range(4)] == [410] * 4
    assert db.session.scalar(select(func.count()).select_from(AuthFailure)
                             .where(AuthFailure.key.like("customer-link:2%"))) == 0


def test_unknown_receipt_tokens_are_limited_per_address_but_a_real_one_is_served(client, app, make):
    """Unknown receipt tokens: 404s, then 429 (problem+json rate_limited, Retry-After); a real token there opens."""
    app.config["RECEIPT_TOKEN_FAILURES_PER_ADDRESS"] = FailureLimit(3, 600)
    receipt = receipts.issue(task_id=make.task()["id"], kind="delivery", evidence=evidence())
    db.session.commit()
    page = f"/r/{receipts.page_token(receipt)}"
    statuses = [_get(client, f"/r/for_{'Q' * 42}{n}.json").status_code for n in range(4)]
    assert statuses == [404, 404, 404, 429]
    limited = _get(client, f"/r/for_{'Q' * 43}.json")
    assert limited.status_code == 429 and limited.mimetype == "application/problem+json"
    assert limited.json["code"] == "rate_limited" and limited.json["limit"] == "receipt_token_failures_per_address"
    assert 0 < int(limited.headers["Retry-After"]) <= 600
    assert _get(client, page).status_code == 200
    assert _get(client, page + ".json").status_code == 200
    assert _get(client, f"/r/for_{'Q' * 43}", address=NEIGHBOUR).status_code == 404

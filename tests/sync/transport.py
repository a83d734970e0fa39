"""Transports for the reference client in tests: in-process, and one that loses messages."""
import random

from sync.client import Reply


class FlaskTransport:
    """Sends the client's requests through a Flask test client."""

    def __init__(self, app, prefix: str = "/api/v1"):
        """Bind to the app."""
        self.client = app.test_client()
        self.prefix = prefix
        self.calls = 0

    def request(self, method, path, *, headers, body=None, query=None) -> Reply:
        """One request, in process."""
        self.calls += 1
        response = self.client.open(self.prefix + path, method=method, headers=headers, data=body,
                                    query_string=query)
        return Reply(response.status_code, dict(response.headers), response.get_data())


class FlakyTransport:
    """Drops requests before they reach the server, or loses the answer after it acted."""

    def __init__(self, inner, rng: random.Random, drop: float = 0.2, lose: float = 0.2):
        """drop/lose are probabilities per request."""
        self.inner, self.rng, self.drop, self.lose = inner, rng, drop, lose
        self.lost_answers = 0

    def request(self, method, path, **kwargs) -> Reply:
        """Maybe fail before, maybe after."""
        if self.rng.random() < self.drop:
            raise ConnectionError("network down (request never sent)")
        reply = self.inner.request(method, path, **kwargs)
        if self.rng.random() < self.lose:
            self.lost_answers += 1
            raise ConnectionError("answer lost (the server did act)")
        return reply

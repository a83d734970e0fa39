"""An in-process transport for the reference client (the lossy one is tools.fleet.FlakyTransport)."""
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

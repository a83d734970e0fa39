"""/metrics attacked as a hostile caller would: requests relayed by a proxy on this host, spoofed
X-Forwarded-For with and without FIELDOPS_PROXY_HOPS, and a token that is whitespace only."""
import pytest
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client


def test_a_request_relayed_by_a_proxy_on_loopback_is_not_a_loopback_caller(client):
    """PROXY_HOPS unset while nginx on 127.0.0.1 relays the world: the relayed request names its
    client in X-Forwarded-For (or Forwarded), so it is refused; a direct loopback scrape still works."""
    for headers in ({"X-Forwarded-For": "203.0.113.9"},
                    {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"},
                    {"Forwarded": "for=203.0.113.9;proto=https"},
                    {"X-Forwarded-For": "not-an-address"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json["code"] == "metrics_loopback_only"
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("hops", [1, 2])
def test_a_spoofed_loopback_forwarded_for_behind_proxies_is_refused(app, hops):
    """PROXY_HOPS set: the client writes X-Forwarded-For: 127.0.0.1 and the proxy appends its real
    address. With one hop ProxyFix already takes the real one; with two hops configured but one
    proxy in front (an operator's slip) ProxyFix takes the forged 127.0.0.1; the chain is refused."""
    proxied = Client(ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops))
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    refused = proxied.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1, 198.51.100.7"},
                          environ_base=proxy)
    assert refused.status_code == 403
    assert refused.json["code"] == "metrics_loopback_only"
    # a scraper on this host going through the local proxy: the whole chain is loopback
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1" + ", 127.0.0.1" * (hops - 1)},
                       environ_base=proxy).status_code == 200


def test_a_whitespace_token_does_not_open_metrics_to_an_empty_bearer(client, app):
    """FIELDOPS_METRICS_TOKEN=' ' (a careless operator): 'Bearer ' with nothing after it must not match."""
    app.config["METRICS_TOKEN"] = " "
    remote = {"environ_base": {"REMOTE_ADDR": "10.1.2.3"}}
    for headers in ({"Authorization": "Bearer "}, {"Authorization": "Bearer  "}, {"Authorization": "Bearer"}):
        denied = client.get("/metrics", headers=headers, **remote)
        assert denied.status_code in (401, 403), headers

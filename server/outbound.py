"""Outbound HTTP for webhooks and the SMS gateway: one POST to an address checked against the forbidden networks, with timeouts.

The URL's host is resolved once; if any address it resolves to lies in a
forbidden network nothing is sent. The connection then goes to an address
that was checked (the name is not resolved again, so a DNS answer that changes
between check and connect cannot slip a private address in), with the name
kept for the Host header and for TLS (SNI and certificate check). Redirects
are never followed: a 3xx is an answer like any other non-2xx, a failure.
An IPv6 address that carries an IPv4 one (mapped, compatible, NAT64, 6to4,
Teredo) is checked as that IPv4 address too. Besides the timeout of each
connect and read, the whole attempt ends at connect + read timeout, however
slowly a receiver drips its answer: a delivery's claim outlasts it.
"""
import http.client
import ipaddress
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


def retry_wait(attempts: int, *, base: int, most: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: full jitter under min(most, base * 2^(n-1))."""
    return random.uniform(0, min(most, base * 2 ** (attempts - 1)))


@dataclass(frozen=True)
class Answer:
    """What one attempt got: the status (None when no answer came) and, on failure, why."""

    status: int | None
    error: str | None
    body: bytes = b""  # the answer's first 4096 bytes (a gateway's message id)

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


class ForbiddenAddress(Exception):
    """The URL resolves to an address webhooks may not reach."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")


def _carried(address) -> list:
    """The address and every IPv4 address an IPv6 one carries (where the packets may end up)."""
    if address.version == 4:
        return [address]
    carried = [address.ipv4_mapped, address.sixtofour, address.teredo and address.teredo[1]]
    if address in _NAT64 or address in _COMPATIBLE:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [address, *filter(None, carried)]


def _addresses(host: str, port: int, forbidden: tuple) -> list:
    """The host's addresses, all allowed, or ForbiddenAddress naming the first forbidden one."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        for candidate in _carried(address):
            if any(candidate in network for network in forbidden if network.version == candidate.version):
                raise ForbiddenAddress(f"{host} resolves to {address}, in a forbidden network")
        if address not in addresses:
            addresses.append(address)
    return addresses


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to an address already checked; the Host header keeps the URL's name."""

    def __init__(self, host: str, port: int, address, connect_timeout: float, read_timeout: float):
        super().__init__(host, port, timeout=connect_timeout)
        self._address, self._read_timeout = address, read_timeout

    def connect(self):
        """Connect within the connect timeout, then wait at most the read timeout for each read."""
        self.sock = socket.create_connection((str(self._address), self.port), self.timeout)
        self.sock.settimeout(self._read_timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address already checked; SNI and the certificate check use the URL's name."""

    def __init__(self, host: str, port: int, address, connect_timeout: float, read_timeout: float):
        super().__init__(host, port, timeout=connect_timeout, context=ssl.create_default_context())
        self._address, self._read_timeout = address, read_timeout

    def connect(self):
        """Connect, then TLS with the URL's host name."""
        sock = socket.create_connection((str(self._address), self.port), self.timeout)
        sock.settimeout(self._read_timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _Cutoff:
    """Shuts a connection's socket when the attempt's deadline passes, so a dripped answer cannot outlast it."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float):
        """Arm the cut for `seconds` from now (at once if none are left)."""
        self.fired = False
        self._connection = connection
        self._timer = threading.Timer(max(seconds, 0.0), self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        """Shut the socket both ways: the read waiting on it returns at once."""
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        """The attempt is over."""
        self._timer.cancel()


def post(url: str, body: bytes, headers: dict, *, forbidden: tuple, connect_timeout: float,
         read_timeout: float) -> Answer:
    """POST body to url once; never raises for network trouble, the Answer says what happened."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:  # a URL stored before the schema refused it: fail this delivery, not the run
        return Answer(None, f"not a valid URL: {exc}"[:500])
    if scheme not in ("http", "https") or not host:
        return Answer(None, "not an http(s) URL")
    deadline = time.monotonic() + connect_timeout + read_timeout
    try:
        addresses = _addresses(host, port, forbidden)
    except ForbiddenAddress as exc:
        return Answer(None, f"refused: {exc}")
    except (OSError, UnicodeError) as exc:
        return Answer(None, f"cannot resolve {host}: {exc}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    connection_class = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    error = "no address"
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            return Answer(None, f"timed out: no answer within {connect_timeout + read_timeout} s")
        connection = connection_class(host, port, address, connect_timeout, read_timeout)
        cut = _Cutoff(connection, left)
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            body = response.read(4096)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
            if cut.fired:
                return Answer(None, f"timed out ({address}): no whole answer within "
                                    f"{connect_timeout + read_timeout} s")
            if isinstance(exc, TimeoutError):
                return Answer(None, f"timed out ({address})")
            if isinstance(exc, ConnectionRefusedError):
                error = f"connection refused ({address}): {exc}"
                continue  # another address of the name may answer
            return Answer(None, f"{type(exc).__name__} ({address}): {exc}"[:500])
        finally:
            cut.cancel()
            connection.close()
        if cut.fired:  # what http.client made of a cut answer (EOF ends the headers) is not an answer
            return Answer(None, f"timed out ({address}): no whole answer within {connect_timeout + read_timeout} s")
        if 300 <= status < 400:
            return Answer(status, "redirect not followed")
        return Answer(status, None if 200 <= status < 300 else f"HTTP {status}", body)
    return Answer(None, error[:500])

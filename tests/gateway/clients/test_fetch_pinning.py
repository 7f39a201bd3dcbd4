"""gateway.clients.fetch: the address guard in the connections (PinnedBackend through fetch_client): one resolution
per connection, checked, and the connection made to the checked address (DNS rebinding), on every redirect hop; the
Host header and TLS server name stay the host name. No traffic leaves loopback: public addresses are served by an
in-memory "internet"; a real loopback server stands where a rebinding attacker would aim."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading

import httpcore
import pytest

from gateway.clients.fetch import Fetched, Fetcher, PinnedBackend, fetch_client, is_public_address
from tests.gateway.clients.test_fetch import JPEG

PUBLIC_IP = "93.184.216.34"
OTHER_PUBLIC_IP = "93.184.216.35"
SECRET = b"loopback secret: never fetched"


def response(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class FakeStream(httpcore.AsyncNetworkStream):
    """One connection to a fake public server: answers the request it was sent from `routes[(address, path)]`."""

    def __init__(self, address: str, routes: dict, log: dict):
        self.address, self.routes, self.log = address, routes, log
        self.sent = b""
        self.reply: bytes | None = None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.sent += buffer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self.reply is None:
            head = self.sent.split(b"\r\n\r\n")[0].decode()
            path = head.split(" ")[1]
            self.log["requests"].append((self.address, head))
            self.reply = self.routes.get((self.address, path), response(404))
        chunk, self.reply = self.reply[:max_bytes], self.reply[max_bytes:]
        return chunk

    async def aclose(self) -> None:
        pass

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.AsyncNetworkStream:
        self.log["tls"].append((self.address, server_hostname))
        return self  # the "TLS" session is the same in-memory stream

    def get_extra_info(self, info: str):
        return None


class RecordingNetwork(httpcore.AsyncNetworkBackend):
    """The inner backend: records every (address, port) it is asked to connect to. Loopback goes to the real
    network (a real server listens there: reaching it is the failure the tests look for); public addresses are
    answered by FakeStream; `refuse` addresses fail to connect."""

    def __init__(self, routes: dict | None = None, refuse: frozenset[str] = frozenset()):
        self.routes = routes or {}
        self.refuse = refuse
        self.connects: list[tuple[str, int]] = []
        self.log: dict = {"requests": [], "tls": []}
        self.real = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.connects.append((host, port))
        if host in self.refuse:
            raise httpcore.ConnectError(f"{host} refused")
        if not is_public_address(host):
            return await self.real.connect_tcp(host, port, timeout, local_address, socket_options)
        return FakeStream(host, self.routes, self.log)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def answers(*sequence: list[str]):
    """A resolver answering `sequence[k]` on its k-th call and the last answer after that; records its calls."""
    calls: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return list(sequence[min(len(calls), len(sequence)) - 1])

    resolver.calls = calls
    return resolver


def fetch(url: str, *, network, resolver=None, allow_private=False) -> Fetched:
    async def run():
        options = {} if resolver is None else {"resolver": resolver}
        async with fetch_client(5.0, 4, allow_private, network=network, **options) as client:
            fetcher = Fetcher(client, timeout_s=5.0, max_bytes=1 << 20, concurrency=2, max_pixels=10**8, max_side=10**5)
            return await fetcher.fetch_url(url)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def loopback():
    """A real HTTP server on 127.0.0.1 serving SECRET at /x.jpg and /secret, and JPEG at /photo.jpg."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = JPEG if self.path == "/photo.jpg" else SECRET
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


# ---------------------------------------------------------------------------------------------- rebinding


def test_rebinding_resolver_cannot_steer_the_connection_to_loopback(loopback):
    """The issue's case: the first answer is public, every later one loopback. The old guard resolved to check and
    let the client resolve again to connect; now the one checked answer is the address connected to."""
    network = RecordingNetwork({(PUBLIC_IP, "/x.jpg"): response(200, JPEG)})
    resolver = answers([PUBLIC_IP], ["127.0.0.1"])
    result = fetch(f"http://rebind.example:{loopback}/x.jpg", network=network, resolver=resolver)
    assert result == Fetched(JPEG)
    assert network.connects == [(PUBLIC_IP, loopback)]
    assert resolver.calls == [("rebind.example", loopback)]  # resolved once, by the guard


def test_rebinding_on_a_redirect_hop_is_blocked_never_connected(loopback):
    """The public server redirects to the same host name; the new connection resolves again, gets loopback, and is
    refused: the loopback server is never reached."""
    routes = {(PUBLIC_IP, "/a"): response(302, headers={"Location": f"http://rebind.example:{loopback}/secret"})}
    network = RecordingNetwork(routes)
    resolver = answers([PUBLIC_IP], ["127.0.0.1"])
    result = fetch(f"http://rebind.example:{loopback}/a", network=network, resolver=resolver)
    assert result.reason == "fetch_blocked"
    assert "127.0.0.1" in result.detail
    assert network.connects == [(PUBLIC_IP, loopback)]
    assert len(resolver.calls) == 2  # every hop's connection went through the guard


def test_every_redirect_hop_connects_to_its_own_checked_address():
    routes = {
        (PUBLIC_IP, "/a"): response(301, headers={"Location": "https://cdn.example/b"}),
        (OTHER_PUBLIC_IP, "/b"): response(302, headers={"Location": "http://internal.example:8080/c"}),
    }
    network = RecordingNetwork(routes)
    names = {"shop.example": [PUBLIC_IP], "cdn.example": [OTHER_PUBLIC_IP], "internal.example": ["10.0.0.7"]}
    calls: list[tuple[str, int]] = []

    async def resolver(host, port):
        calls.append((host, port))
        return names[host]

    result = fetch("http://shop.example/a", network=network, resolver=resolver)
    assert result.reason == "fetch_blocked"
    assert calls == [("shop.example", 80), ("cdn.example", 443), ("internal.example", 8080)]
    assert network.connects == [(PUBLIC_IP, 80), (OTHER_PUBLIC_IP, 443)]


def test_host_header_and_tls_server_name_stay_the_host_name():
    network = RecordingNetwork({(PUBLIC_IP, "/x.jpg"): response(200, JPEG)})
    result = fetch("https://shop.example/x.jpg", network=network, resolver=answers([PUBLIC_IP]))
    assert result == Fetched(JPEG)
    assert network.connects == [(PUBLIC_IP, 443)]
    assert network.log["tls"] == [(PUBLIC_IP, "shop.example")]
    [(address, head)] = network.log["requests"]
    assert head.startswith("GET /x.jpg HTTP/1.1") and "\r\nHost: shop.example\r\n" in head


# ---------------------------------------------------------------------------------------------- the address rule


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.jpg",
        "http://10.1.2.3/x.jpg",
        "http://192.168.0.10/x.jpg",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x.jpg",
        "http://[::ffff:127.0.0.1]/x.jpg",
        "http://[::ffff:10.0.0.1]/x.jpg",
        "http://0.0.0.0/x.jpg",
        "http://127.1/x.jpg",
        "http://2130706433/x.jpg",
        "http://localhost:8001/x.jpg",
        "http://224.0.0.1/x.jpg",
    ],
)
def test_non_public_addresses_and_ip_literals_are_blocked_before_any_connection(url):
    network = RecordingNetwork()
    result = fetch(url, network=network)  # the system resolver: IP literals and localhost need no DNS
    assert result.reason == "fetch_blocked"
    assert network.connects == []


def test_a_name_with_any_non_public_address_is_blocked():
    network = RecordingNetwork()
    result = fetch("http://mixed.example/x.jpg", network=network, resolver=answers([PUBLIC_IP, "10.0.0.1"]))
    assert result.reason == "fetch_blocked"
    assert network.connects == []


def test_an_unresolvable_name_is_fetch_failed_not_blocked():
    async def nowhere(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = fetch("http://nowhere.example/x.jpg", network=RecordingNetwork(), resolver=nowhere)
    assert result.reason == "fetch_failed"
    assert "nowhere.example" in result.detail


def test_the_next_checked_address_is_tried_when_one_refuses():
    network = RecordingNetwork({(OTHER_PUBLIC_IP, "/x.jpg"): response(200, JPEG)}, refuse=frozenset({PUBLIC_IP}))
    result = fetch("http://two.example/x.jpg", network=network, resolver=answers([PUBLIC_IP, OTHER_PUBLIC_IP]))
    assert result == Fetched(JPEG)
    assert network.connects == [(PUBLIC_IP, 80), (OTHER_PUBLIC_IP, 80)]


def test_proxies_from_the_environment_are_ignored(monkeypatch):
    """A proxy would resolve the name itself, out of the guard's reach: the client never uses one."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://10.9.9.9:3128")
    network = RecordingNetwork({(PUBLIC_IP, "/x.jpg"): response(200, JPEG)})
    result = fetch("http://shop.example/x.jpg", network=network, resolver=answers([PUBLIC_IP]))
    assert result == Fetched(JPEG)
    assert network.connects == [(PUBLIC_IP, 80)]


# ---------------------------------------------------------------------------------------------- allow_private


def test_allow_private_fetches_the_loopback_server_normally(loopback):
    """What the integration suite relies on (IMGSEL_FETCH_ALLOW_PRIVATE=true): the real resolver and network."""
    for host in ("127.0.0.1", "localhost"):
        result = fetch(f"http://{host}:{loopback}/photo.jpg", network=None, allow_private=True)
        assert result == Fetched(JPEG)


def test_without_allow_private_the_real_stack_refuses_the_loopback_server(loopback):
    assert fetch(f"http://localhost:{loopback}/x.jpg", network=None).reason == "fetch_blocked"


def test_unix_sockets_are_never_used():
    backend = PinnedBackend(allow_private=True, inner=RecordingNetwork())
    with pytest.raises(Exception, match="unix"):
        asyncio.run(backend.connect_unix_socket("/var/run/docker.sock"))

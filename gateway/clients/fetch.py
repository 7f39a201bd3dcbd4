"""Getting the encoded bytes of each image: base64 decoding or a guarded, concurrent URL fetch.

Every failure is per image (a reason code from the contract), never an exception for the whole request.
Every image's declared width and height are read from its header (preprocessing.image_header) and checked against the
pixel and side limits before its bytes can reach the decoder.
URL guard: http(s) only; every connection, on every redirect hop, is made by `PinnedBackend`, which resolves the host
once, refuses unless every address is public (no SSRF into the cluster; IMGSEL_FETCH_ALLOW_PRIVATE lifts this) and
connects to the address it checked, so a DNS answer that changes between check and connect (rebinding) cannot steer
it; the URL, Host header and TLS server name stay the host name. Redirects are followed by hand, the size is capped
while streaming, and the whole fetch has one deadline.
"""

from __future__ import annotations

import asyncio
import binascii
import ipaddress
import re
import socket
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
import pybase64

from contract.reasons import FETCH_BLOCKED, FETCH_FAILED, TOO_LARGE, UNDECODABLE, UNSUPPORTED_FORMAT
from gateway.timing import FETCH, phase
from preprocessing.image_header import SUPPORTED_FORMATS, check_dimensions, sniff_format

MAX_REDIRECTS = 3


@dataclass
class Fetched:
    data: bytes | None
    reason: str | None = None  # contract reason code when data is None
    detail: str | None = None  # human-readable cause, logged and counted


def check_format(data: bytes) -> Fetched:
    if not data:
        return Fetched(None, UNDECODABLE, "empty file")
    kind = sniff_format(data)
    if kind is None:
        return Fetched(None, UNDECODABLE, "not a recognised image file")
    if kind not in SUPPORTED_FORMATS:
        return Fetched(None, UNSUPPORTED_FORMAT, f"{kind} is not supported")
    return Fetched(data)


def within_pixel_limits(fetched: Fetched, max_pixels: int, max_side: int) -> Fetched:
    """`fetched` unchanged when its header declares a size within both limits; else that image's refusal."""
    if fetched.data is None:
        return fetched
    refusal = check_dimensions(fetched.data, max_pixels, max_side)
    return fetched if refusal is None else Fetched(None, refusal.reason, refusal.detail)


DATA_URI_PREFIX = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


def decode_base64(text: str, max_bytes: int) -> Fetched:
    # Cheap bound before decoding: 4 base64 characters carry 3 bytes.
    if len(text) * 3 // 4 > max_bytes + 3:
        return Fetched(None, TOO_LARGE, f"over {max_bytes} bytes")
    # pybase64 (SIMD): ~50x CPython's binascii on a product's 1 MB of images (BENCHMARKS.md, issue #13).
    try:
        data = pybase64.b64decode(text, validate=True)  # the common case, without copying the text first
    except (binascii.Error, ValueError):
        # Accept what encoders commonly produce: a data: URI prefix, MIME line breaks.
        text = "".join(DATA_URI_PREFIX.sub("", text.lstrip(), count=1).split())
        try:
            data = pybase64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return Fetched(None, UNDECODABLE, "`data` is not valid base64")
    if len(data) > max_bytes:
        return Fetched(None, TOO_LARGE, f"{len(data)} bytes > {max_bytes}")
    return check_format(data)


# ---------------------------------------------------------------------------------------------- address pinning


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 reaches 10.0.0.1
    return ip.is_global and not ip.is_multicast


class BlockedAddress(Exception):
    """A connection refused by the address guard (fetch_blocked, not fetch_failed)."""


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """The addresses of `host`, in the system resolver's order, without repeats (IP literals resolve to themselves)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address guard in `connect_tcp`: one resolution per connection, checked,
    and the inner backend connects to a checked IP address (never to the name, which it would resolve again)."""

    def __init__(
        self, allow_private: bool, resolver: Resolver = resolve, inner: httpcore.AsyncNetworkBackend | None = None
    ):
        self.allow_private = allow_private
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def checked_addresses(self, host: str, port: int) -> list[str]:
        try:
            addresses = await self.resolver(host, port)
        except (socket.gaierror, UnicodeError) as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        if not self.allow_private:
            refused = [address for address in addresses if not is_public_address(address)]
            if refused:
                raise BlockedAddress(f"{host} resolves to a non-public address ({', '.join(refused)})")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.checked_addresses(host, port)
        for address in addresses[:-1]:  # in order, as a plain connect would try them
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return await self.inner.connect_tcp(addresses[-1], port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are never fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def fetch_client(
    timeout_s: float,
    max_connections: int,
    allow_private: bool,
    resolver: Resolver = resolve,
    network: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncClient:
    """The HTTP client for image URLs: every connection made by a PinnedBackend; no proxy or .netrc from the
    environment (a proxy would resolve the name itself, out of the guard's reach)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx's transport takes no network backend: its pool (one private attribute, stable since httpx 0.18; the
    # rebinding tests fail loudly if it moves) is replaced by one built with the guard. httpx keeps mapping httpcore's
    # errors and streaming the body.
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        raise TypeError("httpx.AsyncHTTPTransport no longer keeps an httpcore pool in `_pool`: see fetch_client")
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        network_backend=PinnedBackend(allow_private, resolver, network),
    )
    return httpx.AsyncClient(transport=transport, timeout=timeout_s, trust_env=False)


# ---------------------------------------------------------------------------------------------- fetching


class Fetcher:
    """Fetches with `client` (from fetch_client: the address guard lives in its connections) and checks every
    image's declared size."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        timeout_s: float,
        max_bytes: int,
        concurrency: int,
        max_pixels: int,
        max_side: int,
    ):
        self.client = client
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_side = max_side
        self._slots = asyncio.Semaphore(concurrency)

    async def fetch_url(self, url: str) -> Fetched:
        async with self._slots:
            try:
                fetched = await asyncio.wait_for(self._follow(url), self.timeout_s)
            except TimeoutError:
                return Fetched(None, FETCH_FAILED, f"no complete answer within {self.timeout_s:g} s")
            except BlockedAddress as error:
                return Fetched(None, FETCH_BLOCKED, str(error))
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                return Fetched(None, FETCH_FAILED, f"{type(error).__name__}: {error}")
            except ValueError as error:  # a malformed URL, port or header, from the request or a redirect
                return Fetched(None, FETCH_FAILED, f"malformed URL or response: {error}")
        return within_pixel_limits(fetched, self.max_pixels, self.max_side)

    async def _follow(self, url: str) -> Fetched:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return Fetched(None, FETCH_BLOCKED, "only http(s) URLs with a host are fetched")
            if parts.port == 0:  # reading .port raises ValueError (fetch_failed) for one out of range or not a number
                return Fetched(None, FETCH_FAILED, "port 0")
            async with self.client.stream("GET", url, follow_redirects=False) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code != 200:
                    return Fetched(None, FETCH_FAILED, f"HTTP {response.status_code}")
                declared = int(response.headers.get("content-length") or 0)
                if declared > self.max_bytes:
                    return Fetched(None, TOO_LARGE, f"Content-Length {declared} > {self.max_bytes}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        return Fetched(None, TOO_LARGE, f"over {self.max_bytes} bytes")
                return check_format(bytes(body))
        return Fetched(None, FETCH_FAILED, f"more than {MAX_REDIRECTS} redirects")

    async def fetch_all(self, images) -> list[Fetched]:
        """`images`: objects with `url` or `data`. Results in input order."""

        async def one(image) -> Fetched:
            if image.data is not None:
                return within_pixel_limits(decode_base64(image.data, self.max_bytes), self.max_pixels, self.max_side)
            return await self.fetch_url(image.url)

        with phase(FETCH):  # the request's time getting its images (Server-Timing, gateway.timing)
            return list(await asyncio.gather(*(one(image) for image in images)))

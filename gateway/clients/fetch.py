"""Getting the encoded bytes of each image: base64 decoding or a guarded, concurrent URL fetch.

Every failure is per image (a reason code from the contract), never an exception for the whole request.
URL guard: http(s) only, every address the host resolves to must be public (no SSRF into the cluster) unless
IMGSEL_FETCH_ALLOW_PRIVATE is set, redirects are followed by hand so each hop is checked, the size is capped while
streaming, and the whole fetch has one deadline.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from contract.reasons import FETCH_BLOCKED, FETCH_FAILED, TOO_LARGE, UNDECODABLE, UNSUPPORTED_FORMAT

MAX_REDIRECTS = 3

# Formats the decoder reads; others that are recognised get UNSUPPORTED_FORMAT, unknown bytes UNDECODABLE.
SUPPORTED_FORMATS = {"jpeg", "png", "webp", "bmp", "tiff", "jpeg2000", "pnm"}


@dataclass
class Fetched:
    data: bytes | None
    reason: str | None = None  # contract reason code when data is None
    detail: str | None = None  # human-readable cause, logged and counted


def sniff_format(data: bytes) -> str | None:
    """The container format from its magic bytes, or None when unrecognised."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head.startswith(b"\xffO\xffQ"):
        return "jpeg2000"
    if len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "pnm"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[4:8] == b"ftyp":
        return "heif/avif"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "svg"
    if head.startswith(b"%PDF"):
        return "pdf"
    return None


def check_format(data: bytes) -> Fetched:
    if not data:
        return Fetched(None, UNDECODABLE, "empty file")
    kind = sniff_format(data)
    if kind is None:
        return Fetched(None, UNDECODABLE, "not a recognised image file")
    if kind not in SUPPORTED_FORMATS:
        return Fetched(None, UNSUPPORTED_FORMAT, f"{kind} is not supported")
    return Fetched(data)


DATA_URI_PREFIX = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


def decode_base64(text: str, max_bytes: int) -> Fetched:
    # Cheap bound before decoding: 4 base64 characters carry 3 bytes.
    if len(text) * 3 // 4 > max_bytes + 3:
        return Fetched(None, TOO_LARGE, f"over {max_bytes} bytes")
    # Accept what encoders commonly produce: a data: URI prefix, MIME line breaks.
    text = "".join(DATA_URI_PREFIX.sub("", text.lstrip(), count=1).split())
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return Fetched(None, UNDECODABLE, "`data` is not valid base64")
    if len(data) > max_bytes:
        return Fetched(None, TOO_LARGE, f"{len(data)} bytes > {max_bytes}")
    return check_format(data)


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


async def host_is_allowed(host: str, port: int) -> bool:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return True  # unresolvable: let the fetch fail as fetch_failed, not fetch_blocked
    return all(is_public_address(info[4][0]) for info in infos)


class Fetcher:
    def __init__(
        self, client: httpx.AsyncClient, timeout_s: float, max_bytes: int, concurrency: int, allow_private: bool
    ):
        self.client = client
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self._slots = asyncio.Semaphore(concurrency)

    async def fetch_url(self, url: str) -> Fetched:
        async with self._slots:
            try:
                return await asyncio.wait_for(self._follow(url), self.timeout_s)
            except TimeoutError:
                return Fetched(None, FETCH_FAILED, f"no complete answer within {self.timeout_s:g} s")
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                return Fetched(None, FETCH_FAILED, f"{type(error).__name__}: {error}")
            except ValueError as error:  # a malformed URL, port or header, from the request or a redirect
                return Fetched(None, FETCH_FAILED, f"malformed URL or response: {error}")

    async def _follow(self, url: str) -> Fetched:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return Fetched(None, FETCH_BLOCKED, "only http(s) URLs with a host are fetched")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if not self.allow_private and not await host_is_allowed(parts.hostname, port):
                return Fetched(None, FETCH_BLOCKED, f"{parts.hostname} resolves to a non-public address")
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
                return decode_base64(image.data, self.max_bytes)
            return await self.fetch_url(image.url)

        return list(await asyncio.gather(*(one(image) for image in images)))

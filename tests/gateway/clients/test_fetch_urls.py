"""gateway.clients.fetch: the URL fetcher over httpx.MockTransport (no network): limits, redirects, deadlines,
concurrency, order, the declared-size check. The address guard lives in the connections: test_fetch_pinning.py."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gateway.clients.fetch import MAX_REDIRECTS, Fetched, Fetcher
from gateway.schemas import ImageIn
from loadtest.bombs import bombs, png_bomb, small
from tests.gateway.clients.test_fetch import GIF, JPEG, PHOTO, PUBLIC, SVG, b64
from tests.helpers import encode, product_photo

PHOTO_SIDE = PHOTO.width
LIMITS = dict(max_pixels=50_000_000, max_side=16_384)


async def _with_fetcher(handler, work, *, timeout_s=2.0, max_bytes=len(JPEG) * 4, concurrency=4):
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        fetcher = Fetcher(client, timeout_s=timeout_s, max_bytes=max_bytes, concurrency=concurrency, **LIMITS)
        return await work(fetcher)


def fetch(handler, url: str, **options) -> Fetched:
    return asyncio.run(_with_fetcher(handler, lambda fetcher: fetcher.fetch_url(url), **options))


def never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the guard should have refused {request.url} before any request was sent")


def serve(routes: dict[str, httpx.Response], calls: list[str] | None = None):
    """A handler answering by path; records the URLs it was asked for."""

    def handler(request: httpx.Request) -> httpx.Response:
        if calls is not None:
            calls.append(str(request.url))
        if request.url.path not in routes:
            return httpx.Response(404)
        return routes[request.url.path]

    return handler


def test_fetch_ok():
    calls: list[str] = []
    result = fetch(serve({"/x.jpg": httpx.Response(200, content=JPEG)}, calls), f"{PUBLIC}/x.jpg")
    assert result == Fetched(JPEG)
    assert calls == [f"{PUBLIC}/x.jpg"]


def test_fetch_checks_the_format_of_the_body():
    result = fetch(serve({"/x.svg": httpx.Response(200, content=SVG)}), f"{PUBLIC}/x.svg")
    assert result.data is None
    assert result.reason == "unsupported_format"


@pytest.mark.parametrize("status", [404, 500, 204])
def test_fetch_non_200_is_fetch_failed(status):
    result = fetch(lambda request: httpx.Response(status, content=JPEG if status != 204 else b""), f"{PUBLIC}/x.jpg")
    assert result.data is None
    assert result.reason == "fetch_failed"
    assert str(status) in result.detail


def test_fetch_transport_error_is_fetch_failed():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    result = fetch(refuse, f"{PUBLIC}/x.jpg")
    assert result.data is None
    assert result.reason == "fetch_failed"


def test_fetch_declared_content_length_over_limit_is_too_large_without_reading_the_body():
    read = []

    async def body():
        read.append(1)
        yield JPEG

    def handler(request):
        return httpx.Response(200, headers={"content-length": "1000001"}, content=body())

    result = fetch(handler, f"{PUBLIC}/x.jpg", max_bytes=1_000_000)
    assert result.data is None
    assert result.reason == "too_large"
    assert read == []


def test_fetch_streamed_body_over_limit_is_too_large_and_stops_reading():
    chunks_sent = []

    async def long_body():  # no Content-Length: only the streaming cap can stop it early
        yield JPEG[:1000]
        for _ in range(500):
            chunks_sent.append(1)
            await asyncio.sleep(0)
            yield bytes(1000)

    def handler(request):
        response = httpx.Response(200, content=long_body())
        assert "content-length" not in response.headers
        return response

    result = fetch(handler, f"{PUBLIC}/x.jpg", max_bytes=10_000, timeout_s=5.0)
    assert result.data is None
    assert result.reason == "too_large"
    assert len(chunks_sent) <= 12


def test_fetch_body_exactly_at_limit_is_accepted():
    result = fetch(lambda request: httpx.Response(200, content=JPEG), f"{PUBLIC}/x.jpg", max_bytes=len(JPEG))
    assert result.data == JPEG


def test_fetch_follows_redirect_chain_including_relative_locations():
    calls: list[str] = []
    routes = {
        "/a": httpx.Response(301, headers={"location": "http://93.184.216.35/b"}),
        "/b": httpx.Response(302, headers={"location": "/images/c"}),  # relative to the new host
        "/images/c": httpx.Response(307, headers={"location": "d.jpg"}),  # relative to the path
        "/images/d.jpg": httpx.Response(200, content=JPEG),
    }
    result = fetch(serve(routes, calls), f"{PUBLIC}/a")
    assert result == Fetched(JPEG)
    assert calls == [
        f"{PUBLIC}/a",
        "http://93.184.216.35/b",
        "http://93.184.216.35/images/c",
        "http://93.184.216.35/images/d.jpg",
    ]


def chain(length: int) -> dict[str, httpx.Response]:
    """/r0 -> /r1 -> ... -> /r<length> which serves the JPEG."""
    routes = {f"/r{k}": httpx.Response(302, headers={"location": f"/r{k + 1}"}) for k in range(length)}
    routes[f"/r{length}"] = httpx.Response(200, content=JPEG)
    return routes


def test_fetch_follows_up_to_max_redirects():
    assert fetch(serve(chain(MAX_REDIRECTS)), f"{PUBLIC}/r0").data == JPEG


def test_fetch_more_than_max_redirects_is_fetch_failed():
    calls: list[str] = []
    result = fetch(serve(chain(MAX_REDIRECTS + 1), calls), f"{PUBLIC}/r0")
    assert result.data is None
    assert result.reason == "fetch_failed"
    assert "redirect" in result.detail
    assert len(calls) == MAX_REDIRECTS + 1


def test_fetch_redirect_loop_ends():
    calls: list[str] = []
    result = fetch(serve({"/loop": httpx.Response(302, headers={"location": "/loop"})}, calls), f"{PUBLIC}/loop")
    assert result.reason == "fetch_failed"
    assert len(calls) == MAX_REDIRECTS + 1


def test_fetch_slow_server_hits_the_deadline():
    async def slow(request):
        await asyncio.sleep(3)
        return httpx.Response(200, content=JPEG)

    started = time.perf_counter()
    result = fetch(slow, f"{PUBLIC}/x.jpg", timeout_s=0.2)
    elapsed = time.perf_counter() - started
    assert result.data is None
    assert result.reason == "fetch_failed"
    assert elapsed < 1.0


def test_fetch_deadline_covers_a_slow_body_too():
    async def trickle():
        for byte in JPEG:
            yield bytes([byte])
            await asyncio.sleep(0.05)

    started = time.perf_counter()
    result = fetch(lambda request: httpx.Response(200, content=trickle()), f"{PUBLIC}/x.jpg", timeout_s=0.3)
    assert result.reason == "fetch_failed"
    assert time.perf_counter() - started < 1.0


def test_fetch_deadline_covers_the_whole_redirect_chain():
    async def slow_hop(request):
        await asyncio.sleep(0.15)
        hop = int(request.url.path[2:])
        if hop < MAX_REDIRECTS:
            return httpx.Response(302, headers={"location": f"/r{hop + 1}"})
        return httpx.Response(200, content=JPEG)

    # Each hop is well within the deadline; the chain as a whole is not.
    result = fetch(slow_hop, f"{PUBLIC}/r0", timeout_s=0.4)
    assert result.reason == "fetch_failed"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://93.184.216.34/x.jpg", "http:///x.jpg"])
def test_fetch_non_http_or_hostless_url_is_blocked(url):
    result = fetch(never_called, url)
    assert result.reason == "fetch_blocked"


def test_fetch_redirect_to_a_non_http_url_is_blocked():
    calls: list[str] = []
    handler = serve({"/x.jpg": httpx.Response(302, headers={"location": "file:///etc/passwd"})}, calls)
    result = fetch(handler, f"{PUBLIC}/x.jpg")
    assert result.reason == "fetch_blocked"
    assert calls == [f"{PUBLIC}/x.jpg"]


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34:99999/x.jpg",
        "http://93.184.216.34:abc/x.jpg",
        "http://[::1/x.jpg",
        "http://93.184.216.34\t/x.jpg",
    ],
    ids=["port-out-of-range", "port-not-a-number", "unclosed-ipv6", "tab"],
)
def test_fetch_malformed_url_is_a_per_image_failure(url):
    result = fetch(never_called, url)
    assert result.data is None
    assert result.reason in ("fetch_failed", "fetch_blocked")


def test_fetch_redirect_to_malformed_location_is_a_per_image_failure():
    handler = serve({"/x.jpg": httpx.Response(302, headers={"location": "http://93.184.216.34:99999/y.jpg"})})
    result = fetch(handler, f"{PUBLIC}/x.jpg")
    assert result.data is None
    assert result.reason in ("fetch_failed", "fetch_blocked")


def test_fetch_concurrency_is_bounded():
    active = 0
    peak = 0

    async def handler(request):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        return httpx.Response(200, content=JPEG)

    async def work(fetcher):
        return await asyncio.gather(*(fetcher.fetch_url(f"{PUBLIC}/{k}.jpg") for k in range(8)))

    results = asyncio.run(_with_fetcher(handler, work, concurrency=2))
    assert all(r.data == JPEG for r in results)
    assert peak == 2


def test_fetch_all_keeps_input_order_mixing_data_and_urls():
    bodies = {f"/{k}.img": encode(product_photo(side=48, seed=k), "PNG") for k in range(3)}

    async def handler(request):
        if request.url.path not in bodies:
            return httpx.Response(404)
        # Later URLs answer sooner, so completion order is the reverse of input order.
        await asyncio.sleep(0.03 * (3 - int(request.url.path[1])))
        return httpx.Response(200, content=bodies[request.url.path])

    images = [
        ImageIn(id="u0", url=f"{PUBLIC}/0.img"),
        ImageIn(id="d0", data=b64(JPEG)),
        ImageIn(id="u1", url=f"{PUBLIC}/1.img"),
        ImageIn(id="bad", data="%%% not base64"),
        ImageIn(id="u2", url=f"{PUBLIC}/2.img"),
        ImageIn(id="gif", data=b64(GIF)),
        ImageIn(id="u404", url=f"{PUBLIC}/missing.img"),
    ]

    results = asyncio.run(_with_fetcher(handler, lambda fetcher: fetcher.fetch_all(images)))
    assert [r.data for r in results] == [bodies["/0.img"], JPEG, bodies["/1.img"], None, bodies["/2.img"], None, None]
    assert [r.reason for r in results] == [None, None, None, "undecodable", None, "unsupported_format", "fetch_failed"]


def test_fetch_all_fetches_concurrently():
    async def slow(request):
        await asyncio.sleep(0.2)
        return httpx.Response(200, content=JPEG)

    images = [ImageIn(id=str(k), url=f"{PUBLIC}/{k}.jpg") for k in range(5)]
    started = time.perf_counter()
    results = asyncio.run(_with_fetcher(slow, lambda fetcher: fetcher.fetch_all(images), concurrency=8))
    assert [r.data for r in results] == [JPEG] * 5
    assert time.perf_counter() - started < 0.7  # one after another would take 1 s


def test_fetch_all_applies_the_size_limit_to_data_images():
    tiny = small("PNG", side=2)
    assert len(tiny) < 200 < len(JPEG)
    images = [ImageIn(id="big", data=b64(JPEG)), ImageIn(id="small", data=b64(tiny))]
    results = asyncio.run(_with_fetcher(never_called, lambda fetcher: fetcher.fetch_all(images), max_bytes=200))
    assert [r.reason for r in results] == ["too_large", None]


# ---------------------------------------------------------------------------------------------- declared size


def test_fetch_url_bomb_is_too_large_before_anyone_decodes_it():
    bomb = png_bomb(20000, 20000)
    result = fetch(lambda request: httpx.Response(200, content=bomb), f"{PUBLIC}/bomb.png", max_bytes=len(bomb))
    assert result.data is None
    assert result.reason == "too_large"
    assert "20000x20000" in result.detail and "16384" in result.detail


def test_fetch_url_with_an_unreadable_header_is_undecodable():
    truncated_png = encode(product_photo(side=48), "PNG")[:20]  # signature and half an IHDR
    result = fetch(lambda request: httpx.Response(200, content=truncated_png), f"{PUBLIC}/x.png")
    assert result.reason == "undecodable"


def test_fetch_all_checks_the_declared_size_of_every_image_on_its_own():
    """Bombs of every format, as base64 and as URLs, are refused one by one; the good images beside them pass."""
    files = bombs(9000)  # 81 megapixels each, over the 50 megapixel default
    served = {f"/{name}": body for name, body in files.items()}

    def handler(request):
        return httpx.Response(200, content=served.get(request.url.path, JPEG))

    images = [ImageIn(id="good-data", data=b64(JPEG)), ImageIn(id="good-url", url=f"{PUBLIC}/good.jpg")]
    images += [ImageIn(id=f"data-{name}", data=b64(body)) for name, body in files.items()]
    images += [ImageIn(id=f"url-{name}", url=f"{PUBLIC}/{name}") for name in files]
    results = asyncio.run(_with_fetcher(handler, lambda fetcher: fetcher.fetch_all(images), max_bytes=1 << 20))
    by_id = {image.id: result for image, result in zip(images, results)}
    assert by_id.pop("good-data") == Fetched(JPEG)
    assert by_id.pop("good-url") == Fetched(JPEG)
    assert {image_id: result.reason for image_id, result in by_id.items()} == {k: "too_large" for k in by_id}
    assert all("9000x9000" in result.detail for result in by_id.values())


def test_fetch_limits_come_from_the_fetcher():
    async def work(fetcher):
        return await fetcher.fetch_all([ImageIn(id="a", data=b64(JPEG))])

    async def tight():
        async with httpx.AsyncClient(transport=httpx.MockTransport(never_called)) as client:
            side = PHOTO_SIDE - 1
            fetcher = Fetcher(client, timeout_s=1, max_bytes=1 << 20, concurrency=1, max_pixels=10**9, max_side=side)
            return await work(fetcher)

    [result] = asyncio.run(tight())
    assert result.reason == "too_large"
    assert f"limit of {PHOTO_SIDE - 1}" in result.detail

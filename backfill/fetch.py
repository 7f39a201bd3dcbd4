"""The gateway's fetcher, plus files: a manifest's image may be a path or an object-store URI, read through pyarrow's
filesystems under the same limits as a download (size, format, header-declared pixels) and the same concurrency."""

from __future__ import annotations

import asyncio

from backfill.manifest import read_bytes
from contract.reasons import FETCH_FAILED, TOO_LARGE
from gateway.clients.fetch import Fetched, Fetcher, check_format, within_pixel_limits

WEB_SCHEMES = ("http://", "https://")


class CatalogFetcher(Fetcher):
    async def fetch_url(self, url: str) -> Fetched:
        if url.lower().startswith(WEB_SCHEMES):
            return await super().fetch_url(url)
        async with self._slots:
            try:
                data = await asyncio.to_thread(read_bytes, url, self.max_bytes + 1)
            except (OSError, ValueError) as error:  # missing file, unknown filesystem, refused access
                return Fetched(None, FETCH_FAILED, f"{type(error).__name__}: {error}")
        if len(data) > self.max_bytes:
            return Fetched(None, TOO_LARGE, f"over {self.max_bytes} bytes")
        return within_pixel_limits(check_format(data), self.max_pixels, self.max_side)

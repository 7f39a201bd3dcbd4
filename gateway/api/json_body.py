"""Request bodies parsed with orjson: FastAPI parses JSON bodies with the standard library (`Request.json`), ~1 ms of
the gateway's own time for an 8-image product of base64 images (1.1 MB), orjson ~0.4 ms (BENCHMARKS.md, issue #13).

Every router uses `JsonRoute`. orjson's JSONDecodeError is the standard library's, so a malformed body still gets
FastAPI's 422 `json_invalid`; orjson is stricter in two corners, each still a 422: NaN/Infinity literals and lone
UTF-16 surrogates are refused as malformed JSON instead of reaching validation.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


class OrjsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class JsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_with_orjson(request: Request) -> Response:
            return await handler(OrjsonRequest(request.scope, request.receive))

        return parse_with_orjson

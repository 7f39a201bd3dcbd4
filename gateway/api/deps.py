"""The one place that reads the application's state: each dependency once, as an `Annotated` alias for routes.

`async def` because they only read attributes: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
per dependency per request (~0.1-0.2 ms each on 2 cores, measured; issue #13)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.clients.database import Database
from gateway.clients.triton import TritonAnalyzer
from gateway.services.curation import CurationService
from gateway.services.placeholders import PlaceholderLibraryService
from gateway.services.search import SearchService
from gateway.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_triton(request: Request) -> TritonAnalyzer:
    return request.app.state.triton


async def get_database(request: Request) -> Database:
    return request.app.state.database


async def get_curation(request: Request) -> CurationService:
    return request.app.state.curation


async def get_placeholders(request: Request) -> PlaceholderLibraryService:
    return request.app.state.placeholders


async def get_search(request: Request) -> SearchService:
    return request.app.state.search


SettingsDep = Annotated[Settings, Depends(get_settings)]
TritonDep = Annotated[TritonAnalyzer, Depends(get_triton)]
DatabaseDep = Annotated[Database, Depends(get_database)]
CurationDep = Annotated[CurationService, Depends(get_curation)]
PlaceholdersDep = Annotated[PlaceholderLibraryService, Depends(get_placeholders)]
SearchDep = Annotated[SearchService, Depends(get_search)]

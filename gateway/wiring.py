"""The gateway's clients, stores and services, built from the settings: by the app's lifespan for the HTTP service,
and by each catalog backfill worker (backfill/worker.py), so both run the same services over the same clients."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from contract.categories import Catalog
from contract.categories_file import load_catalog
from gateway.clients.database import Database
from gateway.clients.fetch import Fetcher, fetch_client
from gateway.clients.triton import TritonAnalyzer
from gateway.decisions.placeholders import LibraryRule, VoteRule
from gateway.services.analysis import AnalysisStep
from gateway.services.curation import CurationService
from gateway.services.placeholders import ExemplarVoting, PlaceholderLibraryService
from gateway.services.search import SearchService
from gateway.settings import Settings
from gateway.stores.exemplars import ExemplarStore
from gateway.stores.placeholders import PlaceholderLibrary
from gateway.stores.search_index import SearchIndex


@dataclass(frozen=True)
class Wiring:
    catalog: Catalog
    triton: TritonAnalyzer
    database: Database
    placeholders: PlaceholderLibraryService
    curation: CurationService
    search: SearchService


def vote_rule(settings: Settings) -> VoteRule:
    return VoteRule(
        exemplars=settings.placeholder_vote_exemplars,
        min_votes=settings.placeholder_vote_min_votes,
        min_similarity=settings.placeholder_vote_similarity,
        head_min=settings.placeholder_vote_head_min,
        min_similarity_alone=settings.placeholder_vote_similarity_alone,
        min_exemplars=settings.placeholder_vote_min_exemplars,
    )


def library_rule(settings: Settings) -> LibraryRule:
    return LibraryRule(
        max_distance=settings.placeholder_max_distance,
        alone_distance=settings.placeholder_alone_distance,
        head_min=settings.placeholder_vote_head_min,
    )


async def wire(
    settings: Settings, cleanup: AsyncExitStack, fetcher_type: type[Fetcher] = Fetcher, feed_after_answer: bool = True
) -> Wiring:
    """Everything the services need; `cleanup` closes it (Triton last). `fetcher_type`: the backfill's fetcher also
    reads files; `feed_after_answer`: the vote's exemplar writes off the request's path (the HTTP service), else
    awaited, their failures the product's (the backfill: ExemplarVoting.remember)."""
    catalog = load_catalog(settings.categories_file or None)
    triton = TritonAnalyzer(settings.triton_grpc_url, settings.triton_timeout_s, settings.triton_breaker_cooldown_s)
    cleanup.push_async_callback(triton.close)  # callbacks run last-in first-out: Triton closes last
    http = await cleanup.enter_async_context(
        fetch_client(settings.fetch_timeout_s, settings.fetch_concurrency * 2, settings.fetch_allow_private)
    )
    fetcher = fetcher_type(
        http,
        settings.fetch_timeout_s,
        settings.fetch_max_bytes,
        settings.fetch_concurrency,
        settings.max_pixels,
        settings.max_side,
    )
    database = Database(
        settings.database_url.get_secret_value(),
        settings.database_pool_size,
        settings.database_timeout_s,
        settings.database_migrate,
        settings.database_breaker_cooldown_s,
    )
    cleanup.push_async_callback(database.close)
    await database.prepare()  # schema at head now, or logged and retried by the first call
    library = PlaceholderLibrary(database)
    index = SearchIndex(database, settings.search_exact_max, settings.search_ef_search)
    exemplars = ExemplarStore(database, settings.exemplar_capacity, settings.exemplar_per_product)

    analysis = AnalysisStep(fetcher, triton, catalog.category_head)
    placeholder_library = PlaceholderLibraryService(library, analysis, library_rule(settings))
    voting = ExemplarVoting(
        exemplars, vote_rule(settings), settings.exemplar_max_placeholder_score, background=feed_after_answer
    )
    curation = CurationService(catalog, analysis, placeholder_library, voting)
    cleanup.push_async_callback(curation.drain)  # before the database closes (callbacks run last-in first-out)
    search = SearchService(catalog.category_head, analysis, index)
    return Wiring(catalog, triton, database, placeholder_library, curation, search)

"""Wire the configured parts into a pipeline: the one place configuration picks implementations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from answer_engine import __version__
from answer_engine.backends import create_backend
from answer_engine.backends.base import Backend
from answer_engine.cache import RedisCache, create_cache
from answer_engine.config import ConfigError, Settings
from answer_engine.documents import DocumentStore, LocalDocuments, PgDocuments
from answer_engine.embeddings import ONNX_FILE, Embedder
from answer_engine.ingest import Ingestor
from answer_engine.models import models_dir
from answer_engine.pgindex import PostgresIngestor
from answer_engine.pipeline import Pipeline
from answer_engine.stages.read import PageReader
from answer_engine.stages.search import CachedSearch
from answer_engine.stages.select import Selector
from answer_engine.text import ANALYZER_VERSION, terms
from search_adapters.base import SearchProvider
from search_adapters.local import LocalIndex
from search_adapters.postgres import PostgresIndex

WEB_PROVIDERS = ("searxng", "brave", "tavily", "google", "ddgs")


def build_embedder(settings: Settings) -> Embedder | None:
    if settings.retrieval.dense_weight <= 0:
        return None
    return Embedder(
        threads=settings.generation.n_threads or None,
        onnx_path=models_dir(settings.data_dir) / ONNX_FILE,
        runtime=settings.retrieval.embed_runtime,
    )


def build_ingestor(settings: Settings, embedder: Embedder | None = None) -> Ingestor:
    return Ingestor(
        settings.data_dir,
        include_default_corpus=settings.search.include_default_corpus,
        embedder=embedder,
        passage_words=settings.retrieval.chunk_words,
    )


def build_index(ingestor: Ingestor) -> LocalIndex:
    """The local search provider over what ``ingestor`` builds (re-indexed when sources change)."""
    return LocalIndex(ingestor.path, analyzer=terms, refresh=ingestor.ensure)


def build_pg_index(settings: Settings) -> PostgresIndex:
    """The shared index in PostgreSQL (written by ``answer-engine index --to postgres``)."""
    s = settings.search
    return PostgresIndex(
        s.postgres_url,
        analyzer=terms,
        analyzer_version=ANALYZER_VERSION,
        schema=s.postgres_schema,
        pool_size=s.postgres_pool,
        timeout_s=s.postgres_timeout_s,
    )


def build_pg_writer(settings: Settings, embedder: Embedder | None) -> PostgresIngestor:
    s = settings.search
    return PostgresIngestor(
        s.postgres_url,
        schema=s.postgres_schema,
        embedder=embedder,
        passage_words=settings.retrieval.chunk_words,
    )


@dataclass
class ProviderStatus:
    name: str
    enabled: bool
    why: str


def _credentials(settings: Settings) -> dict[str, str]:
    """Keys and URLs as configured (config.py also read them from their usual environment names)."""
    s = settings.search
    return {
        "postgres_url": s.postgres_url,
        "searxng_url": s.searxng_url,
        "brave_api_key": s.brave_api_key,
        "tavily_api_key": s.tavily_api_key,
        "google_api_key": s.google_api_key,
        "google_cx": s.google_cx,
    }


def provider_statuses(settings: Settings) -> list[ProviderStatus]:
    """Every provider we know, whether this configuration enables it, and why (not)."""
    chosen = settings.search.providers
    creds = _credentials(settings)
    out = []
    for name in ("local", "postgres", *WEB_PROVIDERS):
        missing = {
            "local": None,
            "postgres": None if creds["postgres_url"] else "no URL (search.postgres_url or DATABASE_URL)",
            "searxng": None if creds["searxng_url"] else "no URL (search.searxng_url or SEARXNG_URL)",
            "brave": None if creds["brave_api_key"] else "no API key (search.brave_api_key or BRAVE_API_KEY)",
            "tavily": None
            if creds["tavily_api_key"]
            else "no API key (search.tavily_api_key or TAVILY_API_KEY)",
            "google": None
            if creds["google_api_key"] and creds["google_cx"]
            else "needs an API key and an engine id (GOOGLE_API_KEY and GOOGLE_CSE_ID)",
            "ddgs": None,
        }[name]
        if name not in chosen:
            out.append(
                ProviderStatus(
                    name, False, "not in search.providers" + (f"; also {missing}" if missing else "")
                )
            )
        elif missing:
            out.append(ProviderStatus(name, False, missing))
        else:
            why = {
                "local": "the local index",
                "postgres": f"the shared index in PostgreSQL (schema {settings.search.postgres_schema})",
                "ddgs": "no key needed (DuckDuckGo through ddgs)",
            }.get(name, "configured")
            out.append(ProviderStatus(name, True, why))
    return out


def build_search(
    settings: Settings, index: LocalIndex | PostgresIndex | None, client: Any
) -> tuple[SearchProvider, list[str]]:
    """The configured providers as one (fused when several), and the names enabled."""
    from search_adapters.brave import Brave
    from search_adapters.duckduckgo import DuckDuckGo
    from search_adapters.fusion import MultiSearch
    from search_adapters.google import GoogleCSE
    from search_adapters.searxng import SearXNG
    from search_adapters.tavily import Tavily

    s = settings.search
    creds = _credentials(settings)
    timeout = s.deadline_s
    statuses = provider_statuses(settings)
    enabled = [p.name for p in statuses if p.enabled]
    if not enabled:
        reasons = "; ".join(f"{p.name}: {p.why}" for p in statuses if p.name in s.providers)
        raise ConfigError(f"no search provider is enabled ({reasons})")
    providers: list[SearchProvider] = []
    for name in enabled:
        if name in ("local", "postgres"):
            assert index is not None and index.name == name
            providers.append(index)
        elif name == "searxng":
            providers.append(SearXNG(client, creds["searxng_url"], timeout_s=timeout))
        elif name == "brave":
            providers.append(
                Brave(client, creds["brave_api_key"], base_url=s.brave_base_url, timeout_s=timeout)
            )
        elif name == "tavily":
            providers.append(
                Tavily(client, creds["tavily_api_key"], base_url=s.tavily_base_url, timeout_s=timeout)
            )
        elif name == "google":
            providers.append(
                GoogleCSE(
                    client,
                    creds["google_api_key"],
                    creds["google_cx"],
                    base_url=s.google_base_url,
                    timeout_s=timeout,
                )
            )
        elif name == "ddgs":
            providers.append(DuckDuckGo(timeout_s=timeout, region=s.ddgs_region))
    if providers == [index]:
        return index, enabled  # one index (the embedded default): no fusion layer needed
    return MultiSearch(
        providers,
        deadline_s=s.deadline_s,
        breaker_failures=s.breaker_failures,
        breaker_cooldown_s=s.breaker_cooldown_s,
    ), enabled


def build_pipeline(
    settings: Settings, *, backend: Backend | None = None, embedder: Embedder | None = None
) -> Pipeline:
    """The configured pipeline. ``backend``/``embedder``: use these instead of building them."""
    import httpx

    from answer_engine.urlguard import UrlGuard
    from answer_engine.webfetch import WebFetcher

    embedder = embedder if embedder is not None else build_embedder(settings)
    uses_local = "local" in settings.search.providers
    uses_pg = "postgres" in settings.search.providers
    if uses_local and uses_pg:
        # one passage store per pipeline (passage ids are the store's own); put the shipped corpus
        # into PostgreSQL too: `answer-engine index --to postgres`
        raise ConfigError("search.providers: use either local or postgres, not both")
    index: LocalIndex | PostgresIndex | None = None
    documents: DocumentStore | None = None
    if uses_local:
        ingestor = build_ingestor(settings, embedder)
        index = build_index(ingestor)
        documents = LocalDocuments(ingestor)
    elif uses_pg and settings.search.postgres_url:
        index = build_pg_index(settings)
        documents = PgDocuments(build_pg_writer(settings, embedder))
    web = any(p in settings.search.providers for p in WEB_PROVIDERS)
    closers: list[Any] = []
    api_client = None
    if web:
        # Providers' own APIs are operator-configured endpoints (a SearXNG on the LAN is normal): their
        # client is not behind the SSRF guard, which is for page URLs that strangers choose.
        api_client = httpx.AsyncClient(
            timeout=settings.search.deadline_s,
            trust_env=False,
            limits=httpx.Limits(max_connections=32),
            headers={"User-Agent": f"answer-engine/{__version__}"},
        )
        closers.append(api_client.aclose)
    provider, enabled = build_search(settings, index, api_client)
    fetcher = None
    if web:
        f = settings.fetch
        fetcher = WebFetcher(
            guard=UrlGuard(allow_networks=f.allow_networks),
            timeout_s=f.timeout_s,
            connect_timeout_s=f.connect_timeout_s,
            max_bytes=f.max_bytes,
            max_connections=f.max_connections,
            per_host=f.per_host,
        )
        closers.append(fetcher.aclose)
    if isinstance(index, PostgresIndex):
        pg = index

        async def close_pg() -> None:
            pg.close()

        closers.append(close_pg)
    cache = create_cache(settings.redis_url, max_items=settings.fetch.cache_pages)
    if isinstance(cache, RedisCache):
        closers.append(cache.aclose)
    search = CachedSearch(provider, cache, ttl_s=settings.search.cache_ttl_s, names=enabled)
    reader = PageReader(
        settings.fetch, chunk_words=settings.retrieval.chunk_words, cache=cache, store=index, fetcher=fetcher
    )
    selector = Selector(settings.retrieval, embedder=embedder, store=index)
    return Pipeline(
        settings,
        search=search,
        reader=reader,
        selector=selector,
        backend=backend or create_backend(settings),
        closers=closers,
        documents=documents,
    )

"""create_app(): the ASGI application serving ingestion, the API and the dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from clientela import __version__
from clientela.api import errors
from clientela.api.cors import IngestionCORS
from clientela.api.deps import KeyCache
from clientela.api.responses import FastJSONResponse
from clientela.api.routes import (
    analytics,
    automation,
    commerce,
    customers,
    health,
    integrations,
    messaging,
    segments,
    tracking,
)
from clientela.config import Settings, get_settings
from clientela.db import WalCheckpointer, build_engine
from clientela.ingest import EventSink
from clientela.ingest.remote import RemoteWriter
from clientela.ingest.writer import IngestWriter
from clientela.web import routes as web


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The application for `settings` (default: the environment's), on `engine` if given."""
    settings = settings or get_settings()
    engine = engine or build_engine(settings)
    writer = _event_sink(settings, engine)
    # The process that writes events also copies the WAL back (see `ingest.process`).
    checkpointer = WalCheckpointer(engine) if isinstance(writer, IngestWriter) else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        writer.start()
        if checkpointer:
            checkpointer.start()
        try:
            yield
        finally:
            writer.stop()
            if checkpointer:
                checkpointer.stop()

    app = FastAPI(title="Clientela", version=__version__, lifespan=lifespan,
                  default_response_class=FastJSONResponse)
    app.state.settings = settings
    app.state.engine = engine
    app.state.ingest_writer = writer
    app.state.key_cache = KeyCache(engine)
    errors.install(app)
    for router in (health.router, tracking.router, customers.router, commerce.router,
                   integrations.router, segments.router, analytics.router, messaging.router,
                   automation.router):
        app.include_router(router)
    web.install(app, settings)
    app.add_middleware(IngestionCORS)
    return app


def _event_sink(settings: Settings, engine: Engine) -> EventSink:
    """The writer process's socket when `serve` runs one, else a writer thread of our own."""
    if settings.ingest_socket is not None:
        return RemoteWriter(settings.ingest_socket)
    return IngestWriter(engine=engine, default_region=settings.default_country,
                          exchange=settings.exchange,
                        queue_limit=settings.ingest_queue_limit,
                        group_events=settings.ingest_group_events)

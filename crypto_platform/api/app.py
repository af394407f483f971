"""The FastAPI app: its clients opened once per app (lifespan), errors as JSON, the dashboard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from crypto_platform.api import libraries
from crypto_platform.api.alert_log import AlertLog
from crypto_platform.api.backends import Backends
from crypto_platform.api.errors import RETRY_AFTER_S, BackendUnavailable, TooManyStreams
from crypto_platform.api.metrics import RequestMetrics
from crypto_platform.api.observation import Observer
from crypto_platform.api.pipeline import PipelineMeter
from crypto_platform.api.push import Broadcaster
from crypto_platform.api.reader import CassandraReader
from crypto_platform.api.routes import router
from crypto_platform.settings import Settings

log = logging.getLogger(__name__)

DASHBOARD = Path(__file__).parent / "dashboard"


def create_app(settings: Settings) -> FastAPI:
    """The app for `settings`; nothing connects until it starts (lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = app.state
        await state.reader.start()
        try:
            yield
        finally:
            await state.broadcaster.stop()
            state.reader.close()
            state.backends.close()
            state.alert_log.close()

    app = FastAPI(
        title="crypto_platform API",
        summary="Latest prices and moving means from Cassandra, live push, health and metrics.",
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.reader = CassandraReader(settings)
    app.state.backends = Backends(settings)
    app.state.alert_log = AlertLog(settings)
    app.state.observer = Observer(
        app.state.reader, app.state.backends, ttl_s=settings.api_backend_cache_s
    )
    app.state.meter = PipelineMeter(settings)
    app.state.broadcaster = Broadcaster(
        app.state.reader,
        app.state.observer,
        app.state.meter,
        max_subscribers=settings.api_max_subscribers,
    )
    app.state.requests = RequestMetrics()

    app.include_router(router)
    app.include_router(libraries.router)
    _dashboard(app)
    _error_handlers(app)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.api_cors_origins, allow_methods=["GET"]
        )
    # Outermost, so every answer is counted, errors and CORS refusals included.
    app.add_middleware(_Measured, metrics=app.state.requests)
    return app


class _Measured:
    """Adapter so `add_middleware` can install the pure-ASGI request metrics."""

    def __init__(self, app: object, metrics: RequestMetrics) -> None:
        self._call = metrics.middleware(app)  # type: ignore[arg-type]

    async def __call__(self, scope: object, receive: object, send: object) -> None:
        await self._call(scope, receive, send)  # type: ignore[arg-type]


def _dashboard(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(DASHBOARD / "index.html")

    app.mount("/static", StaticFiles(directory=DASHBOARD), name="static")


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BackendUnavailable)
    async def unavailable(_request: Request, error: BackendUnavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": str(error), "backend": error.backend},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(TooManyStreams)
    async def saturated(_request: Request, error: TooManyStreams) -> JSONResponse:
        return JSONResponse(
            {"detail": str(error)},
            status_code=503,
            headers={"Retry-After": str(error.retry_after)},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        # The trace goes to the log, never to the client.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

"""Serve the app with uvicorn: `crypto-platform api`, the tests and the benchmark use this."""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI

from crypto_platform.api.app import create_app
from crypto_platform.settings import Settings

GRACE_S = 5


class ApiServer(uvicorn.Server):
    """uvicorn, plus: a stop signal also ends the open push streams, so shutdown is quick."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.app.state.broadcaster.close()
        super().handle_exit(sig, frame)


def build_server(settings: Settings, host: str, port: int, *, log_level: str = "info") -> ApiServer:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=GRACE_S,
        lifespan="on",
    )
    return ApiServer(config, app)


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run until SIGINT or SIGTERM (uvicorn handles both), close cleanly, return normally.

    uvicorn re-raises the signal it caught once it has shut down, into the handler that
    was there before it: that handler is a no-op here, so the command exits with 0.
    """
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: None)
    build_server(settings, host or settings.api_host, port or settings.api_port).run()

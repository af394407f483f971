"""The REST API, the live push endpoint, `/metrics` and the dashboard (FastAPI, reads Cassandra)."""

from crypto_platform.api.app import create_app

__all__ = ["create_app"]

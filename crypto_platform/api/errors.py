"""What the API turns into a 503: a backend that does not answer, named."""

from __future__ import annotations

from crypto_platform.errors import PlatformError

BACKENDS = ("cassandra", "mongodb", "kafka")


class BackendUnavailable(PlatformError):
    """`backend` (cassandra, mongodb or kafka) did not answer; `detail` says how it failed."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend} is unavailable: {detail}")
        self.backend = backend
        self.detail = detail

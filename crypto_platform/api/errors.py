"""What the API turns into a 503: a backend that does not answer, or every live stream taken."""

from __future__ import annotations

from crypto_platform.errors import PlatformError

BACKENDS = ("cassandra", "mongodb", "kafka")
RETRY_AFTER_S = 5


class BackendUnavailable(PlatformError):
    """`backend` (cassandra, mongodb or kafka) did not answer; `detail` is a short reason.

    The reason is what a client reads: no host name, port or driver text (see reasons.py).
    """

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend} is unavailable: {detail}")
        self.backend = backend
        self.detail = detail


class TooManyStreams(PlatformError):
    """Every live stream slot (`api_max_subscribers`) is taken: try again after `retry_after` s."""

    def __init__(self, limit: int, retry_after: int = RETRY_AFTER_S) -> None:
        super().__init__(f"too many live streams: all {limit} are taken, retry later")
        self.retry_after = retry_after

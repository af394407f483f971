"""HTTP for the live sources: timeouts, retries with jittered backoff, Retry-After, a breaker.

HTTP through `requests` (one Session per source, its connection pool in an HTTPAdapter).
A 429 or 418 waits as long as the server's Retry-After says, and the wait holds across
polls: no request is sent before it is over; 5xx and network errors back off
exponentially with jitter; after `RetryPolicy.fail_max` exhausted requests the circuit
opens and requests fail fast until it half-opens `reset_timeout` seconds later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson
import pybreaker
import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from crypto_platform.errors import PlatformError
from crypto_platform.resilience import Retryable, RetryPolicy, retry_after_s

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {418, 429, 500, 502, 503, 504}
DEFAULT_POLICY = RetryPolicy()


class SourceUnavailable(PlatformError):
    """The source did not answer usefully this time; the caller tries again later."""


class RejectedRequest(PlatformError):
    """The source refused the request itself (bad key, unknown symbol): retrying won't help."""


class ResilientHttp:
    """One source's HTTP client: GET JSON with retries, backoff and a circuit breaker."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
        attempts: int = 4,
        max_retry_after: float = 60.0,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(headers or {})
        # Retries are ours (tenacity: backoff, Retry-After, the breaker), not urllib3's.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.breaker = policy.breaker(name)
        self._not_before = 0.0  # monotonic time before which Retry-After forbids a request
        self._attempts = attempts
        self._backoff = policy.backoff()
        self._max_retry_after = max_retry_after

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, Retryable) and error.retry_after is not None:
            return min(error.retry_after, self._max_retry_after)
        return self._backoff(state)

    def get_json(self, path: str, params: Any = None) -> Any:
        """GET `path` and decode JSON; `SourceUnavailable` when it cannot, after retries."""
        return self.get_json_and_headers(path, params)[0]

    def get_json_and_headers(self, path: str, params: Any = None) -> tuple[Any, Mapping[str, str]]:
        """`get_json`, with the answer's headers (a rate-limit count, say; case-insensitive)."""
        wait = self._not_before - time.monotonic()
        if wait > 0:
            raise SourceUnavailable(f"rate limited (Retry-After): next request in {wait:.1f}s")
        try:
            return self.breaker.call(self._get_with_retries, path, params)
        except pybreaker.CircuitBreakerError:
            raise SourceUnavailable(
                f"circuit open after repeated failures; next try in "
                f"{self.breaker.reset_timeout:.0f}s"
            ) from None

    def _get_with_retries(self, path: str, params: Any) -> tuple[Any, Mapping[str, str]]:
        retrying = Retrying(
            retry=retry_if_exception_type(Retryable),
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            reraise=True,
        )
        try:
            response = retrying(self._get_once, path, params)
        except Retryable as error:
            raise SourceUnavailable(f"{error} (after {self._attempts} attempts)") from None
        try:
            return orjson.loads(response.content), response.headers
        except orjson.JSONDecodeError:
            kind = "an HTML page" if b"<html" in response.content[:200].lower() else "bad JSON"
            raise SourceUnavailable(f"answered {kind} instead of JSON") from None

    def _get_once(self, path: str, params: Any) -> requests.Response:
        try:
            response = self.session.get(
                f"{self.base_url}{path}", params=params, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise Retryable(f"{type(error).__name__}: {error}") from None
        if response.status_code in RETRYABLE_STATUS:
            retry_after = retry_after_s(response)
            if retry_after is not None:
                self._not_before = time.monotonic() + min(retry_after, self._max_retry_after)
            log.warning(
                "%s: HTTP %s%s",
                self.name,
                response.status_code,
                f", Retry-After {retry_after:g}s" if retry_after is not None else "",
            )
            raise Retryable(f"HTTP {response.status_code}", retry_after)
        if response.status_code >= 400:
            raise RejectedRequest(
                f"{self.name} refused the request (HTTP {response.status_code}): "
                f"{response.text[:300]}"
            )
        return response

    def close(self) -> None:
        self.session.close()
